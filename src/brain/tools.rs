//! The model's tools (function calling), carried out by the same code the rest of the server
//! uses: knowledge search, availability and booking through the booking engine (one workspace's
//! bookings one at a time, as everywhere), cancellation, contact capture through the lead
//! scorer, and the hand-over to a person through the conversation's session.
//!
//! A tool never trusts the model with more than the visitor could do: a booking can be cancelled
//! only from the conversation that made it, and every call is scoped to the conversation's
//! workspace.

use std::sync::Arc;

use actix::Addr;
use chrono::{NaiveDateTime, NaiveTime};
use frontdesk_actors::{ChangedBy, LeadScorer, RescoreNow, TurnState};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::booking::desk::BookingDesk;
use crate::domain::booking::{self, AvailabilityRequest, BookingError, BookingRequest, BookingView, Named, Start};
use crate::domain::knowledge::Knowledge;
use crate::ids::{ConversationId, WorkspaceId};
use crate::status::BookingStatus;
use crate::storage::{agents, bookings, now_ms, Db};

/// The tools as the model is told of them (OpenAI's function-calling schema).
pub fn definitions() -> Vec<Value> {
    let function = |name: &str, description: &str, parameters: Value| json!({ "type": "function", "function": { "name": name, "description": description, "parameters": parameters } });
    vec![
        function(
            "search_knowledge",
            "Search the business's knowledge base (website, documents, Q&A) for passages about a question.",
            json!({ "type": "object", "properties": { "query": { "type": "string" } }, "required": ["query"] }),
        ),
        function(
            "check_availability",
            "Free appointment times for a service on a date.",
            json!({ "type": "object", "properties": {
                "service": { "type": "string", "description": "the service's name" },
                "date": { "type": "string", "description": "YYYY-MM-DD" },
                "doctor": { "type": "string", "description": "a doctor's name, if the visitor wants one" }
            }, "required": ["service", "date"] }),
        ),
        function(
            "book_appointment",
            "Book an appointment once the visitor has chosen a free time and given their name and an email or phone.",
            json!({ "type": "object", "properties": {
                "service": { "type": "string" },
                "date": { "type": "string", "description": "YYYY-MM-DD" },
                "time": { "type": "string", "description": "HH:MM, 24-hour, the practice's local time" },
                "name": { "type": "string" },
                "email": { "type": "string" },
                "phone": { "type": "string" },
                "doctor": { "type": "string" },
                "notes": { "type": "string" }
            }, "required": ["service", "date", "time", "name"] }),
        ),
        function(
            "cancel_booking",
            "Cancel a booking made in this conversation, by its booking number.",
            json!({ "type": "object", "properties": {
                "booking_id": { "type": "integer" }, "reason": { "type": "string" }
            }, "required": ["booking_id"] }),
        ),
        function(
            "capture_contact",
            "Save the visitor's contact details (name, email, phone) so the team can follow up.",
            json!({ "type": "object", "properties": {
                "name": { "type": "string" }, "email": { "type": "string" }, "phone": { "type": "string" }
            } }),
        ),
        function(
            "request_human",
            "Ask for a person from the team to take over the conversation.",
            json!({ "type": "object", "properties": { "reason": { "type": "string" } } }),
        ),
    ]
}

/// Where a tool call runs.
pub struct Scope<'a> {
    pub workspace_id: WorkspaceId,
    pub bot_id: i64,
    pub conversation_id: &'a ConversationId,
    pub variables: &'a Value,
    /// The turn's way to change the conversation's variables (its session writes them).
    pub state: &'a TurnState,
}

/// What a tool did beyond its result: a hand-over to ask for.
#[derive(Debug, Default)]
pub struct Effects {
    pub handoff: Option<String>,
}

pub struct Tools {
    pub db: Db,
    pub desk: Arc<BookingDesk>,
    pub knowledge: Option<Arc<Knowledge>>,
    /// Leads are scored by the node's one scorer, never by a tool itself.
    pub scorer: Addr<LeadScorer>,
}

/// Reads a tool's arguments, or says what is wrong with them (the model gets it as the result).
fn arguments<T: for<'de> Deserialize<'de>>(raw: &str) -> Result<T, String> {
    let raw = if raw.trim().is_empty() { "{}" } else { raw };
    serde_json::from_str(raw).map_err(|err| format!("invalid arguments: {err}"))
}

fn named(text: &str) -> Named {
    match text.trim().parse::<i64>() {
        Ok(id) => Named::Id(id),
        Err(_) => Named::Name(text.trim().to_owned()),
    }
}

fn booking_error(err: BookingError) -> Value {
    match err {
        BookingError::Conflict { message, alternatives } => json!({ "error": message, "alternatives": alternatives }),
        other => json!({ "error": other.to_string() }),
    }
}

impl Tools {
    /// Runs one tool call; a call that cannot be done answers with `{"error": …}` for the model
    /// to read, never with a failure of the reply.
    pub async fn call(&self, scope: &Scope<'_>, name: &str, raw_arguments: &str) -> (Value, Effects) {
        let result = match name {
            "search_knowledge" => self.search(scope, raw_arguments).await,
            "check_availability" => self.availability(scope, raw_arguments).await,
            "book_appointment" => self.book(scope, raw_arguments).await,
            "cancel_booking" => self.cancel(scope, raw_arguments).await,
            "capture_contact" => return self.capture(scope, raw_arguments).await,
            "request_human" => return self.request_human(scope, raw_arguments).await,
            other => Err(format!("unknown tool `{other}`")),
        };
        (result.unwrap_or_else(|error| json!({ "error": error })), Effects::default())
    }

    async fn search(&self, scope: &Scope<'_>, raw: &str) -> Result<Value, String> {
        #[derive(Deserialize)]
        struct Args {
            query: String,
        }
        let args: Args = arguments(raw)?;
        let Some(knowledge) = &self.knowledge else { return Ok(json!({ "passages": [] })) };
        let found = knowledge
            .search(scope.workspace_id, scope.bot_id, &args.query, 4)
            .await
            .map_err(|err| err.message().to_owned())?;
        let passages: Vec<Value> = found
            .hits
            .iter()
            .map(|hit| json!({ "source_id": hit.source_id, "title": hit.title, "url": hit.url, "text": hit.text }))
            .collect();
        Ok(json!({ "passages": passages }))
    }

    async fn availability(&self, scope: &Scope<'_>, raw: &str) -> Result<Value, String> {
        #[derive(Deserialize)]
        struct Args {
            service: String,
            date: String,
            doctor: Option<String>,
        }
        let args: Args = arguments(raw)?;
        let date = booking::parse_date(&args.date).ok_or("`date` must be YYYY-MM-DD")?;
        let request = AvailabilityRequest {
            service: named(&args.service),
            doctor: args.doctor.as_deref().map(named),
            from: date,
            to: date,
            step_min: 30,
            conversation_id: Some(scope.conversation_id.to_owned()),
            moving: None,
        };
        let workspace_id = scope.workspace_id;
        let slots = self
            .desk
            .run(workspace_id, move |conn| booking::availability(conn, workspace_id, &request, now_ms()))
            .await
            .map_err(|err| err.to_string())?;
        match slots {
            Ok(slots) => Ok(json!({ "date": args.date, "slots": slots.iter().take(12).collect::<Vec<_>>() })),
            Err(err) => Ok(booking_error(err)),
        }
    }

    async fn book(&self, scope: &Scope<'_>, raw: &str) -> Result<Value, String> {
        #[derive(Deserialize)]
        struct Args {
            service: String,
            date: String,
            time: String,
            name: String,
            email: Option<String>,
            phone: Option<String>,
            doctor: Option<String>,
            notes: Option<String>,
        }
        let args: Args = arguments(raw)?;
        let date = booking::parse_date(&args.date).ok_or("`date` must be YYYY-MM-DD")?;
        let time = NaiveTime::parse_from_str(args.time.trim(), "%H:%M").map_err(|_| "`time` must be HH:MM")?;
        if args.name.trim().is_empty() {
            return Err("`name` is required".into());
        }
        if args.email.as_deref().is_none_or(str::is_empty) && args.phone.as_deref().is_none_or(str::is_empty) {
            return Err("ask the visitor for an email or a phone number first".into());
        }
        let request = BookingRequest {
            service: named(&args.service),
            doctor: args.doctor.as_deref().map(named),
            start: Start::Local(NaiveDateTime::new(date, time)),
            customer_name: args.name.trim().to_owned(),
            customer_email: args.email.filter(|e| !e.is_empty()),
            customer_phone: args.phone.filter(|p| !p.is_empty()),
            notes: args.notes.unwrap_or_default(),
            source: "chat".into(),
            conversation_id: Some(scope.conversation_id.to_owned()),
        };
        let (workspace_id, horizon) = (scope.workspace_id, self.desk.horizon());
        let outcome = self
            .desk
            .run(workspace_id, move |conn| {
                let tz = booking::workspace_tz(conn, workspace_id)?;
                Ok::<_, BookingError>(
                    booking::reserve(conn, workspace_id, &request, now_ms(), horizon)
                        .map(|row| BookingView::new(&row, tz)),
                )
            })
            .await
            .map_err(|err| err.to_string())?;
        match outcome {
            Ok(Ok(view)) => Ok(json!({ "booked": view })),
            Ok(Err(err)) | Err(err) => Ok(booking_error(err)),
        }
    }

    async fn cancel(&self, scope: &Scope<'_>, raw: &str) -> Result<Value, String> {
        #[derive(Deserialize)]
        struct Args {
            booking_id: i64,
            reason: Option<String>,
        }
        let args: Args = arguments(raw)?;
        let (workspace_id, conversation_id, id) = (scope.workspace_id, scope.conversation_id.clone(), args.booking_id);
        let outcome = self
            .desk
            .run(workspace_id, move |conn| {
                // Only a booking made in this conversation: a visitor cannot cancel someone else's.
                let mine = bookings::get(conn, workspace_id, id)?
                    .is_some_and(|row| row.conversation_id.as_ref() == Some(&conversation_id));
                if !mine {
                    return Err(BookingError::NotFound);
                }
                let reason = args.reason.as_deref().unwrap_or("cancelled in chat");
                booking::finish(conn, workspace_id, id, BookingStatus::Cancelled, Some(reason), now_ms())
            })
            .await
            .map_err(|err| err.to_string())?;
        match outcome {
            Ok(row) => Ok(json!({ "cancelled": row.id })),
            Err(BookingError::NotFound) => {
                Ok(json!({ "error": format!("no booking {id} was made in this conversation") }))
            }
            Err(err) => Ok(booking_error(err)),
        }
    }

    async fn capture(&self, scope: &Scope<'_>, raw: &str) -> (Value, Effects) {
        #[derive(Deserialize)]
        struct Args {
            name: Option<String>,
            email: Option<String>,
            phone: Option<String>,
        }
        let args: Args = match arguments(raw) {
            Ok(args) => args,
            Err(error) => return (json!({ "error": error }), Effects::default()),
        };
        let mut given = serde_json::Map::new();
        for (field, value) in [("name", args.name), ("email", args.email), ("phone", args.phone)] {
            if let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
                given.insert(field.into(), value.into());
            }
        }
        let variables = match scope.state.merge(json!({ "contact": given })).await {
            Ok(variables) => variables,
            Err(err) => return (json!({ "error": err.0 }), Effects::default()),
        };
        let rescore =
            RescoreNow { workspace_id: scope.workspace_id.get(), conversation_id: scope.conversation_id.to_owned() };
        let lead = self.scorer.send(rescore).await.unwrap_or(false);
        (json!({ "saved": variables["contact"], "lead": lead }), Effects::default())
    }

    async fn request_human(&self, scope: &Scope<'_>, raw: &str) -> (Value, Effects) {
        #[derive(Deserialize, Default)]
        struct Args {
            reason: Option<String>,
        }
        let args: Args = arguments(raw).unwrap_or_default();
        let workspace_id = scope.workspace_id;
        let online = self.db.run(move |conn| agents::online(conn, workspace_id)).await.map(|a| a.len()).unwrap_or(0);
        let reason = args.reason.unwrap_or_else(|| "the visitor asked for a person".into());
        (json!({ "queued": true, "agents_online": online }), Effects { handoff: Some(reason) })
    }
}

/// Who a tool's hand-over is recorded as made by.
pub const HANDOFF_BY: ChangedBy = ChangedBy::Visitor;
