//! The intent classifier: TF-IDF vectors of the training examples and nearest neighbours.
//!
//! Training is counting (a few milliseconds for a few thousand examples), so it happens at
//! start from the examples kept as data. A message is scored against every example that
//! shares a feature with it (an inverted index, so a few thousand examples cost microseconds);
//! an intent's score is the mean of its three best similarities, which rewards intents several
//! examples agree on over one lucky look-alike. Below [`MIN_CONFIDENCE`] nothing is claimed.

use std::collections::{BTreeMap, HashMap};

use super::entities::Lexicon;
use super::features;
use super::lang::Lang;
use super::Intent;

/// Below this score the classifier does not claim an intent.
pub const MIN_CONFIDENCE: f32 = 0.22;
/// Beyond this many words a greeting, thanks or yes/no is a preamble, and counts for less.
const SOCIAL_WORDS: usize = 4;
/// How many of an intent's best matches make its score.
const VOTES: usize = 3;

/// One labelled example.
#[derive(Debug, Clone)]
pub struct Example {
    pub intent: Intent,
    pub lang: Lang,
    pub text: String,
}

/// What the classifier made of a message.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// The best intent, when it scored at least [`MIN_CONFIDENCE`].
    pub intent: Option<Intent>,
    pub confidence: f32,
    /// Every intent that matched at all, best first.
    pub ranking: Vec<(Intent, f32)>,
    /// The language of the single closest example and how close it was.
    pub nearest: Option<(Lang, f32)>,
    /// The closest example's similarity in each language that matched at all.
    pub nearest_by_lang: Vec<(Lang, f32)>,
}

pub struct Classifier {
    vocabulary: HashMap<String, u32>,
    idf: Vec<f32>,
    /// The weight a feature no example has gets in a message's norm: as rare as can be.
    unseen_idf: f32,
    /// Per feature, the examples holding it and their normalised weight.
    postings: Vec<Vec<(u32, f32)>>,
    labels: Vec<(Intent, Lang)>,
}

impl Classifier {
    pub fn train(examples: &[Example]) -> Classifier {
        let generic = Lexicon::default();
        let counted: Vec<BTreeMap<String, u32>> =
            examples.iter().map(|e| features::count(&generic.mask(&e.text))).collect();
        let mut vocabulary: HashMap<String, u32> = HashMap::new();
        let mut document_frequency: Vec<u32> = Vec::new();
        for counts in &counted {
            for feature in counts.keys() {
                let next = vocabulary.len() as u32;
                let id = *vocabulary.entry(feature.clone()).or_insert(next);
                if id as usize == document_frequency.len() {
                    document_frequency.push(0);
                }
                document_frequency[id as usize] += 1;
            }
        }
        let documents = examples.len() as f32;
        let idf: Vec<f32> =
            document_frequency.iter().map(|df| ((1.0 + documents) / (1.0 + *df as f32)).ln() + 1.0).collect();
        let unseen_idf = (1.0 + documents).ln() + 1.0;
        let mut postings: Vec<Vec<(u32, f32)>> = vec![Vec::new(); vocabulary.len()];
        for (index, counts) in counted.iter().enumerate() {
            let weighted: Vec<(u32, f32)> = counts
                .iter()
                .map(|(feature, tf)| {
                    let id = vocabulary[feature];
                    (id, (1.0 + (*tf as f32).ln()) * idf[id as usize])
                })
                .collect();
            let norm = weighted.iter().map(|(_, w)| w * w).sum::<f32>().sqrt().max(f32::EPSILON);
            for (id, weight) in weighted {
                postings[id as usize].push((index as u32, weight / norm));
            }
        }
        let labels = examples.iter().map(|e| (e.intent, e.lang)).collect();
        Classifier { vocabulary, idf, unseen_idf, postings, labels }
    }

    pub fn examples(&self) -> usize {
        self.labels.len()
    }

    /// Bytes the trained model holds, roughly: for the memory figure in BENCHMARKS.md.
    pub fn approximate_bytes(&self) -> usize {
        let vocabulary: usize = self.vocabulary.keys().map(|k| k.len() + 24 + 4 + 8).sum();
        let postings: usize = self.postings.iter().map(|p| 24 + p.len() * 8).sum();
        vocabulary + postings + self.idf.len() * 4 + self.labels.len() * 2
    }

    /// The intent of `text`, with `lexicon`'s names (the workspace's doctors and services)
    /// hidden from the features as they were in training.
    pub fn predict(&self, text: &str, lexicon: &Lexicon) -> Prediction {
        let masked = lexicon.mask(text);
        let words = masked.split(' ').filter(|w| !w.is_empty()).count();
        let counts = features::count(&masked);
        let mut query: Vec<(u32, f32)> = Vec::with_capacity(counts.len());
        let mut norm = 0.0f32;
        for (feature, tf) in &counts {
            let tf = 1.0 + (*tf as f32).ln();
            match self.vocabulary.get(feature) {
                Some(&id) => {
                    let weight = tf * self.idf[id as usize];
                    norm += weight * weight;
                    query.push((id, weight));
                }
                None => norm += (tf * self.unseen_idf).powi(2),
            }
        }
        let norm = norm.sqrt().max(f32::EPSILON);
        // Dense and in a fixed order, so that equal examples in two languages ("merci" is
        // also Swiss German) always resolve the same way.
        let mut similarity = vec![0.0f32; self.labels.len()];
        query.sort_unstable_by_key(|(id, _)| *id);
        for (id, weight) in query {
            for (example, example_weight) in &self.postings[id as usize] {
                similarity[*example as usize] += weight / norm * example_weight;
            }
        }
        let mut best_per_intent: BTreeMap<Intent, Vec<f32>> = BTreeMap::new();
        let mut nearest: Option<(Lang, f32)> = None;
        let mut nearest_by_lang: Vec<(Lang, f32)> = Vec::new();
        for (example, score) in similarity.into_iter().enumerate().filter(|(_, score)| *score > 0.0) {
            let (intent, lang) = self.labels[example];
            best_per_intent.entry(intent).or_default().push(score);
            if nearest.is_none_or(|(_, best)| score > best) {
                nearest = Some((lang, score));
            }
            match nearest_by_lang.iter_mut().find(|(l, _)| *l == lang) {
                Some((_, best)) => *best = best.max(score),
                None => nearest_by_lang.push((lang, score)),
            }
        }
        let mut ranking: Vec<(Intent, f32)> = best_per_intent
            .into_iter()
            .map(|(intent, mut scores)| {
                scores.sort_by(|a, b| b.total_cmp(a));
                scores.resize(VOTES, 0.0);
                // The best match counts double: one near-copy of an example is strong evidence.
                let score = (2.0 * scores[0] + scores[1..].iter().sum::<f32>()) / (VOTES as f32 + 1.0);
                // Greetings, thanks and yes/no are short; in a long message they are a preamble
                // ("Hello, could I move my appointment…") and the rest is what is asked.
                let social =
                    matches!(intent, Intent::Greet | Intent::Thanks | Intent::Goodbye | Intent::Affirm | Intent::Deny);
                let score =
                    if social && words > SOCIAL_WORDS { score * SOCIAL_WORDS as f32 / words as f32 } else { score };
                (intent, score)
            })
            .collect();
        ranking.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let confidence = ranking.first().map_or(0.0, |(_, s)| *s);
        let intent = ranking.first().filter(|(_, s)| *s >= MIN_CONFIDENCE).map(|(i, _)| *i);
        Prediction { intent, confidence, ranking, nearest, nearest_by_lang }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(intent: Intent, text: &str) -> Example {
        Example { intent, lang: Lang::En, text: text.into() }
    }

    #[test]
    fn the_intent_whose_examples_are_closest_wins() {
        let classifier = Classifier::train(&[
            example(Intent::Greet, "hello there"),
            example(Intent::Greet, "hi"),
            example(Intent::Hours, "when are you open"),
            example(Intent::Hours, "what are your opening hours"),
        ]);
        assert_eq!(classifier.predict("hello!", &Lexicon::default()).intent, Some(Intent::Greet));
        assert_eq!(classifier.predict("opening hourss?", &Lexicon::default()).intent, Some(Intent::Hours));
    }

    #[test]
    fn nothing_is_claimed_for_a_message_unlike_every_example() {
        let classifier =
            Classifier::train(&[example(Intent::Greet, "hello there"), example(Intent::Hours, "when are you open")]);
        let prediction = classifier.predict("zxqv plmk", &Lexicon::default());
        assert_eq!(prediction.intent, None);
        assert!(prediction.confidence < MIN_CONFIDENCE);
    }
}
