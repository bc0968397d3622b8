//! The CRM side of chat: turning what a visitor says into a patient and a scored lead.
//!
//! [`signals`] holds the pure rules (contact extraction, normalisation, scoring, temperature
//! bands). [`DbLeadSignals`] is the lead scorer actor's port ([`frontdesk_actors::LeadScorer`]):
//! a pass re-reads the conversation, and once a name plus an email or phone is known it matches
//! or creates the patient, creates the lead (`new_lead`) and records every rule that newly fired
//! with its points and reason.

pub mod signals;

use async_trait::async_trait;
use frontdesk_actors::LeadSignals;

use crate::ids::{ConversationId, WorkspaceId};
use crate::storage::contacts::{self, Authority, Person};
use crate::storage::forms;
use crate::storage::leads::{self, NewLead};
use crate::storage::patients;
use crate::storage::{bookings, conversations, messages, now_ms, schedule, write_tx, Db, DbConn, DbError};
use signals::{ContactDetails, ConversationFacts};

/// How long the scorer gathers requests before a pass; bounds its database work per
/// conversation under a burst of messages.
pub const COALESCE: std::time::Duration = std::time::Duration::from_millis(150);
/// How many of the visitor's latest messages a pass reads.
const MESSAGES_READ: i64 = 200;

/// The scorer's port on the database.
pub struct DbLeadSignals {
    db: Db,
}

impl DbLeadSignals {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl LeadSignals for DbLeadSignals {
    async fn rescore(&self, conversations: Vec<(i64, ConversationId)>) -> Vec<(i64, ConversationId)> {
        let done = self
            .db
            .run(move |conn| {
                let mut with_leads = Vec::new();
                for (workspace_id, conversation_id) in conversations {
                    match rescore(conn, WorkspaceId(workspace_id), &conversation_id, now_ms()) {
                        Ok(true) => with_leads.push((workspace_id, conversation_id)),
                        Ok(false) => {}
                        Err(err) => tracing::warn!(%conversation_id, error = %err, "lead scoring failed"),
                    }
                }
                Ok(with_leads)
            })
            .await;
        done.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "lead scoring pass failed");
            Vec::new()
        })
    }
}

/// Stores a form's (already checked) answers in one transaction: the patient named by id, or
/// matched or created from the answers' `name`, `email` and `phone` (with `new_patient`), the
/// submission, and its `form_submitted` event.
pub fn submit_form(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    form: &forms::FormView,
    patient_id: Option<i64>,
    data: &serde_json::Value,
    now: i64,
) -> Result<forms::SubmissionView, DbError> {
    write_tx(conn, |conn| {
        let text = |name: &str| data.get(name).and_then(|v| v.as_str());
        let patient_id = match patient_id {
            Some(id) => Some(
                patients::get(conn, workspace_id, id)?
                    .ok_or_else(|| DbError::Invalid(format!("patient {id} not found")))?
                    .id,
            ),
            None => {
                let person =
                    Person { name: text("name"), email: text("email"), phone: text("phone"), external_id: None };
                contacts::merge(conn, workspace_id, &person, None, Authority::Visitor, "form", now)?
                    .map(|merged| merged.contact.id)
            }
        };
        let view = forms::submit(conn, workspace_id, form.id, patient_id, data, now)?;
        let event = serde_json::json!({
            "submission_id": view.id,
            "form_id": form.id,
            "form_name": form.name,
            "form_kind": form.kind,
            "patient_id": patient_id,
            "data": data,
        });
        crate::storage::outbox::emit(conn, workspace_id, "form_submitted", event, now)?;
        Ok(view)
    })
}

/// What a visitor's message (the `seq`-th of its conversation) means to the lead scorer:
/// `Some(false)` when it carries a signal, `Some(true)` when it only brings the conversation to
/// an engagement threshold, `None` when it cannot change a lead (most messages: they cost the
/// scorer nothing).
pub fn rescore_trigger(text: &str, seq: i64) -> Option<bool> {
    let contact = signals::extract_contact(text);
    let signal = contact != ContactDetails::default()
        || !signals::signals(&ConversationFacts { visitor_messages: vec![text], ..Default::default() }).is_empty();
    if signal {
        Some(false)
    } else if (9..=12).contains(&seq) || (19..=22).contains(&seq) {
        Some(true)
    } else {
        None
    }
}

/// Checks contact variables given by an API caller: an `email` or `phone` that is there must be
/// one. Answers what is wrong, naming the field under `prefix` (e.g. `contact.email`).
pub fn check_contact(contact: &serde_json::Value, prefix: &str) -> Result<(), String> {
    let text = |field: &str| contact.get(field).and_then(|v| v.as_str()).map(str::trim).filter(|v| !v.is_empty());
    if let Some(email) = text("email").filter(|e| signals::normalize_email(e).is_none()) {
        return Err(format!("{prefix}.email `{email}` is not an email address"));
    }
    if let Some(phone) = text("phone").filter(|p| signals::normalize_phone(p).is_none()) {
        return Err(format!("{prefix}.phone `{phone}` is not a phone number"));
    }
    Ok(())
}

/// Contact details the brain collected in dialog, kept in the conversation's variables.
pub fn dialog_contact(variables: &serde_json::Value) -> ContactDetails {
    serde_json::from_value(variables.get("contact").cloned().unwrap_or_default()).unwrap_or_default()
}

/// One scoring pass over a conversation (see the module docs); answers whether it has a lead.
pub fn rescore(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    conversation_id: &ConversationId,
    now: i64,
) -> Result<bool, DbError> {
    let Some(conversation) = conversations::get(conn, workspace_id, conversation_id)? else { return Ok(false) };
    let variables: serde_json::Value = serde_json::from_str(&conversation.variables).unwrap_or_default();
    let texts = messages::visitor_texts(conn, workspace_id, conversation_id, MESSAGES_READ)?;
    let mut contact = dialog_contact(&variables);
    for text in &texts {
        let found = signals::extract_contact(text);
        contact.name = contact.name.or(found.name);
        contact.email = contact.email.or(found.email);
        contact.phone = contact.phone.or(found.phone);
    }
    if contact.name.is_none() || (contact.email.is_none() && contact.phone.is_none()) {
        return Ok(false);
    }
    let services: Vec<String> = schedule::services(conn, workspace_id)?.into_iter().map(|s| s.name).collect();
    let booked = !bookings::list(
        conn,
        workspace_id,
        &bookings::BookingFilter { conversation_id: Some(conversation_id.to_owned()), limit: 1, ..Default::default() },
    )?
    .is_empty();
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let service_refs: Vec<&str> = services.iter().map(String::as_str).collect();
    let interest = signals::treatment_interest(&text_refs, &service_refs);
    let facts =
        ConversationFacts { visitor_messages: text_refs, contact: contact.clone(), services: service_refs, booked };
    let fired = signals::signals(&facts);
    if nothing_new(conn, workspace_id, conversation.contact_id, &contact, &fired, interest)? {
        // Most passes find nothing new: decided on a read, they never take the write lock.
        return Ok(true);
    }
    write_tx(conn, |conn| {
        let Some(patient) =
            contacts::merge(conn, workspace_id, &person_of(&contact), None, Authority::Visitor, "chat", now)?
                .map(|merged| merged.contact)
        else {
            return Ok(false);
        };
        if conversation.contact_id != Some(patient.id) {
            conversations::set_contact(conn, workspace_id, conversation_id, patient.id)?;
        }
        let lead = match leads::for_contact(conn, workspace_id, patient.id)? {
            Some(lead) => lead,
            None => leads::create(
                conn,
                &NewLead {
                    workspace_id,
                    contact_id: patient.id,
                    conversation_id: Some(conversation_id),
                    name: patient.name.as_deref(),
                    email: patient.email.as_deref(),
                    phone: patient.phone.as_deref(),
                    source: "chatbot",
                },
                now,
            )?,
        };
        let learned = leads::Learned {
            name: patient.name.as_deref(),
            email: patient.email.as_deref(),
            phone: patient.phone.as_deref(),
            treatment_interest: interest,
        };
        leads::apply_signals(conn, &lead, &fired, &learned, now)?;
        Ok(true)
    })
}

/// Whether a pass would change nothing: the conversation is linked to its patient, the patient
/// has every detail the chat gave, and the lead has every fired rule, detail and interest.
fn person_of(contact: &ContactDetails) -> Person<'_> {
    Person {
        name: contact.name.as_deref(),
        email: contact.email.as_deref(),
        phone: contact.phone.as_deref(),
        external_id: None,
    }
}

fn nothing_new(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    linked: Option<i64>,
    contact: &ContactDetails,
    fired: &[signals::Signal],
    interest: Option<&str>,
) -> Result<bool, DbError> {
    let Some(patient) = contacts::find(conn, workspace_id, &person_of(contact))? else { return Ok(false) };
    let patient_complete = (contact.name.is_none() || patient.name.is_some())
        && (contact.email.is_none() || patient.email.is_some())
        && (contact.phone.is_none() || patient.phone.is_some());
    if linked != Some(patient.id) || !patient_complete {
        return Ok(false);
    }
    let Some(lead) = leads::for_contact(conn, workspace_id, patient.id)? else { return Ok(false) };
    let applied = leads::applied_rules(conn, lead.id)?;
    let lead_complete = (patient.name.is_none() || lead.name.is_some())
        && (patient.email.is_none() || lead.email.is_some())
        && (patient.phone.is_none() || lead.phone.is_some());
    Ok(lead_complete
        && interest.is_none_or(|i| lead.treatment_interest.as_deref() == Some(i))
        && fired.iter().all(|s| applied.contains(&format!("rule:{}", s.rule))))
}
