//! The built-in brain: answers from the bot's own settings, with no model.
//!
//! A question is reduced to content words (lower-cased, light stemming, a few synonyms, no
//! stop words) and matched against each company fact and policy: words of a title count three
//! times, words found only in the content once, and a content word shared by many entries
//! counts for less. The best entry above the threshold is the answer; greetings and thanks get
//! their own replies; anything else gets `reply_unknown`. Replies stream in chunks of a few
//! words, as a model's would.

use std::collections::HashSet;
use std::sync::Arc;

use frontdesk_actors::{Brain, BrainError, BrainOutput, BrainRequest, ChangedBy, Sender};
use futures::stream::BoxStream;

use super::reception::Reception;
use super::BotSettingsCache;
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
}

/// The answer to a question outside any dialog, in order of trust: greetings and thanks; a
/// curated Q&A pair; a passage of the knowledge base covering the question, cited (richer and
/// more specific than the settings' short facts); the bot's own facts and policies (and the
/// request's context); and otherwise `reply_unknown` with the offer of a person, the
/// question recorded as unanswered.
async fn answer_question(
    settings: &BotSettings,
    knowledge: Option<&Knowledge>,
    request: &BrainRequest,
    question: &str,
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
        return Reply { text: found.text.clone(), metadata: Some(found.metadata()) };
    }
    if settings_answer != settings.reply_unknown {
        return Reply::plain(settings_answer);
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
            if let Some(db) = agents_db.as_ref().filter(|_| asks_for_person(&question.content)) {
                let workspace_id = WorkspaceId(request.workspace_id);
                let online = db.run(move |conn| agents::online(conn, workspace_id)).await.map(|a| a.len()).unwrap_or(0);
                let text = if online > 0 { &settings.handoff_waiting } else { &settings.handoff_offline };
                yield Ok(BrainOutput::Metadata(serde_json::json!({ "handoff": { "agents_online": online } })));
                for chunk in chunks(text) {
                    pace(settings.stream_delay_ms).await;
                    yield Ok(BrainOutput::Text(chunk));
                }
                yield Ok(BrainOutput::Handoff { actor: ChangedBy::Visitor, reason: "the visitor asked for a person".into() });
                return;
            }
            if let Some(reception) = reception {
                let turn = reception
                    .turn(WorkspaceId(request.workspace_id), &request.conversation_id, question.id, &question.content, &request.variables, &request.state)
                    .await;
                match turn {
                    Ok(Some(turn)) => {
                        // A question in the middle of a booking ("where are you?") is answered,
                        // then the dialog's question is asked again.
                        let mut reply = turn.reply;
                        let mut metadata = serde_json::json!({});
                        if !turn.progressed {
                            let aside = answer_question(&settings, knowledge.as_deref(), &request, &question.content).await;
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
            let reply = answer_question(&settings, knowledge.as_deref(), &request, &question.content).await;
            let unanswered = reply.metadata.as_ref().is_some_and(|m| m["unanswered"] == true);
            if let Some(metadata) = reply.metadata {
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
    fn chunks_concatenate_to_the_reply() {
        let text = "one two three four five six seven eight nine ten eleven twelve thirteen";
        let parts = chunks(text);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), text);
    }
}
