//! The one rule for who a person is: every path that names a person (a chat, a booking, a form,
//! CX Genie's `customer_info`) finds or creates their row of `contacts` here, so the match
//! order, the merge of new details and the `new_patient` event are decided in one place.
//!
//! Matching trusts an integrator's external id first, then the normalised email, then the
//! normalised phone. A name alone identifies nobody. What a match does with the details given
//! depends on who gives them ([`Authority`]): a visitor's words only fill gaps (a booking "for
//! my mother" must not rename the patient), an integrator's record is what is true now.

use diesel::prelude::*;

use super::customers::ContactRow;
use super::schema::contacts;
use super::{like_escape, lock_workspace, DbConn, DbError, Guarded};
use crate::ids::WorkspaceId;
use crate::on_backend;
use crate::storage::outbox;

/// Lower-cased, trimmed; `None` when not a plausible address (one @, a dot in the domain, no spaces).
pub fn normalize_email(email: &str) -> Option<String> {
    let email = email.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let plausible = !local.is_empty()
        && !domain.contains('@')
        && !email.chars().any(char::is_whitespace)
        && domain.contains('.')
        // Empty labels ("example..com", ".com", "example.") can never receive mail.
        && domain.split('.').all(|label| !label.is_empty());
    plausible.then_some(email)
}

/// Digits only, keeping a leading `+`; a leading "00" (the international call prefix) becomes `+`.
/// `None` when fewer than 7 digits or more than 15 (the E.164 maximum).
///
/// "+1 (555) 123-4567" gives "+15551234567"; "555.123.4567" gives "5551234567".
pub fn normalize_phone(phone: &str) -> Option<String> {
    let phone = phone.trim();
    // "+44 (0)20 7946 0958": the bracketed 0 is only dialled from inside the country, so an international
    // number must lose it or it would never match the same number written "+44 20 7946 0958".
    let international = phone.starts_with('+') || phone.starts_with("00");
    let phone = if international { phone.replacen("(0)", "", 1) } else { phone.to_string() };
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let (plus, digits) = if phone.starts_with('+') {
        (true, digits.as_str())
    } else if let Some(rest) = digits.strip_prefix("00") {
        (true, rest)
    } else {
        (false, digits.as_str())
    };
    if !(7..=15).contains(&digits.len()) {
        return None;
    }
    Some(if plus { format!("+{digits}") } else { digits.to_string() })
}

/// Who a chat, a booking, a form or an integrator names.
#[derive(Debug, Clone, Copy, Default)]
pub struct Person<'a> {
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    /// The integrator's own id for the person (CX Genie's `customer_id`).
    pub external_id: Option<&'a str>,
}

impl Person<'_> {
    fn email(&self) -> Option<&str> {
        self.email.map(str::trim).filter(|e| normalize_email(e).is_some())
    }

    fn phone(&self) -> Option<&str> {
        self.phone.map(str::trim).filter(|p| normalize_phone(p).is_some())
    }

    fn name(&self) -> Option<&str> {
        self.name.map(str::trim).filter(|n| !n.is_empty())
    }
}

/// Whose word the details are, which decides what a match does with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// A visitor in a chat, a booking or a form: details fill the contact's gaps and never
    /// replace what it holds. A new contact is a `patient`.
    Visitor,
    /// An integrator's customer record: every detail given replaces the stored one. A new
    /// contact is a `customer`.
    Integrator,
}

impl Authority {
    fn kind(self) -> &'static str {
        match self {
            Authority::Visitor => "patient",
            Authority::Integrator => "customer",
        }
    }
}

/// A contact found or created by [`merge`].
#[derive(Debug, Clone)]
pub struct Merged {
    pub contact: ContactRow,
    pub created: bool,
}

/// The workspace's contact with this external id, email or phone, in that order of trust.
pub fn find(conn: &mut DbConn, workspace_id: WorkspaceId, person: &Person<'_>) -> Result<Option<ContactRow>, DbError> {
    if let Some(external_id) = person.external_id {
        // The attributes are JSON text: narrow down by the serialised pair, then check exactly.
        let pair = format!("\"external_id\":{}", serde_json::Value::from(external_id));
        let needle = format!("%{}%", like_escape(&pair));
        let candidates: Vec<ContactRow> = on_backend!(conn, c => contacts::table
            .filter(contacts::workspace_id.eq(workspace_id))
            .filter(contacts::attributes.like(needle).escape('\\'))
            .order(contacts::id.asc())
            .select(ContactRow::as_select())
            .load(c))?;
        if let Some(found) = candidates.into_iter().find(|row| row.external_id().as_deref() == Some(external_id)) {
            return Ok(Some(found));
        }
    }
    if let Some(email) = person.email.and_then(normalize_email) {
        let found = on_backend!(conn, c => contacts::table
            .filter(contacts::workspace_id.eq(workspace_id))
            .filter(contacts::email_normalized.eq(&email))
            .order(contacts::id.asc())
            .select(ContactRow::as_select())
            .first(c)
            .optional())?;
        if found.is_some() {
            return Ok(found);
        }
    }
    if let Some(phone) = person.phone.and_then(normalize_phone) {
        return Ok(on_backend!(conn, c => contacts::table
            .filter(contacts::workspace_id.eq(workspace_id))
            .filter(contacts::phone_normalized.eq(&phone))
            .order(contacts::id.asc())
            .select(ContactRow::as_select())
            .first(c)
            .optional())?);
    }
    Ok(None)
}

/// The contact `person` names, updated by `authority`'s rule, or a new contact with its
/// `new_patient` event (`source` says what named them). Runs in the caller's transaction, which
/// must be a write transaction: on PostgreSQL it holds the workspace's contact lock until it
/// ends, so two nodes cannot both create one person.
///
/// A visitor's details must include a usable email or phone (`None` otherwise: a name alone
/// identifies nobody); an integrator's record is always kept, a bare name as a new contact.
/// `metadata`'s keys are merged into the contact's `attributes.metadata`.
pub fn merge(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    person: &Person<'_>,
    metadata: Option<&serde_json::Map<String, serde_json::Value>>,
    authority: Authority,
    source: &str,
    now: i64,
) -> Result<Option<Merged>, DbError> {
    let identifies = person.email().is_some() || person.phone().is_some() || person.external_id.is_some();
    if !identifies && authority == Authority::Visitor {
        return Ok(None);
    }
    lock_workspace(conn, Guarded::Patients, workspace_id)?;
    let existing = if identifies { find(conn, workspace_id, person)? } else { None };
    let mut attributes = existing.as_ref().map(ContactRow::attributes).unwrap_or_default();
    let attributes_before = attributes.clone();
    if let Some(external_id) = person.external_id {
        attributes.insert("external_id".into(), external_id.into());
    }
    if let Some(metadata) = metadata.filter(|m| !m.is_empty()) {
        let entry = attributes.entry("metadata").or_insert_with(|| serde_json::json!({}));
        if !entry.is_object() {
            *entry = serde_json::json!({});
        }
        if let Some(target) = entry.as_object_mut() {
            target.extend(metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    let Some(row) = existing else {
        return create(conn, workspace_id, person, &attributes, authority, source, now).map(Some);
    };
    // The same address or number written another way ("ADA@example.com") is no change.
    let differs = |given: Option<&str>, stored: &Option<String>, normalize: fn(&str) -> Option<String>| {
        given.is_some() && given.and_then(normalize) != stored.as_deref().and_then(normalize)
    };
    let takes = |stored: &Option<String>| authority == Authority::Integrator || stored.is_none();
    let name = person.name().filter(|n| takes(&row.name) && row.name.as_deref() != Some(*n));
    let email = person.email().filter(|_| takes(&row.email) && differs(person.email(), &row.email, normalize_email));
    let phone = person.phone().filter(|_| takes(&row.phone) && differs(person.phone(), &row.phone, normalize_phone));
    if name.is_none() && email.is_none() && phone.is_none() && attributes == attributes_before {
        return Ok(Some(Merged { contact: row, created: false }));
    }
    let target = contacts::table.filter(contacts::workspace_id.eq(workspace_id)).filter(contacts::id.eq(row.id));
    let attributes = serde_json::Value::Object(attributes).to_string();
    let contact = on_backend!(conn, c => diesel::update(target)
        .set((
            name.map(|v| contacts::name.eq(v)),
            email.map(|v| contacts::email.eq(v)),
            email.map(|v| contacts::email_normalized.eq(normalize_email(v))),
            phone.map(|v| contacts::phone.eq(v)),
            phone.map(|v| contacts::phone_normalized.eq(normalize_phone(v))),
            contacts::attributes.eq(&attributes),
            contacts::updated_at.eq(now),
        ))
        .returning(ContactRow::as_returning())
        .get_result(c))?;
    Ok(Some(Merged { contact, created: false }))
}

fn create(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    person: &Person<'_>,
    attributes: &serde_json::Map<String, serde_json::Value>,
    authority: Authority,
    source: &str,
    now: i64,
) -> Result<Merged, DbError> {
    let (email, phone) = (person.email(), person.phone());
    let contact = on_backend!(conn, c => diesel::insert_into(contacts::table)
        .values((
            contacts::workspace_id.eq(workspace_id),
            contacts::kind.eq(authority.kind()),
            contacts::name.eq(person.name()),
            contacts::email.eq(email),
            contacts::email_normalized.eq(email.and_then(normalize_email)),
            contacts::phone.eq(phone),
            contacts::phone_normalized.eq(phone.and_then(normalize_phone)),
            contacts::attributes.eq(serde_json::Value::Object(attributes.clone()).to_string()),
            contacts::created_at.eq(now),
            contacts::updated_at.eq(now),
        ))
        .returning(ContactRow::as_returning())
        .get_result(c))?;
    let patient = super::patients::get(conn, workspace_id, contact.id)?;
    let mut data = serde_json::to_value(&patient).unwrap_or_default();
    data["patient_id"] = contact.id.into();
    data["source"] = source.into();
    outbox::emit(conn, workspace_id, "new_patient", data, now)?;
    Ok(Merged { contact, created: true })
}
