//! The live runtime against in-memory ports: ordering, dedup, isolation of a panicking
//! session, idle stop and rehydration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use frontdesk_actors::{
    Appended, Brain, BrainError, BrainOutput, BrainRequest, ConversationEvent, ConversationSnapshot,
    ConversationStatus, ConversationStore, EventBus, NewMessage, Ports, SessionConfig, SessionError, SessionRegistry,
    StoreError, StoredMessage, SystemClock, VisitorMessage,
};
use futures::stream::BoxStream;
use tokio::sync::broadcast;

/// Conversations "a" and "b" exist; appending the text "boom" panics.
#[derive(Default)]
struct MemStore {
    messages: Mutex<HashMap<String, Vec<StoredMessage>>>,
    loads: Mutex<usize>,
}

impl MemStore {
    fn stored(&self, conversation: &str) -> Vec<StoredMessage> {
        self.messages.lock().unwrap().get(conversation).cloned().unwrap_or_default()
    }
}

#[async_trait]
impl ConversationStore for MemStore {
    async fn load(&self, id: &str) -> Result<Option<ConversationSnapshot>, StoreError> {
        *self.loads.lock().unwrap() += 1;
        if id != "a" && id != "b" {
            return Ok(None);
        }
        let recent = self.stored(id);
        Ok(Some(ConversationSnapshot {
            id: id.into(),
            workspace_id: 1,
            bot_id: 1,
            status: ConversationStatus::Open,
            variables: serde_json::json!({}),
            last_seq: recent.last().map(|m| m.seq).unwrap_or(0),
            recent,
        }))
    }

    async fn append(&self, message: NewMessage) -> Result<Appended, StoreError> {
        tokio::task::yield_now().await;
        assert!(message.content != "boom", "the store blew up");
        let mut all = self.messages.lock().unwrap();
        let list = all.entry(message.conversation_id.clone()).or_default();
        if let Some(id) = &message.client_msg_id {
            if let Some(original) = list.iter().find(|m| m.client_msg_id.as_ref() == Some(id)) {
                return Ok(Appended::Duplicate(original.clone()));
            }
        }
        assert!(list.iter().all(|m| m.seq != message.seq), "seq {} given twice", message.seq);
        let stored = StoredMessage {
            id: list.len() as i64 + 1000,
            conversation_id: message.conversation_id,
            seq: message.seq,
            sender: message.sender,
            content: message.content,
            media: message.media,
            client_msg_id: message.client_msg_id,
            reply_to: message.reply_to,
            created_at: message.created_at,
            metadata: message.metadata,
        };
        list.push(stored.clone());
        Ok(Appended::Inserted(stored))
    }

    async fn find_reply(&self, _: i64, conversation: &str, id: i64) -> Result<Option<StoredMessage>, StoreError> {
        Ok(self.stored(conversation).into_iter().find(|m| m.reply_to == Some(id)))
    }

    async fn close(&self, _: i64, _: &str, _: i64) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Echoes the visitor's last message back in two chunks.
struct EchoBrain;

impl Brain for EchoBrain {
    fn reply(&self, request: BrainRequest) -> BoxStream<'static, Result<BrainOutput, BrainError>> {
        let text = request.history.last().map(|m| m.content.clone()).unwrap_or_default();
        Box::pin(futures::stream::iter(vec![Ok("echo: ".to_owned().into()), Ok(text.into())]))
    }
}

#[derive(Default)]
struct MemBus {
    channels: Mutex<HashMap<String, broadcast::Sender<Arc<ConversationEvent>>>>,
}

impl EventBus for MemBus {
    fn publish(&self, conversation_id: &str, event: ConversationEvent) {
        if let Some(tx) = self.channels.lock().unwrap().get(conversation_id) {
            let _ = tx.send(Arc::new(event));
        }
    }

    fn subscribe(&self, conversation_id: &str) -> broadcast::Receiver<Arc<ConversationEvent>> {
        self.channels
            .lock()
            .unwrap()
            .entry(conversation_id.into())
            .or_insert_with(|| broadcast::channel(1024).0)
            .subscribe()
    }
}

fn registry(idle: Duration) -> (SessionRegistry, Arc<MemStore>, Arc<MemBus>) {
    let store = Arc::new(MemStore::default());
    let bus = Arc::new(MemBus::default());
    let ports =
        Ports { store: store.clone(), brain: Arc::new(EchoBrain), bus: bus.clone(), clock: Arc::new(SystemClock) };
    let config = SessionConfig { idle_timeout: idle, ..SessionConfig::default() };
    (SessionRegistry::new(ports, config), store, bus)
}

fn say(id: &str, text: &str) -> VisitorMessage {
    VisitorMessage { client_msg_id: id.into(), text: text.into(), media: None, context: None }
}

#[actix_rt::test]
async fn concurrent_messages_get_gap_free_seqs_and_replies_in_order() {
    let (registry, store, _) = registry(Duration::from_secs(60));
    let sends = (0..40).map(|i| {
        let registry = registry.clone();
        async move { registry.send("a", say(&format!("m{i}"), &format!("hello {i}"))).await.unwrap() }
    });
    let posted = futures::future::join_all(sends).await;
    let mut replies = Vec::new();
    for p in posted {
        let question = p.message.clone();
        let reply = tokio::time::timeout(Duration::from_secs(10), p.reply).await.unwrap().unwrap();
        assert_eq!(reply.reply_to, Some(question.id));
        assert_eq!(reply.content, format!("echo: {}", question.content));
        replies.push(reply);
    }
    let seqs: Vec<i64> = store.stored("a").iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=80).collect::<Vec<_>>(), "every message and reply has its own seq, none skipped");
}

#[actix_rt::test]
async fn a_resent_client_msg_id_is_acknowledged_as_the_original() {
    let (registry, store, _) = registry(Duration::from_secs(60));
    let first = registry.send("a", say("x", "hi")).await.unwrap();
    let first_reply = first.reply.await.unwrap();
    let again = registry.send("a", say("x", "hi")).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.message.id, first.message.id);
    assert_eq!(again.reply.await.unwrap().id, first_reply.id);
    assert_eq!(store.stored("a").len(), 2);
}

#[actix_rt::test]
async fn a_panicking_session_restarts_from_the_store_and_others_never_notice() {
    let (registry, _, bus) = registry(Duration::from_secs(60));
    let mut b_events = bus.subscribe("b");
    registry.send("a", say("1", "before")).await.unwrap().reply.await.unwrap();
    registry.send("b", say("1", "steady")).await.unwrap();

    let crashed = registry.send("a", say("2", "boom")).await;
    assert!(matches!(crashed, Err(SessionError::Unavailable(_))), "{crashed:?}");

    // B's session is the same live actor: it keeps going, and its events keep flowing.
    registry.send("b", say("2", "still here")).await.unwrap().reply.await.unwrap();
    let mut b_seqs = Vec::new();
    while let Ok(event) = b_events.try_recv() {
        if let Some(m) = event.stored_message() {
            b_seqs.push(m.seq);
        }
    }
    assert_eq!(b_seqs, vec![1, 2, 3, 4]);

    // A is started again from the store and carries on after what it had stored.
    let after = registry.send("a", say("3", "after")).await.unwrap();
    assert_eq!(after.message.seq, 3);
    assert_eq!(after.reply.await.unwrap().seq, 4);
}

#[actix_rt::test]
async fn an_idle_session_stops_and_is_rehydrated_by_the_next_message() {
    let (registry, store, _) = registry(Duration::from_millis(200));
    registry.send("a", say("1", "hi")).await.unwrap().reply.await.unwrap();
    assert!(registry.is_live("a"));
    let mut waited = 0;
    while registry.live() > 0 {
        assert!(waited < 200, "the idle session never stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    let loads_before = *store.loads.lock().unwrap();
    let next = registry.send("a", say("2", "back again")).await.unwrap();
    assert_eq!(next.message.seq, 3, "rehydrated: seq continues");
    assert_eq!(*store.loads.lock().unwrap(), loads_before + 1, "the context was read from the store again");
}

#[actix_rt::test]
async fn an_unknown_conversation_is_not_found() {
    let (registry, _, _) = registry(Duration::from_secs(60));
    assert_eq!(registry.send("nope", say("1", "hi")).await.unwrap_err(), SessionError::NotFound);
}
