//! Group commit for messages: the writes of many conversations go into one transaction.
//!
//! Sessions hand their messages to a writer thread and wait; the thread takes everything that
//! has queued up (up to a batch limit), inserts it in one transaction, and only after the commit
//! answers each waiter. One fsync then covers a whole batch, which is what lets thousands of
//! messages a second be acknowledged with every one of them durable. If a batch fails, its
//! messages are retried one transaction each, so one bad row cannot fail its neighbours.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::thread;

use frontdesk_actors::{Appended, StoreError};
use tokio::sync::oneshot;

use super::{conversations, messages, write_tx, Db, DbConn, DbError};
use crate::webhooks::outbox;
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
}

impl MessageWriter {
    /// Starts `threads` writer threads (SQLite takes one writer at a time: use 1 there).
    pub fn start(db: Db, threads: usize) -> MessageWriter {
        let lanes = (0..threads.max(1))
            .map(|lane| {
                let (tx, rx) = mpsc::channel::<Job>();
                let db = db.clone();
                thread::Builder::new()
                    .name(format!("frontdesk-writer-{lane}"))
                    .spawn(move || write_loop(db, rx))
                    .expect("cannot start a message writer thread");
                tx
            })
            .collect();
        MessageWriter { lanes }
    }

    /// Persists one message; resolves once it is committed.
    pub async fn append(&self, message: NewMessage) -> Result<Appended, StoreError> {
        // One conversation always goes to the same lane, so its writes stay in order.
        let lane = fxhash(&message.conversation_id) % self.lanes.len();
        let (done, answer) = oneshot::channel();
        self.lanes[lane]
            .send(Job { message, done })
            .map_err(|_| StoreError::Unavailable("message writer stopped".into()))?;
        answer.await.map_err(|_| StoreError::Unavailable("message writer stopped".into()))?
    }
}

fn fxhash(s: &str) -> usize {
    s.bytes().fold(0usize, |h, b| (h.rotate_left(5) ^ b as usize).wrapping_mul(0x517c_c1b7_2722_0a95))
}

fn write_loop(db: Db, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
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
        let queued = announce(conn, &rows, &outcomes)?;
        Ok((stale, outcomes, queued))
    });
    match together {
        Ok((stale, outcomes, queued)) => {
            if queued > 0 {
                outbox::committed();
            }
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
            let job = batch.into_iter().next().expect("one job");
            let _ = job.done.send(Err(to_store_error(err)));
        }
        Err(_) => {
            for job in batch {
                let alone = write_tx(&mut conn, |conn| {
                    conversations::check_fence(conn, &job.message.conversation_id, job.message.fence)?;
                    let outcome = messages::insert_or_find(conn, &job.message)?;
                    let queued = announce(conn, std::slice::from_ref(&job.message), std::slice::from_ref(&outcome))?;
                    Ok((outcome, queued))
                });
                if alone.as_ref().is_ok_and(|(_, queued)| *queued > 0) {
                    outbox::committed();
                }
                let _ = job.done.send(alone.map(|(outcome, _)| outcome).map_err(to_store_error));
            }
        }
    }
}

/// The jobs of the batch whose session has lost its conversation to a newer owner: each
/// conversation's token is checked once, in the batch's transaction.
fn stale_writes(conn: &mut DbConn, batch: &[Job]) -> Result<HashSet<usize>, DbError> {
    let mut verdicts: HashMap<(&str, i64), bool> = HashMap::new();
    let mut stale = HashSet::new();
    for (index, job) in batch.iter().enumerate() {
        let Some(token) = job.message.fence else { continue };
        let conversation = job.message.conversation_id.as_str();
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
                workspace_id: row.workspace_id,
                event: "message_created",
                data: serde_json::json!({ "conversation_id": message.conversation_id, "message": message }),
            }),
            Appended::Duplicate(_) => None,
        })
        .collect();
    outbox::emit_many(conn, events, crate::db::now_ms())
}

fn to_store_error(err: DbError) -> StoreError {
    if let DbError::Fenced(token) = err {
        return StoreError::Fenced(token);
    }
    tracing::error!(error = %err, "message could not be stored");
    match err {
        DbError::Pool(_) => StoreError::Unavailable(err.to_string()),
        other => StoreError::Other(other.to_string()),
    }
}
