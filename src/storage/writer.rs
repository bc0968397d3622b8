//! Group commit for messages: the writes of many conversations go into one transaction.
//!
//! Sessions hand their messages to a writer thread and wait; the thread takes everything that
//! has queued up (up to a batch limit), inserts it in one transaction, and only after the commit
//! answers each waiter. One fsync then covers a whole batch, which is what lets thousands of
//! messages a second be acknowledged with every one of them durable. If a batch fails, its
//! messages are retried one transaction each, so one bad row cannot fail its neighbours.
//!
//! Each thread's queue is bounded: when the database falls behind, senders wait for room (up
//! to the acquire timeout, then the message is refused as unavailable, a 503) instead of the
//! queue growing without limit.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use frontdesk_actors::{Appended, StoreError};
use tokio::sync::{mpsc, oneshot};

use super::{conversations, messages, write_tx, Db, DbConn, DbError};
use crate::ids::{ConversationId, WorkspaceId};
use crate::storage::outbox;
use frontdesk_actors::NewMessage;

/// Most messages one transaction takes.
const MAX_BATCH: usize = 512;

struct Job {
    message: NewMessage,
    done: oneshot::Sender<Result<Appended, StoreError>>,
}

/// Hands messages to the writer threads. Cloning shares the threads.
#[derive(Clone)]
pub struct MessageWriter {
    lanes: Vec<mpsc::Sender<Job>>,
    /// How long a message waits for room in a full queue.
    wait: Duration,
    db: Db,
}

impl MessageWriter {
    /// Starts `threads` writer threads (SQLite takes one writer at a time: use 1 there), each
    /// with a queue of `queue` messages; a sender waits up to `wait` for room in a full one.
    pub fn start(db: Db, threads: usize, queue: usize, wait: Duration) -> MessageWriter {
        let lanes = (0..threads.max(1))
            .map(|lane| {
                let (tx, rx) = mpsc::channel::<Job>(queue.max(1));
                let db = db.clone();
                thread::Builder::new()
                    .name(format!("frontdesk-writer-{lane}"))
                    .spawn(move || write_loop(db, rx))
                    .expect("cannot start a message writer thread");
                tx
            })
            .collect();
        MessageWriter { lanes, wait, db }
    }

    /// Persists one message; resolves once it is committed.
    pub async fn append(&self, message: NewMessage) -> Result<Appended, StoreError> {
        // One conversation always goes to the same lane, so its writes stay in order.
        let lane = fxhash(message.conversation_id.as_str()) % self.lanes.len();
        let (done, answer) = oneshot::channel();
        let stats = self.db.stats();
        // Counted before the send, so the thread never takes it off the gauge first.
        stats.writer_queued.fetch_add(1, Ordering::Relaxed);
        let sent = tokio::time::timeout(self.wait, self.lanes[lane].send(Job { message, done })).await;
        if !matches!(sent, Ok(Ok(()))) {
            stats.writer_queued.fetch_sub(1, Ordering::Relaxed);
        }
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(StoreError::Unavailable("message writer stopped".into())),
            Err(_) => {
                stats.writer_refused.fetch_add(1, Ordering::Relaxed);
                return Err(StoreError::Unavailable(format!(
                    "message queue stayed full for {} ms",
                    self.wait.as_millis()
                )));
            }
        }
        answer.await.map_err(|_| StoreError::Unavailable("message writer stopped".into()))?
    }
}

fn fxhash(s: &str) -> usize {
    s.bytes().fold(0usize, |h, b| (h.rotate_left(5) ^ b as usize).wrapping_mul(0x517c_c1b7_2722_0a95))
}

fn write_loop(db: Db, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        db.stats().writer_queued.fetch_sub(batch.len() as i64, Ordering::Relaxed);
        write_batch(&db, batch);
    }
}

fn write_batch(db: &Db, batch: Vec<Job>) {
    let mut conn = match db.conn() {
        Ok(conn) => conn,
        Err(err) => {
            tracing::error!(error = %err, "message writer has no database connection");
            for job in batch {
                let _ = job.done.send(Err(StoreError::Unavailable(err.to_string())));
            }
            return;
        }
    };
    let together = write_tx(&mut conn, |conn| {
        let stale = stale_writes(conn, &batch)?;
        let rows: Vec<NewMessage> = batch
            .iter()
            .enumerate()
            .filter(|(index, _)| !stale.contains(index))
            .map(|(_, job)| job.message.clone())
            .collect();
        let outcomes = messages::insert_batch_or_find(conn, &rows)?;
        announce(conn, &rows, &outcomes)?;
        Ok((stale, outcomes))
    });
    match together {
        Ok((stale, outcomes)) => {
            outbox::end_unit_of_work(true);
            let mut outcomes = outcomes.into_iter();
            for (index, job) in batch.into_iter().enumerate() {
                let answer = match stale.contains(&index) {
                    true => Err(StoreError::Fenced(job.message.fence.unwrap_or_default())),
                    false => outcomes.next().ok_or_else(|| StoreError::Other("message lost in its batch".into())),
                };
                let _ = job.done.send(answer);
            }
        }
        Err(err) if batch.len() == 1 => {
            outbox::end_unit_of_work(false);
            let job = batch.into_iter().next().expect("one job");
            let _ = job.done.send(Err(to_store_error(err)));
        }
        Err(_) => {
            outbox::end_unit_of_work(false);
            for job in batch {
                let alone = write_tx(&mut conn, |conn| {
                    conversations::check_fence(conn, &job.message.conversation_id, job.message.fence)?;
                    let outcome = messages::insert_or_find(conn, &job.message)?;
                    announce(conn, std::slice::from_ref(&job.message), std::slice::from_ref(&outcome))?;
                    Ok(outcome)
                });
                outbox::end_unit_of_work(alone.is_ok());
                let _ = job.done.send(alone.map_err(to_store_error));
            }
        }
    }
}

/// The jobs of the batch whose session has lost its conversation to a newer owner: each
/// conversation's token is checked once, in the batch's transaction.
fn stale_writes(conn: &mut DbConn, batch: &[Job]) -> Result<HashSet<usize>, DbError> {
    let mut verdicts: HashMap<(&ConversationId, i64), bool> = HashMap::new();
    let mut stale = HashSet::new();
    for (index, job) in batch.iter().enumerate() {
        let Some(token) = job.message.fence else { continue };
        let conversation = &job.message.conversation_id;
        let refused = match verdicts.get(&(conversation, token)) {
            Some(refused) => *refused,
            None => {
                let refused = match conversations::check_fence(conn, conversation, Some(token)) {
                    Ok(()) => false,
                    Err(DbError::Fenced(_)) => true,
                    Err(other) => return Err(other),
                };
                verdicts.insert((conversation, token), refused);
                refused
            }
        };
        if refused {
            stale.insert(index);
        }
    }
    Ok(stale)
}

/// Queues `message_created` for every newly stored message, in the batch's transaction.
fn announce(conn: &mut DbConn, rows: &[NewMessage], outcomes: &[Appended]) -> Result<usize, DbError> {
    let events: Vec<outbox::Event<'_>> = rows
        .iter()
        .zip(outcomes)
        .filter_map(|(row, outcome)| match outcome {
            Appended::Inserted(message) => Some(outbox::Event {
                workspace_id: WorkspaceId(row.workspace_id),
                event: "message_created",
                data: serde_json::json!({ "conversation_id": message.conversation_id, "message": message }),
            }),
            Appended::Duplicate(_) => None,
        })
        .collect();
    outbox::emit_many(conn, events, crate::storage::now_ms())
}

fn to_store_error(err: DbError) -> StoreError {
    if let DbError::Fenced(token) = err {
        return StoreError::Fenced(token);
    }
    tracing::error!(error = %err, "message could not be stored");
    match err {
        DbError::Pool(_) | DbError::Busy(_) => StoreError::Unavailable(err.to_string()),
        other => StoreError::Other(other.to_string()),
    }
}
