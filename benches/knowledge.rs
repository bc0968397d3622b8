//! Knowledge benchmark: ingestion throughput through the real server (pages/s and chunks/s), and
//! retrieval latency with 10,000 chunks in one bot.
//!
//! ```text
//! cargo bench --bench knowledge -- retrieval [--chunks 10000] [--qa 200] [--questions 2000] [--seed 1]
//! cargo bench --bench knowledge -- ingest --url http://127.0.0.1:PORT --key API_KEY [--pages 200]
//!     [--text-chars 199000] [--text-sources 5] [--searches 500] [--seed 1] [--pid SERVER_PID]
//! ```
//!
//! `retrieval` runs in-process against the library: it builds a `KnowledgeIndex` from `--chunks`
//! synthetic chunks (about 800 characters of prose each, titled, over a vocabulary of about 3,000
//! words with a skewed frequency) and `--qa` Q&A pairs, then times, per question, what the bot
//! does with a visitor's question (`answer::from_qa`, else `answer::from_passages`) and
//! `index.search(q, 8)` alone. The questions mix words taken from one chunk, reworded Q&A
//! questions and random words, so some are answered from a pair, some from a passage and some not
//! at all; the counts are reported.
//!
//! `ingest` goes through a running server whose key is given (started with
//! `FRONTDESK_FETCH_ALLOW=127.0.0.1/32` so it may fetch from loopback):
//!
//! 1. `site`: serves a synthetic site of `--pages` HTML pages (3–5 KB of prose each, 3–4 `<h2>`
//!    sections, links to 5 other pages) and `/sitemap.xml` on 127.0.0.1 from this process, adds
//!    it as a URL source (`crawl: max_pages = pages, max_depth 10, sitemap`), and polls the source
//!    every 5 ms until it is `learned`. Reported: wall time from the source's `created_at` to its
//!    `learned_at` (the server's own timestamps, so not rounded up to a poll), pages and
//!    chunks learned, pages/s and chunks/s, when the crawler's last request reached the site
//!    (the rest is extraction, chunking and the database write), and the server's CPU.
//! 2. `site-parse`: the same pages extracted and chunked in this process with the server's own
//!    functions, for how much of the ingestion is parsing.
//! 3. `search`: `--searches` sequential `GET /api/knowledge/search?q=…` over the learned site
//!    (after 5 unmeasured ones; the first, which builds the bot's index, is reported apart).
//! 4. `text-one` and `text-many`: one text source of `--text-chars` characters of Markdown (the
//!    server accepts up to 200,000), then `--text-sources` of them posted together; time until
//!    all are learned, and chunks/s.
//!
//! Everything runs on one tokio thread, so the benchmark can be pinned to one core. Each phase
//! prints a human-readable block and a `RESULT {json}` line with a `phase` field.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use frontdesk::domain::knowledge::answer::{self, Basis};
use frontdesk::domain::knowledge::chunk::{chunk_sections, text_to_sections, ChunkConfig};
use frontdesk::domain::knowledge::extract;
use frontdesk::domain::knowledge::index::{IndexedChunk, KnowledgeIndex, QaPair};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "common/mod.rs"]
mod common;
use common::{percentile, proc_cpu_ticks, result, round1, round3, Api};

const USAGE: &str = "\
usage: knowledge retrieval [options] | knowledge ingest --url http://HOST:PORT --key API_KEY [options]

retrieval (in-process, no server):
  --chunks N         chunks in the bot's index (default 10000)
  --qa N             Q&A pairs (default 200)
  --questions N      questions timed (default 2000)
  --seed N           seed of the synthetic text (default 1)

ingest (through a running server):
  --url URL          the server's base URL (http:// only)
  --key KEY          an API key of the workspace (Authorization: Bearer)
  --pages N          pages of the synthetic site (default 200)
  --text-chars N     characters of one text source (default 199000; the server's limit is 200000)
  --text-sources N   text sources posted together in the last phase (default 5; 0: skip)
  --searches N       timed search requests over the learned site (default 500; 0: skip)
  --seed N           seed of the synthetic text (default 1)
  --pid PID          server process: report its CPU use from /proc/PID";

/// Questions asked, unmeasured, before each measured series.
const WARMUP: usize = 100;
/// How often a source's status is read while it is being learned.
const POLL: Duration = Duration::from_millis(5);
/// Longest any one source may take before the benchmark gives up on it.
const LEARN_TIMEOUT: Duration = Duration::from_secs(600);

// ---------------------------------------------------------------------------------------------
// Arguments

type Flags<'a> = BTreeMap<&'a str, &'a str>;

fn parse_flags<'a>(args: &'a [String], known: &[&str]) -> Result<Flags<'a>, String> {
    let mut flags = Flags::new();
    let mut it = args.iter().map(String::as_str);
    while let Some(arg) = it.next() {
        let Some(name) = arg.strip_prefix("--") else { return Err(format!("unexpected argument `{arg}`")) };
        if !known.contains(&name) {
            return Err(format!("unknown option `{arg}`"));
        }
        let Some(value) = it.next() else { return Err(format!("`{arg}` needs a value")) };
        flags.insert(name, value);
    }
    Ok(flags)
}

fn num<T: std::str::FromStr>(flags: &Flags, name: &str, default: T) -> Result<T, String> {
    match flags.get(name) {
        Some(v) => v.parse().map_err(|_| format!("`--{name} {v}` is not a valid number")),
        None => Ok(default),
    }
}

fn main() -> ExitCode {
    // `cargo bench` hands harness = false targets a `--bench` flag: not ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let result = match args.first().map(String::as_str) {
        Some("retrieval") => retrieval(&args[1..]),
        Some("ingest") => ingest(&args[1..]),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("knowledge: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Synthetic text

/// Everyday words of a small business's website; the rest of the vocabulary is made up.
const REAL_WORDS: &[&str] = &[
    "appointment",
    "booking",
    "cancel",
    "price",
    "cost",
    "insurance",
    "payment",
    "card",
    "cash",
    "invoice",
    "parking",
    "entrance",
    "wheelchair",
    "access",
    "opening",
    "hours",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "weekend",
    "holiday",
    "emergency",
    "phone",
    "email",
    "address",
    "street",
    "floor",
    "building",
    "team",
    "doctor",
    "nurse",
    "hygienist",
    "assistant",
    "reception",
    "patient",
    "child",
    "family",
    "adult",
    "senior",
    "student",
    "discount",
    "voucher",
    "gift",
    "cleaning",
    "whitening",
    "filling",
    "crown",
    "bridge",
    "implant",
    "brace",
    "aligner",
    "veneer",
    "extraction",
    "root",
    "canal",
    "gum",
    "tooth",
    "teeth",
    "checkup",
    "xray",
    "scan",
    "consultation",
    "treatment",
    "plan",
    "referral",
    "form",
    "record",
    "privacy",
    "policy",
    "refund",
    "deposit",
    "late",
    "fee",
    "reminder",
    "message",
    "review",
    "rating",
    "anxiety",
    "sedation",
    "anaesthetic",
    "pain",
    "swelling",
    "bleeding",
    "sensitive",
    "allergy",
    "medication",
    "pregnancy",
    "diet",
    "sugar",
    "floss",
    "brush",
    "toothpaste",
    "mouthwash",
    "night",
    "guard",
    "sport",
    "accident",
    "repair",
    "denture",
    "clinic",
    "practice",
    "laboratory",
    "sterilisation",
    "hygiene",
    "mask",
    "vaccine",
    "license",
    "certificate",
    "training",
    "experience",
    "language",
    "spanish",
    "french",
    "german",
    "bus",
    "train",
    "bicycle",
    "garage",
    "lift",
    "stairs",
    "coffee",
    "water",
    "waiting",
    "room",
    "television",
];

const FILLER: &[&str] = &[
    "the", "a", "our", "your", "we", "you", "is", "are", "can", "will", "with", "for", "and", "or", "in", "on", "at",
    "to", "of", "every", "each", "most", "also", "usually", "always", "often", "before", "after", "during", "about",
    "from", "by", "this", "that", "when", "if", "please", "ask", "offer", "provide", "include", "need", "book", "call",
    "visit", "take", "make", "keep", "check", "help",
];

struct Vocab {
    /// Content words, most frequent first.
    words: Vec<String>,
}

impl Vocab {
    fn new(rng: &mut StdRng, made_up: usize) -> Vocab {
        const ONSETS: &[&str] = &[
            "b", "br", "c", "ch", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "pl", "qu", "r",
            "s", "sh", "st", "t", "tr", "v", "w", "z",
        ];
        const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ea", "ou", "io"];
        const CODAS: &[&str] = &["", "", "n", "r", "l", "s", "t", "m", "nd", "rk", "st", "x"];
        let mut words: Vec<String> = REAL_WORDS.iter().map(|w| (*w).to_owned()).collect();
        let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
        while words.len() < REAL_WORDS.len() + made_up {
            let syllables = rng.gen_range(2..=3);
            let word: String = (0..syllables)
                .map(|_| {
                    format!(
                        "{}{}{}",
                        ONSETS.choose(rng).unwrap(),
                        VOWELS.choose(rng).unwrap(),
                        CODAS.choose(rng).unwrap()
                    )
                })
                .collect();
            if seen.insert(word.clone()) {
                words.push(word);
            }
        }
        // Mix the real words in among the made-up ones so both kinds are common and rare.
        words.shuffle(rng);
        Vocab { words }
    }

    /// A content word, skewed toward the start of the list (a few words are everywhere, most rare).
    fn word(&self, rng: &mut StdRng) -> &str {
        let u: f64 = rng.gen();
        let i = ((u.powf(2.2)) * self.words.len() as f64) as usize;
        &self.words[i.min(self.words.len() - 1)]
    }

    fn sentence(&self, rng: &mut StdRng) -> String {
        let n = rng.gen_range(8..=18);
        let mut words: Vec<String> = Vec::with_capacity(n);
        for i in 0..n {
            let w = if i % 2 == 0 || rng.gen_bool(0.3) {
                (*FILLER.choose(rng).unwrap()).to_owned()
            } else {
                self.word(rng).to_owned()
            };
            words.push(w);
        }
        let mut s = words.join(" ");
        if let Some(first) = s.get(..1) {
            s = first.to_uppercase() + &s[1..];
        }
        if rng.gen_bool(0.15) {
            s.push_str(&format!(" {} euros", rng.gen_range(20..900)));
        }
        s.push('.');
        s
    }

    /// Sentences until at least `chars` characters.
    fn prose(&self, rng: &mut StdRng, chars: usize) -> String {
        let mut text = String::new();
        while text.len() < chars {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&self.sentence(rng));
        }
        text
    }

    fn title(&self, rng: &mut StdRng, words: usize) -> String {
        (0..words)
            .map(|_| {
                let w = self.word(rng);
                w[..1].to_uppercase() + &w[1..]
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// p50 / p90 / p99 / max / mean in milliseconds, and n.
fn summary(latency_ns: &[u64]) -> Value {
    let mut sorted = latency_ns.to_vec();
    sorted.sort_unstable();
    let ms = |ns: u64| round3(ns as f64 / 1e6);
    let mean = if sorted.is_empty() { 0.0 } else { sorted.iter().sum::<u64>() as f64 / sorted.len() as f64 / 1e6 };
    json!({
        "p50": ms(percentile(&sorted, 0.50)),
        "p90": ms(percentile(&sorted, 0.90)),
        "p99": ms(percentile(&sorted, 0.99)),
        "max": ms(sorted.last().copied().unwrap_or(0)),
        "mean": round3(mean),
        "n": sorted.len(),
    })
}

fn fmt_summary(v: &Value) -> String {
    format!(
        "p50 {} ms, p90 {} ms, p99 {} ms, max {} ms, mean {} ms (n={})",
        v["p50"], v["p90"], v["p99"], v["max"], v["mean"], v["n"]
    )
}

/// Now, in milliseconds since the epoch, like the server's `created_at` and `learned_at`.
fn epoch_ms() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A timestamp field (milliseconds since the epoch) of a source.
fn stamp(row: &Value, field: &str) -> Result<f64, String> {
    row[field].as_i64().map(|t| t as f64).ok_or_else(|| format!("source without `{field}`: {row}"))
}

fn own_cpu_ticks() -> Option<u64> {
    proc_cpu_ticks("self")
}

fn cpu_pct(ticks: Option<u64>, before: Option<u64>, secs: f64) -> Option<f64> {
    // USER_HZ is 100 on Linux: one tick is 10 ms.
    Some(round1((ticks? - before?) as f64 / 100.0 / secs * 100.0))
}

// ---------------------------------------------------------------------------------------------
// Retrieval (in-process)

fn retrieval(args: &[String]) -> Result<(), String> {
    let flags = parse_flags(args, &["chunks", "qa", "questions", "seed", "dims"])?;
    let dims: usize = num(&flags, "dims", 384)?;
    let n_chunks: usize = num(&flags, "chunks", 10_000)?;
    let n_qa: usize = num(&flags, "qa", 200)?;
    let n_questions: usize = num(&flags, "questions", 2_000)?;
    let seed: u64 = num(&flags, "seed", 1)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let vocab = Vocab::new(&mut rng, 3_000);

    // Chunks come from pages of a few sections each, as a crawl gives them.
    let mut chunks = Vec::with_capacity(n_chunks);
    let mut page_title = String::new();
    for i in 0..n_chunks {
        if i % 6 == 0 {
            page_title = vocab.title(&mut rng, 2);
        }
        let words = rng.gen_range(1..=3);
        let section = vocab.title(&mut rng, words);
        let chars = rng.gen_range(700..=900);
        chunks.push(IndexedChunk {
            chunk_id: i as i64 + 1,
            source_id: (i / 600) as i64 + 1,
            title: format!("{page_title} › {section}"),
            url: Some(format!("https://clinic.test/{}/{}", i / 6, i % 6)),
            text: vocab.prose(&mut rng, chars),
            embedding: None,
        });
    }
    let mut qa = Vec::with_capacity(n_qa);
    for i in 0..n_qa {
        let words: Vec<&str> = (0..rng.gen_range(2..=4)).map(|_| vocab.word(&mut rng)).collect();
        let question = match i % 4 {
            0 => format!("How much does {} cost?", words.join(" ")),
            1 => format!("Do you offer {}?", words.join(" and ")),
            2 => format!("What is your policy on {}?", words.join(" ")),
            _ => format!("Can I bring my {} to the {}?", words[0], words[1..].join(" ")),
        };
        let chars = rng.gen_range(80..300);
        let answer = vocab.prose(&mut rng, chars);
        qa.push(QaPair { source_id: 100_000 + i as i64, question, answer });
    }
    let text_bytes: usize = chunks.iter().map(|c| c.text.len() + c.title.len()).sum();

    let started = Instant::now();
    let index = KnowledgeIndex::build(&chunks, &qa).map_err(|e| e.to_string())?;
    let build_secs = started.elapsed().as_secs_f64();
    println!(
        "## index build: {} chunks ({:.1} MB of text, mean {} chars), {} Q&A pairs: {:.3} s",
        index.chunk_count(),
        text_bytes as f64 / 1e6,
        text_bytes / n_chunks.max(1),
        qa.len(),
        build_secs
    );
    result(
        "index-build",
        json!({
            "chunks": index.chunk_count(), "qa": qa.len(), "text_bytes": text_bytes,
            "secs": round3(build_secs), "chunks_per_sec": round1(n_chunks as f64 / build_secs),
        }),
    );

    // Questions: words from one chunk (40 %), a Q&A question reworded (20 %), random words (40 %).
    let mut questions = Vec::with_capacity(n_questions + WARMUP);
    for i in 0..n_questions + WARMUP {
        let q = match i % 5 {
            0 | 1 => {
                let chunk = chunks.choose(&mut rng).unwrap();
                let words: Vec<&str> = chunk
                    .text
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| w.len() > 3 && !FILLER.contains(&w.to_lowercase().as_str()))
                    .collect();
                let n = rng.gen_range(2..=4);
                let picked: Vec<&str> = words.choose_multiple(&mut rng, n).copied().collect();
                match i % 3 {
                    0 => format!("How much is the {}?", picked.join(" ")),
                    1 => format!("do you have {}", picked.join(" ")),
                    _ => format!("I need to know about {} please!", picked.join(", ")),
                }
            }
            2 => {
                let pair = qa.choose(&mut rng).unwrap();
                let mut words: Vec<&str> = pair.question.trim_end_matches('?').split(' ').collect();
                words.shuffle(&mut rng);
                format!("{}?", words.join(" ").to_lowercase())
            }
            _ => {
                let words: Vec<&str> = (0..rng.gen_range(2..=5)).map(|_| vocab.word(&mut rng)).collect();
                format!("Is there any {}?", words.join(" "))
            }
        };
        questions.push(q);
    }

    // What the bot does per question.
    let cpu_before = own_cpu_ticks();
    let mut bases: BTreeMap<&str, u64> = BTreeMap::new();
    let mut answer_ns = Vec::with_capacity(n_questions);
    let series_started = Instant::now();
    for (i, q) in questions.iter().enumerate() {
        let t = Instant::now();
        let found = answer::from_qa(&index, q).or_else(|| answer::from_passages(&index, q, None));
        let took = t.elapsed();
        if i >= WARMUP {
            answer_ns.push(took.as_nanos() as u64);
            let basis = match found.map(|f| f.basis) {
                Some(Basis::Qa) => "qa",
                Some(Basis::Passage) => "passage",
                None => "none",
            };
            *bases.entry(basis).or_default() += 1;
        }
    }
    let answer_secs = series_started.elapsed().as_secs_f64();
    let answer_summary = summary(&answer_ns);
    println!("## answer (from_qa, else from_passages): {}", fmt_summary(&answer_summary));
    println!("   answered from: {bases:?}");
    result(
        "answer",
        json!({
            "chunks": n_chunks, "qa": qa.len(), "latency_ms": answer_summary, "answered_from": bases,
            "questions_per_sec": round1(questions.len() as f64 / answer_secs),
            "cpu_pct": cpu_pct(own_cpu_ticks(), cpu_before, answer_secs),
        }),
    );

    // Search alone, as the answer does it (8 candidates).
    let mut search_ns = Vec::with_capacity(n_questions);
    let mut hits_total = 0usize;
    let mut empty = 0usize;
    for (i, q) in questions.iter().enumerate() {
        let t = Instant::now();
        let hits = index.search(q, 8).map_err(|e| e.to_string())?;
        let took = t.elapsed();
        if i >= WARMUP {
            search_ns.push(took.as_nanos() as u64);
            hits_total += hits.len();
            empty += usize::from(hits.is_empty());
        }
    }
    let search_summary = summary(&search_ns);
    println!("## search(q, 8): {}", fmt_summary(&search_summary));
    println!("   mean hits {:.2}, questions with no hit {empty}", hits_total as f64 / n_questions.max(1) as f64);
    result(
        "search",
        json!({
            "chunks": n_chunks, "limit": 8, "latency_ms": search_summary,
            "mean_hits": round3(hits_total as f64 / n_questions.max(1) as f64), "no_hits": empty,
        }),
    );
    if dims > 0 {
        hybrid_retrieval(&mut rng, chunks, &qa, &questions, dims)?;
    }
    Ok(())
}

/// The same questions with every chunk and question carrying a random unit vector of `dims`
/// dimensions: what hybrid ranking adds in-process (the endpoint's own time is not included:
/// it is the model server's).
fn hybrid_retrieval(
    rng: &mut StdRng,
    mut chunks: Vec<IndexedChunk>,
    qa: &[QaPair],
    questions: &[String],
    dims: usize,
) -> Result<(), String> {
    let unit = |rng: &mut StdRng| {
        let v: Vec<f32> = (0..dims).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        frontdesk::domain::knowledge::embed::normalized(v).expect("a random vector is not zero")
    };
    for chunk in &mut chunks {
        chunk.embedding = Some(unit(rng));
    }
    let started = Instant::now();
    let index = KnowledgeIndex::build(&chunks, qa).map_err(|e| e.to_string())?;
    let build_secs = started.elapsed().as_secs_f64();
    let vectors: Vec<Vec<f32>> = questions.iter().map(|_| unit(rng)).collect();
    let mut answer_ns = Vec::with_capacity(questions.len());
    for (i, (q, vector)) in questions.iter().zip(&vectors).enumerate() {
        let semantic = answer::Semantic { query: vector, min_similarity: 0.82 };
        let t = Instant::now();
        let found = answer::from_qa(&index, q).or_else(|| answer::from_passages(&index, q, Some(semantic)));
        let took = t.elapsed();
        std::hint::black_box(found);
        if i >= WARMUP {
            answer_ns.push(took.as_nanos() as u64);
        }
    }
    let answer_summary = summary(&answer_ns);
    println!(
        "## hybrid answer ({dims}-dim vectors on every chunk, build {build_secs:.3} s): {}",
        fmt_summary(&answer_summary)
    );
    result(
        "hybrid-answer",
        json!({ "chunks": chunks.len(), "dims": dims, "build_secs": round3(build_secs), "latency_ms": answer_summary }),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The synthetic site

struct Site {
    /// Path → (content type, body).
    docs: HashMap<String, (&'static str, Vec<u8>)>,
    /// Page paths, home first.
    pages: Vec<String>,
}

fn page_path(i: usize) -> String {
    if i == 0 {
        "/".to_owned()
    } else {
        format!("/pages/{i}.html")
    }
}

fn build_site(vocab: &Vocab, rng: &mut StdRng, n: usize, origin: &str) -> Site {
    let mut docs = HashMap::new();
    let mut pages = Vec::with_capacity(n);
    let titles: Vec<String> = (0..n).map(|_| vocab.title(rng, 2)).collect();
    for i in 0..n {
        let mut html = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} | Bright Smile Clinic</title></head>\n<body>\
             <nav><a href=\"/\">Home</a> <a href=\"/pages/1.html\">About</a> <a href=\"/pages/2.html\">Prices</a></nav>\n<main><h1>{}</h1>\n",
            titles[i], titles[i]
        );
        html.push_str(&format!("<p>{}</p>\n", vocab.prose(rng, 250)));
        let sections = rng.gen_range(3..=4);
        for _ in 0..sections {
            let words = rng.gen_range(1..=3);
            html.push_str(&format!("<h2>{}</h2>\n", vocab.title(rng, words)));
            for _ in 0..rng.gen_range(2..=3) {
                let chars = rng.gen_range(250..450);
                html.push_str(&format!("<p>{}</p>\n", vocab.prose(rng, chars)));
            }
        }
        html.push_str("<h2>Related pages</h2>\n<ul>\n");
        for step in [1, 7, 31, 53, 97] {
            let j = (i * 3 + step) % n;
            if j != i {
                html.push_str(&format!("<li><a href=\"{}\">{}</a></li>\n", page_path(j), titles[j]));
            }
        }
        html.push_str(
            "</ul></main>\n<footer>Bright Smile Clinic, 12 Harbour Street. Call 555-0100.</footer></body></html>\n",
        );
        docs.insert(page_path(i), ("text/html; charset=utf-8", html.into_bytes()));
        pages.push(page_path(i));
    }
    let mut sitemap = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    for p in &pages {
        sitemap.push_str(&format!("<url><loc>{origin}{p}</loc></url>\n"));
    }
    sitemap.push_str("</urlset>\n");
    docs.insert("/sitemap.xml".to_owned(), ("application/xml", sitemap.into_bytes()));
    Site { docs, pages }
}

/// What the site saw: each request's path and when it was answered.
#[derive(Default)]
struct SiteLog {
    /// When (milliseconds since the epoch, comparable with the server's timestamps), path, status.
    requests: Vec<(f64, String, u16)>,
}

/// Serves `site` over HTTP/1.1 with keep-alive until the process ends.
async fn serve_site(listener: tokio::net::TcpListener, site: Arc<Site>, log: Arc<Mutex<SiteLog>>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else { continue };
        let (site, log) = (site.clone(), log.clone());
        tokio::spawn(async move {
            let _ = socket.set_nodelay(true);
            let mut buf = Vec::with_capacity(4096);
            let mut read = [0u8; 4096];
            loop {
                let end = loop {
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(end + 4);
                    }
                    match socket.read(&mut read).await {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => buf.extend_from_slice(&read[..n]),
                    }
                };
                let Some(end) = end else { return };
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                buf.drain(..end);
                let path = head.split_whitespace().nth(1).unwrap_or("/").split('#').next().unwrap_or("/").to_owned();
                let (status, content_type, body): (u16, &str, &[u8]) = match site.docs.get(&path) {
                    Some((ct, body)) => (200, ct, body),
                    None => (404, "text/plain", b"not found"),
                };
                let reason = if status == 200 { "OK" } else { "Not Found" };
                let header = format!(
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let mut response = header.into_bytes();
                response.extend_from_slice(body);
                if socket.write_all(&response).await.is_err() {
                    return;
                }
                log.lock().unwrap().requests.push((epoch_ms(), path, status));
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Ingestion (through the server)

impl Api {
    async fn add_source(&self, body: &Value) -> Result<i64, String> {
        let (status, answer) = self.call(reqwest::Method::POST, "/api/knowledge/sources", Some(body)).await?;
        if status != 202 || answer["status"] != "waiting" {
            return Err(format!("POST /api/knowledge/sources answered {status}: {answer}"));
        }
        answer["id"].as_i64().ok_or_else(|| format!("no id in {answer}"))
    }

    /// Polls the sources until every one is learned; when each got there, and the rows.
    async fn wait_learned(&self, ids: &[i64], since: Instant) -> Result<Vec<(f64, f64, Value)>, String> {
        let mut done: Vec<Option<(f64, f64, Value)>> = vec![None; ids.len()];
        let mut learning_at: Vec<Option<f64>> = vec![None; ids.len()];
        loop {
            for (k, id) in ids.iter().enumerate() {
                if done[k].is_some() {
                    continue;
                }
                let (status, row) =
                    self.call(reqwest::Method::GET, &format!("/api/knowledge/sources/{id}"), None).await?;
                if status != 200 {
                    return Err(format!("GET /api/knowledge/sources/{id} answered {status}: {row}"));
                }
                let now = since.elapsed().as_secs_f64();
                match row["status"].as_str() {
                    Some("learned") => done[k] = Some((learning_at[k].unwrap_or(0.0), now, row)),
                    Some("failed") => return Err(format!("source {id} failed: {}", row["error"])),
                    Some("learning") => {
                        learning_at[k].get_or_insert(now);
                    }
                    _ => {}
                }
            }
            if done.iter().all(Option::is_some) {
                return Ok(done.into_iter().flatten().collect());
            }
            if since.elapsed() > LEARN_TIMEOUT {
                return Err(format!("sources {ids:?} not learned within {LEARN_TIMEOUT:?}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

struct Ingest {
    api: Api,
    pid: Option<String>,
    pages: usize,
    text_chars: usize,
    text_sources: usize,
    searches: usize,
    seed: u64,
}

fn ingest(args: &[String]) -> Result<(), String> {
    let flags = parse_flags(args, &["url", "key", "pages", "text-chars", "text-sources", "searches", "seed", "pid"])?;
    let url = flags.get("url").ok_or("`--url` is required")?.trim_end_matches('/').to_string();
    if !url.starts_with("http://") {
        return Err(format!("`{url}`: give http://host:port"));
    }
    let run = Ingest {
        api: Api {
            client: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().map_err(|e| e.to_string())?,
            base: url,
            key: flags.get("key").ok_or("`--key` is required")?.to_string(),
        },
        pid: flags.get("pid").map(|p| p.to_string()),
        pages: num(&flags, "pages", 200)?,
        text_chars: num(&flags, "text-chars", 199_000)?,
        text_sources: num(&flags, "text-sources", 5)?,
        searches: num(&flags, "searches", 500)?,
        seed: num(&flags, "seed", 1)?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(run.run())
}

impl Ingest {
    fn server_ticks(&self) -> Option<u64> {
        proc_cpu_ticks(self.pid.as_deref()?)
    }

    async fn run(&self) -> Result<(), String> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let vocab = Vocab::new(&mut rng, 3_000);

        // 1. The site.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let origin = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
        let site = Arc::new(build_site(&vocab, &mut rng, self.pages, &origin));
        let page_bytes: Vec<usize> = site.pages.iter().map(|p| site.docs[p].1.len()).collect();
        let log = Arc::new(Mutex::new(SiteLog::default()));
        tokio::spawn(serve_site(listener, site.clone(), log.clone()));
        println!(
            "## site: {} pages at {origin}, {:.1} KB each on average ({:.1}–{:.1} KB), {:.2} MB in all",
            site.pages.len(),
            page_bytes.iter().sum::<usize>() as f64 / page_bytes.len() as f64 / 1e3,
            *page_bytes.iter().min().unwrap_or(&0) as f64 / 1e3,
            *page_bytes.iter().max().unwrap_or(&0) as f64 / 1e3,
            page_bytes.iter().sum::<usize>() as f64 / 1e6,
        );

        let body = json!({
            "type": "url", "url": format!("{origin}/"),
            "crawl": {"max_pages": self.pages, "max_depth": 10, "sitemap": true},
        });
        let cpu_before = self.server_ticks();
        let started = Instant::now();
        let id = self.api.add_source(&body).await?;
        let (learning_at, observed, row) = self.api.wait_learned(&[id], started).await?.remove(0);
        let cpu_after = self.server_ticks();
        let created = stamp(&row, "created_at")?;
        let learned_at = (stamp(&row, "learned_at")? - created) / 1000.0;
        let (requests, first_request, last_request, not_found) = {
            let log = log.lock().unwrap();
            let at = |i: Option<&(f64, String, u16)>| i.map(|(t, _, _)| round3((t - created) / 1000.0)).unwrap_or(0.0);
            (
                log.requests.len(),
                at(log.requests.first()),
                at(log.requests.last()),
                log.requests.iter().filter(|r| r.2 != 200).count(),
            )
        };
        let pages_learned = row["pages_learned"].as_u64().unwrap_or(0);
        let chunk_count = row["chunk_count"].as_u64().unwrap_or(0);
        let crawl_secs = last_request - first_request;
        println!(
            "## site learned: {pages_learned} pages, {chunk_count} chunks in {learned_at:.2} s: {:.1} pages/s, {:.1} chunks/s",
            pages_learned as f64 / learned_at,
            chunk_count as f64 / learned_at
        );
        println!(
            "   learning began {learning_at:.3} s after the POST; the site saw {requests} requests ({not_found} not 200) \
             from {first_request:.3} s to {last_request:.3} s ({:.2} ms per request); learned {:.3} s after the last",
            crawl_secs * 1000.0 / requests.saturating_sub(1).max(1) as f64,
            learned_at - last_request
        );
        if pages_learned as usize != self.pages {
            println!("   WARNING: {} pages served, {pages_learned} learned", self.pages);
        }
        result(
            "site",
            json!({
                "pages": self.pages, "page_bytes_mean": page_bytes.iter().sum::<usize>() / page_bytes.len().max(1),
                "pages_learned": pages_learned, "chunk_count": chunk_count, "secs": round3(learned_at),
                "observed_secs": round3(observed),
                "pages_per_sec": round1(pages_learned as f64 / learned_at),
                "chunks_per_sec": round1(chunk_count as f64 / learned_at),
                "learning_began_secs": round3(learning_at), "site_requests": requests, "site_not_200": not_found,
                "first_request_secs": first_request, "last_request_secs": last_request,
                "ms_per_request": round3(crawl_secs * 1000.0 / requests.saturating_sub(1).max(1) as f64),
                "after_last_request_secs": round3(learned_at - last_request),
                "server_cpu_pct": cpu_pct(cpu_after, cpu_before, learned_at),
            }),
        );

        // 2. The same pages parsed and chunked here, as the learner does it (one core).
        let t = Instant::now();
        let mut parsed_chunks = 0;
        for path in &site.pages {
            let (ct, body) = &site.docs[path];
            let page_url = format!("{origin}{path}");
            let kind = extract::sniff(body, Some(&page_url), Some(ct.split(';').next().unwrap_or(ct)))
                .map_err(|e| e.to_string())?;
            let doc = extract::extract(kind, body, &page_url).map_err(|e| e.to_string())?;
            parsed_chunks += chunk_sections(&doc.sections, ChunkConfig::default()).len();
        }
        let parse_secs = t.elapsed().as_secs_f64();
        println!(
            "## the same {} pages extracted and chunked in-process: {parsed_chunks} chunks in {:.3} s ({:.2} ms a page)",
            site.pages.len(),
            parse_secs,
            parse_secs * 1000.0 / site.pages.len() as f64
        );
        result(
            "site-parse",
            json!({
                "pages": site.pages.len(), "chunks": parsed_chunks, "secs": round3(parse_secs),
                "ms_per_page": round3(parse_secs * 1000.0 / site.pages.len() as f64),
            }),
        );

        // 3. Search over the learned site.
        if self.searches > 0 {
            self.search(&vocab, &mut rng, chunk_count).await?;
        }

        // 4. Text sources.
        let markdown = |rng: &mut StdRng| {
            let mut text = String::new();
            let mut n = 0;
            while text.len() < self.text_chars {
                n += 1;
                let mut part = format!("## {n}. {}\n\n", vocab.title(rng, 2));
                for _ in 0..rng.gen_range(2..=4) {
                    let chars = rng.gen_range(200..600);
                    part.push_str(&vocab.prose(rng, chars));
                    part.push_str("\n\n");
                }
                if rng.gen_bool(0.3) {
                    part.push_str(&format!("### {}\n\n", vocab.title(rng, 2)));
                    for _ in 0..3 {
                        part.push_str(&format!("- {}\n", vocab.sentence(rng)));
                    }
                    part.push('\n');
                }
                if text.len() + part.len() > self.text_chars {
                    break;
                }
                text.push_str(&part);
            }
            text
        };
        let one = markdown(&mut rng);
        let sections = text_to_sections(&one);
        let local_chunks = chunk_sections(&sections, ChunkConfig::default()).len();
        let cpu_before = self.server_ticks();
        let started = Instant::now();
        let id = self.api.add_source(&json!({"type": "text", "title": "Handbook", "content": one})).await?;
        let (learning_at, observed, row) = self.api.wait_learned(&[id], started).await?.remove(0);
        let cpu_after = self.server_ticks();
        let learned_at = (stamp(&row, "learned_at")? - stamp(&row, "created_at")?) / 1000.0;
        let chunks = row["chunk_count"].as_u64().unwrap_or(0);
        println!(
            "## text source of {} chars ({} headings): {chunks} chunks learned in {learned_at:.3} s ({:.0} chunks/s, {:.2} MB/s); \
             learning began at {learning_at:.3} s",
            one.chars().count(),
            one.matches("\n#").count() + 1,
            chunks as f64 / learned_at,
            one.len() as f64 / 1e6 / learned_at
        );
        result(
            "text-one",
            json!({
                "chars": one.chars().count(), "chunk_count": chunks, "chunks_expected": local_chunks,
                "secs": round3(learned_at), "observed_secs": round3(observed), "learning_began_secs": round3(learning_at),
                "chunks_per_sec": round1(chunks as f64 / learned_at),
                "mb_per_sec": round3(one.len() as f64 / 1e6 / learned_at),
                "server_cpu_pct": cpu_pct(cpu_after, cpu_before, learned_at),
            }),
        );

        if self.text_sources > 0 {
            let texts: Vec<String> = (0..self.text_sources).map(|_| markdown(&mut rng)).collect();
            let bytes: usize = texts.iter().map(String::len).sum();
            let cpu_before = self.server_ticks();
            let started = Instant::now();
            let mut ids = Vec::new();
            for (k, text) in texts.iter().enumerate() {
                let body = json!({"type": "text", "title": format!("Handbook part {}", k + 1), "content": text});
                ids.push(self.api.add_source(&body).await?);
            }
            let posted = started.elapsed().as_secs_f64();
            let done = self.api.wait_learned(&ids, started).await?;
            let cpu_after = self.server_ticks();
            let mut first_created = f64::MAX;
            let mut learned = Vec::new();
            for (_, _, row) in &done {
                first_created = first_created.min(stamp(row, "created_at")?);
                learned.push(stamp(row, "learned_at")?);
            }
            let learned: Vec<f64> = learned.iter().map(|t| round3((t - first_created) / 1000.0)).collect();
            let secs = learned.iter().copied().fold(0.0, f64::max);
            let chunks: u64 = done.iter().map(|d| d.2["chunk_count"].as_u64().unwrap_or(0)).sum();
            println!(
                "## {} text sources together ({:.2} MB): {chunks} chunks, all learned in {secs:.3} s ({:.0} chunks/s, {:.2} MB/s)",
                texts.len(),
                bytes as f64 / 1e6,
                chunks as f64 / secs,
                bytes as f64 / 1e6 / secs
            );
            result(
                "text-many",
                json!({
                    "sources": texts.len(), "bytes": bytes, "chunk_count": chunks, "secs": round3(secs),
                    "posted_secs": round3(posted),
                    "learned_at_secs": learned,
                    "observed_secs": round3(done.iter().map(|d| d.1).fold(0.0, f64::max)),
                    "chunks_per_sec": round1(chunks as f64 / secs),
                    "mb_per_sec": round3(bytes as f64 / 1e6 / secs),
                    "server_cpu_pct": cpu_pct(cpu_after, cpu_before, secs),
                }),
            );
        }
        Ok(())
    }

    /// `GET /api/knowledge/search` over the learned site, one request at a time.
    async fn search(&self, vocab: &Vocab, rng: &mut StdRng, chunks: u64) -> Result<(), String> {
        let questions: Vec<String> = (0..self.searches + 5)
            .map(|i| {
                let words: Vec<&str> = (0..rng.gen_range(2..=4)).map(|_| vocab.word(rng)).collect();
                match i % 3 {
                    0 => format!("How much does {} cost?", words.join(" ")),
                    1 => format!("Do you have {}?", words.join(" and ")),
                    _ => format!("{} please", words.join(" ")),
                }
            })
            .collect();
        let mut latency = Vec::with_capacity(self.searches);
        let mut first_ms = 0.0;
        let mut answered = 0;
        let mut hits = 0;
        let mut bytes = 0;
        let cpu_before = self.server_ticks();
        let mut measured_from = Instant::now();
        for (i, q) in questions.iter().enumerate() {
            if i == 5 {
                measured_from = Instant::now();
            }
            let path = format!(
                "/api/knowledge/search?q={}",
                form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
            );
            let t = Instant::now();
            let response = self
                .api
                .client
                .get(format!("{}{path}", self.api.base))
                .bearer_auth(&self.api.key)
                .send()
                .await
                .map_err(|e| format!("GET {path}: {e}"))?;
            let status = response.status().as_u16();
            let body = response.bytes().await.map_err(|e| format!("GET {path}: {e}"))?;
            let took = t.elapsed();
            if status != 200 {
                return Err(format!("GET {path} answered {status}: {}", String::from_utf8_lossy(&body)));
            }
            if i == 0 {
                first_ms = took.as_secs_f64() * 1000.0;
            }
            if i >= 5 {
                latency.push(took.as_nanos() as u64);
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                answered += usize::from(!v["answer"].is_null());
                hits += v["hits"].as_array().map_or(0, Vec::len);
                bytes += body.len();
            }
        }
        let secs = measured_from.elapsed().as_secs_f64();
        let cpu_after = self.server_ticks();
        let s = summary(&latency);
        println!("## GET /api/knowledge/search over {chunks} chunks: {}", fmt_summary(&s));
        println!(
            "   first request (builds the bot's index) {first_ms:.1} ms; {answered} of {} answered, mean {:.1} hits, {:.1} KB a response",
            latency.len(),
            hits as f64 / latency.len().max(1) as f64,
            bytes as f64 / latency.len().max(1) as f64 / 1e3
        );
        result(
            "search",
            json!({
                "chunks": chunks, "latency_ms": s, "first_request_ms": round3(first_ms), "answered": answered,
                "mean_hits": round3(hits as f64 / latency.len().max(1) as f64),
                "mean_response_bytes": bytes / latency.len().max(1),
                "requests_per_sec": round1(latency.len() as f64 / secs),
                "server_cpu_pct": cpu_pct(cpu_after, cpu_before, secs),
            }),
        );
        Ok(())
    }
}
