//! The actors' `ConversationStore` port, implemented on the database.

use actix::Addr;
use async_trait::async_trait;
use frontdesk_actors::{
    Appended, ConversationSnapshot, ConversationStore, NewMessage, OwnershipChange, OwnershipOutcome, Sender,
    StoreError, StoredMessage,
};

use frontdesk_actors::{LeadScorer, Rescore};

use crate::ids::{ConversationId, WorkspaceId};
use crate::storage::{conversations, messages, Db, DbError, MessageWriter};

pub struct DbConversationStore {
    db: Db,
    writer: MessageWriter,
    context_window: i64,
    scorer: Option<Addr<LeadScorer>>,
}

impl DbConversationStore {
    /// `scorer` hears of visitor messages that may change a lead.
    pub fn new(db: Db, writer: MessageWriter, context_window: usize, scorer: Option<Addr<LeadScorer>>) -> Self {
        Self { db, writer, context_window: context_window as i64, scorer }
    }
}

fn store_error(err: DbError) -> StoreError {
    match err {
        DbError::Fenced(token) => StoreError::Fenced(token),
        DbError::Pool(_) | DbError::Task(_) | DbError::Busy(_) => StoreError::Unavailable(err.to_string()),
        other => StoreError::Other(other.to_string()),
    }
}

#[async_trait]
impl ConversationStore for DbConversationStore {
    async fn load(&self, conversation_id: &ConversationId) -> Result<Option<ConversationSnapshot>, StoreError> {
        let id = conversation_id.to_owned();
        let window = self.context_window;
        self.db.run(move |conn| conversations::snapshot(conn, &id, window)).await.map_err(store_error)
    }

    async fn append(&self, message: NewMessage) -> Result<Appended, StoreError> {
        let workspace_id = message.workspace_id;
        let appended = self.writer.append(message).await?;
        if let (Some(scorer), Appended::Inserted(stored)) = (&self.scorer, &appended) {
            let trigger = (stored.sender == Sender::Visitor)
                .then(|| crate::domain::crm::rescore_trigger(&stored.content, stored.seq))
                .flatten();
            if let Some(engagement_only) = trigger {
                let conversation_id = stored.conversation_id.clone();
                scorer.do_send(Rescore { workspace_id, conversation_id, engagement_only });
            }
        }
        Ok(appended)
    }

    async fn find_reply(
        &self,
        workspace_id: i64,
        conversation_id: &ConversationId,
        message_id: i64,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let workspace_id = WorkspaceId(workspace_id);
        let id = conversation_id.to_owned();
        self.db.run(move |conn| messages::reply_to(conn, workspace_id, &id, message_id)).await.map_err(store_error)
    }

    async fn close(
        &self,
        workspace_id: i64,
        conversation_id: &ConversationId,
        at: i64,
        fence: Option<i64>,
    ) -> Result<(), StoreError> {
        let workspace_id = WorkspaceId(workspace_id);
        let id = conversation_id.to_owned();
        self.db.run(move |conn| conversations::close(conn, workspace_id, &id, at, fence)).await.map_err(store_error)?;
        Ok(())
    }

    async fn change_owner(&self, change: OwnershipChange) -> Result<OwnershipOutcome, StoreError> {
        self.db.run(move |conn| conversations::change_owner(conn, &change)).await.map_err(store_error)
    }

    async fn mark_read(
        &self,
        workspace_id: i64,
        conversation_id: &ConversationId,
        reader: Sender,
        seq: i64,
        at: i64,
    ) -> Result<(), StoreError> {
        let workspace_id = WorkspaceId(workspace_id);
        let id = conversation_id.to_owned();
        self.db
            .run(move |conn| conversations::mark_read(conn, workspace_id, &id, reader, seq, at))
            .await
            .map_err(store_error)
    }

    async fn agent_active(
        &self,
        workspace_id: i64,
        conversation_id: &ConversationId,
        at: i64,
    ) -> Result<(), StoreError> {
        let workspace_id = WorkspaceId(workspace_id);
        let id = conversation_id.to_owned();
        self.db.run(move |conn| conversations::agent_active(conn, workspace_id, &id, at)).await.map_err(store_error)
    }

    async fn merge_variables(
        &self,
        workspace_id: i64,
        conversation_id: &ConversationId,
        patch: serde_json::Value,
        fence: Option<i64>,
    ) -> Result<serde_json::Value, StoreError> {
        let workspace_id = WorkspaceId(workspace_id);
        let id = conversation_id.to_owned();
        self.db
            .run(move |conn| {
                conversations::merge_variables(conn, workspace_id, &id, patch, crate::storage::now_ms(), fence)
            })
            .await
            .map_err(store_error)
    }
}
