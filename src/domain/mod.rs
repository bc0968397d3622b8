//! The domain: the rules of a front desk, called by every transport. The chat core
//! ([`chat::Chat`]) runs conversations through their sessions; bookings, the CRM, knowledge,
//! hand-off and webhooks each keep their rules in one module.

pub mod access;
pub mod admission;
pub mod agents;
pub mod booking;
pub mod chat;
pub mod conversations;
pub mod crm;
pub mod customers;
pub mod directory;
pub mod events;
pub mod flows;
pub mod forms;
pub mod handoff;
pub mod idempotency;
pub mod inbox;
pub mod knowledge;
pub mod leads;
pub mod notes;
pub mod patients;
pub mod presence;
pub mod rate_limit;
pub mod replay;
pub mod schedule;
pub mod store;
pub mod webhooks;
