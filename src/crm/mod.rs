//! The CRM side of chat: turning what a visitor says into a patient and a scored lead.
//!
//! [`signals`] holds the pure rules (contact extraction, normalisation, scoring, temperature
//! bands). [`LeadScorer`] is the actor that applies them: told that a conversation may have
//! changed, it re-reads the conversation, and once a name plus an email or phone is known it
//! matches or creates the patient, creates the lead (`new_lead`) and records every rule that
//! newly fired with its points and reason. Requests for one conversation arriving close
//! together are folded into one pass.

pub mod signals;

use std::collections::HashSet;
use std::time::Duration;

use actix::prelude::*;

use crate::db::leads::{self, NewLead};
use crate::db::patients::{self, Person};
use crate::db::{bookings, conversations, messages, now_ms, schedule, write_tx, Db, DbConn, DbError};
use signals::{ContactDetails, ConversationFacts};

/// How long requests are gathered before a pass; bounds the scorer's database work per
/// conversation under a burst of messages.
const COALESCE: Duration = Duration::from_millis(150);
/// How many of the visitor's latest messages a pass reads.
const MESSAGES_READ: i64 = 200;

/// A conversation may have new signals: read it again.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Rescore {
    pub workspace_id: i64,
    pub conversation_id: String,
}

pub struct LeadScorer {
    db: Db,
    pending: HashSet<(i64, String)>,
    scheduled: bool,
}

impl LeadScorer {
    pub fn new(db: Db) -> Self {
        Self { db, pending: HashSet::new(), scheduled: false }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        self.scheduled = false;
        let batch: Vec<(i64, String)> = self.pending.drain().collect();
        if batch.is_empty() {
            return;
        }
        let db = self.db.clone();
        // `wait`: one pass at a time, so two passes never race on the same lead.
        ctx.wait(
            async move {
                let done = db
                    .run(move |conn| {
                        for (workspace_id, conversation_id) in &batch {
                            if let Err(err) = rescore(conn, *workspace_id, conversation_id, now_ms()) {
                                tracing::warn!(%conversation_id, error = %err, "lead scoring failed");
                            }
                        }
                        Ok(())
                    })
                    .await;
                crate::webhooks::outbox::committed();
                done
            }
            .into_actor(self)
            .map(|done, _, _| {
                if let Err(err) = done {
                    tracing::warn!(error = %err, "lead scoring pass failed");
                }
            }),
        );
    }
}

impl Actor for LeadScorer {
    type Context = Context<Self>;
}

impl Handler<Rescore> for LeadScorer {
    type Result = ();

    fn handle(&mut self, msg: Rescore, ctx: &mut Self::Context) {
        self.pending.insert((msg.workspace_id, msg.conversation_id));
        if !self.scheduled {
            self.scheduled = true;
            ctx.run_later(COALESCE, |act, ctx| act.flush(ctx));
        }
    }
}

/// Whether a visitor's message (the `seq`-th of its conversation) can change a lead: it
/// carries a signal, or the conversation just reached an engagement threshold. Everything else
/// skips the scorer, so ordinary chat costs it nothing.
pub fn worth_rescoring(text: &str, seq: i64) -> bool {
    if (9..=12).contains(&seq) || (19..=22).contains(&seq) {
        return true;
    }
    let contact = signals::extract_contact(text);
    contact != ContactDetails::default()
        || !signals::signals(&ConversationFacts { visitor_messages: vec![text], ..Default::default() }).is_empty()
}

/// Contact details the brain collected in dialog, kept in the conversation's variables.
pub fn dialog_contact(variables: &serde_json::Value) -> ContactDetails {
    serde_json::from_value(variables.get("contact").cloned().unwrap_or_default()).unwrap_or_default()
}

/// One scoring pass over a conversation (see the module docs).
pub fn rescore(conn: &mut DbConn, workspace_id: i64, conversation_id: &str, now: i64) -> Result<(), DbError> {
    let Some(conversation) = conversations::get(conn, workspace_id, conversation_id)? else { return Ok(()) };
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
        return Ok(());
    }
    let services: Vec<String> = schedule::services(conn, workspace_id)?.into_iter().map(|s| s.name).collect();
    let booked = !bookings::list(
        conn,
        workspace_id,
        &bookings::BookingFilter { conversation_id: Some(conversation_id.to_owned()), limit: 1, ..Default::default() },
    )?
    .is_empty();
    write_tx(conn, |conn| {
        let person =
            Person { name: contact.name.as_deref(), email: contact.email.as_deref(), phone: contact.phone.as_deref() };
        let Some((patient, _)) = patients::match_or_create(conn, workspace_id, &person, "chat", now)? else {
            return Ok(());
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
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let services: Vec<&str> = services.iter().map(String::as_str).collect();
        let interest = signals::treatment_interest(&texts, &services);
        let facts = ConversationFacts { visitor_messages: texts.clone(), contact: contact.clone(), services, booked };
        leads::apply_signals(conn, &lead, &signals::signals(&facts), interest, now)?;
        Ok(())
    })
}
