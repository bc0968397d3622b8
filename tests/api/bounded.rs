//! Bounded inside: a saturated database answers 503 with `Retry-After` and recovers, a full
//! writer queue refuses rather than grows, and a long conversation resumes page by page with
//! every message once and in order, live ones included.

use frontdesk::ids::{ConversationId, WorkspaceId};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use frontdesk::storage::{conversations, messages, Db, DbConn};
use frontdesk_actors::{NewMessage, Sender, StoreError};
use serde_json::{json, Value};

use crate::helpers::{settings_for, spawn_app, spawn_app_with, Backend, TestDb, Widget};
use crate::on_both_backends;

on_both_backends!(
    a_saturated_database_answers_503_with_retry_after_and_recovers,
    a_full_writer_queue_refuses_instead_of_growing,
    a_long_conversation_resumes_page_by_page_with_live_messages_in_order,
);

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|line| line.starts_with(&format!("{name}{{")))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {text}"))
}

async fn a_saturated_database_answers_503_with_retry_after_and_recovers(backend: Backend) {
    // Two connections, and no waiting for one: a burst must find them all taken.
    let app = spawn_app_with(backend, |args| {
        args.db_pool_size = Some(2);
        args.db_acquire_timeout_ms = Some(0);
    })
    .await;
    let app = Arc::new(app);
    let mut refused = Vec::new();
    for _round in 0..20 {
        let burst: Vec<_> = (0..150)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move {
                    let res = app.http.get(app.url("/api/conversations")).bearer_auth(&app.a.api_key).send().await;
                    let res = res.expect("an answer");
                    let status = res.status().as_u16();
                    let retry_after = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
                    let body: Value = res.json().await.expect("a JSON body");
                    (status, retry_after, body)
                })
            })
            .collect();
        for answer in futures::future::join_all(burst).await {
            let (status, retry_after, body) = answer.unwrap();
            assert!(status == 200 || status == 503, "only served or refused as busy, never {status}: {body}");
            if status == 503 {
                refused.push((retry_after, body));
            }
        }
        if !refused.is_empty() {
            break;
        }
    }
    assert!(!refused.is_empty(), "150 requests at once on two connections: some are refused");
    for (retry_after, body) in &refused {
        assert_eq!(retry_after.as_deref(), Some("1"), "{body}");
        assert!(body["error"].as_str().unwrap().contains("busy"), "{body}");
    }
    // Once the burst is over, the server serves again and counts what it refused.
    let (status, body) = app.get(&app.a.api_key, "/api/conversations").await;
    assert_eq!(status, 200, "{body}");
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metric(&metrics, "frontdesk_db_busy_total") >= refused.len() as u64, "{metrics}");
    assert!(metric(&metrics, "frontdesk_db_waits_total") >= refused.len() as u64, "{metrics}");
}

/// A conversation to write messages into, straight in the database.
async fn conversation(backend: Backend) -> (TestDb, Db, WorkspaceId, ConversationId) {
    let db = TestDb::new(backend);
    let settings = settings_for(&db, |_| {});
    tokio::task::spawn_blocking(move || {
        let store = frontdesk::startup::open_database(&settings).unwrap();
        let mut conn = store.conn().unwrap();
        let workspace = frontdesk::storage::workspaces::create(&mut conn, "Writer", false).unwrap().workspace_id;
        let bot = frontdesk::storage::bots::create(
            &mut conn,
            workspace,
            "Main",
            &frontdesk::storage::BotSettings::default(),
            &[],
        )
        .unwrap();
        let row = conversations::create(
            &mut conn,
            conversations::NewConversation {
                workspace_id: workspace,
                bot_id: bot.id,
                bot_public_id: &bot.public_id,
                external_id: None,
                channel: "api",
                variables: &json!({}),
                welcome: None,
                now: frontdesk::storage::now_ms(),
            },
        )
        .unwrap();
        drop(conn);
        (db, store, workspace, row.id)
    })
    .await
    .unwrap()
}

fn new_message(workspace_id: WorkspaceId, conversation_id: &ConversationId, seq: i64) -> NewMessage {
    NewMessage {
        workspace_id: workspace_id.get(),
        conversation_id: conversation_id.clone(),
        seq,
        sender: if seq % 2 == 0 { Sender::Bot } else { Sender::Visitor },
        agent_id: None,
        content: format!("message {seq}"),
        media: None,
        client_msg_id: None,
        reply_to: None,
        created_at: frontdesk::storage::now_ms(),
        metadata: None,
        fence: None,
    }
}

/// Holds the messages table's write lock from its own thread until told to let go.
fn lock_messages(store: &Db) -> std::sync::mpsc::Sender<()> {
    let (locked_tx, locked) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let store = store.clone();
    std::thread::spawn(move || {
        let mut conn = store.conn().unwrap();
        let (lock, unlock) = match &*conn {
            DbConn::Sqlite(_) => ("BEGIN IMMEDIATE", "ROLLBACK"),
            DbConn::Postgres(_) => ("BEGIN; LOCK TABLE messages IN EXCLUSIVE MODE", "ROLLBACK"),
        };
        conn.batch_execute(lock).unwrap();
        locked_tx.send(()).unwrap();
        let _ = released.recv();
        conn.batch_execute(unlock).unwrap();
    });
    locked.recv().unwrap();
    release
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never: {what}");
}

async fn a_full_writer_queue_refuses_instead_of_growing(backend: Backend) {
    let (_db, store, workspace, conversation) = conversation(backend).await;
    // One thread with room for one message; a sender waits 50 ms for room.
    let writer = frontdesk::storage::MessageWriter::start(store.clone(), 1, 1, Duration::from_millis(50));
    let release = lock_messages(&store);

    // The thread takes the first message and waits for the lock; the second fills the queue.
    // Each append is polled once, which hands its message over (there is room), then waits.
    let queued = || store.stats().writer_queued.load(std::sync::atomic::Ordering::Relaxed);
    let mut first = Box::pin(writer.append(new_message(workspace, &conversation, 1)));
    assert!(futures::poll!(first.as_mut()).is_pending());
    until("the thread took the first message", || queued() == 0).await;
    let mut second = Box::pin(writer.append(new_message(workspace, &conversation, 2)));
    assert!(futures::poll!(second.as_mut()).is_pending());
    assert_eq!(queued(), 1, "the second waits in the queue");

    let third = writer.append(new_message(workspace, &conversation, 3)).await;
    assert!(matches!(third, Err(StoreError::Unavailable(_))), "the queue is full: {third:?}");
    assert_eq!(store.stats().writer_refused.load(std::sync::atomic::Ordering::Relaxed), 1);

    // Once the database moves again, what was accepted is stored, and nothing else.
    release.send(()).unwrap();
    assert!(first.await.is_ok());
    assert!(second.await.is_ok());
    let stored = store.run(move |conn| messages::after(conn, workspace, &conversation, 0, 10)).await.unwrap();
    assert_eq!(stored.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(queued(), 0);
}

/// The stored messages a widget's frames carried, by seq, in the order they came.
fn seqs(frames: &[Value]) -> Vec<i64> {
    frames.iter().filter_map(|f| f.get("message").and_then(|m| m["seq"].as_i64())).collect()
}

async fn a_long_conversation_resumes_page_by_page_with_live_messages_in_order(backend: Backend) {
    const STORED: i64 = 1000;
    let app = spawn_app(backend).await;
    let mut widget = Widget::connect(&app).await;
    let ready = widget.hello(&app.a.bot_id, None, None).await;
    let conversation = ready["conversation_id"].as_str().unwrap().to_owned();
    widget.until("done").await; // the welcome, seq 1
    drop(widget);

    // A long history, written straight into the database (seq 2..=1001); a restart makes the
    // conversation's session start again from what is stored.
    let store = app.database();
    let (workspace, id) = (app.a.workspace_id, ConversationId::from(conversation.as_str()));
    store
        .run(move |conn| {
            let rows: Vec<NewMessage> = (2..=STORED + 1).map(|seq| new_message(workspace, &id, seq)).collect();
            for batch in rows.chunks(200) {
                messages::insert_batch_or_find(conn, batch)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let app = app.restart().await;

    let mut widget = Widget::connect(&app).await;
    widget.hello(&app.a.bot_id, Some(&conversation), Some(0)).await;
    // While the replay is under way (the socket is not even read yet) the conversation goes on:
    // a visitor message and the bot's reply arrive live.
    let (status, sent) = app
        .post(
            &app.a.api_key,
            &format!("/api/conversations/{conversation}/messages?wait=true"),
            json!({ "text": "Where can I park?" }),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    let last = sent["reply"]["seq"].as_i64().expect("the bot's reply");
    assert!(last > STORED + 2, "{sent}");
    let mut frames = Vec::new();
    while seqs(&frames).last() != Some(&last) {
        frames.push(widget.next().await);
    }
    let expected: Vec<i64> = (1..=last).collect();
    assert_eq!(seqs(&frames), expected, "every message once, in order");
    // A ping is still answered, and nothing more was owed.
    widget.send(json!({ "type": "ping" })).await;
    let rest = widget.until("pong").await;
    assert!(seqs(&rest).is_empty(), "{rest:?}");
}
