//! The agents' REST inbox at a busy clinic's size: hundreds of conversations, pages of 100,
//! each conversation listed once with its own last message.

use std::collections::HashMap;

use frontdesk::storage::conversations::{self, NewConversation};
use frontdesk::storage::{bots, messages};
use frontdesk_actors::{NewMessage, Sender};
use serde_json::json;

use crate::helpers::{spawn_app, Backend};
use crate::on_both_backends;

on_both_backends!(five_hundred_conversations_list_in_pages_of_a_hundred);

const CONVERSATIONS: usize = 500;
const PAGE: usize = 100;

/// Built through the database layer (REST would take minutes), checked through REST. Each
/// conversation gets a different number of messages, so the last `seq`s differ, and a last
/// message that names its conversation.
async fn five_hundred_conversations_list_in_pages_of_a_hundred(backend: Backend) {
    let app = spawn_app(backend).await;
    let (workspace_id, bot_public) = (app.a.workspace_id, app.a.bot_id.clone());
    let db = app.database();
    let expected: HashMap<frontdesk::ids::ConversationId, (i64, String)> = tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().expect("connection");
        let bot = bots::get(&mut conn, workspace_id, &bot_public).expect("bot").expect("the workspace's bot");
        let variables = json!({});
        let base = frontdesk::storage::now_ms();
        let mut expected = HashMap::new();
        for i in 0..CONVERSATIONS {
            let at = base + i as i64;
            let row = conversations::create(
                &mut conn,
                NewConversation {
                    workspace_id,
                    bot_id: bot.id,
                    bot_public_id: &bot.public_id,
                    external_id: None,
                    channel: "api",
                    variables: &variables,
                    welcome: Some("Welcome!"),
                    now: at,
                },
            )
            .expect("conversation");
            let extra = (i % 5) as i64;
            let batch: Vec<NewMessage> = (0..extra)
                .map(|n| NewMessage {
                    workspace_id: workspace_id.get(),
                    conversation_id: row.id.clone(),
                    seq: 2 + n,
                    sender: if n % 2 == 0 { Sender::Visitor } else { Sender::Bot },
                    agent_id: None,
                    content: format!("message {n} of conversation {i}"),
                    media: None,
                    client_msg_id: None,
                    reply_to: None,
                    created_at: at,
                    metadata: None,
                    fence: None,
                })
                .collect();
            if !batch.is_empty() {
                messages::insert_batch_or_find(&mut conn, &batch).expect("messages");
            }
            let last = match extra {
                0 => "Welcome!".to_owned(),
                n => format!("message {} of conversation {i}", n - 1),
            };
            expected.insert(row.id, (1 + extra, last));
        }
        expected
    })
    .await
    .unwrap();

    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/conversations?limit={PAGE}&cursor={cursor}"),
            None => format!("/api/conversations?limit={PAGE}"),
        };
        let (status, body) = app.get(&app.a.api_key, &path).await;
        assert_eq!(status, 200, "page {pages}: {body}");
        pages += 1;
        let items = body["conversations"].as_array().expect("conversations");
        assert!(items.len() <= PAGE, "a page holds at most {PAGE}");
        for item in items {
            let id = item["id"].as_str().expect("id").to_owned();
            let (last_seq, last_text) =
                expected.get(id.as_str()).unwrap_or_else(|| panic!("unknown conversation {id}"));
            assert_eq!(item["last_message"]["conversation_id"], id.as_str(), "{item}");
            assert_eq!(item["last_message"]["seq"], *last_seq, "{item}");
            assert_eq!(item["last_message"]["content"], last_text.as_str(), "{item}");
            assert_eq!(item["last_seq"], *last_seq, "{item}");
            *seen.entry(id).or_default() += 1;
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages <= CONVERSATIONS / PAGE + 1, "the pages never end");
    }
    assert_eq!(seen.len(), CONVERSATIONS, "every conversation is listed");
    assert!(seen.values().all(|n| *n == 1), "none twice");
    assert!(pages >= CONVERSATIONS / PAGE, "{pages} pages");
}
