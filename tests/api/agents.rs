//! Human agents end to end: a visitor asks for a person, the agent's socket hears of it, the
//! agent takes over while the bot is streaming (the bot stops there), both sides talk with
//! typing and read receipts, the agent hands back and the bot answers again; two agents racing;
//! the silence rule; tenancy; the REST inbox with its filters and a cursor that returns every
//! conversation once while new ones start.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app_with, Backend, Socket, TestApp, Widget};
use crate::on_both_backends;
use crate::webhook_receiver::Receiver;

on_both_backends!(
    a_person_takes_over_mid_reply_talks_with_the_visitor_and_hands_back,
    two_agents_racing_get_one_winner,
    a_silent_agent_hands_the_conversation_back,
    agents_see_and_touch_only_their_own_workspace,
    the_rest_inbox_filters_and_pages_every_conversation_once,
    each_inbox_item_shows_its_own_last_message_unread_count_and_agent,
    with_nobody_online_the_bot_offers_to_take_contact_details,
    every_change_of_hands_is_a_signed_webhook_and_round_robin_assigns_the_queue,
    the_bot_asks_for_a_person_after_questions_it_could_not_answer,
    presence_without_a_socket_anywhere_is_cleared_by_housekeeping,
);

async fn app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |args| {
        args.agent_silence_secs = Some(0);
    })
    .await
}

/// Creates an agent in workspace A (or B); returns `(id, token)`.
async fn new_agent(app: &TestApp, key: &str, name: &str) -> (i64, String) {
    let email = format!("{}@clinic.test", name.to_lowercase().replace(' ', "."));
    let (status, body) = app.post(key, "/api/agents", json!({ "name": name, "email": email })).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["agent"]["role"], "agent");
    assert_eq!(body["agent"]["presence"], "offline");
    (body["agent"]["id"].as_i64().unwrap(), body["token"].as_str().unwrap().to_owned())
}

/// An agent's socket, with helpers for its frames.
struct AgentSocket {
    socket: Socket,
    refs: u64,
}

impl AgentSocket {
    async fn connect(app: &TestApp, token: &str) -> (AgentSocket, Value) {
        let url = format!("{}/ws/agent?token={token}", app.ws_url.trim_end_matches("/ws/widget"));
        let (socket, _) = tokio_tungstenite::connect_async(&url).await.expect("agent socket connects");
        let mut agent = AgentSocket { socket, refs: 0 };
        let inbox = agent.until(|f| f["type"] == "inbox").await;
        (agent, inbox)
    }

    async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), self.socket.next())
                .await
                .expect("an agent frame within 20 s")
                .expect("socket open")
                .expect("frame");
            if let Message::Text(text) = frame {
                return serde_json::from_str(&text).expect("JSON frame");
            }
        }
    }

    async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let frame = self.next().await;
            if wanted(&frame) {
                return frame;
            }
        }
    }

    /// Sends a command and returns its `ack` or `error`.
    async fn command(&mut self, mut frame: Value) -> Value {
        self.refs += 1;
        let reference = self.refs;
        frame["ref"] = json!(reference);
        self.socket.send(Message::Text(frame.to_string())).await.expect("send");
        self.until(|f| (f["type"] == "ack" || f["type"] == "error") && f["ref"] == reference).await
    }
}

fn of(frame: &Value, conversation: &str) -> bool {
    frame["conversation_id"] == conversation
        || frame["message"]["conversation_id"] == conversation
        || frame["conversation"]["id"] == conversation
}

async fn set_bot(app: &TestApp, settings: Value) {
    let path = format!("/api/bots/{}", app.a.bot_id);
    let res = app
        .http
        .patch(app.url(&path))
        .bearer_auth(&app.a.api_key)
        .json(&json!({ "settings": settings }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
}

const LONG_POLICY: &str = "Our cancellation policy: appointments can be cancelled or moved free of charge up to \
    twenty four hours before they start. Later cancellations are charged half the price of the visit, and a \
    missed appointment without notice is charged in full. We make exceptions for emergencies and illness, \
    of course, so please call us as soon as you know you cannot come and we will find a new time together.";

async fn a_person_takes_over_mid_reply_talks_with_the_visitor_and_hands_back(backend: Backend) {
    let app = app(backend).await;
    // A slow typist, so a takeover can land in the middle of a reply.
    set_bot(
        &app,
        json!({ "stream_delay_ms": 150, "policies": [{ "title": "Cancellation policy", "content": LONG_POLICY }] }),
    )
    .await;
    let (agent_id, token) = new_agent(&app, &app.a.api_key, "Dana Reyes").await;
    let (mut agent, _inbox) = AgentSocket::connect(&app, &token).await;
    let (_, me) = app.get(&token, "/api/agents/me").await;
    assert_eq!(me["presence"], "online", "{me}");

    let mut widget = Widget::connect(&app).await;
    let ready = widget.hello(&app.a.bot_id, None, None).await;
    let conversation = ready["conversation_id"].as_str().unwrap().to_owned();
    let welcome = widget.until("done").await.pop().unwrap();
    assert_eq!(welcome["message"]["seq"], 1);

    // The visitor asks for a person: the bot says one is coming, the agent is told at once.
    widget.send(json!({ "type": "message", "text": "Can I talk to a human please?" })).await;
    let done = widget.until("done").await.pop().unwrap();
    assert!(done["message"]["content"].as_str().unwrap().contains("member of our team"), "{done}");
    // A conversation the socket had not shown yet is introduced before its first event.
    let introduced = agent.until(|f| of(f, &conversation)).await;
    assert_eq!(introduced["type"], "conversation", "{introduced}");
    assert_eq!(introduced["conversation"]["owner"], "bot");
    let queued = agent.until(|f| f["type"] == "owner_changed" && of(f, &conversation)).await;
    assert_eq!(queued["owner"], "queued", "{queued}");
    assert_eq!(queued["actor"], "visitor");

    let subscribed = agent.command(json!({ "type": "subscribe", "conversation_id": conversation })).await;
    assert_eq!(subscribed["type"], "ack", "{subscribed}");
    let history = agent.until(|f| f["type"] == "history").await;
    assert!(history["messages"].as_array().unwrap().len() >= 3, "{history}");

    // While the queue waits the bot still answers; the agent takes over in the middle of it.
    widget.send(json!({ "type": "message", "text": "What is your cancellation policy?" })).await;
    agent.until(|f| f["type"] == "delta" && of(f, &conversation)).await;
    let taken = agent.command(json!({ "type": "take_over", "conversation_id": conversation })).await;
    assert_eq!(taken["type"], "ack", "{taken}");

    // The visitor sees the agent join; after that, not one more delta; the cut reply is
    // stored marked interrupted.
    let frames = widget.until("agent_joined").await;
    let joined = frames.last().unwrap();
    assert_eq!(joined["agent"], json!({ "id": agent_id, "name": "Dana Reyes" }));
    let interrupted = widget.until("done").await;
    assert!(interrupted.iter().all(|f| f["type"] != "delta"), "deltas after the takeover: {interrupted:?}");
    let cut = &interrupted.last().unwrap()["message"];
    assert_eq!(cut["metadata"]["interrupted"], true, "{cut}");
    assert!(cut["content"].as_str().unwrap().len() < LONG_POLICY.len(), "{cut}");

    // Both ways, with typing and read receipts.
    agent.command(json!({ "type": "typing", "conversation_id": conversation, "on": true })).await;
    let typing = widget.until("typing").await.pop().unwrap();
    assert_eq!(typing["sender"], "agent");
    let sent =
        agent.command(json!({ "type": "send", "conversation_id": conversation, "text": "Hi, Dana here." })).await;
    assert_eq!(sent["result"]["message"]["sender"], "agent", "{sent}");
    let from_agent = widget.until("message").await.pop().unwrap();
    assert_eq!(from_agent["message"]["content"], "Hi, Dana here.");
    assert_eq!(from_agent["message"]["agent_id"], agent_id);
    assert_eq!(from_agent["message"]["metadata"]["agent"]["name"], "Dana Reyes");
    let seq = from_agent["message"]["seq"].as_i64().unwrap();

    widget.send(json!({ "type": "read", "seq": seq })).await;
    let read = agent.until(|f| f["type"] == "read" && of(f, &conversation)).await;
    assert_eq!(read["reader"], "visitor");
    assert_eq!(read["seq"], seq);
    widget.send(json!({ "type": "typing", "on": true })).await;
    let typing = agent.until(|f| f["type"] == "typing" && of(f, &conversation)).await;
    assert_eq!(typing["sender"], "visitor");
    widget.send(json!({ "type": "message", "text": "Thanks Dana, can I move my visit?" })).await;
    let from_visitor = agent.until(|f| f["type"] == "message" && f["message"]["sender"] == "visitor").await;
    assert_eq!(from_visitor["message"]["content"], "Thanks Dana, can I move my visit?");
    let visitor_seq = from_visitor["message"]["seq"].as_i64().unwrap();
    agent.command(json!({ "type": "read", "conversation_id": conversation, "seq": visitor_seq })).await;
    let receipt = widget.until("read").await.pop().unwrap();
    assert_eq!(receipt["reader"], "agent");
    assert_eq!(receipt["seq"], visitor_seq);

    // No bot reply to that message: the agent owns the conversation.
    let messages = app.messages(&conversation).await;
    let last = messages.last().unwrap();
    assert_eq!(last["sender"], "visitor", "{last}");

    // Hand back: the visitor sees the agent leave, and the bot answers again.
    let back = agent.command(json!({ "type": "hand_back", "conversation_id": conversation })).await;
    assert_eq!(back["type"], "ack", "{back}");
    let left = widget.until("agent_left").await.pop().unwrap();
    assert_eq!(left["agent"]["name"], "Dana Reyes");
    widget.send(json!({ "type": "message", "text": "What is your cancellation policy?" })).await;
    let answer = widget.until("done").await.pop().unwrap();
    assert!(answer["message"]["content"].as_str().unwrap().contains("twenty four hours"), "{answer}");
    assert!(answer["message"]["metadata"]["interrupted"].is_null());

    // Every change is on record, with who made it.
    let (status, detail) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}/detail")).await;
    assert_eq!(status, 200, "{detail}");
    let moves: Vec<(String, String, String)> = detail["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (t["from"].as_str().unwrap().into(), t["to"].as_str().unwrap().into(), t["by"].as_str().unwrap().into())
        })
        .collect();
    let expected = [("bot", "queued", "visitor"), ("queued", "agent", "agent"), ("agent", "bot", "agent")];
    assert_eq!(moves, expected.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned())));
    assert_eq!(detail["owner"], "bot");
    assert_eq!(detail["agent_read_seq"], visitor_seq);

    // Closing the socket takes the agent offline.
    drop(agent);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, me) = app.get(&token, "/api/agents/me").await;
        if me["presence"] == "offline" {
            break;
        }
        assert!(Instant::now() < deadline, "still {me}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn two_agents_racing_get_one_winner(backend: Backend) {
    let app = app(backend).await;
    let (first, _) = new_agent(&app, &app.a.api_key, "First Agent").await;
    let (second, _) = new_agent(&app, &app.a.api_key, "Second Agent").await;
    for round in 0..5 {
        let conversation = app.start_conversation().await;
        let path = format!("/api/conversations/{conversation}/takeover");
        let (a, b) = futures::join!(
            app.post(&app.a.api_key, &path, json!({ "agent_id": first })),
            app.post(&app.a.api_key, &path, json!({ "agent_id": second })),
        );
        let statuses = [a.0, b.0];
        assert!(statuses.contains(&200) && statuses.contains(&409), "round {round}: {a:?} {b:?}");
        let loser = if a.0 == 409 { &a.1 } else { &b.1 };
        assert!(loser["error"].as_str().unwrap().contains("already taken over"), "{loser}");
        let winner = if a.0 == 200 { first } else { second };
        let (_, view) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}")).await;
        assert_eq!(view["owner"], "agent");
        assert_eq!(view["agent"]["id"], winner, "{view}");
        // The same agent asking again is not a conflict.
        let (again, _) = app.post(&app.a.api_key, &path, json!({ "agent_id": winner })).await;
        assert_eq!(again, 200);
    }
}

async fn a_silent_agent_hands_the_conversation_back(backend: Backend) {
    let app = spawn_app_with(backend, |args| args.agent_silence_secs = Some(1)).await;
    let (agent_id, token) = new_agent(&app, &app.a.api_key, "Quiet Agent").await;
    let conversation = app.start_conversation().await;
    let (status, _) = app.post(&token, &format!("/api/conversations/{conversation}/takeover"), json!({})).await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, view) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}")).await;
        if view["owner"] == "bot" {
            break;
        }
        assert_eq!(view["agent"]["id"], agent_id);
        assert!(Instant::now() < deadline, "still owned: {view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, detail) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}/detail")).await;
    let last = detail["transitions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["by"], "system", "{last}");
    assert!(last["reason"].as_str().unwrap().contains("silent"), "{last}");
    // And the bot answers again.
    let reply = app.say(&conversation, "Hello").await;
    assert_eq!(reply["reply"]["sender"], "bot", "{reply}");
}

async fn agents_see_and_touch_only_their_own_workspace(backend: Backend) {
    let app = app(backend).await;
    let (_, a_token) = new_agent(&app, &app.a.api_key, "Agent A").await;
    let (b_id, b_token) = new_agent(&app, &app.b.api_key, "Agent B").await;
    let (mut b_socket, _) = AgentSocket::connect(&app, &b_token).await;
    let conversation = app.start_conversation().await;
    app.say(&conversation, "Hello from workspace A").await;

    let (status, list) = app.get(&b_token, "/api/conversations").await;
    assert_eq!(status, 200, "{list}");
    assert!(list["conversations"].as_array().unwrap().iter().all(|c| c["id"] != conversation.as_str()), "{list}");
    for (method, path) in [
        ("POST", format!("/api/conversations/{conversation}/takeover")),
        ("GET", format!("/api/conversations/{conversation}/detail")),
        ("POST", format!("/api/conversations/{conversation}/read")),
    ] {
        let (status, body) =
            if method == "POST" { app.post(&b_token, &path, json!({})).await } else { app.get(&b_token, &path).await };
        assert_eq!(status, 404, "{path}: {body}");
    }
    // A's API key cannot act as B's agent, nor an agent as someone else.
    let (status, _) = app
        .post(&app.a.api_key, &format!("/api/conversations/{conversation}/takeover"), json!({ "agent_id": b_id }))
        .await;
    assert_eq!(status, 404);
    let (status, _) =
        app.post(&a_token, &format!("/api/conversations/{conversation}/takeover"), json!({ "agent_id": b_id })).await;
    assert_eq!(status, 403);
    // An agent's token reaches the conversations and what the inbox shows beside them, not
    // the admin routes.
    let (status, _) = app.get(&a_token, "/api/webhooks").await;
    assert_eq!(status, 403);
    let (status, _) = app.post(&a_token, "/api/bookings", json!({})).await;
    assert_eq!(status, 403);
    // B's socket refuses A's conversation and heard nothing of it.
    let refused = b_socket.command(json!({ "type": "take_over", "conversation_id": conversation })).await;
    assert_eq!(refused["type"], "error", "{refused}");
    let refused = b_socket.command(json!({ "type": "subscribe", "conversation_id": conversation })).await;
    assert_eq!(refused["type"], "error", "{refused}");
    // Only a pong comes back: no frame about A's conversation reached B's socket.
    b_socket.socket.send(Message::Text(json!({ "type": "ping", "ref": "last" }).to_string())).await.unwrap();
    let next = b_socket.next().await;
    assert_eq!(next["type"], "pong", "B's socket heard of something: {next}");
    let (_, view) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}")).await;
    assert_eq!(view["owner"], "bot");
}

async fn the_rest_inbox_filters_and_pages_every_conversation_once(backend: Backend) {
    let app = app(backend).await;
    let (agent_id, token) = new_agent(&app, &app.a.api_key, "Inbox Agent").await;
    let mut existing = HashSet::new();
    for _ in 0..23 {
        existing.insert(app.start_conversation().await);
    }
    // Page through while new conversations keep starting: each existing one exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/conversations?limit=5&cursor={c}"),
            None => "/api/conversations?limit=5".to_owned(),
        };
        let (status, page) = app.get(&token, &path).await;
        assert_eq!(status, 200, "{page}");
        for item in page["conversations"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        app.start_conversation().await;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a conversation came twice");
    assert!(existing.is_subset(&unique), "missing {:?}", existing.difference(&unique).collect::<Vec<_>>());

    // Filters: owner, agent, unread; read clears unread; status.
    let mine = app.start_conversation().await;
    app.say(&mine, "Is anyone there?").await;
    let (status, _) = app.post(&token, &format!("/api/conversations/{mine}/takeover"), json!({})).await;
    assert_eq!(status, 200);
    let (_, owned) = app.get(&token, &format!("/api/conversations?owner=agent&agent_id={agent_id}")).await;
    let owned = owned["conversations"].as_array().unwrap();
    assert_eq!(owned.len(), 1);
    assert_eq!(owned[0]["id"], mine.as_str());
    assert_eq!(owned[0]["unread"], 1);
    assert_eq!(owned[0]["last_message"]["sender"], "bot");
    let (_, unread) = app.get(&token, "/api/conversations?unread=true").await;
    assert!(unread["conversations"].as_array().unwrap().iter().any(|c| c["id"] == mine.as_str()));

    // Writing as the agent over REST, and marking read.
    let (status, sent) =
        app.post(&token, &format!("/api/conversations/{mine}/agent-messages"), json!({ "text": "Yes, I am." })).await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["message"]["sender"], "agent");
    let (status, read) = app.post(&token, &format!("/api/conversations/{mine}/read"), json!({})).await;
    assert_eq!(status, 200, "{read}");
    let (_, unread) = app.get(&token, "/api/conversations?unread=true").await;
    assert!(unread["conversations"].as_array().unwrap().iter().all(|c| c["id"] != mine.as_str()));
    app.post(&app.a.api_key, &format!("/api/conversations/{mine}/close"), json!({})).await;
    let (_, closed) = app.get(&token, "/api/conversations?status=closed").await;
    assert_eq!(closed["conversations"].as_array().unwrap().len(), 1);

    // Bad input: a clear 4xx and nothing changed.
    for path in ["/api/conversations?owner=robot", "/api/conversations?limit=0", "/api/conversations?cursor=zzz"] {
        let (status, body) = app.get(&token, path).await;
        assert_eq!(status, 400, "{path}: {body}");
    }
    let other = app.start_conversation().await;
    let (status, body) = app.post(&app.a.api_key, &format!("/api/conversations/{other}/takeover"), json!({})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) =
        app.post(&token, &format!("/api/conversations/{other}/agent-messages"), json!({ "text": "hi" })).await;
    assert_eq!(status, 409, "writing without taking over: {body}");
    let (status, body) = app
        .post(&app.a.api_key, "/api/agents", json!({ "name": "Inbox Agent", "email": "inbox.agent@clinic.test" }))
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = app.post(&app.a.api_key, "/api/agents", json!({ "name": "X", "email": "nope" })).await;
    assert_eq!(status, 422);
    let (_, view) = app.get(&app.a.api_key, &format!("/api/conversations/{other}")).await;
    assert_eq!(view["owner"], "bot");
}

async fn with_nobody_online_the_bot_offers_to_take_contact_details(backend: Backend) {
    let app = app(backend).await;
    new_agent(&app, &app.a.api_key, "Offline Agent").await;
    let conversation = app.start_conversation().await;
    let reply = app.say(&conversation, "I want to speak to someone from your team").await;
    let text = reply["reply"]["content"].as_str().unwrap();
    assert!(text.contains("No one from our team is online") && text.contains("email or phone"), "{text}");
    // The request waits in the queue for the first agent who comes in.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, view) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}")).await;
        if view["owner"] == "queued" {
            assert!(view["handoff_requested_at"].is_i64(), "{view}");
            break;
        }
        assert!(Instant::now() < deadline, "{view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Leaving contact details makes a lead, as anywhere else in a conversation.
    app.say(&conversation, "I'm Maria Lopez, maria.lopez@example.com").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, leads) = app.get(&app.a.api_key, "/api/leads").await;
        let found = leads.to_string().contains("maria.lopez@example.com");
        if found {
            break;
        }
        assert!(Instant::now() < deadline, "no lead: {leads}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn every_change_of_hands_is_a_signed_webhook_and_round_robin_assigns_the_queue(backend: Backend) {
    let app = spawn_app_with(backend, |args| {
        args.agent_silence_secs = Some(0);
        args.auto_assign = Some(true);
        args.webhook_allow_loopback = Some(true);
        args.webhook_poll_ms = Some(50);
    })
    .await;
    let receiver = Receiver::start().await;
    let events = json!(["handoff_requested", "agent_assigned", "handed_back", "conversation_closed"]);
    let (status, body) =
        app.post(&app.a.api_key, "/api/webhooks", json!({ "url": receiver.url("/hooks"), "events": events })).await;
    assert_eq!(status, 201, "{body}");

    // Two agents online; three conversations ask for a person: the queue goes round the agents.
    let (first, first_token) = new_agent(&app, &app.a.api_key, "Round One").await;
    let (second, second_token) = new_agent(&app, &app.a.api_key, "Round Two").await;
    for token in [&first_token, &second_token] {
        let (status, body) = app.put_json(token, "/api/agents/me/presence", json!({ "presence": "online" })).await;
        assert_eq!(status, 200, "{body}");
    }
    let mut assigned = Vec::new();
    for _ in 0..3 {
        let conversation = app.start_conversation().await;
        let (status, view) = app
            .post(&app.a.api_key, &format!("/api/conversations/{conversation}/handoff"), json!({ "reason": "VIP" }))
            .await;
        assert_eq!(status, 200, "{view}");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (_, view) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}")).await;
            if view["owner"] == "agent" {
                assigned.push(view["agent"]["id"].as_i64().unwrap());
                break;
            }
            assert!(Instant::now() < deadline, "never assigned: {view}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if assigned.len() == 3 {
            let (status, _) = app
                .post(
                    &app.a.api_key,
                    &format!("/api/conversations/{conversation}/handback"),
                    json!({ "reason": "done" }),
                )
                .await;
            assert_eq!(status, 200);
            app.post(&app.a.api_key, &format!("/api/conversations/{conversation}/close"), json!({})).await;
        }
    }
    assert!(assigned[0] != assigned[1] && assigned[2] == assigned[0], "not in turn: {assigned:?} ({first}, {second})");

    // handoff_requested ×3, agent_assigned ×3, handed_back, conversation_closed.
    let got = receiver.wait_for(8, Duration::from_secs(30)).await;
    let mut names: Vec<String> = got.iter().map(|r| r.json()["event"].as_str().unwrap().to_owned()).collect();
    names.sort();
    let expected = [
        "agent_assigned",
        "agent_assigned",
        "agent_assigned",
        "conversation_closed",
        "handed_back",
        "handoff_requested",
        "handoff_requested",
        "handoff_requested",
    ];
    assert_eq!(names, expected);
    let assignment = got.iter().map(|r| r.json()).find(|e| e["event"] == "agent_assigned").unwrap();
    assert_eq!(assignment["data"]["owner"], "agent");
    assert_eq!(assignment["data"]["previous_owner"], "queued");
    assert_eq!(assignment["data"]["by"], "system");
    assert!(assignment["data"]["agent"]["name"].as_str().unwrap().starts_with("Round"), "{assignment}");
    let request = got.iter().map(|r| r.json()).find(|e| e["event"] == "handoff_requested").unwrap();
    assert_eq!(request["data"]["by"], "api");
    assert_eq!(request["data"]["reason"], "VIP");
}

async fn the_bot_asks_for_a_person_after_questions_it_could_not_answer(backend: Backend) {
    let app = app(backend).await;
    set_bot(&app, json!({ "handoff_after_unanswered": 2 })).await;
    let conversation = app.start_conversation().await;
    let first = app.say(&conversation, "Do you repair bicycles?").await;
    assert_eq!(first["reply"]["metadata"]["unanswered"], true, "{first}");
    let (_, view) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}")).await;
    assert_eq!(view["owner"], "bot", "one unanswered question is not yet enough");
    app.say(&conversation, "What about scooters?").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, detail) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}/detail")).await;
        if detail["owner"] == "queued" {
            let last = detail["transitions"].as_array().unwrap().last().unwrap().clone();
            assert_eq!(last["by"], "rule", "{last}");
            assert!(last["reason"].as_str().unwrap().contains("2 questions"), "{last}");
            break;
        }
        assert!(Instant::now() < deadline, "{detail}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn each_inbox_item_shows_its_own_last_message_unread_count_and_agent(backend: Backend) {
    let app = app(backend).await;
    let (agent_id, token) = new_agent(&app, &app.a.api_key, "Page Agent").await;
    // Quiet: only the welcome. Read: one question answered, then read by the agents.
    // Waiting: two questions answered, taken over, then a third question nobody answered.
    let quiet = app.start_conversation().await;
    let read = app.start_conversation().await;
    app.say(&read, "Where are you located?").await;
    let (status, _) = app.post(&token, &format!("/api/conversations/{read}/read"), json!({})).await;
    assert_eq!(status, 200);
    let waiting = app.start_conversation().await;
    app.say(&waiting, "What are your hours?").await;
    app.say(&waiting, "Do you take Aetna?").await;
    let (status, _) = app.post(&token, &format!("/api/conversations/{waiting}/takeover"), json!({})).await;
    assert_eq!(status, 200);
    // Nobody answers it (an agent owns the conversation): not waited for.
    let (status, last_question) = app
        .post(
            &app.a.api_key,
            &format!("/api/conversations/{waiting}/messages?wait=false"),
            json!({ "text": "Hello? Anyone?" }),
        )
        .await;
    assert_eq!(status, 201, "{last_question}");
    // One more conversation in the other workspace, which this page must not show.
    let (status, _) = app.post(&app.b.api_key, "/api/conversations", json!({})).await;
    assert_eq!(status, 201);

    let (status, page) = app.get(&token, "/api/conversations?limit=50").await;
    assert_eq!(status, 200, "{page}");
    let items = page["conversations"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{page}");
    let item = |id: &str| items.iter().find(|item| item["id"] == id).unwrap_or_else(|| panic!("{id} in {page}"));
    let shown = |id: &str| {
        let item = item(id);
        (
            item["last_seq"].as_i64().unwrap(),
            item["last_message"]["seq"].as_i64().unwrap(),
            item["last_message"]["sender"].as_str().unwrap().to_owned(),
            item["unread"].as_i64().unwrap(),
        )
    };
    assert_eq!(shown(&quiet), (1, 1, "bot".into(), 0));
    assert_eq!(shown(&read), (3, 3, "bot".into(), 0));
    assert_eq!(shown(&waiting), (6, 6, "visitor".into(), 3));
    assert!(item(&quiet)["waiting_since"].is_null());
    assert!(item(&read)["waiting_since"].is_null());
    assert_eq!(item(&waiting)["waiting_since"], last_question["message"]["created_at"]);
    assert_eq!(item(&waiting)["agent"], json!({ "id": agent_id, "name": "Page Agent" }));
    assert!(item(&quiet)["agent"].is_null());
    for id in [&quiet, &read, &waiting] {
        assert_eq!(item(id)["bot_id"], app.a.bot_id.as_str());
    }
}

/// An agent left "online" with no socket on any node (their node died, or they set it by hand
/// and went) is set offline by the housekeeping job; an agent whose socket is open stays online
/// although they too were last seen before the sweep.
async fn presence_without_a_socket_anywhere_is_cleared_by_housekeeping(backend: Backend) {
    let app = spawn_app_with(backend, |args| {
        args.sweep_secs = Some(1);
    })
    .await;
    let (_, gone) = new_agent(&app, &app.a.api_key, "Gone Agent").await;
    let (_, here) = new_agent(&app, &app.a.api_key, "Here Agent").await;
    // The agent with a socket is seen first: any sweep that finds the other unseen long enough
    // looks at them too.
    let (_socket, _inbox) = AgentSocket::connect(&app, &here).await;
    let (_, me) = app.get(&here, "/api/agents/me").await;
    assert_eq!(me["presence"], "online", "{me}");
    let (status, body) = app.put_json(&gone, "/api/agents/me/presence", json!({ "presence": "online" })).await;
    assert_eq!(status, 200, "{body}");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, me) = app.get(&gone, "/api/agents/me").await;
        if me["presence"] == "offline" {
            break;
        }
        assert!(Instant::now() < deadline, "still {me}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The sweep that cleared the other passed over this agent: their socket is open.
    let (_, me) = app.get(&here, "/api/agents/me").await;
    assert_eq!(me["presence"], "online", "an agent with an open socket stays online: {me}");
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("frontdesk_job_rounds_total{") && l.contains("job=\"sweeps\"")),
        "the job's rounds are counted: {metrics}"
    );
}
