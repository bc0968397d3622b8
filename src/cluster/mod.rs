//! Coordination between the parts of a node (and, with Redis, between nodes): event fan-out
//! to every subscriber of a conversation, and (with `REDIS_URL`) membership and shared rate
//! limits across nodes, and which node runs each conversation. Without `REDIS_URL`, everything
//! is in-process.

pub mod bus;
pub mod control;
pub mod local;
pub mod ownership;
pub mod redis;

pub use local::LocalBus;
