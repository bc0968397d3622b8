//! The booking actor ([`frontdesk_actors::BookingDesk`]) given a database connection: each job
//! of a workspace runs with a pooled connection, after the workspace's earlier jobs. It also
//! carries the operator's booking horizon, so every caller that books through it applies the same.

use frontdesk_actors::BookingDesk as Desk;

use super::Horizon;
use crate::storage::{Db, DbConn, DbError};

pub struct BookingDesk {
    db: Db,
    desk: Desk,
    horizon: Horizon,
}

impl BookingDesk {
    pub fn new(db: Db) -> Self {
        Self { db, desk: Desk::new(), horizon: Horizon::default() }
    }

    pub fn with_horizon(mut self, horizon: Horizon) -> Self {
        self.horizon = horizon;
        self
    }

    /// How far ahead bookings are taken.
    pub fn horizon(&self) -> Horizon {
        self.horizon
    }

    /// Runs `job` with a connection, after every earlier job of the same workspace.
    pub async fn run<T, F>(&self, workspace_id: i64, job: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> T + Send + 'static,
    {
        let db = self.db.clone();
        self.desk
            .run(workspace_id, move || {
                db.conn().map(|mut conn| {
                    let done = job(&mut conn);
                    // The job is a unit of work like `Db::run`'s: what it queued is due now (a
                    // job that rolled back only wakes the dispatcher for nothing).
                    crate::storage::outbox::end_unit_of_work(true);
                    done
                })
            })
            .await
            .map_err(|err| DbError::Task(err.to_string()))?
    }
}
