//! The lead scorer: told that a conversation may carry new signals (contact details, booking
//! intent, a named service, urgency, a booking), it has the [`LeadSignals`] port score it.
//! Requests arriving close together are folded into one pass per conversation, and passes run
//! one at a time, so two passes never race on the same lead and a burst of messages costs one
//! read per conversation.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::ports::LeadSignals;

/// A conversation may have new signals: score it again.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Rescore {
    pub workspace_id: i64,
    pub conversation_id: String,
}

pub struct LeadScorer {
    signals: Arc<dyn LeadSignals>,
    coalesce: Duration,
    pending: HashSet<(i64, String)>,
    scheduled: bool,
}

impl LeadScorer {
    /// `coalesce`: how long requests are gathered before a pass.
    pub fn new(signals: Arc<dyn LeadSignals>, coalesce: Duration) -> Self {
        Self { signals, coalesce, pending: HashSet::new(), scheduled: false }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        self.scheduled = false;
        let batch: Vec<(i64, String)> = self.pending.drain().collect();
        if batch.is_empty() {
            return;
        }
        let signals = self.signals.clone();
        // `wait`: the mailbox holds until this pass is done; requests meanwhile form the next.
        ctx.wait(async move { signals.rescore(batch).await }.into_actor(self));
    }
}

impl Actor for LeadScorer {
    type Context = Context<Self>;
}

impl Handler<Rescore> for LeadScorer {
    type Result = ();

    fn handle(&mut self, msg: Rescore, ctx: &mut Self::Context) {
        self.pending.insert((msg.workspace_id, msg.conversation_id));
        if !self.scheduled {
            self.scheduled = true;
            ctx.run_later(self.coalesce, |act, ctx| act.flush(ctx));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder {
        passes: Mutex<Vec<Vec<(i64, String)>>>,
    }

    #[async_trait::async_trait]
    impl LeadSignals for Recorder {
        async fn rescore(&self, mut conversations: Vec<(i64, String)>) {
            conversations.sort();
            self.passes.lock().unwrap().push(conversations);
        }
    }

    #[actix_rt::test]
    async fn a_burst_is_one_pass_with_each_conversation_once() {
        let recorder = Arc::new(Recorder::default());
        let scorer = LeadScorer::new(recorder.clone(), Duration::from_millis(30)).start();
        for _ in 0..5 {
            for id in ["a", "b"] {
                scorer.send(Rescore { workspace_id: 1, conversation_id: id.into() }).await.unwrap();
            }
        }
        for _ in 0..200 {
            if !recorder.passes.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let passes = recorder.passes.lock().unwrap().clone();
        assert_eq!(passes, vec![vec![(1, "a".to_owned()), (1, "b".to_owned())]]);
    }
}
