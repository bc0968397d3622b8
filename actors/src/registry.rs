//! `SessionRegistry`: this node's directory of live conversation sessions.
//!
//! It finds a conversation's session or starts one (the session rehydrates itself from the
//! store), forgets sessions when they stop (idle, or after a panic killed them), and retries a
//! message once on a fresh session when the one it found died under it. That retry is how a
//! panic in one session is survived: the next message restarts it from the database, and no
//! other session notices.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix::prelude::*;

use crate::ports::Ports;
use crate::session::{ConversationSession, SessionConfig, SessionError};

type Sessions = Arc<Mutex<HashMap<String, Addr<ConversationSession>>>>;

/// Lets a stopping session remove itself, and only itself, from the registry.
#[derive(Clone)]
pub struct Registration {
    sessions: Sessions,
}

impl Registration {
    pub(crate) fn release(&self, conversation_id: &str, addr: &Addr<ConversationSession>) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if sessions.get(conversation_id).is_some_and(|live| live == addr) {
            sessions.remove(conversation_id);
        }
    }
}

#[derive(Clone)]
pub struct SessionRegistry {
    sessions: Sessions,
    ports: Ports,
    config: SessionConfig,
}

impl SessionRegistry {
    pub fn new(ports: Ports, config: SessionConfig) -> Self {
        Self { sessions: Arc::default(), ports, config }
    }

    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// The number of sessions live on this node.
    pub fn live(&self) -> usize {
        self.lock().len()
    }

    /// Whether this conversation has a live session here.
    pub fn is_live(&self, conversation_id: &str) -> bool {
        self.lock().get(conversation_id).is_some_and(|addr| addr.connected())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Addr<ConversationSession>>> {
        // A poisoned map is still a valid map: a panic elsewhere must not stop every conversation.
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The conversation's live session, started (on the current arbiter) if there is none.
    pub fn session(&self, conversation_id: &str) -> Addr<ConversationSession> {
        let mut sessions = self.lock();
        if let Some(addr) = sessions.get(conversation_id).filter(|addr| addr.connected()) {
            return addr.clone();
        }
        let registration = Registration { sessions: self.sessions.clone() };
        let addr =
            ConversationSession::new(conversation_id.to_owned(), self.ports.clone(), self.config.clone(), registration)
                .start();
        sessions.insert(conversation_id.to_owned(), addr.clone());
        addr
    }

    fn forget(&self, conversation_id: &str, dead: &Addr<ConversationSession>) {
        let mut sessions = self.lock();
        if sessions.get(conversation_id).is_some_and(|live| live == dead) {
            sessions.remove(conversation_id);
        }
    }

    /// Sends a message to the conversation's session, retrying once on a fresh session if the
    /// one found stopped (idle timeout, panic) before answering.
    pub async fn send<M, T>(&self, conversation_id: &str, message: M) -> Result<T, SessionError>
    where
        M: Message<Result = Result<T, SessionError>> + Clone + Send + 'static,
        T: Send + 'static,
        ConversationSession: Handler<M>,
    {
        let mut last_error = String::new();
        for _ in 0..2 {
            let addr = self.session(conversation_id);
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
