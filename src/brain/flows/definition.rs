//! A flow's JSON document: its blocks, read strictly and checked as a whole before it is saved.
//!
//! Reading never stops at the first mistake: [`parse`] collects every problem it finds, each
//! naming the block (by `id`, or by position when the id itself is wrong) and the field, so a
//! builder can fix a flow in one round trip.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::net_guard::{self, TargetPolicy};

/// Most blocks one flow may hold.
pub const MAX_BLOCKS: usize = 500;
/// Longest time an HTTP block may wait, in seconds.
pub const MAX_HTTP_TIMEOUT_SECS: u64 = 30;
/// Variable namespaces a flow reads; a name without one is the flow's own variable.
pub const NAMESPACES: &[&str] = &["system", "contact", "conversation", "flow"];

/// A whole flow.
#[derive(Debug, Clone, Serialize)]
pub struct Flow {
    pub start: String,
    pub blocks: Vec<Block>,
    pub limits: Limits,
    /// Answer a visitor's question asked instead of an answer, then ask again (default true).
    pub answer_off_script: bool,
}

impl Flow {
    pub fn block(&self, id: &str) -> Option<&Block> {
        self.blocks.iter().find(|block| block.id == id)
    }
}

/// How far one flow may run, so a loop in a flow can never spin a conversation forever.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Blocks run for one visitor message before the flow is stopped (default 50).
    #[serde(default = "default_steps_per_turn")]
    pub max_steps_per_turn: u32,
    /// Blocks run over the whole conversation (default 1,000).
    #[serde(default = "default_steps")]
    pub max_steps: u32,
}

fn default_steps_per_turn() -> u32 {
    50
}
fn default_steps() -> u32 {
    1_000
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_steps_per_turn: default_steps_per_turn(), max_steps: default_steps() }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Block {
    pub id: String,
    #[serde(flatten)]
    pub kind: Kind,
}

/// What a block does. Every `next` (and every other target) names a block of the same flow;
/// a block with no `next` ends the flow after it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Kind {
    Message(Message),
    Question(Question),
    Buttons(Buttons),
    Condition(Condition),
    Set(SetVariables),
    Answer(Answer),
    Availability(Availability),
    Book(Book),
    Lead(Lead),
    Handoff(Handoff),
    Http(Http),
    Jump(Jump),
    End(End),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub text: String,
    pub next: Option<String>,
}

/// What a question's answer must be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validate {
    /// Anything not empty.
    #[default]
    Text,
    Email,
    Phone,
    Number,
    /// A date, written any way the booking dialog understands ("tomorrow", "12 May", "2026-05-12").
    Date,
    /// A clock time ("10:30", "3pm"), stored as `HH:MM`.
    Time,
    /// One of `choices` (or its number in the list).
    Choice,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub text: String,
    pub variable: String,
    #[serde(default)]
    pub validate: Validate,
    #[serde(default)]
    pub choices: Vec<String>,
    /// A variable holding a list to offer as choices as well (e.g. `slots.times`).
    pub choices_from: Option<String>,
    /// Said when an answer is not valid, before the question is asked again.
    pub retry: Option<String>,
    /// Invalid answers tolerated before the flow gives up on the question (default 3).
    pub max_retries: Option<u32>,
    /// Where to go after too many invalid answers (default: end the flow).
    pub on_invalid: Option<String>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonOption {
    pub label: String,
    /// Stored in the variable when chosen (default: the label).
    pub value: Option<Value>,
    /// Where this choice leads (default: the block's `next`).
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Buttons {
    pub text: String,
    pub options: Vec<ButtonOption>,
    pub variable: Option<String>,
    pub retry: Option<String>,
    pub max_retries: Option<u32>,
    pub on_invalid: Option<String>,
    pub next: Option<String>,
}

/// How a variable is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Equals,
    NotEquals,
    Contains,
    Exists,
    NotExists,
    Gt,
    Gte,
    Lt,
    Lte,
    Matches,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub var: String,
    pub op: Op,
    /// What to compare with; `{{…}}` in a string is filled in first. Not used by `exists`.
    pub value: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The checks; all must hold (or any, with `any: true`).
    pub when: Vec<Check>,
    #[serde(default)]
    pub any: bool,
    pub next: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Tried in order; the first that holds decides.
    pub rules: Vec<Rule>,
    /// Where to go when no rule holds (default: end the flow).
    #[serde(rename = "else")]
    pub otherwise: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetVariables {
    /// Variable → value; `{{…}}` in string values is filled in.
    pub variables: BTreeMap<String, Value>,
    pub next: Option<String>,
}

/// Where a free answer comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerSource {
    /// The knowledge base only.
    Knowledge,
    /// The bot's brain: its model when it has one, otherwise the built-in answers.
    #[default]
    Model,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    #[serde(default)]
    pub source: AnswerSource,
    /// The question to answer (default: the visitor's last message).
    pub question: Option<String>,
    /// Stores the answer's text as well.
    pub variable: Option<String>,
    /// Said when there is no answer.
    pub fallback: Option<String>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Availability {
    pub service: String,
    /// The day to look at (default: the first day with free time in the next three weeks).
    pub date: Option<String>,
    pub doctor: Option<String>,
    /// Receives `{date, times: [..], slots: [..]}`.
    pub variable: String,
    /// Where to go when nothing is free (default: `next`).
    pub none: Option<String>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Book {
    pub service: String,
    pub date: String,
    pub time: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub doctor: Option<String>,
    pub notes: Option<String>,
    /// Receives the booking (or `{error}` when it failed).
    pub variable: Option<String>,
    /// Where to go when the time cannot be booked (default: say why and go on to `next`).
    pub failed: Option<String>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lead {
    /// Contact field (`name`, `email`, `phone`) → template, e.g. `{"email": "{{work_email}}"}`.
    pub fields: BTreeMap<String, String>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    pub text: Option<String>,
    pub reason: Option<String>,
    /// Where the flow picks up when the conversation comes back to the bot (default: it ends).
    pub next: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    #[default]
    Post,
    Put,
    Patch,
    Delete,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    #[serde(default)]
    pub method: Method,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The JSON sent; `{{…}}` in its strings is filled in.
    pub body: Option<Value>,
    /// Seconds (default 10, at most 30).
    pub timeout_secs: Option<u64>,
    /// Variable → JSON pointer into the response (`/data/id`); `""` takes the whole response.
    #[serde(default)]
    pub save: BTreeMap<String, String>,
    /// Where to go when the call fails (default: `next`).
    pub failed: Option<String>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jump {
    pub to: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End {
    pub text: Option<String>,
}

/// One problem of a flow document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The block's id (or `#<position>` when it has none); absent for the document's own fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block: Option<String>,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.block {
            Some(block) => write!(f, "block `{block}`, field `{}`: {}", self.field, self.message),
            None => write!(f, "field `{}`: {}", self.field, self.message),
        }
    }
}

struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, block: Option<&str>, field: &str, message: impl Into<String>) {
        self.0.push(Problem { block: block.map(str::to_owned), field: field.to_owned(), message: message.into() });
    }
}

/// Reads and checks a flow document; every problem found, or the flow.
pub fn parse(document: &Value) -> Result<Flow, Vec<Problem>> {
    let mut problems = Problems(Vec::new());
    let Some(object) = document.as_object() else {
        problems.add(None, "definition", "must be a JSON object with `start` and `blocks`");
        return Err(problems.0);
    };
    for key in object.keys() {
        if !["start", "blocks", "limits", "answer_off_script"].contains(&key.as_str()) {
            problems.add(None, key, "unknown field; expected start, blocks, limits or answer_off_script");
        }
    }
    let start = match object.get("start") {
        Some(Value::String(start)) if !start.trim().is_empty() => start.clone(),
        Some(_) => {
            problems.add(None, "start", "must be the id of a block");
            String::new()
        }
        None => {
            problems.add(None, "start", "is required: the id of the first block");
            String::new()
        }
    };
    let limits = match object.get("limits") {
        None => Limits::default(),
        Some(value) => match serde_json::from_value::<Limits>(value.clone()) {
            Ok(limits) if limits.max_steps_per_turn == 0 || limits.max_steps == 0 => {
                problems.add(None, "limits", "step limits must be at least 1");
                limits
            }
            Ok(limits) => limits,
            Err(err) => {
                problems.add(None, "limits", err.to_string());
                Limits::default()
            }
        },
    };
    let answer_off_script = match object.get("answer_off_script") {
        None => true,
        Some(Value::Bool(on)) => *on,
        Some(_) => {
            problems.add(None, "answer_off_script", "must be true or false");
            true
        }
    };
    let raw_blocks = match object.get("blocks") {
        Some(Value::Array(blocks)) if !blocks.is_empty() => blocks.as_slice(),
        Some(Value::Array(_)) => {
            problems.add(None, "blocks", "must hold at least one block");
            &[]
        }
        _ => {
            problems.add(None, "blocks", "is required: an array of blocks");
            &[]
        }
    };
    if raw_blocks.len() > MAX_BLOCKS {
        problems.add(None, "blocks", format!("a flow holds at most {MAX_BLOCKS} blocks"));
    }
    let mut blocks = Vec::new();
    let mut seen = HashSet::new();
    // Blocks whose fields do not read are still checked for links to unknown blocks.
    let mut unread: Vec<(String, serde_json::Map<String, Value>)> = Vec::new();
    for (position, raw) in raw_blocks.iter().enumerate() {
        let label = format!("#{}", position + 1);
        let Some(fields) = raw.as_object() else {
            problems.add(Some(&label), "block", "must be a JSON object");
            continue;
        };
        let id = match fields.get("id") {
            Some(Value::String(id)) if valid_id(id) => id.clone(),
            _ => {
                problems.add(Some(&label), "id", "is required: letters, digits, `_` or `-`, at most 64");
                continue;
            }
        };
        if !seen.insert(id.clone()) {
            problems.add(Some(&id), "id", "is used by another block");
        }
        let Some(kind) = fields.get("type").and_then(Value::as_str) else {
            problems.add(Some(&id), "type", format!("is required: one of {}", KINDS.join(", ")));
            continue;
        };
        let mut rest = fields.clone();
        rest.remove("id");
        rest.remove("type");
        match read_kind(kind, Value::Object(rest.clone())) {
            Ok(kind) => blocks.push(Block { id, kind }),
            Err((field, message)) => {
                problems.add(Some(&id), &field, message);
                unread.push((id, rest));
            }
        }
    }
    for (id, fields) in &unread {
        for link in ["next", "on_invalid", "else", "failed", "none", "to"] {
            if let Some(Value::String(to)) = fields.get(link) {
                target(&mut problems, &seen, Some(id), link, &Some(to.clone()));
            }
        }
    }
    let flow = Flow { start, blocks, limits, answer_off_script };
    check(&flow, &seen, &mut problems);
    if problems.0.is_empty() {
        Ok(flow)
    } else {
        Err(problems.0)
    }
}

const KINDS: &[&str] = &[
    "message",
    "question",
    "buttons",
    "condition",
    "set",
    "answer",
    "availability",
    "book",
    "lead",
    "handoff",
    "http",
    "jump",
    "end",
];

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Reads a block's fields as its kind; on failure, the field at fault and why.
fn read_kind(kind: &str, fields: Value) -> Result<Kind, (String, String)> {
    fn read<T: for<'de> Deserialize<'de>>(fields: Value) -> Result<T, (String, String)> {
        serde_path_to_error::deserialize(fields).map_err(|err| {
            let path = err.path().to_string();
            let message = err.inner().to_string();
            // serde names the missing or unknown field in its message; the path is "." then.
            let field = if path == "." { field_in(&message).unwrap_or_else(|| "block".into()) } else { path };
            (field, message)
        })
    }
    Ok(match kind {
        "message" => Kind::Message(read(fields)?),
        "question" => Kind::Question(read(fields)?),
        "buttons" => Kind::Buttons(read(fields)?),
        "condition" => Kind::Condition(read(fields)?),
        "set" => Kind::Set(read(fields)?),
        "answer" => Kind::Answer(read(fields)?),
        "availability" => Kind::Availability(read(fields)?),
        "book" => Kind::Book(read(fields)?),
        "lead" => Kind::Lead(read(fields)?),
        "handoff" => Kind::Handoff(read(fields)?),
        "http" => Kind::Http(read(fields)?),
        "jump" => Kind::Jump(read(fields)?),
        "end" => Kind::End(read(fields)?),
        other => return Err(("type".into(), format!("unknown block type `{other}`; one of {}", KINDS.join(", ")))),
    })
}

/// The field a serde message names (`missing field `text``, `unknown field `foo`, expected …`).
fn field_in(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

/// A variable name a flow may write: its own (`budget`, `booking`) or a contact or conversation
/// field (`contact.email`, `conversation.topic`); `system` is read-only.
fn check_writable(name: &str) -> Result<(), String> {
    let segments: Vec<&str> = name.split('.').collect();
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !segments.iter().all(|s| plain(s)) {
        return Err(format!("`{name}` is not a variable name (letters, digits and `_`, dot-separated)"));
    }
    match segments.as_slice() {
        ["system", ..] => Err("`system` variables are read-only".into()),
        [namespace] if NAMESPACES.contains(namespace) => {
            Err(format!("`{namespace}` is a namespace; name a variable inside it, like `{namespace}.name`"))
        }
        ["contact" | "conversation" | "flow", _] | [_] => Ok(()),
        _ => Err(format!("`{name}` is nested too deeply; use `name`, `contact.name` or `conversation.name`")),
    }
}

/// A block's link to another block must name one.
fn target(problems: &mut Problems, ids: &HashSet<String>, id: Option<&str>, field: &str, to: &Option<String>) {
    if let Some(to) = to {
        if !ids.contains(to) {
            problems.add(id, field, format!("names no block: `{to}`"));
        }
    }
}

fn check(flow: &Flow, ids: &HashSet<String>, problems: &mut Problems) {
    if !flow.start.is_empty() && !ids.contains(&flow.start) {
        problems.add(None, "start", format!("names no block: `{}`", flow.start));
    }
    for block in &flow.blocks {
        let id = Some(block.id.as_str());
        let mut texts: Vec<(&str, &str)> = Vec::new();
        let mut writes: Vec<(&str, &str)> = Vec::new();
        match &block.kind {
            Kind::Message(m) => {
                target(problems, ids, id, "next", &m.next);
                texts.push(("text", &m.text));
            }
            Kind::Question(q) => {
                target(problems, ids, id, "next", &q.next);
                target(problems, ids, id, "on_invalid", &q.on_invalid);
                texts.push(("text", &q.text));
                writes.push(("variable", &q.variable));
                if q.validate == Validate::Choice && q.choices.is_empty() && q.choices_from.is_none() {
                    problems.add(id, "choices", "a `choice` question needs `choices` or `choices_from`");
                }
                if q.validate != Validate::Choice && (!q.choices.is_empty() || q.choices_from.is_some()) {
                    problems.add(id, "validate", "choices are offered: set `validate` to `choice`");
                }
            }
            Kind::Buttons(b) => {
                target(problems, ids, id, "next", &b.next);
                target(problems, ids, id, "on_invalid", &b.on_invalid);
                texts.push(("text", &b.text));
                if let Some(variable) = &b.variable {
                    writes.push(("variable", variable));
                }
                if b.options.is_empty() {
                    problems.add(id, "options", "at least one button is needed");
                }
                for (i, option) in b.options.iter().enumerate() {
                    if option.label.trim().is_empty() {
                        problems.add(id, &format!("options[{i}].label"), "must not be empty");
                    }
                    target(problems, ids, id, &format!("options[{i}].next"), &option.next);
                }
                if b.next.is_none() && b.options.iter().any(|o| o.next.is_none()) {
                    problems.add(id, "next", "a button without its own `next` needs the block's `next`");
                }
            }
            Kind::Condition(c) => {
                if c.rules.is_empty() {
                    problems.add(id, "rules", "at least one rule is needed");
                }
                target(problems, ids, id, "else", &c.otherwise);
                for (i, rule) in c.rules.iter().enumerate() {
                    target(problems, ids, id, &format!("rules[{i}].next"), &Some(rule.next.clone()));
                    if rule.when.is_empty() {
                        problems.add(id, &format!("rules[{i}].when"), "at least one check is needed");
                    }
                    for (j, check) in rule.when.iter().enumerate() {
                        let field = format!("rules[{i}].when[{j}]");
                        if check.var.trim().is_empty() {
                            problems.add(id, &format!("{field}.var"), "must name a variable");
                        }
                        match (check.op, &check.value) {
                            (Op::Exists | Op::NotExists, _) => {}
                            (_, None) => problems.add(id, &format!("{field}.value"), "is required for this `op`"),
                            (Op::Matches, Some(Value::String(pattern))) => {
                                if let Err(err) = regex::Regex::new(pattern) {
                                    problems.add(
                                        id,
                                        &format!("{field}.value"),
                                        format!("not a regular expression: {err}"),
                                    );
                                }
                            }
                            (Op::Matches, Some(_)) => {
                                problems.add(id, &format!("{field}.value"), "must be a regular expression (a string)")
                            }
                            _ => {}
                        }
                    }
                }
            }
            Kind::Set(s) => {
                target(problems, ids, id, "next", &s.next);
                if s.variables.is_empty() {
                    problems.add(id, "variables", "at least one variable is needed");
                }
                for name in s.variables.keys() {
                    writes.push(("variables", name));
                }
            }
            Kind::Answer(a) => {
                target(problems, ids, id, "next", &a.next);
                if let Some(variable) = &a.variable {
                    writes.push(("variable", variable));
                }
            }
            Kind::Availability(a) => {
                target(problems, ids, id, "next", &a.next);
                target(problems, ids, id, "none", &a.none);
                writes.push(("variable", &a.variable));
                if a.service.trim().is_empty() {
                    problems.add(id, "service", "must name a service (or a `{{variable}}` holding one)");
                }
            }
            Kind::Book(b) => {
                target(problems, ids, id, "next", &b.next);
                target(problems, ids, id, "failed", &b.failed);
                if let Some(variable) = &b.variable {
                    writes.push(("variable", variable));
                }
                if b.email.is_none() && b.phone.is_none() {
                    problems.add(id, "email", "a booking needs `email` or `phone`");
                }
            }
            Kind::Lead(l) => {
                target(problems, ids, id, "next", &l.next);
                for field in l.fields.keys() {
                    if !["name", "email", "phone"].contains(&field.as_str()) {
                        problems.add(id, &format!("fields.{field}"), "contact fields are name, email and phone");
                    }
                }
                if !l.fields.contains_key("name") || !(l.fields.contains_key("email") || l.fields.contains_key("phone"))
                {
                    problems.add(id, "fields", "a lead needs `name` and `email` or `phone`");
                }
            }
            Kind::Handoff(h) => target(problems, ids, id, "next", &h.next),
            Kind::Http(h) => {
                target(problems, ids, id, "next", &h.next);
                target(problems, ids, id, "failed", &h.failed);
                let url = h.url.trim();
                // A templated host cannot be checked until the call; the guard checks it then.
                if !url.contains("{{") {
                    if let Err(err) = reqwest::Url::parse(url) {
                        problems.add(id, "url", format!("not a URL: {err}"));
                    } else if !url.starts_with("https://") && !url.starts_with("http://") {
                        problems.add(id, "url", "must be an http(s) URL");
                    }
                }
                if h.timeout_secs.is_some_and(|t| t == 0 || t > MAX_HTTP_TIMEOUT_SECS) {
                    problems.add(id, "timeout_secs", format!("1 to {MAX_HTTP_TIMEOUT_SECS} seconds"));
                }
                for (name, pointer) in &h.save {
                    writes.push(("save", name));
                    if !pointer.is_empty() && !pointer.starts_with('/') {
                        problems.add(id, &format!("save.{name}"), "a JSON pointer starts with `/` (or is \"\")");
                    }
                }
            }
            Kind::Jump(j) => target(problems, ids, id, "to", &Some(j.to.clone())),
            Kind::End(_) => {}
        }
        for (field, text) in texts {
            if text.trim().is_empty() {
                problems.add(id, field, "must not be empty");
            }
        }
        for (field, name) in writes {
            if let Err(message) = check_writable(name) {
                problems.add(id, field, message);
            }
        }
    }
}

/// Problems with where a flow's HTTP blocks would call, under the operator's policy: the same
/// [`net_guard::check_url`] rules webhooks and knowledge URLs meet when they are registered, so a
/// loopback or private target is refused when the flow is saved, not first when a visitor runs
/// it. A URL whose scheme or host is a `{{…}}` template can only be checked when it is filled in;
/// the run-time guard checks every call in any case.
pub fn check_targets(flow: &Flow, policy: &TargetPolicy) -> Vec<Problem> {
    let mut problems = Problems(Vec::new());
    for block in &flow.blocks {
        let Kind::Http(http) = &block.kind else { continue };
        let Some(origin) = fixed_origin(http.url.trim()) else { continue };
        if let Err(err) = net_guard::check_url(origin, policy.clone()) {
            problems.add(Some(&block.id), "url", format!("may not be called: {err}"));
        }
    }
    problems.0
}

/// The scheme, host and port of `url` (what decides where a call goes), unless a template is in
/// them.
fn fixed_origin(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let origin = &url[..scheme.len() + 3 + end];
    (!origin.contains("{{")).then_some(origin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(document: Value) -> Vec<String> {
        parse(&document).err().unwrap_or_default().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_small_flow_reads() {
        let flow = parse(&json!({
            "start": "hi",
            "blocks": [
                { "id": "hi", "type": "message", "text": "Hello {{contact.name}}", "next": "email" },
                { "id": "email", "type": "question", "text": "Email?", "variable": "contact.email", "validate": "email", "next": "bye" },
                { "id": "bye", "type": "end", "text": "Bye" }
            ]
        }))
        .unwrap();
        assert_eq!(flow.blocks.len(), 3);
        assert!(matches!(
            flow.block("email").unwrap().kind,
            Kind::Question(Question { validate: Validate::Email, .. })
        ));
    }

    #[test]
    fn every_problem_names_its_block_and_field() {
        let found = problems(json!({
            "start": "nowhere",
            "blocks": [
                { "id": "a", "type": "question", "text": "Email?", "validate": "email" },
                { "id": "b", "type": "message", "text": "x", "next": "ghost" },
                { "id": "b", "type": "teleport" },
                { "id": "c", "type": "condition", "rules": [{ "when": [{ "var": "x", "op": "matches", "value": "(" }], "next": "a" }] },
                { "id": "d", "type": "set", "variables": { "system.timezone": "UTC" } },
                { "id": "e", "type": "message", "text": "x", "colour": "red" }
            ]
        }));
        let expect = [
            "field `start`: names no block: `nowhere`",
            "block `a`, field `variable`",
            "block `b`, field `next`: names no block: `ghost`",
            "block `b`, field `id`: is used by another block",
            "block `b`, field `type`: unknown block type `teleport`",
            "block `c`, field `rules[0].when[0].value`: not a regular expression",
            "block `d`, field `variables`: `system` variables are read-only",
            "block `e`, field `colour`",
        ];
        for expected in expect {
            assert!(found.iter().any(|p| p.starts_with(expected)), "missing {expected:?} in {found:#?}");
        }
    }

    #[test]
    fn not_an_object_and_empty_blocks_are_refused() {
        assert_eq!(problems(json!([])), vec!["field `definition`: must be a JSON object with `start` and `blocks`"]);
        assert!(problems(json!({ "start": "a", "blocks": [] })).iter().any(|p| p.contains("at least one block")));
    }

    #[test]
    fn http_targets_are_checked_where_no_template_decides_them() {
        let flow = |url: &str| {
            parse(&json!({ "start": "call", "blocks": [{ "id": "call", "type": "http", "url": url }] })).unwrap()
        };
        let refused = |url: &str, policy: &TargetPolicy| {
            check_targets(&flow(url), policy).iter().map(ToString::to_string).collect::<Vec<_>>()
        };
        let strict = TargetPolicy::default();
        for url in [
            "http://127.0.0.1:9/hook",
            "https://127.0.0.1/x?id={{flow.id}}",
            "https://localhost/{{flow.path}}",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://10.1.2.3#{{x}}",
        ] {
            let found = refused(url, &strict);
            assert_eq!(found.len(), 1, "{url}: {found:?}");
            assert!(found[0].starts_with("block `call`, field `url`: may not be called"), "{url}: {found:?}");
        }
        for url in ["https://api.example.com/{{flow.id}}", "https://{{flow.host}}/x", "{{flow.url}}"] {
            assert!(refused(url, &strict).is_empty(), "{url}");
        }
        let loopback = TargetPolicy { allow_loopback: true, ..TargetPolicy::default() };
        assert!(refused("http://127.0.0.1:9/hook", &loopback).is_empty());
        let intranet = TargetPolicy {
            allowed_networks: net_guard::parse_networks("10.1.0.0/16").unwrap().into(),
            ..TargetPolicy::default()
        };
        assert!(refused("https://10.1.2.3/x", &intranet).is_empty());
        assert_eq!(refused("https://10.2.0.1/x", &intranet).len(), 1);
    }

    #[test]
    fn writable_names() {
        assert!(check_writable("budget").is_ok());
        assert!(check_writable("contact.email").is_ok());
        assert!(check_writable("conversation.topic").is_ok());
        assert!(check_writable("system.timezone").is_err());
        assert!(check_writable("contact").is_err());
        assert!(check_writable("a.b.c").is_err());
        assert!(check_writable("9lives").is_err());
    }
}
