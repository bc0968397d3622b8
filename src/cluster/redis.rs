//! Redis, when `REDIS_URL` is set: the nodes' membership (a heartbeat in one sorted set), the
//! quotas every node shares (GCRA in one Lua script), and leases (a role's leader, a
//! conversation's owner) taken and renewed atomically in Lua.
//!
//! Redis is a coordinator here, never the record: when it cannot be reached the node keeps
//! serving, each quota falls back to the node's own limiter, and `/readyz` and the log say so.
//! After a failed call the node leaves Redis alone for [`BACKOFF`] rather than making every
//! request wait for a connection that is not there, but only for calls of the same [`Kind`]:
//! one slow rate-limit call must not stop the event bus or the renewal of leases.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, Script};

use crate::domain::rate_limit::Verdict;

/// How long one Redis call may take before the node decides without it.
const CALL_TIMEOUT: Duration = Duration::from_millis(300);
/// How long the node stays off Redis after a failed call.
const BACKOFF: Duration = Duration::from_secs(1);

/// GCRA ("generic cell rate algorithm") on one key, atomically: the key holds the theoretical
/// arrival time (TAT) of the next request in ms. A request is allowed if it arrives no earlier
/// than TAT minus the period, and then moves TAT on by one interval (period / limit). A refused
/// request changes nothing. The clock is Redis's own, so nodes need no synchronised clocks.
/// Returns {allowed, remaining, retry_after_ms, reset_ms}.
const GCRA: &str = r"
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local interval = period / limit
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + interval
local allow_at = next_tat - period
if allow_at > now then
  return {0, 0, math.ceil(allow_at - now), math.ceil(tat - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', next_tat), 'PX', math.ceil(next_tat - now))
return {1, math.floor((period - (next_tat - now)) / interval), 0, math.ceil(next_tat - now)}
";

/// Takes or keeps a named lead for ARGV[2] ms: 1 if this node (ARGV[1]) holds it now.
const LEAD: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// Takes a lease for ARGV[1] for ARGV[2] ms if nobody holds it; answers the holder (ARGV[1]
/// itself when it was taken).
const ACQUIRE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return ARGV[1]
end
return redis.call('GET', KEYS[1])
";

/// Gives a lease up, only if ARGV[1] still holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Round-robin: of the candidates in ARGV (in the caller's order of preference), the one whose
/// last turn (a score in KEYS[1], missing: never) is oldest takes the next turn (KEYS[2]).
const TAKE_TURN: &str = r"
local best, best_turn = false, nil
for _, candidate in ipairs(ARGV) do
  local turn = tonumber(redis.call('ZSCORE', KEYS[1], candidate)) or 0
  if best_turn == nil or turn < best_turn then
    best, best_turn = candidate, turn
  end
end
if best then
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), best)
end
return best
";

/// What a call is for: each kind backs off on its own after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Conversation leases, leads (the hand-off leader) and their holders.
    Lease,
    /// Publishing events to the other nodes.
    Bus,
    /// Shared quotas (GCRA).
    RateLimit,
    /// Agents' presence and the round-robin rota.
    Presence,
    /// Heartbeats and the list of live nodes.
    Membership,
}

impl Kind {
    const ALL: [Kind; 5] = [Kind::Lease, Kind::Bus, Kind::RateLimit, Kind::Presence, Kind::Membership];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Lease => "lease",
            Kind::Bus => "bus",
            Kind::RateLimit => "rate_limit",
            Kind::Presence => "presence",
            Kind::Membership => "membership",
        }
    }
}

/// Where the node's Redis is: one server, or a Redis Cluster.
enum Target {
    Single {
        client: redis::Client,
        conn: ConnectionManager,
    },
    Cluster {
        client: Box<ClusterClient>,
        /// Connected on first use, so a node starts while the cluster is down.
        conn: tokio::sync::OnceCell<ClusterConnection>,
        /// Each seed node, for subscriptions: a message published on any node of a Redis
        /// Cluster reaches the subscribers of every node.
        seeds: Vec<redis::Client>,
    },
}

/// The connection a call goes through (cheap to clone: both kinds multiplex).
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Connection::Single(conn) => conn.req_packed_command(cmd),
            Connection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Connection::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(conn) => conn.get_db(),
            Connection::Cluster(conn) => conn.get_db(),
        }
    }
}

/// A node's connection to Redis, and what it knows of Redis's health.
pub struct Redis {
    target: Target,
    prefix: String,
    node_id: String,
    gcra: Script,
    lead: Script,
    acquire: Script,
    release: Script,
    take_turn: Script,
    healthy: AtomicBool,
    /// Per [`Kind`]: until when (ms since `started`) its calls are skipped after a failure.
    resting_until: [AtomicI64; Kind::ALL.len()],
    /// Per [`Kind`]: calls skipped while resting, for `/metrics`.
    skipped: [AtomicU64; Kind::ALL.len()],
    /// Per [`Kind`]: since when (ms since `started`) its calls have been failing; -1 while they
    /// succeed.
    failing_since: [AtomicI64; Kind::ALL.len()],
    started: Instant,
    last_error: Mutex<Option<String>>,
    /// How long a node's last heartbeat counts (three beats).
    window_ms: AtomicI64,
    /// Whether this node hears the other nodes' events right now.
    pub listening: AtomicBool,
}

impl Redis {
    /// Connects lazily: a node starts even while Redis is down, and uses it once it is up.
    /// `url` names one server (`redis://host:port/db`) or, as a comma-separated list of
    /// seed nodes (`redis://a:7000,redis://b:7000`), a Redis Cluster.
    pub fn connect(url: &str, prefix: &str, node_id: &str) -> anyhow::Result<Arc<Redis>> {
        let urls: Vec<&str> = url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
        let target = match urls.as_slice() {
            [] => anyhow::bail!("REDIS_URL is empty"),
            [one] => {
                let client = redis::Client::open(*one).map_err(|err| anyhow::anyhow!("REDIS_URL: {err}"))?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CALL_TIMEOUT))
                    .set_response_timeout(Some(CALL_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
                    .map_err(|err| anyhow::anyhow!("Redis client: {err}"))?;
                Target::Single { client, conn }
            }
            seeds => {
                let client = ClusterClient::builder(seeds.iter().copied())
                    .connection_timeout(CALL_TIMEOUT)
                    .response_timeout(CALL_TIMEOUT)
                    .retries(1)
                    .build()
                    .map_err(|err| anyhow::anyhow!("REDIS_URL (a Redis Cluster): {err}"))?;
                let seeds = seeds
                    .iter()
                    .map(|seed| redis::Client::open(*seed))
                    .collect::<Result<_, _>>()
                    .map_err(|err| anyhow::anyhow!("REDIS_URL: {err}"))?;
                Target::Cluster { client: Box::new(client), conn: tokio::sync::OnceCell::new(), seeds }
            }
        };
        Ok(Arc::new(Redis {
            target,
            prefix: prefix.to_owned(),
            node_id: node_id.to_owned(),
            gcra: Script::new(GCRA),
            lead: Script::new(LEAD),
            acquire: Script::new(ACQUIRE),
            release: Script::new(RELEASE),
            take_turn: Script::new(TAKE_TURN),
            healthy: AtomicBool::new(true),
            resting_until: Default::default(),
            skipped: Default::default(),
            failing_since: std::array::from_fn(|_| AtomicI64::new(-1)),
            started: Instant::now(),
            last_error: Mutex::new(None),
            window_ms: AtomicI64::new(15_000),
            listening: AtomicBool::new(false),
        }))
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// A key (or channel) of this cluster.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Whether the last call reached Redis, and the error of the last one that did not.
    pub fn health(&self) -> (bool, Option<String>) {
        let error = self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (self.healthy.load(Ordering::Relaxed), error)
    }

    /// How long calls of `kind` have been failing (`None` while they succeed).
    pub fn failing_for(&self, kind: Kind) -> Option<Duration> {
        let since = self.failing_since[kind as usize].load(Ordering::Relaxed);
        (since >= 0).then(|| Duration::from_millis((self.elapsed_ms() - since).max(0) as u64))
    }

    fn elapsed_ms(&self) -> i64 {
        self.started.elapsed().as_millis() as i64
    }

    /// Calls of each kind skipped because that kind was resting after a failure.
    pub fn skipped(&self) -> Vec<(Kind, u64)> {
        Kind::ALL.iter().map(|kind| (*kind, self.skipped[*kind as usize].load(Ordering::Relaxed))).collect()
    }

    /// The connection to call through: a Redis Cluster's is made on first use (a failure to
    /// make it counts as a failed call of `kind`).
    async fn connection(&self, kind: Kind) -> Result<Connection, String> {
        match &self.target {
            Target::Single { conn, .. } => Ok(Connection::Single(conn.clone())),
            Target::Cluster { client, conn, .. } => {
                if let Some(conn) = conn.get() {
                    return Ok(Connection::Cluster(conn.clone()));
                }
                let connected = self.call(kind, client.get_async_connection()).await?;
                // Two calls may connect at once: the first one kept serves both.
                let _ = conn.set(connected.clone());
                Ok(Connection::Cluster(conn.get().cloned().unwrap_or(connected)))
            }
        }
    }

    /// Runs one call unless calls of its kind are resting after a failure; notes the outcome.
    async fn call<T, F>(&self, kind: Kind, call: F) -> Result<T, String>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        if self.elapsed_ms() < self.resting_until[kind as usize].load(Ordering::Relaxed) {
            self.skipped[kind as usize].fetch_add(1, Ordering::Relaxed);
            return Err(format!("Redis is unreachable ({} calls resting after a failure)", kind.name()));
        }
        let outcome = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no answer within {} ms", CALL_TIMEOUT.as_millis())),
        };
        match &outcome {
            Ok(_) => {
                self.failing_since[kind as usize].store(-1, Ordering::Relaxed);
                if !self.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!("Redis is reachable again: shared rate limits resume");
                }
            }
            Err(error) => {
                self.resting_until[kind as usize]
                    .store(self.elapsed_ms() + BACKOFF.as_millis() as i64, Ordering::Relaxed);
                let _ = self.failing_since[kind as usize].compare_exchange(
                    -1,
                    self.elapsed_ms(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                if self.healthy.swap(false, Ordering::Relaxed) {
                    tracing::error!(%error, "Redis is unreachable: rate limits fall back to this node's own");
                }
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.clone());
            }
        }
        outcome
    }

    /// Counts one request against `key`'s quota of `per_minute`, shared by every node.
    pub async fn gcra(&self, key: &str, per_minute: u32) -> Result<Verdict, String> {
        let mut conn = self.connection(Kind::RateLimit).await?;
        let key = self.key(&format!("rl:{key}"));
        let mut invocation = self.gcra.prepare_invoke();
        invocation.key(key).arg(per_minute).arg(60_000);
        let (allowed, remaining, retry_ms, reset_ms): (i64, i64, i64, i64) =
            self.call(Kind::RateLimit, invocation.invoke_async(&mut conn)).await?;
        let seconds = |ms: i64| (ms.max(0) as u64).div_ceil(1000);
        Ok(Verdict {
            allowed: allowed == 1,
            limit: per_minute,
            remaining: remaining.clamp(0, i64::from(per_minute)) as u32,
            reset_secs: seconds(reset_ms),
            retry_after_secs: seconds(retry_ms).max(u64::from(allowed != 1)),
        })
    }

    /// Whether this node leads `role` (one node of the cluster at a time): takes the lead if
    /// nobody holds it, keeps it for `ttl` if this node does. A leader that stops renewing
    /// (dead, or cut off from Redis) loses it after `ttl`.
    pub async fn lead(&self, role: &str, ttl: Duration) -> Result<bool, String> {
        self.hold(&format!("leader:{role}"), ttl).await
    }

    /// Keeps this node's hold on `name` (a lease or a lead) for `ttl`, taking it again if it
    /// lapsed and nobody took it meanwhile; false if another node holds it.
    pub async fn hold(&self, name: &str, ttl: Duration) -> Result<bool, String> {
        let mut conn = self.connection(Kind::Lease).await?;
        let mut invocation = self.lead.prepare_invoke();
        invocation.key(self.key(name)).arg(&self.node_id).arg(ttl.as_millis() as u64);
        let held: i64 = self.call(Kind::Lease, invocation.invoke_async(&mut conn)).await?;
        Ok(held == 1)
    }

    /// Takes `name` for this node for `ttl` unless another node holds it (`SET NX PX`);
    /// answers the holder, this node's id when it took it.
    pub async fn acquire(&self, name: &str, ttl: Duration) -> Result<String, String> {
        let mut conn = self.connection(Kind::Lease).await?;
        let mut invocation = self.acquire.prepare_invoke();
        invocation.key(self.key(name)).arg(&self.node_id).arg(ttl.as_millis() as u64);
        self.call(Kind::Lease, invocation.invoke_async(&mut conn)).await
    }

    /// Gives `name` up if this node holds it.
    pub async fn release(&self, name: &str) -> Result<(), String> {
        let mut conn = self.connection(Kind::Lease).await?;
        let mut invocation = self.release.prepare_invoke();
        invocation.key(self.key(name)).arg(&self.node_id);
        self.call(Kind::Lease, invocation.invoke_async::<i64>(&mut conn)).await.map(drop)
    }

    /// The node leading `role`, if any.
    pub async fn leader(&self, role: &str) -> Result<Option<String>, String> {
        self.holder(&format!("leader:{role}")).await
    }

    /// The node holding `name` (a lease or a lead), if any.
    pub async fn holder(&self, name: &str) -> Result<Option<String>, String> {
        let mut conn = self.connection(Kind::Lease).await?;
        self.call(Kind::Lease, conn.get(self.key(name))).await
    }

    /// Publishes `payload` on `channel` (a key of this cluster); answers how many subscribers
    /// received it, when Redis can tell: a Redis Cluster counts only the subscribers of the
    /// node that took the message, not those it passed it on to.
    pub async fn publish(&self, channel: &str, payload: &str) -> Result<Option<i64>, String> {
        let mut conn = self.connection(Kind::Bus).await?;
        let heard = self.call(Kind::Bus, conn.publish::<_, _, i64>(self.key(channel), payload)).await?;
        Ok(matches!(self.target, Target::Single { .. }).then_some(heard))
    }

    /// Publishes every payload on `channel`, in order, in one pipeline.
    pub async fn publish_all(&self, channel: &str, payloads: &[String]) -> Result<(), String> {
        let mut conn = self.connection(Kind::Bus).await?;
        let channel = self.key(channel);
        let mut pipeline = redis::pipe();
        for payload in payloads {
            pipeline.publish(&channel, payload).ignore();
        }
        self.call(Kind::Bus, pipeline.query_async::<()>(&mut conn)).await
    }

    /// A dedicated connection subscribed to `channel`, for as long as the returned stream lasts.
    pub async fn subscription(&self, channel: &str) -> Result<redis::aio::PubSubStream, String> {
        let servers = match &self.target {
            Target::Single { client, .. } => std::slice::from_ref(client),
            Target::Cluster { seeds, .. } => seeds.as_slice(),
        };
        let mut last_error = String::from("no Redis server");
        for server in servers {
            let connect = async {
                let mut pubsub = server.get_async_pubsub().await?;
                pubsub.subscribe(self.key(channel)).await?;
                Ok::<_, redis::RedisError>(pubsub.into_on_message())
            };
            match tokio::time::timeout(CALL_TIMEOUT * 3, connect).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(err)) => last_error = err.to_string(),
                Err(_) => last_error = "no answer from Redis".into(),
            }
        }
        Err(last_error)
    }

    /// Gives the next turn of the rota `name` to whichever of `candidates` had theirs longest
    /// ago (ties go to the earlier candidate); atomic for the whole cluster.
    pub async fn take_turn(&self, name: &str, candidates: &[i64]) -> Result<Option<i64>, String> {
        let mut conn = self.connection(Kind::Presence).await?;
        let mut invocation = self.take_turn.prepare_invoke();
        invocation.key(self.key(&format!("{name}:turns"))).key(self.key(&format!("{name}:next")));
        for candidate in candidates {
            invocation.arg(candidate);
        }
        let chosen: Option<String> = self.call(Kind::Presence, invocation.invoke_async(&mut conn)).await?;
        Ok(chosen.and_then(|id| id.parse().ok()))
    }

    /// Notes (or un-notes) this node in the set `name`, e.g. the nodes that have an agent's
    /// sockets.
    pub async fn mark(&self, name: &str, on: bool) -> Result<(), String> {
        let mut conn = self.connection(Kind::Presence).await?;
        let key = self.key(name);
        match on {
            true => self.call(Kind::Presence, conn.sadd::<_, _, ()>(key, &self.node_id)).await,
            false => self.call(Kind::Presence, conn.srem::<_, _, ()>(key, &self.node_id)).await,
        }
    }

    /// The live nodes (current heartbeat) noted in the set `name`.
    pub async fn marked_by_live_nodes(&self, name: &str) -> Result<Vec<String>, String> {
        let mut conn = self.connection(Kind::Presence).await?;
        let marked: Vec<String> = self.call(Kind::Presence, conn.smembers(self.key(name))).await?;
        let live = self.nodes().await?;
        Ok(marked.into_iter().filter(|node| live.contains(node)).collect())
    }

    /// Announces this node every `every`; a node missing three beats is gone.
    pub fn start_heartbeat(self: &Arc<Self>, every: Duration) {
        let redis = self.clone();
        let window = every.as_millis() as i64 * 3;
        redis.window_ms.store(window, Ordering::Relaxed);
        actix_rt::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Ok(mut conn) = redis.connection(Kind::Membership).await else { continue };
                let now = crate::storage::now_ms();
                let mut beat = redis::pipe();
                beat.zadd(redis.key("nodes"), &redis.node_id, now).ignore();
                beat.zrembyscore(redis.key("nodes"), "-inf", now - window).ignore();
                let _ = redis.call(Kind::Membership, beat.query_async::<()>(&mut conn)).await;
            }
        });
    }

    /// The nodes whose heartbeat is current (this one included, once it has beaten).
    pub async fn nodes(&self) -> Result<Vec<String>, String> {
        let mut conn = self.connection(Kind::Membership).await?;
        let since = crate::storage::now_ms() - self.window_ms.load(Ordering::Relaxed);
        self.call(Kind::Membership, conn.zrangebyscore(self.key("nodes"), since, "+inf")).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn slow() -> redis::RedisResult<i64> {
        Err(redis::RedisError::from((redis::ErrorKind::Io, "no answer in time")))
    }

    #[tokio::test]
    async fn a_failed_call_rests_only_calls_of_its_own_kind() {
        let redis = Redis::connect("redis://127.0.0.1:1", "test:", "node").unwrap();
        assert!(redis.call(Kind::RateLimit, async { slow() }).await.is_err());

        // Other kinds still call Redis (these calls are made and answer).
        let published = AtomicBool::new(false);
        let bus = redis.call(Kind::Bus, async { Ok(published.swap(true, Ordering::Relaxed)) }).await;
        assert_eq!(bus, Ok(false));
        assert!(published.load(Ordering::Relaxed), "a slow rate-limit call must not stop the bus");
        assert_eq!(redis.call(Kind::Lease, async { Ok(1) }).await, Ok(1));

        // Rate limits rest: their next call is not made at all.
        let made = AtomicBool::new(false);
        let limited = redis.call(Kind::RateLimit, async { Ok(made.swap(true, Ordering::Relaxed)) }).await;
        assert!(limited.is_err());
        assert!(!made.load(Ordering::Relaxed));
        let skipped: HashMap<&str, u64> = redis.skipped().into_iter().map(|(kind, n)| (kind.name(), n)).collect();
        assert_eq!((skipped["rate_limit"], skipped["bus"], skipped["lease"]), (1, 0, 0));
        assert!(redis.failing_for(Kind::RateLimit).is_some());
        assert!(redis.failing_for(Kind::Bus).is_none() && redis.failing_for(Kind::Lease).is_none());
    }
}
