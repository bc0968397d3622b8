//! The one rule by which every transport (the widget's and the agents' sockets, the SSE stream)
//! shows a conversation's messages after a position without losing, repeating or reordering
//! one: stored messages are read from the database a page at a time, live events from the bus
//! are taken while the pages are read, and [`ReplayCursor`] decides which of the two delivers
//! each message.
//!
//! A live message that is the next in line is delivered at once (a page then skips it); one
//! further ahead, or a bus that fell behind, makes the replay read on — after a short page too —
//! so the database, which has every stored message, fills the gap. Memory is one page.

use frontdesk_actors::StoredMessage;

/// Messages read from the database at a time.
pub const PAGE: i64 = 200;

/// Where a client stands in one conversation, and whether a page of history is being read.
#[derive(Debug, Clone, Default)]
pub struct ReplayCursor {
    last_seq: i64,
    reading: bool,
    again: bool,
}

/// What to do with a live event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// Send it (it is the next message in line, or carries no message).
    Deliver,
    /// Already sent.
    Skip,
    /// Messages are missing before it: read them (and it) from the database.
    CatchUp,
}

/// A page of history as the client should get it.
#[derive(Debug)]
pub struct Page {
    /// The page's messages the client does not have yet, in order.
    pub messages: Vec<StoredMessage>,
    /// The page was full: more may follow at once.
    pub full: bool,
    /// Read another page now (the page was full, or something was missed while it was read).
    pub read_on: bool,
}

impl ReplayCursor {
    /// A client that has every message up to `last_seq`.
    pub fn after(last_seq: i64) -> Self {
        Self { last_seq: last_seq.max(0), ..Self::default() }
    }

    /// The last message the client has.
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    /// Whether a page is being read.
    pub fn reading(&self) -> bool {
        self.reading
    }

    /// Judges a live event whose stored message has `seq` (`None`: not a stored message, like a
    /// delta or a typing signal); a delivered message advances the cursor.
    pub fn live(&mut self, seq: Option<i64>) -> Live {
        match seq {
            None => Live::Deliver,
            Some(seq) if seq <= self.last_seq => Live::Skip,
            Some(seq) if seq > self.last_seq + 1 => Live::CatchUp,
            Some(seq) => {
                self.last_seq = seq;
                Live::Deliver
            }
        }
    }

    /// Asks for a page: answers the position to read after, or `None` when a read is already
    /// under way (it will read on when it ends, so nothing is missed).
    pub fn start_read(&mut self) -> Option<i64> {
        if self.reading {
            self.again = true;
            return None;
        }
        self.reading = true;
        Some(self.last_seq)
    }

    /// The page read after [`ReplayCursor::start_read`]'s position; when its `read_on` is set
    /// the read stays under way and the caller reads the next page after
    /// [`ReplayCursor::last_seq`].
    pub fn page(&mut self, page: Vec<StoredMessage>) -> Page {
        let full = page.len() as i64 >= PAGE;
        let messages: Vec<StoredMessage> = page.into_iter().filter(|m| m.seq > self.last_seq).collect();
        if let Some(last) = messages.last() {
            self.last_seq = last.seq;
        }
        let read_on = full || std::mem::take(&mut self.again);
        self.reading = read_on;
        Page { messages, full, read_on }
    }

    /// The read failed: the next live gap or lag starts afresh.
    pub fn failed(&mut self) {
        self.reading = false;
        self.again = false;
    }

    /// The client's reading stopped (unsubscribed, or a read was cancelled).
    pub fn stopped(&mut self) {
        self.failed();
    }

    /// A message was delivered by another path (the widget's own send): the cursor moves past it.
    pub fn delivered(&mut self, seq: i64) {
        self.last_seq = self.last_seq.max(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_actors::{Sender, StoredMessage};

    fn message(seq: i64) -> StoredMessage {
        StoredMessage {
            id: seq,
            conversation_id: "c".into(),
            seq,
            sender: Sender::Bot,
            agent_id: None,
            content: format!("m{seq}"),
            media: None,
            client_msg_id: None,
            reply_to: None,
            created_at: 0,
            metadata: None,
        }
    }

    fn seqs(page: &Page) -> Vec<i64> {
        page.messages.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn the_next_live_message_is_delivered_a_later_one_asks_for_the_gap() {
        let mut cursor = ReplayCursor::after(3);
        assert_eq!(cursor.live(Some(3)), Live::Skip);
        assert_eq!(cursor.live(None), Live::Deliver);
        assert_eq!(cursor.live(Some(4)), Live::Deliver);
        assert_eq!(cursor.last_seq(), 4);
        assert_eq!(cursor.live(Some(6)), Live::CatchUp);
        assert_eq!(cursor.last_seq(), 4, "a message past a gap does not move the cursor");
    }

    #[test]
    fn a_page_skips_what_live_events_already_delivered() {
        let mut cursor = ReplayCursor::after(0);
        assert_eq!(cursor.start_read(), Some(0));
        assert_eq!(cursor.live(Some(1)), Live::Deliver);
        let page = cursor.page((1..=3).map(message).collect());
        assert_eq!(seqs(&page), vec![2, 3]);
        assert!(!page.read_on && !page.full && !cursor.reading());
        assert_eq!(cursor.last_seq(), 3);
    }

    #[test]
    fn a_gap_seen_while_a_page_is_read_reads_on_after_a_short_page() {
        let mut cursor = ReplayCursor::after(0);
        assert_eq!(cursor.start_read(), Some(0));
        assert_eq!(cursor.live(Some(5)), Live::CatchUp);
        assert_eq!(cursor.start_read(), None, "one read at a time");
        let page = cursor.page((1..=2).map(message).collect());
        assert!(page.read_on && !page.full && cursor.reading());
        assert_eq!(cursor.last_seq(), 2);
        let page = cursor.page((3..=5).map(message).collect());
        assert_eq!(seqs(&page), vec![3, 4, 5]);
        assert!(!page.read_on && !cursor.reading());
    }

    #[test]
    fn a_full_page_reads_on_and_a_failure_starts_afresh() {
        let mut cursor = ReplayCursor::after(0);
        cursor.start_read();
        let page = cursor.page((1..=PAGE).map(message).collect());
        assert!(page.full && page.read_on);
        assert_eq!(cursor.last_seq(), PAGE);
        cursor.failed();
        assert_eq!(cursor.start_read(), Some(PAGE));
    }
}
