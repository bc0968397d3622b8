//! The actors' `ConversationStore` port, implemented on the database.

use async_trait::async_trait;
use frontdesk_actors::{Appended, ConversationSnapshot, ConversationStore, NewMessage, StoreError, StoredMessage};

use super::{conversations, messages, Db, DbError, MessageWriter};

pub struct DbConversationStore {
    db: Db,
    writer: MessageWriter,
    context_window: i64,
}

impl DbConversationStore {
    pub fn new(db: Db, writer: MessageWriter, context_window: usize) -> Self {
        Self { db, writer, context_window: context_window as i64 }
    }
}

fn store_error(err: DbError) -> StoreError {
    match err {
        DbError::Pool(_) | DbError::Task(_) => StoreError::Unavailable(err.to_string()),
        other => StoreError::Other(other.to_string()),
    }
}

#[async_trait]
impl ConversationStore for DbConversationStore {
    async fn load(&self, conversation_id: &str) -> Result<Option<ConversationSnapshot>, StoreError> {
        let id = conversation_id.to_owned();
        let window = self.context_window;
        self.db.run(move |conn| conversations::snapshot(conn, &id, window)).await.map_err(store_error)
    }

    async fn append(&self, message: NewMessage) -> Result<Appended, StoreError> {
        self.writer.append(message).await
    }

    async fn find_reply(
        &self,
        workspace_id: i64,
        conversation_id: &str,
        message_id: i64,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let id = conversation_id.to_owned();
        self.db.run(move |conn| messages::reply_to(conn, workspace_id, &id, message_id)).await.map_err(store_error)
    }

    async fn close(&self, workspace_id: i64, conversation_id: &str, at: i64) -> Result<(), StoreError> {
        let id = conversation_id.to_owned();
        let queued =
            self.db.run(move |conn| conversations::close(conn, workspace_id, &id, at)).await.map_err(store_error)?;
        if queued {
            crate::webhooks::outbox::committed();
        }
        Ok(())
    }
}
