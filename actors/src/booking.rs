//! The booking actor: one `BookingActor` per workspace runs that workspace's reservations,
//! holds, reschedules and cancellations one at a time. Racing requests queue in its mailbox
//! instead of fighting over the database (SQLite's write lock, PostgreSQL's exclusion
//! constraint), so each is decided against everything committed before it. The database stays
//! the guarantee: with several nodes each has its own actor, and the transaction still refuses
//! any overlap.
//!
//! A job is opaque here (it carries its own connection to storage); it runs on the blocking
//! pool, never on the actor's thread, and the next job of the workspace starts only when it
//! has finished.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Mutex;

use actix::prelude::*;

type Job = Box<dyn FnOnce() -> Box<dyn Any + Send> + Send>;

#[derive(Debug, Clone, thiserror::Error)]
#[error("booking actor unavailable: {0}")]
pub struct DeskError(pub String);

/// One unit of work on a workspace's schedule.
struct Serialised(Job);

impl Message for Serialised {
    type Result = Result<Box<dyn Any + Send>, DeskError>;
}

pub struct BookingActor;

impl Actor for BookingActor {
    type Context = Context<Self>;
}

impl Handler<Serialised> for BookingActor {
    type Result = AtomicResponse<Self, Result<Box<dyn Any + Send>, DeskError>>;

    fn handle(&mut self, msg: Serialised, _ctx: &mut Self::Context) -> Self::Result {
        // Atomic: the next job of this workspace starts only when this one is done.
        AtomicResponse::new(Box::pin(
            async move { tokio::task::spawn_blocking(msg.0).await.map_err(|err| DeskError(err.to_string())) }
                .into_actor(self),
        ))
    }
}

/// Finds or starts a workspace's booking actor and runs jobs through it.
#[derive(Default)]
pub struct BookingDesk {
    actors: Mutex<HashMap<i64, Addr<BookingActor>>>,
}

impl BookingDesk {
    pub fn new() -> Self {
        Self::default()
    }

    fn actor(&self, workspace_id: i64) -> Addr<BookingActor> {
        let mut actors = self.actors.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = actors.entry(workspace_id).or_insert_with(|| BookingActor.start());
        if !entry.connected() {
            *entry = BookingActor.start();
        }
        entry.clone()
    }

    /// Runs `job` on the blocking pool after every earlier job of the same workspace.
    pub async fn run<T, F>(&self, workspace_id: i64, job: F) -> Result<T, DeskError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let boxed: Job = Box::new(move || Box::new(job()));
        let output =
            self.actor(workspace_id).send(Serialised(boxed)).await.map_err(|err| DeskError(err.to_string()))??;
        output.downcast::<T>().map(|b| *b).map_err(|_| DeskError("a job returned the wrong type".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[actix_rt::test]
    async fn jobs_of_one_workspace_never_overlap_and_others_run_beside_them() {
        let desk = Arc::new(BookingDesk::new());
        let running = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let overlaps = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..40 {
            let (desk, running, overlaps) = (desk.clone(), running.clone(), overlaps.clone());
            let workspace = i % 2;
            tasks.push(actix_rt::spawn(async move {
                desk.run(workspace as i64, move || {
                    if running[workspace].fetch_add(1, Ordering::SeqCst) > 0 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    running[workspace].fetch_sub(1, Ordering::SeqCst);
                    i
                })
                .await
                .unwrap()
            }));
        }
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap(), i, "each caller gets its own job's result");
        }
        assert_eq!(overlaps.load(Ordering::SeqCst), 0);
    }
}
