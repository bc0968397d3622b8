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

use frontdesk_actors::{Brain, BrainError, BrainOutput, BrainRequest, Sender};
use futures::stream::BoxStream;

use super::reception::Reception;
use super::BotSettingsCache;
use crate::db::BotSettings;

pub struct BuiltinBrain {
    bots: Arc<BotSettingsCache>,
    reception: Option<Arc<Reception>>,
}

impl BuiltinBrain {
    /// `reception` handles booking by chat; without it the brain only answers questions.
    pub fn new(bots: Arc<BotSettingsCache>, reception: Option<Arc<Reception>>) -> Self {
        Self { bots, reception }
    }
}

impl Brain for BuiltinBrain {
    fn reply(&self, request: BrainRequest) -> BoxStream<'static, Result<BrainOutput, BrainError>> {
        let bots = self.bots.clone();
        let reception = self.reception.clone();
        Box::pin(async_stream::stream! {
            let settings = match bots.get(request.workspace_id, request.bot_id).await {
                Ok(settings) => settings,
                Err(err) => {
                    yield Err(BrainError(err.to_string()));
                    return;
                }
            };
            let Some(question) = request.history.iter().rev().find(|m| m.sender == Sender::Visitor) else {
                yield Ok(BrainOutput::Text(settings.reply_unknown.clone()));
                return;
            };
            if let Some(reception) = reception {
                let turn = reception
                    .turn(request.workspace_id, &request.conversation_id, question.id, &question.content, &request.variables)
                    .await;
                match turn {
                    Ok(Some(turn)) => {
                        if let Some(variables) = turn.variables {
                            yield Ok(BrainOutput::Variables(variables));
                        }
                        // A question in the middle of a booking ("where are you?") is answered,
                        // then the dialog's question is asked again.
                        let mut reply = turn.reply;
                        if !turn.progressed {
                            let aside = answer(&settings, &question.content);
                            let known = [&settings.reply_unknown, &settings.greeting_reply, &settings.thanks_reply];
                            if !known.contains(&&aside) {
                                reply = format!("{aside}\n\n{reply}");
                            }
                        }
                        for chunk in chunks(&reply) {
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
            for chunk in chunks(&answer(&settings, &question.content)) {
                yield Ok(BrainOutput::Text(chunk));
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
mod tests {
    use super::*;
    use crate::db::workspaces::demo_bot_settings;

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
