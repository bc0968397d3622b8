//! Unit tests of the flow engine with in-memory effects.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{Datelike, NaiveDate, Weekday};
use serde_json::{json, Value};

use super::definition::{self, AnswerSource, Flow, Problem};
use super::engine::{self, Effects, HttpCall, Run, Said, TurnOutput};

// ---------------------------------------------------------------------------------------------
// In-memory effects
// ---------------------------------------------------------------------------------------------

/// One thing the engine asked the world to do.
#[derive(Debug, Clone)]
enum Call {
    Answer(AnswerSource, String),
    Availability(String, NaiveDate, Option<String>),
    Book(Value),
    Lead(Value),
    Http(Value),
    Persist(Value),
}

impl Call {
    fn kind(&self) -> &'static str {
        match self {
            Call::Answer(..) => "answer",
            Call::Availability(..) => "availability",
            Call::Book(_) => "book",
            Call::Lead(_) => "lead",
            Call::Http(_) => "http",
            Call::Persist(_) => "persist",
        }
    }
}

const PARKING: &str = "There is free parking behind the building.";

/// Effects with a fixed today, a diary that is free on weekdays (except `full` days), a booking
/// desk where 09:00 is always taken, and a scripted outside endpoint.
struct Fake {
    today: NaiveDate,
    full: Vec<NaiveDate>,
    http: Result<Value, String>,
    fail_persist: bool,
    calls: Mutex<Vec<Call>>,
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a test date")
}

impl Fake {
    fn new() -> Self {
        // A Monday.
        Fake {
            today: day("2026-11-23"),
            full: Vec::new(),
            http: Ok(json!({})),
            fail_persist: false,
            calls: Mutex::default(),
        }
    }

    fn on(today: &str) -> Self {
        Fake { today: day(today), ..Fake::new() }
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.calls().iter().map(Call::kind).collect()
    }

    fn count(&self, kind: &str) -> usize {
        self.kinds().iter().filter(|k| **k == kind).count()
    }

    fn persisted(&self) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Persist(v) => Some(v),
                _ => None,
            })
            .collect()
    }

    fn booked(&self) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Book(v) => Some(v),
                _ => None,
            })
            .collect()
    }

    fn http_calls(&self) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Http(v) => Some(v),
                _ => None,
            })
            .collect()
    }

    fn questions(&self) -> Vec<(AnswerSource, String)> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Answer(source, question) => Some((source, question)),
                _ => None,
            })
            .collect()
    }

    fn looked_at(&self) -> Vec<NaiveDate> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Availability(_, date, _) => Some(date),
                _ => None,
            })
            .collect()
    }
}

#[async_trait]
impl Effects for Fake {
    fn today(&self) -> NaiveDate {
        self.today
    }

    async fn answer(&self, source: AnswerSource, question: &str, _variables: &Value) -> Option<Said> {
        self.record(Call::Answer(source, question.to_owned()));
        question.to_lowercase().contains("parking").then(|| Said {
            text: PARKING.to_owned(),
            metadata: Some(json!({ "citations": [{ "title": "Visiting us" }] })),
            handoff: None,
        })
    }

    async fn availability(&self, service: &str, date: NaiveDate, doctor: Option<&str>) -> Value {
        self.record(Call::Availability(service.to_owned(), date, doctor.map(str::to_owned)));
        let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
        if weekend || self.full.contains(&date) {
            json!({ "slots": [] })
        } else {
            json!({ "slots": [
                { "time": "09:00", "date": date.to_string(), "doctor": doctor },
                { "time": "09:30", "date": date.to_string(), "doctor": doctor },
            ]})
        }
    }

    async fn book(&self, arguments: Value) -> Value {
        self.record(Call::Book(arguments.clone()));
        if arguments["time"] == "09:00" {
            json!({ "error": "that time is taken" })
        } else {
            json!({ "booked": { "id": 7, "date": arguments["date"], "time": arguments["time"] } })
        }
    }

    async fn lead(&self, variables: &Value) -> Result<bool, String> {
        self.record(Call::Lead(variables.get("contact").cloned().unwrap_or(Value::Null)));
        Ok(true)
    }

    async fn http(&self, call: HttpCall) -> Result<Value, String> {
        self.record(Call::Http(serde_json::to_value(&call).expect("an HTTP call serialises")));
        self.http.clone()
    }

    async fn persist(&self, variables: &Value) -> Result<(), String> {
        self.record(Call::Persist(variables.clone()));
        if self.fail_persist {
            Err("the disk is full".into())
        } else {
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn flow(document: Value) -> Flow {
    definition::parse(&document).unwrap_or_else(|problems| panic!("the test flow does not read: {problems:#?}"))
}

/// Conversation variables with a new run in them, as the live brain sets them up.
fn fresh(mut variables: Value) -> Value {
    if !variables.is_object() {
        variables = json!({});
    }
    let run = Run { flow_id: 1, version_id: 11, version: 1, started_at: 1, ..Run::default() };
    variables["flow_run"] = serde_json::to_value(run).unwrap();
    variables
}

fn run_of(variables: &Value) -> Run {
    Run::of(variables).expect("the variables hold a run")
}

async fn play(flow: &Flow, variables: &mut Value, inputs: &[&str], fx: &Fake) -> Vec<TurnOutput> {
    let mut outs = Vec::new();
    for input in inputs {
        outs.push(engine::turn(flow, variables, input, fx).await);
    }
    outs
}

/// A flow of one question `q` (its fields merged from `question`) storing `v`, then `done`.
fn question_flow(question: Value) -> Flow {
    let mut q = json!({ "id": "q", "type": "question", "text": "Your answer?", "variable": "v", "next": "done" });
    for (key, value) in question.as_object().expect("question fields") {
        q[key] = value.clone();
    }
    flow(json!({
        "start": "q",
        "blocks": [
            q,
            { "id": "done", "type": "message", "text": "Got {{v}}." },
            { "id": "gave_up", "type": "message", "text": "Let's move on." }
        ]
    }))
}

/// Starts the question flow, gives `reply`, and returns the value stored (asserting it was taken).
async fn accepts(question: Value, reply: &str, fx: &Fake) -> Value {
    let flow = question_flow(question);
    let mut vars = fresh(json!({}));
    let outs = play(&flow, &mut vars, &["hi", reply], fx).await;
    assert_eq!(outs[0].texts, vec!["Your answer?"]);
    let run = run_of(&vars);
    assert_eq!(run.waiting, None, "{reply:?} should be accepted; said {:?}", outs[1].texts);
    assert_eq!(run.ended.as_deref(), Some("end"));
    let stored = engine::lookup(&vars, "v").cloned().expect("the answer is stored");
    assert_eq!(outs[1].texts, vec![format!("Got {}.", engine::say(&stored))]);
    stored
}

/// Starts the question flow, gives `reply`, asserts it was refused, and returns the retry text.
async fn rejects(question: Value, reply: &str, fx: &Fake) -> String {
    let flow = question_flow(question);
    let mut vars = fresh(json!({}));
    let outs = play(&flow, &mut vars, &["hi", reply], fx).await;
    let run = run_of(&vars);
    assert_eq!(run.waiting.as_deref(), Some("q"), "{reply:?} should be refused; stored {:?}", vars.get("flow"));
    assert_eq!(run.retries, 1);
    assert!(engine::lookup(&vars, "v").is_none(), "nothing is stored for {reply:?}");
    let texts = &outs[1].texts;
    assert_eq!(texts.len(), 2, "retry then the question: {texts:?}");
    assert_eq!(texts[1], "Your answer?");
    assert!(!texts[0].trim().is_empty() && texts[0] != texts[1]);
    texts[0].clone()
}

fn problems(document: Value) -> Vec<Problem> {
    definition::parse(&document).expect_err("the flow should be refused")
}

fn problem<'a>(problems: &'a [Problem], block: &str, field: &str) -> &'a Problem {
    problems
        .iter()
        .find(|p| p.block.as_deref() == Some(block) && p.field == field)
        .unwrap_or_else(|| panic!("no problem for block `{block}`, field `{field}` in {problems:#?}"))
}

// ---------------------------------------------------------------------------------------------
// Variables and templates
// ---------------------------------------------------------------------------------------------

#[test]
fn lookup_reads_namespaces_own_variables_and_list_items() {
    let vars = json!({
        "contact": { "email": "a@b.co" },
        "system": { "timezone": "Europe/Paris" },
        "flow": { "name": "Ann", "slots": { "times": ["09:00", "09:30"] }, "gone": null },
        "name": "not a flow variable"
    });
    assert_eq!(engine::lookup(&vars, "contact.email"), Some(&json!("a@b.co")));
    assert_eq!(engine::lookup(&vars, "system.timezone"), Some(&json!("Europe/Paris")));
    assert_eq!(engine::lookup(&vars, "name"), Some(&json!("Ann")));
    assert_eq!(engine::lookup(&vars, "flow.name"), Some(&json!("Ann")));
    assert_eq!(engine::lookup(&vars, " slots.times.1 "), Some(&json!("09:30")));
    assert_eq!(engine::lookup(&vars, "slots.times.2"), None);
    assert_eq!(engine::lookup(&vars, "slots.times.x"), None);
    assert_eq!(engine::lookup(&vars, "gone"), None, "null reads as unset");
    assert_eq!(engine::lookup(&vars, "contact.phone"), None);
}

#[test]
fn assign_writes_own_variables_under_flow_and_namespaced_ones_in_place() {
    let mut vars = Value::Null;
    engine::assign(&mut vars, "budget", json!(1200));
    engine::assign(&mut vars, "contact.email", json!("a@b.co"));
    engine::assign(&mut vars, "conversation.topic", json!("prices"));
    assert_eq!(
        vars,
        json!({ "flow": { "budget": 1200 }, "contact": { "email": "a@b.co" }, "conversation": { "topic": "prices" } })
    );
    assert_eq!(engine::lookup(&vars, "budget"), Some(&json!(1200)));
}

#[test]
fn fill_replaces_variables_and_leaves_unknown_ones_empty() {
    let vars = json!({ "contact": { "name": "Ann" }, "flow": { "n": 3, "times": ["09:00", "09:30"] } });
    assert_eq!(engine::fill("Hi {{contact.name}}, {{n}} left", &vars), "Hi Ann, 3 left");
    assert_eq!(engine::fill("Free: {{times}}.", &vars), "Free: 09:00, 09:30.");
    assert_eq!(engine::fill("Hi {{ contact.name }}{{nobody}}!", &vars), "Hi Ann!");
    assert_eq!(engine::fill("open {{contact.name", &vars), "open {{contact.name");
}

#[test]
fn fill_value_keeps_the_type_of_a_whole_template() {
    let vars = json!({ "flow": { "n": 1200, "tags": ["a", "b"], "booking": { "id": 7 } } });
    assert_eq!(engine::fill_value(&json!("{{n}}"), &vars), json!(1200));
    assert_eq!(engine::fill_value(&json!(" {{n}} "), &vars), json!(1200));
    assert_eq!(engine::fill_value(&json!("{{tags}}"), &vars), json!(["a", "b"]));
    assert_eq!(engine::fill_value(&json!("{{booking}}"), &vars), json!({ "id": 7 }));
    assert_eq!(engine::fill_value(&json!("{{missing}}"), &vars), Value::Null);
    assert_eq!(engine::fill_value(&json!("{{n}} dollars"), &vars), json!("1200 dollars"));
    assert_eq!(engine::fill_value(&json!("{{n}}{{n}}"), &vars), json!("12001200"));
    assert_eq!(
        engine::fill_value(&json!({ "list": ["{{n}}", "x{{booking.id}}"], "flag": true }), &vars),
        json!({ "list": [1200, "x7"], "flag": true })
    );
}

#[test]
fn pick_reads_a_choice_its_number_or_the_one_choice_mentioned() {
    let choices: Vec<String> = ["Morning", "Afternoon", "Evening"].map(String::from).to_vec();
    assert_eq!(engine::pick(" afternoon ", &choices), Some(1));
    assert_eq!(engine::pick("3", &choices), Some(2));
    assert_eq!(engine::pick("1.", &choices), Some(0));
    assert_eq!(engine::pick("the evening would suit me", &choices), Some(2));
    assert_eq!(engine::pick("0", &choices), None);
    assert_eq!(engine::pick("4", &choices), None);
    assert_eq!(engine::pick("morning or evening", &choices), None, "two choices mentioned");
    assert_eq!(engine::pick("   ", &choices), None);
}

#[test]
fn looks_like_question_spots_questions() {
    assert!(engine::looks_like_question("is there parking"));
    assert!(engine::looks_like_question("Do you take Aetna"));
    assert!(engine::looks_like_question("parking?"));
    assert!(!engine::looks_like_question("my email is a@b.co"));
    assert!(!engine::looks_like_question("tomorrow at 3"));
}

// ---------------------------------------------------------------------------------------------
// Messages and questions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn message_then_question_waits_and_each_answer_goes_to_its_variable() {
    let flow = flow(json!({
        "start": "hi",
        "blocks": [
            { "id": "hi", "type": "message", "text": "Hello {{contact.name}}, welcome.", "next": "name" },
            { "id": "name", "type": "question", "text": "What should we call you?", "variable": "nickname", "next": "email" },
            { "id": "email", "type": "question", "text": "And your email, {{nickname}}?", "variable": "contact.email", "validate": "email", "next": "bye" },
            { "id": "bye", "type": "message", "text": "Thanks {{nickname}}, we'll write to {{contact.email}}." }
        ]
    }));
    let fx = Fake::new();
    let mut vars = fresh(json!({ "contact": { "name": "Ann" } }));

    let out = engine::turn(&flow, &mut vars, "hello", &fx).await;
    assert_eq!(out.texts, vec!["Hello Ann, welcome.", "What should we call you?"]);
    assert!(out.quick_replies.is_empty());
    let run = run_of(&vars);
    assert_eq!(run.waiting.as_deref(), Some("name"));
    assert_eq!(run.ended, None);
    assert_eq!(engine::lookup(&vars, "nickname"), None);

    let out = engine::turn(&flow, &mut vars, "Annie", &fx).await;
    assert_eq!(out.texts, vec!["And your email, Annie?"]);
    assert_eq!(vars["flow"]["nickname"], "Annie");
    assert_eq!(run_of(&vars).waiting.as_deref(), Some("email"));
    assert!(vars["contact"].get("email").is_none());

    let out = engine::turn(&flow, &mut vars, "It's Ann@Example.COM", &fx).await;
    assert_eq!(vars["contact"]["email"], "ann@example.com");
    assert!(vars["flow"].get("email").is_none(), "a contact field is not a flow variable");
    assert_eq!(out.texts, vec!["Thanks Annie, we'll write to ann@example.com."]);
    let run = run_of(&vars);
    assert_eq!(run.waiting, None);
    assert_eq!(run.ended.as_deref(), Some("end"));

    // An ended run does nothing more.
    let before = vars.clone();
    let out = engine::turn(&flow, &mut vars, "hello?", &fx).await;
    assert!(out.texts.is_empty() && out.trace.is_empty());
    assert_eq!(vars, before);
}

#[tokio::test]
async fn a_turn_without_a_run_does_nothing() {
    let flow = question_flow(json!({}));
    let fx = Fake::new();
    let mut vars = json!({ "contact": { "name": "Ann" } });
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert!(out.texts.is_empty());
    assert_eq!(vars, json!({ "contact": { "name": "Ann" } }));
    assert!(fx.calls().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn text_answers_are_trimmed_and_blank_ones_refused() {
    let fx = Fake::new();
    assert_eq!(accepts(json!({}), "  blue  ", &fx).await, json!("blue"));
    rejects(json!({}), "   ", &fx).await;
}

#[tokio::test]
async fn email_answers_are_normalised() {
    let fx = Fake::new();
    let q = json!({ "validate": "email" });
    assert_eq!(accepts(q.clone(), "My email is Jo.Smith@Example.COM.", &fx).await, json!("jo.smith@example.com"));
    assert_eq!(accepts(q.clone(), "ANN@b.co", &fx).await, json!("ann@b.co"));
    rejects(q.clone(), "jo at example dot com", &fx).await;
    rejects(q, "jo@example", &fx).await;
}

#[tokio::test]
async fn phone_answers_are_normalised() {
    let fx = Fake::new();
    let q = json!({ "validate": "phone" });
    assert_eq!(accepts(q.clone(), "+1 (555) 123-4567", &fx).await, json!("+15551234567"));
    assert_eq!(accepts(q.clone(), "555.123.4567", &fx).await, json!("5551234567"));
    rejects(q.clone(), "12", &fx).await;
    rejects(q, "call me maybe", &fx).await;
}

#[tokio::test]
async fn number_answers_become_json_numbers() {
    let fx = Fake::new();
    let q = json!({ "validate": "number" });
    let budget = accepts(q.clone(), "$1,200", &fx).await;
    assert_eq!(budget, json!(1200));
    assert!(budget.is_i64(), "a whole number is stored as an integer: {budget:?}");
    assert_eq!(accepts(q.clone(), "2.5", &fx).await, json!(2.5));
    assert_eq!(accepts(q.clone(), "15%", &fx).await, json!(15));
    rejects(q.clone(), "a lot", &fx).await;
    rejects(q, "inf", &fx).await;
}

#[tokio::test]
async fn date_answers_are_read_relative_to_today() {
    let q = json!({ "validate": "date" });
    let fx = Fake::new();
    let tomorrow = fx.today.succ_opt().unwrap().format("%Y-%m-%d").to_string();
    assert_eq!(accepts(q.clone(), "tomorrow", &fx).await, json!(tomorrow));
    assert_eq!(accepts(q.clone(), "2026-12-01", &fx).await, json!("2026-12-01"));
    // today() decides, not the clock.
    let fx = Fake::on("2027-02-28");
    assert_eq!(accepts(q.clone(), "tomorrow", &fx).await, json!("2027-03-01"));
    rejects(q.clone(), "whenever suits", &fx).await;
    rejects(q, "2026-13-40", &fx).await;
}

#[tokio::test]
async fn time_answers_are_stored_as_hh_mm() {
    let fx = Fake::new();
    let q = json!({ "validate": "time" });
    assert_eq!(accepts(q.clone(), "3pm", &fx).await, json!("15:00"));
    assert_eq!(accepts(q.clone(), "10:30", &fx).await, json!("10:30"));
    rejects(q, "soon", &fx).await;
}

#[tokio::test]
async fn choice_answers_by_text_number_or_mention() {
    let fx = Fake::new();
    let q = json!({ "validate": "choice", "choices": ["Morning", "Afternoon", "Evening"] });
    assert_eq!(accepts(q.clone(), "AFTERNOON", &fx).await, json!("Afternoon"));
    assert_eq!(accepts(q.clone(), "3", &fx).await, json!("Evening"));
    assert_eq!(accepts(q.clone(), "the morning would be best", &fx).await, json!("Morning"));
    rejects(q.clone(), "5", &fx).await;
    rejects(q.clone(), "morning or evening", &fx).await;

    // The choices are offered as buttons.
    let flow = question_flow(q);
    let mut vars = fresh(json!({}));
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(out.quick_replies, vec!["Morning", "Afternoon", "Evening"]);
}

#[tokio::test]
async fn choices_from_a_variable_are_offered_and_accepted() {
    let fx = Fake::new();
    let flow = flow(json!({
        "start": "q",
        "blocks": [
            { "id": "q", "type": "question", "text": "Which time?", "variable": "time", "validate": "choice",
              "choices": ["Any"], "choices_from": "slots.times", "next": "done" },
            { "id": "done", "type": "message", "text": "{{time}} it is." }
        ]
    }));
    let mut vars = fresh(json!({ "flow": { "slots": { "times": ["09:00", "09:30"] } } }));
    let outs = play(&flow, &mut vars, &["hi", "3"], &fx).await;
    assert_eq!(outs[0].quick_replies, vec!["Any", "09:00", "09:30"]);
    assert_eq!(outs[1].texts, vec!["09:30 it is."]);
    assert_eq!(vars["flow"]["time"], "09:30");
}

#[tokio::test]
async fn an_invalid_answer_gets_the_retry_text_and_the_question_again() {
    let fx = Fake::new();
    let flow = question_flow(json!({ "validate": "email", "retry": "Sorry {{contact.name}}, that's not an email." }));
    let mut vars = fresh(json!({ "contact": { "name": "Ann" } }));
    let outs = play(&flow, &mut vars, &["hi", "no idea", "still no"], &fx).await;
    assert_eq!(outs[1].texts, vec!["Sorry Ann, that's not an email.", "Your answer?"]);
    assert_eq!(outs[2].texts, vec!["Sorry Ann, that's not an email.", "Your answer?"]);
    let run = run_of(&vars);
    assert_eq!(run.waiting.as_deref(), Some("q"));
    assert_eq!(run.retries, 2);
    // A valid answer after retries is still taken.
    let out = engine::turn(&flow, &mut vars, "ann@b.co", &fx).await;
    assert_eq!(out.texts, vec!["Got ann@b.co."]);
    assert_eq!(run_of(&vars).retries, 0);
}

#[tokio::test]
async fn the_default_retry_text_is_said_when_the_block_has_none() {
    let fx = Fake::new();
    let number = rejects(json!({ "validate": "number" }), "lots", &fx).await;
    let email = rejects(json!({ "validate": "email" }), "lots", &fx).await;
    assert_ne!(number, email, "each kind says what it wants");
}

#[tokio::test]
async fn too_many_invalid_answers_follow_on_invalid() {
    let fx = Fake::new();
    let flow = question_flow(json!({ "validate": "number", "max_retries": 1, "on_invalid": "gave_up" }));
    let mut vars = fresh(json!({}));
    let outs = play(&flow, &mut vars, &["hi", "lots", "heaps"], &fx).await;
    assert_eq!(outs[1].texts.len(), 2, "the first invalid answer is tolerated");
    assert_eq!(outs[2].texts, vec!["Let's move on."]);
    let run = run_of(&vars);
    assert_eq!(run.waiting, None);
    assert_eq!(run.retries, 0);
    assert_eq!(run.ended.as_deref(), Some("end"));
    assert!(engine::lookup(&vars, "v").is_none());
}

#[tokio::test]
async fn max_retries_zero_gives_up_at_the_first_invalid_answer() {
    let fx = Fake::new();
    let flow = question_flow(json!({ "validate": "number", "max_retries": 0, "on_invalid": "gave_up" }));
    let mut vars = fresh(json!({}));
    let outs = play(&flow, &mut vars, &["hi", "lots"], &fx).await;
    assert_eq!(outs[1].texts, vec!["Let's move on."]);
}

#[tokio::test]
async fn too_many_invalid_answers_without_on_invalid_end_the_run() {
    let fx = Fake::new();
    let flow = question_flow(json!({ "validate": "number" }));
    let mut vars = fresh(json!({}));
    // Three invalid answers are tolerated by default; the fourth ends the run.
    let outs = play(&flow, &mut vars, &["hi", "a", "b", "c"], &fx).await;
    for out in &outs[1..] {
        assert_eq!(out.texts.last().map(String::as_str), Some("Your answer?"));
    }
    assert_eq!(run_of(&vars).waiting.as_deref(), Some("q"));
    let out = engine::turn(&flow, &mut vars, "d", &fx).await;
    assert!(out.texts.is_empty(), "{:?}", out.texts);
    let run = run_of(&vars);
    assert_eq!(run.ended.as_deref(), Some("invalid_answers"));
    assert_eq!(run.waiting, None);
}

// ---------------------------------------------------------------------------------------------
// Buttons
// ---------------------------------------------------------------------------------------------

fn buttons_flow() -> Flow {
    flow(json!({
        "start": "menu",
        "blocks": [
            { "id": "menu", "type": "buttons", "text": "How can we help?", "variable": "topic",
              "options": [
                  { "label": "Book a visit", "value": "booking", "next": "book_msg" },
                  { "label": "Prices", "value": { "kind": "prices", "page": 2 } },
                  { "label": "Something else" }
              ],
              "retry": "Please tap a button.", "max_retries": 1, "on_invalid": "other_msg",
              "next": "other_msg" },
            { "id": "book_msg", "type": "message", "text": "Let's book." },
            { "id": "other_msg", "type": "message", "text": "Topic: {{topic}}." }
        ]
    }))
}

#[tokio::test]
async fn buttons_store_the_option_value_and_follow_its_next() {
    let flow = buttons_flow();
    let fx = Fake::new();

    let mut vars = fresh(json!({}));
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(out.texts, vec!["How can we help?"]);
    assert_eq!(out.quick_replies, vec!["Book a visit", "Prices", "Something else"]);
    assert_eq!(run_of(&vars).waiting.as_deref(), Some("menu"));
    let out = engine::turn(&flow, &mut vars, "book a visit", &fx).await;
    assert_eq!(vars["flow"]["topic"], "booking");
    assert_eq!(out.texts, vec!["Let's book."]);
    assert_eq!(run_of(&vars).waiting, None);

    let mut vars = fresh(json!({}));
    let outs = play(&flow, &mut vars, &["hi", "2"], &fx).await;
    assert_eq!(vars["flow"]["topic"], json!({ "kind": "prices", "page": 2 }));
    assert_eq!(outs[1].texts.len(), 1);
    assert!(outs[1].texts[0].starts_with("Topic: "), "the block's next: {:?}", outs[1].texts);

    let mut vars = fresh(json!({}));
    let outs = play(&flow, &mut vars, &["hi", "Something else"], &fx).await;
    assert_eq!(vars["flow"]["topic"], "Something else", "the label is the default value");
    assert_eq!(outs[1].texts, vec!["Topic: Something else."]);
}

#[tokio::test]
async fn buttons_refuse_other_replies_and_give_up_after_their_retries() {
    let flow = buttons_flow();
    let fx = Fake::new();
    let mut vars = fresh(json!({}));
    let outs = play(&flow, &mut vars, &["hi", "banana"], &fx).await;
    assert_eq!(outs[1].texts, vec!["Please tap a button.", "How can we help?"]);
    assert_eq!(outs[1].quick_replies, vec!["Book a visit", "Prices", "Something else"]);
    assert_eq!(run_of(&vars).waiting.as_deref(), Some("menu"));
    let out = engine::turn(&flow, &mut vars, "apple", &fx).await;
    assert_eq!(out.texts, vec!["Topic: ."], "on_invalid runs with nothing stored");
    assert!(engine::lookup(&vars, "topic").is_none());
}

// ---------------------------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------------------------

/// Runs a condition block with `rule` (leading to `yes`, else `no`) over `variables`.
async fn branch(mut rule: Value, variables: Value) -> String {
    rule["next"] = json!("yes");
    let flow = flow(json!({
        "start": "c",
        "blocks": [
            { "id": "c", "type": "condition", "rules": [rule], "else": "no" },
            { "id": "yes", "type": "message", "text": "yes" },
            { "id": "no", "type": "message", "text": "no" }
        ]
    }));
    let fx = Fake::new();
    let mut vars = fresh(variables);
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(out.texts.len(), 1, "{:?}", out.texts);
    out.texts[0].clone()
}

/// Whether one check holds over the flow's own variables `own`.
async fn holds(check: Value, own: Value) -> bool {
    branch(json!({ "when": [check] }), json!({ "flow": own })).await == "yes"
}

#[tokio::test]
async fn condition_equals_ignores_case_and_compares_numbers_as_numbers() {
    let check = json!({ "var": "plan", "op": "equals", "value": "Gold" });
    assert!(holds(check.clone(), json!({ "plan": " gold " })).await);
    assert!(!holds(check.clone(), json!({ "plan": "silver" })).await);
    assert!(!holds(check, json!({})).await, "an unset variable equals nothing");

    let check = json!({ "var": "budget", "op": "equals", "value": 1200 });
    assert!(holds(check.clone(), json!({ "budget": "1,200" })).await);
    assert!(holds(check.clone(), json!({ "budget": 1200.0 })).await);
    assert!(!holds(check, json!({ "budget": 1201 })).await);

    // The expected value is a template too.
    let check = json!({ "var": "a", "op": "equals", "value": "{{b}}" });
    assert!(holds(check.clone(), json!({ "a": "X", "b": "x" })).await);
    assert!(!holds(check, json!({ "a": "X", "b": "y" })).await);
}

#[tokio::test]
async fn condition_not_equals() {
    let check = json!({ "var": "plan", "op": "not_equals", "value": "Gold" });
    assert!(holds(check.clone(), json!({ "plan": "silver" })).await);
    assert!(!holds(check.clone(), json!({ "plan": "GOLD" })).await);
    assert!(holds(check, json!({})).await, "an unset variable is not equal");
    let check = json!({ "var": "n", "op": "not_equals", "value": "10" });
    assert!(!holds(check.clone(), json!({ "n": 10.0 })).await);
    assert!(holds(check, json!({ "n": 11 })).await);
}

#[tokio::test]
async fn condition_contains_in_text_and_in_lists() {
    let check = json!({ "var": "note", "op": "contains", "value": "parking" });
    assert!(holds(check.clone(), json!({ "note": "I need PARKING please" })).await);
    assert!(!holds(check, json!({ "note": "no car" })).await);

    let check = json!({ "var": "tags", "op": "contains", "value": "VIP" });
    assert!(holds(check.clone(), json!({ "tags": ["new", "vip"] })).await);
    assert!(!holds(check, json!({ "tags": ["vipx", "new"] })).await, "a list holds whole items");
}

#[tokio::test]
async fn condition_exists_and_not_exists() {
    let exists = json!({ "var": "contact.email", "op": "exists" });
    let absent = json!({ "var": "contact.email", "op": "not_exists" });
    for (contact, present) in [
        (json!({ "email": "a@b.co" }), true),
        (json!({ "email": "  " }), false),
        (json!({ "email": null }), false),
        (json!({}), false),
    ] {
        let vars = json!({ "contact": contact });
        assert_eq!(branch(json!({ "when": [exists] }), vars.clone()).await == "yes", present, "{vars}");
        assert_eq!(branch(json!({ "when": [absent] }), vars.clone()).await == "yes", !present, "{vars}");
    }
}

#[tokio::test]
async fn condition_orderings_compare_numbers_numerically() {
    let cases = [
        ("gt", json!("$1,500"), json!(1000), true),
        ("gt", json!(1000), json!(1000), false),
        ("gte", json!(1000), json!("1000"), true),
        ("gte", json!(999.5), json!(1000), false),
        ("lt", json!("900"), json!("1000"), true),
        ("lt", json!(1000), json!(1000), false),
        ("lte", json!(1000), json!(1000), true),
        ("lte", json!(1001), json!(1000), false),
        ("gt", json!("10"), json!("9"), true),
        // ISO dates compare as text.
        ("gt", json!("2026-12-01"), json!("2026-11-30"), true),
        ("lt", json!("2026-12-01"), json!("2026-11-30"), false),
    ];
    for (op, actual, expected, result) in cases {
        let check = json!({ "var": "x", "op": op, "value": expected });
        assert_eq!(holds(check, json!({ "x": actual })).await, result, "{actual} {op} {expected}");
    }
    let check = json!({ "var": "x", "op": "gt", "value": 1 });
    assert!(!holds(check, json!({})).await, "an unset variable is not greater");
}

#[tokio::test]
async fn condition_matches_a_regular_expression() {
    let check = json!({ "var": "code", "op": "matches", "value": "^[A-Z]{2}-\\d{4}$" });
    assert!(holds(check.clone(), json!({ "code": "AB-1234" })).await);
    assert!(!holds(check.clone(), json!({ "code": "ab-1234" })).await);
    assert!(!holds(check, json!({ "code": "AB-12345" })).await);
}

#[tokio::test]
async fn condition_rules_need_all_checks_unless_any() {
    let a = json!({ "var": "a", "op": "equals", "value": "x" });
    let b = json!({ "var": "b", "op": "equals", "value": "y" });
    let only_b = json!({ "flow": { "a": "nope", "b": "y" } });
    let both = json!({ "flow": { "a": "x", "b": "y" } });
    assert_eq!(branch(json!({ "when": [a, b] }), only_b.clone()).await, "no");
    assert_eq!(branch(json!({ "when": [a, b] }), both).await, "yes");
    assert_eq!(branch(json!({ "when": [a, b], "any": true }), only_b).await, "yes");
    assert_eq!(branch(json!({ "when": [a, b], "any": true }), json!({})).await, "no");
}

#[tokio::test]
async fn condition_takes_the_first_rule_that_holds_else_its_else_else_ends() {
    let flow = flow(json!({
        "start": "c",
        "blocks": [
            { "id": "c", "type": "condition", "rules": [
                { "when": [{ "var": "booking.id", "op": "exists" }], "next": "booked" },
                { "when": [{ "var": "slots.times.0", "op": "equals", "value": "09:00" }], "next": "early" },
                { "when": [{ "var": "slots.times.0", "op": "exists" }], "next": "later" }
            ] },
            { "id": "booked", "type": "message", "text": "booked" },
            { "id": "early", "type": "message", "text": "early" },
            { "id": "later", "type": "message", "text": "later" }
        ]
    }));
    let fx = Fake::new();
    let cases = [
        (json!({ "booking": { "id": 7 }, "slots": { "times": ["09:00"] } }), vec!["booked"]),
        (json!({ "slots": { "times": ["09:00"] } }), vec!["early"]),
        (json!({ "slots": { "times": ["14:00"] } }), vec!["later"]),
        (json!({}), vec![]),
    ];
    for (own, said) in cases {
        let mut vars = fresh(json!({ "flow": own }));
        let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
        assert_eq!(out.texts, said, "{own}");
        assert_eq!(run_of(&vars).ended.as_deref(), Some("end"));
    }
    // The trace says where the condition went.
    let mut vars = fresh(json!({ "flow": { "slots": { "times": ["14:00"] } } }));
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(out.trace[0]["next"], "later");
}

// ---------------------------------------------------------------------------------------------
// Set
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn set_fills_templates_and_a_whole_template_keeps_its_type() {
    let flow = flow(json!({
        "start": "s",
        "blocks": [
            { "id": "s", "type": "set", "variables": {
                "greeting": "Hi {{contact.name}}!",
                "total": "{{budget}}",
                "label": "{{budget}} dollars",
                "tags_copy": "{{tags}}",
                "fixed": 3,
                "nothing": "{{nobody}}",
                "conversation.topic": "{{plan}}"
            }, "next": "m" },
            { "id": "m", "type": "message", "text": "{{greeting}} Total {{total}}, {{label}}, {{tags_copy}}." }
        ]
    }));
    let fx = Fake::new();
    let mut vars =
        fresh(json!({ "contact": { "name": "Ann" }, "flow": { "budget": 1200, "tags": ["a", "b"], "plan": "gold" } }));
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    let own = &vars["flow"];
    assert_eq!(own["greeting"], "Hi Ann!");
    assert_eq!(own["total"], json!(1200));
    assert!(own["total"].is_number());
    assert_eq!(own["label"], "1200 dollars");
    assert_eq!(own["tags_copy"], json!(["a", "b"]));
    assert_eq!(own["fixed"], json!(3));
    assert_eq!(engine::lookup(&vars, "nothing"), None);
    assert_eq!(vars["conversation"]["topic"], "gold");
    assert_eq!(out.texts, vec!["Hi Ann! Total 1200, 1200 dollars, a, b."]);
}

// ---------------------------------------------------------------------------------------------
// Free answers
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn answer_blocks_answer_the_message_or_their_question_else_fall_back() {
    let flow = flow(json!({
        "start": "a",
        "blocks": [
            { "id": "a", "type": "answer", "source": "knowledge", "variable": "reply", "fallback": "No idea.", "next": "b" },
            { "id": "b", "type": "answer", "question": "What about {{topic}}?", "fallback": "I don't know about {{topic}}." }
        ]
    }));
    let fx = Fake::new();
    let mut vars = fresh(json!({ "flow": { "topic": "pets" } }));
    let out = engine::turn(&flow, &mut vars, "Where is parking?", &fx).await;
    assert_eq!(out.texts, vec![PARKING, "I don't know about pets."]);
    assert_eq!(vars["flow"]["reply"], PARKING);
    assert_eq!(out.citations, vec![json!({ "citations": [{ "title": "Visiting us" }] })]);
    assert_eq!(
        fx.questions(),
        vec![
            (AnswerSource::Knowledge, "Where is parking?".to_owned()),
            (AnswerSource::Model, "What about pets?".to_owned())
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Off-script questions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_question_instead_of_an_answer_is_answered_and_asked_again_without_a_retry() {
    let fx = Fake::new();
    let flow = question_flow(json!({ "validate": "email", "retry": "Not an email.", "max_retries": 1 }));
    let mut vars = fresh(json!({}));
    let outs = play(&flow, &mut vars, &["hi", "Is there parking?", "is there parking for bikes?"], &fx).await;
    for out in &outs[1..] {
        assert_eq!(out.texts, vec![PARKING, "Your answer?"]);
        assert_eq!(out.citations.len(), 1);
    }
    let run = run_of(&vars);
    assert_eq!(run.waiting.as_deref(), Some("q"));
    assert_eq!(run.retries, 0, "an answered question is not an invalid answer");
    assert_eq!(fx.questions()[0], (AnswerSource::Model, "Is there parking?".to_owned()));
    // With max_retries 1 one invalid answer is still tolerated.
    let out = engine::turn(&flow, &mut vars, "nope", &fx).await;
    assert_eq!(out.texts, vec!["Not an email.", "Your answer?"]);
    let out = engine::turn(&flow, &mut vars, "ann@b.co", &fx).await;
    assert_eq!(out.texts, vec!["Got ann@b.co."]);
}

#[tokio::test]
async fn an_unanswerable_question_counts_as_an_invalid_answer() {
    let fx = Fake::new();
    let retry = rejects(json!({ "validate": "email", "retry": "Not an email." }), "is it sunny?", &fx).await;
    assert_eq!(retry, "Not an email.");
    assert_eq!(fx.count("answer"), 1, "the brain was asked");
}

#[tokio::test]
async fn off_script_answers_can_be_turned_off() {
    let fx = Fake::new();
    let flow = flow(json!({
        "start": "q",
        "answer_off_script": false,
        "blocks": [{ "id": "q", "type": "question", "text": "Email?", "variable": "e", "validate": "email", "retry": "Not an email." }]
    }));
    let mut vars = fresh(json!({}));
    let outs = play(&flow, &mut vars, &["hi", "is there parking?"], &fx).await;
    assert_eq!(outs[1].texts, vec!["Not an email.", "Email?"]);
    assert_eq!(run_of(&vars).retries, 1);
    assert_eq!(fx.count("answer"), 0);
}

#[tokio::test]
async fn buttons_answer_a_question_and_offer_the_buttons_again() {
    let fx = Fake::new();
    let flow = buttons_flow();
    let mut vars = fresh(json!({}));
    let outs = play(&flow, &mut vars, &["hi", "do you have parking?"], &fx).await;
    assert_eq!(outs[1].texts, vec![PARKING, "How can we help?"]);
    assert_eq!(outs[1].quick_replies, vec!["Book a visit", "Prices", "Something else"]);
    assert_eq!(run_of(&vars).retries, 0);
}

#[tokio::test]
async fn a_free_text_question_takes_a_question_as_its_answer() {
    let fx = Fake::new();
    let stored = accepts(json!({}), "is there parking?", &fx).await;
    assert_eq!(stored, json!("is there parking?"));
    assert_eq!(fx.count("answer"), 0);
}

// ---------------------------------------------------------------------------------------------
// Availability and booking
// ---------------------------------------------------------------------------------------------

fn availability_flow(date: Option<&str>) -> Flow {
    let mut check = json!({ "id": "look", "type": "availability", "service": "{{service}}", "doctor": "{{doctor}}",
        "variable": "slots", "none": "full", "next": "pick" });
    if let Some(date) = date {
        check["date"] = json!(date);
    }
    flow(json!({
        "start": "look",
        "blocks": [
            check,
            { "id": "pick", "type": "question", "text": "On {{slots.date}}, which time?", "variable": "time",
              "validate": "choice", "choices_from": "slots.times", "next": "done" },
            { "id": "full", "type": "message", "text": "Nothing free." },
            { "id": "done", "type": "message", "text": "{{time}} it is." }
        ]
    }))
}

#[tokio::test]
async fn availability_on_a_named_date_offers_its_times() {
    let fx = Fake::new();
    let flow = availability_flow(Some("{{day}}"));
    let mut vars = fresh(json!({ "flow": { "service": "Cleaning", "day": "tomorrow" } }));
    let outs = play(&flow, &mut vars, &["hi", "2"], &fx).await;
    let tomorrow = fx.today.succ_opt().unwrap();
    assert_eq!(fx.calls().iter().filter(|c| c.kind() == "availability").count(), 1);
    match &fx.calls()[0] {
        Call::Availability(service, date, doctor) => {
            assert_eq!(service, "Cleaning");
            assert_eq!(*date, tomorrow);
            assert_eq!(*doctor, None, "an empty doctor is no doctor");
        }
        other => panic!("availability first, not {other:?}"),
    }
    assert_eq!(outs[0].texts, vec![format!("On {tomorrow}, which time?")]);
    assert_eq!(outs[0].quick_replies, vec!["09:00", "09:30"]);
    assert_eq!(vars["flow"]["slots"]["date"], tomorrow.to_string());
    assert_eq!(vars["flow"]["slots"]["times"], json!(["09:00", "09:30"]));
    assert_eq!(vars["flow"]["slots"]["slots"].as_array().map(Vec::len), Some(2));
    assert_eq!(outs[1].texts, vec!["09:30 it is."]);
}

#[tokio::test]
async fn availability_with_nothing_free_follows_none() {
    let fx = Fake::new();
    // A Saturday.
    let flow = availability_flow(Some("2026-11-28"));
    let mut vars = fresh(json!({ "flow": { "service": "Cleaning", "doctor": "Dr Lee" } }));
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(out.texts, vec!["Nothing free."]);
    assert_eq!(vars["flow"]["slots"]["times"], json!([]));
    assert_eq!(fx.looked_at(), vec![day("2026-11-28")]);
    assert!(matches!(&fx.calls()[0], Call::Availability(_, _, Some(doctor)) if doctor == "Dr Lee"));
    assert_eq!(run_of(&vars).ended.as_deref(), Some("end"));
}

#[tokio::test]
async fn availability_with_a_date_that_does_not_read_follows_none_without_looking() {
    let fx = Fake::new();
    let flow = availability_flow(Some("whenever"));
    let mut vars = fresh(json!({ "flow": { "service": "Cleaning" } }));
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(out.texts, vec!["Nothing free."]);
    assert!(fx.looked_at().is_empty());
    assert!(out.trace[0]["error"].is_string());
}

#[tokio::test]
async fn availability_without_a_date_finds_the_first_free_day() {
    let mut fx = Fake::new();
    let today = fx.today;
    let next = |d: NaiveDate| d.succ_opt().unwrap();
    fx.full = vec![today, next(today)];
    let flow = availability_flow(None);
    let mut vars = fresh(json!({ "flow": { "service": "Cleaning" } }));
    engine::turn(&flow, &mut vars, "hi", &fx).await;
    let first_free = next(next(today));
    assert_eq!(fx.looked_at(), vec![today, next(today), first_free]);
    assert_eq!(vars["flow"]["slots"]["date"], first_free.to_string());
    assert_eq!(run_of(&vars).waiting.as_deref(), Some("pick"));
}

fn book_flow(failed: bool) -> Flow {
    let mut book = json!({ "id": "book", "type": "book", "service": "Cleaning", "date": "{{date}}", "time": "{{time}}",
        "name": "{{contact.name}}", "email": "{{contact.email}}", "notes": "via {{channel}}",
        "variable": "booking", "next": "ok" });
    if failed {
        book["failed"] = json!("taken");
    }
    flow(json!({
        "start": "book",
        "blocks": [
            book,
            { "id": "ok", "type": "message", "text": "Booked #{{booking.id}} on {{booking.date}} at {{booking.time}}." },
            { "id": "taken", "type": "message", "text": "Sorry: {{booking.error}}." }
        ]
    }))
}

#[tokio::test]
async fn booking_stores_the_booking_and_goes_on() {
    let fx = Fake::new();
    let flow = book_flow(true);
    let mut vars = fresh(json!({
        "contact": { "name": "Ann", "email": "ann@b.co" },
        "flow": { "date": "2026-11-24", "time": "10:00", "channel": "web" }
    }));
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(
        fx.booked(),
        vec![json!({
            "service": "Cleaning", "date": "2026-11-24", "time": "10:00", "name": "Ann",
            "email": "ann@b.co", "phone": null, "doctor": null, "notes": "via web"
        })]
    );
    assert_eq!(vars["flow"]["booking"], json!({ "id": 7, "date": "2026-11-24", "time": "10:00" }));
    assert_eq!(out.texts, vec!["Booked #7 on 2026-11-24 at 10:00."]);
}

#[tokio::test]
async fn a_failed_booking_follows_failed() {
    let fx = Fake::new();
    let flow = book_flow(true);
    let mut vars = fresh(
        json!({ "contact": { "name": "Ann", "email": "ann@b.co" }, "flow": { "date": "2026-11-24", "time": "09:00" } }),
    );
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(vars["flow"]["booking"], json!({ "error": "that time is taken" }));
    assert_eq!(out.texts, vec!["Sorry: that time is taken."]);
    assert_eq!(out.trace[0]["booked"], false);
}

#[tokio::test]
async fn a_failed_booking_without_failed_says_why_and_goes_on() {
    let fx = Fake::new();
    let flow = book_flow(false);
    let mut vars = fresh(
        json!({ "contact": { "name": "Ann", "email": "ann@b.co" }, "flow": { "date": "2026-11-24", "time": "09:00" } }),
    );
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(out.texts.first().map(String::as_str), Some("that time is taken"));
    assert_eq!(out.texts.len(), 2, "then the `next` block: {:?}", out.texts);
    assert!(out.texts[1].starts_with("Booked #"));
}

#[tokio::test]
async fn a_lead_block_fills_the_contact_saves_it_and_goes_on() {
    let fx = Fake::new();
    let flow = flow(json!({
        "start": "lead",
        "blocks": [
            { "id": "lead", "type": "lead", "fields": { "name": "{{full_name}}", "email": " {{work_email}} ", "phone": "{{tel}}" }, "next": "thanks" },
            { "id": "thanks", "type": "message", "text": "Thanks {{contact.name}}." }
        ]
    }));
    let mut vars = fresh(json!({ "flow": { "full_name": "Ann Lee", "work_email": "ann@b.co" } }));
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(vars["contact"], json!({ "name": "Ann Lee", "email": "ann@b.co" }), "empty fields are skipped");
    assert_eq!(out.texts, vec!["Thanks Ann Lee."]);
    let lead = fx.calls().into_iter().find_map(|c| match c {
        Call::Lead(contact) => Some(contact),
        _ => None,
    });
    assert_eq!(lead, Some(json!({ "name": "Ann Lee", "email": "ann@b.co" })));
    assert_eq!(out.trace[0]["lead"], true);
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

fn http_flow() -> Flow {
    flow(json!({
        "start": "call",
        "blocks": [
            { "id": "call", "type": "http", "method": "PUT", "url": "https://crm.example.com/people/{{contact.email}}",
              "headers": { "authorization": "Bearer {{token}}" },
              "body": { "email": "{{contact.email}}", "budget": "{{budget}}", "note": "budget {{budget}}" },
              "timeout_secs": 5,
              "save": { "crm_id": "/data/id", "contact.name": "/data/name", "raw": "", "absent": "/data/nope" },
              "failed": "oops", "next": "ok" },
            { "id": "ok", "type": "message", "text": "Saved {{crm_id}} for {{contact.name}}." },
            { "id": "oops", "type": "message", "text": "CRM down: {{last_error}}" }
        ]
    }))
}

#[tokio::test]
async fn http_success_saves_json_pointers() {
    let response = json!({ "data": { "id": 42, "name": "Ann" } });
    let fx = Fake { http: Ok(response.clone()), ..Fake::new() };
    let mut vars = fresh(json!({ "contact": { "email": "a@b.co" }, "flow": { "token": "t0k", "budget": 1200 } }));
    let out = engine::turn(&http_flow(), &mut vars, "hi", &fx).await;
    assert_eq!(
        fx.http_calls(),
        vec![json!({
            "method": "PUT",
            "url": "https://crm.example.com/people/a@b.co",
            "headers": [["authorization", "Bearer t0k"]],
            "body": { "email": "a@b.co", "budget": 1200, "note": "budget 1200" },
            "timeout_secs": 5
        })]
    );
    assert_eq!(vars["flow"]["crm_id"], json!(42));
    assert_eq!(vars["contact"]["name"], "Ann");
    assert_eq!(vars["flow"]["raw"], response);
    assert_eq!(engine::lookup(&vars, "absent"), None);
    assert_eq!(engine::lookup(&vars, "last_error"), None);
    assert_eq!(out.texts, vec!["Saved 42 for Ann."]);
}

#[tokio::test]
async fn http_failure_follows_failed_and_sets_last_error() {
    let fx = Fake { http: Err("the endpoint answered HTTP 500".into()), ..Fake::new() };
    let mut vars = fresh(json!({ "contact": { "email": "a@b.co" }, "flow": { "token": "t0k" } }));
    let out = engine::turn(&http_flow(), &mut vars, "hi", &fx).await;
    assert_eq!(vars["flow"]["last_error"], "the endpoint answered HTTP 500");
    assert_eq!(engine::lookup(&vars, "crm_id"), None);
    assert_eq!(out.texts, vec!["CRM down: the endpoint answered HTTP 500"]);
    assert_eq!(out.trace[0]["ok"], false);
}

#[tokio::test]
async fn http_failure_without_failed_goes_on_to_next() {
    let fx = Fake { http: Err("timed out".into()), ..Fake::new() };
    let flow = flow(json!({
        "start": "call",
        "blocks": [
            { "id": "call", "type": "http", "url": "https://hooks.example.com/x", "next": "ok" },
            { "id": "ok", "type": "message", "text": "Carrying on ({{last_error}})." }
        ]
    }));
    let mut vars = fresh(json!({}));
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(out.texts, vec!["Carrying on (timed out)."]);
    let call = &fx.http_calls()[0];
    assert_eq!(call["method"], "POST", "POST by default");
    assert_eq!(call["timeout_secs"], 10, "10 seconds by default");
    assert_eq!(call["body"], Value::Null);
}

// ---------------------------------------------------------------------------------------------
// Hand-over
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn handoff_with_next_resumes_there_on_the_next_turn() {
    let fx = Fake::new();
    let flow = flow(json!({
        "start": "desk",
        "blocks": [
            { "id": "desk", "type": "handoff", "text": "Passing you to {{agent}}.", "reason": "{{why}}", "next": "back" },
            { "id": "back", "type": "message", "text": "Welcome back.", "next": "q" },
            { "id": "q", "type": "question", "text": "Anything else?", "variable": "more" }
        ]
    }));
    let mut vars = fresh(json!({ "flow": { "agent": "Sam", "why": "asked for a person" } }));
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(out.texts, vec!["Passing you to Sam."]);
    assert_eq!(out.handoff.as_deref(), Some("asked for a person"));
    let run = run_of(&vars);
    assert_eq!(run.resume.as_deref(), Some("back"));
    assert_eq!(run.waiting, None);
    assert_eq!(run.ended, None);

    let out = engine::turn(&flow, &mut vars, "I'm back", &fx).await;
    assert_eq!(out.texts, vec!["Welcome back.", "Anything else?"]);
    assert_eq!(out.handoff, None);
    let run = run_of(&vars);
    assert_eq!(run.resume, None);
    assert_eq!(run.waiting.as_deref(), Some("q"));
    assert_eq!(engine::lookup(&vars, "more"), None, "the resuming message is not an answer");
}

#[tokio::test]
async fn handoff_without_next_ends_the_run() {
    let fx = Fake::new();
    let flow = flow(json!({
        "start": "desk",
        "blocks": [
            { "id": "desk", "type": "handoff" },
            { "id": "never", "type": "message", "text": "never said" }
        ]
    }));
    let mut vars = fresh(json!({}));
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert!(out.texts.is_empty());
    let reason = out.handoff.expect("a person is asked for");
    assert!(reason.contains("desk"), "the default reason names the block: {reason}");
    assert_eq!(run_of(&vars).ended.as_deref(), Some("handoff"));
    let out = engine::turn(&flow, &mut vars, "hello?", &fx).await;
    assert!(out.texts.is_empty() && out.handoff.is_none());
}

// ---------------------------------------------------------------------------------------------
// Step limits
// ---------------------------------------------------------------------------------------------

fn looping(limits: Option<Value>) -> Flow {
    let mut document = json!({
        "start": "a",
        "blocks": [
            { "id": "a", "type": "jump", "to": "b" },
            { "id": "b", "type": "jump", "to": "a" }
        ]
    });
    if let Some(limits) = limits {
        document["limits"] = limits;
    }
    flow(document)
}

fn blocks_run(out: &TurnOutput) -> usize {
    out.trace.iter().filter(|t| t.get("type").is_some()).count()
}

#[tokio::test]
async fn a_loop_stops_at_max_steps_per_turn() {
    let fx = Fake::new();
    let flow = looping(Some(json!({ "max_steps_per_turn": 5 })));
    let mut vars = fresh(json!({}));
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(run_of(&vars).ended.as_deref(), Some("step_limit"));
    assert_eq!(blocks_run(&out), 5);
    assert_eq!(out.trace.last().unwrap()["stopped"], "step_limit");
    // A stopped run stays stopped.
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert!(out.trace.is_empty());
}

#[tokio::test]
async fn a_loop_stops_at_max_steps() {
    let fx = Fake::new();
    let flow = looping(Some(json!({ "max_steps_per_turn": 50, "max_steps": 7 })));
    let mut vars = fresh(json!({}));
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(run_of(&vars).ended.as_deref(), Some("step_limit"));
    assert_eq!(blocks_run(&out), 7);
}

#[tokio::test]
async fn a_loop_stops_at_the_default_limit() {
    let fx = Fake::new();
    let flow = looping(None);
    let mut vars = fresh(json!({}));
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(run_of(&vars).ended.as_deref(), Some("step_limit"));
    assert_eq!(blocks_run(&out), flow.limits.max_steps_per_turn as usize);
}

#[tokio::test]
async fn a_flow_exactly_at_its_step_limits_is_not_stopped() {
    let fx = Fake::new();
    let flow = flow(json!({
        "start": "one",
        "limits": { "max_steps_per_turn": 3, "max_steps": 3 },
        "blocks": [
            { "id": "one", "type": "message", "text": "1", "next": "two" },
            { "id": "two", "type": "jump", "to": "three" },
            { "id": "three", "type": "end", "text": "3" }
        ]
    }));
    let mut vars = fresh(json!({}));
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(out.texts, vec!["1", "3"]);
    assert_eq!(run_of(&vars).ended.as_deref(), Some("end"));
}

#[tokio::test]
async fn an_end_block_says_its_text_and_ends_the_run() {
    let fx = Fake::new();
    let flow = flow(json!({
        "start": "bye",
        "blocks": [
            { "id": "bye", "type": "end", "text": "Bye {{contact.name}}." },
            { "id": "after", "type": "message", "text": "never said" }
        ]
    }));
    let mut vars = fresh(json!({ "contact": { "name": "Ann" } }));
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(out.texts, vec!["Bye Ann."]);
    assert_eq!(run_of(&vars).ended.as_deref(), Some("end"));
}

#[tokio::test]
async fn max_steps_counts_across_turns() {
    let fx = Fake::new();
    let flow = flow(json!({
        "start": "m",
        "limits": { "max_steps_per_turn": 50, "max_steps": 5 },
        "blocks": [
            { "id": "m", "type": "message", "text": "again", "next": "q" },
            { "id": "q", "type": "question", "text": "More?", "variable": "x", "next": "m" }
        ]
    }));
    let mut vars = fresh(json!({}));
    let outs = play(&flow, &mut vars, &["hi", "yes"], &fx).await;
    assert_eq!(outs[0].texts, vec!["again", "More?"]);
    assert_eq!(outs[1].texts, vec!["again", "More?"]);
    assert_eq!(run_of(&vars).ended, None);
    let out = engine::turn(&flow, &mut vars, "yes", &fx).await;
    assert_eq!(out.texts, vec!["again"], "the fifth block runs, the sixth is stopped");
    let run = run_of(&vars);
    assert_eq!(run.ended.as_deref(), Some("step_limit"));
    assert_eq!(run.waiting, None);
}

// ---------------------------------------------------------------------------------------------
// Persisting
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn variables_are_persisted_after_each_effect_and_at_the_end_of_a_turn() {
    let fx = Fake { http: Ok(json!({ "ref": "R-1" })), ..Fake::new() };
    let flow = flow(json!({
        "start": "look",
        "blocks": [
            { "id": "look", "type": "availability", "service": "Cleaning", "date": "2026-11-24", "variable": "slots", "next": "book" },
            { "id": "book", "type": "book", "service": "Cleaning", "date": "{{slots.date}}", "time": "{{slots.times.1}}",
              "name": "Ann", "phone": "555 123 4567", "variable": "booking", "next": "lead" },
            { "id": "lead", "type": "lead", "fields": { "name": "Ann", "phone": "555 123 4567" }, "next": "hook" },
            { "id": "hook", "type": "http", "url": "https://hooks.example.com/b", "body": { "booking": "{{booking}}" },
              "save": { "ref": "/ref" }, "next": "more" },
            { "id": "more", "type": "question", "text": "Anything else?", "variable": "more" }
        ]
    }));
    let mut vars = fresh(json!({}));
    engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(
        fx.kinds(),
        vec!["availability", "persist", "book", "persist", "persist", "lead", "persist", "http", "persist", "persist"]
    );
    let saved = fx.persisted();
    assert_eq!(saved[0]["flow"]["slots"]["times"], json!(["09:00", "09:30"]), "after availability");
    assert_eq!(run_of(&saved[0]).resume.as_deref(), Some("book"), "placed after availability");
    assert_eq!(saved[1]["flow"]["booking"], json!({ "id": 7, "date": "2026-11-24", "time": "09:30" }), "after book");
    assert_eq!(run_of(&saved[1]).resume.as_deref(), Some("lead"), "placed after the booking");
    assert_eq!(saved[2]["contact"]["name"], "Ann", "before the lead is saved");
    assert_eq!(run_of(&saved[3]).resume.as_deref(), Some("hook"), "placed after the lead");
    assert_eq!(saved[4]["flow"]["ref"], "R-1", "after http");
    assert_eq!(run_of(saved.last().unwrap()).resume, None, "waiting on a question, not resuming");
    assert_eq!(saved.last().unwrap(), &vars, "the turn ends persisted");
    assert_eq!(run_of(saved.last().unwrap()).waiting.as_deref(), Some("more"));
    assert_eq!(fx.http_calls()[0]["body"]["booking"]["id"], 7);
}

#[tokio::test]
async fn a_turn_that_only_asks_again_is_persisted_too() {
    let fx = Fake::new();
    let flow = question_flow(json!({ "validate": "number" }));
    let mut vars = fresh(json!({}));
    engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(fx.kinds(), vec!["persist"]);
    engine::turn(&flow, &mut vars, "lots", &fx).await;
    assert_eq!(fx.kinds(), vec!["persist", "persist"]);
    let last = fx.persisted().pop().unwrap();
    assert_eq!(run_of(&last).retries, 1, "the retry count is kept");
    assert_eq!(last, vars);
}

#[tokio::test]
async fn a_persist_failure_is_traced() {
    let fx = Fake { fail_persist: true, ..Fake::new() };
    let flow = question_flow(json!({}));
    let mut vars = fresh(json!({}));
    let out = engine::turn(&flow, &mut vars, "hi", &fx).await;
    assert_eq!(out.texts, vec!["Your answer?"]);
    assert!(out.trace.iter().any(|t| t["persist_error"] == "the disk is full"), "{:?}", out.trace);
}

/// The engine's promise: "after every such step the variables are persisted, so a crash repeats
/// no side effect that already happened". Replay the turn from what was persisted right after the
/// booking, as a restart after a crash would.
#[tokio::test]
async fn a_crash_after_booking_does_not_book_again() {
    let flow = flow(json!({
        "start": "when",
        "blocks": [
            { "id": "when", "type": "question", "text": "What time?", "variable": "time", "validate": "time", "next": "book" },
            { "id": "book", "type": "book", "service": "Cleaning", "date": "2026-11-24", "time": "{{time}}",
              "name": "Ann", "email": "ann@b.co", "variable": "booking", "next": "ok" },
            { "id": "ok", "type": "message", "text": "Booked #{{booking.id}}.", "next": "more" },
            { "id": "more", "type": "question", "text": "Anything else?", "variable": "more" }
        ]
    }));
    let fx = Fake::new();
    let mut vars = fresh(json!({}));
    play(&flow, &mut vars, &["hi", "10am"], &fx).await;
    assert_eq!(fx.booked().len(), 1);
    let kinds = fx.kinds();
    let book_at = kinds.iter().position(|k| *k == "book").unwrap();
    assert_eq!(kinds[book_at + 1], "persist");
    let Call::Persist(after_booking) = fx.calls()[book_at + 1].clone() else { unreachable!() };
    assert!(after_booking["flow"]["booking"]["id"].is_number());

    // The process dies here; the same message is played again from what was stored.
    let replay = Fake::new();
    let mut vars = after_booking;
    engine::turn(&flow, &mut vars, "10am", &replay).await;
    assert_eq!(replay.booked(), Vec::<Value>::new(), "the booking was made already");
}

// ---------------------------------------------------------------------------------------------
// Definition refusals
// ---------------------------------------------------------------------------------------------

#[test]
fn a_button_option_leading_nowhere_is_refused() {
    let found = problems(json!({
        "start": "menu",
        "blocks": [
            { "id": "menu", "type": "buttons", "text": "Pick", "options": [
                { "label": "A", "next": "a" },
                { "label": "B", "next": "ghost" }
            ] },
            { "id": "a", "type": "message", "text": "a" }
        ]
    }));
    let p = problem(&found, "menu", "options[1].next");
    assert!(p.message.contains("`ghost`"), "{p}");
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn a_choice_question_needs_choices() {
    let found = problems(json!({
        "start": "pick",
        "blocks": [{ "id": "pick", "type": "question", "text": "Which?", "variable": "v", "validate": "choice" }]
    }));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(problem(&found, "pick", "choices").message.contains("choices"));

    // Choices from a variable are enough; choices on a non-choice question are refused.
    assert!(definition::parse(&json!({
        "start": "pick",
        "blocks": [{ "id": "pick", "type": "question", "text": "Which?", "variable": "v", "validate": "choice", "choices_from": "slots.times" }]
    }))
    .is_ok());
    let found = problems(json!({
        "start": "pick",
        "blocks": [{ "id": "pick", "type": "question", "text": "Which?", "variable": "v", "choices": ["a"] }]
    }));
    problem(&found, "pick", "validate");
}

#[test]
fn a_lead_needs_an_email_or_a_phone() {
    let lead =
        |fields: Value| json!({ "start": "lead", "blocks": [{ "id": "lead", "type": "lead", "fields": fields }] });
    let found = problems(lead(json!({ "name": "{{n}}" })));
    assert_eq!(found.len(), 1, "{found:#?}");
    problem(&found, "lead", "fields");
    assert!(definition::parse(&lead(json!({ "name": "{{n}}", "phone": "{{p}}" }))).is_ok());
    assert!(definition::parse(&lead(json!({ "name": "{{n}}", "email": "{{e}}" }))).is_ok());
    let found = problems(lead(json!({ "name": "{{n}}", "email": "{{e}}", "age": "{{a}}" })));
    problem(&found, "lead", "fields.age");
}

#[test]
fn an_http_timeout_must_be_1_to_30_seconds() {
    let http = |timeout: u64| json!({ "start": "call", "blocks": [{ "id": "call", "type": "http", "url": "https://x.example.com", "timeout_secs": timeout }] });
    for timeout in [0, definition::MAX_HTTP_TIMEOUT_SECS + 1, 3600] {
        let found = problems(http(timeout));
        assert_eq!(found.len(), 1, "{found:#?}");
        problem(&found, "call", "timeout_secs");
    }
    assert!(definition::parse(&http(1)).is_ok());
    assert!(definition::parse(&http(definition::MAX_HTTP_TIMEOUT_SECS)).is_ok());
}

#[test]
fn duplicate_ids_are_refused() {
    let found = problems(json!({
        "start": "a",
        "blocks": [
            { "id": "a", "type": "message", "text": "one", "next": "b" },
            { "id": "b", "type": "message", "text": "two" },
            { "id": "a", "type": "end" }
        ]
    }));
    assert_eq!(found.len(), 1, "{found:#?}");
    let p = problem(&found, "a", "id");
    assert!(p.message.contains("another block"), "{p}");
}

#[test]
fn other_block_fields_are_checked() {
    let found = problems(json!({
        "start": "book",
        "blocks": [
            { "id": "book", "type": "book", "service": "s", "date": "d", "time": "t", "name": "n", "next": "call" },
            { "id": "call", "type": "http", "url": "ftp://x.example.com", "save": { "id": "data/id" }, "next": "menu" },
            { "id": "menu", "type": "buttons", "text": "Pick", "options": [] },
            { "id": "c", "type": "condition", "rules": [{ "when": [{ "var": "x", "op": "gt" }], "next": "book" }] },
            { "id": "desk", "type": "handoff", "next": "nowhere" }
        ]
    }));
    problem(&found, "book", "email");
    problem(&found, "call", "url");
    problem(&found, "call", "save.id");
    problem(&found, "menu", "options");
    problem(&found, "c", "rules[0].when[0].value");
    problem(&found, "desk", "next");
}

#[test]
fn step_limits_must_be_at_least_one() {
    let found = problems(json!({
        "start": "a",
        "limits": { "max_steps_per_turn": 0 },
        "blocks": [{ "id": "a", "type": "end" }]
    }));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].block.as_deref(), found[0].field.as_str()), (None, "limits"));
}
