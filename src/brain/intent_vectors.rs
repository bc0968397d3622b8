//! Intent ranking by meaning, when an embeddings endpoint is configured: a second opinion on
//! the word classifier's reading of every message outside a dialog. Each intent of a language
//! is represented by some of its training examples, embedded once per process and model; a
//! message is embedded (one call, shared with the knowledge base's search of the same text) and
//! each intent's word score is lowered by how far it lags the closest intent by meaning. The
//! result either confirms the words (then trusted more) or replaces their reading ("¿Puedo
//! traer a mi perro?" shares words with rescheduling examples, and means a question about the
//! practice's rules). On the evaluation set this lifts intent accuracy from 0.884 to 0.926
//! with multilingual-e5-small. Without an endpoint, or when it fails, the words' reading stands.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use super::nlu::{training_examples, Intent, Lang, Understanding};
use crate::domain::knowledge::embed::Embedder;

/// Examples per intent that stand for it: enough to cover its phrasings, few enough that a
/// language's prototypes are embedded in a few seconds (20 intents × 16 = 320 texts).
const PER_INTENT: usize = 16;

/// How much a lag in similarity behind the closest intent by meaning costs an intent's word
/// score: 0.05 of similarity costs 0.15. Chosen on the evaluation set (`frontdesk nlu evaluate
/// --meaning`, BENCHMARKS.md): 2 to 4 score alike.
const WEIGHT: f32 = 3.0;

/// The confidence a reading has when both classifiers agree on it: two independent readings
/// agreeing are worth more than a weak one alone, without reaching the bars that hand a chat
/// over on one word.
const AGREED: f32 = 0.36;

/// The prototypes of one language under one model: (intent, unit vector) per example.
pub type Prototypes = Arc<Vec<(Intent, Vec<f32>)>>;

/// Per model and language. Bounded by the languages the brain speaks times the models a server
/// is configured with (one, short of a restart).
static PROTOTYPES: LazyLock<Mutex<HashMap<(String, Lang), Prototypes>>> = LazyLock::new(Default::default);

/// How the reading was reached, for the reply's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Meaning agreed with the words.
    Confirmed,
    /// Meaning overruled an uncertain reading of the words.
    Replaced { was: Option<Intent> },
    /// Meaning could not decide: the words' reading stands.
    Undecided,
}

/// Languages whose prototypes are being embedded, so a burst of first turns starts one build.
static BUILDING: LazyLock<Mutex<HashSet<(String, Lang)>>> = LazyLock::new(Default::default);

/// Embeds every language's prototypes in the background (at start, when an endpoint is
/// configured), so the first visitor of a language does not wait for them.
pub fn warm(embedder: Arc<Embedder>) {
    for lang in Lang::ALL {
        build_in_background(embedder.clone(), lang);
    }
}

fn build_in_background(embedder: Arc<Embedder>, lang: Lang) {
    let key = (embedder.model().to_owned(), lang);
    let started = BUILDING.lock().map(|mut building| building.insert(key.clone())).unwrap_or(false);
    if !started {
        return;
    }
    // Dropped when the build ends, however it ends (a runtime shutting down cancels it too), so
    // a later turn can start it again.
    struct Building((String, Lang));
    impl Drop for Building {
        fn drop(&mut self) {
            if let Ok(mut building) = BUILDING.lock() {
                building.remove(&self.0);
            }
        }
    }
    let guard = Building(key);
    tokio::spawn(async move {
        let _guard = guard;
        let built = prototypes(&embedder, lang).await;
        if built.is_none() {
            tracing::warn!(%lang, "the intents' examples are not embedded; the words decide until a later try");
        }
    });
}

/// The word classifier's reading `understood`, with meaning's second opinion. A language whose
/// prototypes are not embedded yet is not waited for: the words decide this turn, and the
/// prototypes are built in the background for the next.
pub async fn rerank(
    embedder: &Arc<Embedder>,
    text: &str,
    mut understood: Understanding,
) -> (Understanding, Option<Verdict>) {
    let key = (embedder.model().to_owned(), understood.lang);
    let ready = PROTOTYPES.lock().ok().and_then(|map| map.get(&key).cloned());
    let Some(prototypes) = ready else {
        build_in_background(embedder.clone(), understood.lang);
        return (understood, None);
    };
    let query = match embedder.query(text).await {
        Ok(query) => query,
        Err(err) => {
            tracing::warn!(error = %err, "could not embed a message for its intent; the words decide");
            return (understood, None);
        }
    };
    let mut by_intent: HashMap<Intent, Vec<f32>> = HashMap::new();
    for (intent, vector) in prototypes.iter() {
        let similarity: f32 = vector.iter().zip(&query).map(|(a, b)| a * b).sum();
        by_intent.entry(*intent).or_default().push(similarity);
    }
    // An intent's closeness by meaning, like its score by words: its best three examples, the
    // best counted twice, so one look-alike example does not carry it.
    let meaning: Vec<(Intent, f32)> = by_intent
        .into_iter()
        .map(|(intent, mut similarities)| {
            similarities.sort_by(|a, b| b.total_cmp(a));
            let at = |i: usize| similarities.get(i).or(similarities.first()).copied().unwrap_or(0.0);
            (intent, (2.0 * at(0) + at(1) + at(2)) / 4.0)
        })
        .collect();
    let closest = meaning.iter().map(|(_, m)| *m).fold(f32::MIN, f32::max);
    let words =
        |intent: Intent| understood.prediction.ranking.iter().find(|(i, _)| *i == intent).map_or(0.0, |(_, s)| *s);
    // Words and meaning together: the word score, less what the intent lags the closest by
    // meaning (a lag of 0.05 in similarity costs 0.05 × WEIGHT).
    let mut fused: Vec<(Intent, f32)> =
        meaning.iter().map(|&(intent, m)| (intent, words(intent) - WEIGHT * (closest - m))).collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let verdict = match fused.first() {
        Some(&(chosen, _)) if understood.intent == Some(chosen) => {
            understood.confidence = understood.confidence.max(AGREED);
            Verdict::Confirmed
        }
        Some(&(chosen, score)) if score >= 0.0 => {
            let was = understood.intent;
            // A replaced reading stays as unsure as the words were, so no bar that needs
            // certainty is passed on meaning alone.
            understood.intent = Some(chosen);
            understood.confidence = words(chosen).max(super::nlu::classifier::MIN_CONFIDENCE);
            Verdict::Replaced { was }
        }
        _ => Verdict::Undecided,
    };
    (understood, Some(verdict))
}

/// The language's prototypes under the embedder's model, embedded at first need.
pub async fn prototypes(embedder: &Embedder, lang: Lang) -> Option<Prototypes> {
    let key = (embedder.model().to_owned(), lang);
    if let Some(found) = PROTOTYPES.lock().ok().and_then(|map| map.get(&key).cloned()) {
        return Some(found);
    }
    let examples = training_examples();
    let mut chosen: Vec<(Intent, String)> = Vec::new();
    for intent in Intent::ALL {
        let of_intent = examples.iter().filter(|e| e.lang == lang && e.intent == intent);
        chosen.extend(of_intent.take(PER_INTENT).map(|e| (intent, e.text.clone())));
    }
    let texts: Vec<String> = chosen.iter().map(|(_, text)| text.clone()).collect();
    // Examples are messages like the one compared with them: embedded as queries (models such
    // as E5 embed the two sides of a symmetric comparison alike).
    let vectors = match embedder.queries(&texts).await {
        Ok(vectors) if vectors.len() == texts.len() => vectors,
        Ok(_) => return None,
        Err(err) => {
            tracing::warn!(error = %err, %lang, "could not embed the intents' examples; the words decide");
            return None;
        }
    };
    let prototypes: Prototypes = Arc::new(chosen.into_iter().map(|(i, _)| i).zip(vectors).collect());
    if let Ok(mut map) = PROTOTYPES.lock() {
        map.insert(key, prototypes.clone());
    }
    Some(prototypes)
}
