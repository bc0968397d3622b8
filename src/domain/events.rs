//! `LocalBus`: the in-process `EventBus`, one small broadcast channel per watched conversation.
//!
//! A channel exists only while somebody listens: publishing to a conversation nobody watches
//! costs one map lookup, and channels whose listeners have all gone are swept away. A listener
//! that falls more than the channel's capacity behind is told it lagged and refills from the
//! database by `seq`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use frontdesk_actors::{ConversationEvent, EventBus};
use tokio::sync::broadcast;

/// Events a slow listener may fall behind before it must catch up from the database. Small on
/// purpose: every live conversation with a listener pays for these slots.
const CHANNEL_CAPACITY: usize = 16;
/// A workspace's inbox carries the events of all its conversations at once, and an agent's
/// socket that falls behind it can only reload the inbox, so it gets far more room.
const INBOX_CAPACITY: usize = 4096;

#[derive(Default)]
pub struct LocalBus {
    channels: Mutex<HashMap<String, broadcast::Sender<Arc<ConversationEvent>>>>,
}

impl LocalBus {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<Arc<ConversationEvent>>>> {
        self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drops the channels nobody listens to any more; returns how many are left.
    pub fn sweep(&self) -> usize {
        let mut channels = self.lock();
        channels.retain(|_, sender| sender.receiver_count() > 0);
        channels.len()
    }
}

impl EventBus for LocalBus {
    fn publish(&self, topic: &str, event: ConversationEvent) {
        let mut channels = self.lock();
        if let Some(sender) = channels.get(topic) {
            if sender.send(Arc::new(event)).is_err() {
                channels.remove(topic);
            }
        }
    }

    fn subscribe(&self, topic: &str) -> broadcast::Receiver<Arc<ConversationEvent>> {
        let mut channels = self.lock();
        if let Some(sender) = channels.get(topic) {
            return sender.subscribe();
        }
        let capacity = if topic.starts_with("inbox:") { INBOX_CAPACITY } else { CHANNEL_CAPACITY };
        let (sender, receiver) = broadcast::channel(capacity);
        channels.insert(topic.to_owned(), sender);
        receiver
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typing(on: bool) -> ConversationEvent {
        ConversationEvent::Typing { conversation_id: "c".into(), sender: frontdesk_actors::Sender::Visitor, on }
    }

    #[tokio::test]
    async fn every_subscriber_gets_every_event_in_order() {
        let bus = LocalBus::new();
        let mut a = bus.subscribe("c");
        let mut b = bus.subscribe("c");
        bus.publish("c", typing(true));
        bus.publish("c", typing(false));
        for rx in [&mut a, &mut b] {
            assert_eq!(*rx.recv().await.unwrap(), typing(true));
            assert_eq!(*rx.recv().await.unwrap(), typing(false));
        }
    }

    #[test]
    fn channels_without_listeners_are_swept() {
        let bus = LocalBus::new();
        let rx = bus.subscribe("c");
        assert_eq!(bus.sweep(), 1);
        drop(rx);
        assert_eq!(bus.sweep(), 0);
        bus.publish("c", typing(true));
        assert_eq!(bus.sweep(), 0);
    }
}
