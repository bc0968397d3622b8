//! WebSocket endpoints (the widget's and the agents'), on actix-web-actors, and the keep-alive
//! they share. The crate is deprecated upstream in favour of actix-ws; the design asks for it,
//! so it stays inside this module and a later move touches nothing else.

pub mod agent;
pub mod visitor;

use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, AsyncContext};
use actix_web_actors::ws::WebsocketContext;

/// How often a socket is pinged, and how long it may stay silent before it is dropped.
const HEARTBEAT: Duration = Duration::from_secs(15);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(45);

/// Pings the client every 15 s and stops the socket when it has not been heard from for 45 s;
/// `heard_from` reads when it last was.
pub(crate) fn keep_alive<A>(ctx: &mut WebsocketContext<A>, heard_from: fn(&A) -> Instant)
where
    A: Actor<Context = WebsocketContext<A>>,
{
    ctx.run_interval(HEARTBEAT, move |act, ctx| {
        if heard_from(act).elapsed() > CLIENT_TIMEOUT {
            ctx.stop();
        } else {
            ctx.ping(b"");
        }
    });
}
