//! The model brain: any OpenAI-compatible chat model (OpenAI, vLLM, llama.cpp, Ollama…) through
//! async-openai, streamed token by token, grounded in the bot's settings, the request's
//! context and the knowledge base's best passages.
//!
//! With its [`tools`](super::tools) the model searches the knowledge base, checks availability,
//! books and cancels, captures contact details and asks for a person; tool results go back to it
//! until it answers in words (at most four rounds), and every call and result is stored with the
//! reply.
//!
//! The built-in brain stays underneath it. It answers when the bot has no model, when the
//! workspace's monthly token cap is reached, for a booking dialog it started itself and for a
//! visitor asking for a person (it knows who is online), and whenever the model fails: a connection error, a
//! 429 or 5xx, a timeout or an empty stream is retried once after a short pause, then the
//! built-in brain answers and the failure is logged and counted. A conversation never hangs on
//! the model: the whole reply is bounded by the timeout.
//!
//! The stream is read into frontdesk's own chunk type (async-openai's "bring your own types"),
//! which tolerates what local servers leave out or repeat.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::Client;
use frontdesk_actors::{Brain, BrainError, BrainOutput, BrainRequest, Sender, StoredMessage};
use futures::stream::BoxStream;
use futures::StreamExt;
use serde::Deserialize;

use super::builtin::{asks_for_person, BuiltinBrain};
use super::reception;
use super::redact::{Redactor, StreamRestorer};
use super::tools::{self, Tools};
use super::BotSettingsCache;
use crate::config::ModelDefaults;
use crate::domain::knowledge::index::Hit;
use crate::domain::knowledge::Knowledge;
use crate::ids::WorkspaceId;
use crate::storage::bots::BotModel;
use crate::storage::{now_ms, usage, BotSettings, Db};

/// Passages of the knowledge base given to the model with each question.
const PASSAGES: usize = 4;
/// Pause before the one retry.
const RETRY_AFTER: Duration = Duration::from_millis(400);
/// Rounds of tool calls before the model must answer in words.
const MAX_TOOL_STEPS: usize = 4;

/// What one model call is made with, the bot's settings laid over the server's.
#[derive(Clone)]
struct Endpoint {
    /// The operator's profile the call goes to (`None`: the server's own endpoint): it names
    /// the client, so connections are reused per profile.
    profile: Option<String>,
    base_url: String,
    api_key: Option<String>,
    allow_private: bool,
    model: String,
    temperature: f32,
    max_tokens: u32,
    timeout: Duration,
    redact_pii: bool,
    first_tool: Option<String>,
}

type Clients = Arc<Mutex<HashMap<Option<String>, Client<OpenAIConfig>>>>;

pub struct ModelBrain {
    defaults: ModelDefaults,
    bots: Arc<BotSettingsCache>,
    knowledge: Option<Arc<Knowledge>>,
    /// What the model may do by calling functions; `None` offers no tools.
    tools: Option<Arc<Tools>>,
    fallback: Arc<BuiltinBrain>,
    db: Db,
    /// One client per endpoint, so connections are reused across replies.
    clients: Clients,
}

impl ModelBrain {
    pub fn new(
        defaults: ModelDefaults,
        bots: Arc<BotSettingsCache>,
        knowledge: Option<Arc<Knowledge>>,
        fallback: Arc<BuiltinBrain>,
        db: Db,
    ) -> Self {
        Self { defaults, bots, knowledge, tools: None, fallback, db, clients: Clients::default() }
    }

    /// Offers the model its tools (booking, leads, knowledge, hand-over).
    pub fn with_tools(mut self, tools: Tools) -> Self {
        self.tools = Some(Arc::new(tools));
        self
    }
}

/// The longest a bot may let one model reply take.
pub const MAX_TIMEOUT_SECS: u64 = 120;
/// The longest model name a bot may write.
const MAX_MODEL_NAME_CHARS: usize = 200;

/// Whether a bot's model settings stay within what the operator allows: a profile the server
/// has, a model that profile offers, and parameters within their bounds. The endpoint, its key
/// and where the key is read from are never the bot's to choose. The error names the field.
pub fn check_bot_model(model: &BotModel, defaults: &ModelDefaults) -> Result<(), String> {
    if model.base_url.is_some() || model.api_key_env.is_some() {
        let field = if model.base_url.is_some() { "base_url" } else { "api_key_env" };
        return Err(format!(
            "settings.model.{field} is not a bot setting: the server's operator chooses model endpoints and keys; \
             name one of the server's model profiles in settings.model.profile instead{}",
            profiles_hint(defaults)
        ));
    }
    let allowed_models = match &model.profile {
        Some(name) => match defaults.profiles.get(name) {
            Some(profile) => profile.models.as_slice(),
            None => {
                return Err(format!(
                    "settings.model.profile `{name}` is not one of the server's model profiles{}",
                    profiles_hint(defaults)
                ))
            }
        },
        None => &[],
    };
    if let Some(name) = &model.model {
        let len = name.trim().chars().count();
        if len == 0 || len > MAX_MODEL_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(format!(
                "settings.model.model must be 1 to {MAX_MODEL_NAME_CHARS} characters without control characters"
            ));
        }
        if !allowed_models.is_empty() && !allowed_models.iter().any(|m| m == name) {
            return Err(format!(
                "settings.model.model `{name}` is not offered by profile `{}`: one of {}",
                model.profile.as_deref().unwrap_or_default(),
                allowed_models.join(", ")
            ));
        }
    }
    if let Some(t) = model.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err("settings.model.temperature must be between 0 and 2".into());
        }
    }
    if let Some(tokens) = model.max_tokens {
        if tokens == 0 || tokens > defaults.max_tokens_limit {
            return Err(format!("settings.model.max_tokens must be between 1 and {}", defaults.max_tokens_limit));
        }
    }
    if let Some(secs) = model.timeout_secs {
        if secs == 0 || secs > MAX_TIMEOUT_SECS {
            return Err(format!("settings.model.timeout_secs must be between 1 and {MAX_TIMEOUT_SECS}"));
        }
    }
    Ok(())
}

fn profiles_hint(defaults: &ModelDefaults) -> String {
    if defaults.profiles.is_empty() {
        " (this server has none)".to_owned()
    } else {
        format!(" (one of: {})", defaults.profiles.keys().cloned().collect::<Vec<_>>().join(", "))
    }
}

/// The bot's model, if it has one (on the server's endpoint or one of the operator's profiles).
/// Settings stored before the bounds existed are held to them here too: a legacy endpoint or
/// key variable is ignored, parameters are clamped, and a profile the operator has since
/// removed leaves the bot to the built-in brain.
fn endpoint_for(defaults: &ModelDefaults, settings: &BotSettings) -> Option<Endpoint> {
    let own = settings.model.clone().unwrap_or_default();
    if own.enabled == Some(false) {
        return None;
    }
    let (base_url, api_key, allow_private, profile_model) = match &own.profile {
        None => (defaults.base_url.clone(), defaults.api_key.clone(), defaults.allow_private, None),
        Some(name) => {
            let Some(profile) = defaults.profiles.get(name) else {
                tracing::warn!(profile = %name, "a bot names a model profile the server no longer has; the built-in brain answers");
                return None;
            };
            (profile.base_url.clone(), profile.api_key.clone(), profile.allow_private, profile.model.clone())
        }
    };
    let model = own
        .model
        .clone()
        .filter(|m| !m.trim().is_empty())
        .or(profile_model)
        .or_else(|| own.profile.is_none().then(|| defaults.model.clone()).flatten())?;
    Some(Endpoint {
        profile: own.profile.clone(),
        base_url,
        api_key,
        allow_private,
        model,
        temperature: own.temperature.unwrap_or(defaults.temperature).clamp(0.0, 2.0),
        max_tokens: own.max_tokens.unwrap_or(defaults.max_tokens).clamp(1, defaults.max_tokens_limit),
        timeout: own
            .timeout_secs
            .map(|secs| Duration::from_secs(secs.clamp(1, MAX_TIMEOUT_SECS)))
            .unwrap_or(defaults.timeout),
        redact_pii: own.redact_pii.unwrap_or(defaults.redact_pii),
        first_tool: own.first_tool.clone().filter(|name| !name.trim().is_empty()),
    })
}

fn client_for(clients: &Clients, endpoint: &Endpoint) -> Client<OpenAIConfig> {
    let mut clients = clients.lock().unwrap_or_else(|p| p.into_inner());
    clients
        .entry(endpoint.profile.clone())
        .or_insert_with(|| {
            // Local servers take any key; OpenAI's own needs one, and says so if it is missing.
            let config = OpenAIConfig::new()
                .with_api_base(endpoint.base_url.trim_end_matches('/'))
                .with_api_key(endpoint.api_key.clone().unwrap_or_default());
            // Without async-openai's default retry layer (three retries with backoff): the
            // brain retries once on its own terms, then the built-in brain answers. The client
            // is the SSRF guard's: no redirects, and a host name must resolve to a public
            // address unless the operator allowed private ones for this endpoint.
            let http = crate::net_guard::model_client(&endpoint.base_url, endpoint.allow_private);
            let transport = async_openai::middleware::ReqwestService::new(http);
            Client::with_config(config).with_http_service(transport)
        })
        .clone()
}

/// A streamed chunk, as leniently as servers send it.
#[derive(Debug, Default, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallChunk>>,
}

/// A piece of a tool call. The id and name come in the first piece of each call; some servers
/// repeat them in every piece, which must not double them.
#[derive(Debug, Default, Deserialize)]
struct ToolCallChunk {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionChunk>,
}

#[derive(Debug, Default, Deserialize)]
struct FunctionChunk {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// A tool call put together from its pieces.
#[derive(Debug, Clone, Default, PartialEq)]
struct ToolCall {
    id: String,
    name: String,
    arguments: String,
}

/// What one model request gave.
#[derive(Debug, Default)]
struct Step {
    text: String,
    calls: Vec<ToolCall>,
    finish: Option<String>,
    usage: Option<Usage>,
    broke: Option<String>,
}

impl Step {
    fn add_tool_call(&mut self, piece: ToolCallChunk) {
        let index = piece.index.unwrap_or(self.calls.len().saturating_sub(1));
        while self.calls.len() <= index {
            self.calls.push(ToolCall::default());
        }
        let call = &mut self.calls[index];
        if let Some(id) = piece.id.filter(|id| !id.is_empty()) {
            call.id = id;
        }
        if let Some(function) = piece.function {
            if let Some(name) = function.name.filter(|n| !n.is_empty()) {
                call.name = name;
            }
            if let Some(arguments) = function.arguments {
                call.arguments.push_str(&arguments);
            }
        }
    }

    /// The calls with a name, each with an id (servers that send none get one).
    fn finished_calls(&self) -> Vec<ToolCall> {
        self.calls
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.name.is_empty())
            .map(|(i, c)| ToolCall {
                id: if c.id.is_empty() { format!("call_{i}") } else { c.id.clone() },
                ..c.clone()
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: i64,
    #[serde(default)]
    completion_tokens: i64,
}

/// Why a model call did not give a reply.
#[derive(Debug)]
struct Failure {
    reason: String,
    /// Worth one more try (network, 429, 5xx, timeout, empty stream).
    retry: bool,
}

fn failure(err: &OpenAIError) -> Failure {
    let retry = match err {
        OpenAIError::ApiError(response) => {
            let status = response.status_code.as_u16();
            status == 429 || status >= 500
        }
        OpenAIError::InvalidArgument(_) => false,
        _ => true,
    };
    Failure { reason: err.to_string(), retry }
}

/// What went to the model, for the reply's metadata.
struct Prompt {
    messages: Vec<serde_json::Value>,
    history_used: usize,
    history_budget: u32,
    passages: Vec<Hit>,
}

/// A rough token count (four characters a token), enough to keep within a budget.
fn estimate_tokens(text: &str) -> u32 {
    (text.chars().count() as u32).div_ceil(4) + 4
}

fn system_prompt(settings: &BotSettings, context: Option<&serde_json::Value>, passages: &[Hit]) -> String {
    let rules = context.map(|c| &c["rules"]);
    fn text(value: Option<&serde_json::Value>) -> Option<&str> {
        value.and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty())
    }
    let company = text(rules.map(|r| &r["companyName"])).unwrap_or("the business");
    let tone = text(rules.map(|r| &r["tone"])).unwrap_or(settings.tone.as_str());
    let mut prompt = format!(
        "You are the front-desk assistant of {company}, chatting with a visitor on its website. Be {tone}, \
         brief and accurate. Answer only from the facts, policies and passages below; when they do not say, \
         say you do not know and offer to put the visitor in touch with a person. Cite a passage you used as \
         [n]. Never invent prices, times or names.\n"
    );
    if let Some(description) = text(rules.map(|r| &r["companyDescription"])) {
        prompt.push_str(&format!("\nAbout {company}: {description}\n"));
    }
    let mut facts: Vec<(String, String)> =
        settings.company_facts.iter().chain(&settings.policies).map(|f| (f.title.clone(), f.content.clone())).collect();
    if let Some(policies) = rules.and_then(|r| r["policies"].as_array()) {
        for policy in policies {
            if let (Some(title), Some(content)) = (text(Some(&policy["title"])), text(Some(&policy["content"]))) {
                facts.push((title.to_owned(), content.to_owned()));
            }
        }
    }
    if !facts.is_empty() {
        prompt.push_str("\nFacts and policies:\n");
        for (title, content) in facts {
            prompt.push_str(&format!("- {title}: {content}\n"));
        }
    }
    if let Some(scraped) = text(context.map(|c| &c["scrapedData"])) {
        prompt.push_str(&format!("\nFrom the website:\n{scraped}\n"));
    }
    if !passages.is_empty() {
        prompt.push_str("\nPassages:\n");
        for (n, hit) in passages.iter().enumerate() {
            let source = match &hit.url {
                Some(url) => format!("{} ({url})", hit.title),
                None => hit.title.clone(),
            };
            prompt.push_str(&format!("[{}] source {}: {source}\n{}\n", n + 1, hit.source_id, hit.text.trim()));
        }
    }
    prompt
}

/// The system prompt, then as much of the conversation as fits the budget (the oldest dropped
/// first; the question always goes).
fn assemble(settings: &BotSettings, request: &BrainRequest, passages: Vec<Hit>, budget: u32) -> Prompt {
    let mut spent = 0;
    let mut turns: Vec<&StoredMessage> = Vec::new();
    for (i, message) in request.history.iter().rev().enumerate() {
        if message.sender == Sender::System {
            continue;
        }
        let cost = estimate_tokens(&message.content);
        if i > 0 && spent + cost > budget {
            break;
        }
        spent += cost;
        turns.push(message);
    }
    turns.reverse();
    let mut messages = vec![
        serde_json::json!({ "role": "system", "content": system_prompt(settings, request.context.as_ref(), &passages) }),
    ];
    for message in &turns {
        let role = if message.sender == Sender::Visitor { "user" } else { "assistant" };
        messages.push(serde_json::json!({ "role": role, "content": message.content }));
    }
    Prompt { messages, history_used: turns.len(), history_budget: budget, passages }
}

/// The passages the reply cites as `[n]`.
fn cited(text: &str, passages: &[Hit]) -> Vec<serde_json::Value> {
    passages
        .iter()
        .enumerate()
        .filter(|(n, _)| text.contains(&format!("[{}]", n + 1)))
        .map(|(_, hit)| {
            serde_json::json!({ "source_id": hit.source_id, "chunk_id": hit.chunk_id, "title": hit.title, "url": hit.url })
        })
        .collect()
}

/// Whether the conversation is in the middle of a booking dialog, which the built-in
/// reception runs (its state lives in the `reception` variable while it has an intent).
fn in_booking_dialog(variables: &serde_json::Value) -> bool {
    variables.get("reception").and_then(|r| r.get("intent")).is_some_and(|intent| !intent.is_null())
}

impl Brain for ModelBrain {
    fn reply(&self, request: BrainRequest) -> BoxStream<'static, Result<BrainOutput, BrainError>> {
        let bots = self.bots.clone();
        let defaults = self.defaults.clone();
        let clients = self.clients.clone();
        let call = ModelCall {
            knowledge: self.knowledge.clone(),
            tools: self.tools.clone(),
            fallback: self.fallback.clone(),
            db: self.db.clone(),
            cap: self.defaults.monthly_token_cap,
            budget: self.defaults.history_tokens,
        };
        Box::pin(async_stream::stream! {
            let settings = match bots.get(WorkspaceId(request.workspace_id), request.bot_id).await {
                Ok(settings) => settings,
                Err(err) => {
                    yield Err(BrainError(err.to_string()));
                    return;
                }
            };
            let endpoint = endpoint_for(&defaults, &settings);
            let client = endpoint.as_ref().map(|e| client_for(&clients, e));
            let mut outputs = call.run(settings, request, endpoint, client);
            while let Some(output) = outputs.next().await {
                yield output;
            }
        })
    }
}

/// One reply's worth of work, owned by its stream.
struct ModelCall {
    knowledge: Option<Arc<Knowledge>>,
    tools: Option<Arc<Tools>>,
    fallback: Arc<BuiltinBrain>,
    db: Db,
    cap: Option<u64>,
    budget: u32,
}

impl ModelCall {
    fn run(
        self,
        settings: Arc<BotSettings>,
        request: BrainRequest,
        endpoint: Option<Endpoint>,
        client: Option<Client<OpenAIConfig>>,
    ) -> BoxStream<'static, Result<BrainOutput, BrainError>> {
        Box::pin(async_stream::stream! {
            let question = request.history.iter().rev().find(|m| m.sender == Sender::Visitor).map(|m| m.content.clone());
            let (Some(endpoint), Some(client), Some(question)) = (endpoint, client, question) else {
                let mut inner = builtin_with_note(&self.fallback, request, None);
                while let Some(output) = inner.next().await {
                    yield output;
                }
                return;
            };
            // A visitor asking for a person is answered by the built-in brain, which knows
            // whether anyone is online.
            // With tools the model books itself; a dialog the built-in reception started stays
            // with it to the end.
            let builtin_turn = in_booking_dialog(&request.variables)
                || (self.tools.is_none() && reception::detect_intent(&question).is_some())
                || asks_for_person(&question);
            let month = usage::month_of(now_ms());
            let capped = match self.cap {
                Some(cap) if !builtin_turn => {
                    let (workspace_id, month) = (WorkspaceId(request.workspace_id), month.clone());
                    match self.db.run(move |conn| usage::get(conn, workspace_id, &month)).await {
                        Ok(used) => used.total_tokens() as u64 >= cap,
                        Err(err) => {
                            tracing::warn!(error = %err, "token usage unreadable; not capping");
                            false
                        }
                    }
                }
                _ => false,
            };
            if builtin_turn || capped {
                if capped {
                    tracing::warn!(workspace_id = request.workspace_id, %month, "monthly token cap reached; the built-in brain answers");
                }
                let note = capped.then(|| serde_json::json!({ "skipped": "monthly token cap reached" }));
                let mut inner = builtin_with_note(&self.fallback, request, note);
                while let Some(output) = inner.next().await {
                    yield output;
                }
                return;
            }
            let passages = match &self.knowledge {
                Some(knowledge) => knowledge
                    .search(WorkspaceId(request.workspace_id), request.bot_id, &question, PASSAGES)
                    .await
                    .map(|found| found.hits)
                    .unwrap_or_else(|err| {
                        tracing::warn!(error = %err.message(), "knowledge unavailable for the model");
                        Vec::new()
                    }),
                None => Vec::new(),
            };
            let prompt = assemble(&settings, &request, passages, self.budget);
            let mut redactor = Redactor::default();
            let mut messages = prompt.messages.clone();
            if endpoint.redact_pii {
                // The conversation, not the system prompt: the business's own address and
                // phone are no one's private data, and the model needs them to answer.
                for message in messages.iter_mut().skip(1) {
                    if let Some(content) = message["content"].as_str().map(str::to_owned) {
                        message["content"] = redactor.redact(&content).into();
                    }
                }
            }
            let deadline = tokio::time::Instant::now() + endpoint.timeout;
            let scope_variables = request.variables.clone();
            let mut said = String::new();
            let mut total = Usage::default();
            let mut estimated = false;
            let mut model_name = None;
            let mut finished = None;
            let mut broke: Option<String> = None;
            let mut tool_log: Vec<serde_json::Value> = Vec::new();
            let mut handoff: Option<String> = None;
            let mut last_failure = None;
            let mut answered = false;
            for step in 0..=MAX_TOOL_STEPS {
                // The last step goes without tools, so the model has to answer in words.
                let offer_tools = self.tools.is_some() && step < MAX_TOOL_STEPS;
                let mut body = serde_json::json!({
                    "model": endpoint.model,
                    "messages": messages,
                    "temperature": endpoint.temperature,
                    "max_tokens": endpoint.max_tokens,
                    "stream": true,
                    "stream_options": { "include_usage": true },
                });
                if offer_tools {
                    body["tools"] = tools::definitions().into();
                    body["tool_choice"] = match (&endpoint.first_tool, step) {
                        (Some(name), 0) => serde_json::json!({ "type": "function", "function": { "name": name } }),
                        _ => "auto".into(),
                    };
                }
                let mut outcome: Option<Step> = None;
                for attempt in 0..2 {
                    if attempt > 0 {
                        tokio::time::sleep(RETRY_AFTER).await;
                    }
                    let opened = tokio::time::timeout_at(deadline, client.chat().create_stream_byot::<_, Chunk>(body.clone())).await;
                    let mut chunks = match opened {
                        Ok(Ok(chunks)) => chunks,
                        Ok(Err(err)) => {
                            let failed = failure(&err);
                            let retry = failed.retry;
                            last_failure = Some(failed);
                            if retry { continue } else { break }
                        }
                        Err(_) => {
                            last_failure = Some(Failure { reason: format!("no answer within {:?}", endpoint.timeout), retry: true });
                            continue;
                        }
                    };
                    let mut step_result = Step::default();
                    let mut restorer = StreamRestorer::default();
                    loop {
                        match tokio::time::timeout_at(deadline, chunks.next()).await {
                            Err(_) => {
                                step_result.broke = Some(format!("the reply took longer than {:?}", endpoint.timeout));
                                break;
                            }
                            Ok(None) => break,
                            Ok(Some(Err(err))) => {
                                step_result.broke = Some(err.to_string());
                                break;
                            }
                            Ok(Some(Ok(chunk))) => {
                                if chunk.model.is_some() {
                                    model_name = chunk.model;
                                }
                                if chunk.usage.is_some() {
                                    step_result.usage = chunk.usage;
                                }
                                for choice in chunk.choices {
                                    if let Some(delta) = choice.delta {
                                        if let Some(mut piece) = delta.content.filter(|c| !c.is_empty()) {
                                            // A model may emit a NUL, which PostgreSQL cannot store.
                                            crate::text::drop_nul(&mut piece);
                                            let piece = restorer.push(&redactor, &piece);
                                            if !piece.is_empty() {
                                                step_result.text.push_str(&piece);
                                                yield Ok(BrainOutput::Text(piece));
                                            }
                                        }
                                        for call in delta.tool_calls.unwrap_or_default() {
                                            step_result.add_tool_call(call);
                                        }
                                    }
                                    if choice.finish_reason.is_some() {
                                        step_result.finish = choice.finish_reason;
                                    }
                                }
                            }
                        }
                    }
                    let rest = restorer.finish(&redactor);
                    if !rest.is_empty() {
                        step_result.text.push_str(&rest);
                        yield Ok(BrainOutput::Text(rest));
                    }
                    if step_result.text.is_empty() && step_result.calls.is_empty() {
                        // Nothing said and nothing asked: an empty stream (or one that broke
                        // first) is a failure, worth a retry.
                        last_failure = Some(Failure {
                            reason: step_result.broke.unwrap_or_else(|| "the model sent an empty stream".into()),
                            retry: true,
                        });
                        continue;
                    }
                    outcome = Some(step_result);
                    break;
                }
                let Some(step_result) = outcome else { break };
                answered = true;
                said.push_str(&step_result.text);
                match step_result.usage {
                    Some(used) => {
                        total.prompt_tokens += used.prompt_tokens;
                        total.completion_tokens += used.completion_tokens;
                    }
                    None => {
                        estimated = true;
                        total.prompt_tokens += messages.iter().map(|m| estimate_tokens(&m["content"].to_string()) as i64).sum::<i64>();
                        total.completion_tokens += estimate_tokens(&step_result.text) as i64;
                    }
                }
                finished = step_result.finish.clone();
                if let Some(reason) = step_result.broke.clone() {
                    broke = Some(reason);
                    break;
                }
                let calls = step_result.finished_calls();
                let (Some(tool_box), false) = (&self.tools, calls.is_empty()) else { break };
                // Some servers refuse a null content on an assistant message that calls tools.
                messages.push(serde_json::json!({
                    "role": "assistant",
                    "content": if endpoint.redact_pii { redactor.redact(&step_result.text) } else { step_result.text.clone() },
                    "tool_calls": calls.iter().map(|c| serde_json::json!({
                        "id": c.id, "type": "function", "function": { "name": c.name, "arguments": c.arguments }
                    })).collect::<Vec<_>>(),
                }));
                let scope = tools::Scope {
                    workspace_id: WorkspaceId(request.workspace_id),
                    bot_id: request.bot_id,
                    conversation_id: &request.conversation_id,
                    variables: &scope_variables,
                    state: &request.state,
                };
                for call in calls {
                    // The model saw placeholders; the tools get what they stand for.
                    let arguments = redactor.restore(&call.arguments);
                    let (result, effects) = tool_box.call(&scope, &call.name, &arguments).await;
                    tracing::info!(tool = %call.name, "model called a tool");
                    if effects.handoff.is_some() {
                        handoff = effects.handoff;
                    }
                    tool_log.push(serde_json::json!({
                        "id": call.id, "name": call.name, "arguments": serde_json::from_str::<serde_json::Value>(&arguments).unwrap_or(serde_json::Value::String(arguments.clone())), "result": result,
                    }));
                    let content = if endpoint.redact_pii { redactor.redact(&result.to_string()) } else { result.to_string() };
                    messages.push(serde_json::json!({ "role": "tool", "tool_call_id": call.id, "content": content }));
                }
            }
            if answered && !said.is_empty() {
                let mut model = serde_json::json!({
                    "name": model_name.unwrap_or_else(|| endpoint.model.clone()),
                    "usage": {
                        "prompt_tokens": total.prompt_tokens,
                        "completion_tokens": total.completion_tokens,
                        "total_tokens": total.prompt_tokens + total.completion_tokens,
                        "estimated": estimated,
                    },
                    "history_messages": prompt.history_used,
                    "history_budget_tokens": prompt.history_budget,
                    "finish_reason": finished,
                });
                if endpoint.redact_pii {
                    model["redacted"] = (!redactor.is_empty()).into();
                }
                if let Some(reason) = &broke {
                    // Text went out already: it stays, and the break is on record.
                    model["error"] = reason.clone().into();
                    tracing::warn!(%reason, "model reply broke off");
                }
                let mut metadata = serde_json::json!({ "model": model, "citations": cited(&said, &prompt.passages) });
                if !tool_log.is_empty() {
                    metadata["tools"] = tool_log.into();
                }
                yield Ok(BrainOutput::Metadata(metadata));
                if let Some(reason) = handoff {
                    yield Ok(BrainOutput::Handoff { actor: tools::HANDOFF_BY, reason });
                }
                let added = usage::MonthUsage {
                    prompt_tokens: total.prompt_tokens,
                    completion_tokens: total.completion_tokens,
                    replies: 1,
                    ..usage::MonthUsage::default()
                };
                record(&self.db, WorkspaceId(request.workspace_id), &month, added).await;
                return;
            }
            if answered && last_failure.is_none() {
                last_failure = Some(Failure { reason: "the model called tools but said nothing".into(), retry: false });
            }
            let reason = last_failure.map(|f| f.reason).unwrap_or_else(|| "unknown".into());
            tracing::warn!(%reason, model = %endpoint.model, "model failed; the built-in brain answers");
            record(&self.db, WorkspaceId(request.workspace_id), &month, usage::MonthUsage { failures: 1, ..usage::MonthUsage::default() }).await;
            let note = serde_json::json!({ "name": endpoint.model, "fallback": true, "error": reason });
            let mut inner = builtin_with_note(&self.fallback, request, Some(note));
            while let Some(output) = inner.next().await {
                yield output;
            }
        })
    }
}

/// The built-in brain's reply, with what happened to the model (`note`) recorded under
/// `model` in the reply's metadata.
fn builtin_with_note(
    fallback: &BuiltinBrain,
    request: BrainRequest,
    note: Option<serde_json::Value>,
) -> BoxStream<'static, Result<BrainOutput, BrainError>> {
    let mut inner = fallback.reply(request);
    Box::pin(async_stream::stream! {
        let mut noted = false;
        while let Some(output) = inner.next().await {
            match (output, &note) {
                (Ok(BrainOutput::Metadata(mut metadata)), Some(note)) => {
                    if let Some(object) = metadata.as_object_mut() {
                        object.insert("model".into(), note.clone());
                    }
                    noted = true;
                    yield Ok(BrainOutput::Metadata(metadata));
                }
                (other, _) => yield other,
            }
        }
        if let (Some(note), false) = (note, noted) {
            yield Ok(BrainOutput::Metadata(serde_json::json!({ "model": note })));
        }
    })
}

async fn record(db: &Db, workspace_id: WorkspaceId, month: &str, added: usage::MonthUsage) {
    let month = month.to_owned();
    if let Err(err) = db.run(move |conn| usage::add(conn, workspace_id, &month, &added)).await {
        tracing::warn!(error = %err, "model usage not recorded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: i64, sender: Sender, content: &str) -> StoredMessage {
        StoredMessage {
            id: seq,
            conversation_id: "c".into(),
            seq,
            sender,
            agent_id: None,
            content: content.into(),
            media: None,
            client_msg_id: None,
            reply_to: None,
            created_at: 0,
            metadata: None,
        }
    }

    fn request(history: Vec<StoredMessage>) -> BrainRequest {
        BrainRequest {
            workspace_id: 1,
            bot_id: 1,
            conversation_id: "c".into(),
            channel: "widget".into(),
            history,
            variables: serde_json::json!({}),
            context: None,
            state: frontdesk_actors::TurnState::unattached(),
        }
    }

    #[test]
    fn the_oldest_history_is_dropped_first_and_the_question_always_goes() {
        let long = "x".repeat(400); // about 100 tokens
        let mut history: Vec<StoredMessage> = (1..=9)
            .map(|seq| message(seq, if seq % 2 == 1 { Sender::Visitor } else { Sender::Bot }, &format!("{seq} {long}")))
            .collect();
        history.push(message(10, Sender::Visitor, "the question"));
        let prompt = assemble(&BotSettings::default(), &request(history), Vec::new(), 350);
        assert_eq!(prompt.history_used, 4, "the question and the three newest that fit");
        assert_eq!(prompt.messages[0]["role"], "system");
        assert!(prompt.messages[1]["content"].as_str().unwrap().starts_with("7 "), "{:?}", prompt.messages[1]);
        assert_eq!(prompt.messages.last().unwrap()["content"], "the question");
        assert_eq!(prompt.messages.last().unwrap()["role"], "user");

        let tiny = assemble(&BotSettings::default(), &request(vec![message(1, Sender::Visitor, &long)]), Vec::new(), 1);
        assert_eq!(tiny.history_used, 1, "a question over the budget still goes");
    }

    #[test]
    fn the_prompt_carries_the_request_context_and_numbered_passages() {
        let context = serde_json::json!({ "rules": { "companyName": "Acme Dental", "tone": "formal",
            "policies": [{ "title": "Refunds", "content": "Refunds within 14 days." }] } });
        let hit = Hit {
            chunk_id: 5,
            source_id: 9,
            title: "Parking".into(),
            url: Some("https://acme.test/parking".into()),
            text: "Free parking behind the building.".into(),
            score: 1.0,
            similarity: None,
        };
        let system = system_prompt(&BotSettings::default(), Some(&context), std::slice::from_ref(&hit));
        assert!(system.contains("front-desk assistant of Acme Dental") && system.contains("Be formal"), "{system}");
        assert!(system.contains("- Refunds: Refunds within 14 days."), "{system}");
        assert!(system.contains("[1] source 9: Parking (https://acme.test/parking)\nFree parking behind the building."));
        assert_eq!(cited("It is free [1].", std::slice::from_ref(&hit))[0]["chunk_id"], 5);
        assert!(cited("It is free.", &[hit]).is_empty());
    }
}
