//! Understanding visitors without a model: which language they write in, what they want, in
//! the five languages the built-in brain speaks.
//!
//! The pipeline is the one Rasa users know, written small for this domain: featurise
//! ([`features`]), classify the intent against example utterances ([`classifier`]), read the
//! language ([`lang`]), and answer in it ([`catalog`]). The examples are data, a file per
//! language under `src/brain/nlu/data/`, reviewed like code and compiled into the binary; the
//! model is trained from them once, at first use. The held-out evaluation set lives apart, in
//! `tests/nlu/`, and is scored by [`eval`] (`frontdesk nlu evaluate`).

pub mod catalog;
pub mod classifier;
pub mod dates;
pub mod entities;
pub mod eval;
pub mod features;
pub mod lang;

use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Serialize};

pub use self::classifier::{Classifier, Example, Prediction};
pub use self::entities::Lexicon;
pub use self::lang::Lang;

/// What a visitor's message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    Greet,
    Goodbye,
    Thanks,
    Affirm,
    Deny,
    Book,
    Reschedule,
    Cancel,
    MyBookings,
    Availability,
    Doctors,
    ServicesPrices,
    Hours,
    LocationContact,
    Policies,
    Human,
    ContactDetails,
    ChooseOption,
    Emergency,
    OutOfScope,
}

impl Intent {
    pub const ALL: [Intent; 20] = [
        Intent::Greet,
        Intent::Goodbye,
        Intent::Thanks,
        Intent::Affirm,
        Intent::Deny,
        Intent::Book,
        Intent::Reschedule,
        Intent::Cancel,
        Intent::MyBookings,
        Intent::Availability,
        Intent::Doctors,
        Intent::ServicesPrices,
        Intent::Hours,
        Intent::LocationContact,
        Intent::Policies,
        Intent::Human,
        Intent::ContactDetails,
        Intent::ChooseOption,
        Intent::Emergency,
        Intent::OutOfScope,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Intent::Greet => "greet",
            Intent::Goodbye => "goodbye",
            Intent::Thanks => "thanks",
            Intent::Affirm => "affirm",
            Intent::Deny => "deny",
            Intent::Book => "book",
            Intent::Reschedule => "reschedule",
            Intent::Cancel => "cancel",
            Intent::MyBookings => "my_bookings",
            Intent::Availability => "availability",
            Intent::Doctors => "doctors",
            Intent::ServicesPrices => "services_prices",
            Intent::Hours => "hours",
            Intent::LocationContact => "location_contact",
            Intent::Policies => "policies",
            Intent::Human => "human",
            Intent::ContactDetails => "contact_details",
            Intent::ChooseOption => "choose_option",
            Intent::Emergency => "emergency",
            Intent::OutOfScope => "out_of_scope",
        }
    }

    pub fn from_name(name: &str) -> Option<Intent> {
        Intent::ALL.into_iter().find(|i| i.name() == name.trim())
    }
}

impl std::fmt::Display for Intent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The training examples, a file per language, compiled in.
const TRAINING: [(Lang, &str); 5] = [
    (Lang::En, include_str!("data/en.md")),
    (Lang::Es, include_str!("data/es.md")),
    (Lang::Fr, include_str!("data/fr.md")),
    (Lang::De, include_str!("data/de.md")),
    (Lang::Pt, include_str!("data/pt.md")),
];

/// Reads a training file: `## intent` headers, each followed by `- example` lines; `#` starts
/// a comment. A header naming no known intent is an error, so a typo cannot silently drop
/// examples.
pub fn parse_examples(lang: Lang, text: &str) -> Result<Vec<Example>, String> {
    let mut examples = Vec::new();
    let mut intent = None;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("## ") {
            intent =
                Some(Intent::from_name(name).ok_or_else(|| format!("line {}: unknown intent {name:?}", number + 1))?);
        } else if let Some(example) = line.strip_prefix("- ") {
            let intent = intent.ok_or_else(|| format!("line {}: an example before any ## intent", number + 1))?;
            examples.push(Example { intent, lang, text: example.trim().to_owned() });
        } else if !line.is_empty() && !line.starts_with('#') {
            return Err(format!("line {}: expected `## intent` or `- example`, found {line:?}", number + 1));
        }
    }
    Ok(examples)
}

/// Every built-in training example.
pub fn training_examples() -> Vec<Example> {
    TRAINING
        .iter()
        .flat_map(|(lang, text)| {
            parse_examples(*lang, text).unwrap_or_else(|err| panic!("src/brain/nlu/data/{lang}.md: {err}"))
        })
        .collect()
}

/// What the brain made of one message.
#[derive(Debug, Clone)]
pub struct Understanding {
    pub intent: Option<Intent>,
    pub confidence: f32,
    pub lang: Lang,
    pub prediction: Prediction,
}

/// How close a short message must be to an example to be placed in that example's language.
const PLACE_SIMILARITY: f32 = 0.45;
/// … and to move a conversation that already has a language into another one.
const SWITCH_SIMILARITY: f32 = 0.7;

/// The trained model, shared by every workspace.
pub struct Nlu {
    classifier: Classifier,
}

static SHARED: LazyLock<Arc<Nlu>> = LazyLock::new(|| Arc::new(Nlu::train(&training_examples())));

impl Nlu {
    /// The model trained on the built-in examples, trained once per process.
    pub fn shared() -> Arc<Nlu> {
        SHARED.clone()
    }

    pub fn train(examples: &[Example]) -> Nlu {
        Nlu { classifier: Classifier::train(examples) }
    }

    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// The message's intent and language. `previous` is the conversation's language so far: a
    /// short message nothing else places ("ok", "Dana Reyes") keeps it.
    pub fn understand(&self, text: &str, previous: Option<Lang>, lexicon: &Lexicon) -> Understanding {
        let prediction = self.classifier.predict(text, lexicon);
        // A short message placed by its closest example must be close indeed to move a
        // conversation out of its language: "Ana Lima" is a name, not Portuguese.
        let needed = if previous.is_some() { SWITCH_SIMILARITY } else { PLACE_SIMILARITY };
        // "ok", "no", "bye" are examples in several languages: a tie keeps the conversation's.
        let tied_with_previous = previous.is_some_and(|previous| {
            let best = |lang: Lang| prediction.nearest_by_lang.iter().find(|(l, _)| *l == lang).map(|(_, s)| *s);
            matches!((best(previous), prediction.nearest), (Some(mine), Some((_, top))) if mine >= top - 1e-4)
        });
        let by_letters = if previous.is_some() { lang::by_letters_surely(text) } else { lang::by_letters(text) };
        let nearest = prediction.nearest.filter(|(_, similarity)| *similarity >= needed && !tied_with_previous);
        let lang = by_letters
            .or_else(|| nearest.map(|(lang, _)| lang))
            .or(previous)
            .or_else(|| prediction.nearest.filter(|(_, similarity)| *similarity >= 0.3).map(|(lang, _)| lang))
            .unwrap_or(Lang::En);
        Understanding { intent: prediction.intent, confidence: prediction.confidence, lang, prediction }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_training_file_parses_and_covers_every_intent() {
        for (lang, text) in TRAINING {
            let examples = parse_examples(lang, text).unwrap();
            for intent in Intent::ALL {
                let count = examples.iter().filter(|e| e.intent == intent).count();
                assert!(count >= 10, "{lang}: {intent} has only {count} examples");
            }
        }
    }

    #[test]
    fn a_header_naming_no_intent_is_refused() {
        let err = parse_examples(Lang::En, "## gret\n- hi\n").unwrap_err();
        assert!(err.contains("unknown intent"), "{err}");
        assert!(parse_examples(Lang::En, "- hi\n").is_err());
    }

    #[test]
    fn intent_names_round_trip() {
        for intent in Intent::ALL {
            assert_eq!(Intent::from_name(intent.name()), Some(intent));
        }
    }

    #[test]
    fn a_name_does_not_move_a_conversation_out_of_its_language() {
        let nlu = Nlu::shared();
        assert_eq!(nlu.understand("Ana Lima", Some(Lang::En), &Lexicon::default()).lang, Lang::En);
        assert_eq!(nlu.understand("merci", Some(Lang::En), &Lexicon::default()).lang, Lang::Fr);
        assert_eq!(nlu.understand("ok", Some(Lang::Es), &Lexicon::default()).lang, Lang::Es);
        assert_eq!(nlu.understand("No", Some(Lang::Es), &Lexicon::default()).lang, Lang::Es);
    }

    #[test]
    fn short_greetings_are_understood_in_their_language() {
        let nlu = Nlu::shared();
        for (text, lang) in [("hola", Lang::Es), ("merci", Lang::Fr), ("danke", Lang::De), ("obrigado", Lang::Pt)] {
            let understood = nlu.understand(text, None, &Lexicon::default());
            assert_eq!(understood.lang, lang, "{text}");
        }
        assert_eq!(nlu.understand("hola", None, &Lexicon::default()).intent, Some(Intent::Greet));
        assert_eq!(nlu.understand("merci", None, &Lexicon::default()).intent, Some(Intent::Thanks));
    }
}
