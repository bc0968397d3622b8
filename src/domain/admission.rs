//! Admission control at the door: what a stranger (or a careless client) may make the server do
//! before any credential is checked, and how much each credential may ask for.
//!
//! Responsible for: the client's address ([`client_address`], the one place it is read; a
//! `X-Forwarded-For` counts only from a configured trusted proxy), the quotas of new widget
//! conversations (per address and per bot), of widget messages (per conversation here, per
//! socket in [`SocketQuota`]), of workspace tokens, external keys and the public routes per
//! address ([`public_door`]), the coalescing of typing and read frames ([`Coalescer`]), and the
//! counters `/metrics` shows. Every quota is an [`ApiRateLimiter`] (GCRA, shared through Redis
//! when the cluster has one), so a refusal looks the same everywhere: 429 (or an `error` frame)
//! with `code: "rate_limited"` and `retry_after` in seconds. The cap on a conversation's queued
//! brain turns lives with the session (`frontdesk_actors::SessionConfig::max_queued_turns`).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, ResponseError};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::cluster::redis::Redis;
use crate::config::AdmissionSettings;
use crate::domain::chat::Chat;
use crate::domain::rate_limit::{ApiRateLimiter, Verdict};
use crate::error::ApiError;
use crate::ids::{ConversationId, WorkspaceId};

/// The `code` of every admission refusal.
pub const RATE_LIMITED: &str = "rate_limited";

/// Routes reachable without an API key, counted per client address by [`public_door`]. The
/// `/api` scope's own routes are not here: their keys have quotas of their own.
const PUBLIC_PREFIXES: &[&str] = &[
    "/ws/widget",
    "/ws/agent",
    "/chat",
    "/api/doctors/public",
    "/api/external/booking",
    "/api/v2/public-api/",
    "/api/files/",
    // The console's sign-in and set-password (sign-in has quotas of its own besides).
    "/api/auth/sign-in",
    "/api/auth/password",
    "/console",
    // The widget's loader, files, configuration and uploads, and the demo page.
    "/widget",
    "/demo",
];

/// Why a request or frame was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    /// Seconds until a retry may be admitted.
    pub retry_after: u64,
}

impl Refusal {
    fn over(what: &str, verdict: &Verdict) -> Self {
        Refusal {
            message: format!("{what}: {} per minute; retry in {} s", verdict.limit, verdict.retry_after_secs),
            retry_after: verdict.retry_after_secs,
        }
    }

    /// As an HTTP error: 429 with `code`, `retry_after` and the `Retry-After` header.
    pub fn into_api_error(self) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, self.message)
            .with("code", RATE_LIMITED.into())
            .with("retry_after", self.retry_after.into())
    }
}

/// What admission control has refused or merged since start (for `/metrics`).
#[derive(Debug, Default)]
pub struct AdmissionStats {
    pub conversations_refused: AtomicU64,
    pub messages_refused: AtomicU64,
    pub sockets_closed: AtomicU64,
    pub credentials_refused: AtomicU64,
    pub public_refused: AtomicU64,
    pub frames_coalesced: AtomicU64,
}

pub struct Admission {
    pub settings: AdmissionSettings,
    conversations_per_address: Option<ApiRateLimiter<IpAddr>>,
    conversations_per_bot: Option<ApiRateLimiter<i64>>,
    messages_per_conversation: Option<ApiRateLimiter<String>>,
    workspace_tokens: Option<ApiRateLimiter<i64>>,
    external_keys: Option<ApiRateLimiter<i64>>,
    public_per_address: Option<ApiRateLimiter<IpAddr>>,
    pub stats: AdmissionStats,
}

impl Admission {
    pub fn new(settings: AdmissionSettings, redis: Option<Arc<Redis>>) -> Admission {
        fn quota<K: std::hash::Hash + Eq + Clone + std::fmt::Debug>(
            per_minute: u32,
            redis: &Option<Arc<Redis>>,
            scope: &'static str,
        ) -> Option<ApiRateLimiter<K>> {
            ApiRateLimiter::per_minute(per_minute).map(|limiter| limiter.shared(redis.clone(), scope))
        }
        Admission {
            conversations_per_address: quota(settings.widget_conversations_per_minute, &redis, "adm-conv-address"),
            conversations_per_bot: quota(settings.bot_conversations_per_minute, &redis, "adm-conv-bot"),
            messages_per_conversation: quota(settings.conversation_messages_per_minute, &redis, "adm-messages"),
            workspace_tokens: quota(settings.workspace_token_rate_limit_per_minute, &redis, "adm-workspace-token"),
            external_keys: quota(settings.external_key_rate_limit_per_minute, &redis, "adm-external-key"),
            public_per_address: quota(settings.public_rate_limit_per_minute, &redis, "adm-public"),
            settings,
            stats: AdmissionStats::default(),
        }
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
    /// address in `X-Forwarded-For` that is not itself a trusted proxy (the entries to its left
    /// are whatever the client claimed, so they never count).
    pub fn client_address(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip().to_canonical();
        let trusted = |ip: &IpAddr| self.settings.trusted_proxies.iter().any(|net| net.contains(ip));
        if !trusted(&peer) {
            return Some(peer);
        }
        let mut client = peer;
        let forwarded = req.headers().get_all("x-forwarded-for").filter_map(|value| value.to_str().ok());
        let hops: Vec<&str> = forwarded.flat_map(|value| value.split(',')).map(str::trim).collect();
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip.to_canonical();
                    if !trusted(&client) {
                        break;
                    }
                }
                // An entry that is not an address cannot be vouched for: stop at the last good one.
                Err(_) => break,
            }
        }
        Some(client)
    }

    /// Counts a new widget conversation against its address's and its bot's quotas.
    pub async fn new_conversation(&self, address: Option<IpAddr>, bot_id: i64) -> Result<(), Refusal> {
        if let (Some(limiter), Some(address)) = (&self.conversations_per_address, address) {
            let verdict = limiter.check(address_key(address), None).await;
            if !verdict.allowed {
                self.stats.conversations_refused.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::over("too many new conversations from this address", &verdict));
            }
        }
        if let Some(limiter) = &self.conversations_per_bot {
            let verdict = limiter.check(bot_id, None).await;
            if !verdict.allowed {
                self.stats.conversations_refused.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::over("too many new conversations for this bot", &verdict));
            }
        }
        Ok(())
    }

    /// Counts a visitor message against its conversation's quota.
    pub async fn conversation_message(&self, conversation_id: &ConversationId) -> Result<(), Refusal> {
        let Some(limiter) = &self.messages_per_conversation else { return Ok(()) };
        let verdict = limiter.check(conversation_id.to_string(), None).await;
        if verdict.allowed {
            return Ok(());
        }
        self.stats.messages_refused.fetch_add(1, Ordering::Relaxed);
        Err(Refusal::over("too many messages in this conversation", &verdict))
    }

    /// Counts a request made with a CX Genie `workspace_token` (after it was found valid).
    pub async fn workspace_token(&self, workspace_id: WorkspaceId) -> Result<(), ApiError> {
        self.credential(&self.workspace_tokens, workspace_id, "rate limit exceeded for this workspace_token").await
    }

    /// Counts a request made with an external API key (after it was found valid).
    pub async fn external_key(&self, workspace_id: WorkspaceId) -> Result<(), ApiError> {
        self.credential(&self.external_keys, workspace_id, "rate limit exceeded for this api_key").await
    }

    async fn credential(
        &self,
        limiter: &Option<ApiRateLimiter<i64>>,
        workspace_id: WorkspaceId,
        what: &str,
    ) -> Result<(), ApiError> {
        let Some(limiter) = limiter else { return Ok(()) };
        let verdict = limiter.check(workspace_id.get(), None).await;
        if verdict.allowed {
            return Ok(());
        }
        self.stats.credentials_refused.fetch_add(1, Ordering::Relaxed);
        Err(Refusal::over(what, &verdict).into_api_error())
    }

    /// A widget socket's own message quota (`None` when off).
    pub fn socket_quota(&self) -> Option<SocketQuota> {
        let per_minute = NonZeroU32::new(self.settings.socket_messages_per_minute)?;
        Some(SocketQuota { per_minute: per_minute.get(), limiter: RateLimiter::direct(Quota::per_minute(per_minute)) })
    }

    /// Forgets the quotas that are full again (called periodically).
    pub fn shrink(&self) {
        let limiters: [Option<&dyn Shrink>; 6] = [
            self.conversations_per_address.as_ref().map(|l| l as &dyn Shrink),
            self.conversations_per_bot.as_ref().map(|l| l as &dyn Shrink),
            self.messages_per_conversation.as_ref().map(|l| l as &dyn Shrink),
            self.workspace_tokens.as_ref().map(|l| l as &dyn Shrink),
            self.external_keys.as_ref().map(|l| l as &dyn Shrink),
            self.public_per_address.as_ref().map(|l| l as &dyn Shrink),
        ];
        for limiter in limiters.into_iter().flatten() {
            limiter.shrink();
        }
    }

    /// The counters, as `/metrics` writes them: name, type, help, value.
    pub fn metrics(&self) -> Vec<(&'static str, &'static str, &'static str, String)> {
        let load = |value: &AtomicU64| value.load(Ordering::Relaxed).to_string();
        let stats = &self.stats;
        vec![
            (
                "frontdesk_admission_conversations_refused_total",
                "counter",
                "New widget conversations refused (per address or per bot quota).",
                load(&stats.conversations_refused),
            ),
            (
                "frontdesk_admission_messages_refused_total",
                "counter",
                "Widget messages refused (per conversation or per socket quota).",
                load(&stats.messages_refused),
            ),
            (
                "frontdesk_admission_sockets_closed_total",
                "counter",
                "Widget sockets closed after too many refusals in a row.",
                load(&stats.sockets_closed),
            ),
            (
                "frontdesk_admission_credentials_refused_total",
                "counter",
                "Requests refused over a workspace token's or external key's quota.",
                load(&stats.credentials_refused),
            ),
            (
                "frontdesk_admission_public_refused_total",
                "counter",
                "Requests to routes without an API key refused over their address's quota.",
                load(&stats.public_refused),
            ),
            (
                "frontdesk_admission_frames_coalesced_total",
                "counter",
                "Typing and read frames merged into a later one instead of reaching the session.",
                load(&stats.frames_coalesced),
            ),
            (
                "frontdesk_turns_coalesced_total",
                "counter",
                "Visitor messages answered together with a later one (queued-turn cap).",
                frontdesk_actors::coalesced_turns().to_string(),
            ),
        ]
    }
}

trait Shrink {
    fn shrink(&self);
}

impl<K: std::hash::Hash + Eq + Clone + std::fmt::Debug> Shrink for ApiRateLimiter<K> {
    fn shrink(&self) {
        ApiRateLimiter::shrink(self);
    }
}

/// An IPv6 client usually holds a whole /64: its quota is the network's, or a new address per
/// request would make a new quota per request.
fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// The client's address of a request, as [`Admission::client_address`] finds it (the peer's
/// when the server state is not there).
pub fn client_address(req: &HttpRequest) -> Option<IpAddr> {
    match req.app_data::<web::Data<Chat>>() {
        Some(chat) => chat.admission.client_address(req),
        None => req.peer_addr().map(|addr| addr.ip().to_canonical()),
    }
}

/// Middleware: counts each request to a route without an API key ([`PUBLIC_PREFIXES`])
/// against its client address's quota, before the route does any work; 429 past it. Its answer
/// carries that quota's `X-RateLimit-*` headers, as keyed routes carry their key's.
pub async fn public_door(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let public = PUBLIC_PREFIXES.iter().any(|prefix| req.path().starts_with(prefix));
    let chat = req.app_data::<web::Data<Chat>>().cloned();
    let mut counted = None;
    if let (true, Some(chat)) = (public, chat) {
        if let (Some(limiter), Some(address)) =
            (&chat.admission.public_per_address, chat.admission.client_address(req.request()))
        {
            let verdict = limiter.check(address_key(address), None).await;
            if !verdict.allowed {
                chat.admission.stats.public_refused.fetch_add(1, Ordering::Relaxed);
                let refusal = Refusal::over("too many requests from this address", &verdict);
                let mut response = refusal.into_api_error().error_response();
                verdict.write_headers(response.headers_mut());
                return Ok(req.into_response(response));
            }
            counted = Some(verdict);
        }
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    // A keyless route answers with its address's quota, unless the route reported a quota of
    // its own (a chat session's).
    if let Some(verdict) = counted {
        if !response.headers().contains_key("x-ratelimit-limit") {
            verdict.write_headers(response.headers_mut());
        }
    }
    Ok(response)
}

/// One widget socket's message quota, with the refusals in a row that close it.
pub struct SocketQuota {
    per_minute: u32,
    limiter: DefaultDirectRateLimiter,
}

impl SocketQuota {
    pub fn check(&self) -> Result<(), Refusal> {
        use governor::clock::{Clock, DefaultClock};
        self.limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let retry_after = wait.as_secs_f64().ceil().max(1.0) as u64;
            Refusal {
                message: format!(
                    "too many messages on this socket: {} per minute; retry in {retry_after} s",
                    self.per_minute
                ),
                retry_after,
            }
        })
    }
}

/// At most one value per `interval` goes through; what comes in between is merged into one
/// pending value that goes out when the interval is over (so the last state is never lost, a
/// "stopped typing" included).
#[derive(Debug)]
pub struct Coalescer<T> {
    interval: Duration,
    last_sent: Option<Instant>,
    pending: Option<T>,
}

/// What to do with an offered value.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer<T> {
    /// Send this now.
    Send(T),
    /// Held; call [`Coalescer::flush`] after this long (only said for the first value held).
    FlushIn(Duration),
    /// Merged into the value already held.
    Merged,
}

impl<T> Coalescer<T> {
    pub fn new(interval: Duration) -> Self {
        Coalescer { interval, last_sent: None, pending: None }
    }

    pub fn offer(&mut self, value: T, now: Instant, merge: impl FnOnce(T, T) -> T) -> Offer<T> {
        let due = self.last_sent.map(|at| at + self.interval);
        match due {
            Some(due) if due > now => match self.pending.take() {
                Some(held) => {
                    self.pending = Some(merge(held, value));
                    Offer::Merged
                }
                None => {
                    self.pending = Some(value);
                    Offer::FlushIn(due - now)
                }
            },
            _ => {
                self.last_sent = Some(now);
                Offer::Send(match self.pending.take() {
                    Some(held) => merge(held, value),
                    None => value,
                })
            }
        }
    }

    /// The held value, when its interval is over.
    pub fn flush(&mut self, now: Instant) -> Option<T> {
        let value = self.pending.take()?;
        self.last_sent = Some(now);
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_per_interval_goes_through_and_the_last_state_follows() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        let mut typing = Coalescer::new(second);
        let keep_last = |_old: bool, new: bool| new;
        assert_eq!(typing.offer(true, start, keep_last), Offer::Send(true));
        assert_eq!(typing.offer(false, start + second / 4, keep_last), Offer::FlushIn(second * 3 / 4));
        for i in 0..50 {
            assert_eq!(typing.offer(i % 2 == 0, start + second / 2, keep_last), Offer::Merged);
        }
        // The 51st value held was `false` (i = 49): the last state is what goes out.
        assert_eq!(typing.flush(start + second), Some(false));
        assert_eq!(typing.flush(start + second), None);
        assert_eq!(typing.offer(true, start + second * 3, keep_last), Offer::Send(true));

        let mut read = Coalescer::new(second);
        assert_eq!(read.offer(3, start, i64::max), Offer::Send(3));
        assert!(matches!(read.offer(9, start, i64::max), Offer::FlushIn(_)));
        assert_eq!(read.offer(5, start, i64::max), Offer::Merged);
        assert_eq!(read.flush(start + second), Some(9), "reads merge to the highest seq");

        let mut off = Coalescer::new(Duration::ZERO);
        assert_eq!(off.offer(1, start, i64::max), Offer::Send(1));
        assert_eq!(off.offer(2, start, i64::max), Offer::Send(2));
    }

    #[test]
    fn ipv6_clients_share_their_network_quota() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(other));
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(address_key(v4), v4);
    }

    fn admission(trusted: &str) -> Admission {
        let settings = AdmissionSettings {
            trusted_proxies: crate::net_guard::parse_networks(trusted).unwrap(),
            widget_conversations_per_minute: 2,
            bot_conversations_per_minute: 3,
            conversation_messages_per_minute: 0,
            socket_messages_per_minute: 0,
            socket_strikes: 1,
            max_queued_turns: 1,
            typing_interval: Duration::ZERO,
            workspace_token_rate_limit_per_minute: 0,
            external_key_rate_limit_per_minute: 0,
            public_rate_limit_per_minute: 0,
        };
        Admission::new(settings, None)
    }

    fn request(peer: &str, forwarded: Option<&str>) -> HttpRequest {
        let mut req = actix_web::test::TestRequest::default().peer_addr(peer.parse().unwrap());
        if let Some(value) = forwarded {
            req = req.insert_header(("x-forwarded-for", value));
        }
        req.to_http_request()
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let untrusted = admission("");
        let spoofed = request("198.51.100.9:4000", Some("203.0.113.1"));
        assert_eq!(untrusted.client_address(&spoofed), Some("198.51.100.9".parse().unwrap()));

        let behind_proxy = admission("10.0.0.0/8");
        // The client claims 1.1.1.1; the proxy chain appends the real address, then its own.
        let req = request("10.0.0.2:4000", Some("1.1.1.1, 203.0.113.1, 10.0.0.5"));
        assert_eq!(behind_proxy.client_address(&req), Some("203.0.113.1".parse().unwrap()));
        let no_header = request("10.0.0.2:4000", None);
        assert_eq!(behind_proxy.client_address(&no_header), Some("10.0.0.2".parse().unwrap()));
        let garbage = request("10.0.0.2:4000", Some("not-an-ip"));
        assert_eq!(behind_proxy.client_address(&garbage), Some("10.0.0.2".parse().unwrap()));
        let mapped = request("[::ffff:10.0.0.2]:4000", Some("203.0.113.4"));
        assert_eq!(behind_proxy.client_address(&mapped), Some("203.0.113.4".parse().unwrap()));
    }

    #[actix_rt::test]
    async fn new_conversations_are_counted_per_address_then_per_bot() {
        let admission = admission("");
        let (a, b, c): (IpAddr, IpAddr, IpAddr) =
            ("203.0.113.1".parse().unwrap(), "203.0.113.2".parse().unwrap(), "203.0.113.3".parse().unwrap());
        assert!(admission.new_conversation(Some(a), 1).await.is_ok());
        assert!(admission.new_conversation(Some(a), 1).await.is_ok());
        let refused = admission.new_conversation(Some(a), 1).await.unwrap_err();
        assert!(refused.message.contains("from this address"), "{refused:?}");
        assert!(refused.retry_after >= 1);
        // The refusal by address did not use the bot's quota (3): one more from elsewhere fits.
        assert!(admission.new_conversation(Some(b), 1).await.is_ok());
        let refused = admission.new_conversation(Some(c), 1).await.unwrap_err();
        assert!(refused.message.contains("for this bot"), "{refused:?}");
        assert!(admission.new_conversation(Some(c), 2).await.is_ok(), "another bot has its own quota");
        assert_eq!(admission.stats.conversations_refused.load(Ordering::Relaxed), 2);
    }
}
