//! The lead scorer: told that a conversation may carry new signals (contact details, booking
//! intent, a named service, urgency, a booking), it has the [`LeadSignals`] port score it.
//! Requests arriving close together are folded into one pass per conversation, and passes run
//! one at a time, so two passes never race on the same lead and a burst of messages costs one
//! read per conversation. A request that only says the conversation grew longer (engagement)
//! is dropped unless the conversation is known to have a lead: most conversations never become
//! leads, and reading every one of them at each threshold would tax ordinary chat.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::ports::{ConversationId, LeadSignals};

/// A conversation may have new signals: score it again.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Rescore {
    pub workspace_id: i64,
    pub conversation_id: ConversationId,
    /// Only the message count changed: worth a pass only for a conversation with a lead.
    pub engagement_only: bool,
}

/// Score this conversation in the next pass, at once, and answer whether it has a lead after
/// it: for callers that report the outcome (an API answering with the lead, a model's tool, a
/// flow's lead block). Passes still run one at a time.
#[derive(Message, Debug, Clone)]
#[rtype(result = "bool")]
pub struct RescoreNow {
    pub workspace_id: i64,
    pub conversation_id: ConversationId,
}

/// How many conversations with leads the scorer remembers before it starts afresh (they are
/// learned again from their next signal).
const REMEMBERED: usize = 100_000;

pub struct LeadScorer {
    signals: Arc<dyn LeadSignals>,
    coalesce: Duration,
    pending: HashSet<(i64, ConversationId)>,
    scheduled: bool,
    with_leads: HashSet<(i64, ConversationId)>,
    /// Callers of [`RescoreNow`] waiting for the pass that includes their conversation.
    waiting: HashMap<(i64, ConversationId), Vec<oneshot::Sender<bool>>>,
}

impl LeadScorer {
    /// `coalesce`: how long requests are gathered before a pass.
    pub fn new(signals: Arc<dyn LeadSignals>, coalesce: Duration) -> Self {
        Self {
            signals,
            coalesce,
            pending: HashSet::new(),
            scheduled: false,
            with_leads: HashSet::new(),
            waiting: HashMap::new(),
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        self.scheduled = false;
        let batch: Vec<(i64, ConversationId)> = self.pending.drain().collect();
        if batch.is_empty() {
            return;
        }
        let signals = self.signals.clone();
        let asked: Vec<(i64, ConversationId)> =
            batch.iter().filter(|key| self.waiting.contains_key(*key)).cloned().collect();
        // `wait`: the mailbox holds until this pass is done; requests meanwhile form the next.
        ctx.wait(async move { signals.rescore(batch).await }.into_actor(self).map(move |found, act, _| {
            for key in asked {
                let lead = found.contains(&key);
                for waiter in act.waiting.remove(&key).unwrap_or_default() {
                    let _ = waiter.send(lead);
                }
            }
            if act.with_leads.len() + found.len() > REMEMBERED {
                act.with_leads.clear();
            }
            act.with_leads.extend(found);
        }));
    }
}

impl Actor for LeadScorer {
    type Context = Context<Self>;
}

impl Handler<Rescore> for LeadScorer {
    type Result = ();

    fn handle(&mut self, msg: Rescore, ctx: &mut Self::Context) {
        let key = (msg.workspace_id, msg.conversation_id);
        if msg.engagement_only && !self.with_leads.contains(&key) {
            return;
        }
        self.pending.insert(key);
        if !self.scheduled {
            self.scheduled = true;
            ctx.run_later(self.coalesce, |act, ctx| act.flush(ctx));
        }
    }
}

impl Handler<RescoreNow> for LeadScorer {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: RescoreNow, ctx: &mut Self::Context) -> Self::Result {
        let key = (msg.workspace_id, msg.conversation_id);
        let (tx, rx) = oneshot::channel();
        self.waiting.entry(key.clone()).or_default().push(tx);
        self.pending.insert(key);
        // Without the gathering delay; a timer already set finds its batch gone and does nothing.
        self.scheduled = true;
        ctx.run_later(Duration::ZERO, |act, ctx| act.flush(ctx));
        Box::pin(async move { rx.await.unwrap_or(false) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder {
        passes: Mutex<Vec<Vec<(i64, ConversationId)>>>,
    }

    #[async_trait::async_trait]
    impl LeadSignals for Recorder {
        /// Conversation "a" has a lead; "b" has none.
        async fn rescore(&self, mut conversations: Vec<(i64, ConversationId)>) -> Vec<(i64, ConversationId)> {
            conversations.sort();
            self.passes.lock().unwrap().push(conversations.clone());
            conversations.into_iter().filter(|(_, id)| id == "a").collect()
        }
    }

    async fn passes_after(recorder: &Recorder, count: usize) -> Vec<Vec<(i64, ConversationId)>> {
        for _ in 0..200 {
            if recorder.passes.lock().unwrap().len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        recorder.passes.lock().unwrap().clone()
    }

    #[actix_rt::test]
    async fn a_burst_is_one_pass_with_each_conversation_once() {
        let recorder = Arc::new(Recorder::default());
        let scorer = LeadScorer::new(recorder.clone(), Duration::from_millis(30)).start();
        for _ in 0..5 {
            for id in ["a", "b"] {
                let msg = Rescore { workspace_id: 1, conversation_id: id.into(), engagement_only: false };
                scorer.send(msg).await.unwrap();
            }
        }
        let passes = passes_after(&recorder, 1).await;
        assert_eq!(passes, vec![vec![(1, "a".into()), (1, "b".into())]]);

        // Engagement alone counts only where a lead is known: "a" is scored again, "b" is not.
        for id in ["a", "b"] {
            let msg = Rescore { workspace_id: 1, conversation_id: id.into(), engagement_only: true };
            scorer.send(msg).await.unwrap();
        }
        let passes = passes_after(&recorder, 2).await;
        assert_eq!(passes[1], vec![(1, "a".into())]);
    }

    #[actix_rt::test]
    async fn a_caller_that_waits_hears_whether_its_conversation_has_a_lead() {
        let recorder = Arc::new(Recorder::default());
        // Gathering would take an hour: an answer that came only after it would never come.
        let scorer = LeadScorer::new(recorder.clone(), Duration::from_secs(3600)).start();
        let gathered = Rescore { workspace_id: 1, conversation_id: "b".into(), engagement_only: false };
        scorer.send(gathered).await.unwrap();
        let a = scorer.send(RescoreNow { workspace_id: 1, conversation_id: "a".into() }).await.unwrap();
        assert!(a, "conversation a has a lead");
        // The request already gathered went with it, in one pass.
        assert_eq!(passes_after(&recorder, 1).await, vec![vec![(1, "a".into()), (1, "b".into())]]);
        let b = scorer.send(RescoreNow { workspace_id: 1, conversation_id: "b".into() }).await.unwrap();
        assert!(!b, "conversation b has none");
        assert_eq!(passes_after(&recorder, 2).await.len(), 2, "each answer had its own pass");
    }
}
