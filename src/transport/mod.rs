//! The transports: everything that speaks to clients. They translate shapes and call the
//! domain ([`crate::domain`]); the rules live there.

pub mod compat;
pub mod http;
pub mod revocation;
pub mod web;
pub mod ws;
