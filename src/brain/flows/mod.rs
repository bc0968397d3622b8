//! Flows: scripted conversations a business builds from blocks (messages, questions with
//! validation, buttons, conditions, variables, free answers, booking, leads, hand-over, outside
//! calls) and deploys per channel.
//!
//! - [`definition`] reads and checks a flow document.
//! - [`engine`] plays one visitor message through a flow, its state kept in the conversation's
//!   variables.
//! - [`FlowBrain`] puts the engine in front of the bot's other brains: a conversation whose
//!   channel has a deployed flow runs it from its first visitor message, pinned to that version,
//!   until it ends; every other message goes to the model or built-in brain as before. It runs
//!   inside the conversation's session turn, so flow steps are ordered with every other message.
//! - [`dry_run`] plays a script of visitor messages through a flow with no side effects.

pub mod definition;
pub mod engine;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::NaiveDate;
use frontdesk_actors::{
    Brain, BrainError, BrainOutput, BrainRequest, ChangedBy, RescoreNow, Sender, StoredMessage, TurnState,
};
use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::brain::tools::{Scope, Tools};
use crate::domain::knowledge::Knowledge;
use crate::ids::{ConversationId, WorkspaceId};
use crate::net_guard::{self, TargetPolicy};
use crate::storage::flows::{self as flow_rows, VersionRow};
use crate::storage::{now_ms, Db, DbError};
use definition::{AnswerSource, Flow};
use engine::{Effects, HttpCall, Run, Said};

/// How long a deployment lookup is trusted; deploys through this node invalidate at once.
const DEPLOYMENT_TTL: Duration = Duration::from_secs(10);
/// Largest response body an HTTP block reads.
const MAX_HTTP_RESPONSE: usize = 1024 * 1024;

/// The variables a flow owns and persists; the rest (e.g. the booking dialog's) stay untouched.
const FLOW_KEYS: &[&str] = &["flow", "flow_run", "contact", "conversation"];

/// A deployed version and its parsed flow.
pub type Deployed = (VersionRow, Arc<Flow>);

/// A deployment lookup and when it was made.
type Looked = (Instant, Option<Deployed>);

/// Parsed flow versions (immutable, so kept) and the deployments of each bot and channel.
pub struct FlowCatalog {
    db: Db,
    versions: Mutex<HashMap<i64, Arc<Flow>>>,
    deployments: Mutex<HashMap<(i64, &'static str), Looked>>,
    /// What HTTP blocks may call; a flow is checked against it when it is saved.
    http_policy: TargetPolicy,
}

impl FlowCatalog {
    pub fn new(db: Db) -> Self {
        Self { db, versions: Mutex::default(), deployments: Mutex::default(), http_policy: TargetPolicy::default() }
    }

    pub fn with_http_policy(mut self, policy: TargetPolicy) -> Self {
        self.http_policy = policy;
        self
    }

    pub fn http_policy(&self) -> &TargetPolicy {
        &self.http_policy
    }

    fn parsed(&self, row: &VersionRow) -> Option<Arc<Flow>> {
        if let Some(flow) = lock(&self.versions).get(&row.id) {
            return Some(flow.clone());
        }
        match definition::parse(&row.document()) {
            Ok(flow) => {
                let flow = Arc::new(flow);
                let mut versions = lock(&self.versions);
                // Versions never change; the bound only keeps a long-lived node's memory in check.
                if versions.len() > 10_000 {
                    versions.clear();
                }
                versions.insert(row.id, flow.clone());
                Some(flow)
            }
            Err(problems) => {
                tracing::error!(version_id = row.id, ?problems, "a stored flow version does not read");
                None
            }
        }
    }

    /// The flow version a running conversation is pinned to.
    pub async fn version(&self, workspace_id: WorkspaceId, version_id: i64) -> Result<Option<Arc<Flow>>, DbError> {
        if let Some(flow) = lock(&self.versions).get(&version_id) {
            return Ok(Some(flow.clone()));
        }
        let row = self.db.run(move |conn| flow_rows::version(conn, workspace_id, version_id)).await?;
        Ok(row.and_then(|row| self.parsed(&row)))
    }

    /// The version deployed for new conversations of the bot on a deployment channel.
    pub async fn deployed(
        &self,
        workspace_id: WorkspaceId,
        bot_id: i64,
        channel: &'static str,
    ) -> Result<Option<Deployed>, DbError> {
        if let Some((at, found)) = lock(&self.deployments).get(&(bot_id, channel)) {
            if at.elapsed() < DEPLOYMENT_TTL {
                return Ok(found.clone());
            }
        }
        let row = self.db.run(move |conn| flow_rows::deployed(conn, workspace_id, bot_id, channel)).await?;
        let found = row.and_then(|row| self.parsed(&row).map(|flow| (row, flow)));
        lock(&self.deployments).insert((bot_id, channel), (Instant::now(), found.clone()));
        Ok(found)
    }

    /// Forgets the bot's deployments after a deploy or undeploy.
    pub fn invalidate(&self, bot_id: i64) {
        lock(&self.deployments).retain(|(bot, _), _| *bot != bot_id);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Today at the workspace's practice.
async fn today(db: &Db, workspace_id: WorkspaceId) -> NaiveDate {
    let tz =
        db.run(move |conn| crate::domain::booking::workspace_tz(conn, workspace_id)).await.unwrap_or(chrono_tz::UTC);
    chrono::Utc::now().with_timezone(&tz).date_naive()
}

/// The brain in front: runs the conversation's flow, or hands the message to `inner`.
pub struct FlowBrain {
    pub catalog: Arc<FlowCatalog>,
    pub inner: Arc<dyn Brain>,
    pub tools: Arc<Tools>,
    pub knowledge: Option<Arc<Knowledge>>,
    /// What an HTTP block may call (the shared URL guard's policy).
    pub http_policy: TargetPolicy,
}

impl FlowBrain {
    /// The flow this message belongs to: the conversation's running one, or the deployed one if
    /// this is the conversation's first visitor message. Sets up the run in `variables`.
    async fn flow_for(&self, request: &BrainRequest, variables: &mut Value) -> Result<Option<Arc<Flow>>, DbError> {
        match Run::of(variables) {
            Some(run) if run.ended.is_none() => {
                self.catalog.version(WorkspaceId(request.workspace_id), run.version_id).await
            }
            Some(_) => Ok(None),
            None => {
                let first = request.history.iter().filter(|m| m.sender == Sender::Visitor).count() == 1;
                if !first {
                    return Ok(None);
                }
                let channel = flow_rows::deployment_channel(&request.channel);
                let Some((version, flow)) =
                    self.catalog.deployed(WorkspaceId(request.workspace_id), request.bot_id, channel).await?
                else {
                    return Ok(None);
                };
                let run = Run {
                    flow_id: version.flow_id,
                    version_id: version.id,
                    version: version.version,
                    started_at: now_ms(),
                    ..Run::default()
                };
                variables["flow_run"] = serde_json::to_value(run).unwrap_or_default();
                Ok(Some(flow))
            }
        }
    }
}

impl Brain for FlowBrain {
    fn reply(&self, request: BrainRequest) -> BoxStream<'static, Result<BrainOutput, BrainError>> {
        let this = FlowBrain {
            catalog: self.catalog.clone(),
            inner: self.inner.clone(),
            tools: self.tools.clone(),
            knowledge: self.knowledge.clone(),
            http_policy: self.http_policy.clone(),
        };
        Box::pin(async_stream::stream! {
            let mut variables = request.variables.clone();
            let flow = match this.flow_for(&request, &mut variables).await {
                Ok(flow) => flow,
                Err(err) => {
                    yield Err(BrainError(format!("flow unavailable: {err}")));
                    return;
                }
            };
            let Some(flow) = flow else {
                let mut inner = this.inner.reply(request);
                while let Some(item) = inner.next().await {
                    yield item;
                }
                return;
            };
            let input = request.history.iter().rev().find(|m| m.sender == Sender::Visitor).map(|m| m.content.clone()).unwrap_or_default();
            let effects = LiveEffects {
                brain: &this,
                request: &request,
                today: today(&this.tools.db, WorkspaceId(request.workspace_id)).await,
                stored: Mutex::new(flow_part(&request.variables)),
            };
            let out = engine::turn(&flow, &mut variables, &input, &effects).await;
            tracing::debug!(trace = %serde_json::Value::Array(out.trace.clone()), "flow turn");
            let run = Run::of(&variables).unwrap_or_default();
            if out.texts.iter().all(|t| t.trim().is_empty()) && out.handoff.is_none() {
                // The flow ended without a word for this message: the bot answers it as usual.
                let mut request = request;
                request.variables = variables;
                let mut inner = this.inner.reply(request);
                while let Some(item) = inner.next().await {
                    yield item;
                }
                return;
            }
            let mut metadata = json!({ "flow": {
                "flow_id": run.flow_id,
                "version": run.version,
                "waiting": run.waiting,
                "ended": run.ended,
            }});
            if !out.quick_replies.is_empty() {
                metadata["quick_replies"] = json!(out.quick_replies);
            }
            if !out.citations.is_empty() {
                metadata["citations"] = Value::Array(out.citations.iter().flat_map(|c| c["citations"].as_array().cloned().unwrap_or_default()).collect());
            }
            yield Ok(BrainOutput::Metadata(metadata));
            let text = out.texts.iter().filter(|t| !t.trim().is_empty()).cloned().collect::<Vec<_>>().join("\n\n");
            for chunk in crate::brain::builtin::chunks(&text) {
                yield Ok(BrainOutput::Text(chunk));
            }
            if let Some(reason) = out.handoff {
                yield Ok(BrainOutput::Handoff { actor: ChangedBy::Rule, reason });
            }
        })
    }
}

/// Effects in a live conversation: the real booking engine, CRM, knowledge base and network.
struct LiveEffects<'a> {
    brain: &'a FlowBrain,
    request: &'a BrainRequest,
    today: NaiveDate,
    /// The flow's part of the variables as last stored, so that a checkpoint sends only what
    /// changed since (and an agent's edit to another field stays).
    stored: Mutex<Value>,
}

/// The part of the variables a flow keeps ([`FLOW_KEYS`]).
fn flow_part(variables: &Value) -> Value {
    Value::Object(
        FLOW_KEYS.iter().filter_map(|key| variables.get(*key).map(|v| ((*key).to_owned(), v.clone()))).collect(),
    )
}

impl LiveEffects<'_> {
    async fn tool(&self, name: &str, arguments: Value) -> Value {
        let scope = Scope {
            workspace_id: WorkspaceId(self.request.workspace_id),
            bot_id: self.request.bot_id,
            conversation_id: &self.request.conversation_id,
            variables: &self.request.variables,
            state: &self.request.state,
        };
        self.brain.tools.call(&scope, name, &arguments.to_string()).await.0
    }
}

/// A free answer from the knowledge base alone.
async fn knowledge_answer(
    knowledge: Option<&Knowledge>,
    workspace_id: WorkspaceId,
    bot_id: i64,
    question: &str,
) -> Option<Said> {
    match knowledge?.ask(workspace_id, bot_id, question).await {
        Ok(found) => {
            found.map(|found| Said { text: found.text.clone(), metadata: Some(found.metadata()), handoff: None })
        }
        Err(err) => {
            tracing::warn!(error = %err, "knowledge base unavailable to a flow");
            None
        }
    }
}

#[async_trait]
impl Effects for LiveEffects<'_> {
    fn today(&self) -> NaiveDate {
        self.today
    }

    async fn answer(&self, source: AnswerSource, question: &str, variables: &Value) -> Option<Said> {
        let (workspace_id, bot_id) = (WorkspaceId(self.request.workspace_id), self.request.bot_id);
        if source == AnswerSource::Knowledge {
            return knowledge_answer(self.brain.knowledge.as_deref(), workspace_id, bot_id, question).await;
        }
        // The bot's own brain answers the question as if the visitor had just asked it.
        let mut history: Vec<StoredMessage> = self.request.history.clone();
        if let Some(last) = history.iter_mut().rev().find(|m| m.sender == Sender::Visitor) {
            last.content = question.to_owned();
        }
        let request = BrainRequest { history, variables: variables.clone(), ..self.request.clone() };
        let mut said = Said::default();
        let mut stream = self.brain.inner.reply(request);
        while let Some(item) = stream.next().await {
            match item {
                Ok(BrainOutput::Text(text)) => said.text.push_str(&text),
                Ok(BrainOutput::Metadata(metadata)) => said.metadata = Some(metadata),
                Ok(BrainOutput::Handoff { reason, .. }) => said.handoff = Some(reason),
                Err(err) => {
                    tracing::warn!(error = %err, "a flow's free answer failed");
                    return None;
                }
            }
        }
        let unanswered = said.metadata.as_ref().is_some_and(|m| m["unanswered"] == true);
        (!said.text.trim().is_empty() && !unanswered).then_some(said)
    }

    async fn availability(&self, service: &str, date: NaiveDate, doctor: Option<&str>) -> Value {
        self.tool("check_availability", json!({ "service": service, "date": date.to_string(), "doctor": doctor })).await
    }

    async fn book(&self, arguments: Value) -> Value {
        self.tool("book_appointment", arguments).await
    }

    async fn lead(&self, _variables: &Value) -> Result<bool, String> {
        // The block stored its contact first (a checkpoint): the pass reads it.
        let rescore = RescoreNow {
            workspace_id: self.request.workspace_id,
            conversation_id: self.request.conversation_id.clone(),
        };
        self.brain.tools.scorer.send(rescore).await.map_err(|err| format!("the lead scorer is gone: {err}"))
    }

    async fn http(&self, call: HttpCall) -> Result<Value, String> {
        call_out(&self.brain.http_policy, call).await
    }

    async fn persist(&self, variables: &Value) -> Result<(), String> {
        let now = flow_part(variables);
        let before = self.stored.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.request.state.store_changes(&before, &now).await.map_err(|err| err.0)?;
        *self.stored.lock().unwrap_or_else(|p| p.into_inner()) = now;
        Ok(())
    }
}

/// An HTTP block's call, through the URL guard: JSON in, JSON out, bounded in time and size.
async fn call_out(policy: &TargetPolicy, call: HttpCall) -> Result<Value, String> {
    let url = net_guard::check_url(&call.url, policy.clone()).map_err(|err| err.to_string())?;
    let client = net_guard::client_with_agent(
        policy.clone(),
        Duration::from_secs(call.timeout_secs),
        concat!("frontdesk-flows/", env!("CARGO_PKG_VERSION")),
    );
    let method = match call.method {
        definition::Method::Get => reqwest::Method::GET,
        definition::Method::Post => reqwest::Method::POST,
        definition::Method::Put => reqwest::Method::PUT,
        definition::Method::Patch => reqwest::Method::PATCH,
        definition::Method::Delete => reqwest::Method::DELETE,
    };
    let mut request = client.request(method, url).header("accept", "application/json");
    for (name, value) in &call.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    if let Some(body) = &call.body {
        request = request.json(body);
    }
    let mut response = request.send().await.map_err(|err| format!("request failed: {err}"))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| format!("reading the response failed: {err}"))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_HTTP_RESPONSE {
            return Err(format!("the response is larger than {MAX_HTTP_RESPONSE} bytes"));
        }
    }
    if !status.is_success() {
        return Err(format!("the endpoint answered HTTP {}", status.as_u16()));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&body).map_err(|err| format!("the response is not JSON: {err}"))
}

/// What a dry run needs from the server: read-only lookups.
pub struct DryRunContext {
    pub db: Db,
    pub tools: Arc<Tools>,
    pub knowledge: Option<Arc<Knowledge>>,
    pub workspace_id: WorkspaceId,
    pub bot_id: i64,
}

/// Effects of a dry run: lookups are real, everything that would change the world is recorded
/// instead of done.
struct DryEffects<'a> {
    context: &'a DryRunContext,
    today: NaiveDate,
    done: Mutex<Vec<Value>>,
}

#[async_trait]
impl Effects for DryEffects<'_> {
    fn today(&self) -> NaiveDate {
        self.today
    }

    async fn answer(&self, _source: AnswerSource, question: &str, _variables: &Value) -> Option<Said> {
        // The model is not called (it costs tokens and counts usage); the knowledge base is read.
        let found = knowledge_answer(
            self.context.knowledge.as_deref(),
            self.context.workspace_id,
            self.context.bot_id,
            question,
        )
        .await;
        lock(&self.done).push(json!({ "effect": "answer", "question": question, "answered": found.is_some() }));
        found
    }

    async fn availability(&self, service: &str, date: NaiveDate, doctor: Option<&str>) -> Value {
        let dry_run = ConversationId::from("dry-run");
        let scope = Scope {
            workspace_id: self.context.workspace_id,
            bot_id: self.context.bot_id,
            conversation_id: &dry_run,
            variables: &Value::Null,
            state: &TurnState::unattached(),
        };
        let arguments = json!({ "service": service, "date": date.to_string(), "doctor": doctor }).to_string();
        self.context.tools.call(&scope, "check_availability", &arguments).await.0
    }

    async fn book(&self, arguments: Value) -> Value {
        lock(&self.done).push(json!({ "effect": "book", "would_book": arguments }));
        json!({ "booked": { "dry_run": true, "request": arguments } })
    }

    async fn lead(&self, variables: &Value) -> Result<bool, String> {
        lock(&self.done).push(json!({ "effect": "lead", "would_save": variables.get("contact") }));
        Ok(true)
    }

    async fn http(&self, call: HttpCall) -> Result<Value, String> {
        lock(&self.done).push(json!({ "effect": "http", "would_call": call }));
        Ok(json!({}))
    }

    async fn persist(&self, _variables: &Value) -> Result<(), String> {
        Ok(())
    }
}

/// The result of a dry run.
#[derive(Debug, serde::Serialize)]
pub struct DryRun {
    /// Visitor and bot messages in order; bot entries carry their buttons and hand-over.
    pub transcript: Vec<Value>,
    pub variables: Value,
    /// Bookings, leads, outside calls and answers the flow would have made.
    pub effects: Vec<Value>,
    /// Every block run, turn by turn.
    pub trace: Vec<Value>,
}

/// Plays `messages` through `flow` as a new conversation with `variables`, changing nothing.
pub async fn dry_run(context: &DryRunContext, flow: &Flow, messages: &[String], variables: Value) -> DryRun {
    let effects =
        DryEffects { context, today: today(&context.db, context.workspace_id).await, done: Mutex::new(Vec::new()) };
    let mut variables = if variables.is_object() { variables } else { json!({}) };
    variables["flow_run"] = serde_json::to_value(Run::default()).unwrap_or_default();
    let mut transcript = Vec::new();
    let mut trace = Vec::new();
    for message in messages {
        transcript.push(json!({ "from": "visitor", "text": message }));
        if Run::of(&variables).is_some_and(|run| run.ended.is_some()) {
            transcript.push(json!({ "from": "bot", "text": null, "note": "the flow has ended" }));
            continue;
        }
        let out = engine::turn(flow, &mut variables, message, &effects).await;
        let mut entry = json!({ "from": "bot", "text": out.texts.join("\n\n") });
        if !out.quick_replies.is_empty() {
            entry["quick_replies"] = json!(out.quick_replies);
        }
        if let Some(reason) = &out.handoff {
            entry["handoff"] = json!(reason);
        }
        transcript.push(entry);
        trace.push(Value::Array(out.trace));
    }
    let effects = effects.done.into_inner().unwrap_or_default();
    DryRun { transcript, variables, effects, trace }
}
