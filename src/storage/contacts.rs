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

/// What an address from a visitor, a form or an integrator is held to, beyond RFC 5322's syntax
/// (which `email_address` checks): a domain with a top-level part ("ada@localhost" reaches no
/// one outside), no display text ("Ada <ada@example.com>") and no IP literal.
fn email_rules() -> email_address::Options {
    email_address::Options::default().with_required_tld().without_display_text().without_domain_literal()
}

/// Lower-cased, trimmed; `None` when not a deliverable-looking address: parsed by the
/// `email_address` crate, with a dotted domain of non-empty labels and no whitespace (a quoted
/// local part may hold spaces by the standard, but never in an address typed into a chat).
pub fn normalize_email(email: &str) -> Option<String> {
    let email = email.trim().to_lowercase();
    if email.chars().any(char::is_whitespace) {
        return None;
    }
    let parsed = email_address::EmailAddress::parse_with_options(&email, email_rules()).ok()?;
    // Empty labels ("example..com", ".com", "example.") can never receive mail.
    let domain_ok = parsed.domain().split('.').all(|label| !label.is_empty());
    domain_ok.then(|| parsed.email().to_owned())
}

/// A phone number in one canonical form, for matching the same number however it was written.
/// Without a country: international numbers ("+44 20 7946 0958", "0044 20…") in E.164, national
/// ones as their digits. See [`normalize_phone_in`].
///
/// "+1 (555) 123-4567" gives "+15551234567"; "555.123.4567" gives "5551234567".
pub fn normalize_phone(phone: &str) -> Option<String> {
    normalize_phone_in(phone, None)
}

/// Like [`normalize_phone`], with the workspace's country (its `country` setting) for numbers
/// written without a country code: "(555) 123-4567" in the US is "+15551234567", the same as
/// "+1 555 123 4567". Parsing is the `phonenumber` crate's (libphonenumber's metadata), which
/// also drops a national trunk prefix ("020 7946 0958" in GB is "+442079460958"). `None` when
/// fewer than 7 digits or more than 15 (the E.164 maximum); a number the crate cannot place keeps
/// its digits, so a visitor's number is never lost for being unusual.
pub fn normalize_phone_in(phone: &str, country: Option<phonenumber::country::Id>) -> Option<String> {
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
    let parsed = if plus {
        phonenumber::parse(None, format!("+{digits}")).ok()
    } else {
        country.and_then(|country| phonenumber::parse(Some(country), digits).ok())
    };
    let e164 = parsed
        .map(|number| number.format().mode(phonenumber::Mode::E164).to_string())
        .filter(|e164| (8..=16).contains(&e164.len()));
    Some(e164.unwrap_or_else(|| if plus { format!("+{digits}") } else { digits.to_string() }))
}

/// The country a workspace's national phone numbers are read in (its `country` setting).
pub fn phone_country(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
) -> Result<Option<phonenumber::country::Id>, DbError> {
    Ok(super::workspaces::settings(conn, workspace_id)?.country.as_deref().and_then(|c| c.parse().ok()))
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
    if let Some(phone) = person.phone {
        let country = phone_country(conn, workspace_id)?;
        // A number stored before the workspace named its country was kept as national digits.
        let forms: Vec<String> =
            [normalize_phone_in(phone, country), normalize_phone(phone)].into_iter().flatten().collect();
        if forms.is_empty() {
            return Ok(None);
        }
        return Ok(on_backend!(conn, c => contacts::table
            .filter(contacts::workspace_id.eq(workspace_id))
            .filter(contacts::phone_normalized.eq_any(&forms))
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
    let country = if phone.is_some() { phone_country(conn, workspace_id)? } else { None };
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
            phone.map(|v| contacts::phone_normalized.eq(normalize_phone_in(v, country))),
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
    let country = if phone.is_some() { phone_country(conn, workspace_id)? } else { None };
    let contact = on_backend!(conn, c => diesel::insert_into(contacts::table)
        .values((
            contacts::workspace_id.eq(workspace_id),
            contacts::kind.eq(authority.kind()),
            contacts::name.eq(person.name()),
            contacts::email.eq(email),
            contacts::email_normalized.eq(email.and_then(normalize_email)),
            contacts::phone.eq(phone),
            contacts::phone_normalized.eq(phone.and_then(|p| normalize_phone_in(p, country))),
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
