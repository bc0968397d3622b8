//! `RedisBus`: conversation events for every node. Each event is delivered to this node's own
//! subscribers at once (through the [`LocalBus`](crate::domain::events::LocalBus)) and published once on the cluster's channel;
//! every other node hands what it hears to its own subscribers.
//!
//! One channel carries every conversation, so a node hears the whole cluster's events and keeps
//! those someone on it listens to (a map lookup for the rest): no subscription bookkeeping to
//! get wrong when listeners come and go, at the price of traffic that grows with the number of
//! nodes. Redis pub/sub delivers at most once (nothing while a node is disconnected), which is
//! what the `EventBus` port promises: subscribers see a gap in `seq` and refill from the
//! database. Events are published in the order they happen on this node, by one task.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use frontdesk_actors::{ConversationEvent, EventBus};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use super::ownership::{first_version, NODE_PROTOCOL};
use super::redis::Redis;
use crate::domain::events::LocalBus;

/// The channel (under the cluster's prefix) every event travels on.
const CHANNEL: &str = "events";
/// Events waiting to be published; beyond this (Redis very slow) new ones are dropped.
const OUTBOX: usize = 65_536;
/// Most events published in one pipeline.
const PUBLISH_BATCH: usize = 256;
/// A batch that could not be published is tried again this often, this many times (about as
/// long as Redis is left alone after a failed call), then dropped.
const PUBLISH_RETRY: Duration = Duration::from_millis(250);
const PUBLISH_ATTEMPTS: u32 = 6;
/// An event older than this when its turn to be published comes is not published.
const STALE_AFTER_MS: i64 = 5_000;

#[derive(Serialize, Deserialize)]
struct Envelope {
    /// [`NODE_PROTOCOL`]: an event in a version this node does not speak is not delivered.
    #[serde(default = "first_version")]
    v: u32,
    node: String,
    topic: String,
    /// When it was published (ms since the epoch, the publishing node's clock).
    at: i64,
    event: ConversationEvent,
}

/// What the bus has carried, for `/metrics`.
#[derive(Debug, Default)]
pub struct BusStats {
    pub published: AtomicU64,
    pub received: AtomicU64,
    /// From publishing on one node to delivery on this one, of the last event heard (ms).
    pub last_lag_ms: AtomicI64,
    pub max_lag_ms: AtomicI64,
    pub dropped: AtomicU64,
    /// Events heard that this node could not read (another protocol version, or garbled).
    pub unreadable: AtomicU64,
    /// When the full outbox was last reported in the log.
    last_full_warning_ms: AtomicI64,
}

pub struct RedisBus {
    local: Arc<LocalBus>,
    node_id: String,
    outbox: mpsc::Sender<(i64, String)>,
    pub stats: Arc<BusStats>,
}

impl RedisBus {
    /// Starts publishing this node's events and hearing the others' (on the current runtime).
    pub fn start(redis: Arc<Redis>, local: Arc<LocalBus>) -> RedisBus {
        let (outbox, mut pending) = mpsc::channel::<(i64, String)>(OUTBOX);
        let stats = Arc::new(BusStats::default());
        let publisher = redis.clone();
        let published = stats.clone();
        actix_rt::spawn(async move {
            // Whatever queued up while the last batch was out goes in one pipeline: one round
            // trip for many events, still in order on the one connection.
            let mut batch = Vec::with_capacity(PUBLISH_BATCH);
            while pending.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
                // Events that waited too long (Redis was away) would only confuse a listener
                // (a delta after its reply's `done`): they stay on this node; seq refills the rest.
                let fresh_since = crate::storage::now_ms() - STALE_AFTER_MS;
                let before = batch.len();
                batch.retain(|(at, _)| *at >= fresh_since);
                published.dropped.fetch_add((before - batch.len()) as u64, Ordering::Relaxed);
                let payloads: Vec<String> = batch.drain(..).map(|(_, payload)| payload).collect();
                let count = payloads.len() as u64;
                if count == 0 {
                    continue;
                }
                let mut attempts = 0;
                loop {
                    match publisher.publish_all(CHANNEL, &payloads).await {
                        Ok(()) => {
                            published.published.fetch_add(count, Ordering::Relaxed);
                            break;
                        }
                        // A call that failed on a busy node rests Redis for a moment: the batch
                        // waits that out (new events queue behind it) rather than being lost.
                        Err(_) if attempts < PUBLISH_ATTEMPTS => {
                            attempts += 1;
                            tokio::time::sleep(PUBLISH_RETRY).await;
                        }
                        Err(error) => {
                            tracing::debug!(%error, count, "events did not reach the other nodes");
                            published.dropped.fetch_add(count, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            }
        });
        let heard = stats.clone();
        let listener = local.clone();
        let node_id = redis.node_id().to_owned();
        let me = node_id.clone();
        actix_rt::spawn(async move {
            loop {
                match redis.subscription(CHANNEL).await {
                    Ok(mut messages) => {
                        tracing::info!("listening to the other nodes' events");
                        redis.listening.store(true, std::sync::atomic::Ordering::Relaxed);
                        while let Some(message) = messages.next().await {
                            let envelope = match serde_json::from_slice::<Envelope>(message.get_payload_bytes()) {
                                Ok(envelope) if envelope.v == NODE_PROTOCOL => envelope,
                                Ok(envelope) => {
                                    heard.unreadable.fetch_add(1, Ordering::Relaxed);
                                    tracing::debug!(version = envelope.v, "an event in another node protocol");
                                    continue;
                                }
                                Err(error) => {
                                    heard.unreadable.fetch_add(1, Ordering::Relaxed);
                                    tracing::debug!(%error, "an unreadable event from another node");
                                    continue;
                                }
                            };
                            if envelope.node != me {
                                let lag = (crate::storage::now_ms() - envelope.at).max(0);
                                heard.received.fetch_add(1, Ordering::Relaxed);
                                heard.last_lag_ms.store(lag, Ordering::Relaxed);
                                heard.max_lag_ms.fetch_max(lag, Ordering::Relaxed);
                                listener.publish(&envelope.topic, envelope.event);
                            }
                        }
                        redis.listening.store(false, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!("lost the other nodes' events; reconnecting");
                    }
                    Err(error) => tracing::debug!(%error, "cannot hear the other nodes' events yet"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        RedisBus { local, node_id, outbox, stats }
    }
}

impl EventBus for RedisBus {
    fn publish(&self, topic: &str, event: ConversationEvent) {
        let envelope = Envelope {
            v: NODE_PROTOCOL,
            node: self.node_id.clone(),
            topic: topic.to_owned(),
            at: crate::storage::now_ms(),
            event,
        };
        match serde_json::to_string(&envelope) {
            Ok(payload) => {
                if self.outbox.try_send((envelope.at, payload)).is_err() {
                    // Counted every time, logged once a second at most (it comes in floods).
                    let dropped = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    let now = crate::storage::now_ms();
                    let last = self.stats.last_full_warning_ms.load(Ordering::Relaxed);
                    if now - last >= 1000
                        && self
                            .stats
                            .last_full_warning_ms
                            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                            .is_ok()
                    {
                        tracing::warn!(dropped, "the cluster's event outbox is full; events stay on this node");
                    }
                }
            }
            Err(error) => tracing::error!(%error, "an event could not be serialised"),
        }
        self.local.publish(topic, envelope.event);
    }

    fn subscribe(&self, topic: &str) -> broadcast::Receiver<Arc<ConversationEvent>> {
        self.local.subscribe(topic)
    }
}
