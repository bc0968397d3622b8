//! What only several nodes need (with `REDIS_URL`): membership, shared rate limits, events
//! carried between nodes, control messages, and which node runs each conversation. A single
//! node runs none of it: its events go through [`crate::domain::events::LocalBus`] alone.

pub mod bus;
pub mod control;
pub mod ownership;
pub mod redis;
