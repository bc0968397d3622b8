//! The booking actor: one `WorkspaceBooker` per workspace runs that workspace's reservations,
//! holds and reschedules one at a time, so that racing requests queue in memory instead of
//! fighting over the database lock (SQLite) or the exclusion constraint (PostgreSQL), and a
//! conflict is decided before the next request looks. The database stays the guarantee: with
//! several nodes, each has its own actor and the transaction still refuses any overlap.
//!
//! The work itself runs on the blocking pool through [`Db::run`]; the actor only orders it.

use std::collections::HashMap;
use std::sync::Mutex;

use actix::prelude::*;

use crate::db::{Db, DbConn, DbError};

type Job = Box<dyn FnOnce(&mut DbConn) -> Box<dyn std::any::Any + Send> + Send>;

/// One unit of work on a workspace's schedule.
struct Serialised(Job);

impl Message for Serialised {
    type Result = Result<Box<dyn std::any::Any + Send>, DbError>;
}

struct WorkspaceBooker {
    db: Db,
}

impl Actor for WorkspaceBooker {
    type Context = Context<Self>;
}

impl Handler<Serialised> for WorkspaceBooker {
    type Result = AtomicResponse<Self, Result<Box<dyn std::any::Any + Send>, DbError>>;

    fn handle(&mut self, msg: Serialised, _ctx: &mut Self::Context) -> Self::Result {
        let db = self.db.clone();
        // Atomic: the next job of this workspace starts only when this one has committed.
        AtomicResponse::new(Box::pin(async move { db.run(move |conn| Ok(msg.0(conn))).await }.into_actor(self)))
    }
}

/// Finds or starts a workspace's booker and runs jobs through it.
pub struct BookingDesk {
    db: Db,
    bookers: Mutex<HashMap<i64, Addr<WorkspaceBooker>>>,
}

impl BookingDesk {
    pub fn new(db: Db) -> Self {
        Self { db, bookers: Mutex::default() }
    }

    fn booker(&self, workspace_id: i64) -> Addr<WorkspaceBooker> {
        let mut bookers = self.bookers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = bookers.entry(workspace_id).or_insert_with(|| WorkspaceBooker { db: self.db.clone() }.start());
        if !entry.connected() {
            *entry = WorkspaceBooker { db: self.db.clone() }.start();
        }
        entry.clone()
    }

    /// Runs `job` after every earlier job of the same workspace has finished.
    pub async fn run<T, F>(&self, workspace_id: i64, job: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> T + Send + 'static,
    {
        let boxed: Job = Box::new(move |conn| Box::new(job(conn)));
        let output = self
            .booker(workspace_id)
            .send(Serialised(boxed))
            .await
            .map_err(|err| DbError::Task(format!("booking actor unavailable: {err}")))??;
        output.downcast::<T>().map(|b| *b).map_err(|_| DbError::Task("booking job returned the wrong type".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[actix_rt::test]
    async fn jobs_of_one_workspace_never_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("desk.db").display());
        let db = Db::connect(&url, 4).unwrap();
        let desk = Arc::new(BookingDesk::new(db));
        let running = Arc::new(AtomicUsize::new(0));
        let overlaps = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (desk, running, overlaps) = (desk.clone(), running.clone(), overlaps.clone());
            tasks.push(actix_rt::spawn(async move {
                desk.run(1, move |_conn| {
                    if running.fetch_add(1, Ordering::SeqCst) > 0 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    running.fetch_sub(1, Ordering::SeqCst);
                    7u32
                })
                .await
                .unwrap()
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), 7);
        }
        assert_eq!(overlaps.load(Ordering::SeqCst), 0);
    }
}
