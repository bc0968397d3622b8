//! `SessionRegistry`: this node's directory of live conversation sessions.
//!
//! It finds a conversation's session or starts one (the session rehydrates itself from the
//! store), forgets sessions when they stop (idle, or after a panic killed them), and retries a
//! message once on a fresh session when the one it found died under it. That retry is how a
//! panic in one session is survived: the next message restarts it from the database, and no
//! other session notices.
//!
//! Across nodes, the node's ownership layer decides where a conversation lives and hands the
//! registry the session's fencing token: a session is started with it, a session holding an
//! older token is replaced, and the registry tells the layer when a session stops so the
//! conversation's lease can be released.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix::prelude::*;

use crate::ports::{ConversationId, Ports};
use crate::session::{ConversationSession, SessionConfig, SessionError};

use crate::session::Drain;

/// A live session and the fencing token it writes with.
struct Live {
    addr: Addr<ConversationSession>,
    fence: Option<i64>,
}

type Sessions = Arc<Mutex<HashMap<ConversationId, Live>>>;

/// Called with a conversation's id when its session has stopped.
pub type OnStop = Arc<dyn Fn(&ConversationId) + Send + Sync>;

/// Lets a stopping session remove itself, and only itself, from the registry.
#[derive(Clone)]
pub struct Registration {
    sessions: Sessions,
    on_stop: Option<OnStop>,
}

impl Registration {
    pub(crate) fn release(&self, conversation_id: &ConversationId, addr: &Addr<ConversationSession>) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if sessions.get(conversation_id).is_some_and(|live| &live.addr == addr) {
            sessions.remove(conversation_id);
            drop(sessions);
            if let Some(on_stop) = &self.on_stop {
                on_stop(conversation_id);
            }
        }
    }
}

#[derive(Clone)]
pub struct SessionRegistry {
    sessions: Sessions,
    ports: Ports,
    config: SessionConfig,
    on_stop: Option<OnStop>,
}

impl SessionRegistry {
    pub fn new(ports: Ports, config: SessionConfig) -> Self {
        Self { sessions: Arc::default(), ports, config, on_stop: None }
    }

    /// Has `on_stop` called whenever one of this registry's sessions stops.
    pub fn on_stop(mut self, on_stop: OnStop) -> Self {
        self.on_stop = Some(on_stop);
        self
    }

    /// Asks every live session to finish what it is doing and stop (the node is shutting
    /// down); answers how many were asked.
    pub fn drain(&self) -> usize {
        let sessions = self.lock();
        for live in sessions.values() {
            live.addr.do_send(Drain);
        }
        sessions.len()
    }

    /// Stops the conversation's session at once, if it is live here (its lease was lost).
    pub fn evict(&self, conversation_id: &ConversationId) {
        if let Some(live) = self.lock().remove(conversation_id) {
            // Stopping the actor from outside: it finishes the message in hand, then stops.
            live.addr.do_send(Drain);
        }
        if let Some(on_stop) = &self.on_stop {
            on_stop(conversation_id);
        }
    }

    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// The number of sessions live on this node.
    pub fn live(&self) -> usize {
        self.lock().len()
    }

    /// Whether this conversation has a live session here.
    pub fn is_live(&self, conversation_id: &ConversationId) -> bool {
        self.lock().get(conversation_id).is_some_and(|live| live.addr.connected())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConversationId, Live>> {
        // A poisoned map is still a valid map: a panic elsewhere must not stop every conversation.
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The conversation's live session, started (on the current arbiter) if there is none.
    pub fn session(&self, conversation_id: &ConversationId) -> Addr<ConversationSession> {
        self.session_fenced(conversation_id, None)
    }

    /// The conversation's live session writing with `fence`; a live session with an older
    /// token is told to stop and replaced by one started with `fence`.
    pub fn session_fenced(&self, conversation_id: &ConversationId, fence: Option<i64>) -> Addr<ConversationSession> {
        let mut sessions = self.lock();
        if let Some(live) = sessions.get(conversation_id).filter(|live| live.addr.connected()) {
            if live.fence >= fence {
                return live.addr.clone();
            }
            live.addr.do_send(Drain);
        }
        let registration = Registration { sessions: self.sessions.clone(), on_stop: self.on_stop.clone() };
        let addr = ConversationSession::new(
            conversation_id.clone(),
            self.ports.clone(),
            self.config.clone(),
            registration,
            fence,
        )
        .start();
        sessions.insert(conversation_id.clone(), Live { addr: addr.clone(), fence });
        addr
    }

    fn forget(&self, conversation_id: &ConversationId, dead: &Addr<ConversationSession>) {
        let mut sessions = self.lock();
        if sessions.get(conversation_id).is_some_and(|live| &live.addr == dead) {
            sessions.remove(conversation_id);
        }
    }

    /// Sends a message to the conversation's session, retrying once on a fresh session if the
    /// one found stopped (idle timeout, panic) before answering.
    pub async fn send<M, T>(&self, conversation_id: &ConversationId, message: M) -> Result<T, SessionError>
    where
        M: Message<Result = Result<T, SessionError>> + Clone + Send + 'static,
        T: Send + 'static,
        ConversationSession: Handler<M>,
    {
        self.send_fenced(conversation_id, None, message).await
    }

    /// [`Self::send`] to the session writing with `fence`.
    pub async fn send_fenced<M, T>(
        &self,
        conversation_id: &ConversationId,
        fence: Option<i64>,
        message: M,
    ) -> Result<T, SessionError>
    where
        M: Message<Result = Result<T, SessionError>> + Clone + Send + 'static,
        T: Send + 'static,
        ConversationSession: Handler<M>,
    {
        let mut last_error = String::new();
        for _ in 0..2 {
            let addr = self.session_fenced(conversation_id, fence);
            match addr.send(message.clone()).await {
                Ok(answer) => return answer,
                Err(err) => {
                    last_error = err.to_string();
                    self.forget(conversation_id, &addr);
                }
            }
        }
        Err(SessionError::Unavailable(format!("session stopped: {last_error}")))
    }
}
