//! The live runtime against in-memory ports: ordering, dedup, isolation of a panicking
//! session, idle stop and rehydration, and ownership: a takeover cuts a streaming reply off,
//! two agents racing get one winner, the bot is silent while an agent owns the conversation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use frontdesk_actors::{
    AgentMessage, AgentRef, Appended, Brain, BrainError, BrainOutput, BrainRequest, ChangedBy, Clock,
    ConversationEvent, ConversationId, ConversationSnapshot, ConversationStatus, ConversationStore, EventBus, HandBack,
    NewMessage, Owner, OwnershipChange, OwnershipOutcome, Ports, Sender, SessionConfig, SessionError, SessionRegistry,
    StoreError, StoredMessage, SystemClock, TakeOver, VisitorMessage,
};
use futures::stream::BoxStream;
use tokio::sync::broadcast;

/// Conversations "a" and "b" exist; appending the text "boom" panics.
#[derive(Default)]
struct MemStore {
    messages: Mutex<HashMap<ConversationId, Vec<StoredMessage>>>,
    loads: Mutex<usize>,
    owners: Mutex<HashMap<ConversationId, (Owner, Option<AgentRef>)>>,
    /// Each conversation's highest fencing token, as a database keeps it.
    fences: Mutex<HashMap<ConversationId, i64>>,
}

impl MemStore {
    /// A new owner's token: higher than any before, so every older session is fenced off.
    fn claim(&self, conversation: &str) -> i64 {
        let mut fences = self.fences.lock().unwrap();
        let fence = fences.entry(conversation.into()).or_default();
        *fence += 1;
        *fence
    }

    fn check_fence(&self, conversation: &str, fence: Option<i64>) -> Result<(), StoreError> {
        let current = self.fences.lock().unwrap().get(conversation).copied().unwrap_or(0);
        match fence {
            Some(token) if token < current => Err(StoreError::Fenced(token)),
            _ => Ok(()),
        }
    }

    fn stored(&self, conversation: &str) -> Vec<StoredMessage> {
        self.messages.lock().unwrap().get(conversation).cloned().unwrap_or_default()
    }
}

#[async_trait]
impl ConversationStore for MemStore {
    async fn load(&self, id: &ConversationId) -> Result<Option<ConversationSnapshot>, StoreError> {
        *self.loads.lock().unwrap() += 1;
        if *id != "a" && *id != "b" {
            return Ok(None);
        }
        let recent = self.stored(id.as_str());
        Ok(Some(ConversationSnapshot {
            id: id.clone(),
            workspace_id: 1,
            bot_id: 1,
            channel: "widget".into(),
            status: ConversationStatus::Open,
            owner: Owner::Bot,
            agent: None,
            variables: serde_json::json!({}),
            last_seq: recent.last().map(|m| m.seq).unwrap_or(0),
            recent,
        }))
    }

    async fn append(&self, message: NewMessage) -> Result<Appended, StoreError> {
        tokio::task::yield_now().await;
        assert!(message.content != "boom", "the store blew up");
        self.check_fence(message.conversation_id.as_str(), message.fence)?;
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
            agent_id: message.agent_id,
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

    async fn find_reply(
        &self,
        _: i64,
        conversation: &ConversationId,
        id: i64,
    ) -> Result<Option<StoredMessage>, StoreError> {
        Ok(self.stored(conversation.as_str()).into_iter().find(|m| m.reply_to == Some(id)))
    }

    async fn close(&self, _: i64, conversation: &ConversationId, _: i64, fence: Option<i64>) -> Result<(), StoreError> {
        self.check_fence(conversation.as_str(), fence)
    }

    async fn change_owner(&self, change: OwnershipChange) -> Result<OwnershipOutcome, StoreError> {
        tokio::task::yield_now().await;
        self.check_fence(change.conversation_id.as_str(), change.fence)?;
        let mut owners = self.owners.lock().unwrap();
        let (owner, agent) = owners.entry(change.conversation_id.clone()).or_insert((Owner::Bot, None)).clone();
        if !change.from.contains(&owner) {
            return Ok(OwnershipOutcome::Refused { owner, agent, closed: false });
        }
        let new_agent = if change.to == Owner::Agent { change.agent.clone() } else { None };
        owners.insert(change.conversation_id.clone(), (change.to, new_agent));
        Ok(OwnershipOutcome::Changed { previous: owner, previous_agent: agent })
    }

    async fn mark_read(&self, _: i64, _: &ConversationId, _: Sender, _: i64, _: i64) -> Result<(), StoreError> {
        Ok(())
    }

    async fn agent_active(&self, _: i64, _: &ConversationId, _: i64) -> Result<(), StoreError> {
        Ok(())
    }

    async fn merge_variables(
        &self,
        _: i64,
        conversation: &ConversationId,
        patch: serde_json::Value,
        fence: Option<i64>,
    ) -> Result<serde_json::Value, StoreError> {
        self.check_fence(conversation.as_str(), fence)?;
        let mut variables = serde_json::json!({});
        frontdesk_actors::merge_variables(&mut variables, patch);
        Ok(variables)
    }
}

/// Echoes the visitor's last message back in two chunks; "slow" gets a long reply streamed a
/// word every 30 ms.
struct EchoBrain;

impl Brain for EchoBrain {
    fn reply(&self, request: BrainRequest) -> BoxStream<'static, Result<BrainOutput, BrainError>> {
        let text = request.history.last().map(|m| m.content.clone()).unwrap_or_default();
        if text == "slow" {
            return Box::pin(async_stream::stream! {
                for i in 0..100 {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    yield Ok(BrainOutput::Text(format!("word{i} ")));
                }
            });
        }
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
    registry_on(Arc::new(MemStore::default()), Arc::new(MemBus::default()), idle)
}

/// A node's registry on a store and bus other nodes may share.
fn registry_on(
    store: Arc<MemStore>,
    bus: Arc<MemBus>,
    idle: Duration,
) -> (SessionRegistry, Arc<MemStore>, Arc<MemBus>) {
    let ports =
        Ports { store: store.clone(), brain: Arc::new(EchoBrain), bus: bus.clone(), clock: Arc::new(SystemClock) };
    let config = SessionConfig { idle_timeout: idle, ..SessionConfig::default() };
    (SessionRegistry::new(ports, config), store, bus)
}

fn say(id: &str, text: &str) -> VisitorMessage {
    VisitorMessage { client_msg_id: id.into(), text: text.into(), media: None, context: None }
}

/// The timeout of every wait for an event: it only keeps a broken runtime from hanging the test.
const GUARD: Duration = Duration::from_secs(10);

/// Receives the conversation's events until one satisfies `last`; answers them all, that one
/// last.
async fn events_until(
    events: &mut broadcast::Receiver<Arc<ConversationEvent>>,
    last: impl Fn(&ConversationEvent) -> bool,
) -> Vec<Arc<ConversationEvent>> {
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(GUARD, events.recv())
            .await
            .unwrap_or_else(|_| panic!("the awaited event never came; seen: {seen:?}"))
            .expect("the bus stays open");
        let done = last(&event);
        seen.push(event);
        if done {
            return seen;
        }
    }
}

/// Has `registry` report each session that stops; answers the reports.
fn stops_of(registry: SessionRegistry) -> (SessionRegistry, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (stopped, stops) = tokio::sync::mpsc::unbounded_channel();
    let registry = registry.on_stop(Arc::new(move |id: &ConversationId| {
        let _ = stopped.send(id.to_string());
    }));
    (registry, stops)
}

/// The next session to stop.
async fn next_stop(stops: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(GUARD, stops.recv()).await.expect("a session stopped").expect("the registry lives")
}

#[actix_rt::test]
async fn concurrent_messages_get_gap_free_seqs_and_replies_in_order() {
    // Every message its own turn: room for all 40 in the queue (the cap has its own test).
    let store = Arc::new(MemStore::default());
    let ports = Ports {
        store: store.clone(),
        brain: Arc::new(EchoBrain),
        bus: Arc::new(MemBus::default()),
        clock: Arc::new(SystemClock),
    };
    let config = SessionConfig { idle_timeout: Duration::from_secs(60), max_queued_turns: 64, ..Default::default() };
    let registry = SessionRegistry::new(ports, config);
    let sends = (0..40).map(|i| {
        let registry = registry.clone();
        async move { registry.send(&"a".into(), say(&format!("m{i}"), &format!("hello {i}"))).await.unwrap() }
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
    let first = registry.send(&"a".into(), say("x", "hi")).await.unwrap();
    let first_reply = first.reply.await.unwrap();
    let again = registry.send(&"a".into(), say("x", "hi")).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.message.id, first.message.id);
    assert_eq!(again.reply.await.unwrap().id, first_reply.id);
    assert_eq!(store.stored("a").len(), 2);
}

#[actix_rt::test]
async fn a_panicking_session_restarts_from_the_store_and_others_never_notice() {
    let (registry, _, bus) = registry(Duration::from_secs(60));
    let mut b_events = bus.subscribe("b");
    registry.send(&"a".into(), say("1", "before")).await.unwrap().reply.await.unwrap();
    registry.send(&"b".into(), say("1", "steady")).await.unwrap();

    let crashed = registry.send(&"a".into(), say("2", "boom")).await;
    assert!(matches!(crashed, Err(SessionError::Unavailable(_))), "{crashed:?}");

    // B's session is the same live actor: it keeps going, and its events keep flowing.
    registry.send(&"b".into(), say("2", "still here")).await.unwrap().reply.await.unwrap();
    let mut b_seqs = Vec::new();
    while let Ok(event) = b_events.try_recv() {
        if let Some(m) = event.stored_message() {
            b_seqs.push(m.seq);
        }
    }
    assert_eq!(b_seqs, vec![1, 2, 3, 4]);

    // A is started again from the store and carries on after what it had stored.
    let after = registry.send(&"a".into(), say("3", "after")).await.unwrap();
    assert_eq!(after.message.seq, 3);
    assert_eq!(after.reply.await.unwrap().seq, 4);
}

#[actix_rt::test]
async fn an_idle_session_stops_and_is_rehydrated_by_the_next_message() {
    let (registry, store, _) = registry(Duration::from_millis(200));
    let (registry, mut stops) = stops_of(registry);
    registry.send(&"a".into(), say("1", "hi")).await.unwrap().reply.await.unwrap();
    assert!(registry.is_live(&"a".into()));
    assert_eq!(next_stop(&mut stops).await, "a", "the idle session stopped");
    assert_eq!(registry.live(), 0);
    let loads_before = *store.loads.lock().unwrap();
    let next = registry.send(&"a".into(), say("2", "back again")).await.unwrap();
    assert_eq!(next.message.seq, 3, "rehydrated: seq continues");
    assert_eq!(*store.loads.lock().unwrap(), loads_before + 1, "the context was read from the store again");
}

#[actix_rt::test]
async fn an_unknown_conversation_is_not_found() {
    let (registry, _, _) = registry(Duration::from_secs(60));
    assert_eq!(registry.send(&"nope".into(), say("1", "hi")).await.unwrap_err(), SessionError::NotFound);
}

fn agent(id: i64) -> AgentRef {
    AgentRef { id, name: format!("Agent {id}") }
}

#[actix_rt::test]
async fn a_takeover_cuts_the_streaming_reply_and_the_bot_stays_silent_until_handed_back() {
    let (registry, store, bus) = registry(Duration::from_secs(60));
    let mut events = bus.subscribe("a");
    let posted = registry.send(&"a".into(), say("1", "slow")).await.unwrap();
    // Wait until the reply is streaming.
    events_until(&mut events, |e| matches!(e, ConversationEvent::Delta { .. })).await;
    registry.send(&"a".into(), TakeOver { agent: agent(7), actor: ChangedBy::Agent }).await.unwrap();

    // The caller waiting for the reply gets what was said, marked interrupted.
    let cut = tokio::time::timeout(GUARD, posted.reply).await.unwrap().unwrap();
    assert_eq!(cut.metadata.as_ref().unwrap()["interrupted"], true, "{cut:?}");
    assert!(cut.content.starts_with("word0 ") && !cut.content.contains("word99"), "{}", cut.content);

    // While the agent owns it, a visitor message is stored but gets no bot reply; the agent answers.
    let hello = registry.send(&"a".into(), say("2", "hello?")).await.unwrap();
    let (answer, _) = registry
        .send(
            &"a".into(),
            AgentMessage { agent: agent(7), client_msg_id: "a1".into(), text: "Hi, I'm here".into(), media: None },
        )
        .await
        .unwrap();
    assert_eq!(answer.sender, Sender::Agent);
    assert_eq!(answer.agent_id, Some(7));

    // After handing back, the bot answers again. Its turns run one at a time in order, so its
    // reply to "thanks" comes after anything it could have said to "hello?" or streamed late:
    // once that reply is out, what happened in between can be checked for what must not be there.
    let hand_back = HandBack { agent: Some(agent(7)), actor: ChangedBy::Agent, reason: None, silent_before: None };
    registry.send(&"a".into(), hand_back).await.unwrap();
    let again = registry.send(&"a".into(), say("3", "thanks")).await.unwrap();
    let reply = tokio::time::timeout(GUARD, again.reply).await.unwrap().unwrap();
    assert_eq!(reply.content, "echo: thanks");
    let seen =
        events_until(&mut events, |e| matches!(e, ConversationEvent::Done { message } if message.id == reply.id)).await;

    let taken = seen
        .iter()
        .position(|e| matches!(**e, ConversationEvent::OwnerChanged { owner: Owner::Agent, .. }))
        .expect("the takeover was announced");
    let handed_back = taken
        + seen[taken..]
            .iter()
            .position(|e| matches!(**e, ConversationEvent::OwnerChanged { owner: Owner::Bot, .. }))
            .expect("the hand-back was announced");
    let while_agent = &seen[taken..handed_back];
    assert!(while_agent.iter().all(|e| !matches!(**e, ConversationEvent::Delta { .. })), "{while_agent:?}");
    let bot_messages: Vec<i64> = while_agent
        .iter()
        .filter_map(|e| match &**e {
            ConversationEvent::Done { message } => Some(message.id),
            _ => None,
        })
        .collect();
    assert_eq!(bot_messages, vec![cut.id], "only the cut-off reply while the agent owns it: {while_agent:?}");
    let answers_hello = |event: &ConversationEvent| match event {
        ConversationEvent::Delta { reply_to, .. } => *reply_to == Some(hello.message.id),
        ConversationEvent::Done { message } => message.reply_to == Some(hello.message.id),
        _ => false,
    };
    assert!(!seen.iter().any(|e| answers_hello(e)), "the bot never answered the message sent to the agent: {seen:?}");
    let stored: Vec<(Sender, String)> = store.stored("a").into_iter().map(|m| (m.sender, m.content)).collect();
    let senders: Vec<Sender> = stored.iter().map(|(sender, _)| *sender).collect();
    assert_eq!(
        senders,
        vec![Sender::Visitor, Sender::Bot, Sender::Visitor, Sender::Agent, Sender::Visitor, Sender::Bot],
        "no bot reply while the agent owns it: {stored:?}"
    );
}

#[actix_rt::test]
async fn two_agents_racing_to_take_over_get_one_winner_and_one_conflict() {
    let (registry, _, _) = registry(Duration::from_secs(60));
    let b: ConversationId = "b".into();
    let (first, second) = futures::join!(
        registry.send(&b, TakeOver { agent: agent(1), actor: ChangedBy::Agent }),
        registry.send(&b, TakeOver { agent: agent(2), actor: ChangedBy::Agent }),
    );
    let outcomes = [first, second];
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
    let loser = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
    assert!(matches!(loser, SessionError::Conflict(why) if why.contains("already taken over")), "{loser:?}");
    // The loser cannot write in it either.
    let winner = if outcomes[0].is_ok() { 1 } else { 2 };
    let loser_id = 3 - winner;
    let refused = registry
        .send(
            &"b".into(),
            AgentMessage { agent: agent(loser_id), client_msg_id: "x".into(), text: "me too".into(), media: None },
        )
        .await;
    assert!(matches!(refused, Err(SessionError::Conflict(_))), "{refused:?}");
}

#[actix_rt::test]
async fn a_stale_owner_is_fenced_off_and_stops_while_the_new_owner_carries_on() {
    let (node_a, store, bus) = registry(Duration::from_secs(60));
    let (node_a, mut stops_on_a) = stops_of(node_a);
    let (node_b, _, _) = registry_on(store.clone(), bus, Duration::from_secs(60));
    let first = store.claim("a");
    node_a.send_fenced(&"a".into(), Some(first), say("1", "on a")).await.unwrap().reply.await.unwrap();

    // Node B takes the conversation over (A's lease ran out) and rehydrates from the store.
    let second = store.claim("a");
    let on_b = node_b.send_fenced(&"a".into(), Some(second), say("2", "on b")).await.unwrap();
    assert_eq!(on_b.message.seq, 3, "B carries on after what A stored");
    on_b.reply.await.unwrap();

    // A still believes it owns the conversation: its write is refused and its session stops.
    let stale = node_a.send_fenced(&"a".into(), Some(first), say("3", "late on a")).await;
    assert_eq!(stale.unwrap_err(), SessionError::Moved);
    assert_eq!(next_stop(&mut stops_on_a).await, "a", "the fenced session stopped");
    assert!(!node_a.is_live(&"a".into()));
    let stored = store.stored("a");
    assert!(stored.iter().all(|m| m.content != "late on a"), "nothing written by the stale owner");
    assert_eq!(stored.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4]);

    // A session started with a newer token replaces an older one on the same node.
    let third = store.claim("a");
    let again = node_b.send_fenced(&"a".into(), Some(third), say("4", "newer")).await.unwrap();
    assert_eq!(again.message.seq, 5);
}

#[actix_rt::test]
async fn a_rehydrated_session_answers_the_question_its_predecessor_never_answered() {
    let (registry, store, _) = registry(Duration::from_secs(60));
    // What a node that died mid-reply leaves behind: the question stored, no answer.
    let question = StoredMessage {
        id: 7,
        conversation_id: "a".into(),
        seq: 1,
        sender: Sender::Visitor,
        agent_id: None,
        content: "are you open?".into(),
        media: None,
        client_msg_id: Some("q".into()),
        reply_to: None,
        created_at: SystemClock.now_ms(),
        metadata: None,
    };
    store.messages.lock().unwrap().insert("a".into(), vec![question]);
    let next = registry.send(&"a".into(), say("n", "and on sunday?")).await.unwrap();
    assert_eq!(next.message.seq, 2);
    next.reply.await.unwrap();
    let stored = store.stored("a");
    let replies: Vec<(Option<i64>, &str)> =
        stored.iter().filter(|m| m.sender == Sender::Bot).map(|m| (m.reply_to, m.content.as_str())).collect();
    assert_eq!(
        replies,
        vec![(Some(7), "echo: are you open?"), (Some(next.message.id), "echo: and on sunday?")],
        "the orphaned question is answered first, then the new one"
    );
    assert_eq!(stored.len(), 4);
}

#[actix_rt::test]
async fn a_draining_session_finishes_its_reply_then_stops_and_says_so() {
    let (registry, store, _) = registry(Duration::from_secs(60));
    let (registry, mut stops) = stops_of(registry);
    let posted = registry.send(&"a".into(), say("1", "slow")).await.unwrap();
    assert_eq!(registry.drain(), 1);
    let reply = tokio::time::timeout(GUARD, posted.reply).await.unwrap().unwrap();
    assert_eq!(reply.content.split_whitespace().count(), 100, "the whole reply, not a cut-off one");
    assert_eq!(next_stop(&mut stops).await, "a");
    assert!(stops.try_recv().is_err(), "one session, stopped once");
    assert!(!registry.is_live(&"a".into()));
    assert_eq!(store.stored("a").len(), 2);
}

/// Answers each question only when the test lets it (one permit per turn), counting its turns.
struct GatedBrain {
    gate: Arc<tokio::sync::Semaphore>,
    turns: Arc<std::sync::atomic::AtomicUsize>,
}

impl Brain for GatedBrain {
    fn reply(&self, request: BrainRequest) -> BoxStream<'static, Result<BrainOutput, BrainError>> {
        let (gate, turns) = (self.gate.clone(), self.turns.clone());
        let seen: Vec<String> =
            request.history.iter().filter(|m| m.sender == Sender::Visitor).map(|m| m.content.clone()).collect();
        Box::pin(async_stream::stream! {
            gate.acquire().await.unwrap().forget();
            turns.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            yield Ok(BrainOutput::Text(format!("answering {}", seen.join("+"))));
        })
    }
}

#[actix_rt::test]
async fn messages_past_the_queued_turn_cap_are_stored_and_answered_together() {
    let store = Arc::new(MemStore::default());
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let turns = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ports = Ports {
        store: store.clone(),
        brain: Arc::new(GatedBrain { gate: gate.clone(), turns: turns.clone() }),
        bus: Arc::new(MemBus::default()),
        clock: Arc::new(SystemClock),
    };
    let config = SessionConfig { idle_timeout: Duration::from_secs(60), max_queued_turns: 2, ..Default::default() };
    let registry = SessionRegistry::new(ports, config);
    let merged_before = frontdesk_actors::coalesced_turns();

    // m0 is being answered (held at the gate); m1 and m2 wait; m3 to m6 join m2's turn.
    let mut posted = Vec::new();
    for i in 0..7 {
        let p = registry.send(&"a".into(), say(&format!("c{i}"), &format!("m{i}"))).await.unwrap();
        assert!(!p.duplicate);
        posted.push(p);
    }
    assert_eq!(store.stored("a").len(), 7, "every message is stored and acknowledged");
    gate.add_permits(100);

    let mut replies = Vec::new();
    for p in posted {
        replies.push(tokio::time::timeout(Duration::from_secs(10), p.reply).await.unwrap().unwrap());
    }
    assert_eq!(turns.load(std::sync::atomic::Ordering::SeqCst), 3, "m0, m1, then one turn for m2 to m6");
    assert_eq!(replies[0].content, "answering m0");
    assert_eq!(replies[1].content, "answering m0+m1");
    let together = &replies[2];
    assert_eq!(together.content, "answering m0+m1+m2+m3+m4+m5+m6", "the brain saw every merged message");
    assert!(replies[2..].iter().all(|r| r.id == together.id), "m2 to m6 get the one combined reply");
    let bot_replies = store.stored("a").into_iter().filter(|m| m.sender == Sender::Bot).count();
    assert_eq!(bot_replies, 3);
    assert!(frontdesk_actors::coalesced_turns() >= merged_before + 4);
}
