//! Revocation that bites at once, everywhere: every long-lived connection a credential opened
//! (an agent's `/ws/agent` socket, an SSE stream or a long poll under `/api`) watches that
//! credential here, and ends when it is revoked.
//!
//! Three paths lead to a watcher, so that none depends on the others:
//! - on the node that revokes (an API key revoked, an agent deleted), at once;
//! - on every other node, through the cluster's control channel (`credential_revoked`);
//! - on every node, a periodic check of the credentials its connections hold, in one query per
//!   kind: it catches what pub/sub lost (Redis away), what the CLI revoked without Redis, and
//!   anything changed straight in the database.
//!
//! Requests themselves need none of this: every request authenticates against the database, so
//! a revoked credential gets 401 on its next request on any node. The registry holds one entry
//! per open connection, so it is bounded by the server's connection limits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::cluster::control::{Control, ControlBus, Revoked};
use crate::cluster::redis::Redis;
use crate::domain::access::{self, StillActive};
use crate::ids::WorkspaceId;
use crate::storage::Db;

/// WebSocket close code of a connection whose credential was revoked (application range).
pub const CLOSE_CODE: u16 = 4001;
/// The reason sent with it.
pub const CLOSE_REASON: &str = "credential revoked";

/// What authenticated a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Credential {
    ApiKey(i64),
    Agent(i64),
    /// A console session (its id): ends when the agent signs out, is deleted or sets a new
    /// password, which the periodic check finds on every node.
    Session(i64),
}

impl Credential {
    fn control(self, workspace_id: WorkspaceId) -> Control {
        let revoked = Revoked { workspace_id, ..Default::default() };
        Control::CredentialRevoked(match self {
            Credential::Agent(id) => Revoked { agent_id: Some(id), ..revoked },
            Credential::ApiKey(id) => Revoked { key_id: Some(id), ..revoked },
            Credential::Session(id) => Revoked { session_id: Some(id), ..revoked },
        })
    }
}

struct Watcher {
    /// The hash of the agent token the connection signed in with: a connection made with a
    /// token since replaced ends, one made with the new token stays.
    token_hash: Option<String>,
    /// For a console session's connection, its agent: it ends with the agent.
    agent_id: Option<i64>,
    revoked: oneshot::Sender<()>,
}

/// Every watched credential of this node.
#[derive(Default)]
pub struct Revocations {
    watchers: Mutex<HashMap<Credential, HashMap<u64, Watcher>>>,
    next_id: AtomicU64,
    control: OnceLock<ControlBus>,
    /// Connections ended because their credential was revoked, for `/metrics`.
    pub closed: AtomicU64,
}

/// One connection's watch: `revoked` resolves (`Ok`) when its credential is revoked; dropping
/// the `Watch` (the connection ended) stops watching.
pub struct Watch {
    pub revoked: oneshot::Receiver<()>,
    pub guard: WatchGuard,
}

/// Stops the watch when dropped.
pub struct WatchGuard {
    registry: Weak<Revocations>,
    credential: Credential,
    id: u64,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            let mut watchers = registry.lock();
            if let Some(of_credential) = watchers.get_mut(&self.credential) {
                of_credential.remove(&self.id);
                if of_credential.is_empty() {
                    watchers.remove(&self.credential);
                }
            }
        }
    }
}

impl Revocations {
    /// The registry, with (clustered) its control channel and (with `check_every`) its periodic
    /// check, started on the current runtime.
    pub fn start(db: Db, redis: Option<Arc<Redis>>, check_every: Option<Duration>) -> Arc<Revocations> {
        let registry = Arc::new(Revocations::default());
        if let Some(redis) = redis {
            let weak = Arc::downgrade(&registry);
            let control = ControlBus::start(redis, move |control| {
                let Some(registry) = weak.upgrade() else { return };
                let Control::CredentialRevoked(Revoked { agent_id, key_id, session_id, sessions_of_agent, .. }) =
                    control;
                if let Some(id) = agent_id {
                    registry.close(Credential::Agent(id), None);
                    registry.close_sessions_of(id);
                }
                if let Some(id) = key_id {
                    registry.close(Credential::ApiKey(id), None);
                }
                if let Some(id) = session_id {
                    registry.close(Credential::Session(id), None);
                }
                if let Some(id) = sessions_of_agent {
                    registry.close_sessions_of(id);
                }
            });
            let _ = registry.control.set(control);
        }
        if let Some(every) = check_every {
            let weak = Arc::downgrade(&registry);
            actix_rt::spawn(async move {
                let mut ticks = tokio::time::interval(every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    let Some(registry) = weak.upgrade() else { return };
                    if let Err(error) = registry.check(&db).await {
                        tracing::warn!(%error, "open connections' credentials not checked");
                    }
                }
            });
        }
        registry
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Credential, HashMap<u64, Watcher>>> {
        self.watchers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Watches `credential` for one connection.
    pub fn watch(self: &Arc<Self>, credential: Credential, token_hash: Option<String>) -> Watch {
        self.watch_as(credential, token_hash, None)
    }

    /// Watches a console session's connection, which also ends with its agent.
    pub fn watch_session(self: &Arc<Self>, session_id: i64, agent_id: i64) -> Watch {
        self.watch_as(Credential::Session(session_id), None, Some(agent_id))
    }

    fn watch_as(self: &Arc<Self>, credential: Credential, token_hash: Option<String>, agent_id: Option<i64>) -> Watch {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, revoked) = oneshot::channel();
        self.lock().entry(credential).or_default().insert(id, Watcher { token_hash, agent_id, revoked: sender });
        Watch { revoked, guard: WatchGuard { registry: Arc::downgrade(self), credential, id } }
    }

    /// What the control channel carried (clustered only), for `/metrics`.
    pub fn control_stats(&self) -> Option<&crate::cluster::control::ControlStats> {
        self.control.get().map(|control| &*control.stats)
    }

    /// How many connections are watching, for `/metrics`.
    pub fn watching(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }

    /// The credential was revoked: ends its connections on this node at once and tells every
    /// other node.
    pub fn revoke(&self, workspace_id: WorkspaceId, credential: Credential) {
        let mut closed = self.close(credential, None);
        if let Credential::Agent(id) = credential {
            closed += self.close_sessions_of(id);
        }
        tracing::info!(%workspace_id, ?credential, closed, "credential revoked; its open connections end");
        if let Some(control) = self.control.get() {
            control.publish(&credential.control(workspace_id));
        }
    }

    /// Every console session of the agent ended (a password reset): ends their connections on
    /// this node at once and tells every other node.
    pub fn revoke_sessions_of(&self, workspace_id: WorkspaceId, agent_id: i64) {
        let closed = self.close_sessions_of(agent_id);
        tracing::info!(%workspace_id, agent_id, closed, "console sessions ended; their open connections end");
        if let Some(control) = self.control.get() {
            let revoked = Revoked { workspace_id, sessions_of_agent: Some(agent_id), ..Default::default() };
            control.publish(&Control::CredentialRevoked(revoked));
        }
    }

    /// Ends the connections of the agent's console sessions on this node; answers how many.
    fn close_sessions_of(&self, agent_id: i64) -> usize {
        let sessions: Vec<Credential> = self
            .lock()
            .iter()
            .filter(|(credential, watchers)| {
                matches!(credential, Credential::Session(_)) && watchers.values().any(|w| w.agent_id == Some(agent_id))
            })
            .map(|(credential, _)| *credential)
            .collect();
        sessions.into_iter().map(|session| self.close(session, None)).sum()
    }

    /// Ends the credential's connections on this node (with `keep`, those signed in with that
    /// token hash stay); answers how many ended.
    fn close(&self, credential: Credential, keep: Option<&str>) -> usize {
        let ending: Vec<Watcher> = {
            let mut watchers = self.lock();
            let Some(of_credential) = watchers.get_mut(&credential) else { return 0 };
            let ids: Vec<u64> = of_credential
                .iter()
                .filter(|(_, w)| keep.is_none() || w.token_hash.as_deref() != keep)
                .map(|(id, _)| *id)
                .collect();
            let ending = ids.iter().filter_map(|id| of_credential.remove(id)).collect();
            if of_credential.is_empty() {
                watchers.remove(&credential);
            }
            ending
        };
        let count = ending.len();
        for watcher in ending {
            let _ = watcher.revoked.send(());
        }
        self.closed.fetch_add(count as u64, Ordering::Relaxed);
        count
    }

    /// Checks every watched credential against the database, in one query per kind and
    /// chunk of ids, and ends the connections of those that no longer authenticate.
    pub async fn check(&self, db: &Db) -> Result<usize, crate::storage::DbError> {
        let (key_ids, agent_ids, session_ids): (Vec<i64>, Vec<i64>, Vec<i64>) = {
            let watchers = self.lock();
            let mut key_ids = Vec::new();
            let mut agent_ids = Vec::new();
            let mut session_ids = Vec::new();
            for credential in watchers.keys() {
                match credential {
                    Credential::ApiKey(id) => key_ids.push(*id),
                    Credential::Agent(id) => agent_ids.push(*id),
                    Credential::Session(id) => session_ids.push(*id),
                }
            }
            (key_ids, agent_ids, session_ids)
        };
        if key_ids.is_empty() && agent_ids.is_empty() && session_ids.is_empty() {
            return Ok(0);
        }
        let checked: Vec<Credential> = key_ids
            .iter()
            .map(|id| Credential::ApiKey(*id))
            .chain(agent_ids.iter().map(|id| Credential::Agent(*id)))
            .chain(session_ids.iter().map(|id| Credential::Session(*id)))
            .collect();
        let StillActive { keys: active_keys, agent_tokens, sessions: active_sessions } =
            access::still_active(db, key_ids, agent_ids, session_ids).await?;
        // Only what was read: connections opened since are checked next time.
        let mut closed = 0;
        for credential in checked {
            closed += match credential {
                Credential::ApiKey(id) if !active_keys.contains(&id) => self.close(credential, None),
                Credential::ApiKey(_) => 0,
                Credential::Agent(id) => match agent_tokens.get(&id) {
                    Some(Some(hash)) => self.close(credential, Some(hash.as_str())),
                    Some(None) | None => self.close(credential, None),
                },
                Credential::Session(id) if !active_sessions.contains(&id) => self.close(credential, None),
                Credential::Session(_) => 0,
            };
        }
        if closed > 0 {
            tracing::info!(closed, "connections ended: their credentials no longer authenticate");
        }
        Ok(closed)
    }
}
