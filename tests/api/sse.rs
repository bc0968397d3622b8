//! Server-Sent Events: live events, and resumption with `Last-Event-ID`.

use futures_util::StreamExt;
use serde_json::Value;

use crate::helpers::{spawn_app, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(resumes_from_last_event_id_then_streams_live);

/// Reads SSE events (id, event, data) until `stop` says so.
pub struct Events {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Events {
    async fn open(app: &TestApp, conversation: &str, last_event_id: Option<&str>) -> Events {
        Events::open_at(app, &format!("/api/conversations/{conversation}/events"), last_event_id).await
    }

    /// Opens the stream at `path` (a route serving a conversation's events).
    pub async fn open_at(app: &TestApp, path: &str, last_event_id: Option<&str>) -> Events {
        Events::open_url(app, &app.url(path), last_event_id).await
    }

    /// Opens the stream at a full URL (another node's, say), with workspace A's key.
    pub async fn open_url(app: &TestApp, url: &str, last_event_id: Option<&str>) -> Events {
        let mut req = app.http.get(url).bearer_auth(&app.a.api_key);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        Events { body: Box::pin(res.bytes_stream()), buffer: String::new() }
    }

    /// Opens the stream at a full URL with `key` (an API key or an agent token).
    pub async fn open_with_key(app: &TestApp, url: &str, key: &str) -> Events {
        Events::from_response(app.http.get(url).bearer_auth(key).send().await.unwrap())
    }

    /// The events of a response that must be a stream.
    pub fn from_response(res: reqwest::Response) -> Events {
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        Events { body: Box::pin(res.bytes_stream()), buffer: String::new() }
    }

    /// Whether the stream ends (within 20 s) with nothing but keepalives before its end.
    pub async fn ended(&mut self) -> bool {
        loop {
            let rest = self.buffer.replace(": keepalive\n\n", "");
            if !rest.trim().is_empty() {
                return false;
            }
            match tokio::time::timeout(std::time::Duration::from_secs(20), self.body.next()).await {
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(chunk))) => self.buffer.push_str(std::str::from_utf8(&chunk).unwrap()),
                Err(_) => return false,
            }
        }
    }

    pub async fn next(&mut self) -> (Option<i64>, String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if event.is_empty() {
                    continue; // a keepalive comment
                }
                return (id, event, serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(20), self.body.next())
                .await
                .expect("an event within 20 s")
                .expect("stream open")
                .unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

async fn resumes_from_last_event_id_then_streams_live(backend: Backend) {
    let app = spawn_app(backend).await;
    let conversation = app.start_conversation().await;
    app.say(&conversation, "Hello").await; // seq 2, 3
    app.say(&conversation, "Where are you located?").await; // seq 4, 5

    let mut events = Events::open(&app, &conversation, Some("3")).await;
    let (id, kind, data) = events.next().await;
    assert_eq!((id, kind.as_str()), (Some(4), "message"));
    assert_eq!(data["message"]["content"], "Where are you located?");
    let (id, kind, data) = events.next().await;
    assert_eq!((id, kind.as_str()), (Some(5), "done"));
    assert!(data["message"]["content"].as_str().unwrap().contains("Harbour Street"));

    let sender = {
        let http = app.http.clone();
        let url = app.url(&format!("/api/conversations/{conversation}/messages"));
        let key = app.a.api_key.clone();
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(key)
                .json(&serde_json::json!({"text": "Do you take Aetna?"}))
                .send()
                .await
                .unwrap()
        })
    };
    let (id, kind, _) = events.next().await;
    assert_eq!((id, kind.as_str()), (Some(6), "message"));
    let mut deltas = String::new();
    loop {
        let (id, kind, data) = events.next().await;
        match kind.as_str() {
            "delta" => {
                assert_eq!(id, None, "deltas carry no id: they are not replayed");
                deltas.push_str(data["text"].as_str().unwrap());
            }
            "done" => {
                assert_eq!(id, Some(7));
                assert_eq!(data["message"]["content"].as_str().unwrap(), deltas);
                break;
            }
            other => panic!("unexpected event {other}"),
        }
    }
    assert_eq!(sender.await.unwrap().status(), 201);

    // A second client from the start sees the whole history in order.
    let mut from_start = Events::open(&app, &conversation, None).await;
    for expected in 1..=7 {
        assert_eq!(from_start.next().await.0, Some(expected));
    }
}
