//! `WebhookDispatcher`: drains the outbox. Each round claims the due deliveries (a lease, so a
//! node that dies mid-round only delays them), sends them concurrently across endpoints and in
//! event order within one endpoint, and records each endpoint's attempts together (one
//! transaction per up to 64) with their consequence: delivered, retried later (the schedule,
//! with jitter, or the receiver's `Retry-After`), or dead-lettered. A send whose record is lost
//! (a crash in between) is sent again with the same `webhook-id`: at least once, never lost.
//! It runs as a background job ([`crate::jobs`]): woken by commits of new deliveries, polling as
//! a safety net.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use frontdesk_actors::Clock;
use futures::future::LocalBoxFuture;
use rand::Rng;

use super::signing;
use crate::crypto::SecretBox;
use crate::jobs::{BackgroundJob, JobRunner, Round, Schedule};
use crate::net_guard::{self, TargetPolicy};
use crate::storage::outbox;
use crate::storage::webhooks::{self as store, Attempt, DueDelivery, Next, Outcome};
use crate::storage::Db;

/// How much of a receiver's answer the delivery log keeps.
const EXCERPT_BYTES: usize = 1024;
/// Room left in a claim for recording what was sent.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// Most attempts one transaction records.
const RECORD_BATCH: usize = 64;
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Names this node's claims.
    pub node_id: String,
    /// Delay before each attempt: `[0]` is the first (immediate), the last is the final retry.
    pub schedule: Vec<Duration>,
    /// A receiver must answer 2xx within this.
    pub timeout: Duration,
    /// How long a claim holds before another round (or node) may take the delivery; a lane
    /// starts a send only if it can finish within it.
    pub lease: Duration,
    /// Safety-net polling interval.
    pub poll: Duration,
    /// Most deliveries one round claims.
    pub batch: i64,
    /// An endpoint failing this long without a success is disabled.
    pub disable_after: Duration,
    pub policy: TargetPolicy,
}

impl DispatchConfig {
    /// The documented schedule: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
    pub fn default_schedule() -> Vec<Duration> {
        [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400].into_iter().map(Duration::from_secs).collect()
    }
}

/// Webhook delivery as a background job: a round claims the due deliveries and sends them.
pub struct WebhookDelivery {
    db: Db,
    secrets: SecretBox,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    config: Arc<DispatchConfig>,
}

impl WebhookDelivery {
    pub fn new(db: Db, secrets: SecretBox, clock: Arc<dyn Clock>, config: DispatchConfig) -> Self {
        let client = net_guard::client(config.policy.clone(), config.timeout);
        Self { db, secrets, client, clock, config: Arc::new(config) }
    }

    /// Its runner: woken by every commit that queued deliveries, polling at the configured
    /// interval as a safety net.
    pub fn start(self) -> Addr<JobRunner<Self>> {
        let schedule = Schedule::every(self.config.poll).woken_by(outbox::committed_signal());
        JobRunner::new(self, schedule).start()
    }
}

impl BackgroundJob for WebhookDelivery {
    const NAME: &'static str = "webhook_delivery";

    fn round(self: Arc<Self>) -> LocalBoxFuture<'static, Result<Round, String>> {
        let (db, secrets, client, clock, config) =
            (self.db.clone(), self.secrets.clone(), self.client.clone(), self.clock.clone(), self.config.clone());
        Box::pin(async move {
            let now = clock.now_ms();
            let (node, lease, batch) = (config.node_id.clone(), config.lease.as_millis() as i64, config.batch);
            let due = match db.run(move |conn| store::claim_due(conn, &node, now, lease, batch)).await {
                Ok(due) => due,
                Err(err) => return Err(format!("cannot claim webhook deliveries: {err}")),
            };
            let full = due.len() as i64 == batch;
            // One endpoint's deliveries go one after another, in event order; endpoints in parallel.
            let mut by_endpoint: BTreeMap<i64, Vec<DueDelivery>> = BTreeMap::new();
            for delivery in due {
                by_endpoint.entry(delivery.endpoint_id).or_default().push(delivery);
            }
            let lanes = by_endpoint.into_iter().map(|(endpoint_id, deliveries)| {
                let (db, secrets, client, clock, config) =
                    (db.clone(), secrets.clone(), client.clone(), clock.clone(), config.clone());
                async move {
                    let started = Instant::now();
                    let mut outcomes = Vec::new();
                    let mut queue = deliveries.into_iter();
                    while let Some(delivery) = queue.next() {
                        // Start a send only if it can finish, and be recorded, while the claims
                        // still hold; what is left goes back for the next round to take in order.
                        if started.elapsed() + config.timeout + LEASE_MARGIN > config.lease {
                            let unsent: Vec<(i64, i64)> =
                                std::iter::once(delivery).chain(queue).map(|d| (d.id, d.claimed_until)).collect();
                            let node = config.node_id.clone();
                            if let Err(err) = db.run(move |conn| store::release_claims(conn, &node, &unsent)).await {
                                tracing::warn!(error = %err, "cannot release webhook claims; they lapse instead");
                            }
                            break;
                        }
                        let outcome = attempt(&secrets, &client, clock.as_ref(), &config, delivery).await;
                        let disabling = outcome.disable.is_some();
                        outcomes.push(outcome);
                        if outcomes.len() >= RECORD_BATCH || disabling {
                            let batch = std::mem::take(&mut outcomes);
                            if record(&db, &config, endpoint_id, batch, clock.now_ms()).await {
                                // The rest stay pending until the endpoint is turned back on.
                                return;
                            }
                        }
                    }
                    record(&db, &config, endpoint_id, outcomes, clock.now_ms()).await;
                }
            });
            futures::future::join_all(lanes).await;
            Ok(if full { Round::More } else { Round::Idle })
        })
    }

    fn depth(self: Arc<Self>) -> LocalBoxFuture<'static, Option<i64>> {
        Box::pin(async move { self.db.run(store::pending_count).await.ok() })
    }
}

/// Records a lane's outcomes in one transaction; returns whether the endpoint got disabled.
async fn record(db: &Db, config: &DispatchConfig, endpoint_id: i64, outcomes: Vec<Outcome>, now: i64) -> bool {
    if outcomes.is_empty() {
        return false;
    }
    let disable_after = config.disable_after.as_millis() as i64;
    let node = config.node_id.clone();
    match db.run(move |conn| store::record_attempts(conn, &node, endpoint_id, &outcomes, disable_after, now)).await {
        Ok(disabled) => disabled,
        Err(err) => {
            // The claims lapse and the deliveries are tried again: at least once, never lost.
            tracing::error!(error = %err, "cannot record webhook attempts");
            false
        }
    }
}

/// One attempt at one delivery, and what should follow from it.
async fn attempt(
    secrets: &SecretBox,
    client: &reqwest::Client,
    clock: &dyn Clock,
    config: &DispatchConfig,
    delivery: DueDelivery,
) -> Outcome {
    let now = clock.now_ms();
    let started = Instant::now();
    let result = send(secrets, client, config, &delivery, now).await;
    let latency_ms = started.elapsed().as_millis() as i64;
    let attempt_number = delivery.attempts as usize + 1;
    let retry = |after: Option<Duration>| -> Next {
        match config.schedule.get(attempt_number) {
            None => Next::Dead,
            Some(delay) => {
                let planned = jitter(*delay);
                let wait = after.map(|a| a.min(MAX_RETRY_AFTER).max(planned)).unwrap_or(planned);
                Next::RetryAt(now + wait.as_millis() as i64)
            }
        }
    };
    let (attempt, next, disable) = match result {
        Ok(response) => {
            let status = response.status;
            let (next, disable) = if (200..300).contains(&status) {
                (Next::Delivered, None)
            } else if status == 410 {
                (Next::Dead, Some("the receiver answered 410 Gone".to_owned()))
            } else if status == 429 || status == 503 {
                (retry(response.retry_after), None)
            } else {
                (retry(None), None)
            };
            let error = match status {
                200..=299 => None,
                300..=399 => Some(format!("redirect ({status}) not followed")),
                _ => Some(format!("receiver answered {status}")),
            };
            (
                Attempt {
                    attempted_at: now,
                    status_code: Some(i32::from(status)),
                    latency_ms,
                    response_excerpt: Some(response.excerpt),
                    error,
                },
                next,
                disable,
            )
        }
        Err(error) => (
            Attempt { attempted_at: now, status_code: None, latency_ms, response_excerpt: None, error: Some(error) },
            retry(None),
            None,
        ),
    };
    if next == Next::Dead && disable.is_none() {
        tracing::warn!(delivery = delivery.id, endpoint = delivery.endpoint_id, "webhook delivery dead-lettered");
    }
    Outcome { delivery, attempt, next, disable }
}

struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    excerpt: String,
}

async fn send(
    secrets: &SecretBox,
    client: &reqwest::Client,
    config: &DispatchConfig,
    delivery: &DueDelivery,
    now: i64,
) -> Result<Answer, String> {
    let url = net_guard::check_url(&delivery.url, config.policy.clone()).map_err(|e| e.to_string())?;
    let secret = secrets.open(&delivery.secret).map_err(|e| e.to_string())?;
    let previous = match (&delivery.previous_secret, delivery.previous_secret_expires_at) {
        (Some(sealed), Some(until)) if until > now => Some(secrets.open(sealed).map_err(|e| e.to_string())?),
        _ => None,
    };
    let seconds = now.div_euclid(1000);
    let timestamp = chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let data: serde_json::Value = serde_json::from_str(&delivery.payload).unwrap_or(serde_json::Value::Null);
    let body =
        serde_json::to_vec(&serde_json::json!({ "event": delivery.event, "timestamp": timestamp, "data": data }))
            .map_err(|e| e.to_string())?;
    let id = store::webhook_id(delivery.event_id);
    let mut standard = signing::standard(&secret, &id, seconds, &body);
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", seconds.to_string())
        .header("x-chatgenius-signature", signing::chatgenius(&secret, &body))
        .header("x-frontdesk-event", &delivery.event)
        .header("x-frontdesk-delivery", delivery.id.to_string());
    if let Some(previous) = &previous {
        // During a rotation's overlap both secrets sign, so receivers may switch at any moment.
        standard = format!("{standard} {}", signing::standard(previous, &id, seconds, &body));
        request = request.header("x-chatgenius-signature-previous", signing::chatgenius(previous, &body));
    }
    let mut response = request.header("webhook-signature", standard).body(body).send().await.map_err(describe)?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut excerpt = Vec::new();
    while excerpt.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
            _ => break,
        }
    }
    excerpt.truncate(EXCERPT_BYTES);
    let mut excerpt = String::from_utf8_lossy(&excerpt).into_owned();
    // The receiver's bytes are kept for the delivery log; PostgreSQL cannot store a NUL.
    crate::text::drop_nul(&mut excerpt);
    Ok(Answer { status, retry_after, excerpt })
}

fn describe(err: reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    if err.is_timeout() {
        format!("timed out: {text}")
    } else {
        text
    }
}

/// ±10 % so that many failed deliveries do not all come back at the same instant.
fn jitter(delay: Duration) -> Duration {
    if delay.is_zero() {
        return delay;
    }
    let factor = rand::thread_rng().gen_range(0.9..1.1);
    delay.mul_f64(factor)
}
