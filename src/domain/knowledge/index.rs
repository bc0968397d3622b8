//! In-memory BM25 full-text index over one bot's knowledge chunks, plus Q&A pair matching.
//!
//! The database is the source of truth: this index is never persisted or updated incrementally. It is rebuilt
//! from the bot's rows whenever its sources change, so every node in a cluster derives the same index from the
//! same rows. [`KnowledgeIndex::search`] ranks chunks for a visitor's free-text question (title hits weigh more
//! than body hits) and [`KnowledgeIndex::best_qa`] finds a curated Q&A pair whose question is close enough to
//! be answered verbatim.
//!
//! When chunks carry vectors (embeddings are configured), [`KnowledgeIndex::hybrid_search`] ranks by both: the
//! full-text and the nearest-vector lists are fused by reciprocal rank, so a passage that says the same thing in
//! other words still ranks, and one that shares words but not meaning sinks.

use std::collections::BTreeSet;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// Tantivy's built-in English analyzer; used for indexing so that term statistics see every word.
const TOKENIZER: &str = "en_stem";

/// A title usually names the topic of the whole chunk, so a match there is stronger evidence than one in the body.
const TITLE_BOOST: f32 = 2.0;

/// 15 MB is tantivy's per-thread minimum; more only pays off for corpora far larger than one bot's knowledge.
const WRITER_MEMORY_BYTES: usize = 50_000_000;

/// Mirrors tantivy's `RemoveLongFilter` limit in "en_stem", so query terms are cut exactly like indexed ones.
const MAX_TOKEN_LEN: usize = 40;

/// Words that carry no topic. Lucene's English list alone keeps question words ("what", "how", "do", "you"),
/// which would make every question look alike to the Q&A matcher and match every chunk in search.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
    "i", "me", "my", "we", "our", "us", "you", "your", "he", "she", "him", "her", "his", "its", "them", "what",
    "which", "who", "whom", "whose", "when", "where", "why", "how", "do", "does", "did", "doing", "done", "can",
    "could", "would", "should", "shall", "may", "might", "must", "have", "has", "had", "am", "been", "being", "were",
    "so", "than", "too", "very", "just", "any", "some", "all", "about", "from", "up", "out", "off", "over", "s", "t",
    "please", "hi", "hello", "hey", "thanks", "thank",
];

/// One chunk as stored.
#[derive(Debug, Clone)]
pub struct IndexedChunk {
    pub chunk_id: i64,
    pub source_id: i64,
    pub title: String,
    pub url: Option<String>,
    pub text: String,
    /// Unit-length vector, when the chunk has one from the configured model.
    pub embedding: Option<Vec<f32>>,
}

/// A Q&A pair (answered with its exact answer when the question matches well).
#[derive(Debug, Clone)]
pub struct QaPair {
    pub source_id: i64,
    pub question: String,
    pub answer: String,
}

/// A chunk returned by a search, with its ranking score: BM25 for [`KnowledgeIndex::search`], the fused
/// reciprocal-rank score for [`KnowledgeIndex::hybrid_search`].
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub chunk_id: i64,
    pub source_id: i64,
    pub title: String,
    pub url: Option<String>,
    pub text: String,
    pub score: f32,
    /// Cosine similarity to the question, when both have vectors.
    pub similarity: Option<f32>,
}

/// Reciprocal-rank fusion's damping constant: the usual 60 keeps one list's first place from
/// drowning the other list's.
const RRF_K: f32 = 60.0;

/// How deep each list is read before fusing.
const FUSION_DEPTH: usize = 20;

/// A Q&A pair returned by [`KnowledgeIndex::best_qa`], with its similarity (0..1) to the visitor's question.
#[derive(Debug, Clone, PartialEq)]
pub struct QaHit {
    pub source_id: i64,
    pub question: String,
    pub answer: String,
    pub similarity: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("full-text index error: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// A search hit pointed at a document without a valid chunk ordinal; only possible if the index is corrupt.
    #[error("full-text index returned a document with no valid chunk reference")]
    DanglingDocument,
}

/// A QA pair with its question's content terms precomputed, so matching a visitor's question is a set comparison.
struct PreparedQa {
    pair: QaPair,
    terms: BTreeSet<String>,
}

/// The index of one bot's knowledge. Immutable once built; share it behind an `Arc` and swap it on rebuild.
pub struct KnowledgeIndex {
    reader: IndexReader,
    title: Field,
    text: Field,
    ord: Field,
    /// Chunk contents live here rather than in tantivy's doc store: hits only need a position to look them up.
    chunks: Vec<IndexedChunk>,
    qa: Vec<PreparedQa>,
    /// The chunks' vectors, all of length `dimension`, one after another in one allocation so
    /// that a scan reads memory in order; `vector_positions[i]` is the chunk of the i-th.
    vectors: Vec<f32>,
    vector_positions: Vec<usize>,
    /// Where each chunk's vector starts in `vectors`, by chunk position.
    vector_of: Vec<Option<usize>>,
    dimension: Option<usize>,
    /// The "en_stem" pipeline plus stop-word removal, applied to questions only.
    query_analyzer: TextAnalyzer,
}

impl KnowledgeIndex {
    /// Builds the index (title boosted over text; English stemming and lower-casing via tantivy's "en_stem"
    /// tokenizer).
    pub fn build(chunks: &[IndexedChunk], qa: &[QaPair]) -> Result<KnowledgeIndex, IndexError> {
        let mut builder = Schema::builder();
        // Frequencies are needed for BM25; positions are not, since questions are never run as phrase queries.
        let text_options = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default().set_tokenizer(TOKENIZER).set_index_option(IndexRecordOption::WithFreqs),
        );
        let title = builder.add_text_field("title", text_options.clone());
        let text = builder.add_text_field("text", text_options);
        let ord = builder.add_u64_field("ord", STORED);
        let index = Index::create_in_ram(builder.build());

        // A single indexing thread assigns documents in input order, so equal scores break ties identically on
        // every node.
        let mut writer: IndexWriter = index.writer_with_num_threads(1, WRITER_MEMORY_BYTES)?;
        for (position, chunk) in chunks.iter().enumerate() {
            let mut doc = TantivyDocument::default();
            doc.add_text(title, &chunk.title);
            doc.add_text(text, &chunk.text);
            doc.add_u64(ord, position as u64);
            writer.add_document(doc)?;
        }
        writer.commit()?;
        writer.wait_merging_threads()?;

        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        reader.reload()?;

        let mut query_analyzer = query_analyzer();
        let qa = qa
            .iter()
            .map(|pair| PreparedQa { terms: content_terms(&mut query_analyzer, &pair.question), pair: pair.clone() })
            .collect();

        // Vectors of another length (a model changed under a running server) cannot be compared;
        // the most common length wins and the rest wait for the backfill to redo them.
        let mut lengths = std::collections::BTreeMap::<usize, usize>::new();
        for vector in chunks.iter().filter_map(|c| c.embedding.as_ref()) {
            *lengths.entry(vector.len()).or_default() += 1;
        }
        let dimension = lengths.iter().max_by_key(|(len, count)| (**count, **len)).map(|(len, _)| *len);
        let (mut vectors, mut vector_positions, mut vector_of) = (Vec::new(), Vec::new(), vec![None; chunks.len()]);
        for (position, chunk) in chunks.iter().enumerate() {
            if let Some(vector) = chunk.embedding.as_ref().filter(|v| Some(v.len()) == dimension) {
                vector_of[position] = Some(vectors.len());
                vector_positions.push(position);
                vectors.extend_from_slice(vector);
            }
        }
        let chunks = chunks.iter().map(|c| IndexedChunk { embedding: None, ..c.clone() }).collect();

        Ok(KnowledgeIndex {
            reader,
            title,
            text,
            ord,
            chunks,
            qa,
            vectors,
            vector_positions,
            vector_of,
            dimension,
            query_analyzer,
        })
    }

    /// Whether any chunk has a vector, i.e. whether a question's vector is worth computing.
    pub fn has_vectors(&self) -> bool {
        self.dimension.is_some()
    }

    /// Chunks ranked by full text and by vector, fused by reciprocal rank; `query` is the
    /// question's unit vector, without which this is [`KnowledgeIndex::search`].
    pub fn hybrid_search(&self, question: &str, query: Option<&[f32]>, limit: usize) -> Result<Vec<Hit>, IndexError> {
        let Some(query) = query.filter(|q| Some(q.len()) == self.dimension) else {
            return self.search(question, limit);
        };
        let lexical = self.lexical(question, FUSION_DEPTH)?;
        let nearest = self.nearest(query, FUSION_DEPTH);
        let mut fused: Vec<(usize, f32)> = Vec::new();
        for list in [lexical.iter().map(|(p, _)| *p).collect::<Vec<_>>(), nearest.iter().map(|(p, _)| *p).collect()] {
            for (rank, position) in list.into_iter().enumerate() {
                let share = 1.0 / (RRF_K + rank as f32 + 1.0);
                match fused.iter_mut().find(|(p, _)| *p == position) {
                    Some((_, score)) => *score += share,
                    None => fused.push((position, share)),
                }
            }
        }
        // Ties go to the earlier chunk, so every node ranks alike.
        fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        fused.truncate(limit);
        Ok(fused.into_iter().map(|(position, score)| self.hit(position, score, Some(query))).collect())
    }

    /// The `limit` chunks whose vectors are closest to `query` (cosine), closest first.
    fn nearest(&self, query: &[f32], limit: usize) -> Vec<(usize, f32)> {
        let mut scored: Vec<(usize, f32)> = self
            .vectors
            .chunks_exact(query.len())
            .zip(&self.vector_positions)
            .map(|(vector, position)| (*position, dot(vector, query)))
            .collect();
        let by_similarity = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if scored.len() > limit && limit > 0 {
            scored.select_nth_unstable_by(limit - 1, by_similarity);
            scored.truncate(limit);
        }
        scored.sort_by(by_similarity);
        scored.truncate(limit);
        scored
    }

    fn hit(&self, position: usize, score: f32, query: Option<&[f32]>) -> Hit {
        let chunk = &self.chunks[position];
        let similarity = query.and_then(|query| {
            let start = self.vector_of[position]?;
            Some(dot(&self.vectors[start..start + query.len()], query))
        });
        Hit {
            chunk_id: chunk.chunk_id,
            source_id: chunk.source_id,
            title: chunk.title.clone(),
            url: chunk.url.clone(),
            text: chunk.text.clone(),
            score,
            similarity,
        }
    }

    /// Top `limit` chunks for a visitor's question, best first (BM25). Questions are free text: escape/sanitize
    /// them so that characters meaningful to tantivy's query parser (quotes, colons, parentheses, +, -, ~, ^, *,
    /// etc.) never cause an error; an empty or stop-word-only question returns no hits.
    pub fn search(&self, question: &str, limit: usize) -> Result<Vec<Hit>, IndexError> {
        let ranked = self.lexical(question, limit)?;
        Ok(ranked.into_iter().map(|(position, score)| self.hit(position, score, None)).collect())
    }

    /// Positions of the top `limit` chunks by BM25, with their scores.
    fn lexical(&self, question: &str, limit: usize) -> Result<Vec<(usize, f32)>, IndexError> {
        // The query is assembled from analyzed terms instead of going through tantivy's query parser, so visitor
        // input is never interpreted as query syntax; punctuation is simply dropped by the tokenizer.
        let terms = content_terms(&mut self.query_analyzer.clone(), question);
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(terms.len() * 2);
        for term in &terms {
            let in_title = TermQuery::new(Term::from_field_text(self.title, term), IndexRecordOption::WithFreqs);
            let in_text = TermQuery::new(Term::from_field_text(self.text, term), IndexRecordOption::WithFreqs);
            clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(in_title), TITLE_BOOST))));
            clauses.push((Occur::Should, Box::new(in_text)));
        }
        let query = BooleanQuery::new(clauses);

        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        let mut ranked = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let position = doc
                .get_first(self.ord)
                .and_then(|value| value.as_u64())
                .and_then(|position| usize::try_from(position).ok())
                .filter(|position| *position < self.chunks.len())
                .ok_or(IndexError::DanglingDocument)?;
            ranked.push((position, score));
        }
        Ok(ranked)
    }

    /// The best Q&A pair if its question is close enough to the visitor's: Jaccard similarity of the stemmed,
    /// lower-cased content words of both questions, at least `min_similarity` (0..1).
    pub fn best_qa(&self, question: &str, min_similarity: f32) -> Option<QaHit> {
        let asked = content_terms(&mut self.query_analyzer.clone(), question);
        if asked.is_empty() {
            return None;
        }
        let mut best: Option<(&PreparedQa, f32)> = None;
        for candidate in &self.qa {
            let similarity = jaccard(&asked, &candidate.terms);
            // Strictly greater keeps the earliest pair on ties, so the choice does not depend on iteration luck.
            if best.is_none_or(|(_, best_similarity)| similarity > best_similarity) {
                best = Some((candidate, similarity));
            }
        }
        let (chosen, similarity) = best?;
        // A zero overlap is never an answer, even when the caller passes a threshold of 0.
        if similarity <= 0.0 || similarity < min_similarity {
            return None;
        }
        Some(QaHit {
            source_id: chosen.pair.source_id,
            question: chosen.pair.question.clone(),
            answer: chosen.pair.answer.clone(),
            similarity,
        })
    }

    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// The stemmed content words of `text`, exactly as questions are reduced for search: for
    /// judging how much of a question a passage covers.
    pub fn terms(&self, text: &str) -> BTreeSet<String> {
        content_terms(&mut self.query_analyzer.clone(), text)
    }
}

/// Must stay token-for-token identical to tantivy's "en_stem" except for the stop-word step, otherwise query
/// stems would not meet indexed stems. Stop words are dropped before stemming because the list holds surface forms.
fn query_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_LEN))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(STOP_WORDS.iter().map(|word| (*word).to_owned())))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Distinct stemmed content terms; a set, because repeating a word in a question should not change its meaning.
fn content_terms(analyzer: &mut TextAnalyzer, text: &str) -> BTreeSet<String> {
    let mut terms = BTreeSet::new();
    analyzer.token_stream(text).process(&mut |token| {
        terms.insert(token.text.clone());
    });
    terms
}

/// Eight independent sums, so the compiler can keep them in one SIMD register: a single running
/// sum is a chain of dependent additions it may not reorder.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut sums = [0.0f32; LANES];
    let (a_body, a_tail) = a.split_at(a.len() - a.len() % LANES);
    let (b_body, b_tail) = b.split_at(a_body.len().min(b.len()));
    for (x, y) in a_body.chunks_exact(LANES).zip(b_body.chunks_exact(LANES)) {
        for lane in 0..LANES {
            sums[lane] += x[lane] * y[lane];
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    sums.iter().sum::<f32>() + tail
}

fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f32 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f32 / union as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn chunk(chunk_id: i64, title: &str, text: &str) -> IndexedChunk {
        IndexedChunk {
            chunk_id,
            source_id: chunk_id * 10,
            title: title.to_owned(),
            url: Some(format!("https://example.test/{chunk_id}")),
            text: text.to_owned(),
            embedding: None,
        }
    }

    fn qa(source_id: i64, question: &str, answer: &str) -> QaPair {
        QaPair { source_id, question: question.to_owned(), answer: answer.to_owned() }
    }

    fn dental() -> KnowledgeIndex {
        let chunks = vec![
            chunk(1, "Our team", "Dr. Smith has cared for teeth in this town for twenty years."),
            chunk(
                2,
                "Prices",
                "Teeth whitening costs $250. Whitening prices include a follow-up visit. Whitening takes one hour.",
            ),
            chunk(3, "Opening hours", "We are open Monday to Friday, 8am to 6pm. Closed on public holidays."),
            chunk(4, "Hygiene", "A professional cleaning removes tartar. We recommend cleaning every six months."),
            chunk(5, "Parking", "Free parking is available behind the building."),
        ];
        let pairs = vec![
            qa(100, "What are your opening hours?", "Monday to Friday, 8am to 6pm."),
            qa(101, "How much does teeth whitening cost?", "Whitening costs $250."),
            qa(102, "Do you accept insurance?", "Yes, most major insurers."),
        ];
        KnowledgeIndex::build(&chunks, &pairs).expect("index builds")
    }

    #[test]
    fn index_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<KnowledgeIndex>();
    }

    #[test]
    fn counts_chunks() {
        assert_eq!(dental().chunk_count(), 5);
        assert_eq!(KnowledgeIndex::build(&[], &[]).unwrap().chunk_count(), 0);
    }

    #[test]
    fn empty_index_searches_cleanly() {
        let index = KnowledgeIndex::build(&[], &[]).unwrap();
        assert!(index.search("whitening price", 5).unwrap().is_empty());
        assert!(index.best_qa("whitening price", 0.1).is_none());
    }

    #[test]
    fn topical_chunk_outranks_passing_mention() {
        let hits = dental().search("How much is teeth whitening?", 5).unwrap();
        assert_eq!(hits[0].chunk_id, 2, "{hits:?}");
        let mention = hits.iter().position(|hit| hit.chunk_id == 1).expect("mention still matches");
        assert!(hits[0].score > hits[mention].score);
        assert!(hits.windows(2).all(|pair| pair[0].score >= pair[1].score), "best first");
    }

    #[test]
    fn hit_carries_chunk_fields() {
        let hit = dental().search("parking", 1).unwrap().remove(0);
        assert_eq!(
            hit,
            Hit {
                chunk_id: 5,
                source_id: 50,
                title: "Parking".into(),
                url: Some("https://example.test/5".into()),
                text: "Free parking is available behind the building.".into(),
                score: hit.score,
                similarity: None,
            }
        );
        assert!(hit.score > 0.0);
    }

    /// Chunks with hand-made vectors on three axes of meaning: money, time, cars.
    fn with_vectors() -> KnowledgeIndex {
        let mut chunks = vec![
            chunk(1, "Prices", "Teeth whitening costs $250."),
            chunk(2, "Opening hours", "We are open Monday to Friday, 8am to 6pm."),
            chunk(3, "Parking", "Free parking is available behind the building."),
            chunk(4, "Whitening prices history", "Whitening prices have changed over the years."),
        ];
        let axes = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.6, 0.8, 0.0]];
        for (chunk, axis) in chunks.iter_mut().zip(axes) {
            chunk.embedding = Some(axis.to_vec());
        }
        KnowledgeIndex::build(&chunks, &[]).unwrap()
    }

    #[test]
    fn vectors_find_a_passage_that_shares_no_word_with_the_question() {
        let index = with_vectors();
        assert!(index.has_vectors());
        assert!(index.search("Where do I leave my car?", 5).unwrap().iter().all(|hit| hit.chunk_id != 3));
        let hits = index.hybrid_search("Where do I leave my car?", Some(&[0.0, 0.1, 0.995]), 5).unwrap();
        assert_eq!(hits[0].chunk_id, 3, "{hits:?}");
        assert!(hits[0].similarity.unwrap() > 0.99);
        assert!(hits.windows(2).all(|pair| pair[0].score >= pair[1].score), "best first");
    }

    #[test]
    fn fusion_lifts_the_passage_both_rankings_agree_on() {
        let index = with_vectors();
        // Full text alone prefers the history chunk (two title words); meaning points at prices.
        let lexical = index.search("whitening prices", 4).unwrap();
        assert_eq!(lexical[0].chunk_id, 4, "{lexical:?}");
        let hybrid = index.hybrid_search("whitening prices", Some(&[1.0, 0.0, 0.0]), 4).unwrap();
        assert_eq!(hybrid[0].chunk_id, 1, "{hybrid:?}");
    }

    #[test]
    fn dot_products_of_any_length_match_the_plain_sum() {
        for len in [1, 3, 8, 13, 384] {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-4, "{len}");
        }
    }

    #[test]
    fn a_question_vector_of_another_length_falls_back_to_full_text() {
        let index = with_vectors();
        let hits = index.hybrid_search("parking", Some(&[1.0, 0.0]), 5).unwrap();
        assert_eq!(hits[0].chunk_id, 3);
        assert!(hits.iter().all(|hit| hit.similarity.is_none()));
        assert!(!dental().has_vectors());
    }

    #[test]
    fn title_match_is_boosted_over_body_match() {
        // Identical bodies and title lengths isolate the effect of where the word appears.
        let chunks = vec![
            chunk(1, "General info", "Ask us about implants and anything else."),
            chunk(2, "Implants info", "Ask us about implants and anything else."),
        ];
        let hits = KnowledgeIndex::build(&chunks, &[]).unwrap().search("implants", 5).unwrap();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].chunk_id, 2);
        assert!(hits[0].score > hits[1].score);
    }

    #[test]
    fn stemming_matches_word_forms() {
        let hits = dental().search("cleanings", 5).unwrap();
        assert_eq!(hits.first().map(|hit| hit.chunk_id), Some(4));
        let hits = dental().search("WHITENED", 5).unwrap();
        assert_eq!(hits.first().map(|hit| hit.chunk_id), Some(2));
    }

    #[test]
    fn query_syntax_in_questions_never_errors() {
        let index = dental();
        let nasty = [
            r#""price: (whitening)" AND -foo ~2 ^3 *"#,
            "price:",
            "title:whitening^100",
            "((((",
            ")))",
            "\"unterminated",
            "+ - && || ! ( ) { } [ ] ^ \" ~ * ? : \\ /",
            "whitening~",
            "ord:[0 TO 100]",
            "*",
            "NOT",
            "AND OR",
            "IN [a b]",
            "whitening\u{0}price",
            "😀 whitening 😀",
            "ÄÖÜ ß Zähne weiß",
            &"a".repeat(10_000),
        ];
        for question in nasty {
            assert!(index.search(question, 5).is_ok(), "{question:?}");
            let _ = index.best_qa(question, 0.5);
        }
        let hits = index.search(r#""price: (whitening)" AND -foo ~2 ^3 *"#, 5).unwrap();
        assert_eq!(hits.first().map(|hit| hit.chunk_id), Some(2), "words inside syntax still count");
        assert!(index.search("ord:3", 5).unwrap().is_empty(), "field syntax cannot reach internal fields");
    }

    #[test]
    fn empty_and_stop_word_questions_return_nothing() {
        let index = dental();
        for question in ["", "   ", "?!...", "the and of a", "What is it?", "How do you do?"] {
            assert!(index.search(question, 5).unwrap().is_empty(), "{question:?}");
            assert!(index.best_qa(question, 0.0).is_none(), "{question:?}");
        }
    }

    #[test]
    fn limit_is_respected() {
        let index = dental();
        let broad = "teeth whitening cleaning parking hours team";
        assert_eq!(index.search(broad, 2).unwrap().len(), 2);
        assert_eq!(index.search(broad, 100).unwrap().len(), 5);
        assert!(index.search(broad, 0).unwrap().is_empty());
    }

    #[test]
    fn search_is_deterministic_across_rebuilds() {
        let a = dental().search("teeth whitening cleaning", 5).unwrap();
        let b = dental().search("teeth whitening cleaning", 5).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn qa_picks_the_matching_pair() {
        let index = dental();
        let hit = index.best_qa("what does whitening of teeth cost", 0.5).expect("match");
        assert_eq!(hit.source_id, 101);
        assert_eq!(hit.answer, "Whitening costs $250.");
        assert!(hit.similarity >= 0.5 && hit.similarity <= 1.0);

        let hit = index.best_qa("When are you open? Opening hours please", 0.5).expect("match");
        assert_eq!(hit.source_id, 100);

        let exact = index.best_qa("Do you accept insurance?", 0.99).expect("identical question");
        assert_eq!(exact.source_id, 102);
        assert!((exact.similarity - 1.0).abs() < f32::EPSILON);
    }

    #[test]
    fn qa_refuses_unrelated_or_weak_matches() {
        let index = dental();
        assert!(index.best_qa("Is there parking near the building?", 0.3).is_none());
        // One shared word out of several is not close enough to answer verbatim.
        assert!(index.best_qa("teeth implants bridges crowns veneers", 0.5).is_none());
        assert!(index.best_qa("insurance", 1.01).is_none(), "threshold above 1 never matches");
    }

    #[test]
    fn builds_and_searches_ten_thousand_chunks() {
        let topics = ["whitening", "cleaning", "implants", "braces", "fillings", "crowns", "parking", "billing"];
        let chunks: Vec<IndexedChunk> = (0..10_000)
            .map(|i| {
                let topic = topics[i % topics.len()];
                chunk(
                    i as i64,
                    &format!("{topic} section {i}"),
                    &format!("Paragraph {i} explains {topic} in detail, including prices, timing and aftercare."),
                )
            })
            .collect();
        let started = Instant::now();
        let index = KnowledgeIndex::build(&chunks, &[]).unwrap();
        let built = started.elapsed();
        let started = Instant::now();
        let hits = index.search("how much do implants cost", 10).unwrap();
        let searched = started.elapsed();
        eprintln!("10k chunks: build {built:?}, search {searched:?}");
        assert_eq!(index.chunk_count(), 10_000);
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|hit| hit.title.starts_with("implants")));
    }
}
