//! Request quotas per API key, in process (GCRA via `governor`).
//!
//! Every authenticated response carries `X-RateLimit-Limit` (requests per minute),
//! `X-RateLimit-Remaining` (requests that may be sent right now) and `X-RateLimit-Reset`
//! (seconds until the whole quota is available again). A request over the quota gets 429 with
//! `Retry-After` (seconds). Requests refused with 401 never reach the limiter, so they cost
//! nothing. With Redis, every node counts against the same quota (GCRA in Redis, see
//! [`crate::cluster::redis`]); while Redis cannot be reached, each node falls back to its own
//! in-process limiter, so a request is never refused or failed for Redis's sake.

use std::fmt::Debug;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::cluster::redis::Redis;
use crate::ids::WorkspaceId;

/// A per-minute quota per key: an API key's id by default, a chat session for `POST /chat`.
pub struct ApiRateLimiter<K: Hash + Eq + Clone = i64> {
    per_minute: u32,
    limiter: DefaultKeyedRateLimiter<K, StateInformationMiddleware>,
    /// This node's limiters for workspaces with quotas of their own, by quota.
    others:
        std::sync::Mutex<std::collections::HashMap<u32, Arc<DefaultKeyedRateLimiter<K, StateInformationMiddleware>>>>,
    /// The cluster's shared quota, and the name of this quota's keys in it.
    shared: Option<(Arc<Redis>, &'static str)>,
}

/// The quotas of ChatGenius's unauthenticated `POST /chat`: per workspace and session, and,
/// because a client picks its own session ids, per workspace and client address at
/// [`ADDRESS_FACTOR`] times that (visitors behind one office NAT share an address).
pub struct ChatRateLimiter {
    pub per_session: ApiRateLimiter<(WorkspaceId, String)>,
    pub per_address: ApiRateLimiter<(WorkspaceId, std::net::IpAddr)>,
}

pub const ADDRESS_FACTOR: u32 = 10;

impl ChatRateLimiter {
    /// `None` when `per_minute` is 0 (limits off).
    pub fn per_minute(per_minute: u32) -> Option<ChatRateLimiter> {
        Some(ChatRateLimiter {
            per_session: ApiRateLimiter::per_minute(per_minute)?,
            per_address: ApiRateLimiter::per_minute(per_minute.saturating_mul(ADDRESS_FACTOR))?,
        })
    }

    /// Shares both quotas through the cluster's Redis.
    pub fn shared(self, redis: Option<Arc<Redis>>) -> Self {
        ChatRateLimiter {
            per_session: self.per_session.shared(redis.clone(), "chat"),
            per_address: self.per_address.shared(redis, "chat-address"),
        }
    }

    /// Counts one message, against the workspace's own quota if it has one; the session's
    /// verdict unless the address is over its quota.
    pub async fn check(
        &self,
        workspace_id: WorkspaceId,
        session: &str,
        address: Option<std::net::IpAddr>,
        quota: Option<u32>,
    ) -> Verdict {
        if let Some(address) = address {
            let by_address =
                self.per_address.check((workspace_id, address), quota.map(|q| q.saturating_mul(ADDRESS_FACTOR))).await;
            if !by_address.allowed {
                return by_address;
            }
        }
        self.per_session.check((workspace_id, session.to_owned()), quota).await
    }

    pub fn shrink(&self) {
        self.per_session.shrink();
        self.per_address.shrink();
    }
}

/// The limiter's verdict on one request.
#[derive(Debug, Clone, Copy)]
pub struct Verdict {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the full quota is back.
    pub reset_secs: u64,
    /// Seconds until a refused request may be retried.
    pub retry_after_secs: u64,
}

impl<K: Hash + Eq + Clone + Debug> ApiRateLimiter<K> {
    /// `None` when `per_minute` is 0 (limits off).
    pub fn per_minute(per_minute: u32) -> Option<ApiRateLimiter<K>> {
        let n = NonZeroU32::new(per_minute)?;
        let limiter = RateLimiter::keyed(Quota::per_minute(n)).with_middleware::<StateInformationMiddleware>();
        Some(ApiRateLimiter { per_minute, limiter, others: Default::default(), shared: None })
    }

    /// Counts this quota in the cluster's Redis (under `scope`), when there is one.
    pub fn shared(mut self, redis: Option<Arc<Redis>>, scope: &'static str) -> Self {
        self.shared = redis.map(|redis| (redis, scope));
        self
    }

    /// Counts one request of `key_id` against the server's quota, or `quota` when its
    /// workspace has its own: in Redis when shared and reachable, otherwise here.
    pub async fn check(&self, key_id: K, quota: Option<u32>) -> Verdict {
        let per_minute = quota.filter(|q| *q > 0).unwrap_or(self.per_minute);
        if let Some((redis, scope)) = &self.shared {
            match redis.gcra(&format!("{scope}:{key_id:?}"), per_minute).await {
                Ok(verdict) => return verdict,
                Err(error) => tracing::debug!(%error, "rate limit decided on this node"),
            }
        }
        self.check_here(key_id, per_minute)
    }

    /// Counts one request of `key_id` in this node's own limiter for `per_minute`.
    fn check_here(&self, key_id: K, per_minute: u32) -> Verdict {
        let seconds_per_cell = 60.0 / f64::from(per_minute);
        let outcome = if per_minute == self.per_minute {
            self.limiter.check_key(&key_id)
        } else {
            self.limiter_for(per_minute).check_key(&key_id)
        };
        match outcome {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                let used = per_minute.saturating_sub(remaining);
                Verdict {
                    allowed: true,
                    limit: per_minute,
                    remaining,
                    reset_secs: (f64::from(used) * seconds_per_cell).ceil() as u64,
                    retry_after_secs: 0,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let retry = wait.as_secs_f64().ceil().max(1.0) as u64;
                Verdict {
                    allowed: false,
                    limit: per_minute,
                    remaining: 0,
                    reset_secs: (f64::from(per_minute) * seconds_per_cell).ceil() as u64,
                    retry_after_secs: retry,
                }
            }
        }
    }

    fn limiter_for(&self, per_minute: u32) -> Arc<DefaultKeyedRateLimiter<K, StateInformationMiddleware>> {
        let mut others = self.others.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        others
            .entry(per_minute)
            .or_insert_with(|| {
                let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
                Arc::new(RateLimiter::keyed(Quota::per_minute(n)).with_middleware::<StateInformationMiddleware>())
            })
            .clone()
    }

    /// Drops the state of keys whose quota is full again (called periodically).
    pub fn shrink(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        for limiter in self.others.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).values() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

impl Verdict {
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let mut put = |name: &'static str, value: u64| {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
        };
        put("x-ratelimit-limit", u64::from(self.limit));
        put("x-ratelimit-remaining", u64::from(self.remaining));
        put("x-ratelimit-reset", self.reset_secs);
        if !self.allowed {
            put("retry-after", self.retry_after_secs);
        }
    }
}
