//! Keeping visitors' email addresses and phone numbers from leaving the server: before a prompt
//! goes to the model they become placeholders (`[email_1]`, `[phone_1]`), and whatever comes
//! back (the streamed reply, a tool call's arguments) has them put back. The same value always
//! gets the same placeholder within a reply, so the model can still tell them apart.

use std::sync::LazyLock;

use regex::Regex;

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}").unwrap());
/// Seven or more digits, with the separators people write (spaces, dots, dashes, brackets).
static PHONE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\+?\(?\d[\d\s().-]{5,}\d").unwrap());
static DATE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\d{4}-\d{2}-\d{2}$").unwrap());
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[(?:email|phone)_\d+\]").unwrap());

/// The placeholders of one reply and what they stand for.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    values: Vec<(String, String)>,
}

impl Redactor {
    /// `text` with every email address and phone number replaced by its placeholder.
    pub fn redact(&mut self, text: &str) -> String {
        let text = self.replace(&EMAIL, "email", text);
        self.replace(&PHONE, "phone", &text)
    }

    fn replace(&mut self, pattern: &Regex, kind: &str, text: &str) -> String {
        pattern
            .replace_all(text, |found: &regex::Captures<'_>| {
                let value = found[0].to_owned();
                let not_a_phone = value.chars().filter(char::is_ascii_digit).count() < 7 || DATE.is_match(value.trim());
                if kind == "phone" && not_a_phone {
                    return value;
                }
                if let Some((placeholder, _)) = self.values.iter().find(|(_, v)| *v == value) {
                    return placeholder.clone();
                }
                let count = self.values.iter().filter(|(p, _)| p.starts_with(&format!("[{kind}_"))).count();
                let placeholder = format!("[{kind}_{}]", count + 1);
                self.values.push((placeholder.clone(), value));
                placeholder
            })
            .into_owned()
    }

    /// `text` with the placeholders put back (unknown ones are left as they are).
    pub fn restore(&self, text: &str) -> String {
        PLACEHOLDER
            .replace_all(text, |found: &regex::Captures<'_>| {
                self.values.iter().find(|(p, _)| p == &found[0]).map(|(_, v)| v.clone()).unwrap_or(found[0].to_owned())
            })
            .into_owned()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Restores placeholders in a streamed reply, holding back a piece that may end in the middle
/// of one (`…at [ema`) until the rest arrives.
#[derive(Debug, Default)]
pub struct StreamRestorer {
    pending: String,
}

/// Longest placeholder there can be, with room for many digits.
const MAX_PLACEHOLDER: usize = 16;

impl StreamRestorer {
    /// What of `piece` (after what was held back) can go out now.
    pub fn push(&mut self, redactor: &Redactor, piece: &str) -> String {
        self.pending.push_str(piece);
        let hold_from = match self.pending.rfind('[') {
            Some(open) if !self.pending[open..].contains(']') && self.pending.len() - open < MAX_PLACEHOLDER => open,
            _ => self.pending.len(),
        };
        let ready: String = self.pending.drain(..hold_from).collect();
        redactor.restore(&ready)
    }

    /// Whatever is still held back, at the end of the reply.
    pub fn finish(&mut self, redactor: &Redactor) -> String {
        redactor.restore(&std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_phones_become_placeholders_and_come_back() {
        let mut redactor = Redactor::default();
        let text = "I'm Maria, maria.lopez@example.com or +1 (555) 123-4567; again maria.lopez@example.com";
        let redacted = redactor.redact(text);
        assert_eq!(redacted, "I'm Maria, [email_1] or [phone_1]; again [email_1]");
        assert_eq!(redactor.restore(&redacted), text);
        assert_eq!(
            redactor.redact("Book at 10:30 on 2026-03-02 for 2 people"),
            "Book at 10:30 on 2026-03-02 for 2 people"
        );
        assert_eq!(redactor.restore("[email_9] stays"), "[email_9] stays");
    }

    #[test]
    fn a_placeholder_split_across_pieces_is_restored_whole() {
        let mut redactor = Redactor::default();
        redactor.redact("write to ana@example.org");
        let mut stream = StreamRestorer::default();
        let mut out = String::new();
        for piece in ["We will write to [em", "ail_", "1] today. [Note", ": soon]", " [unfinished"] {
            out.push_str(&stream.push(&redactor, piece));
        }
        out.push_str(&stream.finish(&redactor));
        assert_eq!(out, "We will write to ana@example.org today. [Note: soon] [unfinished");
    }
}
