//! Lead signals: what the CRM can infer about a chat visitor from what they typed.
//!
//! This module is responsible for:
//! - pulling contact details (name, email, phone) out of free-text visitor messages;
//! - normalising emails and phone numbers so the same person is recognised across conversations;
//! - scoring a lead with small, explainable rules, each returned as a [`Signal`] with a stable id and a
//!   human reason, so staff can see *why* a lead is hot and callers can apply each rule once per lead;
//! - naming a score's temperature band.
//!
//! Everything here is a pure function of its input: no I/O, no clock, no database. Persisting leads and
//! deciding when to rescore belong to the caller.
//!
//! The heuristics lean towards missing a detail rather than inventing one: a wrong name or phone number on a
//! lead is worse than an empty field the bot can still ask for.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

pub use crate::storage::contacts::{normalize_email, normalize_phone};
pub use crate::storage::leads::{temperature, Signal};

/// Contact details found in text.
///
/// `email` is lower-cased (so it is already in the form [`normalize_email`] gives); `phone` is kept as the
/// visitor wrote it, because the formatting helps staff read it back. Match on [`normalize_phone`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactDetails {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Finds an email (first valid-looking address), a phone number (at least 7 digits, allowing +, spaces,
/// dashes, dots, parentheses; not a date like 2026-05-15 or a time like 10:00), and a name introduced by
/// "my name is X", "I'm X", "I am X", "this is X", "name: X", "call me X".
///
/// The name is one to three words, stopping at punctuation, "and", digits or common non-name words, and each
/// word is capitalised: "my name is john smith" gives "John Smith"; "I'm looking for a dentist",
/// "I am interested" and "I'm in pain" give no name.
pub fn extract_contact(text: &str) -> ContactDetails {
    ContactDetails { name: find_name(text), email: find_email(text), phone: find_phone(text) }
}

/// A message that is only a name, for when the bot has just asked for it: "John Smith" or "jane" give
/// `Some("John Smith")` / `Some("Jane")`.
///
/// Accepts one to four words of letters, apostrophes or hyphens (a trailing "." or "!" is ignored) and rejects
/// greetings, yes/no and other common words ("hi", "yes", "ok", "thanks", "tomorrow", "monday", ...).
pub fn bare_name(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches(['.', '!']).trim_end();
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() || words.len() > 4 {
        return None;
    }
    // A surname may be a word ("Sam Price", "Jordan Monday") when it is written as a name:
    // capitalised, after a first name that is no word.
    let plausible = |(i, word): (usize, &&str)| {
        word.chars().all(is_name_char)
            && word.starts_with(char::is_alphabetic)
            && word.ends_with(char::is_alphabetic)
            && (!is_stop_word(word) || (i > 0 && word.starts_with(char::is_uppercase)))
    };
    if !words.iter().enumerate().all(plausible) || is_stop_word(words[0]) {
        return None;
    }
    // A lone letter ("k", "x") is a shrug, not a name.
    if words.iter().map(|w| w.chars().filter(|c| c.is_alphabetic()).count()).sum::<usize>() < 2 {
        return None;
    }
    Some(words.iter().map(|w| capitalise(w)).collect::<Vec<_>>().join(" "))
}

/// What a conversation showed so far, assembled by the caller.
#[derive(Debug, Clone, Default)]
pub struct ConversationFacts<'a> {
    /// The visitor's messages, oldest first.
    pub visitor_messages: Vec<&'a str>,
    pub contact: ContactDetails,
    /// Service names the practice offers (e.g. "Teeth Whitening", "General Consultation").
    pub services: Vec<&'a str>,
    /// Whether a booking was made in this conversation.
    pub booked: bool,
}

/// All rules that fire for these facts, in a stable order. The lead's score is the sum of points.
///
/// Rules match words, not meaning ("no pain at all" still counts as urgency): they are cheap, predictable and
/// shown to staff with their reason, so an occasional over-eager signal is visible rather than hidden.
///
/// | rule                | points | fires when                                                  |
/// |---------------------|--------|-------------------------------------------------------------|
/// | `contact.name`      | 1      | the contact has a name                                      |
/// | `contact.email`     | 2      | the contact has an email                                    |
/// | `contact.phone`     | 2      | the contact has a phone number                              |
/// | `intent.booking`    | 3      | a message asks to book (not one only about cancelling)      |
/// | `interest.service`  | 2      | [`treatment_interest`] finds a service                      |
/// | `intent.pricing`    | 1      | a message asks about price, cost, fees or insurance         |
/// | `urgency`           | 3      | a message mentions pain, an emergency, "today", ...         |
/// | `engagement.5`      | 1      | 5 or more non-blank messages                                |
/// | `engagement.10`     | 1      | 10 or more non-blank messages                               |
/// | `booked`            | 4      | a booking was made                                          |
pub fn signals(facts: &ConversationFacts) -> Vec<Signal> {
    let messages = &facts.visitor_messages;
    let mut out = Vec::new();

    if let Some(name) = present(facts.contact.name.as_ref()) {
        out.push(signal("contact.name", 1.0, format!("gave their name ({name})")));
    }
    if present(facts.contact.email.as_ref()).is_some() {
        out.push(signal("contact.email", 2.0, "gave an email address".into()));
    }
    if present(facts.contact.phone.as_ref()).is_some() {
        out.push(signal("contact.phone", 2.0, "gave a phone number".into()));
    }
    if messages.iter().any(|m| wants_booking(m)) {
        out.push(signal("intent.booking", 3.0, "asked to book an appointment".into()));
    }
    if let Some(service) = treatment_interest(messages, &facts.services) {
        out.push(signal("interest.service", 2.0, format!("asked about {service}")));
    }
    if messages.iter().any(|m| PRICING.is_match(m)) {
        out.push(signal("intent.pricing", 1.0, "asked about prices".into()));
    }
    if let Some(word) = messages.iter().find_map(|m| URGENCY.find(m)) {
        let word = word.as_str().split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        out.push(signal("urgency", 3.0, format!("mentioned urgency (\"{word}\")")));
    }
    // Blank messages (stray enters, attachments with no text) are not engagement.
    let sent = messages.iter().filter(|m| !m.trim().is_empty()).count();
    if sent >= 5 {
        out.push(signal("engagement.5", 1.0, "sent 5 or more messages".into()));
    }
    if sent >= 10 {
        out.push(signal("engagement.10", 1.0, "sent 10 or more messages".into()));
    }
    if facts.booked {
        out.push(signal("booked", 4.0, "booked an appointment".into()));
    }
    out
}

/// The service the visitor showed interest in: the last one named in their messages.
///
/// A service counts as named by its full name (case-insensitive, singular or plural), by one of its
/// distinctive words ("whitening" for "Teeth Whitening", but not "teeth" when "Teeth Cleaning" is also
/// offered), or, for a consultation-type service, by "consultation", "check-up", "checkup" or "exam". Where
/// mentions overlap, the full name wins ("deep cleaning" is "Deep Cleaning", not "Cleaning"). Only services in
/// `services` are ever returned.
pub fn treatment_interest<'a>(visitor_messages: &[&str], services: &[&'a str]) -> Option<&'a str> {
    let catalogue = Catalogue::new(services);
    visitor_messages.iter().rev().find_map(|m| catalogue.last_mention(m)).map(|i| services[i])
}

// ---------------------------------------------------------------------------------------------------------
// Contact extraction
// ---------------------------------------------------------------------------------------------------------

/// The spans of `text` that are email addresses, with each address normalised. Words are cut at
/// whitespace and at what never stands in a typed address (brackets, quotes, commas, semicolons);
/// a word with an `@` is an address when the `email_address` crate parses it (sentence
/// punctuation after it trimmed), by [`normalize_email`]'s rules.
fn email_spans(text: &str) -> Vec<(std::ops::Range<usize>, String)> {
    let cut = |c: char| c.is_whitespace() || "<>()[]{},;:\"'`|".contains(c);
    let mut found = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        match (cut(c), start) {
            (false, None) => start = Some(i),
            (true, Some(from)) => {
                start = None;
                let word = text[from..i].trim_end_matches(['.', '!', '?']);
                if word.contains('@') {
                    if let Some(address) = normalize_email(word) {
                        found.push((from..from + word.len(), address));
                    }
                }
            }
            _ => {}
        }
    }
    found
}

// Digit classes are ASCII throughout: `normalize_phone` only counts ASCII digits.

// Phones never contain a colon, so any colon-joined digits ("10:00", "9:30:15") are clock times.
static CLOCK_TIME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[0-9]+(?::[0-9]+)+").expect("clock time regex"));

static PHONE_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+?\(?[0-9][0-9 \t().\-]*[0-9]").expect("phone regex"));

static NON_SPACE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\S+").expect("non-space regex"));

static YMD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9]{4})[-./]([0-9]{1,2})[-./]([0-9]{1,2})$").expect("ymd regex"));
static DMY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9]{1,2})[-./]([0-9]{1,2})[-./]([0-9]{4})$").expect("dmy regex"));
static YEAR_RANGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9]{4})-([0-9]{4})$").expect("year range regex"));
static DOTTED_HOURS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9]{1,2})\.([0-9]{2})-([0-9]{1,2})\.([0-9]{2})$").expect("dotted hours regex"));

/// `text` with its email addresses blanked out, for readers of dates and words that must not
/// find "monday" in "anna.monday@example.de".
pub fn without_emails(text: &str) -> String {
    let mut masked = text.to_owned();
    for (span, _) in email_spans(text).into_iter().rev() {
        masked.replace_range(span, " ");
    }
    masked
}

fn find_email(text: &str) -> Option<String> {
    email_spans(text).into_iter().next().map(|(_, address)| address)
}

fn find_phone(text: &str) -> Option<String> {
    // Mask with a character outside the phone alphabet so the digits either side can't be glued together.
    let mut masked = text.to_owned();
    for (span, _) in email_spans(text).into_iter().rev() {
        masked.replace_range(span, ";");
    }
    let masked = CLOCK_TIME.replace_all(&masked, ";");
    PHONE_RUN
        .find_iter(&masked)
        // Digits glued to letters are an order number, postcode or username, not a phone.
        .filter(|m| {
            let before = masked[..m.start()].chars().next_back();
            let after = masked[m.end()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
        .find_map(|m| phone_in_run(m.as_str()))
}

/// Splits a run of phone-alphabet characters at any whitespace-separated group that is really a date, so
/// "2026-05-15 10" is not read as a ten-digit number, and returns the first piece that is a plausible phone.
fn phone_in_run(run: &str) -> Option<String> {
    let mut pieces = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for group in NON_SPACE.find_iter(run) {
        if is_date_like(group.as_str()) {
            pieces.extend(current.take());
        } else {
            let start = current.map_or(group.start(), |(start, _)| start);
            current = Some((start, group.end()));
        }
    }
    pieces.extend(current);
    pieces.into_iter().find_map(|(start, end)| {
        let piece = run[start..end]
            .trim_start_matches(|c: char| !(c.is_ascii_digit() || c == '+' || c == '('))
            .trim_end_matches(|c: char| !c.is_ascii_digit());
        // An opening parenthesis with no partner belongs to the sentence: "(555-123-4567)".
        let piece = match piece.strip_prefix('(') {
            Some(inner) if !inner.contains(')') => inner,
            _ => piece,
        };
        normalize_phone(piece).map(|_| piece.to_string())
    })
}

fn is_date_like(group: &str) -> bool {
    let group = group.trim_matches(|c: char| !c.is_ascii_digit());
    let num = |caps: &regex::Captures, i: usize| caps[i].parse::<u32>().unwrap_or(u32::MAX);
    let year = |y: u32| (1900..=2199).contains(&y);
    if let Some(c) = YMD.captures(group) {
        return year(num(&c, 1)) && (1..=12).contains(&num(&c, 2)) && (1..=31).contains(&num(&c, 3));
    }
    if let Some(c) = DMY.captures(group) {
        // Day-first or month-first: either way both parts are at most 31 and one of them at most 12.
        let (a, b) = (num(&c, 1), num(&c, 2));
        return year(num(&c, 3)) && (1..=31).contains(&a) && (1..=31).contains(&b) && (a <= 12 || b <= 12);
    }
    if let Some(c) = YEAR_RANGE.captures(group) {
        return year(num(&c, 1)) && year(num(&c, 2)) && num(&c, 1) <= num(&c, 2);
    }
    if let Some(c) = DOTTED_HOURS.captures(group) {
        return num(&c, 1) <= 24 && num(&c, 2) < 60 && num(&c, 3) <= 24 && num(&c, 4) < 60;
    }
    false
}

// "I'm", "I am" and "this is" are as often followed by a state ("I'm nervous") as by a name, so they get
// stricter treatment than the unambiguous introductions.
static NAME_INTRO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        // English, then the unambiguous introductions of the other languages the brain speaks.
        r"(?i)(?:\b(?:my\s+name\s+is|my\s+name['’]s|call\s+me)\b|\bname\s*:|\b(?P<ambiguous>i['’]?m|i\s+am|this\s+is)\b|\b(?:me\s+llamo|mi\s+nombre\s+es|je\s+m['’]\s*appelle|mon\s+nom\s+est|ich\s+hei(?:ß|ss)e|mein\s+name\s+ist|meu\s+nome\s+(?:é|e)|me\s+chamo)(?:\s|$))",
    )
    .expect("name intro regex")
});

/// "Dana Reyes here, …": a message that opens with a capitalised name and "here".
static NAME_HERE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:(?i:hi|hello|hey)[,!]?\s+)?(\p{Lu}[\p{L}'’-]+(?:\s+\p{Lu}[\p{L}'’-]+){0,2})\s+here\b")
        .expect("name-here regex")
});

fn find_name(text: &str) -> Option<String> {
    // Later introductions still count: "I'm looking to book, my name is Jane".
    let introduced = NAME_INTRO.captures_iter(text).find_map(|caps| {
        let intro = caps.get(0)?;
        name_after(&text[intro.end()..], caps.name("ambiguous").is_some())
    });
    introduced.or_else(|| {
        // Every word is capitalised, so a surname that is also a word ("Dana Price") stays whole;
        // only an opening that is no name at all ("Monday here", "Anyone here?") is turned down.
        let words: Vec<&str> = NAME_HERE.captures(text)?.get(1)?.as_str().split_whitespace().collect();
        (!is_stop_word(words[0])).then(|| words.iter().map(|w| capitalise(w)).collect::<Vec<_>>().join(" "))
    })
}

fn name_after(tail: &str, ambiguous: bool) -> Option<String> {
    let tail = tail.trim_start();
    let mut rest = tail.strip_prefix(':').unwrap_or(tail).trim_start();
    let mut words: Vec<&str> = Vec::new();
    while words.len() < 3 {
        let len = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        let (raw, after) = rest.split_at(len);
        let word = raw.trim_matches(['\'', '’', '-']);
        if word.is_empty() || after.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
            break;
        }
        let lower = word.to_lowercase().replace('’', "'");
        // "this is Jane's mum": whoever is writing, it isn't Jane.
        if lower.ends_with("'s") {
            return None;
        }
        let participle = ambiguous && lower.ends_with("ing") && lower.chars().count() >= 5;
        if is_stop_word(&lower) || participle {
            break;
        }
        if words.is_empty() && word.chars().count() < 2 {
            return None;
        }
        words.push(word);
        // A title's full stop ("Dr. Patel") is part of the name, not the end of the sentence.
        let after = match after.strip_prefix('.') {
            Some(rest) if words.len() == 1 && is_title(&lower) => rest,
            _ => after,
        };
        // A name continues only across spaces; punctuation, a line break or the end of the text closes it.
        let next = after.trim_start_matches([' ', '\t']);
        if next.len() == after.len() || !next.starts_with(char::is_alphabetic) {
            break;
        }
        rest = next;
    }
    // A title alone ("I'm Dr.") says how to address someone, not who they are.
    if words.is_empty() || words.iter().all(|w| is_title(&w.to_lowercase())) {
        return None;
    }
    Some(words.iter().map(|w| capitalise(w)).collect::<Vec<_>>().join(" "))
}

fn is_title(lower: &str) -> bool {
    matches!(lower, "mr" | "mrs" | "ms" | "miss" | "mx" | "dr")
}

fn is_name_char(c: char) -> bool {
    c.is_alphabetic() || c == '\'' || c == '’' || c == '-'
}

/// Upper-cases the first letter. A word typed all in one case ("john", "SMITH") is re-cased from scratch,
/// including after a hyphen ("Mary-Jane") and a one-letter prefix ("O'Brien"); a mixed-case word (`McDonald`)
/// was cased deliberately and only gets its first letter raised.
fn capitalise(word: &str) -> String {
    let one_case = !word.chars().any(char::is_uppercase) || !word.chars().any(char::is_lowercase);
    let mut out = String::with_capacity(word.len());
    if !one_case {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
        return out;
    }
    let mut letters_in_part = 0;
    let mut raise_next = true;
    for c in word.chars() {
        if c.is_alphabetic() {
            if raise_next {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            raise_next = false;
            letters_in_part += 1;
        } else {
            raise_next = c == '-' || letters_in_part == 1;
            letters_in_part = 0;
            out.push(c);
        }
    }
    out
}

/// Words that are never (part of) a visitor's name in this context: function words, greetings and replies,
/// states people describe themselves with, days and times, and the practice's own vocabulary. Names that are
/// also words ("Will", "May", "Grace", "Hope", "June") are deliberately left out.
static STOP_WORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    [
        // function words
        "a about after again all already also always an and another any anybody anyone anything around as at",
        "back be because been before being both but by can could did do does down each every everyone for",
        "from had has have he her here hers him his how i i'm if im in into is it it's its just me might mine",
        "must my no nobody none nor not nothing of off on one only or other our out over shall she should so",
        "some somebody someone something than that the their them then there these they this those to too two",
        "under up us very was we were what when whenever where which who why with without would you your",
        "yours",
        // greetings, replies and filler
        "alright anonymous anytime awesome bye cheers cool dunno fine good goodbye great hello hey hi hiya",
        "howdy idk maybe na nah nope ok okay perfect please pls skip sorry sure thank thanks thankyou thx ty",
        "unknown whatever yeah yep yes yup",
        // states, intentions and descriptions that follow "I'm" / "this is"
        "able actually afraid allergic am anxious are asking available bad booked busy calling concerned",
        "confused correct curious currently definitely desperate diabetic done due eager early existing",
        "expensive first former free get getting glad going got happy having helpful hoping ill important",
        "interested keen kind kinda last late like local looking married nearby need nervous new next nice",
        "old overdue possible pregnant pretty probably quite ready really regarding regular retired right sad",
        "scared serious sick single sort still terrible tired totally trying unable unsure urgent want",
        "wanting well willing wondering worried writing wrong",
        // verdicts on the conversation itself ("this is ridiculous")
        "annoying awful brilliant cheap complicated crazy difficult easy excellent fantastic hard impossible",
        "lovely normal odd ridiculous silly simple strange stupid typical unacceptable useless weird",
        "wonderful",
        // days and times
        "afternoon asap december evening february friday january later monday morning night november now",
        "october pm saturday september soon sunday thursday today tomorrow tonight tuesday wednesday week",
        "weekend yesterday",
        // the practice's vocabulary and who someone is writing for
        "agent appointment bleeding book booking bot checkup child cleaning consultation cost dad daughter",
        "dental dentist doctor emergency father friend help human husband info information insurance kid mom",
        "mother mum pain parent patient person price question son swollen teeth tooth whitening wife",
    ]
    .iter()
    .flat_map(|line| line.split_whitespace())
    .collect()
});

fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(word.to_lowercase().replace('’', "'").as_str())
}

// ---------------------------------------------------------------------------------------------------------
// Scoring rules
// ---------------------------------------------------------------------------------------------------------

static BOOKING: LazyLock<Regex> = LazyLock::new(|| {
    whole_words(&[
        r"book|books|booking|bookings|booked|re-?book|appointments?|slots?|come\s+in|visit",
        r"schedul(?:e|ed|ing)|re-?schedul(?:e|ed|ing)|reserv(?:e|ed|ation)",
    ])
});

static CANCELLING: LazyLock<Regex> = LazyLock::new(|| whole_words(&[r"cancel(?:s|led|ed|ling|ing|lation|lations)?"]));

// What still shows booking intent in a message that is also about cancelling.
static REBOOKING: LazyLock<Regex> = LazyLock::new(|| {
    whole_words(&[
        r"re-?book|re-?schedul(?:e|ed|ing)|book\s+(?:a|an|another|a\s+new)",
        r"(?:new|another|different)\s+(?:appointment|slot|time)",
    ])
});

static PRICING: LazyLock<Regex> =
    LazyLock::new(|| whole_words(&[r"prices?|pricing|priced|costs?|how\s+much|fees?|insurance|insured"]));

static URGENCY: LazyLock<Regex> = LazyLock::new(|| {
    whole_words(&[
        r"pain|painful|hurts?|hurting|emergency|emergencies|urgent|urgently|asap|as\s+soon\s+as\s+possible",
        r"today|swollen|swelling|bleeding|broken",
    ])
});

/// A case-insensitive regex for any of the `|`-separated alternatives as whole words, so "paint" is not "pain"
/// and "notebook" is not "book".
fn whole_words(alternatives: &[&str]) -> Regex {
    Regex::new(&format!(r"(?i)\b(?:{})\b", alternatives.join("|"))).expect("word list regex")
}

fn signal(rule: &str, points: f64, reason: String) -> Signal {
    Signal { rule: rule.to_string(), points, reason }
}

fn present(field: Option<&String>) -> Option<&str> {
    field.map(String::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// "I need to cancel my appointment" mentions an appointment but is the opposite of a lead wanting to book,
/// so a cancelling message only counts when it also asks for a new slot.
fn wants_booking(message: &str) -> bool {
    if CANCELLING.is_match(message) {
        REBOOKING.is_match(message)
    } else {
        BOOKING.is_match(message)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Treatment interest
// ---------------------------------------------------------------------------------------------------------

/// Words in service names that say nothing about which service is meant.
const GENERIC_SERVICE_WORDS: &str = "adult and appointment basic care child children dental dentistry express follow \
    free full general hour initial kids minute oral package patient plus quick service session special standard teeth \
    tooth treatment visit with";

/// How visitors name a consultation-type service whatever the practice calls it.
const CONSULTATION_PHRASES: &[&[&str]] =
    &[&["consultation"], &["consult"], &["check", "up"], &["checkup"], &["exam"], &["examination"]];

struct Catalogue {
    /// Each service's name as lower-case words.
    names: Vec<Vec<String>>,
    /// Phrases that name exactly one service without being its full name.
    keywords: Vec<(Vec<String>, usize)>,
}

struct Mention {
    start: usize,
    end: usize,
    service: usize,
    full_name: bool,
}

impl Mention {
    fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether `other` overlaps this mention and is the more specific reading of the same words.
    fn outranked_by(&self, other: &Mention) -> bool {
        other.start <= self.start
            && self.end <= other.end
            && (other.len() > self.len() || (other.len() == self.len() && other.full_name && !self.full_name))
    }
}

impl Catalogue {
    fn new(services: &[&str]) -> Self {
        let names: Vec<Vec<String>> = services.iter().map(|s| words(s)).collect();
        let mut keywords = Vec::new();
        for (i, name) in names.iter().enumerate() {
            for word in name {
                let distinctive = word.chars().count() >= 4
                    && word.chars().all(char::is_alphabetic)
                    && !GENERIC_SERVICE_WORDS.split_whitespace().any(|g| same_word(g, word))
                    && !names.iter().enumerate().any(|(j, other)| j != i && other.iter().any(|w| same_word(w, word)));
                if distinctive {
                    keywords.push((vec![word.clone()], i));
                }
            }
        }
        if let Some(i) = consultation_service(&names) {
            keywords.extend(CONSULTATION_PHRASES.iter().map(|p| (p.iter().map(ToString::to_string).collect(), i)));
        }
        Catalogue { names, keywords }
    }

    /// The service mentioned last in `message`, if any.
    fn last_mention(&self, message: &str) -> Option<usize> {
        let tokens = words(message);
        let mut mentions = Vec::new();
        for (service, name) in self.names.iter().enumerate() {
            mentions.extend(find_phrase(&tokens, name).map(|start| Mention {
                start,
                end: start + name.len(),
                service,
                full_name: true,
            }));
        }
        for (phrase, service) in &self.keywords {
            mentions.extend(find_phrase(&tokens, phrase).map(|start| Mention {
                start,
                end: start + phrase.len(),
                service: *service,
                full_name: false,
            }));
        }
        mentions
            .iter()
            .filter(|m| !mentions.iter().any(|other| m.outranked_by(other)))
            .max_by_key(|m| (m.start, m.full_name, m.len()))
            .map(|m| m.service)
    }
}

/// The service a visitor means by "consultation" or "check-up": the only consultation-type service, or, when
/// there are several, the general one. `None` when that is still ambiguous.
fn consultation_service(names: &[Vec<String>]) -> Option<usize> {
    let candidates: Vec<usize> = names
        .iter()
        .enumerate()
        .filter(|(_, name)| CONSULTATION_PHRASES.iter().any(|p| find_phrase(name, p).next().is_some()))
        .map(|(i, _)| i)
        .collect();
    let only = |ids: &[usize]| if let [one] = ids { Some(*one) } else { None };
    only(&candidates).or_else(|| {
        let general: Vec<usize> =
            candidates.iter().copied().filter(|&i| names[i].iter().any(|w| w == "general")).collect();
        only(&general)
    })
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// Start indices of `phrase` in `tokens`, word by word.
fn find_phrase<'t, S: AsRef<str>>(tokens: &'t [String], phrase: &'t [S]) -> impl Iterator<Item = usize> + 't {
    let n = phrase.len();
    (0..(tokens.len() + 1).saturating_sub(n))
        .filter(move |&i| n > 0 && tokens[i..i + n].iter().zip(phrase).all(|(t, p)| same_word(t, p.as_ref())))
}

/// Equal, or equal up to a plural "s"/"es", so "implant" finds "Dental Implants".
fn same_word(a: &str, b: &str) -> bool {
    let plural_of = |long: &str, short: &str| {
        long.strip_suffix("es").is_some_and(|stem| stem == short) || long.strip_suffix('s').is_some_and(|s| s == short)
    };
    a == b || plural_of(a, b) || plural_of(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Option<String> {
        extract_contact(text).name
    }

    fn phone(text: &str) -> Option<String> {
        extract_contact(text).phone
    }

    fn email(text: &str) -> Option<String> {
        extract_contact(text).email
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    const SERVICES: &[&str] = &["Teeth Whitening", "Teeth Cleaning", "General Consultation"];

    fn facts<'a>(messages: &[&'a str]) -> ConversationFacts<'a> {
        ConversationFacts { visitor_messages: messages.to_vec(), services: SERVICES.to_vec(), ..Default::default() }
    }

    fn rules(facts: &ConversationFacts) -> Vec<String> {
        signals(facts).into_iter().map(|s| s.rule).collect()
    }

    fn fires(messages: &[&str], rule: &str) -> bool {
        rules(&facts(messages)).iter().any(|r| r == rule)
    }

    fn score(facts: &ConversationFacts) -> f64 {
        signals(facts).iter().map(|s| s.points).sum()
    }

    // --- emails -------------------------------------------------------------------------------------------

    #[test]
    fn email_in_a_sentence() {
        assert_eq!(email("you can reach me at jane.doe@example.com thanks"), s("jane.doe@example.com"));
    }

    #[test]
    fn email_followed_by_punctuation() {
        assert_eq!(email("My email is jane@example.com."), s("jane@example.com"));
        assert_eq!(email("(jane@example.com)"), s("jane@example.com"));
        assert_eq!(email("email: jane@example.com, phone later"), s("jane@example.com"));
    }

    #[test]
    fn email_is_lower_cased() {
        assert_eq!(email("Jane.Doe@Example.COM"), s("jane.doe@example.com"));
    }

    #[test]
    fn email_with_plus_and_subdomain() {
        assert_eq!(email("use j.doe+dentist@mail.example.co.uk please"), s("j.doe+dentist@mail.example.co.uk"));
    }

    #[test]
    fn first_email_wins() {
        assert_eq!(email("a@example.com or b@example.org"), s("a@example.com"));
    }

    #[test]
    fn not_an_email() {
        assert_eq!(email("jane at example dot com"), None);
        assert_eq!(email("jane@localhost"), None);
        assert_eq!(email("@example.com"), None);
        assert_eq!(email("twitter @jane"), None);
    }

    // --- phones -------------------------------------------------------------------------------------------

    #[test]
    fn phone_formats() {
        assert_eq!(phone("call me on 555-123-4567"), s("555-123-4567"));
        assert_eq!(phone("my number is +1 (555) 123-4567 thanks"), s("+1 (555) 123-4567"));
        assert_eq!(phone("555.123.4567"), s("555.123.4567"));
        assert_eq!(phone("5551234567"), s("5551234567"));
        assert_eq!(phone("tel 020 7946 0958"), s("020 7946 0958"));
        assert_eq!(phone("+44 20 7946 0958"), s("+44 20 7946 0958"));
        assert_eq!(phone("0044 20 7946 0958"), s("0044 20 7946 0958"));
        assert_eq!(phone("(555) 123 4567"), s("(555) 123 4567"));
        assert_eq!(phone("555-1234"), s("555-1234"));
        assert_eq!(phone("06.12.34.56.78"), s("06.12.34.56.78"));
        assert_eq!(phone("phone: +44 (0)20 7946 0958"), s("+44 (0)20 7946 0958"));
    }

    #[test]
    fn phone_in_sentence_with_trailing_punctuation() {
        assert_eq!(phone("Sure, it's 555-123-4567."), s("555-123-4567"));
        assert_eq!(phone("number (555-123-4567), evenings"), s("555-123-4567"));
    }

    #[test]
    fn phone_too_short_or_too_long() {
        assert_eq!(phone("room 123456"), None);
        assert_eq!(phone("1234567890123456"), None);
        assert_eq!(phone("I need 2 fillings"), None);
    }

    #[test]
    fn dates_are_not_phones() {
        assert_eq!(phone("can I come on 2026-05-15?"), None);
        assert_eq!(phone("2026-05-15 10:00"), None);
        assert_eq!(phone("on 15.05.2026 please"), None);
        assert_eq!(phone("on 05-15-2026 please"), None);
        assert_eq!(phone("2026/05/15"), None);
        assert_eq!(phone("patient since 2019-2024"), None);
    }

    #[test]
    fn times_are_not_phones() {
        assert_eq!(phone("10:00"), None);
        assert_eq!(phone("between 10:00 and 11:30"), None);
        assert_eq!(phone("10:00-11:30 works"), None);
        assert_eq!(phone("open 9.00-17.30?"), None);
        assert_eq!(phone("at 10:00am on 2026-05-15"), None);
    }

    #[test]
    fn phone_next_to_a_date_or_time() {
        assert_eq!(phone("2026-05-15 at 10:00, call 555-123-4567"), s("555-123-4567"));
        assert_eq!(phone("555 123 4567 10:00"), s("555 123 4567"));
        assert_eq!(phone("2026-05-15 555 123 4567"), s("555 123 4567"));
    }

    #[test]
    fn digits_glued_to_letters_or_emails_are_not_phones() {
        assert_eq!(phone("order ABC1234567"), None);
        assert_eq!(phone("jane1234567@example.com"), None);
        assert_eq!(phone("ref 1234567X"), None);
    }

    #[test]
    fn extracted_phone_always_normalises() {
        for text in ["+1 (555) 123-4567", "555.123.4567", "020 7946 0958", "call 555-1234."] {
            let found = phone(text).expect(text);
            assert!(normalize_phone(&found).is_some(), "{text}");
        }
    }

    // --- names --------------------------------------------------------------------------------------------

    #[test]
    fn each_name_introduction() {
        assert_eq!(name("my name is john smith"), s("John Smith"));
        assert_eq!(name("Hi, I'm Sarah"), s("Sarah"));
        assert_eq!(name("I am Jane Doe"), s("Jane Doe"));
        assert_eq!(name("this is Bob from down the road"), s("Bob"));
        assert_eq!(name("name: Mary Ann Lee"), s("Mary Ann Lee"));
        assert_eq!(name("Name:jane"), s("Jane"));
        assert_eq!(name("you can call me Liz"), s("Liz"));
        assert_eq!(name("im tom"), s("Tom"));
        assert_eq!(name("I’m Zoë"), s("Zoë"));
        assert_eq!(name("My name's Ahmed"), s("Ahmed"));
    }

    #[test]
    fn name_stops_at_punctuation_and_and() {
        assert_eq!(name("I'm Jane, looking for a cleaning"), s("Jane"));
        assert_eq!(name("my name is jane and my email is jane@example.com"), s("Jane"));
        assert_eq!(name("I'm Jane Doe. I need help"), s("Jane Doe"));
        assert_eq!(name("name: John Smith\nemail: john@example.com"), s("John Smith"));
    }

    #[test]
    fn name_stops_at_digits() {
        assert_eq!(name("my name is john 555-123-4567"), s("John"));
        assert_eq!(name("I am 25 years old"), None);
        assert_eq!(name("my name is jane2"), None);
    }

    #[test]
    fn name_stops_at_common_words() {
        assert_eq!(name("I'm Jane looking for a dentist"), s("Jane"));
        assert_eq!(name("this is Tom calling about my appointment"), s("Tom"));
        assert_eq!(name("I'm Priya here for a checkup"), s("Priya"));
        assert_eq!(name("I am Ana from Lisbon"), s("Ana"));
        assert_eq!(name("call me Al at home"), s("Al"));
        assert_eq!(name("I'm Ken in pain"), s("Ken"));
        assert_eq!(name("I'm Sam so worried"), s("Sam"));
        assert_eq!(name("I'm Li just wondering"), s("Li"));
        assert_eq!(name("I'm Jo not sure"), s("Jo"));
        assert_eq!(name("I'm Ed a new patient"), s("Ed"));
        assert_eq!(name("I'm Ida very nervous"), s("Ida"));
    }

    #[test]
    fn name_with_a_title() {
        assert_eq!(name("this is Dr. Patel"), s("Dr Patel"));
        assert_eq!(name("I'm Mrs Smith"), s("Mrs Smith"));
        assert_eq!(name("I'm Dr."), None);
        assert_eq!(name("my name is Jane. Dr Who referred me"), s("Jane"));
    }

    #[test]
    fn name_on_the_next_line() {
        assert_eq!(name("Name:\nJohn Smith"), s("John Smith"));
    }

    #[test]
    fn name_is_at_most_three_words() {
        assert_eq!(name("my name is Mary Ann Smith Jones"), s("Mary Ann Smith"));
    }

    #[test]
    fn introductions_that_are_not_names() {
        for text in [
            "I'm looking for a dentist",
            "I am interested",
            "I'm in pain",
            "I'm not sure",
            "I am calling about whitening",
            "I'm here",
            "I'm from the school",
            "I'm a new patient",
            "I'm an existing patient",
            "I'm at work",
            "I'm so scared",
            "I'm very nervous",
            "I'm just asking",
            "I'm having trouble",
            "I'm wondering if you're open",
            "I'm available tomorrow",
            "This is urgent",
            "this is about my tooth",
            "This is my first visit",
            "this is the third time",
            "This is ridiculous",
            "this is taking forever",
            "I'm getting worried",
            "call me back",
            "call me tomorrow please",
            "call me at 555-1234",
            "I'm 5",
            "I'm, uh",
            "this is Jane's mum",
            "Hello!",
        ] {
            assert_eq!(name(text), None, "{text}");
        }
    }

    #[test]
    fn later_introduction_is_used_when_first_is_not_a_name() {
        assert_eq!(name("I'm looking to book, my name is Jane"), s("Jane"));
    }

    #[test]
    fn name_capitalisation() {
        assert_eq!(name("my name is JOHN SMITH"), s("John Smith"));
        assert_eq!(name("my name is mary-jane o'brien"), s("Mary-Jane O'Brien"));
        assert_eq!(name("my name is Ronald McDonald"), s("Ronald McDonald"));
        assert_eq!(name("my name is d'angelo"), s("D'Angelo"));
    }

    #[test]
    fn full_contact_from_one_message() {
        let found = extract_contact("Hi, my name is Jane Doe, email jane@example.com, phone 555-123-4567");
        assert_eq!(
            found,
            ContactDetails { name: s("Jane Doe"), email: s("jane@example.com"), phone: s("555-123-4567") }
        );
    }

    #[test]
    fn nothing_in_plain_text() {
        assert_eq!(extract_contact("Do you do teeth whitening?"), ContactDetails::default());
        assert_eq!(name("Dana Reyes here, dana.r@mail.com"), s("Dana Reyes"));
        assert_eq!(name("Hi, Tom here"), s("Tom"));
        assert_eq!(name("Is anyone here?"), None);
        assert_eq!(name("Monday here would be fine"), None);
        assert_eq!(name("Anyone here?"), None);
        assert_eq!(name("Dana Price here"), s("Dana Price"));
        assert_eq!(name("Hola, me llamo Lucía Gómez"), s("Lucía Gómez"));
        assert_eq!(name("Bonjour, je m'appelle Claire Martin"), s("Claire Martin"));
        assert_eq!(name("ich heiße Jonas Weber"), s("Jonas Weber"));
        assert_eq!(name("meu nome é Ana Souza"), s("Ana Souza"));
        assert_eq!(extract_contact(""), ContactDetails::default());
    }

    #[test]
    fn contact_details_round_trip_through_json() {
        let details = ContactDetails { name: s("Jane"), email: None, phone: s("555-1234") };
        let json = serde_json::to_string(&details).unwrap();
        assert_eq!(serde_json::from_str::<ContactDetails>(&json).unwrap(), details);
        assert_eq!(serde_json::from_str::<ContactDetails>("{}").unwrap(), ContactDetails::default());
    }

    // --- bare names ---------------------------------------------------------------------------------------

    #[test]
    fn bare_names_accepted() {
        assert_eq!(bare_name("John Smith"), s("John Smith"));
        assert_eq!(bare_name("jane"), s("Jane"));
        assert_eq!(bare_name("  jane doe.  "), s("Jane Doe"));
        assert_eq!(bare_name("Mary-Jane O'Brien"), s("Mary-Jane O'Brien"));
        assert_eq!(bare_name("ana maria de souza"), s("Ana Maria De Souza"));
        assert_eq!(bare_name("Will"), s("Will"));
        assert_eq!(bare_name("Sam Price"), s("Sam Price"));
        assert_eq!(bare_name("Jordan Monday"), s("Jordan Monday"));
    }

    #[test]
    fn bare_names_rejected() {
        for text in [
            "hi",
            "Hello",
            "yes",
            "No",
            "ok",
            "okay",
            "thanks",
            "thank you",
            "tomorrow",
            "Monday",
            "sure",
            "hi there",
            "no thanks",
            "",
            "   ",
            "k",
            "John Smith 555-1234",
            "jane@example.com",
            "John, Smith",
            "one two three four five",
            "I'm Jane",
            "teeth whitening",
            "Teeth Whitening",
            "Next Monday",
            "sam price",
            "cleaning",
            "?",
            "-",
        ] {
            assert_eq!(bare_name(text), None, "{text:?}");
        }
    }

    // --- normalisation ------------------------------------------------------------------------------------

    #[test]
    fn normalize_email_examples() {
        assert_eq!(normalize_email("  Jane.Doe@Example.COM "), s("jane.doe@example.com"));
        assert_eq!(normalize_email("a@b.co"), s("a@b.co"));
    }

    #[test]
    fn normalize_email_rejects_implausible() {
        for bad in [
            "",
            "jane",
            "jane@",
            "@example.com",
            "jane@example",
            "ja ne@example.com",
            "a@b@example.com",
            "jane@example..com",
            "jane@.com",
            "jane@example.",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn normalize_phone_examples() {
        assert_eq!(normalize_phone("+1 (555) 123-4567"), s("+15551234567"));
        assert_eq!(normalize_phone("555.123.4567"), s("5551234567"));
        assert_eq!(normalize_phone("0044 20 7946 0958"), s("+442079460958"));
        assert_eq!(normalize_phone(" 555-1234 "), s("5551234"));
        assert_eq!(normalize_phone("+44 20 7946 0958"), normalize_phone("0044 (20) 7946-0958"));
        assert_eq!(normalize_phone("+44 (0)20 7946 0958"), s("+442079460958"));
        assert_eq!(normalize_phone("(0)20 7946 0958"), s("02079460958"));
    }

    #[test]
    fn a_national_number_in_the_workspace_country_is_the_international_one() {
        use crate::storage::contacts::normalize_phone_in;
        use phonenumber::country::Id;
        let us = Some(Id::US);
        assert_eq!(normalize_phone_in("(555) 123-4567", us), s("+15551234567"));
        assert_eq!(normalize_phone_in("555.123.4567", us), normalize_phone_in("+1 555 123 4567", us));
        // The national trunk prefix is dropped where the country has one.
        assert_eq!(normalize_phone_in("020 7946 0958", Some(Id::GB)), s("+442079460958"));
        assert_eq!(normalize_phone_in("020 7946 0958", Some(Id::GB)), normalize_phone("+44 (0)20 7946 0958"));
        assert_eq!(normalize_phone_in("030 1234567", Some(Id::DE)), s("+49301234567"));
        // An international number ignores the workspace's country.
        assert_eq!(normalize_phone_in("+44 20 7946 0958", us), s("+442079460958"));
        // Limits hold whatever the country.
        assert_eq!(normalize_phone_in("123456", us), None);
        assert_eq!(normalize_phone_in("1234567890123456", us), None);
    }

    #[test]
    fn without_emails_blanks_only_the_addresses() {
        assert_eq!(without_emails("anna.montag@example.de"), " ");
        assert_eq!(without_emails("Monday, jordan.monday@mail.com please"), "Monday,   please");
    }

    #[test]
    fn emails_are_parsed_not_matched() {
        // Quoted or bracketed, after a label, or with sentence punctuation: the address alone.
        assert_eq!(email("<dana.r@mail.com>"), s("dana.r@mail.com"));
        assert_eq!(email("\"dana.r@mail.com\" is best"), s("dana.r@mail.com"));
        assert_eq!(email("Dana Reyes here, dana.r@mail.com!"), s("dana.r@mail.com"));
        assert_eq!(email("mail:dana@mail.com"), s("dana@mail.com"));
        // Not addresses: no top-level domain, a domain literal, a label of a hyphen's edge.
        assert_eq!(email("dana@[127.0.0.1]"), None);
        assert_eq!(email("dana@-mail.com"), None);
        assert_eq!(normalize_email("Dana <dana@mail.com>"), None);
    }

    #[test]
    fn normalize_phone_digit_limits() {
        assert_eq!(normalize_phone("123456"), None);
        assert_eq!(normalize_phone("1234567"), s("1234567"));
        assert_eq!(normalize_phone("123456789012345"), s("123456789012345"));
        assert_eq!(normalize_phone("1234567890123456"), None);
        assert_eq!(normalize_phone("+123456"), None);
        // The "00" is a dialling prefix, not part of the number.
        assert_eq!(normalize_phone("00123456"), None);
        assert_eq!(normalize_phone(""), None);
        assert_eq!(normalize_phone("call me"), None);
    }

    // --- temperature --------------------------------------------------------------------------------------

    #[test]
    fn temperature_band_edges() {
        let cases = [
            (-1.0, "Cold"),
            (0.0, "Cold"),
            (2.0, "Cold"),
            (3.0, "Cool"),
            (5.0, "Cool"),
            (6.0, "Warm"),
            (8.0, "Warm"),
            (9.0, "Hot"),
            (11.0, "Hot"),
            (12.0, "Very Hot"),
            (15.0, "Very Hot"),
            (16.0, "Scorching"),
            (100.0, "Scorching"),
        ];
        for (score, band) in cases {
            assert_eq!(temperature(score), band, "{score}");
        }
    }

    #[test]
    fn temperature_fractional_scores() {
        let cases = [
            (2.5, "Cold"),
            (2.99, "Cold"),
            (5.9, "Cool"),
            (8.5, "Warm"),
            (11.9, "Hot"),
            (12.5, "Very Hot"),
            (15.9, "Very Hot"),
            (15.999, "Very Hot"),
        ];
        for (score, band) in cases {
            assert_eq!(temperature(score), band, "{score}");
        }
    }

    #[test]
    fn temperature_of_odd_values() {
        assert_eq!(temperature(f64::NAN), "Cold");
        assert_eq!(temperature(f64::NEG_INFINITY), "Cold");
        assert_eq!(temperature(f64::INFINITY), "Scorching");
        assert_eq!(temperature(-0.0), "Cold");
    }

    // --- rules --------------------------------------------------------------------------------------------

    #[test]
    fn nothing_fires_for_an_empty_conversation() {
        assert!(signals(&ConversationFacts::default()).is_empty());
        assert!(signals(&facts(&["hello"])).is_empty());
    }

    #[test]
    fn contact_rules() {
        let mut f = facts(&[]);
        f.contact = ContactDetails { name: s("Jane Doe"), email: s("jane@example.com"), phone: s("555-1234") };
        assert_eq!(
            signals(&f),
            vec![
                Signal { rule: "contact.name".into(), points: 1.0, reason: "gave their name (Jane Doe)".into() },
                Signal { rule: "contact.email".into(), points: 2.0, reason: "gave an email address".into() },
                Signal { rule: "contact.phone".into(), points: 2.0, reason: "gave a phone number".into() },
            ]
        );
    }

    #[test]
    fn blank_contact_fields_do_not_fire() {
        let mut f = facts(&[]);
        f.contact = ContactDetails { name: s(" "), email: s(""), phone: None };
        assert!(signals(&f).is_empty());
    }

    #[test]
    fn booking_intent_fires() {
        for m in [
            "I'd like to book a cleaning",
            "can I get an appointment?",
            "Do you have a slot on Friday",
            "I want to schedule a visit",
            "could I come in tomorrow",
            "can I reserve a time",
            "Booking for two please",
            "I need to reschedule",
        ] {
            assert!(fires(&[m], "intent.booking"), "{m}");
        }
    }

    #[test]
    fn booking_intent_does_not_fire() {
        for m in [
            "I left my notebook there",
            "is this a booklet?",
            "hello",
            "I want to cancel",
            "please cancel my appointment",
            "cancellation of my booking",
        ] {
            assert!(!fires(&[m], "intent.booking"), "{m}");
        }
    }

    #[test]
    fn cancelling_and_rebooking_is_booking_intent() {
        assert!(fires(&["cancel my appointment and book a new one"], "intent.booking"));
        assert!(fires(&["I have to cancel, can we reschedule?"], "intent.booking"));
        assert!(fires(&["cancel Monday", "can I book Tuesday instead"], "intent.booking"));
    }

    #[test]
    fn booking_reason() {
        let found = signals(&facts(&["I want to book"]));
        assert_eq!(
            found,
            vec![Signal { rule: "intent.booking".into(), points: 3.0, reason: "asked to book an appointment".into() }]
        );
    }

    #[test]
    fn service_interest_fires_with_service_name() {
        let found = signals(&facts(&["how white can whitening get my teeth?"]));
        assert_eq!(
            found,
            vec![Signal { rule: "interest.service".into(), points: 2.0, reason: "asked about Teeth Whitening".into() }]
        );
        assert!(!fires(&["do you open on saturdays"], "interest.service"));
    }

    #[test]
    fn pricing_fires() {
        for m in [
            "what's the price?",
            "How much is it",
            "what does it cost",
            "any fees?",
            "do you take my insurance",
            "Prices please",
            "costs?",
        ] {
            let found = signals(&facts(&[m]));
            assert!(
                found.contains(&Signal {
                    rule: "intent.pricing".into(),
                    points: 1.0,
                    reason: "asked about prices".into()
                }),
                "{m}"
            );
        }
    }

    #[test]
    fn pricing_does_not_fire() {
        for m in ["priceless", "coffee", "how many", "feedback", "accost"] {
            assert!(!fires(&[m], "intent.pricing"), "{m}");
        }
    }

    #[test]
    fn urgency_fires_with_the_word() {
        let found = signals(&facts(&["it's been a while", "I'm in a lot of Pain"]));
        assert_eq!(
            found,
            vec![Signal { rule: "urgency".into(), points: 3.0, reason: "mentioned urgency (\"pain\")".into() }]
        );
        for (m, word) in [
            ("my tooth hurts", "hurts"),
            ("it's an emergency", "emergency"),
            ("URGENT", "urgent"),
            ("asap please", "asap"),
            ("as soon  as possible", "as soon as possible"),
            ("can you see me today", "today"),
            ("my gum is swollen", "swollen"),
            ("it's bleeding", "bleeding"),
            ("broken tooth", "broken"),
        ] {
            let reason = format!("mentioned urgency (\"{word}\")");
            assert!(signals(&facts(&[m])).iter().any(|s| s.rule == "urgency" && s.reason == reason), "{m}");
        }
    }

    #[test]
    fn urgency_needs_whole_words() {
        for m in ["I want to paint", "painting", "todays", "spain", "hurtle"] {
            assert!(!fires(&[m], "urgency"), "{m}");
        }
    }

    #[test]
    fn engagement_thresholds() {
        let four = ["a", "b", "c", "d"];
        let five = ["a", "b", "c", "d", "e"];
        let nine = ["a"; 9];
        let ten = ["a"; 10];
        assert!(!fires(&four, "engagement.5"));
        assert!(fires(&five, "engagement.5"));
        assert!(!fires(&five, "engagement.10"));
        assert!(!fires(&nine, "engagement.10"));
        assert_eq!(rules(&facts(&ten)), vec!["engagement.5", "engagement.10"]);
        assert_eq!(score(&facts(&ten)), 2.0);
    }

    #[test]
    fn blank_messages_are_not_engagement() {
        assert!(!fires(&["a", "b", "c", "d", "   "], "engagement.5"));
    }

    #[test]
    fn booked_fires_only_when_booked() {
        let mut f = facts(&[]);
        assert!(signals(&f).is_empty());
        f.booked = true;
        assert_eq!(
            signals(&f),
            vec![Signal { rule: "booked".into(), points: 4.0, reason: "booked an appointment".into() }]
        );
    }

    #[test]
    fn fifteen_point_lead_is_very_hot() {
        let messages = [
            "Hi, I'd like to book teeth whitening",
            "my name is Jane Doe",
            "jane@example.com",
            "555-123-4567",
            "Thursday works",
        ];
        let mut f = facts(&messages);
        for m in messages {
            let found = extract_contact(m);
            f.contact.name = f.contact.name.or(found.name);
            f.contact.email = f.contact.email.or(found.email);
            f.contact.phone = f.contact.phone.or(found.phone);
        }
        f.booked = true;
        assert_eq!(
            rules(&f),
            vec![
                "contact.name",
                "contact.email",
                "contact.phone",
                "intent.booking",
                "interest.service",
                "engagement.5",
                "booked"
            ]
        );
        assert_eq!(score(&f), 15.0);
        assert_eq!(temperature(score(&f)), "Very Hot");
    }

    #[test]
    fn rules_come_in_a_stable_order() {
        let mut f = facts(&["booked", "how much?", "whitening", "in pain", "e", "f", "g", "h", "i", "j"]);
        f.contact = ContactDetails { name: s("A B"), email: s("a@b.co"), phone: s("5551234") };
        f.booked = true;
        assert_eq!(
            rules(&f),
            vec![
                "contact.name",
                "contact.email",
                "contact.phone",
                "intent.booking",
                "interest.service",
                "intent.pricing",
                "urgency",
                "engagement.5",
                "engagement.10",
                "booked"
            ]
        );
        assert_eq!(score(&f), 20.0);
        assert_eq!(temperature(score(&f)), "Scorching");
    }

    #[test]
    fn signals_serialise_for_the_api() {
        let json = serde_json::to_value(signal("booked", 4.0, "booked an appointment".into())).unwrap();
        assert_eq!(json, serde_json::json!({"rule": "booked", "points": 4.0, "reason": "booked an appointment"}));
    }

    // --- treatment interest -------------------------------------------------------------------------------

    #[test]
    fn interest_by_distinctive_word() {
        assert_eq!(treatment_interest(&["do you do whitening?"], SERVICES), Some("Teeth Whitening"));
        assert_eq!(treatment_interest(&["I need a CLEANING"], SERVICES), Some("Teeth Cleaning"));
    }

    #[test]
    fn interest_by_consultation_synonyms() {
        for m in ["just a consultation", "I need a check-up", "time for a checkup", "a check up please", "an exam"] {
            assert_eq!(treatment_interest(&[m], SERVICES), Some("General Consultation"), "{m}");
        }
    }

    #[test]
    fn consultation_synonyms_need_a_consultation_service() {
        let services = ["Teeth Whitening", "Teeth Cleaning"];
        assert_eq!(treatment_interest(&["I need a check-up"], &services), None);
        assert_eq!(treatment_interest(&["consultation please"], &services), None);
    }

    #[test]
    fn consultation_synonyms_prefer_the_general_one() {
        let services = ["Implant Consultation", "General Consultation"];
        assert_eq!(treatment_interest(&["a checkup"], &services), Some("General Consultation"));
        assert_eq!(treatment_interest(&["an implant consultation"], &services), Some("Implant Consultation"));
        let ambiguous = ["Implant Consultation", "Braces Consultation"];
        assert_eq!(treatment_interest(&["a checkup"], &ambiguous), None);
        assert_eq!(treatment_interest(&["braces"], &ambiguous), Some("Braces Consultation"));
    }

    #[test]
    fn interest_prefers_the_last_named_service() {
        let messages = ["how much is whitening?", "and a cleaning?"];
        assert_eq!(treatment_interest(&messages, SERVICES), Some("Teeth Cleaning"));
        assert_eq!(treatment_interest(&["cleaning or maybe whitening"], SERVICES), Some("Teeth Whitening"));
        assert_eq!(treatment_interest(&["whitening", "ok thanks", "sounds good"], SERVICES), Some("Teeth Whitening"));
    }

    #[test]
    fn interest_prefers_the_exact_full_name() {
        let services = ["Cleaning", "Deep Cleaning"];
        assert_eq!(treatment_interest(&["I think I need a deep cleaning"], &services), Some("Deep Cleaning"));
        assert_eq!(treatment_interest(&["just a cleaning"], &services), Some("Cleaning"));
        assert_eq!(treatment_interest(&["deep"], &services), Some("Deep Cleaning"));
    }

    #[test]
    fn shared_words_are_not_distinctive() {
        assert_eq!(treatment_interest(&["my teeth are yellow"], SERVICES), None);
        assert_eq!(treatment_interest(&["teeth cleaning please"], SERVICES), Some("Teeth Cleaning"));
        assert_eq!(treatment_interest(&["in general"], SERVICES), None);
    }

    #[test]
    fn interest_matches_plurals_and_hyphens() {
        let services = ["Dental Implants", "Teeth Whitening"];
        assert_eq!(treatment_interest(&["do you do implants"], &services), Some("Dental Implants"));
        assert_eq!(treatment_interest(&["an implant"], &services), Some("Dental Implants"));
        assert_eq!(treatment_interest(&["teeth-whitening?"], &services), Some("Teeth Whitening"));
    }

    #[test]
    fn interest_needs_whole_words() {
        assert_eq!(treatment_interest(&["whiteningly"], SERVICES), None);
        assert_eq!(treatment_interest(&["housecleaning"], SERVICES), None);
    }

    #[test]
    fn interest_only_offers_existing_services() {
        assert_eq!(treatment_interest(&["whitening please"], &["Teeth Cleaning"]), None);
        assert_eq!(treatment_interest(&["whitening please"], &[]), None);
        assert_eq!(treatment_interest(&[], SERVICES), None);
        assert_eq!(treatment_interest(&["whitening please"], &[""]), None);
    }
}
