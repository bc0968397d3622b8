//! The widget socket: streamed replies, resume with exactly the missed messages, dedup.

use futures_util::SinkExt;
use serde_json::json;

use crate::helpers::{spawn_app, Backend, Widget};
use crate::on_both_backends;

on_both_backends!(
    streams_a_reply_in_chunks,
    a_bot_with_allowed_origins_refuses_other_pages,
    resume_replays_exactly_the_missed_messages,
    resending_a_client_msg_id_never_stores_twice,
    malformed_frames_get_an_error_and_the_socket_stays_usable,
    a_graceful_restart_tells_the_widget_to_reconnect_and_it_resumes,
);

async fn a_graceful_restart_tells_the_widget_to_reconnect_and_it_resumes(backend: Backend) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::Message;

    let app = spawn_app(backend).await;
    let mut widget = Widget::connect(&app).await;
    let ready = widget.hello(&app.a.bot_id, None, None).await;
    let conversation = ready["conversation_id"].as_str().unwrap().to_owned();
    widget.until("done").await; // the welcome, seq 1
    widget.send(json!({ "type": "message", "client_msg_id": "before", "text": "Hello" })).await;
    widget.until("done").await; // seq 2 and 3

    app.shut_down_gracefully().await;
    let close = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), widget.socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.expect("a close frame with a reason"),
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Restart, "1012: service restart");
    assert!(close.reason.contains("reconnect"), "{}", close.reason);

    // The widget reconnects (here: to the same server, back up) and resumes from its last seq.
    let app = app.restart().await;
    let mut widget = Widget::connect(&app).await;
    let ready = widget.hello(&app.a.bot_id, Some(&conversation), Some(3)).await;
    assert_eq!(ready["resumed"], true, "{ready}");
    widget.send(json!({ "type": "message", "client_msg_id": "after", "text": "Where are you located?" })).await;
    let frames = widget.until("done").await;
    let done = frames.last().unwrap();
    assert_eq!(done["message"]["seq"], 5, "nothing lost or repeated across the restart: {done}");
}

async fn streams_a_reply_in_chunks(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut widget = Widget::connect(&app).await;
    let ready = widget.hello(&app.a.bot_id, None, None).await;
    assert_eq!(ready["resumed"], false);
    let welcome = widget.next().await;
    assert_eq!(welcome["type"], "done", "the welcome message comes first: {welcome}");
    assert_eq!(welcome["message"]["seq"], 1);
    assert!(welcome["message"]["content"].as_str().unwrap().contains("Workspace A"));

    widget.send(json!({"type": "message", "client_msg_id": "m-1", "text": "What are your opening hours?"})).await;
    let frames = widget.until("done").await;
    let ack = frames.iter().find(|f| f["type"] == "ack").expect("an ack");
    assert_eq!(ack["client_msg_id"], "m-1");
    assert_eq!(ack["duplicate"], false);
    assert_eq!(ack["message"]["seq"], 2);
    let deltas: Vec<&str> =
        frames.iter().filter(|f| f["type"] == "delta").map(|f| f["text"].as_str().unwrap()).collect();
    assert!(deltas.len() >= 2, "the reply streams in several chunks: {frames:?}");
    let done = frames.last().unwrap();
    assert_eq!(done["message"]["sender"], "bot");
    assert_eq!(done["message"]["seq"], 3);
    assert_eq!(done["message"]["reply_to"], ack["message"]["id"]);
    let reply = done["message"]["content"].as_str().unwrap();
    assert_eq!(deltas.concat(), reply, "the deltas add up to the stored reply");
    assert!(reply.contains("Monday to Friday"), "answered from the company facts: {reply}");

    // Stored, in order, exactly once.
    let conversation = ready["conversation_id"].as_str().unwrap();
    let stored = app.messages(conversation).await;
    let seqs: Vec<i64> = stored.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
}

async fn resume_replays_exactly_the_missed_messages(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut first = Widget::connect(&app).await;
    let ready = first.hello(&app.a.bot_id, None, None).await;
    let conversation = ready["conversation_id"].as_str().unwrap().to_owned();
    first.until("done").await; // welcome, seq 1
    first.send(json!({"type": "message", "text": "Hello"})).await;
    first.until("done").await; // seq 2, 3
    drop(first);

    // While the widget is away the conversation goes on over REST: seq 4..7.
    app.say(&conversation, "Where are you located?").await;
    app.say(&conversation, "Do you take Aetna?").await;

    let mut again = Widget::connect(&app).await;
    let ready = again.hello(&app.a.bot_id, Some(&conversation), Some(3)).await;
    assert_eq!(ready["resumed"], true);
    assert_eq!(ready["conversation_id"], conversation.as_str());
    // The socket keeps answering while the replay is read: the pong may come at any point.
    again.send(json!({"type": "ping"})).await;
    let mut frames: Vec<serde_json::Value> = Vec::new();
    while !(frames.iter().any(|f| f["type"] == "pong") && frames.iter().any(|f| f["message"]["seq"] == 7)) {
        frames.push(again.next().await);
    }
    let replayed: Vec<i64> =
        frames.iter().filter(|f| f.get("message").is_some()).map(|f| f["message"]["seq"].as_i64().unwrap()).collect();
    assert_eq!(replayed, vec![4, 5, 6, 7], "exactly the missed messages, in order: {frames:?}");
    assert_eq!(frames.len(), 5, "nothing but the replay and the pong: {frames:?}");

    // And it goes on live from there.
    again.send(json!({"type": "message", "text": "thanks"})).await;
    let live = again.until("done").await;
    assert_eq!(live.last().unwrap()["message"]["seq"], 9);
}

async fn resending_a_client_msg_id_never_stores_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut widget = Widget::connect(&app).await;
    let ready = widget.hello(&app.a.bot_id, None, None).await;
    let conversation = ready["conversation_id"].as_str().unwrap().to_owned();
    widget.until("done").await;
    let frame = json!({"type": "message", "client_msg_id": "same", "text": "Where can I park?"});
    widget.send(frame.clone()).await;
    let first = widget.until("done").await;
    let first_ack = first.iter().find(|f| f["type"] == "ack").unwrap().clone();
    widget.send(frame).await;
    let second_ack = widget.until("ack").await.pop().unwrap();
    assert_eq!(second_ack["duplicate"], true);
    assert_eq!(second_ack["message"]["id"], first_ack["message"]["id"]);
    assert_eq!(second_ack["message"]["seq"], first_ack["message"]["seq"]);
    assert_eq!(app.messages(&conversation).await.len(), 3, "welcome, question, reply: nothing twice");
}

async fn malformed_frames_get_an_error_and_the_socket_stays_usable(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut widget = Widget::connect(&app).await;
    let cases = [
        ("{not json", "malformed"),
        (r#"{"type":"message","text":"hi"}"#, "hello"),
        (r#"{"type":"dance"}"#, "unknown frame type"),
        (r#"{"type":"hello"}"#, "bot_id"),
        (r#"{"type":"hello","bot_id":42}"#, "bot_id"),
        (r#"{"type":"hello","bot_id":"bot_nope"}"#, "bot not found"),
    ];
    for (raw, expected) in cases {
        widget.socket.send(tokio_tungstenite::tungstenite::Message::Text(raw.into())).await.unwrap();
        let error = widget.next().await;
        assert_eq!(error["type"], "error", "{raw} → {error}");
        assert!(error["error"].as_str().unwrap().contains(expected), "{raw} → {error}");
    }
    let ready = widget.hello(&app.a.bot_id, None, None).await;
    widget.until("done").await;
    for (raw, expected) in [
        (json!({"type": "message", "text": 7}), "`text`"),
        (json!({"type": "message", "text": "   "}), "empty"),
        (json!({"type": "message", "text": "x".repeat(1001)}), "limit"),
    ] {
        widget.send(raw.clone()).await;
        let error = widget.next().await;
        assert_eq!(error["type"], "error", "{raw} → {error}");
        assert!(error["error"].as_str().unwrap().contains(expected), "{raw} → {error}");
    }
    widget.send(json!({"type": "message", "text": "Hello"})).await;
    let ack = widget.until("ack").await.pop().unwrap();
    assert_eq!(ack["message"]["seq"], 2, "nothing was stored for the bad frames");
    widget.until("done").await;
    let conversation = ready["conversation_id"].as_str().unwrap();
    assert_eq!(app.messages(conversation).await.len(), 3);
}

async fn a_bot_with_allowed_origins_refuses_other_pages(backend: Backend) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = spawn_app(backend).await;
    let res = app
        .http
        .patch(app.url(&format!("/api/bots/{}", app.a.bot_id)))
        .bearer_auth(&app.a.api_key)
        .json(&json!({"allowed_origins": ["https://bright-smile.example"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for (origin, allowed) in [("https://evil.example", false), ("https://bright-smile.example", true)] {
        let mut request = app.ws_url.as_str().into_client_request().unwrap();
        request.headers_mut().insert("origin", origin.parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let mut widget = Widget { socket };
        widget.send(json!({"type": "hello", "bot_id": app.a.bot_id})).await;
        let answer = widget.next().await;
        if allowed {
            assert_eq!(answer["type"], "ready", "{origin}: {answer}");
        } else {
            assert_eq!(answer["type"], "error", "{origin}: {answer}");
            assert!(answer["error"].as_str().unwrap().contains("origin"));
        }
    }
}
