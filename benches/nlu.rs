//! The built-in brain's understanding: accuracy on the held-out set, time per message, memory.
//!
//! ```text
//! cargo bench --bench nlu -- [--intents 200] [--examples-per-intent 25] [--rounds 20] [--seed 1]
//! ```
//!
//! 1. `accuracy`: the evaluation set of `tests/nlu/eval` scored as `frontdesk nlu evaluate`
//!    does (intent accuracy, macro-F1 and language detection per language).
//! 2. `latency`: the classifier trained on the built-in examples plus synthetic ones up to
//!    `--intents` intents' worth (`--examples-per-intent` each, phrases of 3–12 words drawn from
//!    a 3,000-word vocabulary with a skewed frequency, so the inverted index has long and short
//!    posting lists as real text does), then `understand` (masking with the demo practice's
//!    names, features, scoring, language) timed per message over the evaluation set's messages,
//!    `--rounds` times. Reported: training time, p50/p99/max per message.
//! 3. `memory`: the trained model's size as counted by `Classifier::approximate_bytes` (shared
//!    by every workspace), and the per-workspace part (the lexicon of names).
//!
//! Each phase prints a block and a `RESULT {json}` line.

use std::path::Path;
use std::time::Instant;

use frontdesk::brain::nlu::{eval, training_examples, Example, Intent, Lang, Nlu};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2).find(|w| w[0] == name).and_then(|w| w[1].parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn synthetic_word(rng: &mut StdRng) -> String {
    const SYLLABLES: [&str; 16] =
        ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "ver", "don", "pel", "qua", "zor", "bi", "fe", "gu", "ho"];
    let n = rng.gen_range(2..=4);
    (0..n).map(|_| SYLLABLES[rng.gen_range(0..SYLLABLES.len())]).collect()
}

fn main() {
    let intents = arg("--intents", 200) as usize;
    let per_intent = arg("--examples-per-intent", 25) as usize;
    let rounds = arg("--rounds", 20) as usize;
    let mut rng = StdRng::seed_from_u64(arg("--seed", 1));

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nlu/eval");
    let cases = eval::load(&dir).expect("the evaluation set");

    // 1. Accuracy with the shipped model.
    let report = eval::evaluate(&Nlu::shared(), &cases);
    println!("accuracy\n{}", eval::render(&report, false));
    let per_language: serde_json::Map<String, serde_json::Value> = report
        .per_language
        .iter()
        .map(|(lang, (n, accuracy, f1, detected))| {
            (
                lang.code().to_owned(),
                serde_json::json!({"cases": n, "accuracy": accuracy, "macro_f1": f1, "language": detected}),
            )
        })
        .collect();
    println!(
        "RESULT {}",
        serde_json::json!({"phase": "accuracy", "cases": report.cases, "accuracy": report.accuracy(), "macro_f1": report.macro_f1(), "per_language": per_language})
    );

    // 2. Latency with `intents` intents' worth of examples.
    let mut examples = training_examples();
    let built_in = examples.len();
    let vocabulary: Vec<String> = (0..3000).map(|_| synthetic_word(&mut rng)).collect();
    let extra_intents = intents.saturating_sub(Intent::ALL.len());
    for group in 0..extra_intents {
        // Each synthetic intent has its own few characteristic words, as a real one has.
        let own: Vec<&String> = (0..6).map(|_| &vocabulary[rng.gen_range(0..vocabulary.len())]).collect();
        for _ in 0..per_intent {
            let len = rng.gen_range(3..=12);
            let words: Vec<&str> = (0..len)
                .map(|_| {
                    if rng.gen_bool(0.4) {
                        own[rng.gen_range(0..own.len())].as_str()
                    } else {
                        // Skewed: low indices are far more frequent.
                        let r: f64 = rng.gen::<f64>();
                        vocabulary[((r * r * r) * vocabulary.len() as f64) as usize].as_str()
                    }
                })
                .collect();
            examples.push(Example {
                intent: Intent::ALL[group % Intent::ALL.len()],
                lang: Lang::En,
                text: words.join(" "),
            });
        }
    }
    let started = Instant::now();
    let nlu = Nlu::train(&examples);
    let training_ms = started.elapsed().as_secs_f64() * 1e3;
    let lexicon = eval::demo_lexicon();
    let mut samples = Vec::with_capacity(cases.len() * rounds);
    for _ in 0..rounds {
        for case in &cases {
            let started = Instant::now();
            let understood = nlu.understand(&case.text, None, &lexicon);
            samples.push(started.elapsed().as_secs_f64() * 1e6);
            std::hint::black_box(understood);
        }
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99, max) = (percentile(&samples, 0.5), percentile(&samples, 0.99), samples[samples.len() - 1]);
    println!(
        "latency\n  {} examples ({built_in} built in, {} synthetic, {intents} intents' worth), trained in {training_ms:.1} ms\n  understand per message over {} messages: p50 {p50:.0} µs, p99 {p99:.0} µs, max {max:.0} µs",
        examples.len(),
        examples.len() - built_in,
        samples.len()
    );
    println!(
        "RESULT {}",
        serde_json::json!({"phase": "latency", "examples": examples.len(), "intents": intents, "training_ms": training_ms, "messages": samples.len(), "p50_us": p50, "p99_us": p99, "max_us": max})
    );

    // 3. Memory.
    let shipped = Nlu::shared().classifier().approximate_bytes();
    let large = nlu.classifier().approximate_bytes();
    let lexicon_bytes = std::mem::size_of_val(&lexicon) + 3 * 64;
    println!(
        "memory\n  shipped model ({} examples): {:.1} MiB, shared by every workspace\n  with {intents} intents' worth: {:.1} MiB\n  per workspace: its lexicon of names, about {lexicon_bytes} bytes for the demo practice",
        Nlu::shared().classifier().examples(),
        shipped as f64 / 1048576.0,
        large as f64 / 1048576.0
    );
    println!(
        "RESULT {}",
        serde_json::json!({"phase": "memory", "shipped_bytes": shipped, "large_bytes": large, "lexicon_bytes": lexicon_bytes})
    );
}
