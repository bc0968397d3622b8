//! Answers grounded in a bot's knowledge, for brains that have no model to write prose: a
//! curated Q&A pair whose question matches is answered with its exact answer; otherwise the best
//! passage is quoted (its most relevant sentences, not the whole chunk) with its source named
//! in the text and returned as a citation. Below the confidence bar there is no answer at all,
//! so the caller can say it does not know rather than guess.
//!
//! With vectors (embeddings configured) the passages are ranked by both full text and meaning,
//! and a passage that covers too few of the question's words still answers when its meaning is
//! close enough (the configured minimum similarity).

use std::collections::BTreeSet;

use serde::Serialize;

use super::index::{Hit, KnowledgeIndex};

/// Jaccard similarity of content words from which a Q&A pair's question counts as the same
/// question: "What are your opening hours?" and "When are you open?" share too little, which is
/// fine, because the passage search still finds the answer; a false match would not be.
pub const QA_MIN_SIMILARITY: f32 = 0.5;

/// Share of the question's content words a passage must contain to be quoted. BM25 scores are
/// relative to the corpus, so they cannot say "this answers it"; coverage can.
pub const MIN_COVERAGE: f32 = 0.5;

/// Passages ranked before the best covering one is picked.
const CANDIDATES: usize = 8;

/// A chunk short enough to be quoted whole.
const QUOTE_WHOLE_CHARS: usize = 320;

/// Where an answer came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Citation {
    pub source_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_id: Option<i64>,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// How an answer was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// A Q&A pair's exact answer.
    Qa,
    /// A quoted passage of a source.
    Passage,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Grounded {
    /// The reply, the source named at the end when it is a passage.
    pub text: String,
    pub basis: Basis,
    pub citations: Vec<Citation>,
    /// Q&A similarity, or the better of passage coverage and vector similarity, 0..1.
    pub confidence: f32,
    /// The passage's cosine similarity to the question, when retrieval was hybrid.
    pub similarity: Option<f32>,
}

impl Grounded {
    /// What is stored with the reply message.
    pub fn metadata(&self) -> serde_json::Value {
        let mut knowledge = serde_json::json!({ "basis": self.basis, "confidence": self.confidence });
        if let Some(similarity) = self.similarity {
            knowledge["similarity"] = similarity.into();
        }
        serde_json::json!({ "knowledge": knowledge, "citations": self.citations })
    }
}

/// The Q&A pair matching `question`, if one does.
pub fn from_qa(index: &KnowledgeIndex, question: &str) -> Option<Grounded> {
    let hit = index.best_qa(question, QA_MIN_SIMILARITY)?;
    Some(Grounded {
        text: hit.answer,
        basis: Basis::Qa,
        citations: vec![Citation { source_id: hit.source_id, chunk_id: None, title: hit.question, url: None }],
        confidence: hit.similarity,
        similarity: None,
    })
}

/// How far a passage's meaning must be from a question's to answer it without sharing its
/// words: the question's unit vector and the minimum cosine similarity.
#[derive(Debug, Clone, Copy)]
pub struct Semantic<'a> {
    pub query: &'a [f32],
    pub min_similarity: f32,
}

/// The best passage for `question`, quoted with its source, if one covers enough of it (or,
/// with `semantic`, is close enough in meaning).
pub fn from_passages(index: &KnowledgeIndex, question: &str, semantic: Option<Semantic<'_>>) -> Option<Grounded> {
    let asked = index.terms(question);
    if asked.is_empty() && semantic.is_none() {
        return None;
    }
    let hits = match index.hybrid_search(question, semantic.map(|s| s.query), CANDIDATES) {
        Ok(hits) => hits,
        Err(err) => {
            tracing::warn!(error = %err, "knowledge search failed");
            return None;
        }
    };
    // Ranked order first; among the top hits, the first that covers enough of the question (or
    // means closely enough the same) wins, so a long chunk repeating one word does not beat one
    // that mentions every word.
    let min_similarity = semantic.map_or(f32::INFINITY, |s| s.min_similarity);
    let (hit, coverage) = hits
        .iter()
        .map(|hit| (hit, coverage(&asked, &index.terms(&format!("{} {}", hit.title, hit.text)))))
        .find(|(hit, coverage)| *coverage >= MIN_COVERAGE || hit.similarity.is_some_and(|s| s >= min_similarity))?;
    let quote = quote(index, hit, &asked);
    let source = match &hit.url {
        Some(url) => format!("{} ({url})", display_title(hit)),
        None => display_title(hit),
    };
    Some(Grounded {
        text: format!("{quote}\n\nSource: {source}"),
        basis: Basis::Passage,
        citations: vec![Citation {
            source_id: hit.source_id,
            chunk_id: Some(hit.chunk_id),
            title: display_title(hit),
            url: hit.url.clone(),
        }],
        confidence: coverage.max(hit.similarity.unwrap_or(0.0)),
        similarity: hit.similarity,
    })
}

fn coverage(asked: &BTreeSet<String>, found: &BTreeSet<String>) -> f32 {
    if asked.is_empty() {
        return 0.0;
    }
    asked.intersection(found).count() as f32 / asked.len() as f32
}

fn display_title(hit: &Hit) -> String {
    let title = hit.title.trim();
    if title.is_empty() {
        hit.url.clone().unwrap_or_else(|| "our knowledge base".to_owned())
    } else {
        title.to_owned()
    }
}

/// The sentences of the passage that say the most about the question, in their order; the
/// whole passage when it is short.
fn quote(index: &KnowledgeIndex, hit: &Hit, asked: &BTreeSet<String>) -> String {
    let text = hit.text.trim();
    if text.chars().count() <= QUOTE_WHOLE_CHARS {
        return text.to_owned();
    }
    let sentences = sentences(text);
    let scored: Vec<usize> =
        sentences.iter().map(|sentence| index.terms(sentence).intersection(asked).count()).collect();
    let Some(best) = (0..sentences.len()).max_by_key(|&i| (scored[i], std::cmp::Reverse(i))) else {
        return text.to_owned();
    };
    // A sentence and its neighbour read better than a fragment: the next one often carries
    // the detail ("…costs $350. The price includes a follow-up visit.").
    let mut chosen = vec![best];
    if let Some(next) = sentences.get(best + 1) {
        if sentences[best].chars().count() + next.chars().count() <= QUOTE_WHOLE_CHARS {
            chosen.push(best + 1);
        }
    }
    chosen.iter().map(|&i| sentences[i].trim()).collect::<Vec<_>>().join(" ")
}

/// Splits at sentence ends and line breaks, keeping the punctuation.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        let end_of_sentence = matches!(c, '.' | '!' | '?') && bytes.get(i + 1).is_none_or(|b| b.is_ascii_whitespace());
        if c == '\n' || end_of_sentence {
            let piece = &text[start..=i];
            if !piece.trim().is_empty() {
                out.push(piece);
            }
            start = i + 1;
        }
    }
    if !text[start..].trim().is_empty() {
        out.push(&text[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::knowledge::index::{IndexedChunk, QaPair};

    fn index() -> KnowledgeIndex {
        let long = "Our clinic offers a full range of treatments for the whole family. Teeth whitening costs \
                    $350 and takes about an hour. The price includes a follow-up visit. We also offer \
                    veneers, crowns and bridges, each planned with you in a first consultation that is free \
                    of charge. Children are welcome from the age of three, and we see them twice a year.";
        let chunks = vec![
            IndexedChunk {
                chunk_id: 1,
                source_id: 10,
                title: "Prices".into(),
                url: Some("https://clinic.test/prices".into()),
                text: long.into(),
                embedding: None,
            },
            IndexedChunk {
                chunk_id: 2,
                source_id: 11,
                title: "Parking".into(),
                url: None,
                text: "Free parking is behind the building.".into(),
                embedding: None,
            },
        ];
        let qa = vec![QaPair {
            source_id: 20,
            question: "Do you accept Delta Dental insurance?".into(),
            answer: "Yes, we accept Delta Dental.".into(),
        }];
        KnowledgeIndex::build(&chunks, &qa).unwrap()
    }

    #[test]
    fn a_matching_qa_pair_gives_its_exact_answer() {
        let index = index();
        let found = from_qa(&index, "do you accept delta dental insurance").unwrap();
        assert_eq!(found.text, "Yes, we accept Delta Dental.");
        assert_eq!(found.basis, Basis::Qa);
        assert_eq!(found.citations[0].source_id, 20);
        assert!(from_qa(&index, "Where can I park?").is_none());
    }

    #[test]
    fn a_passage_is_quoted_by_its_relevant_sentences_with_its_source() {
        let index = index();
        let found = from_passages(&index, "How much does teeth whitening cost?", None).unwrap();
        assert!(found.text.starts_with("Teeth whitening costs $350 and takes about an hour."), "{}", found.text);
        assert!(found.text.contains("The price includes a follow-up visit."), "{}", found.text);
        assert!(!found.text.contains("Children"), "{}", found.text);
        assert!(found.text.ends_with("Source: Prices (https://clinic.test/prices)"), "{}", found.text);
        assert_eq!(found.citations[0].url.as_deref(), Some("https://clinic.test/prices"));
        assert_eq!(found.citations[0].chunk_id, Some(1));
        let metadata = found.metadata();
        assert_eq!(metadata["citations"][0]["source_id"], 10);
        assert_eq!(metadata["knowledge"]["basis"], "passage");
    }

    #[test]
    fn short_passages_are_quoted_whole_and_uncited_urls_left_out() {
        let found = from_passages(&index(), "Is there parking?", None).unwrap();
        assert_eq!(found.text, "Free parking is behind the building.\n\nSource: Parking");
    }

    #[test]
    fn questions_the_knowledge_does_not_cover_get_no_answer() {
        let index = index();
        assert!(from_passages(&index, "Do you sell bicycles?", None).is_none());
        assert!(from_passages(&index, "What is the price of bicycle repairs in winter?", None).is_none());
        assert!(from_passages(&index, "?!", None).is_none());
    }

    #[test]
    fn with_vectors_a_close_meaning_answers_and_a_distant_one_does_not() {
        let chunks = vec![
            IndexedChunk {
                chunk_id: 1,
                source_id: 10,
                title: "Parking".into(),
                url: None,
                text: "Free parking is behind the building.".into(),
                embedding: Some(vec![0.0, 1.0]),
            },
            IndexedChunk {
                chunk_id: 2,
                source_id: 11,
                title: "Prices".into(),
                url: None,
                text: "Whitening costs $350.".into(),
                embedding: Some(vec![1.0, 0.0]),
            },
        ];
        let index = KnowledgeIndex::build(&chunks, &[]).unwrap();
        let question = "Where do I leave my car?";
        assert!(from_passages(&index, question, None).is_none(), "no shared words");
        let close = Semantic { query: &[0.1, 0.995], min_similarity: 0.8 };
        let found = from_passages(&index, question, Some(close)).unwrap();
        assert_eq!(found.citations[0].chunk_id, Some(1));
        assert!(found.similarity.unwrap() > 0.99);
        assert_eq!(found.metadata()["knowledge"]["similarity"], found.similarity.unwrap());
        let distant = Semantic { query: &[0.7, 0.714], min_similarity: 0.8 };
        assert!(from_passages(&index, question, Some(distant)).is_none());
    }

    #[test]
    fn sentences_keep_their_punctuation() {
        assert_eq!(sentences("One. Two? Three\nFour 3.5 five"), vec!["One.", " Two?", " Three\n", "Four 3.5 five"]);
    }
}
