//! frontdesk: a self-hosted AI front desk.
//!
//! The library holds everything; `main.rs` is a thin CLI over it. The live runtime (one actor
//! per conversation) is the `frontdesk-actors` crate. This crate is in layers, each a folder:
//!
//! - [`transport`]: what clients speak — REST and SSE ([`transport::http`]), the widget and
//!   agent sockets ([`transport::ws`]), the five compatible APIs ([`transport::compat`]), the
//!   widget and console files ([`transport::web`]), admission control and revocation;
//! - [`domain`]: the rules — the chat core ([`domain::chat`]), bookings, the CRM, knowledge,
//!   hand-off, webhooks, the one replay rule;
//! - [`brain`]: who answers — the built-in brain, the model brain, flows;
//! - [`storage`]: the database (diesel, SQLite or PostgreSQL), its one writer of messages and
//!   its outbox; it imports nothing from the layers above;
//! - [`jobs`]: background work, one mechanism;
//! - [`cluster`]: what only several nodes need (Redis, forwarding, the event bus across nodes).

pub mod brain;
pub mod check;
pub mod cluster;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod ids;
pub mod jobs;
pub mod net_guard;
pub mod secrets;
pub mod startup;
pub mod status;
pub mod storage;
pub mod telemetry;
pub mod text;
pub mod transport;
