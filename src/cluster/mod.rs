//! Coordination between the parts of a node (and, with Redis, between nodes): event fan-out
//! to every subscriber of a conversation. Without `REDIS_URL`, everything is in-process.

pub mod local;

pub use local::LocalBus;
