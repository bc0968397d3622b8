//! The one mechanism for background work. A job says what one round of its work is
//! ([`BackgroundJob`]); a [`JobRunner`] actor runs its rounds: again at once while a round says
//! there is more, on a wake-up (a commit that queued work), at its period as a safety net, after
//! a failure with a growing back-off, and, for a job that must run on one node of a cluster at
//! a time, only while this node holds the job's lead in Redis.
//!
//! Jobs that drain a queue keep it in the database with leases (webhook deliveries, knowledge
//! sources), so a node that dies mid-round only delays the work: another node, or this one
//! after a restart, takes it when the lease lapses. Rounds, failures and queue depths are
//! counted per job for `/metrics` ([`stats`]).

pub mod sweeps;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix::prelude::*;
use futures::future::LocalBoxFuture;
use tokio::sync::Notify;

use crate::cluster::redis::Redis;

/// The longest pause after failures in a row, unless a job says otherwise.
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What a round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Nothing (more) to do: wait for a wake-up or the period.
    Idle,
    /// Work was done and more may be waiting: run again at once.
    More,
}

/// A kind of background work.
pub trait BackgroundJob: 'static {
    /// Names the job in logs and metrics.
    const NAME: &'static str;

    /// Does one round of work. An error is logged and counted, and the next round waits a
    /// back-off that doubles with each failure in a row.
    fn round(self: Arc<Self>) -> LocalBoxFuture<'static, Result<Round, String>>;

    /// How many units of work wait (a queue's depth), for `/metrics`; `None` when the job has
    /// no queue. Asked after each round.
    fn depth(self: Arc<Self>) -> LocalBoxFuture<'static, Option<i64>> {
        Box::pin(async { None })
    }
}

/// When a job's rounds run.
#[derive(Clone)]
pub struct Schedule {
    /// The safety-net period (or, for a periodic job, its period).
    pub every: Duration,
    /// Wakes the runner as soon as work was queued.
    pub wake: Option<Arc<Notify>>,
    /// The longest pause after failures in a row.
    pub max_backoff: Duration,
    /// Run only on the node that holds this lead in Redis (renewed each round).
    pub lead: Option<Lead>,
}

/// A job's lead among the nodes of a cluster.
#[derive(Clone)]
pub struct Lead {
    pub redis: Arc<Redis>,
    pub role: &'static str,
    /// How long the lead holds without renewal.
    pub ttl: Duration,
}

impl Schedule {
    /// Rounds at `every`, woken by nothing else; after failures, rounds pause up to 30 s (a
    /// database back from an outage is worked on again within that).
    pub fn every(every: Duration) -> Self {
        Self { every, wake: None, max_backoff: DEFAULT_MAX_BACKOFF, lead: None }
    }

    /// Also woken by `wake`.
    pub fn woken_by(mut self, wake: Arc<Notify>) -> Self {
        self.wake = Some(wake);
        self
    }

    /// Only on the node leading `role` (when there is a Redis to elect one).
    pub fn led(mut self, redis: Option<Arc<Redis>>, role: &'static str) -> Self {
        self.lead = redis.map(|redis| Lead { redis, role, ttl: self.every * 3 });
        self
    }
}

/// One job kind's counters.
#[derive(Debug, Default)]
pub struct JobStats {
    pub rounds: AtomicU64,
    pub failures: AtomicU64,
    /// Failures since the last round that worked; 0 when healthy.
    pub failing: AtomicU64,
    /// The queue's depth after the last round; -1 when the job has no queue.
    pub depth: AtomicI64,
}

/// Every job kind's counters, by name (a handful of entries, one per job kind).
pub fn stats() -> Vec<(&'static str, Arc<JobStats>)> {
    registry().lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (*k, v.clone())).collect()
}

fn registry() -> &'static Mutex<BTreeMap<&'static str, Arc<JobStats>>> {
    static JOBS: OnceLock<Mutex<BTreeMap<&'static str, Arc<JobStats>>>> = OnceLock::new();
    JOBS.get_or_init(Default::default)
}

fn stats_of(name: &'static str) -> Arc<JobStats> {
    registry()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(name)
        .or_insert_with(|| Arc::new(JobStats { depth: AtomicI64::new(-1), ..JobStats::default() }))
        .clone()
}

/// Runs one job's rounds, one at a time.
pub struct JobRunner<J: BackgroundJob> {
    job: Arc<J>,
    schedule: Schedule,
    stats: Arc<JobStats>,
    running: bool,
    /// Woken while a round ran: run another when it ends.
    again: bool,
    /// Failures in a row; rounds wait out the back-off meanwhile.
    failures: u32,
    backing_off: bool,
}

impl<J: BackgroundJob> JobRunner<J> {
    pub fn new(job: J, schedule: Schedule) -> Self {
        Self::shared(Arc::new(job), schedule)
    }

    /// A runner of a job other runners share (several workers draining one queue).
    pub fn shared(job: Arc<J>, schedule: Schedule) -> Self {
        Self { job, schedule, stats: stats_of(J::NAME), running: false, again: false, failures: 0, backing_off: false }
    }

    fn backoff(&self) -> Duration {
        let doubled = self.schedule.every.saturating_mul(1 << self.failures.min(16));
        doubled.min(self.schedule.max_backoff.max(self.schedule.every))
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Tick;

#[derive(Message)]
#[rtype(result = "()")]
struct BackoffOver;

impl<J: BackgroundJob> Actor for JobRunner<J> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.schedule.every, |_, ctx| ctx.notify(Tick));
        if let Some(wake) = self.schedule.wake.clone() {
            let me = ctx.address();
            ctx.spawn(
                async move {
                    loop {
                        wake.notified().await;
                        if me.try_send(Tick).is_err() {
                            return;
                        }
                    }
                }
                .into_actor(self),
            );
        }
        ctx.notify(Tick);
    }
}

impl<J: BackgroundJob> Handler<Tick> for JobRunner<J> {
    type Result = ();

    fn handle(&mut self, _: Tick, ctx: &mut Self::Context) {
        if self.backing_off {
            return;
        }
        if self.running {
            self.again = true;
            return;
        }
        self.running = true;
        self.again = false;
        let (job, lead) = (self.job.clone(), self.schedule.lead.clone());
        let round = async move {
            if let Some(lead) = &lead {
                match lead.redis.lead(lead.role, lead.ttl).await {
                    Ok(true) => {}
                    Ok(false) => return (Ok(Round::Idle), None),
                    // Cut off from Redis: run here too; the jobs' conditional updates keep each
                    // change single.
                    Err(_) => {}
                }
            }
            let done = job.clone().round().await;
            (done, job.depth().await)
        };
        ctx.spawn(round.into_actor(self).map(|(done, depth), act, ctx| {
            act.running = false;
            act.stats.rounds.fetch_add(1, Ordering::Relaxed);
            act.stats.depth.store(depth.unwrap_or(-1), Ordering::Relaxed);
            match done {
                Ok(round) => {
                    act.failures = 0;
                    act.stats.failing.store(0, Ordering::Relaxed);
                    if round == Round::More || std::mem::take(&mut act.again) {
                        ctx.notify(Tick);
                    }
                }
                Err(error) => {
                    act.failures = act.failures.saturating_add(1);
                    act.stats.failures.fetch_add(1, Ordering::Relaxed);
                    act.stats.failing.store(act.failures as u64, Ordering::Relaxed);
                    let pause = act.backoff();
                    tracing::warn!(job = J::NAME, %error, retry_in = ?pause, "background job round failed");
                    act.backing_off = true;
                    ctx.notify_later(BackoffOver, pause);
                }
            }
        }));
    }
}

impl<J: BackgroundJob> Handler<BackoffOver> for JobRunner<J> {
    type Result = ();

    fn handle(&mut self, _: BackoffOver, ctx: &mut Self::Context) {
        self.backing_off = false;
        ctx.notify(Tick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Fails its first two rounds, then has three units of work, one per round.
    struct Countdown {
        calls: AtomicUsize,
        left: AtomicI64,
        done: Arc<Notify>,
    }

    impl BackgroundJob for Countdown {
        const NAME: &'static str = "test_countdown";

        fn round(self: Arc<Self>) -> LocalBoxFuture<'static, Result<Round, String>> {
            Box::pin(async move {
                if self.calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    return Err("not yet".into());
                }
                let left = self.left.fetch_sub(1, Ordering::SeqCst) - 1;
                if left <= 0 {
                    self.done.notify_one();
                    return Ok(Round::Idle);
                }
                Ok(Round::More)
            })
        }

        fn depth(self: Arc<Self>) -> LocalBoxFuture<'static, Option<i64>> {
            Box::pin(async move { Some(self.left.load(Ordering::SeqCst).max(0)) })
        }
    }

    #[actix_rt::test]
    async fn a_job_backs_off_after_failures_then_drains_its_queue() {
        let done = Arc::new(Notify::new());
        let job = Arc::new(Countdown { calls: AtomicUsize::new(0), left: AtomicI64::new(3), done: done.clone() });
        let schedule = Schedule {
            every: Duration::from_millis(5),
            wake: None,
            max_backoff: Duration::from_millis(20),
            lead: None,
        };
        let _runner = JobRunner::shared(job.clone(), schedule).start();
        tokio::time::timeout(Duration::from_secs(10), done.notified()).await.expect("the queue drains");
        // Two failures, then three rounds of work (the period may add an idle round after).
        assert!(job.calls.load(Ordering::SeqCst) >= 5);
        let stats = stats().into_iter().find(|(name, _)| *name == "test_countdown").expect("registered").1;
        assert_eq!(stats.failures.load(Ordering::Relaxed), 2);
        // The last round's depth and health are recorded once its future ends.
        for _ in 0..100 {
            if stats.depth.load(Ordering::Relaxed) == 0 {
                break;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(stats.depth.load(Ordering::Relaxed), 0);
        assert_eq!(stats.failing.load(Ordering::Relaxed), 0);
    }
}
