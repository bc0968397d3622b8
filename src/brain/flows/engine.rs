//! The flow engine: one visitor message in, the flow's next steps out.
//!
//! It keeps everything in the conversation's variables, so a turn can start on any node after any
//! restart: the flow's own variables under `flow`, the contact's under `contact`, the caller's
//! under `conversation` and `system`, and the run's position under `flow_run` ([`Run`]). A turn
//! answers the question the run waits on (or starts the run), then walks blocks until one needs
//! the visitor again, the flow ends, or a limit stops it. Whatever touches the world (booking,
//! leads, outside calls, free answers) goes through [`Effects`], so the same engine plays a live
//! conversation and a dry run; after every such step the variables are persisted, so a crash
//! repeats no side effect that already happened.

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::definition::{AnswerSource, Block, ButtonOption, Check, Flow, Kind, Method, Op, Validate};
use crate::brain::when;
use crate::domain::crm::signals::{normalize_email, normalize_phone};

/// How far ahead an availability block without a date looks for free time.
const SEARCH_DAYS: i64 = 21;
/// Invalid answers to one question before the flow gives up on it, unless the block says.
const DEFAULT_RETRIES: u32 = 3;

/// Where a conversation is in its flow, stored as the `flow_run` variable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub flow_id: i64,
    pub version_id: i64,
    pub version: i64,
    /// The question or buttons block waiting for the visitor's answer.
    #[serde(default)]
    pub waiting: Option<String>,
    /// Where the flow picks up on the next message (after a hand-over to a person).
    #[serde(default)]
    pub resume: Option<String>,
    #[serde(default)]
    pub retries: u32,
    #[serde(default)]
    pub steps: u32,
    /// Why the run ended (`end`, `handoff`, `invalid_answers`, `step_limit`, …); `None` while it runs.
    #[serde(default)]
    pub ended: Option<String>,
    #[serde(default)]
    pub started_at: i64,
}

impl Run {
    /// The run stored in `variables`, if the conversation has one.
    pub fn of(variables: &Value) -> Option<Run> {
        serde_json::from_value(variables.get("flow_run")?.clone()).ok()
    }

    fn store(&self, variables: &mut Value) {
        object(variables).insert("flow_run".into(), serde_json::to_value(self).unwrap_or_default());
    }
}

/// A free answer, with what it was based on.
#[derive(Debug, Clone, Default)]
pub struct Said {
    pub text: String,
    pub metadata: Option<Value>,
    /// The brain decided a person should take over (the visitor asked for one).
    pub handoff: Option<String>,
}

/// An outside call an HTTP block makes, its templates filled in.
#[derive(Debug, Clone, Serialize)]
pub struct HttpCall {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    pub timeout_secs: u64,
}

/// Everything a flow does to the world. Booking-shaped results are the model tools' JSON
/// (`{"slots": […]}`, `{"booked": …}` or `{"error": …}`), since the same code answers both.
#[async_trait]
pub trait Effects: Send + Sync {
    /// Today at the practice, for reading dates.
    fn today(&self) -> NaiveDate;
    async fn answer(&self, source: AnswerSource, question: &str, variables: &Value) -> Option<Said>;
    async fn availability(&self, service: &str, date: NaiveDate, doctor: Option<&str>) -> Value;
    async fn book(&self, arguments: Value) -> Value;
    /// Saves the contact in `variables` to the CRM; answers whether it became a lead.
    async fn lead(&self, variables: &Value) -> Result<bool, String>;
    async fn http(&self, call: HttpCall) -> Result<Value, String>;
    /// Makes the variables durable (a dry run keeps them in memory).
    async fn persist(&self, variables: &Value) -> Result<(), String>;
}

/// What one turn said and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TurnOutput {
    /// The bot's messages, in order.
    pub texts: Vec<String>,
    /// Buttons offered with the last question.
    pub quick_replies: Vec<String>,
    /// A person was asked for, with the reason.
    pub handoff: Option<String>,
    /// Citations of free answers.
    pub citations: Vec<Value>,
    /// The blocks run and what each did, in order (shown by a dry run, logged otherwise).
    pub trace: Vec<Value>,
}

fn object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    value.as_object_mut().expect("just made an object")
}

/// Reads a variable: `contact.email`, `system.timezone`, `booking.id`, `slots.times.0`.
pub fn lookup<'a>(variables: &'a Value, path: &str) -> Option<&'a Value> {
    let mut segments = path.trim().split('.');
    let first = segments.next()?;
    let mut current = if super::definition::NAMESPACES.contains(&first) {
        variables.get(first)?
    } else {
        variables.get("flow")?.get(first)?
    };
    for segment in segments {
        current = match current {
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            other => other.get(segment)?,
        };
    }
    (!current.is_null()).then_some(current)
}

/// Writes a variable the definition allowed (`name`, `contact.name`, `conversation.name`).
pub fn assign(variables: &mut Value, name: &str, value: Value) {
    let (namespace, key) = match name.split_once('.') {
        Some((namespace, key)) => (namespace, key),
        None => ("flow", name),
    };
    let scope = object(variables).entry(namespace.to_owned()).or_insert_with(|| Value::Object(Map::new()));
    object(scope).insert(key.to_owned(), value);
}

/// A value as a visitor reads it: strings as they are, lists joined with commas.
pub fn say(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(say).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Fills `{{variable}}` in a template; unknown variables become empty.
pub fn fill(template: &str, variables: &Value) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        match after.find("}}") {
            Some(close) => {
                out.push_str(&lookup(variables, &after[..close]).map(say).unwrap_or_default());
                rest = &after[close + 2..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Fills templates inside a JSON value; a string that is exactly one `{{variable}}` keeps the
/// variable's own type (a number stays a number).
pub fn fill_value(value: &Value, variables: &Value) -> Value {
    match value {
        Value::String(text) => {
            let trimmed = text.trim();
            let whole = trimmed.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")).filter(|t| !t.contains("{{"));
            match whole {
                Some(path) => lookup(variables, path).cloned().unwrap_or(Value::Null),
                None => Value::String(fill(text, variables)),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| fill_value(v, variables)).collect()),
        Value::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), fill_value(v, variables))).collect())
        }
        other => other.clone(),
    }
}

fn number(text: &str) -> Option<f64> {
    let cleaned: String = text
        .trim()
        .trim_start_matches(['$', '€', '£'])
        .trim_end_matches('%')
        .chars()
        .filter(|c| *c != ',' && *c != '_' && !c.is_whitespace())
        .collect();
    cleaned.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(text) => number(text),
        _ => None,
    }
}

fn json_number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

/// Which of `choices` a reply picks: the choice itself, its number, or the one choice it mentions.
pub fn pick(reply: &str, choices: &[String]) -> Option<usize> {
    let reply = reply.trim().to_lowercase();
    if reply.is_empty() {
        return None;
    }
    if let Some(i) = choices.iter().position(|c| c.trim().to_lowercase() == reply) {
        return Some(i);
    }
    if let Ok(n) = reply.trim_end_matches('.').parse::<usize>() {
        if (1..=choices.len()).contains(&n) {
            return Some(n - 1);
        }
    }
    let mentioned: Vec<usize> = (0..choices.len())
        .filter(|&i| !choices[i].trim().is_empty() && reply.contains(&choices[i].trim().to_lowercase()))
        .collect();
    match mentioned.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// Reads an answer as the question asks; `None` when it is not a valid answer.
pub fn validate(kind: Validate, reply: &str, choices: &[String], today: NaiveDate) -> Option<Value> {
    let reply = reply.trim();
    if reply.is_empty() {
        return None;
    }
    match kind {
        Validate::Text => Some(Value::String(reply.to_owned())),
        Validate::Email => {
            let candidate = reply.split_whitespace().find(|w| w.contains('@')).unwrap_or(reply);
            normalize_email(candidate.trim_end_matches(['.', ','])).map(Value::String)
        }
        Validate::Phone => normalize_phone(reply).map(Value::String),
        Validate::Number => number(reply).map(json_number),
        Validate::Date => crate::domain::booking::parse_date(reply)
            .or_else(|| when::parse(reply, today).date)
            .map(|d| Value::String(d.format("%Y-%m-%d").to_string())),
        Validate::Time => when::parse(reply, today).time.map(|t| Value::String(t.format("%H:%M").to_string())),
        Validate::Choice => pick(reply, choices).map(|i| Value::String(choices[i].clone())),
    }
}

/// A message that asks something rather than answering: "do you take Aetna?".
pub fn looks_like_question(text: &str) -> bool {
    let text = text.trim().to_lowercase();
    let first = text.split_whitespace().next().unwrap_or("");
    text.ends_with('?')
        || ["what", "where", "when", "how", "why", "who", "which", "do", "does", "can", "could", "is", "are", "will"]
            .contains(&first)
}

fn compare(check: &Check, variables: &Value) -> bool {
    let actual = lookup(variables, &check.var);
    let expected = check.value.as_ref().map(|v| fill_value(v, variables));
    let text = |v: &Value| say(v).trim().to_lowercase();
    match (check.op, actual, expected) {
        (Op::Exists, actual, _) => actual.is_some_and(|v| !say(v).trim().is_empty()),
        (Op::NotExists, actual, _) => actual.is_none_or(|v| say(v).trim().is_empty()),
        (_, None, _) | (_, _, None) => matches!(check.op, Op::NotEquals),
        (Op::Equals, Some(a), Some(e)) => match (as_number(a), as_number(&e)) {
            (Some(x), Some(y)) => x == y,
            _ => text(a) == text(&e),
        },
        (Op::NotEquals, Some(a), Some(e)) => match (as_number(a), as_number(&e)) {
            (Some(x), Some(y)) => x != y,
            _ => text(a) != text(&e),
        },
        (Op::Contains, Some(Value::Array(items)), Some(e)) => items.iter().any(|item| text(item) == text(&e)),
        (Op::Contains, Some(a), Some(e)) => text(a).contains(&text(&e)),
        (Op::Matches, Some(a), Some(e)) => {
            regex::Regex::new(&say(&e)).map(|pattern| pattern.is_match(&say(a))).unwrap_or(false)
        }
        (op, Some(a), Some(e)) => {
            let ordering = match (as_number(a), as_number(&e)) {
                (Some(x), Some(y)) => x.partial_cmp(&y),
                // Dates and times written ISO-style compare as text.
                _ => Some(say(a).cmp(&say(&e))),
            };
            let Some(ordering) = ordering else { return false };
            match op {
                Op::Gt => ordering.is_gt(),
                Op::Gte => ordering.is_ge(),
                Op::Lt => ordering.is_lt(),
                _ => ordering.is_le(),
            }
        }
    }
}

/// The rule of a condition block that holds first, or its `else`.
fn decide(condition: &super::definition::Condition, variables: &Value) -> Option<String> {
    for rule in &condition.rules {
        let holds = if rule.any {
            rule.when.iter().any(|check| compare(check, variables))
        } else {
            rule.when.iter().all(|check| compare(check, variables))
        };
        if holds {
            return Some(rule.next.clone());
        }
    }
    condition.otherwise.clone()
}

/// The choices a question offers, with `choices_from` read from the variables.
fn choices_of(question: &super::definition::Question, variables: &Value) -> Vec<String> {
    let mut choices = question.choices.clone();
    if let Some(from) = &question.choices_from {
        if let Some(Value::Array(items)) = lookup(variables, from) {
            choices.extend(items.iter().map(say).filter(|c| !c.is_empty()));
        }
    }
    choices
}

fn labels(options: &[ButtonOption]) -> Vec<String> {
    options.iter().map(|o| o.label.clone()).collect()
}

/// A prompt and the buttons it offers.
fn prompt(block: &Block, variables: &Value) -> (String, Vec<String>) {
    match &block.kind {
        Kind::Question(q) => (fill(&q.text, variables), choices_of(q, variables)),
        Kind::Buttons(b) => (fill(&b.text, variables), labels(&b.options)),
        _ => (String::new(), Vec::new()),
    }
}

/// Plays one turn of `flow`. `input` is the visitor's message; the run in `variables` (a new
/// one if the caller just put it there) says where the flow stands. `variables` is left as the
/// turn ends, already persisted through `effects`.
pub async fn turn(flow: &Flow, variables: &mut Value, input: &str, effects: &dyn Effects) -> TurnOutput {
    let mut out = TurnOutput::default();
    let Some(mut run) = Run::of(variables) else { return out };
    if run.ended.is_some() {
        return out;
    }
    let mut cursor = match (run.waiting.take(), run.resume.take()) {
        (Some(waiting), _) => match flow.block(&waiting) {
            Some(block) => match answer(flow, block, &mut run, variables, input, effects, &mut out).await {
                Answered::Next(next) => next,
                Answered::Stay => {
                    run.waiting = Some(waiting);
                    run.store(variables);
                    persist(variables, effects, &mut out).await;
                    return out;
                }
            },
            // A block deleted under a running conversation cannot happen (versions never change),
            // but a hand-edited variable could say anything.
            None => None,
        },
        (None, Some(resume)) => Some(resume),
        (None, None) if run.steps == 0 => Some(flow.start.clone()),
        (None, None) => None,
    };
    let mut steps_this_turn = 0u32;
    loop {
        let Some(id) = cursor.take() else {
            run.ended.get_or_insert_with(|| "end".into());
            break;
        };
        steps_this_turn += 1;
        run.steps += 1;
        if steps_this_turn > flow.limits.max_steps_per_turn || run.steps > flow.limits.max_steps {
            tracing::warn!(block = %id, steps = run.steps, "flow stopped by its step limit");
            out.trace.push(json!({ "block": id, "stopped": "step_limit" }));
            run.ended = Some("step_limit".into());
            break;
        }
        let Some(block) = flow.block(&id) else {
            run.ended = Some("missing_block".into());
            break;
        };
        let mut trace = json!({ "block": block.id, "type": kind_name(&block.kind) });
        match &block.kind {
            Kind::Message(m) => {
                out.texts.push(fill(&m.text, variables));
                cursor = m.next.clone();
            }
            Kind::Question(_) | Kind::Buttons(_) => {
                let (text, choices) = prompt(block, variables);
                out.texts.push(text);
                out.quick_replies = choices;
                run.waiting = Some(block.id.clone());
                run.retries = 0;
                out.trace.push(trace);
                break;
            }
            Kind::Condition(c) => {
                cursor = decide(c, variables);
                trace["next"] = json!(cursor);
            }
            Kind::Set(s) => {
                for (name, value) in &s.variables {
                    let value = fill_value(value, variables);
                    assign(variables, name, value);
                }
                cursor = s.next.clone();
            }
            Kind::Answer(a) => {
                let question = a.question.as_deref().map(|q| fill(q, variables)).unwrap_or_else(|| input.to_owned());
                match effects.answer(a.source, &question, variables).await {
                    Some(said) => {
                        if let Some(variable) = &a.variable {
                            assign(variables, variable, Value::String(said.text.clone()));
                        }
                        if let Some(metadata) = said.metadata {
                            out.citations.push(metadata);
                        }
                        out.texts.push(said.text);
                        trace["answered"] = json!(true);
                    }
                    None => {
                        if let Some(fallback) = &a.fallback {
                            out.texts.push(fill(fallback, variables));
                        }
                        trace["answered"] = json!(false);
                    }
                }
                cursor = a.next.clone();
            }
            Kind::Availability(a) => {
                let service = fill(&a.service, variables);
                let doctor = a.doctor.as_deref().map(|d| fill(d, variables)).filter(|d| !d.trim().is_empty());
                let (found, error) = find_times(a, &service, doctor.as_deref(), variables, effects).await;
                let free = found["times"].as_array().is_some_and(|t| !t.is_empty());
                trace["free"] = json!(free);
                if let Some(error) = error {
                    trace["error"] = json!(error);
                }
                assign(variables, &a.variable, found);
                cursor = if free { a.next.clone() } else { a.none.clone().or_else(|| a.next.clone()) };
                checkpoint(&mut run, &cursor, variables, effects, &mut out).await;
            }
            Kind::Book(b) => {
                let arguments = json!({
                    "service": fill(&b.service, variables),
                    "date": fill(&b.date, variables),
                    "time": fill(&b.time, variables),
                    "name": fill(&b.name, variables),
                    "email": b.email.as_deref().map(|t| fill(t, variables)),
                    "phone": b.phone.as_deref().map(|t| fill(t, variables)),
                    "doctor": b.doctor.as_deref().map(|t| fill(t, variables)).filter(|d| !d.trim().is_empty()),
                    "notes": b.notes.as_deref().map(|t| fill(t, variables)),
                });
                let result = effects.book(arguments).await;
                let booked = result.get("booked").cloned();
                trace["booked"] = json!(booked.is_some());
                match booked {
                    Some(booking) => {
                        if let Some(variable) = &b.variable {
                            assign(variables, variable, booking);
                        }
                        cursor = b.next.clone();
                    }
                    None => {
                        let error = result["error"].as_str().unwrap_or("the booking could not be made").to_owned();
                        trace["error"] = json!(error);
                        if let Some(variable) = &b.variable {
                            assign(variables, variable, json!({ "error": error }));
                        }
                        cursor = match &b.failed {
                            Some(failed) => Some(failed.clone()),
                            None => {
                                out.texts.push(error);
                                b.next.clone()
                            }
                        };
                    }
                }
                checkpoint(&mut run, &cursor, variables, effects, &mut out).await;
            }
            Kind::Lead(l) => {
                for (field, template) in &l.fields {
                    let value = fill(template, variables);
                    if !value.trim().is_empty() {
                        assign(variables, &format!("contact.{field}"), Value::String(value.trim().to_owned()));
                    }
                }
                persist(variables, effects, &mut out).await;
                match effects.lead(variables).await {
                    Ok(lead) => trace["lead"] = json!(lead),
                    Err(error) => trace["error"] = json!(error),
                }
                cursor = l.next.clone();
                checkpoint(&mut run, &cursor, variables, effects, &mut out).await;
            }
            Kind::Handoff(h) => {
                if let Some(text) = &h.text {
                    out.texts.push(fill(text, variables));
                }
                let reason = h.reason.as_deref().map(|r| fill(r, variables));
                out.handoff = Some(reason.unwrap_or_else(|| format!("the flow's `{}` block", block.id)));
                match &h.next {
                    Some(next) => run.resume = Some(next.clone()),
                    None => run.ended = Some("handoff".into()),
                }
                out.trace.push(trace);
                break;
            }
            Kind::Http(h) => {
                let call = HttpCall {
                    method: h.method,
                    url: fill(&h.url, variables),
                    headers: h.headers.iter().map(|(k, v)| (k.clone(), fill(v, variables))).collect(),
                    body: h.body.as_ref().map(|b| fill_value(b, variables)),
                    timeout_secs: h.timeout_secs.unwrap_or(10),
                };
                match effects.http(call).await {
                    Ok(response) => {
                        for (name, pointer) in &h.save {
                            let value = response.pointer(pointer).cloned().unwrap_or(Value::Null);
                            assign(variables, name, value);
                        }
                        trace["ok"] = json!(true);
                        cursor = h.next.clone();
                    }
                    Err(error) => {
                        tracing::warn!(block = %block.id, %error, "a flow's HTTP call failed");
                        assign(variables, "last_error", Value::String(error.clone()));
                        trace["ok"] = json!(false);
                        trace["error"] = json!(error);
                        cursor = h.failed.clone().or_else(|| h.next.clone());
                    }
                }
                checkpoint(&mut run, &cursor, variables, effects, &mut out).await;
            }
            Kind::Jump(j) => cursor = Some(j.to.clone()),
            Kind::End(e) => {
                if let Some(text) = &e.text {
                    out.texts.push(fill(text, variables));
                }
                run.ended = Some("end".into());
                out.trace.push(trace);
                break;
            }
        }
        out.trace.push(trace);
    }
    // Mid-turn checkpoints placed the run after their step; where it stands now is decided.
    if run.waiting.is_some() || run.ended.is_some() {
        run.resume = None;
    }
    run.store(variables);
    persist(variables, effects, &mut out).await;
    out
}

/// Persists the variables with the run placed at `cursor`, after a step that did something: a
/// crash before the turn ends then resumes after that step, never repeating it.
async fn checkpoint(
    run: &mut Run,
    cursor: &Option<String>,
    variables: &mut Value,
    effects: &dyn Effects,
    out: &mut TurnOutput,
) {
    run.resume = cursor.clone();
    run.store(variables);
    persist(variables, effects, out).await;
}

async fn persist(variables: &Value, effects: &dyn Effects, out: &mut TurnOutput) {
    if let Err(error) = effects.persist(variables).await {
        tracing::error!(%error, "the flow's variables could not be stored");
        out.trace.push(json!({ "persist_error": error }));
    }
}

/// Free times for an availability block: on its date, or on the first day with any.
async fn find_times(
    block: &super::definition::Availability,
    service: &str,
    doctor: Option<&str>,
    variables: &Value,
    effects: &dyn Effects,
) -> (Value, Option<String>) {
    let named = block.date.as_deref().map(|d| fill(d, variables)).filter(|d| !d.trim().is_empty());
    let days: Vec<NaiveDate> = match named {
        Some(text) => match validate(Validate::Date, &text, &[], effects.today()) {
            Some(Value::String(date)) => crate::domain::booking::parse_date(&date).into_iter().collect(),
            _ => return (json!({ "times": [], "slots": [] }), Some(format!("`{text}` is not a date"))),
        },
        None => {
            (0..SEARCH_DAYS).filter_map(|d| effects.today().checked_add_days(chrono::Days::new(d as u64))).collect()
        }
    };
    for date in days {
        let result = effects.availability(service, date, doctor).await;
        if let Some(error) = result["error"].as_str() {
            return (json!({ "date": date.to_string(), "times": [], "slots": [] }), Some(error.to_owned()));
        }
        let slots = result["slots"].as_array().cloned().unwrap_or_default();
        if !slots.is_empty() {
            let mut times: Vec<String> = slots.iter().filter_map(|s| s["time"].as_str().map(str::to_owned)).collect();
            times.dedup();
            return (json!({ "date": date.to_string(), "times": times, "slots": slots }), None);
        }
    }
    (json!({ "times": [], "slots": [] }), None)
}

enum Answered {
    Next(Option<String>),
    Stay,
}

/// Takes the visitor's reply to the block the run waits on.
async fn answer(
    flow: &Flow,
    block: &Block,
    run: &mut Run,
    variables: &mut Value,
    input: &str,
    effects: &dyn Effects,
    out: &mut TurnOutput,
) -> Answered {
    let (valid, retry_text, max_retries, on_invalid, validated) = match &block.kind {
        Kind::Question(q) => {
            let choices = choices_of(q, variables);
            let valid = validate(q.validate, input, &choices, effects.today()).map(|value| {
                assign(variables, &q.variable, value);
                q.next.clone()
            });
            (valid, q.retry.clone(), q.max_retries, q.on_invalid.clone(), Some(q.validate))
        }
        Kind::Buttons(b) => {
            let valid = pick(input, &labels(&b.options)).map(|i| {
                let option = &b.options[i];
                if let Some(variable) = &b.variable {
                    let value = option.value.clone().unwrap_or_else(|| Value::String(option.label.clone()));
                    assign(variables, variable, value);
                }
                option.next.clone().or_else(|| b.next.clone())
            });
            (valid, b.retry.clone(), b.max_retries, b.on_invalid.clone(), Some(Validate::Choice))
        }
        _ => return Answered::Next(None),
    };
    if let Some(next) = valid {
        out.trace.push(json!({ "block": block.id, "answer": "accepted" }));
        run.retries = 0;
        return Answered::Next(next);
    }
    // A question asked instead of an answer is answered, then the flow asks again.
    // (A free-text question takes any reply as its answer, questions included.)
    let strict = validated.is_some_and(|kind| kind != Validate::Text);
    if flow.answer_off_script && strict && looks_like_question(input) {
        if let Some(said) = effects.answer(AnswerSource::Model, input, variables).await {
            out.trace.push(json!({ "block": block.id, "answer": "off_script" }));
            if let Some(metadata) = said.metadata {
                out.citations.push(metadata);
            }
            out.texts.push(said.text);
            out.handoff = said.handoff;
            let (text, choices) = prompt(block, variables);
            out.texts.push(text);
            out.quick_replies = choices;
            return Answered::Stay;
        }
    }
    run.retries += 1;
    out.trace.push(json!({ "block": block.id, "answer": "invalid", "retries": run.retries }));
    if run.retries > max_retries.unwrap_or(DEFAULT_RETRIES) {
        run.retries = 0;
        return match on_invalid {
            Some(next) => Answered::Next(Some(next)),
            None => {
                run.ended = Some("invalid_answers".into());
                Answered::Next(None)
            }
        };
    }
    let (text, choices) = prompt(block, variables);
    let retry = retry_text
        .map(|r| fill(&r, variables))
        .unwrap_or_else(|| default_retry(validated.unwrap_or_default()).to_owned());
    out.texts.push(retry);
    out.texts.push(text);
    out.quick_replies = choices;
    Answered::Stay
}

/// What the bot says to an invalid answer when the block does not say.
fn default_retry(kind: Validate) -> &'static str {
    match kind {
        Validate::Text => "Sorry, I didn't get that.",
        Validate::Email => "That doesn't look like an email address.",
        Validate::Phone => "That doesn't look like a phone number.",
        Validate::Number => "Please answer with a number.",
        Validate::Date => "Which date? For example \"tomorrow\" or \"12 May\".",
        Validate::Time => "Which time? For example \"10:30\" or \"3pm\".",
        Validate::Choice => "Please pick one of the options.",
    }
}

fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Message(_) => "message",
        Kind::Question(_) => "question",
        Kind::Buttons(_) => "buttons",
        Kind::Condition(_) => "condition",
        Kind::Set(_) => "set",
        Kind::Answer(_) => "answer",
        Kind::Availability(_) => "availability",
        Kind::Book(_) => "book",
        Kind::Lead(_) => "lead",
        Kind::Handoff(_) => "handoff",
        Kind::Http(_) => "http",
        Kind::Jump(_) => "jump",
        Kind::End(_) => "end",
    }
}
