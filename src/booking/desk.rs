//! The booking actor ([`frontdesk_actors::BookingDesk`]) given a database connection: each job
//! of a workspace runs with a pooled connection, after the workspace's earlier jobs.

use frontdesk_actors::BookingDesk as Desk;

use crate::db::{Db, DbConn, DbError};

pub struct BookingDesk {
    db: Db,
    desk: Desk,
}

impl BookingDesk {
    pub fn new(db: Db) -> Self {
        Self { db, desk: Desk::new() }
    }

    /// Runs `job` with a connection, after every earlier job of the same workspace.
    pub async fn run<T, F>(&self, workspace_id: i64, job: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> T + Send + 'static,
    {
        let db = self.db.clone();
        self.desk
            .run(workspace_id, move || db.conn().map(|mut conn| job(&mut conn)))
            .await
            .map_err(|err| DbError::Task(err.to_string()))?
    }
}
