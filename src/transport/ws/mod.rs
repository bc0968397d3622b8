//! WebSocket endpoints (the widget's and the agents'), on actix-web-actors, and the keep-alive
//! they share. The crate is deprecated upstream in favour of actix-ws; the design asks for it,
//! so it stays inside this module and a later move touches nothing else.

pub mod agent;
pub mod protocol;
pub mod visitor;

use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext};
use actix_web_actors::ws::{CloseCode, CloseReason, WebsocketContext};
use tokio::sync::watch;

/// How often a socket is pinged, and how long it may stay silent before it is dropped.
const HEARTBEAT: Duration = Duration::from_secs(15);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(45);

/// What a socket is told when the server shuts down gracefully (close code 1012, "service
/// restart"): another node, or this one once it is back, takes the conversation up again.
pub const RECONNECT_HINT: &str = "the server is restarting: reconnect and resume from your last seq";

/// Pings the client every 15 s and stops the socket when it has not been heard from for 45 s;
/// `heard_from` reads when it last was. When `shutdown` turns true, closes the socket with code
/// 1012 and [`RECONNECT_HINT`].
pub(crate) fn keep_alive<A>(
    ctx: &mut WebsocketContext<A>,
    heard_from: fn(&A) -> Instant,
    mut shutdown: watch::Receiver<bool>,
) where
    A: Actor<Context = WebsocketContext<A>>,
{
    let shutting_down = async move { shutdown.wait_for(|down| *down).await.is_ok() };
    ctx.spawn(actix::fut::wrap_future::<_, A>(shutting_down).map(|shutting_down, _act, ctx| {
        if shutting_down {
            ctx.close(Some(CloseReason { code: CloseCode::Restart, description: Some(RECONNECT_HINT.into()) }));
            ctx.stop();
        }
    }));
    ctx.run_interval(HEARTBEAT, move |act, ctx| {
        if heard_from(act).elapsed() > CLIENT_TIMEOUT {
            ctx.stop();
        } else {
            ctx.ping(b"");
        }
    });
}
