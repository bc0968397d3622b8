//! WebSocket endpoints, on actix-web-actors. The crate is deprecated upstream in favour of
//! actix-ws; the design asks for it, so it stays inside this module and a later move touches
//! nothing else.

pub mod agent;
pub mod visitor;
