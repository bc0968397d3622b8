//! Integration tests: one binary, the real server, both backends.
//!
//! Every scenario is an `async fn(Backend)`; `on_both_backends!` turns each into a `sqlite` and
//! a `postgres` test.

mod helpers;

mod admission;
mod agents;
mod bad_input;
mod booking_horizon;
mod bookings;
mod bounded;
mod browser;
mod chat_booking;
mod chatorex;
mod cli;
mod cluster;
mod console_auth;
mod crm;
mod cxgenie_customers;
mod deadlines;
mod durability;
mod embeddings;
mod failover;
mod first_start;
mod flow_targets;
mod flows;
mod full_lists;
mod idempotency;
mod inbox_pages;
mod knowledge;
mod knowledge_queue;
mod layers;
mod lenient_compat;
mod logs;
mod model;
mod model_profiles;
mod one_writer;
mod pdf;
mod protocol;
mod rate_limits;
mod real_model;
mod rest;
mod revocation;
mod schedule;
mod schema;
mod site;
mod sse;
mod stories;
mod tenancy;
mod text_and_bodies;
mod vocabulary;
mod webhook_receiver;
mod webhooks;
mod websocket;
mod widget;

/// Declares `<scenario>::sqlite` and `<scenario>::postgres` tests for each scenario.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}
