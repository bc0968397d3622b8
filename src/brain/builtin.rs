//! The built-in brain: answers from the bot's own settings, with no model.
//!
//! A question is reduced to content words (lower-cased, light stemming, a few synonyms, no
//! stop words) and matched against each company fact and policy: words of a title count three
//! times, words found only in the content once, and a content word shared by many entries
//! counts for less. The best entry above the threshold is the answer; greetings and thanks get
//! their own replies; anything else gets `reply_unknown`. Replies stream in chunks of a few
//! words, as a model's would.

use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::sync::{Arc, LazyLock, Mutex};

use lru::LruCache;

use frontdesk_actors::{Brain, BrainError, BrainOutput, BrainRequest, ChangedBy, Sender};
use futures::stream::BoxStream;

use super::claims::Claims;
use super::intent_vectors;
use super::nlu::{self, catalog, Intent, Lang, Lexicon, Nlu, Understanding};
use super::reception::{DialogHint, Intent as DialogIntent, Reception};
use super::BotSettingsCache;
use crate::domain::booking::Practice;
use crate::domain::crm::signals;
use crate::domain::knowledge::Knowledge;
use crate::ids::WorkspaceId;
use crate::storage::bots::Fact;
use crate::storage::{agents, BotSettings, Db};

pub struct BuiltinBrain {
    bots: Arc<BotSettingsCache>,
    reception: Option<Arc<Reception>>,
    knowledge: Option<Arc<Knowledge>>,
    /// Where agents' presence is read, to tell a visitor who asks for a person whether one is in.
    agents: Option<Db>,
}

impl BuiltinBrain {
    /// `reception` handles booking by chat and `knowledge` answers from the knowledge base;
    /// without them the brain answers from the bot's settings alone.
    pub fn new(
        bots: Arc<BotSettingsCache>,
        reception: Option<Arc<Reception>>,
        knowledge: Option<Arc<Knowledge>>,
    ) -> Self {
        Self { bots, reception, knowledge, agents: None }
    }

    /// Lets the brain hand conversations to people: a visitor asking for one (or the bot's
    /// unanswered-questions rule) puts the conversation in the agents' queue.
    pub fn with_agents(mut self, db: Db) -> Self {
        self.agents = Some(db);
        self
    }
}

/// Words that, alone or together, ask for a person rather than the bot.
pub(crate) fn asks_for_person(text: &str) -> bool {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let has = |w: &str| words.contains(&w);
    has("human")
        || has("agent")
        || has("representative")
        || has("operator")
        || ((has("real") || has("live")) && (has("person") || has("someone") || has("people")))
        || ((has("talk") || has("speak") || has("chat"))
            && (has("person") || has("someone") || has("staff") || has("team")))
}

/// Consecutive bot replies, most recent first, that could not answer.
fn unanswered_streak(request: &BrainRequest) -> usize {
    request
        .history
        .iter()
        .rev()
        .filter(|m| m.sender == Sender::Bot)
        .take_while(|m| m.metadata.as_ref().is_some_and(|meta| meta["unanswered"] == true))
        .count()
}

/// A reply and what it was based on.
struct Reply {
    text: String,
    metadata: Option<serde_json::Value>,
}

impl Reply {
    fn plain(text: String) -> Self {
        Reply { text, metadata: None }
    }

    /// The reply for a visitor writing in `lang`: the bot's own canned replies are written in
    /// one language, so in another the catalogue's words stand in for them. An answer quoted
    /// from the bot's facts or knowledge stays as written, since inventing a translation of a
    /// business's own words is how a bot misleads.
    fn in_language(self, settings: &BotSettings, lang: Lang) -> Reply {
        if lang == Lang::En && !toned_default(settings, &self.text) {
            return self;
        }
        let stock = |id: &str| Reply { text: canned(settings, lang, id), metadata: self.metadata.clone() };
        if self.metadata.as_ref().is_some_and(|m| m["unanswered"] == true) {
            stock("unknown")
        } else if self.text == settings.greeting_reply {
            stock("greeting")
        } else if self.text == settings.thanks_reply {
            stock("thanks")
        } else {
            self
        }
    }
}

/// The bot's tone, as the catalogue names its variants: `formal`, `casual`, or the default
/// (friendly). ChatSupport's `context.rules.tone` has already replaced the bot's own here.
fn tone_of(settings: &BotSettings) -> Option<&'static str> {
    match settings.tone.trim().to_lowercase().as_str() {
        "formal" | "professional" | "polite" => Some("formal"),
        "casual" | "informal" | "relaxed" | "playful" => Some("casual"),
        _ => None,
    }
}

/// The stock replies that name the business when a request named it (`greeting-named`, …).
const NAMES_THE_BUSINESS: &[&str] = &["greeting", "unknown"];

/// One of the brain's own canned replies (`greeting`, `thanks`, `goodbye`, `unknown`) in the
/// visitor's language and the bot's tone, naming the business where the request named it.
fn canned(settings: &BotSettings, lang: Lang, id: &str) -> String {
    let id = match tone_of(settings) {
        Some(tone) => format!("{id}-{tone}"),
        None => id.to_owned(),
    };
    let company = settings.company_name.as_deref().filter(|_| NAMES_THE_BUSINESS.iter().any(|n| id.starts_with(n)));
    match company {
        Some(company) => catalog::say(lang, &format!("{id}-named"), &[("company", company)]),
        None => catalog::say(lang, &id, &[]),
    }
}

/// Whether `text` is one of the bot's stock replies left as shipped while the wording is the
/// catalogue's to choose (the bot has a tone, or the request named the business): then the
/// catalogue's wording replaces it (a reply the business wrote itself is kept as written).
fn toned_default(settings: &BotSettings, text: &str) -> bool {
    let stock = BotSettings::default();
    (tone_of(settings).is_some() || settings.company_name.is_some())
        && [
            (&settings.greeting_reply, &stock.greeting_reply),
            (&settings.thanks_reply, &stock.thanks_reply),
            (&settings.reply_unknown, &stock.reply_unknown),
        ]
        .iter()
        .any(|(mine, shipped)| mine == shipped && text.starts_with(mine.as_str()))
}

/// How sure the classifier must be of an emergency before the emergency line is the answer:
/// "and whitening?" must not get it.
const EMERGENCY_CONFIDENCE: f32 = 0.35;

/// How sure the classifier must be that a visitor wants a person before the chat is handed over:
/// a hand-over nobody asked for costs the team's time, so this is stricter than other intents.
const HUMAN_CONFIDENCE: f32 = 0.35;

/// The language the conversation was in before this message, by the visitor's last five
/// messages: each one long enough to be read by its letters, or near-identical to an example,
/// counts.
fn conversation_language(
    nlu: &Nlu,
    lexicon: &Lexicon,
    history: &[frontdesk_actors::StoredMessage],
    current: i64,
) -> Option<Lang> {
    let earlier: Vec<&str> = history
        .iter()
        .rev()
        .filter(|m| m.sender == Sender::Visitor && m.id != current && !m.content.trim().is_empty())
        .take(5)
        .map(|m| m.content.as_str())
        .collect();
    // Each message votes for the language it is clearly in; the most votes win, the most
    // recent on a tie.
    let mut votes: Vec<(Lang, usize)> = Vec::new();
    for text in &earlier {
        let placed = nlu::lang::by_letters(text).or_else(|| {
            let prediction = nlu.classifier().predict(text, lexicon);
            prediction.nearest.filter(|(_, similarity)| *similarity >= 0.7).map(|(lang, _)| lang)
        });
        if let Some(lang) = placed {
            match votes.iter_mut().find(|(l, _)| *l == lang) {
                Some((_, count)) => *count += 1,
                None => votes.push((lang, 1)),
            }
        }
    }
    let most = votes.iter().map(|(_, count)| *count).max()?;
    votes.into_iter().find(|(_, count)| *count == most).map(|(lang, _)| lang)
}

/// How sure the classifier must be for a fragment to start a topic of its own rather than
/// continue the previous question's.
const FRAGMENT_CONFIDENCE: f32 = 0.4;

/// A fragment that continues the previous question ("how much is a cleaning?" then "and
/// whitening?", "who does braces?" then "does he work Saturdays?") asks what that one asked,
/// about what it names now.
fn carry_topic(
    nlu: &Nlu,
    lexicon: &Lexicon,
    mut understood: Understanding,
    text: &str,
    history: &[frontdesk_actors::StoredMessage],
    current: i64,
) -> Understanding {
    let masked = lexicon.mask(text);
    let names_something = masked.split(' ').any(|w| w == nlu::entities::SERVICE || w == nlu::entities::DOCTOR)
        || nlu::entities::refers_to_someone(text);
    let fragment = masked.split(' ').count() <= 4 && names_something;
    if !fragment || understood.confidence >= FRAGMENT_CONFIDENCE {
        return understood;
    }
    let Some(previous) = history.iter().rev().find(|m| m.sender == Sender::Visitor && m.id != current) else {
        return understood;
    };
    let before = nlu.understand(&previous.content, None, lexicon);
    if let Some(topic @ (Intent::ServicesPrices | Intent::Doctors | Intent::Policies)) = before.intent {
        understood.intent = Some(topic);
        understood.confidence = before.confidence.min(FRAGMENT_CONFIDENCE);
    }
    understood
}

/// How a message was understood when meaning was asked too: shown in the reply's metadata so
/// a team reviewing a conversation sees why the bot took a message as it did.
fn understanding_note(understood: &Understanding, verdict: intent_vectors::Verdict) -> serde_json::Value {
    let (by, was) = match verdict {
        intent_vectors::Verdict::Confirmed => ("words+meaning", None),
        intent_vectors::Verdict::Replaced { was } => ("meaning", Some(was.map(Intent::name))),
        intent_vectors::Verdict::Undecided => ("words", None),
    };
    let mut note = serde_json::json!({
        "intent": understood.intent.map(Intent::name),
        "confidence": understood.confidence,
        "language": understood.lang.code(),
        "by": by,
    });
    if let Some(was) = was {
        note["words_said"] = serde_json::json!(was);
    }
    note
}

/// What the classifier tells the booking dialog: the dialog a message asks for, or that it
/// is a question ("how much if I cancel late?" has "cancel" in it and is not a cancellation).
fn dialog_hint(understood: &Understanding) -> DialogHint {
    let score = |wanted: &[Intent]| {
        understood.prediction.ranking.iter().filter(|(i, _)| wanted.contains(i)).map(|(_, s)| *s).fold(0.0, f32::max)
    };
    let making = score(&[Intent::Book, Intent::Availability]);
    // "I'd like a cleaning on Wednesday" is nearly as close to moving a booking as to making
    // one: a near tie goes to making one, which asks what and when, not for a booking number.
    let sure_of_a_change =
        understood.confidence >= CHANGE_CONFIDENCE && understood.confidence - making >= CHANGE_MARGIN;
    let start = match understood.intent {
        Some(Intent::Book | Intent::Availability) => Some(DialogIntent::Book),
        Some(Intent::Reschedule) if sure_of_a_change => Some(DialogIntent::Reschedule),
        Some(Intent::Cancel) if sure_of_a_change => Some(DialogIntent::Cancel),
        Some(Intent::Reschedule | Intent::Cancel) if understood.confidence >= CHANGE_CONFIDENCE => {
            Some(DialogIntent::Book).filter(|_| making >= nlu::classifier::MIN_CONFIDENCE)
        }
        _ => None,
    };
    let question = matches!(
        understood.intent,
        Some(Intent::Policies | Intent::ServicesPrices | Intent::Hours | Intent::LocationContact | Intent::Doctors)
    ) && understood.confidence >= QUESTION_CONFIDENCE;
    DialogHint { start, question, doctor: None, lang: understood.lang }
}

fn cards(practice: &Practice) -> Vec<nlu::entities::DoctorCard<'_>> {
    practice
        .doctors
        .iter()
        .map(|d| nlu::entities::DoctorCard { name: &d.name, specialty: &d.specialty, bio: &d.bio })
        .collect()
}

/// The doctor the conversation named last before this message, for "he", "she", "her"….
fn doctor_named_before(
    practice: &Practice,
    history: &[frontdesk_actors::StoredMessage],
    current: i64,
) -> Option<usize> {
    let cards = cards(practice);
    history.iter().rev().filter(|m| m.id != current).take(6).find_map(|m| {
        match nlu::entities::doctors_named(&m.content, &cards).as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    })
}

/// Whether a question is about days or working time ("does he work Saturdays?", "¿cuándo
/// atiende?", "welche Tage?"), in any of the brain's languages.
fn asks_about_days(text: &str, lang: Lang) -> bool {
    const WORDS: &[&str] = &[
        "when",
        "days",
        "day",
        "work",
        "works",
        "working",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "saturdays",
        "sunday",
        "sundays",
        "weekend",
        "weekends",
        "cuando",
        "dias",
        "trabaja",
        "quand",
        "jours",
        "travaille",
        "wann",
        "tage",
        "arbeitet",
        "quando",
        "trabalha",
    ];
    nlu::features::fold(&nlu::dates::in_english(text, lang)).split(' ').any(|w| WORDS.contains(&w))
}

/// A question about one doctor, named, found by the care asked about, or referred to by a
/// pronoun: who they are, or, asked when, the days they see patients.
fn about_a_doctor(
    practice: &Practice,
    text: &str,
    referred: Option<usize>,
    understood: &Understanding,
) -> Option<String> {
    let asks_when = matches!(understood.intent, Some(Intent::Hours | Intent::Availability))
        || asks_about_days(text, understood.lang);
    let about_them = understood.intent == Some(Intent::Doctors) || (asks_when && referred.is_some());
    if !about_them || !(text.contains('?') || text.contains('¿') || understood.intent == Some(Intent::Doctors)) {
        return None;
    }
    let meant = nlu::entities::doctors_meant(text, &cards(practice));
    let one = match (meant.as_slice(), referred) {
        ([one], _) => *one,
        ([], Some(referred)) => referred,
        _ => return None,
    };
    let doctor = &practice.doctors[one];
    let lang = understood.lang;
    let days = doctor.availability.trim();
    if asks_when && !days.is_empty() {
        return Some(catalog::say(lang, "doctor-days", &[("doctor", &doctor.name), ("days", days)]));
    }
    let args =
        [("doctor", doctor.name.as_str()), ("specialty", doctor.specialty.as_str()), ("bio", doctor.bio.as_str())];
    Some(catalog::say(lang, "doctor-about", &args))
}

/// How sure the classifier must be, with no keyword saying so, before a message starts moving
/// or cancelling a booking: those dialogs ask for a booking number, a baffling answer to a
/// question they misread ("¿Puedo traer a mi perro?" scores 0.27 for reschedule).
const CHANGE_CONFIDENCE: f32 = 0.35;

/// … and how far its score must stand above making a booking's.
const CHANGE_MARGIN: f32 = 0.03;

/// How sure the classifier must be that a message is a question before the dialog's keywords
/// ("cancel", "reschedule") are overruled.
const QUESTION_CONFIDENCE: f32 = 0.35;

/// Greetings, thanks and goodbyes in the visitor's language, and contact details
/// acknowledged; `None` for anything else.
fn social(settings: &BotSettings, text: &str, understood: &Understanding) -> Option<Reply> {
    let lang = understood.lang;
    let short = text.split_whitespace().count() <= 5;
    match understood.intent? {
        Intent::Greet if short && lang != Lang::En => Some(Reply::plain(canned(settings, lang, "greeting"))),
        Intent::Thanks if short && lang != Lang::En => Some(Reply::plain(canned(settings, lang, "thanks"))),
        Intent::Goodbye if short => Some(Reply::plain(canned(settings, lang, "goodbye"))),
        _ => None,
    }
}

/// A short acknowledgement of the contact details a message gives (they reach the CRM and the
/// lead whatever the bot replies), or `None` when it gives none.
fn contact_noted(text: &str, understood: &Understanding) -> Option<String> {
    let lang = understood.lang;
    let contact = signals::extract_contact(text);
    let given = contact.email.is_some()
        || contact.phone.is_some()
        || (contact.name.is_some() && understood.intent == Some(Intent::ContactDetails));
    if !given {
        return None;
    }
    let details: Vec<String> = [contact.email.clone(), contact.phone.clone()].into_iter().flatten().collect();
    let details = if details.is_empty() { contact.name.clone().unwrap_or_default() } else { details.join(", ") };
    Some(match contact.name.as_deref() {
        Some(name) => catalog::say(lang, "contact-noted-named", &[("name", first_name(name)), ("details", &details)]),
        None => catalog::say(lang, "contact-noted", &[("details", &details)]),
    })
}

/// Whether a message that gives contact details also asks something: "Kevin here,
/// kevin@x.com, how much is whitening?" gets the acknowledgement and the answer.
fn also_asks(text: &str, understood: &Understanding) -> bool {
    let asks = text.contains('?') || text.contains('¿');
    asks && !matches!(understood.intent, Some(Intent::ContactDetails) | None)
}

/// What the practice's own records answer exactly: the price of the service asked about (that
/// service's line, not the whole list) and who is on the team; `None` for anything else.
fn practice_answer(
    settings: &BotSettings,
    practice: Option<&Practice>,
    lexicon: &Lexicon,
    text: &str,
    understood: &Understanding,
) -> Option<Reply> {
    let lang = understood.lang;
    match understood.intent? {
        Intent::ServicesPrices => {
            let practice = practice?;
            let names: Vec<&str> = practice.services.iter().map(|s| s.name.as_str()).collect();
            let asked = nlu::entities::service_named(text, &names)?;
            let service = practice.services.iter().find(|s| s.name == asked)?;
            let price = format_price(service.price_cents?);
            Some(Reply::plain(catalog::say(lang, "price", &[("service", &service.name), ("price", &price)])))
        }
        // Someone in trouble gets the emergency line whatever words they used and whatever
        // language they wrote in: a phone number reads the same everywhere.
        Intent::Emergency if understood.confidence >= EMERGENCY_CONFIDENCE => {
            fact_titled(settings, &["emergenc", "urgen", "notfall"]).map(Reply::plain)
        }
        // Only a question that is about someone gets the team: a misread question must not.
        Intent::Doctors
            if answer(settings, text) == settings.reply_unknown
                && nlu::entities::mentions_practitioner(text, lexicon) =>
        {
            let practice = practice.filter(|p| !p.doctors.is_empty())?;
            let team: Vec<String> = practice
                .doctors
                .iter()
                .map(|d| match d.specialty.trim() {
                    "" => d.name.clone(),
                    specialty => format!("{} ({specialty})", d.name),
                })
                .collect();
            Some(Reply::plain(catalog::say(lang, "doctors", &[("list", &team.join(", "))])))
        }
        _ => None,
    }
}

/// The content of the bot's first fact or policy whose title holds one of `keys` (folded).
fn fact_titled(settings: &BotSettings, keys: &[&str]) -> Option<String> {
    settings
        .company_facts
        .iter()
        .chain(settings.policies.iter())
        .find(|fact| {
            let title = nlu::features::fold(&fact.title);
            keys.iter().any(|key| title.contains(key))
        })
        .map(|fact| fact.content.clone())
}

fn first_name(name: &str) -> &str {
    name.split_whitespace().next().unwrap_or(name)
}

/// A price as the practice's facts write it: `$120`, or `$120.50` with cents.
fn format_price(cents: i64) -> String {
    if cents % 100 == 0 {
        format!("${}", cents / 100)
    } else {
        format!("${}.{:02}", cents / 100, cents % 100)
    }
}

/// The answer to a question outside any dialog, in order of trust: greetings and thanks; a
/// curated Q&A pair; a passage of the knowledge base covering the question, cited (richer and
/// more specific than the settings' short facts) — unless the bot's facts answer the same
/// question with other times or prices, when the facts are the answer and the disagreement goes
/// to the review list; the bot's own facts and policies (and the request's context); and
/// otherwise `reply_unknown` with the offer of a person, the question recorded as unanswered.
async fn answer_question(
    settings: &BotSettings,
    knowledge: Option<&Knowledge>,
    request: &BrainRequest,
    question: &str,
    from_practice: Option<Reply>,
) -> Reply {
    let settings_answer = answer(settings, question);
    if settings_answer == settings.greeting_reply || settings_answer == settings.thanks_reply {
        return Reply::plain(settings_answer);
    }
    let grounded = match knowledge {
        Some(knowledge) => match knowledge.ask(WorkspaceId(request.workspace_id), request.bot_id, question).await {
            Ok(found) => found,
            Err(err) => {
                tracing::warn!(error = %err, "knowledge base unavailable; answering without it");
                None
            }
        },
        None => None,
    };
    if let Some(found) = grounded {
        let from_facts = settings_answer != settings.reply_unknown;
        let passage = found.basis == crate::domain::knowledge::answer::Basis::Passage;
        if from_facts && passage && Claims::of(&settings_answer).contradicted_by(&Claims::of(&found.text)) {
            if let Some(knowledge) = knowledge {
                let detail = format!("The bot's facts: {settings_answer}\nThe knowledge base: {}", found.text);
                let workspace_id = WorkspaceId(request.workspace_id);
                let recorded =
                    knowledge.record_conflict(workspace_id, request.bot_id, question, &request.conversation_id, detail);
                if let Err(err) = recorded.await {
                    tracing::warn!(error = %err, "could not record a facts/knowledge conflict");
                }
            }
            let metadata = serde_json::json!({ "source": "facts", "conflict": { "knowledge": found.metadata() } });
            return Reply { text: settings_answer, metadata: Some(metadata) };
        }
        return Reply { text: found.text.clone(), metadata: Some(found.metadata()) };
    }
    // The practice's own records answer exactly what was asked (that service's price, not the
    // whole price list), so they come before the facts, which can only be quoted whole.
    if let Some(reply) = from_practice {
        return reply;
    }
    if settings_answer != settings.reply_unknown {
        return Reply::plain(settings_answer);
    }
    if let Some(reply) = fact_by_meaning(settings, knowledge, question).await {
        return reply;
    }
    if let Some(knowledge) = knowledge {
        let recorded = knowledge
            .record_unanswered(WorkspaceId(request.workspace_id), request.bot_id, question, &request.conversation_id)
            .await;
        if let Err(err) = recorded {
            tracing::warn!(error = %err, "could not record an unanswered question");
        }
    }
    let text = match settings.handoff_offer.trim() {
        "" => settings.reply_unknown.clone(),
        offer => format!("{} {offer}", settings.reply_unknown),
    };
    Reply { text, metadata: Some(serde_json::json!({ "unanswered": true, "handoff_offered": true })) }
}

/// One unit vector per fact and policy of a bot, in their order.
type FactVectors = Arc<Vec<Vec<f32>>>;

/// How far under the similarity bar a fact may be taken when it stands [`FACT_MARGIN`] above
/// the bot's other facts.
const FACT_BAR_SLACK: f32 = 0.03;
const FACT_MARGIN: f32 = 0.025;

/// The bot's facts and policies as unit vectors of the embeddings model, by a hash of the model
/// and the texts: a bot's facts change rarely, so they are embedded once, not on every turn.
/// Bounded: the least recently used bots' vectors are dropped first.
static FACT_VECTORS: LazyLock<Mutex<LruCache<u64, FactVectors>>> =
    LazyLock::new(|| Mutex::new(LruCache::new(NonZeroUsize::new(512).expect("non-zero"))));

/// The bot's fact or policy that means what the question asks, by the embeddings endpoint,
/// when words found none: "¿Dónde puedo aparcar?" finds "Parking: free behind the building"
/// written in English. The fact is quoted as the business wrote it (never translated). `None`
/// without an endpoint, when it fails, or when nothing is similar enough (the knowledge base's
/// own bar, `FRONTDESK_EMBEDDINGS_MIN_SIMILARITY`).
async fn fact_by_meaning(settings: &BotSettings, knowledge: Option<&Knowledge>, question: &str) -> Option<Reply> {
    let embedder = knowledge?.embedder.clone()?;
    let facts: Vec<&Fact> = settings.company_facts.iter().chain(&settings.policies).collect();
    if facts.is_empty() {
        return None;
    }
    let texts: Vec<String> = facts.iter().map(|f| format!("{}: {}", f.title, f.content)).collect();
    let key = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (embedder.model(), &texts).hash(&mut hasher);
        hasher.finish()
    };
    let cached = FACT_VECTORS.lock().ok().and_then(|mut cache| cache.get(&key).cloned());
    let vectors = match cached {
        Some(vectors) => vectors,
        None => {
            let vectors = match embedder.passages(&texts).await {
                Ok(vectors) if vectors.len() == texts.len() => Arc::new(vectors),
                Ok(_) => return None,
                Err(err) => {
                    tracing::warn!(error = %err, "could not embed the bot's facts; answering without them");
                    return None;
                }
            };
            if let Ok(mut cache) = FACT_VECTORS.lock() {
                cache.put(key, vectors.clone());
            }
            vectors
        }
    };
    let query = match embedder.query(question).await {
        Ok(query) => query,
        Err(err) => {
            tracing::warn!(error = %err, "could not embed a question for the bot's facts");
            return None;
        }
    };
    let dot = |v: &Vec<f32>| v.iter().zip(&query).map(|(a, b)| a * b).sum::<f32>();
    let mut ranked: Vec<(usize, f32)> = vectors.iter().enumerate().map(|(i, v)| (i, dot(v))).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (best, similarity) = ranked[0];
    // Across languages a model's similarities sit lower and closer together (multilingual-e5:
    // "¿Puedo traer a mi perro?" is 0.818 to the pets fact, 0.77 to the others, while "the
    // capital of France?" is 0.73 to all): a fact that stands clearly above the bot's other
    // facts is taken a little under the bar; a lone fact must reach it.
    let clear = match ranked.get(1) {
        Some(&(_, second)) => {
            similarity >= embedder.min_similarity() - FACT_BAR_SLACK && similarity - second >= FACT_MARGIN
        }
        None => similarity >= embedder.min_similarity(),
    };
    clear.then(|| Reply {
        text: facts[best].content.clone(),
        metadata: Some(serde_json::json!({ "source": "facts", "similarity": similarity })),
    })
}

/// The bot's settings with a request's own context (ChatSupport AI's `context`) laid over them
/// for this answer: its policies and company description become facts, its scraped text too.
fn with_request_context(settings: &BotSettings, context: Option<&serde_json::Value>) -> BotSettings {
    let mut settings = settings.clone();
    let Some(context) = context else { return settings };
    let rules = &context["rules"];
    let text = |value: &serde_json::Value| value.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let mut facts = Vec::new();
    if let Some(policies) = rules["policies"].as_array() {
        for policy in policies {
            if let (Some(title), Some(content)) = (text(&policy["title"]), text(&policy["content"])) {
                facts.push(Fact { title, content });
            }
        }
    }
    if let Some(description) = text(&rules["companyDescription"]) {
        let name = text(&rules["companyName"]).unwrap_or_else(|| "us".to_owned());
        facts.push(Fact { title: format!("About {name} company who are you what do you do"), content: description });
    }
    if let Some(scraped) = text(&context["scrapedData"]) {
        for paragraph in scraped.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
            facts.push(Fact { title: String::new(), content: paragraph.to_owned() });
        }
    }
    if let Some(tone) = text(&rules["tone"]) {
        settings.tone = tone;
    }
    settings.company_name = text(&rules["companyName"]);
    // The request's own rules come first: on a tie they win over the bot's stored facts.
    facts.extend(settings.policies);
    settings.policies = facts;
    settings
}

impl Brain for BuiltinBrain {
    fn reply(&self, request: BrainRequest) -> BoxStream<'static, Result<BrainOutput, BrainError>> {
        let bots = self.bots.clone();
        let reception = self.reception.clone();
        let knowledge = self.knowledge.clone();
        let agents_db = self.agents.clone();
        Box::pin(async_stream::stream! {
            let settings = match bots.get(WorkspaceId(request.workspace_id), request.bot_id).await {
                Ok(settings) => Arc::new(with_request_context(&settings, request.context.as_ref())),
                Err(err) => {
                    yield Err(BrainError(err.to_string()));
                    return;
                }
            };
            let Some(question) = request.history.iter().rev().find(|m| m.sender == Sender::Visitor) else {
                yield Ok(BrainOutput::Text(settings.reply_unknown.clone()));
                return;
            };
            // A file with no words is not a question the bot failed to understand.
            if question.content.trim().is_empty() && question.media.is_some() {
                for chunk in chunks(&settings.attachment_reply) {
                    pace(settings.stream_delay_ms).await;
                    yield Ok(BrainOutput::Text(chunk));
                }
                return;
            }
            let nlu = Nlu::shared();
            let lexicon = match reception.as_ref() {
                Some(reception) => reception.lexicon(WorkspaceId(request.workspace_id)).await,
                None => Arc::new(Lexicon::default()),
            };
            let previous = conversation_language(&nlu, &lexicon, &request.history, question.id);
            let understood = carry_topic(
                &nlu,
                &lexicon,
                nlu.understand(&question.content, previous, &lexicon),
                &question.content,
                &request.history,
                question.id,
            );
            // In the middle of a booking, only explicit words hand over: "next Monday please" is an
            // answer to the dialog's question, however it scores.
            let in_dialog = request.variables.get("reception").and_then(|r| r.get("intent")).is_some_and(|i| !i.is_null());
            // A dialog's answers are read by the dialog; anything else the words are unsure of
            // gets meaning's second opinion where an embeddings endpoint is configured.
            let embedder = knowledge.as_ref().and_then(|k| k.embedder.clone()).filter(|_| !in_dialog);
            let (understood, verdict) = match embedder {
                Some(embedder) => intent_vectors::rerank(&embedder, &question.content, understood).await,
                None => (understood, None),
            };
            let understanding = verdict.map(|verdict| understanding_note(&understood, verdict));
            let lang = understood.lang;
            let wants_person = asks_for_person(&question.content)
                || (!in_dialog
                    && understood.intent == Some(Intent::Human)
                    && understood.confidence >= HUMAN_CONFIDENCE
                    && nlu::entities::mentions_person(&question.content));
            if let Some(db) = agents_db.as_ref().filter(|_| wants_person) {
                let workspace_id = WorkspaceId(request.workspace_id);
                let online = db.run(move |conn| agents::online(conn, workspace_id)).await.map(|a| a.len()).unwrap_or(0);
                let text = match (online > 0, lang) {
                    (true, Lang::En) => settings.handoff_waiting.clone(),
                    (false, Lang::En) => settings.handoff_offline.clone(),
                    (true, lang) => catalog::say(lang, "handoff-waiting", &[]),
                    (false, lang) => catalog::say(lang, "handoff-offline", &[]),
                };
                yield Ok(BrainOutput::Metadata(serde_json::json!({ "handoff": { "agents_online": online } })));
                for chunk in chunks(&text) {
                    pace(settings.stream_delay_ms).await;
                    yield Ok(BrainOutput::Text(chunk));
                }
                yield Ok(BrainOutput::Handoff { actor: ChangedBy::Visitor, reason: "the visitor asked for a person".into() });
                return;
            }
            // Only questions about the services or the team, or that refer to someone, need the
            // practice read.
            let refers = nlu::entities::refers_to_someone(&question.content);
            let practice = match reception.as_ref() {
                Some(reception) if refers || matches!(understood.intent, Some(Intent::ServicesPrices | Intent::Doctors)) => {
                    reception.practice(WorkspaceId(request.workspace_id)).await.ok()
                }
                _ => None,
            };
            let referred = practice.as_ref().filter(|_| refers).and_then(|p| doctor_named_before(p, &request.history, question.id));
            // "Can I book a whitening with Dr. Davis?" is a booking that names a doctor, not a
            // question about her.
            let asks_to_book = super::reception::detect_intent(&question.content).is_some();
            // A question about a doctor ("does he work Saturdays?") is not a booking, whatever
            // its words; it is answered below, after the knowledge base has had its say.
            let doctor_reply = if !in_dialog && !asks_to_book {
                practice.as_ref().and_then(|p| about_a_doctor(p, &question.content, referred, &understood))
            } else {
                None
            };
            let mut hint = dialog_hint(&understood);
            hint.doctor = referred.and_then(|i| practice.as_ref().map(|p| p.doctors[i].name.clone()));
            if let Some(reception) = reception.as_ref().filter(|_| doctor_reply.is_none()) {
                let turn = reception
                    .turn(
                        WorkspaceId(request.workspace_id),
                        &request.conversation_id,
                        question,
                        hint.clone(),
                        &request.variables,
                        &request.state,
                    )
                    .await;
                match turn {
                    Ok(Some(turn)) => {
                        // A question in the middle of a booking ("where are you?") is answered,
                        // then the dialog's question is asked again.
                        let mut reply = turn.reply;
                        let mut metadata = serde_json::json!({});
                        if !turn.progressed {
                            let aside = answer_question(&settings, knowledge.as_deref(), &request, &question.content, None).await;
                            let known = [&settings.greeting_reply, &settings.thanks_reply];
                            if aside.metadata.as_ref().is_none_or(|m| m["unanswered"] != true) && !known.contains(&&aside.text) {
                                reply = format!("{}\n\n{reply}", aside.text);
                                if let Some(aside) = aside.metadata {
                                    metadata = aside;
                                }
                            }
                        }
                        // The question's answers, for clients that show them as buttons.
                        if !turn.quick_replies.is_empty() && metadata.is_object() {
                            metadata["quick_replies"] = serde_json::json!(turn.quick_replies);
                        }
                        if let Some(note) = understanding.clone().filter(|_| metadata.is_object()) {
                            metadata["understanding"] = note;
                        }
                        if metadata.as_object().is_some_and(|m| !m.is_empty()) {
                            yield Ok(BrainOutput::Metadata(metadata));
                        }
                        for chunk in chunks(&reply) {
                            pace(settings.stream_delay_ms).await;
                            yield Ok(BrainOutput::Text(chunk));
                        }
                        return;
                    }
                    Ok(None) => {}
                    Err(err) => {
                        yield Err(BrainError(err.to_string()));
                        return;
                    }
                }
            }
            let noted = contact_noted(&question.content, &understood);
            let reply = match (social(&settings, &question.content, &understood), noted) {
                (Some(reply), None) => reply,
                (_, Some(noted)) if !also_asks(&question.content, &understood) => {
                    Reply { text: noted, metadata: Some(serde_json::json!({ "contact_noted": true })) }
                }
                (_, noted) => {
                    let from_practice = doctor_reply.map(Reply::plain).or_else(|| {
                        practice_answer(&settings, practice.as_ref(), &lexicon, &question.content, &understood)
                    });
                    let reply = answer_question(&settings, knowledge.as_deref(), &request, &question.content, from_practice)
                        .await
                        .in_language(&settings, lang);
                    match noted {
                        Some(noted) => Reply { text: format!("{noted}\n\n{}", reply.text), metadata: reply.metadata },
                        None => reply,
                    }
                }
            };
            let unanswered = reply.metadata.as_ref().is_some_and(|m| m["unanswered"] == true);
            let mut metadata = reply.metadata;
            if let Some(note) = understanding {
                let target = metadata.get_or_insert_with(|| serde_json::json!({}));
                if target.is_object() {
                    target["understanding"] = note;
                }
            }
            if let Some(metadata) = metadata {
                yield Ok(BrainOutput::Metadata(metadata));
            }
            for chunk in chunks(&reply.text) {
                pace(settings.stream_delay_ms).await;
                yield Ok(BrainOutput::Text(chunk));
            }
            let limit = settings.handoff_after_unanswered as usize;
            if agents_db.is_some() && unanswered && limit > 0 && unanswered_streak(&request) + 1 >= limit {
                yield Ok(BrainOutput::Handoff {
                    actor: ChangedBy::Rule,
                    reason: format!("{limit} questions in a row the bot could not answer"),
                });
            }
        })
    }
}

const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "is", "are", "am", "was", "were", "be", "do", "does", "did", "you", "your", "yours", "i", "me",
    "my", "we", "our", "us", "it", "its", "to", "of", "in", "on", "at", "for", "and", "or", "can", "could", "would",
    "will", "should", "what", "which", "who", "how", "there", "this", "that", "with", "have", "has", "any", "about",
    "please", "tell", "know", "want", "like", "need", "get", "some", "from", "if", "so", "by", "as", "just", "also",
];
const GREETINGS: &[&str] =
    &["hi", "hello", "hey", "hiya", "howdy", "greeting", "good", "morning", "afternoon", "evening", "yo", "there"];
const THANKS: &[&str] = &[
    "thank",
    "thanks",
    "thx",
    "cheer",
    "appreciate",
    "great",
    "ok",
    "okay",
    "perfect",
    "much",
    "lot",
    "very",
    "awesome",
];

/// Everyday words mapped to the words a fact is likely titled with.
fn synonyms(word: &str) -> &'static [&'static str] {
    match word {
        "where" | "located" | "find" | "directions" => &["location", "address"],
        "cost" | "costs" | "much" | "fee" | "fees" | "charge" | "pricing" => &["price"],
        "open" | "opening" | "close" | "closing" | "when" | "time" => &["open", "hour"],
        "park" | "car" => &["parking"],
        "cancel" | "cancelling" | "canceling" | "reschedule" => &["cancellation"],
        "urgent" | "pain" | "emergency" => &["emergency"],
        "insured" | "coverage" | "plan" => &["insurance"],
        _ => &[],
    }
}

fn stem(word: &str) -> String {
    let w = word;
    for (suffix, keep) in [("ies", "y"), ("ing", ""), ("es", ""), ("s", "")] {
        if w.len() > suffix.len() + 3 && w.ends_with(suffix) && !w.ends_with("ss") {
            return format!("{}{}", &w[..w.len() - suffix.len()], keep);
        }
    }
    w.to_owned()
}

fn words(text: &str) -> Vec<String> {
    text.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

/// The content words of a text, with synonyms added.
fn terms(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for word in words(text) {
        for synonym in synonyms(&word) {
            out.insert((*synonym).to_owned());
        }
        if !STOP_WORDS.contains(&word.as_str()) {
            out.insert(stem(&word));
        }
    }
    out
}

/// The built-in answer to `question`.
pub fn answer(settings: &BotSettings, question: &str) -> String {
    let all = words(question);
    if all.is_empty() {
        return settings.reply_unknown.clone();
    }
    let meaningful: Vec<&String> =
        all.iter().filter(|w| !STOP_WORDS.contains(&w.as_str()) && !GREETINGS.contains(&w.as_str())).collect();
    if meaningful.is_empty() {
        return settings.greeting_reply.clone();
    }
    if all.iter().any(|w| w.starts_with("thank") || w == "thx")
        && meaningful.iter().all(|w| THANKS.iter().any(|t| w.starts_with(t)))
    {
        return settings.thanks_reply.clone();
    }

    let question = terms(question);
    let entries: Vec<_> = settings.company_facts.iter().chain(settings.policies.iter()).collect();
    let indexed: Vec<(HashSet<String>, HashSet<String>)> =
        entries.iter().map(|fact| (terms(&fact.title), terms(&fact.content))).collect();
    let spread = |term: &String| indexed.iter().filter(|(t, c)| t.contains(term) || c.contains(term)).count().max(1);
    let mut best: Option<(f64, usize)> = None;
    for (i, (title, content)) in indexed.iter().enumerate() {
        let mut score = 0.0;
        for term in &question {
            if title.contains(term) {
                score += 3.0;
            } else if content.contains(term) && term.len() > 2 {
                score += 1.0 / spread(term) as f64;
            }
        }
        if score >= 1.0 && best.is_none_or(|(top, _)| score > top) {
            best = Some((score, i));
        }
    }
    match best {
        Some((_, i)) => entries[i].content.clone(),
        None => settings.reply_unknown.clone(),
    }
}

/// Splits a reply into chunks of a few words (keeping the spaces), the way a model streams.
/// Larger chunks would mean fewer frames; smaller ones, a livelier widget.
/// The bot's typing pace: a pause before each chunk when the bot is set to stream like a
/// person types (`stream_delay_ms`), none by default.
async fn pace(delay_ms: u32) {
    if delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(u64::from(delay_ms.min(MAX_STREAM_DELAY_MS)))).await;
    }
}

/// The longest pause between chunks a bot may be set to.
pub const MAX_STREAM_DELAY_MS: u32 = 2_000;

pub fn chunks(text: &str) -> Vec<String> {
    const WORDS_PER_CHUNK: usize = 6;
    let mut out = Vec::new();
    let mut current = String::new();
    let mut count = 0;
    for piece in text.split_inclusive(' ') {
        current.push_str(piece);
        count += 1;
        if count == WORDS_PER_CHUNK {
            out.push(std::mem::take(&mut current));
            count = 0;
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod handoff_tests {
    use super::asks_for_person;

    #[test]
    fn asking_for_a_person_is_recognised_and_other_questions_are_not() {
        for asked in [
            "Can I talk to a human?",
            "agent please",
            "I want to speak to someone",
            "real person!",
            "Let me chat with your team",
        ] {
            assert!(asks_for_person(asked), "{asked}");
        }
        for other in ["What are your opening hours?", "Is parking free?", "Who is the dentist?", "personal data policy"]
        {
            assert!(!asks_for_person(other), "{other}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::workspaces::demo_bot_settings;

    fn demo() -> BotSettings {
        demo_bot_settings("Bright Smile Dental")
    }

    #[test]
    fn a_near_tie_between_making_and_moving_a_booking_makes_one() {
        let nlu = Nlu::shared();
        let hint = |text: &str| dialog_hint(&nlu.understand(text, None, &Lexicon::default())).start;
        assert_eq!(hint("I'd like a cleaning on Wednesday"), Some(DialogIntent::Book));
        assert_eq!(hint("could I come in on the 14th, late morning?"), Some(DialogIntent::Book));
        assert_eq!(hint("something came up, I can't make it on Tuesday anymore"), Some(DialogIntent::Reschedule));
        assert_eq!(hint("hola, necesito anular mi cita"), Some(DialogIntent::Cancel));
        assert_eq!(hint("¿Puedo traer a mi perro?"), None, "a weak reading starts no change");
    }

    #[test]
    fn answers_from_the_matching_fact() {
        let s = demo();
        assert!(answer(&s, "What are your opening hours?").contains("Monday to Friday"));
        assert!(answer(&s, "Where are you located?").contains("Harbour Street"));
        assert!(answer(&s, "Do you take Aetna?").contains("Aetna"));
        assert!(answer(&s, "How much does teeth whitening cost?").contains("$350"));
        assert!(answer(&s, "Can I park my car?").contains("parking"));
        assert!(answer(&s, "What if I need to cancel?").contains("24 hours"));
    }

    #[test]
    fn greetings_thanks_and_unknowns() {
        let s = demo();
        assert_eq!(answer(&s, "Hello there!"), s.greeting_reply);
        assert_eq!(answer(&s, "thanks a lot"), s.thanks_reply);
        assert_eq!(answer(&s, "Do you sell bicycles?"), s.reply_unknown);
        assert_eq!(answer(&s, "   "), s.reply_unknown);
    }

    #[test]
    fn the_bots_tone_changes_its_stock_words_but_never_the_businesss_own() {
        let mut formal = demo();
        formal.tone = "Formal".into();
        assert_eq!(canned(&formal, Lang::En, "greeting"), "Good day. How may I assist you?");
        assert!(toned_default(&formal, &formal.greeting_reply));
        let mut casual = demo();
        casual.tone = "casual".into();
        assert_eq!(canned(&casual, Lang::De, "thanks"), "Gern! Sonst noch was?");
        let friendly = demo();
        assert!(!toned_default(&friendly, &friendly.greeting_reply), "the default tone keeps the stock reply");
        let mut own = formal.clone();
        own.greeting_reply = "Welcome to Bright Smile!".into();
        assert!(!toned_default(&own, &own.greeting_reply), "a reply the business wrote is kept");
        let named = BotSettings { company_name: Some("Acme Dental".into()), ..BotSettings::default() };
        assert_eq!(
            canned(&named, Lang::En, "greeting"),
            "Hello, and welcome to Acme Dental! How can I help you today?"
        );
        assert!(toned_default(&named, &named.greeting_reply), "a named business rewords the stock greeting");
        let named_formal = BotSettings { tone: "formal".into(), ..named.clone() };
        assert!(canned(&named_formal, Lang::Fr, "unknown").contains("l'équipe Acme Dental"));
        assert_eq!(canned(&named, Lang::En, "thanks"), canned(&BotSettings::default(), Lang::En, "thanks"));
        let reply = Reply::plain(formal.greeting_reply.clone()).in_language(&formal, Lang::En);
        assert_eq!(reply.text, "Good day. How may I assist you?");
    }

    #[test]
    fn questions_about_days_are_told_from_questions_about_someone() {
        assert!(asks_about_days("does he work Saturdays?", Lang::En));
        assert!(asks_about_days("¿trabaja los sábados?", Lang::Es));
        assert!(asks_about_days("il consulte le lundi ?", Lang::Fr));
        assert!(!asks_about_days("which of your dentists does braces?", Lang::En));
        assert!(!asks_about_days("tell me about him", Lang::En));
    }

    #[test]
    fn chunks_concatenate_to_the_reply() {
        let text = "one two three four five six seven eight nine ten eleven twelve thirteen";
        let parts = chunks(text);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), text);
    }
}
