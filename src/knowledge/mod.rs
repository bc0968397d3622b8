//! The knowledge base (issue 5, in progress): turning sources into chunks ([`chunk`]) and a
//! bot's chunks and Q&A pairs into a BM25 index built from the database's rows ([`index`]),
//! kept per bot while its sources are unchanged ([`cache`]). The
//! learning queue's rows are in [`crate::db::knowledge`]; fetching, the learning worker,
//! answers with citations and the routes arrive with the rest of the issue.

pub mod cache;
pub mod chunk;
pub mod extract;
pub mod fetch;
pub mod files;
pub mod index;
