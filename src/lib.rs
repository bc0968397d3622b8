//! frontdesk: a self-hosted AI front desk.
//!
//! The library holds everything; `main.rs` is a thin CLI over it. The live runtime (one actor
//! per conversation) is the `frontdesk-actors` crate; this crate gives it its adapters: the
//! database ([`db`]), the brains ([`brain`]), event fan-out ([`cluster`]), and the transports
//! ([`http`] for REST and SSE, [`ws`] for the widget socket), all over the one chat core in
//! [`chat`].

pub mod admission;
pub mod booking;
pub mod brain;
pub mod chat;
pub mod check;
pub mod cluster;
pub mod compat;
pub mod config;
pub mod crm;
pub mod crypto;
pub mod db;
pub mod error;
pub mod flows;
pub mod handoff;
pub mod http;
pub mod jobs;
pub mod knowledge;
pub mod net_guard;
pub mod replay;
pub mod revocation;
pub mod secrets;
pub mod startup;
pub mod sweeps;
pub mod telemetry;
pub mod text;
pub mod web;
pub mod webhooks;
pub mod ws;
