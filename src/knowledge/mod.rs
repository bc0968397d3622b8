//! The knowledge base (issue 5, in progress): turning sources into chunks ([`chunk`]). The
//! learning queue's rows are in [`crate::db::knowledge`]; fetching, the retrieval index and the
//! routes arrive with the rest of the issue.

pub mod chunk;
