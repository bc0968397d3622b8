//! Typed ids: a workspace's id is a [`WorkspaceId`], never a bare integer, from the caller's
//! credential through the domain to every query, so that the tenant an operation runs in cannot
//! be swapped by accident with another id of the same call (`(workspace_id, id)` pairs are
//! everywhere). It is stored and sent as the plain integer it wraps.
//!
//! A conversation's id is a [`ConversationId`], defined by the actors crate (it is the key
//! their registry finds a session by) and used as is from the request that names it to the row.

use std::fmt;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::BigInt;
use serde::{Deserialize, Serialize};

pub use frontdesk_actors::ConversationId;

/// The id of a workspace (a tenant).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize, AsExpression, FromSqlRow,
)]
#[diesel(sql_type = BigInt)]
#[serde(transparent)]
pub struct WorkspaceId(pub i64);

impl WorkspaceId {
    /// The integer it wraps, for what lies outside the typed world (an actor message, a metric
    /// label, a Redis key).
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<WorkspaceId> for i64 {
    fn from(id: WorkspaceId) -> i64 {
        id.0
    }
}

impl<DB> ToSql<BigInt, DB> for WorkspaceId
where
    DB: Backend,
    i64: ToSql<BigInt, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.0.to_sql(out)
    }
}

impl<DB> FromSql<BigInt, DB> for WorkspaceId
where
    DB: Backend,
    i64: FromSql<BigInt, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        i64::from_sql(bytes).map(WorkspaceId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_reads_and_writes_as_the_integer_it_wraps() {
        let id = WorkspaceId(42);
        assert_eq!(serde_json::to_string(&id).unwrap(), "42");
        assert_eq!(serde_json::from_str::<WorkspaceId>("42").unwrap(), id);
        assert_eq!(id.to_string(), "42");
    }
}
