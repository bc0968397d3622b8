//! The cluster's control channel: rare messages that every node must act on (today: a
//! credential was revoked), on a Redis channel of their own so that a flood of conversation
//! events never delays them and they never count against the events' outbox.
//!
//! On the wire a message is one JSON object: `{"v":1,"node":…,"at":…,"type":"credential_revoked",
//! "workspace_id":…,"agent_id"|"key_id":…}`. A node ignores a version or a `type` it does not know
//! (a newer node during a rolling upgrade), so kinds can be added without breaking older nodes.
//! Redis pub/sub delivers at most once, so every kind needs a fallback for a lost message; for
//! revocations it is each node's periodic credential check ([`crate::transport::revocation`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::redis::Redis;
use crate::ids::WorkspaceId;

/// The version of the envelope this node writes and understands.
pub const VERSION: u64 = 1;
/// The channel (under the cluster's prefix) control messages travel on.
const CHANNEL: &str = "control";
/// Messages waiting to be published; they are rare, so a full outbox means Redis is away, and
/// the fallback of each kind covers what is dropped.
const OUTBOX: usize = 1024;
/// A message that could not be published is tried again this often, this many times: about
/// the periodic check's default interval, after which the check has caught up anyway. Patient,
/// because a node rests Redis after any failed call and these messages are few.
const PUBLISH_RETRY: Duration = Duration::from_millis(250);
const PUBLISH_ATTEMPTS: u32 = 40;

/// What every node must do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// Close whatever this credential opened (see [`Revoked`]).
    CredentialRevoked(Revoked),
}

/// What was revoked: an agent's sockets and streams, their console's included (the agent was
/// deleted or their token replaced), an API key's streams (the key was revoked), a console
/// session's socket (signed out), or every console session's of an agent (their password was
/// reset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_of_agent: Option<i64>,
}

/// The envelope, written and read as one flat object.
fn encode(node: &str, control: &Control) -> Option<String> {
    let mut value = serde_json::to_value(control).ok()?;
    let object = value.as_object_mut()?;
    object.insert("v".into(), VERSION.into());
    object.insert("node".into(), node.into());
    object.insert("at".into(), crate::storage::now_ms().into());
    Some(value.to_string())
}

/// The sender's node and the message, or `None` for what this node does not understand.
fn decode(payload: &[u8]) -> Option<(String, Control)> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    if value.get("v").and_then(|v| v.as_u64()) != Some(VERSION) {
        return None;
    }
    let node = value.get("node")?.as_str()?.to_owned();
    let control = serde_json::from_value(value).ok()?;
    Some((node, control))
}

/// What the control channel has carried, for `/metrics`.
#[derive(Debug, Default)]
pub struct ControlStats {
    pub published: AtomicU64,
    pub received: AtomicU64,
    pub dropped: AtomicU64,
}

/// This node's end of the control channel.
pub struct ControlBus {
    outbox: mpsc::Sender<String>,
    node_id: String,
    pub stats: Arc<ControlStats>,
}

impl ControlBus {
    /// Starts publishing this node's messages and handing the other nodes' to `handle` (on the
    /// current runtime).
    pub fn start(redis: Arc<Redis>, handle: impl Fn(Control) + Send + Sync + 'static) -> ControlBus {
        let (outbox, mut pending) = mpsc::channel::<String>(OUTBOX);
        let stats = Arc::new(ControlStats::default());
        let publisher = redis.clone();
        let published = stats.clone();
        actix_rt::spawn(async move {
            while let Some(payload) = pending.recv().await {
                let mut attempts = 0;
                loop {
                    match publisher.publish(CHANNEL, &payload).await {
                        Ok(_) => {
                            published.published.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        // Redis rests after a failed call: wait that out rather than give up.
                        Err(_) if attempts < PUBLISH_ATTEMPTS => {
                            attempts += 1;
                            tokio::time::sleep(PUBLISH_RETRY).await;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "a control message did not reach the other nodes");
                            published.dropped.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            }
        });
        let node_id = redis.node_id().to_owned();
        let me = node_id.clone();
        let heard = stats.clone();
        actix_rt::spawn(async move {
            loop {
                match redis.subscription(CHANNEL).await {
                    Ok(mut messages) => {
                        while let Some(message) = messages.next().await {
                            match decode(message.get_payload_bytes()) {
                                Some((node, control)) if node != me => {
                                    heard.received.fetch_add(1, Ordering::Relaxed);
                                    handle(control);
                                }
                                Some(_) => {}
                                None => tracing::debug!("ignored a control message this node does not understand"),
                            }
                        }
                        tracing::warn!("lost the cluster's control channel; reconnecting");
                    }
                    Err(error) => tracing::debug!(%error, "cannot hear the cluster's control channel yet"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        ControlBus { outbox, node_id, stats }
    }

    /// Queues `control` for every other node (this node acts on it itself).
    pub fn publish(&self, control: &Control) {
        let Some(payload) = encode(&self.node_id, control) else { return };
        if self.outbox.try_send(payload).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("the control channel's outbox is full; other nodes rely on their own checks");
        }
    }
}

/// Publishes `control` once, for a process that is not a node (the CLI).
pub async fn publish_once(redis: &Redis, control: &Control) -> Result<(), String> {
    let payload = encode(redis.node_id(), control).ok_or("control message not serialisable")?;
    redis.publish(CHANNEL, &payload).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_and_unknown_ones_are_ignored() {
        let sent = Control::CredentialRevoked(Revoked {
            workspace_id: WorkspaceId(7),
            agent_id: Some(3),
            ..Default::default()
        });
        let payload = encode("node-a", &sent).unwrap();
        let value: serde_json::Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(value["type"], "credential_revoked");
        assert_eq!(value["v"], 1);
        assert_eq!(value["agent_id"], 3);
        assert!(value.get("key_id").is_none(), "{payload}");
        assert_eq!(decode(payload.as_bytes()), Some(("node-a".to_owned(), sent)));

        let newer = payload.replace("\"v\":1", "\"v\":2");
        assert_eq!(decode(newer.as_bytes()), None, "a newer envelope is not guessed at");
        let unknown = br#"{"v":1,"node":"n","at":1,"type":"reboot"}"#;
        assert_eq!(decode(unknown), None, "an unknown type is ignored");
    }
}
