//! The sockets' versioned contract, end to end: the widget's `ready` and the agent's `inbox`
//! announce their protocol version; a client asking for a version the server does not speak is
//! refused with `unsupported_protocol` (and can then say the one it does); the frames' JSON
//! itself is pinned by the snapshot tests in `src/ws/protocol.rs`.

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{spawn_app, Backend, Widget};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_socket_announces_its_version_and_refuses_another() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut widget = Widget::connect(&app).await;
    widget.send(json!({ "type": "hello", "bot_id": app.a.bot_id, "protocol": 2 })).await;
    let refused = widget.next().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "unsupported_protocol", "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("speaks protocol 1"), "{refused}");

    // The same socket, in the version the server speaks.
    widget.send(json!({ "type": "hello", "bot_id": app.a.bot_id, "protocol": 1 })).await;
    let ready = widget.until("ready").await.pop().unwrap();
    assert_eq!(ready["protocol"], 1, "{ready}");
    let (status, _) =
        app.get(&app.a.api_key, &format!("/api/conversations/{}", ready["conversation_id"].as_str().unwrap())).await;
    assert_eq!(status, 200, "the hello in version 1 opened a conversation");

    // A client that does not say is served as before, and told the version.
    let mut older = Widget::connect(&app).await;
    let ready = older.hello(&app.a.bot_id, None, None).await;
    assert_eq!(ready["protocol"], 1, "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_socket_announces_its_version_and_refuses_another() {
    let app = spawn_app(Backend::Sqlite).await;
    let (status, created) =
        app.post(&app.a.api_key, "/api/agents", json!({ "name": "Dana Reyes", "email": "dana@clinic.test" })).await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap();
    let base = app.base.replacen("http", "ws", 1);

    let refused = tokio_tungstenite::connect_async(format!("{base}/ws/agent?token={token}&protocol=2")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 400);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["code"], "unsupported_protocol", "{body}");
        }
        other => panic!("a socket in protocol 2 was not refused: {:?}", other.map(|_| ())),
    }

    let request = format!("{base}/ws/agent?token={token}&protocol=1").into_client_request().unwrap();
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("protocol 1 is spoken");
    let inbox = loop {
        match futures::StreamExt::next(&mut socket).await.unwrap().unwrap() {
            tokio_tungstenite::tungstenite::Message::Text(text) => break serde_json::from_str::<Value>(&text).unwrap(),
            _ => continue,
        }
    };
    assert_eq!(inbox["type"], "inbox", "{inbox}");
    assert_eq!(inbox["protocol"], 1, "{inbox}");
    assert_eq!(inbox["agent"]["name"], "Dana Reyes", "{inbox}");
}
