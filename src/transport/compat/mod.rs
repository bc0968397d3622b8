//! Adapters for the documented APIs frontdesk serves: request and response shapes only, each
//! translated into the same core calls the REST API makes.

pub mod chataibot;
pub mod chatgenius;
pub mod chatorex;
pub mod chatsupport;
pub mod cxgenie;
pub mod cxgenie_customers;
