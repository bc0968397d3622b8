//! Webhooks: the event catalogue, the outbox every module emits into (in the same transaction
//! as the change that caused the event), signing, and the dispatcher that delivers, retries,
//! dead-letters and logs.

pub mod dispatcher;
pub mod endpoints;
pub mod signing;

/// Every event a webhook endpoint can subscribe to (`*` subscribes to all).
pub const EVENTS: &[&str] = &[
    // ChatGenius's documented events.
    "new_booking",
    "booking_cancelled",
    "booking_completed",
    "new_lead",
    "new_patient",
    "no_show",
    "form_submitted",
    // Bookings beyond the document.
    "booking_rescheduled",
    // Conversations and the platform.
    "conversation_started",
    "message_created",
    "handoff_requested",
    "agent_assigned",
    "handed_back",
    "conversation_closed",
    "lead_stage_changed",
    "webhook_endpoint_disabled",
];

/// Checks a subscription list: known event names or `*`, at least one, no duplicates.
pub fn validate_events(events: &[String]) -> Result<(), String> {
    if events.is_empty() {
        return Err("events must name at least one event, or [\"*\"] for all".into());
    }
    for (i, event) in events.iter().enumerate() {
        if event != "*" && !EVENTS.contains(&event.as_str()) {
            return Err(format!("unknown event `{event}`; known events: {}", EVENTS.join(", ")));
        }
        if events[..i].contains(event) {
            return Err(format!("`{event}` is listed twice"));
        }
    }
    Ok(())
}

pub use crate::storage::outbox::subscribes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_name_known_events_once() {
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert!(validate_events(&list(&["*"])).is_ok());
        assert!(validate_events(&list(&["new_booking", "message_created"])).is_ok());
        assert!(validate_events(&[]).unwrap_err().contains("at least one"));
        assert!(validate_events(&list(&["new_booking", "new_booking"])).unwrap_err().contains("twice"));
        assert!(validate_events(&list(&["bookings"])).unwrap_err().contains("unknown event `bookings`"));
        assert!(subscribes(r#"["*"]"#, "new_lead"));
        assert!(subscribes(r#"["new_lead"]"#, "new_lead"));
        assert!(!subscribes(r#"["new_lead"]"#, "no_show"));
    }
}
