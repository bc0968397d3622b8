//! Adapters for the documented APIs frontdesk serves: request and response shapes only, each
//! translated into the same core calls the REST API makes.
//!
//! A compatible route reads what its document shows and ignores any other body field or query
//! parameter: a real SDK sends more than its document (a user object, a stream flag) and a
//! browser adds cache-busters, and neither may turn a working call into a 400. A documented
//! field of the wrong type is still refused, naming it. frontdesk's own `/api` routes stay strict.

pub mod chataibot;
pub mod chatgenius;
pub mod chatorex;
pub mod chatsupport;
pub mod cxgenie;
pub mod cxgenie_customers;
pub mod cxgenie_ids;
