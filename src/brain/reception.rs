//! The receptionist: booking, rescheduling and cancelling appointments by chat, for the
//! built-in brain (and later any brain that wants a scripted booking).
//!
//! A dialog is a small state machine kept in the conversation's variables (`reception`), so
//! it survives restarts and rides along with the session. Each turn takes everything the
//! visitor's message says (service, doctor, date, time, name, email, phone), then asks only
//! for what is still missing: service → date → a time offered from real availability (the
//! chosen slot is held for the visitor) → name → phone or email → confirmation → booked.
//! Every booking operation goes through the workspace's [`BookingDesk`], the same path as the
//! REST API. The turn's `action` tells a widget what happened (see [`Action`]).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;

use actix::Addr;
use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

use super::nlu::{catalog, dates, entities, Lang, Lexicon};
use super::when;
use crate::domain::booking::desk::BookingDesk;
use crate::domain::booking::{
    self, AvailabilityRequest, BookingError, BookingRequest, BookingView, HoldRequest, Named, Practice, Start,
};
use crate::domain::crm::signals::{self, ContactDetails};
use crate::ids::{ConversationId, WorkspaceId};
use crate::status::BookingStatus;
use crate::storage::bookings::{self as booking_rows, BookingFilter, BookingRow};
use crate::storage::contacts::{normalize_phone_in, Person};
use crate::storage::{now_ms, Db, DbError};
use frontdesk_actors::{LeadScorer, Rescore, StoredMessage, TurnState};

/// How many start times one offer lists.
const TIMES_OFFERED: usize = 4;
/// How far ahead the receptionist looks for a day with free time.
const SEARCH_DAYS: i64 = 21;
/// A dialog nobody has touched for this long is forgotten (its hold has long lapsed).
const DIALOG_TTL_MS: i64 = 30 * 60 * 1000;
/// Wrong booking numbers or contact details tolerated before the dialog stops asking.
const MAX_FAILED_LOOKUPS: u8 = 3;

/// What a turn did, for widgets and `POST /chat`'s `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// An ordinary answer.
    Message,
    /// The bot is collecting what a booking, reschedule or cancellation needs.
    BookingFlow,
    BookingConfirmed,
    BookingRescheduled,
    BookingCancelled,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Message => "message",
            Action::BookingFlow => "booking_flow",
            Action::BookingConfirmed => "booking_confirmed",
            Action::BookingRescheduled => "booking_rescheduled",
            Action::BookingCancelled => "booking_cancelled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    Book,
    Reschedule,
    Cancel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Awaiting {
    Service,
    Date,
    Time,
    Name,
    Contact,
    Identify,
    Confirm,
}

/// A start time the bot offered or holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub doctor_id: i64,
    pub doctor_name: String,
    pub starts_at: i64,
    pub date: NaiveDate,
    pub time: NaiveTime,
}

/// The dialog's state, stored as the conversation's `reception` variable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dialog {
    pub intent: Option<Intent>,
    pub service: Option<String>,
    pub doctor: Option<String>,
    pub date: Option<NaiveDate>,
    pub part_of_day: Option<(NaiveTime, NaiveTime)>,
    #[serde(default)]
    pub offered: Vec<Offer>,
    pub held: Option<Offer>,
    /// The booking a reschedule or cancellation is about, once the visitor has been matched to it.
    pub booking_id: Option<i64>,
    /// The booking number a visitor gave to find a booking made outside this conversation.
    #[serde(default)]
    pub booking_ref: Option<i64>,
    /// Failed attempts at naming someone else's booking; the dialog gives up after a few.
    #[serde(default)]
    pub failed_lookups: u8,
    pub awaiting: Option<Awaiting>,
    /// When the dialog last moved (ms); an abandoned dialog is forgotten after [`DIALOG_TTL_MS`].
    #[serde(default)]
    pub touched_at: i64,
}

/// What the brain's classifier made of a message, for the dialog.
#[derive(Debug, Clone)]
pub struct DialogHint {
    /// The dialog the message asks for, when no keyword says so ("could I come in on the 14th?").
    pub start: Option<Intent>,
    /// The message asks a question ("what if I cancel late?"): the words "cancel" or
    /// "reschedule" in it do not start a dialog.
    pub question: bool,
    /// The doctor a pronoun in the message refers to ("book me with her"), named earlier.
    pub doctor: Option<String>,
    /// The visitor's language: what the dialog says, and how it reads dates and choices.
    pub lang: Lang,
}

/// The outcome of a turn: the reply, its action, and the variables to store if they changed.
#[derive(Debug, Clone)]
pub struct Turn {
    pub reply: String,
    pub action: Action,
    pub variables: Option<serde_json::Value>,
    /// False when the message moved the dialog nowhere and the reply only asks again: the
    /// message may be a question for the brain's other answers.
    pub progressed: bool,
    /// The answers the reply's question offers (services, times, yes or no), for a client to
    /// show as buttons; each, sent back as the visitor's message, is understood.
    pub quick_replies: Vec<String>,
}

pub struct Reception {
    db: Db,
    desk: Arc<BookingDesk>,
    scorer: Option<Addr<LeadScorer>>,
    hold: Duration,
    /// Each workspace's doctors' and services' names, for the classifier; read at most once per
    /// [`LEXICON_TTL`], for at most [`LEXICONS_KEPT`] workspaces.
    lexicons: Mutex<LruCache<WorkspaceId, (Instant, Arc<Lexicon>)>>,
}

/// How long a workspace's names are trusted before they are read again.
const LEXICON_TTL: Duration = Duration::from_secs(30);
const LEXICONS_KEPT: usize = 1024;

/// What a turn knows about its conversation.
struct Scope<'a> {
    workspace_id: WorkspaceId,
    conversation_id: &'a ConversationId,
    /// The visitor's language: what the dialog says, and how it reads dates and choices.
    lang: Lang,
    /// The doctor a pronoun in this message refers to.
    referred_doctor: Option<String>,
}

/// The dialog's words in the visitor's language.
fn say(lang: Lang, id: &str, args: &[(&str, &str)]) -> String {
    catalog::say(lang, id, args)
}

/// Why a booking operation failed, in the visitor's language: the domain's own message in
/// English; in another language the catalogue's words for its kind, since a practice's or the
/// engine's English sentence must not be machine-translated.
fn reason(lang: Lang, err: &BookingError) -> String {
    if lang == Lang::En {
        return err.to_string();
    }
    match err {
        BookingError::BeyondHorizon { days, .. } => say(lang, "reason-beyond", &[("days", &days.to_string())]),
        BookingError::NotFound => say(lang, "reason-not-found", &[]),
        BookingError::State(_) => say(lang, "reason-state", &[]),
        BookingError::Conflict { .. } => say(lang, "reason-conflict", &[]),
        BookingError::Invalid(_) | BookingError::Unprocessable(_) | BookingError::Db(_) => {
            say(lang, "reason-invalid", &[])
        }
    }
}

fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn has_any(words: &[String], wanted: &[&str]) -> bool {
    words.iter().any(|w| wanted.contains(&w.as_str()))
}

fn has_phrase(text: &str, phrases: &[&str]) -> bool {
    let text = format!(" {} ", words(text).join(" "));
    phrases.iter().any(|p| text.contains(&format!(" {p} ")))
}

pub(crate) fn detect_intent(text: &str) -> Option<Intent> {
    let w = words(text);
    let cancel_words = [
        "cancel",
        "cancellation",
        "cancelling",
        "canceling", // en
        "cancelar",
        "anular",  // es, pt
        "annuler", // fr
        "absagen",
        "stornieren", // de
        "desmarcar",  // pt
    ];
    if has_any(&w, &cancel_words) && !has_phrase(text, &["cancellation policy", "cancellation fee"]) {
        return Some(Intent::Cancel);
    }
    let move_words = [
        "reschedule",
        "rebook",
        "postpone", // en
        "reprogramar",
        "aplazar", // es
        "déplacer",
        "reporter",
        "décaler", // fr
        "verschieben",
        "umbuchen", // de
        "remarcar",
        "adiar", // pt
    ];
    if has_any(&w, &move_words)
        || has_phrase(text, &["change my appointment", "move my appointment", "change my booking", "move my booking"])
        || has_phrase(text, &["cambiar mi cita", "mover mi cita", "changer mon rendez vous", "mudar a minha consulta"])
    {
        return Some(Intent::Reschedule);
    }
    let book_words = [
        "book",
        "booking",
        "appointment",
        "schedule",
        "reserve",
        "appt", // en
        "cita",
        "reservar", // es
        "réserver",
        "rdv",     // fr
        "buchen",  // de
        "agendar", // pt
    ];
    // German builds its words for an appointment on "Termin": "Beratungstermin", "Terminvereinbarung".
    let termin =
        w.iter().any(|word| word.starts_with("termin") || word.ends_with("termin") || word.ends_with("termine"));
    if has_any(&w, &book_words)
        || termin
        || has_phrase(text, &["come in", "see a doctor", "see the dentist", "see a dentist"])
        || has_phrase(text, &["rendez vous", "marcar uma consulta", "marcar consulta", "marcar um horário"])
    {
        return Some(Intent::Book);
    }
    None
}

/// The request a message switches the dialog to, if any. A first request starts a dialog. Once
/// one runs, only an explicit move or cancel switches it (booking words are everywhere in a
/// booking dialog), and never while a yes-or-no question is open.
fn switch_to(dialog: &Dialog, detected: Option<Intent>) -> Option<Intent> {
    match (dialog.intent, detected) {
        (None, found) => found,
        (Some(current), Some(found)) => {
            let explicit = found != Intent::Book && found != current;
            (explicit && dialog.awaiting != Some(Awaiting::Confirm)).then_some(found)
        }
        (Some(_), None) => None,
    }
}

/// How a visitor answered a yes-or-no question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Yes,
    No,
    Unclear,
}

/// Reads a yes or a no, in any of the brain's languages. Phrases that contain "no" without
/// meaning it ("no problem") are ignored; a message that says both, or neither, is unclear and
/// the question is asked again. So is a question ("ok, but is there parking?"): it is answered,
/// never taken for consent.
fn answer_of(text: &str) -> Answer {
    let question = text.contains('?') || text.contains('¿');
    let mut text = format!(" {} ", words(text).join(" "));
    for phrase in [
        "no problem",
        "no worries",
        "no rush",
        "not a problem",
        "no longer need",
        "no hay problema",
        "pas de problème",
        "pas de probleme",
        "pas de souci",
        "pas de soucis",
        "kein problem",
        "sem problema",
    ] {
        text = text.replace(phrase, " ");
    }
    let w: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    if question && w.len() > 2 {
        return Answer::Unclear;
    }
    // "y" (Spanish "and"), "si" (French "if"), "pode", "isso" are a yes only as the whole answer.
    let short = w.len() <= 2;
    let yes = has_any(
        &w,
        &[
            "yes",
            "yep",
            "yeah",
            "yup",
            "sure",
            "ok",
            "okay",
            "confirm",
            "confirmed",
            "correct",
            "sí",
            "claro",
            "vale",
            "confirmo",
            "oui",
            "ouais",
            "d'accord",
            "parfait",
            "ja",
            "jawohl",
            "genau",
            "gerne",
            "passt",
            "sim",
            "perfeito",
            "perfecto",
        ],
    ) || (short && has_any(&w, &["y", "si", "pode", "isso"]))
        || has_phrase(
            &text,
            &[
                "book it",
                "sounds good",
                "go ahead",
                "that works",
                "do it",
                "please do",
                "de acuerdo",
                "está bien",
                "c'est bon",
                "bien sûr",
                "in ordnung",
                "alles klar",
                "está bem",
                "pode ser",
                "com certeza",
            ],
        );
    let no = has_any(
        &w,
        &[
            "no", "nope", "nah", "n", "don't", "dont", "not", "wrong", "non", "nein", "nee", "não", "nao", "nicht",
            "pas",
        ],
    ) || has_phrase(
        &text,
        &["a different", "something else", "otro día", "un autre", "einen anderen", "outro dia"],
    );
    match (yes, no) {
        (true, false) => Answer::Yes,
        (false, true) => Answer::No,
        _ => Answer::Unclear,
    }
}

fn is_stop(text: &str) -> bool {
    has_phrase(
        text,
        &[
            "never mind",
            "nevermind",
            "forget it",
            "stop",
            "don't bother",
            "not now",
            "no thanks",
            "no gracias",
            "déjalo",
            "non merci",
            "laissez tomber",
            "nein danke",
            "vergessen sie es",
            "não obrigado",
            "nao obrigado",
            "deixa pra lá",
        ],
    )
}

fn join_or(items: &[String], lang: Lang) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} {} {last}", rest.join(", "), say(lang, "or", &[])),
    }
}

fn first_name(name: &str) -> &str {
    name.split_whitespace().next().unwrap_or(name)
}

/// The doctor a message names: full name, last name or "Dr. Last".
fn named_doctor(text: &str, practice: &Practice) -> Option<String> {
    let w = words(text);
    practice
        .doctors
        .iter()
        .find(|d| {
            let parts: Vec<String> =
                words(&d.name).into_iter().filter(|p| p != "dr" && p != "doctor" && p.len() > 2).collect();
            parts.last().is_some_and(|last| w.contains(last))
        })
        .map(|d| d.name.clone())
}

fn wants_any_doctor(text: &str) -> bool {
    has_phrase(
        text,
        &[
            "any doctor",
            "anyone",
            "no preference",
            "doesn't matter",
            "does not matter",
            "whoever",
            "me da igual",
            "cualquiera",
            "peu importe",
            "n'importe qui",
            "egal",
            "ist mir egal",
            "tanto faz",
            "qualquer um",
        ],
    )
}

/// An offered slot the message picks: by its time, or by position ("the second one", "2").
fn pick_offer(text: &str, offered: &[Offer], time: Option<NaiveTime>) -> Option<Offer> {
    if let Some(time) = time {
        return offered.iter().find(|o| o.time == time).cloned();
    }
    pick_by_position(text, offered).cloned()
}

/// The item of a list just offered that an answer chooses by its place ("the second one",
/// "2", "option 3", "the last"), the answer already in English ([`dates::in_english`]).
fn pick_by_position<'a, T>(text: &str, offered: &'a [T]) -> Option<&'a T> {
    let w = words(text);
    // A number picks an offer only when it is the whole answer ("2") or named as one ("option
    // 2", "number 2"): "anything after 3?" is not a choice.
    let position = |n: &str| {
        w.len() == 1 && w[0] == n
            || w.windows(2).any(|pair| ["option", "number", "no"].contains(&pair[0].as_str()) && pair[1] == n)
    };
    let ordinals = [("first", "1st", "1"), ("second", "2nd", "2"), ("third", "3rd", "3"), ("fourth", "4th", "4")];
    for (i, (word, short, digit)) in ordinals.iter().enumerate() {
        if has_any(&w, &[word, short]) || position(digit) {
            return offered.get(i);
        }
    }
    if has_any(&w, &["last"]) {
        return offered.last();
    }
    None
}

/// A booking number the visitor gives: "#12", "booking 12", "booking number 12", "number 12",
/// or a message that is only the number.
fn booking_number(text: &str) -> Option<i64> {
    let w = words(text);
    let number = |t: &str| t.trim_start_matches('#').parse::<i64>().ok().filter(|n| *n > 0);
    if let [only] = w.as_slice() {
        return number(only);
    }
    if let Some(tagged) = text.split_whitespace().find(|t| t.starts_with('#')) {
        return number(tagged.trim_end_matches(|c: char| !c.is_ascii_digit()));
    }
    w.windows(2)
        .filter(|pair| ["booking", "number", "reference", "ref", "no"].contains(&pair[0].as_str()))
        .find_map(|pair| number(&pair[1]))
}

/// An offered time as the offer names it: with its doctor unless the visitor chose one.
fn offer_label(o: &Offer, doctor_chosen: bool, lang: Lang) -> String {
    if doctor_chosen {
        dates::say_time(o.time, lang)
    } else {
        format!("{} ({})", dates::say_time(o.time, lang), o.doctor_name)
    }
}

/// What the dialog's open question can be answered with, in words the dialog understands.
fn quick_replies(dialog: &Dialog, practice: &Practice, lang: Lang) -> Vec<String> {
    match dialog.awaiting {
        Some(Awaiting::Service) => practice.services.iter().take(8).map(|s| s.name.clone()).collect(),
        Some(Awaiting::Time) => dialog.offered.iter().map(|o| offer_label(o, dialog.doctor.is_some(), lang)).collect(),
        Some(Awaiting::Confirm) => vec![say(lang, "yes", &[]), say(lang, "no", &[])],
        _ => Vec::new(),
    }
}

fn say_offer(o: &Offer, lang: Lang) -> String {
    let (time, date) = (dates::say_time(o.time, lang), dates::say_date(o.date, lang));
    say(lang, "offer", &[("time", &time), ("date", &date), ("doctor", &o.doctor_name)])
}

impl Reception {
    pub fn new(db: Db, desk: Arc<BookingDesk>, scorer: Option<Addr<LeadScorer>>, hold: Duration) -> Self {
        let kept = NonZeroUsize::new(LEXICONS_KEPT).expect("a positive capacity");
        Self { db, desk, scorer, hold, lexicons: Mutex::new(LruCache::new(kept)) }
    }

    /// The names the workspace's visitors may use for its doctors and services. A workspace
    /// that cannot be read just now gets none: the classifier still works, a little less well.
    pub async fn lexicon(&self, workspace_id: WorkspaceId) -> Arc<Lexicon> {
        let cached = self
            .lock_lexicons()
            .get(&workspace_id)
            .filter(|(at, _)| at.elapsed() < LEXICON_TTL)
            .map(|(_, l)| l.clone());
        if let Some(lexicon) = cached {
            return lexicon;
        }
        let lexicon = match self.practice(workspace_id).await {
            Ok(practice) => Arc::new(Lexicon::new(
                practice.doctors.iter().map(|d| d.name.as_str()),
                practice.services.iter().map(|s| s.name.as_str()),
            )),
            Err(err) => {
                tracing::warn!(error = %err, "could not read the practice's names; classifying without them");
                return Arc::new(Lexicon::default());
            }
        };
        self.lock_lexicons().put(workspace_id, (Instant::now(), lexicon.clone()));
        lexicon
    }

    fn lock_lexicons(&self) -> std::sync::MutexGuard<'_, LruCache<WorkspaceId, (Instant, Arc<Lexicon>)>> {
        self.lexicons.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The workspace's doctors, services and time zone, for answers about them.
    pub async fn practice(&self, workspace_id: WorkspaceId) -> Result<Practice, DbError> {
        self.db.run(move |conn| Practice::load(conn, workspace_id)).await
    }

    /// Answers the visitor's message if it belongs to a booking dialog (or starts one); `None`
    /// leaves the message to the brain's other answers.
    pub async fn turn(
        &self,
        workspace_id: WorkspaceId,
        conversation_id: &ConversationId,
        question: &StoredMessage,
        hint: DialogHint,
        variables: &serde_json::Value,
        state: &TurnState,
    ) -> Result<Option<Turn>, DbError> {
        let (question_id, text) = (question.id, question.content.as_str());
        let mut dialog: Dialog =
            serde_json::from_value(variables.get("reception").cloned().unwrap_or_default()).unwrap_or_default();
        let mut contact: ContactDetails =
            serde_json::from_value(variables.get("contact").cloned().unwrap_or_default()).unwrap_or_default();
        let now = now_ms();
        if dialog.intent.is_some() && now - dialog.touched_at > DIALOG_TTL_MS {
            dialog = Dialog::default();
        }
        let before = (dialog.clone(), contact.clone());

        // What the brain understood starts a dialog its keywords would miss ("could I come in on
        // the 14th?"); once a dialog runs, only explicit words switch it, since a misread
        // paraphrase must not turn a booking into a cancellation.
        let keyword = detect_intent(text).filter(|found| {
            let overruled = hint.question && dialog.intent.is_none() && *found != Intent::Book;
            !overruled
        });
        let detected = keyword.or(if dialog.intent.is_none() { hint.start } else { None });
        if dialog.intent.is_none() && detected.is_none() {
            return Ok(None);
        }
        let lang = hint.lang;
        let scope = Scope { workspace_id, conversation_id, lang, referred_doctor: hint.doctor.clone() };
        let practice = self.db.run(move |conn| Practice::load(conn, workspace_id)).await?;
        if practice.services.is_empty() || practice.doctors.is_empty() {
            let reply = say(lang, "booking-unavailable", &[]);
            return Ok(Some(Turn {
                reply,
                action: Action::Message,
                variables: None,
                progressed: true,
                quick_replies: Vec::new(),
            }));
        }

        // Contact details count whatever the step.
        let found = signals::extract_contact(text);
        let bare = if dialog.awaiting == Some(Awaiting::Name) { signals::bare_name(text) } else { None };
        if let Some(name) = found.name.or(bare) {
            contact.name = Some(name);
        }
        contact.email = found.email.or(contact.email);
        contact.phone = found.phone.or(contact.phone);

        let stop = is_stop(text) || (dialog.intent == Some(Intent::Book) && detected == Some(Intent::Cancel));
        let (reply, action) = if dialog.intent.is_some() && stop {
            self.release(&scope).await?;
            dialog = Dialog::default();
            (say(lang, "booking-stopped", &[]), Action::Message)
        } else {
            if let Some(intent) = switch_to(&dialog, detected) {
                // A new request starts over; what the visitor just said still counts. Between
                // moving and cancelling, the booking already found stays found.
                if dialog.held.is_some() {
                    self.release(&scope).await?;
                }
                let keep = if intent == Intent::Book { None } else { dialog.booking_id };
                dialog = Dialog { intent: Some(intent), booking_id: keep, ..Dialog::default() };
            }
            match dialog.intent {
                Some(Intent::Book) => self.book(&scope, &practice, &mut dialog, &contact, text).await?,
                Some(Intent::Reschedule) | Some(Intent::Cancel) => {
                    self.change(&scope, &practice, &mut dialog, &contact, text).await?
                }
                None => return Ok(None),
            }
        };

        let progressed = (dialog.clone(), contact.clone()) != before || action != Action::BookingFlow;
        if dialog.intent.is_some() {
            dialog.touched_at = now;
        }
        let changed = (dialog.clone(), contact.clone()) != before || action != Action::Message;
        let variables = if changed {
            let mut vars = variables.clone();
            if !vars.is_object() {
                vars = serde_json::json!({});
            }
            vars["reception"] = serde_json::to_value(&dialog).unwrap_or_default();
            vars["contact"] = serde_json::to_value(&contact).unwrap_or_default();
            vars["last_action"] = serde_json::json!({ "reply_to": question_id, "action": action.as_str() });
            // Only what this turn changed, through the session: an agent's edit made meanwhile stays.
            let vars = state.store_changes(variables, &vars).await.map_err(|err| DbError::Task(err.0))?;
            if let Some(scorer) = &self.scorer {
                let conversation_id = conversation_id.to_owned();
                scorer.do_send(Rescore { workspace_id: workspace_id.get(), conversation_id, engagement_only: false });
            }
            Some(vars)
        } else {
            None
        };
        let quick_replies = quick_replies(&dialog, &practice, lang);
        Ok(Some(Turn { reply, action, variables, progressed, quick_replies }))
    }

    async fn release(&self, scope: &Scope<'_>) -> Result<(), DbError> {
        let (workspace_id, id) = (scope.workspace_id, scope.conversation_id.to_owned());
        self.desk.run(workspace_id, move |conn| booking_rows::release_holds(conn, workspace_id, &id)).await??;
        Ok(())
    }

    /// Reads the date, time, service and doctor a message gives into the dialog.
    fn absorb(&self, practice: &Practice, dialog: &mut Dialog, text: &str, scope: &Scope<'_>) -> when::When {
        let said =
            when::parse(&dates::in_english(&signals::without_emails(text), scope.lang), practice.today(now_ms()));
        let services: Vec<&str> = practice.services.iter().map(|s| s.name.as_str()).collect();
        if dialog.intent == Some(Intent::Book) {
            if let Some(service) = entities::service_named(text, &services) {
                dialog.service = Some(service.to_owned());
            }
            if let Some(doctor) = named_doctor(text, practice).or_else(|| scope.referred_doctor.clone()) {
                dialog.doctor = Some(doctor);
            } else if wants_any_doctor(text) {
                dialog.doctor = None;
            }
        }
        if let Some(date) = said.date {
            if dialog.date != Some(date) {
                dialog.offered.clear();
            }
            dialog.date = Some(date);
        }
        if said.part_of_day.is_some() {
            dialog.part_of_day = said.part_of_day;
        }
        said
    }

    async fn book(
        &self,
        scope: &Scope<'_>,
        practice: &Practice,
        dialog: &mut Dialog,
        contact: &ContactDetails,
        text: &str,
    ) -> Result<(String, Action), DbError> {
        // A new date or time at the confirmation changes the choice; only then is it yes or no.
        let lang = scope.lang;
        let changes_time = {
            let said = when::parse(&dates::in_english(&signals::without_emails(text), lang), practice.today(now_ms()));
            said.date.is_some() || said.time.is_some()
        };
        if dialog.awaiting == Some(Awaiting::Confirm) && dialog.held.is_some() && !changes_time {
            match answer_of(text) {
                Answer::Yes => return self.confirm_booking(scope, practice, dialog, contact).await,
                Answer::No => {
                    self.release(scope).await?;
                    dialog.held = None;
                    dialog.offered.clear();
                    dialog.date = None;
                    dialog.awaiting = Some(Awaiting::Date);
                    return Ok((say(scope.lang, "booking-other-date", &[]), Action::BookingFlow));
                }
                Answer::Unclear => {}
            }
        }
        // At the name question a bare name is a name, whatever words it holds ("Anna Montag",
        // "Jordan Monday"): not a new day.
        let said = if dialog.awaiting == Some(Awaiting::Name) && signals::bare_name(text).is_some() {
            when::When::default()
        } else {
            self.absorb(practice, dialog, text, scope)
        };
        // "The first one" at the service question names the first service listed.
        if dialog.service.is_none() && dialog.awaiting == Some(Awaiting::Service) {
            if let Some(chosen) = pick_by_position(&dates::in_english(text, lang), &practice.services) {
                dialog.service = Some(chosen.name.clone());
            }
        }
        let Some(service) = dialog.service.clone() else {
            dialog.awaiting = Some(Awaiting::Service);
            let names: Vec<String> = practice.services.iter().map(|s| s.name.clone()).collect();
            return Ok((
                say(lang, "booking-which-service", &[("services", &join_or(&names, lang))]),
                Action::BookingFlow,
            ));
        };
        if let Some(reply) = self.choose_time(scope, practice, dialog, &service, said, text).await? {
            return Ok(reply);
        }
        let Some(held) = dialog.held.clone() else {
            return Ok((say(lang, "booking-which-date", &[]), Action::BookingFlow));
        };
        let Some(name) = contact.name.clone() else {
            dialog.awaiting = Some(Awaiting::Name);
            let minutes = self.hold.as_secs().div_ceil(60).to_string();
            let offer = say_offer(&held, lang);
            return Ok((
                say(lang, "booking-held-ask-name", &[("offer", &offer), ("minutes", &minutes)]),
                Action::BookingFlow,
            ));
        };
        let Some(reach) = contact.email.clone().or(contact.phone.clone()) else {
            dialog.awaiting = Some(Awaiting::Contact);
            return Ok((say(lang, "booking-ask-contact", &[("name", first_name(&name))]), Action::BookingFlow));
        };
        dialog.awaiting = Some(Awaiting::Confirm);
        let offer = say_offer(&held, lang);
        let args = [("service", service.as_str()), ("offer", &offer), ("name", &name), ("reach", &reach)];
        Ok((say(lang, "booking-confirm", &args), Action::BookingFlow))
    }

    /// Moves the dialog towards a held slot: asks for a date, offers times, or holds the time
    /// chosen. `None` when a slot is held and the dialog can go on.
    async fn choose_time(
        &self,
        scope: &Scope<'_>,
        practice: &Practice,
        dialog: &mut Dialog,
        service: &str,
        said: when::When,
        text: &str,
    ) -> Result<Option<(String, Action)>, DbError> {
        let picked = pick_offer(&dates::in_english(text, scope.lang), &dialog.offered, said.time);
        let wanted = match (picked, said.time, dialog.date) {
            (Some(offer), _, _) => Some((offer.starts_at, Some(Named::Id(offer.doctor_id)))),
            (None, Some(time), Some(date)) => {
                let start = practice.instant(Start::Local(date.and_time(time))).ok();
                start.map(|s| (s, dialog.doctor.clone().map(Named::Name)))
            }
            _ => None,
        };
        if let Some((starts_at, doctor)) = wanted {
            match self.hold_slot(scope, dialog, service, doctor, starts_at).await? {
                Ok(offer) => {
                    dialog.held = Some(offer);
                    dialog.offered.clear();
                    return Ok(None);
                }
                Err(reply) => return Ok(Some(reply)),
            }
        }
        if dialog.held.is_some() && said.date.is_none() {
            return Ok(None);
        }
        let Some(date) = dialog.date else {
            dialog.awaiting = Some(Awaiting::Date);
            let reply = match dialog.intent {
                Some(Intent::Book) => say(scope.lang, "booking-start", &[("service", &service.to_lowercase())]),
                _ => say(scope.lang, "reschedule-start", &[("service", service)]),
            };
            return Ok(Some((reply, Action::BookingFlow)));
        };
        self.offer_times(scope, dialog, service, date).await.map(Some)
    }

    async fn hold_slot(
        &self,
        scope: &Scope<'_>,
        dialog: &mut Dialog,
        service: &str,
        doctor: Option<Named>,
        starts_at: i64,
    ) -> Result<Result<Offer, (String, Action)>, DbError> {
        let (workspace_id, conversation) = (scope.workspace_id, scope.conversation_id.to_owned());
        let (service_name, hold_ms) = (service.to_owned(), self.hold.as_millis() as i64);
        // When moving a booking, its current time is not in the way of the new one.
        let moving = if dialog.intent == Some(Intent::Reschedule) { dialog.booking_id } else { None };
        let horizon = self.desk.horizon();
        let held = self
            .desk
            .run(workspace_id, move |conn| {
                let practice = Practice::load(conn, workspace_id)?;
                let request = HoldRequest {
                    conversation_id: conversation,
                    moving,
                    service: Named::Name(service_name),
                    doctor,
                    start: Start::At(starts_at),
                    hold_ms,
                };
                let outcome = booking::hold(conn, workspace_id, &request, now_ms(), horizon);
                Ok::<_, DbError>(outcome.map(|h| {
                    let at = practice.slot_view(&booking::slots::Slot {
                        doctor_id: h.doctor_id,
                        starts_at: h.starts_at,
                        ends_at: h.ends_at,
                    });
                    (h, at)
                }))
            })
            .await??;
        match held {
            Ok((hold, view)) => Ok(Ok(Offer {
                doctor_id: hold.doctor_id,
                doctor_name: view.doctor_name,
                starts_at: hold.starts_at,
                date: NaiveDate::parse_from_str(&view.date, "%Y-%m-%d").unwrap_or_default(),
                time: NaiveTime::parse_from_str(&view.time, "%H:%M").unwrap_or_default(),
            })),
            Err(BookingError::Conflict { alternatives, .. }) => {
                Ok(Err(offer_instead(dialog, &alternatives, &say(scope.lang, "slot-taken", &[]), scope.lang)))
            }
            Err(BookingError::Unprocessable(_)) => {
                dialog.awaiting = Some(Awaiting::Date);
                Ok(Err((say(scope.lang, "slot-passed", &[]), Action::BookingFlow)))
            }
            Err(BookingError::BeyondHorizon { days, .. }) => {
                dialog.awaiting = Some(Awaiting::Date);
                Ok(Err((say(scope.lang, "beyond-horizon", &[("days", &days.to_string())]), Action::BookingFlow)))
            }
            Err(BookingError::Db(err)) => Err(err),
            Err(other) => Ok(Err((
                say(scope.lang, "hold-failed", &[("reason", &reason(scope.lang, &other))]),
                Action::BookingFlow,
            ))),
        }
    }

    /// Offers a few free times on `date` (or the next day that has any).
    async fn offer_times(
        &self,
        scope: &Scope<'_>,
        dialog: &mut Dialog,
        service: &str,
        date: NaiveDate,
    ) -> Result<(String, Action), DbError> {
        let request = AvailabilityRequest {
            service: Named::Name(service.to_owned()),
            doctor: dialog.doctor.clone().map(Named::Name),
            from: date,
            to: date + chrono::Duration::days(SEARCH_DAYS),
            step_min: booking::DEFAULT_STEP_MIN,
            conversation_id: Some(scope.conversation_id.to_owned()),
            moving: if dialog.intent == Some(Intent::Reschedule) { dialog.booking_id } else { None },
        };
        let workspace_id = scope.workspace_id;
        let found = self.db.run(move |conn| Ok(booking::availability(conn, workspace_id, &request, now_ms()))).await?;
        let slots = match found {
            Ok(slots) => slots,
            Err(BookingError::Db(err)) => return Err(err),
            Err(other) => {
                return Ok((
                    say(scope.lang, "sorry-reason", &[("reason", &reason(scope.lang, &other))]),
                    Action::BookingFlow,
                ))
            }
        };
        let in_part = |s: &booking::SlotView| {
            let time = NaiveTime::parse_from_str(&s.time, "%H:%M").unwrap_or_default();
            dialog.part_of_day.is_none_or(|(from, to)| time >= from && time < to)
        };
        let first_day = slots.iter().filter(|s| in_part(s)).map(|s| s.date.clone()).next();
        let Some(day) = first_day else {
            dialog.date = None;
            // The part of day may be what rules everything out; the next date starts afresh.
            dialog.part_of_day = None;
            dialog.awaiting = Some(Awaiting::Date);
            let args = [
                ("service", service.to_lowercase()),
                ("days", SEARCH_DAYS.to_string()),
                ("date", dates::say_date(date, scope.lang)),
            ];
            let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
            return Ok((say(scope.lang, "nothing-free", &args), Action::BookingFlow));
        };
        let day_slots: Vec<&booking::SlotView> = slots.iter().filter(|s| s.date == day && in_part(s)).collect();
        // Spread the offer over the day rather than listing four back-to-back slots.
        let stride = (day_slots.len() / TIMES_OFFERED).max(1);
        let mut offered: Vec<Offer> = Vec::new();
        for slot in day_slots.iter().step_by(stride) {
            if offered.len() == TIMES_OFFERED {
                break;
            }
            if !offered.iter().any(|o| o.starts_at == slot.starts_at_ms) {
                offered.push(offer_of(slot));
            }
        }
        let day_date = NaiveDate::parse_from_str(&day, "%Y-%m-%d").unwrap_or(date);
        let lang = scope.lang;
        let times: Vec<String> = offered.iter().map(|o| offer_label(o, dialog.doctor.is_some(), lang)).collect();
        let times = join_or(&times, lang);
        let with = dialog.doctor.as_ref().map(|d| say(lang, "with-doctor", &[("doctor", d)])).unwrap_or_default();
        let (asked, free) = (dates::say_date(date, lang), dates::say_date(day_date, lang));
        let reply = if day_date == date {
            say(lang, "times-on", &[("date", &free), ("with", &with), ("times", &times)])
        } else {
            say(lang, "times-next-day", &[("date", &asked), ("next", &free), ("with", &with), ("times", &times)])
        };
        dialog.date = Some(day_date);
        dialog.offered = offered;
        dialog.awaiting = Some(Awaiting::Time);
        Ok((reply, Action::BookingFlow))
    }

    async fn confirm_booking(
        &self,
        scope: &Scope<'_>,
        practice: &Practice,
        dialog: &mut Dialog,
        contact: &ContactDetails,
    ) -> Result<(String, Action), DbError> {
        let Some(held) = dialog.held.clone() else {
            return Ok((say(scope.lang, "booking-which-date", &[]), Action::BookingFlow));
        };
        let request = BookingRequest {
            service: Named::Name(dialog.service.clone().unwrap_or_default()),
            doctor: Some(Named::Id(held.doctor_id)),
            start: Start::At(held.starts_at),
            customer_name: contact.name.clone().unwrap_or_default(),
            customer_email: contact.email.clone(),
            customer_phone: contact.phone.clone(),
            notes: String::new(),
            source: "chat".into(),
            conversation_id: Some(scope.conversation_id.to_owned()),
        };
        let (workspace_id, horizon) = (scope.workspace_id, self.desk.horizon());
        let tz = practice.tz;
        let outcome = self
            .desk
            .run(workspace_id, move |conn| {
                booking::reserve(conn, workspace_id, &request, now_ms(), horizon).map(|row| BookingView::new(&row, tz))
            })
            .await?;
        match outcome {
            Ok(view) => {
                let name = contact.name.as_deref().map(first_name).unwrap_or("");
                *dialog = Dialog::default();
                let lang = scope.lang;
                let (date, time, id) =
                    (dates::say_date(held.date, lang), dates::say_time(held.time, lang), view.id.to_string());
                let args = [
                    ("name", name),
                    ("service", view.service.as_str()),
                    ("doctor", view.doctor_name.as_str()),
                    ("date", &date),
                    ("time", &time),
                    ("id", &id),
                ];
                Ok((say(lang, "booking-done", &args), Action::BookingConfirmed))
            }
            Err(BookingError::Conflict { alternatives, .. }) => {
                Ok(offer_instead(dialog, &alternatives, &say(scope.lang, "slot-taken-meanwhile", &[]), scope.lang))
            }
            Err(BookingError::Db(err)) => Err(err),
            Err(other) => {
                Ok((say(scope.lang, "booking-failed", &[("reason", &reason(scope.lang, &other))]), Action::BookingFlow))
            }
        }
    }

    /// Finds the booking a reschedule or cancellation is about: the conversation's own next
    /// appointment; or else the one whose booking number the visitor gave, provided the email or
    /// phone they gave is the one it was booked with; or else, with no number, the next
    /// appointment booked with both the email and the phone the visitor gave. Knowing someone's
    /// email alone must not let a stranger see or change their appointment.
    async fn find_booking(
        &self,
        scope: &Scope<'_>,
        dialog: &Dialog,
        contact: &ContactDetails,
    ) -> Result<Option<BookingRow>, DbError> {
        let (workspace_id, conversation) = (scope.workspace_id, scope.conversation_id.to_owned());
        let (reference, email, phone) = (dialog.booking_ref, contact.email.clone(), contact.phone.clone());
        self.db
            .run(move |conn| {
                let mine = BookingFilter {
                    conversation_id: Some(conversation.clone()),
                    status: Some(BookingStatus::Confirmed),
                    limit: 50,
                    ..Default::default()
                };
                let now = now_ms();
                let own = booking_rows::list(conn, workspace_id, &mine)?
                    .into_iter()
                    .filter(|b| b.starts_at >= now)
                    .min_by_key(|b| b.starts_at);
                if own.is_some() {
                    return Ok(own);
                }
                let country = match phone {
                    Some(_) => crate::storage::contacts::phone_country(conn, workspace_id)?,
                    None => None,
                };
                let same_email = |stored: &Option<String>| match (
                    stored.as_deref().and_then(signals::normalize_email),
                    email.as_deref().and_then(signals::normalize_email),
                ) {
                    (Some(a), Some(b)) => a == b,
                    _ => false,
                };
                let same_phone = |stored: &Option<String>| {
                    let forms = |p: &str| [normalize_phone_in(p, country), signals::normalize_phone(p)];
                    match (stored.as_deref(), phone.as_deref()) {
                        (Some(a), Some(b)) => {
                            forms(a).iter().flatten().any(|x| forms(b).iter().flatten().any(|y| x == y))
                        }
                        _ => false,
                    }
                };
                let Some(reference) = reference else {
                    // Both details it was booked with stand in for the number.
                    let Some(given_email) = email.as_deref() else { return Ok(None) };
                    if phone.is_none() {
                        return Ok(None);
                    }
                    let person = Person { email: Some(given_email), ..Person::default() };
                    let Some(contact) = crate::storage::contacts::find(conn, workspace_id, &person)? else {
                        return Ok(None);
                    };
                    let theirs = BookingFilter {
                        contact_id: Some(contact.id),
                        status: Some(BookingStatus::Confirmed),
                        from: Some(now),
                        limit: 50,
                        ..Default::default()
                    };
                    return Ok(booking_rows::list(conn, workspace_id, &theirs)?
                        .into_iter()
                        .filter(|b| same_email(&b.customer_email) && same_phone(&b.customer_phone))
                        .min_by_key(|b| b.starts_at));
                };
                let Some(row) = booking_rows::get(conn, workspace_id, reference)? else { return Ok(None) };
                let matches = same_email(&row.customer_email) || same_phone(&row.customer_phone);
                Ok((matches && row.starts_at >= now).then_some(row))
            })
            .await
    }

    /// Rescheduling and cancelling: find the booking, then (reschedule) choose a new time, then
    /// confirm.
    async fn change(
        &self,
        scope: &Scope<'_>,
        practice: &Practice,
        dialog: &mut Dialog,
        contact: &ContactDetails,
        text: &str,
    ) -> Result<(String, Action), DbError> {
        let workspace_id = scope.workspace_id;
        if dialog.booking_id.is_none() {
            if let Some(reference) = booking_number(text) {
                dialog.booking_ref = Some(reference);
            }
        }
        let booking = match dialog.booking_id {
            Some(id) => self.db.run(move |conn| booking_rows::get(conn, workspace_id, id)).await?,
            None => self.find_booking(scope, dialog, contact).await?,
        };
        let Some(booking) = booking.filter(|b| b.status == BookingStatus::Confirmed) else {
            let has_contact = contact.email.is_some() || contact.phone.is_some();
            if dialog.booking_ref.is_some() && has_contact {
                dialog.failed_lookups += 1;
                dialog.booking_ref = None;
                if dialog.failed_lookups >= MAX_FAILED_LOOKUPS {
                    *dialog = Dialog::default();
                    return Ok((say(scope.lang, "lookup-gave-up", &[]), Action::Message));
                }
                dialog.awaiting = Some(Awaiting::Identify);
                return Ok((say(scope.lang, "lookup-failed", &[]), Action::BookingFlow));
            }
            dialog.awaiting = Some(Awaiting::Identify);
            let ask = match (dialog.booking_ref.is_some(), has_contact) {
                (false, false) => "identify-both",
                (false, true) => "identify-number",
                (true, _) => "identify-contact",
            };
            return Ok((say(scope.lang, ask, &[]), Action::BookingFlow));
        };
        let current = BookingView::new(&booking, practice.tz);
        let lang = scope.lang;
        let current_when = say(
            lang,
            "current-booking",
            &[("service", &current.service), ("doctor", &current.doctor_name), ("when", &say_when(&current, lang))],
        );
        let first_time = dialog.booking_id.is_none();
        dialog.booking_id = Some(booking.id);
        dialog.service = Some(booking.service_name.clone());
        dialog.doctor = Some(booking.doctor_name.clone());

        if dialog.intent == Some(Intent::Cancel) {
            if dialog.awaiting == Some(Awaiting::Confirm) && !first_time {
                match answer_of(text) {
                    Answer::Yes => return self.cancel(scope, practice, dialog, &booking).await,
                    Answer::No => {
                        *dialog = Dialog::default();
                        return Ok((say(lang, "booking-kept", &[]), Action::Message));
                    }
                    Answer::Unclear => {}
                }
            }
            dialog.awaiting = Some(Awaiting::Confirm);
            return Ok((say(lang, "cancel-ask", &[("booking", &current_when)]), Action::BookingFlow));
        }

        // Reschedule. A new date or time at the confirmation changes the choice.
        let said_when = when::parse(&dates::in_english(&signals::without_emails(text), lang), practice.today(now_ms()));
        let changes_time = said_when.date.is_some() || said_when.time.is_some();
        if dialog.awaiting == Some(Awaiting::Confirm) && dialog.held.is_some() && !changes_time {
            match answer_of(text) {
                Answer::Yes => return self.move_booking(scope, practice, dialog, &booking).await,
                Answer::No => {
                    self.release(scope).await?;
                    dialog.held = None;
                    dialog.offered.clear();
                    dialog.date = None;
                    dialog.awaiting = Some(Awaiting::Date);
                    return Ok((say(scope.lang, "booking-other-date", &[]), Action::BookingFlow));
                }
                Answer::Unclear => {}
            }
        }
        let said = self.absorb(practice, dialog, text, scope);
        // "The Monday after" is after the appointment being moved, not after today.
        let current_date = NaiveDate::parse_from_str(&current.date, "%Y-%m-%d").ok();
        if let (Some(date), Some(current_date)) = (dialog.date, current_date) {
            // "after" before a time ("Monday after 2pm") is a time limit, not "the Monday after".
            let read = words(&dates::in_english(text, lang));
            let the_one_after = read.iter().enumerate().any(|(i, w)| {
                w == "after"
                    && read
                        .get(i + 1)
                        .is_none_or(|next| !next.starts_with(|c: char| c.is_ascii_digit()) && next != "noon")
            });
            if said.date.is_some() && date <= current_date && the_one_after {
                let weeks = (current_date - date).num_days() / 7 + 1;
                dialog.date = Some(date + chrono::Duration::weeks(weeks));
                dialog.offered.clear();
            }
        }
        if first_time && said.date.is_none() {
            dialog.awaiting = Some(Awaiting::Date);
            return Ok((say(lang, "move-ask-date", &[("booking", &current_when)]), Action::BookingFlow));
        }
        let service = booking.service_name.clone();
        if let Some(reply) = self.choose_time(scope, practice, dialog, &service, said, text).await? {
            return Ok(reply);
        }
        let Some(held) = dialog.held.clone() else {
            return Ok((say(lang, "move-which-date", &[]), Action::BookingFlow));
        };
        dialog.awaiting = Some(Awaiting::Confirm);
        let offer = say_offer(&held, lang);
        Ok((say(lang, "move-confirm", &[("booking", &current_when), ("offer", &offer)]), Action::BookingFlow))
    }

    async fn cancel(
        &self,
        scope: &Scope<'_>,
        practice: &Practice,
        dialog: &mut Dialog,
        booking: &BookingRow,
    ) -> Result<(String, Action), DbError> {
        let (workspace_id, id) = (scope.workspace_id, booking.id);
        let outcome = self
            .desk
            .run(workspace_id, move |conn| {
                booking::finish(
                    conn,
                    workspace_id,
                    id,
                    BookingStatus::Cancelled,
                    Some("cancelled by the patient in chat"),
                    now_ms(),
                )
            })
            .await?;
        *dialog = Dialog::default();
        match outcome {
            Ok(row) => {
                let view = BookingView::new(&row, practice.tz);
                let when = say_when(&view, scope.lang);
                let args = [("service", view.service.as_str()), ("doctor", view.doctor_name.as_str()), ("when", &when)];
                Ok((say(scope.lang, "cancel-done", &args), Action::BookingCancelled))
            }
            Err(BookingError::Db(err)) => Err(err),
            Err(other) => {
                Ok((say(scope.lang, "cancel-failed", &[("reason", &reason(scope.lang, &other))]), Action::Message))
            }
        }
    }

    async fn move_booking(
        &self,
        scope: &Scope<'_>,
        practice: &Practice,
        dialog: &mut Dialog,
        booking: &BookingRow,
    ) -> Result<(String, Action), DbError> {
        let Some(held) = dialog.held.clone() else {
            return Ok((say(scope.lang, "which-date", &[]), Action::BookingFlow));
        };
        let (workspace_id, id, conversation) = (scope.workspace_id, booking.id, scope.conversation_id.to_owned());
        let horizon = self.desk.horizon();
        let outcome = self
            .desk
            .run(workspace_id, move |conn| {
                // The visitor's own hold must not stand in the way of the move it was made for.
                booking_rows::release_holds(conn, workspace_id, &conversation)?;
                Ok::<_, DbError>(booking::reschedule(
                    conn,
                    workspace_id,
                    id,
                    Start::At(held.starts_at),
                    Some(&Named::Id(held.doctor_id)),
                    now_ms(),
                    horizon,
                ))
            })
            .await??;
        match outcome {
            Ok(row) => {
                *dialog = Dialog::default();
                let view = BookingView::new(&row, practice.tz);
                let lang = scope.lang;
                let (date, time, id) =
                    (dates::say_date(held.date, lang), dates::say_time(held.time, lang), view.id.to_string());
                let args = [
                    ("service", view.service.as_str()),
                    ("date", &date),
                    ("time", &time),
                    ("doctor", view.doctor_name.as_str()),
                    ("id", &id),
                ];
                Ok((say(lang, "move-done", &args), Action::BookingRescheduled))
            }
            Err(BookingError::Conflict { alternatives, .. }) => {
                Ok(offer_instead(dialog, &alternatives, &say(scope.lang, "slot-taken-meanwhile", &[]), scope.lang))
            }
            Err(BookingError::Db(err)) => Err(err),
            Err(other) => {
                *dialog = Dialog::default();
                Ok((say(scope.lang, "move-failed", &[("reason", &reason(scope.lang, &other))]), Action::Message))
            }
        }
    }
}

/// "Monday 23 November at 10:45 AM", from a booking's local date and time.
fn say_when(view: &BookingView, lang: Lang) -> String {
    let (date, time) =
        match (NaiveDate::parse_from_str(&view.date, "%Y-%m-%d"), NaiveTime::parse_from_str(&view.time, "%H:%M")) {
            (Ok(date), Ok(time)) => (dates::say_date(date, lang), dates::say_time(time, lang)),
            _ => (view.date.clone(), view.time.clone()),
        };
    say(lang, "date-at-time", &[("date", &date), ("time", &time)])
}

/// After a refused time: the alternatives become the offer (or, with none nearby, the dialog
/// asks for another date), and the reply starts with `why`.
fn offer_instead(dialog: &mut Dialog, alternatives: &[booking::SlotView], why: &str, lang: Lang) -> (String, Action) {
    dialog.held = None;
    dialog.offered = alternatives.iter().map(offer_of).collect();
    if dialog.offered.is_empty() {
        dialog.date = None;
        dialog.awaiting = Some(Awaiting::Date);
        return (say(lang, "nearest-none", &[("why", why)]), Action::BookingFlow);
    }
    dialog.awaiting = Some(Awaiting::Time);
    let options: Vec<String> = dialog.offered.iter().map(|o| say_offer(o, lang)).collect();
    (say(lang, "nearest-times", &[("why", why), ("options", &join_or(&options, lang))]), Action::BookingFlow)
}

fn offer_of(slot: &booking::SlotView) -> Offer {
    Offer {
        doctor_id: slot.doctor_id,
        doctor_name: slot.doctor_name.clone(),
        starts_at: slot.starts_at_ms,
        date: NaiveDate::parse_from_str(&slot.date, "%Y-%m-%d").unwrap_or_default(),
        time: NaiveTime::parse_from_str(&slot.time, "%H:%M").unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_explained_in_the_visitors_language() {
        let beyond = BookingError::BeyondHorizon { field: "date", days: 90 };
        assert!(reason(Lang::En, &beyond).contains("90 days"));
        assert_eq!(reason(Lang::Es, &beyond), "solo se aceptan reservas con un máximo de 90 días de antelación");
        let state = BookingError::State("the booking is cancelled".into());
        assert_eq!(reason(Lang::En, &state), "the booking is cancelled");
        assert_eq!(reason(Lang::De, &state), "dieser Termin kann nicht mehr geändert werden");
        assert_eq!(reason(Lang::Fr, &BookingError::NotFound), "ce rendez-vous est introuvable");
    }

    #[test]
    fn intents_are_told_apart() {
        assert_eq!(detect_intent("I'd like to book a teeth cleaning"), Some(Intent::Book));
        assert_eq!(detect_intent("I need to book a dental cleaning"), Some(Intent::Book));
        assert_eq!(detect_intent("Can I make an appointment?"), Some(Intent::Book));
        assert_eq!(detect_intent("I need to cancel my appointment"), Some(Intent::Cancel));
        assert_eq!(detect_intent("Can I reschedule?"), Some(Intent::Reschedule));
        assert_eq!(detect_intent("I want to change my appointment"), Some(Intent::Reschedule));
        assert_eq!(detect_intent("What is your cancellation policy?"), None);
        assert_eq!(detect_intent("Where are you located?"), None);
        assert_eq!(detect_intent("I read your notebook"), None);
        assert_eq!(detect_intent("No, another time please"), None);
    }

    #[test]
    fn answers_are_read() {
        assert_eq!(answer_of("Yes please"), Answer::Yes);
        assert_eq!(answer_of("sounds good"), Answer::Yes);
        assert_eq!(answer_of("Yes, no problem"), Answer::Yes);
        assert_eq!(answer_of("yes, I no longer need it"), Answer::Yes);
        assert_eq!(answer_of("no"), Answer::No);
        assert_eq!(answer_of("No, a different day"), Answer::No);
        assert_eq!(answer_of("please"), Answer::Unclear);
        assert_eq!(answer_of("yes... no wait"), Answer::Unclear);
        assert_eq!(answer_of("What are your opening hours?"), Answer::Unclear);
        assert_eq!(answer_of("ok, but is there parking?"), Answer::Unclear);
        assert_eq!(answer_of("yes?"), Answer::Yes);
        assert_eq!(answer_of("y cuánto cuesta"), Answer::Unclear);
        assert_eq!(answer_of("oui, pas de souci"), Answer::Yes);
        for yes in ["sí, por favor", "oui", "d'accord", "ja, gerne", "sim", "pode ser"] {
            assert_eq!(answer_of(yes), Answer::Yes, "{yes}");
        }
        for no in ["no, gracias", "non", "nein", "não"] {
            assert_eq!(answer_of(no), Answer::No, "{no}");
        }
        assert!(is_stop("never mind"));
        assert!(!is_stop("tomorrow at 10"));
    }

    #[test]
    fn offers_are_picked_by_time_or_position() {
        let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        let offer = |i: i64, time| Offer {
            doctor_id: 1,
            doctor_name: "Dr. A".into(),
            starts_at: i,
            date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            time,
        };
        let offered = vec![offer(1, at(9, 0)), offer(2, at(10, 30)), offer(3, at(14, 0))];
        assert_eq!(pick_offer("the second one", &offered, None).unwrap().starts_at, 2);
        assert_eq!(pick_offer("10:30 please", &offered, Some(at(10, 30))).unwrap().starts_at, 2);
        assert_eq!(pick_offer("last", &offered, None).unwrap().starts_at, 3);
        assert!(pick_offer("11:00", &offered, Some(at(11, 0))).is_none());
        assert!(pick_offer("hmm", &offered, None).is_none());
        assert_eq!(pick_offer("2", &offered, None).unwrap().starts_at, 2);
        assert_eq!(pick_offer("option 3 please", &offered, None).unwrap().starts_at, 3);
        assert!(pick_offer("anything after 3?", &offered, None).is_none());
    }

    #[test]
    fn booking_numbers_are_read_only_where_named() {
        assert_eq!(booking_number("#12"), Some(12));
        assert_eq!(booking_number("it's booking number 12, thanks"), Some(12));
        assert_eq!(booking_number("My booking is #7."), Some(7));
        assert_eq!(booking_number("42"), Some(42));
        assert_eq!(booking_number("call me on 555 1234"), None);
        assert_eq!(booking_number("I have 2 kids"), None);
    }

    #[test]
    fn a_running_dialog_switches_only_on_explicit_requests() {
        let at = |intent, awaiting| Dialog { intent: Some(intent), awaiting: Some(awaiting), ..Dialog::default() };
        assert_eq!(switch_to(&Dialog::default(), Some(Intent::Book)), Some(Intent::Book));
        assert_eq!(switch_to(&at(Intent::Reschedule, Awaiting::Confirm), Some(Intent::Book)), None);
        assert_eq!(switch_to(&at(Intent::Book, Awaiting::Time), Some(Intent::Book)), None);
        assert_eq!(switch_to(&at(Intent::Book, Awaiting::Time), Some(Intent::Reschedule)), Some(Intent::Reschedule));
        assert_eq!(switch_to(&at(Intent::Reschedule, Awaiting::Confirm), Some(Intent::Cancel)), None);
        assert_eq!(switch_to(&at(Intent::Reschedule, Awaiting::Date), Some(Intent::Cancel)), Some(Intent::Cancel));
    }

    #[test]
    fn lists_read_naturally() {
        assert_eq!(join_or(&["a".into()], Lang::En), "a");
        assert_eq!(join_or(&["a".into(), "b".into(), "c".into()], Lang::En), "a, b or c");
        assert_eq!(join_or(&["a".into(), "b".into()], Lang::De), "a oder b");
    }
}
