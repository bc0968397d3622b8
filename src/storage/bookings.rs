//! Bookings, holds and time off as rows: the queries the booking engine ([`crate::domain::booking`])
//! composes inside its transactions. Nothing here decides whether a slot is free; it only reads
//! what blocks a doctor's time and writes what the engine decided.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schedule::HoursRow;
use super::schema::{booking_holds, bookings, time_off, working_hours};
use super::{DbConn, DbError};
use crate::ids::{ConversationId, WorkspaceId};
use crate::on_backend;
use crate::status::BookingStatus;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = bookings)]
pub struct BookingRow {
    pub id: i64,
    pub workspace_id: WorkspaceId,
    pub doctor_id: Option<i64>,
    pub service_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub conversation_id: Option<ConversationId>,
    pub customer_name: String,
    pub customer_email: Option<String>,
    pub customer_phone: Option<String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub occupied_until: i64,
    pub status: BookingStatus,
    pub notes: String,
    pub source: String,
    pub doctor_name: String,
    pub service_name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A booking about to be written; the engine has checked it.
#[derive(Debug, Clone)]
pub struct NewBooking {
    pub workspace_id: WorkspaceId,
    pub doctor_id: i64,
    pub doctor_name: String,
    pub service_id: i64,
    pub service_name: String,
    pub contact_id: Option<i64>,
    pub conversation_id: Option<ConversationId>,
    pub customer_name: String,
    pub customer_email: Option<String>,
    pub customer_phone: Option<String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub occupied_until: i64,
    pub notes: String,
    pub source: String,
}

pub fn insert(conn: &mut DbConn, new: &NewBooking, now: i64) -> Result<BookingRow, DbError> {
    Ok(on_backend!(conn, c => diesel::insert_into(bookings::table)
        .values((
            bookings::workspace_id.eq(new.workspace_id),
            bookings::doctor_id.eq(new.doctor_id),
            bookings::doctor_name.eq(&new.doctor_name),
            bookings::service_id.eq(new.service_id),
            bookings::service_name.eq(&new.service_name),
            bookings::contact_id.eq(new.contact_id),
            bookings::conversation_id.eq(&new.conversation_id),
            bookings::customer_name.eq(&new.customer_name),
            bookings::customer_email.eq(&new.customer_email),
            bookings::customer_phone.eq(&new.customer_phone),
            bookings::starts_at.eq(new.starts_at),
            bookings::ends_at.eq(new.ends_at),
            bookings::occupied_until.eq(new.occupied_until),
            bookings::status.eq(BookingStatus::Confirmed),
            bookings::notes.eq(&new.notes),
            bookings::source.eq(&new.source),
            bookings::created_at.eq(now),
            bookings::updated_at.eq(now),
        ))
        .returning(BookingRow::as_returning())
        .get_result(c))?)
}

pub fn get(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<Option<BookingRow>, DbError> {
    Ok(on_backend!(conn, c => bookings::table
        .filter(bookings::workspace_id.eq(workspace_id))
        .filter(bookings::id.eq(id))
        .select(BookingRow::as_select())
        .first(c)
        .optional())?)
}

/// Filters of `GET /api/bookings`; all optional, combined with AND.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BookingFilter {
    /// Bookings starting at or after this instant (epoch ms).
    #[serde(skip)]
    pub from: Option<i64>,
    /// Bookings starting before this instant (epoch ms).
    #[serde(skip)]
    pub to: Option<i64>,
    pub status: Option<BookingStatus>,
    pub doctor_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub conversation_id: Option<ConversationId>,
    pub limit: i64,
    pub offset: i64,
}

/// Bookings newest appointment first (ChatGenius: "sorted by date descending").
pub fn list(conn: &mut DbConn, workspace_id: WorkspaceId, f: &BookingFilter) -> Result<Vec<BookingRow>, DbError> {
    Ok(on_backend!(conn, c => {
        let mut q = bookings::table.filter(bookings::workspace_id.eq(workspace_id)).into_boxed();
        if let Some(from) = f.from {
            q = q.filter(bookings::starts_at.ge(from));
        }
        if let Some(to) = f.to {
            q = q.filter(bookings::starts_at.lt(to));
        }
        if let Some(status) = &f.status {
            q = q.filter(bookings::status.eq(*status));
        }
        if let Some(doctor_id) = f.doctor_id {
            q = q.filter(bookings::doctor_id.eq(doctor_id));
        }
        if let Some(contact_id) = f.contact_id {
            q = q.filter(bookings::contact_id.eq(contact_id));
        }
        if let Some(conversation_id) = &f.conversation_id {
            q = q.filter(bookings::conversation_id.eq(conversation_id.clone()));
        }
        q.order((bookings::starts_at.desc(), bookings::id.desc()))
            .limit(f.limit)
            .offset(f.offset)
            .select(BookingRow::as_select())
            .load(c)?
    }))
}

/// Moves a `confirmed` booking to `status`; `None` when it was not confirmed (any more).
pub fn finish(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: i64,
    status: BookingStatus,
    now: i64,
) -> Result<Option<BookingRow>, DbError> {
    let target = bookings::table
        .filter(bookings::workspace_id.eq(workspace_id))
        .filter(bookings::id.eq(id))
        .filter(bookings::status.eq(BookingStatus::Confirmed));
    Ok(on_backend!(conn, c => diesel::update(target)
        .set((bookings::status.eq(status), bookings::updated_at.eq(now)))
        .returning(BookingRow::as_returning())
        .get_result(c)
        .optional())?)
}

/// Where and when a confirmed booking moves to.
#[derive(Debug, Clone)]
pub struct NewTime {
    pub doctor_id: i64,
    pub doctor_name: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub occupied_until: i64,
}

pub fn reschedule(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: i64,
    to: &NewTime,
    now: i64,
) -> Result<Option<BookingRow>, DbError> {
    let target = bookings::table
        .filter(bookings::workspace_id.eq(workspace_id))
        .filter(bookings::id.eq(id))
        .filter(bookings::status.eq(BookingStatus::Confirmed));
    Ok(on_backend!(conn, c => diesel::update(target)
        .set((
            bookings::doctor_id.eq(to.doctor_id),
            bookings::doctor_name.eq(&to.doctor_name),
            bookings::starts_at.eq(to.starts_at),
            bookings::ends_at.eq(to.ends_at),
            bookings::occupied_until.eq(to.occupied_until),
            bookings::updated_at.eq(now),
        ))
        .returning(BookingRow::as_returning())
        .get_result(c)
        .optional())?)
}

pub fn set_contact(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64, contact_id: i64) -> Result<(), DbError> {
    let target = bookings::table.filter(bookings::workspace_id.eq(workspace_id)).filter(bookings::id.eq(id));
    on_backend!(conn, c => diesel::update(target).set(bookings::contact_id.eq(contact_id)).execute(c))?;
    Ok(())
}

/// Weekly hours of the given doctors.
pub fn hours_of(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    doctor_ids: &[i64],
) -> Result<HashMap<i64, Vec<HoursRow>>, DbError> {
    let rows: Vec<(i64, i32, i32, i32)> = on_backend!(conn, c => working_hours::table
        .filter(working_hours::workspace_id.eq(workspace_id))
        .filter(working_hours::doctor_id.eq_any(doctor_ids))
        .select((working_hours::doctor_id, working_hours::weekday, working_hours::start_minute, working_hours::end_minute))
        .load(c))?;
    let mut out: HashMap<i64, Vec<HoursRow>> = HashMap::new();
    for (doctor_id, weekday, start_minute, end_minute) in rows {
        out.entry(doctor_id).or_default().push(HoursRow { weekday, start_minute, end_minute });
    }
    Ok(out)
}

/// What blocks the given doctors' time within `[from, to)`: live bookings (their occupied
/// ranges), time off, and unexpired holds other than those of `own_conversation` (a visitor's
/// own hold never blocks their own booking). `except_booking` leaves one booking out, for a
/// reschedule that may overlap where it was.
pub struct BusyQuery<'a> {
    pub workspace_id: WorkspaceId,
    pub doctor_ids: &'a [i64],
    pub from: i64,
    pub to: i64,
    pub now: i64,
    pub own_conversation: Option<&'a ConversationId>,
    pub except_booking: Option<i64>,
}

pub fn busy(conn: &mut DbConn, q: &BusyQuery<'_>) -> Result<HashMap<i64, Vec<(i64, i64)>>, DbError> {
    let mut out: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
    let booked: Vec<(Option<i64>, i64, i64)> = on_backend!(conn, c => {
        let mut query = bookings::table
            .filter(bookings::workspace_id.eq(q.workspace_id))
            .filter(bookings::doctor_id.eq_any(q.doctor_ids))
            .filter(bookings::status.ne(BookingStatus::Cancelled))
            .filter(bookings::starts_at.lt(q.to))
            .filter(bookings::occupied_until.gt(q.from))
            .into_boxed();
        if let Some(id) = q.except_booking {
            query = query.filter(bookings::id.ne(id));
        }
        query.select((bookings::doctor_id, bookings::starts_at, bookings::occupied_until)).load(c)?
    });
    for (doctor_id, start, end) in booked {
        if let Some(doctor_id) = doctor_id {
            out.entry(doctor_id).or_default().push((start, end));
        }
    }
    let off: Vec<(i64, i64, i64)> = on_backend!(conn, c => time_off::table
        .filter(time_off::workspace_id.eq(q.workspace_id))
        .filter(time_off::doctor_id.eq_any(q.doctor_ids))
        .filter(time_off::starts_at.lt(q.to))
        .filter(time_off::ends_at.gt(q.from))
        .select((time_off::doctor_id, time_off::starts_at, time_off::ends_at))
        .load(c))?;
    let held: Vec<(i64, Option<ConversationId>, i64, i64)> = on_backend!(conn, c => booking_holds::table
        .filter(booking_holds::workspace_id.eq(q.workspace_id))
        .filter(booking_holds::doctor_id.eq_any(q.doctor_ids))
        .filter(booking_holds::expires_at.gt(q.now))
        .filter(booking_holds::starts_at.lt(q.to))
        .filter(booking_holds::ends_at.gt(q.from))
        .select((booking_holds::doctor_id, booking_holds::conversation_id, booking_holds::starts_at, booking_holds::ends_at))
        .load(c))?;
    for (doctor_id, start, end) in off {
        out.entry(doctor_id).or_default().push((start, end));
    }
    for (doctor_id, conversation, start, end) in held {
        if q.own_conversation.is_none() || conversation.as_ref() != q.own_conversation {
            out.entry(doctor_id).or_default().push((start, end));
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = booking_holds)]
pub struct HoldRow {
    pub id: i64,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub doctor_id: i64,
    pub conversation_id: Option<ConversationId>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub expires_at: i64,
}

/// Replaces the conversation's hold (a visitor holds one slot at a time).
pub fn hold(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    conversation_id: &ConversationId,
    doctor_id: i64,
    range: (i64, i64),
    expires_at: i64,
) -> Result<HoldRow, DbError> {
    release_holds(conn, workspace_id, conversation_id)?;
    Ok(on_backend!(conn, c => diesel::insert_into(booking_holds::table)
        .values((
            booking_holds::workspace_id.eq(workspace_id),
            booking_holds::doctor_id.eq(doctor_id),
            booking_holds::conversation_id.eq(conversation_id),
            booking_holds::starts_at.eq(range.0),
            booking_holds::ends_at.eq(range.1),
            booking_holds::expires_at.eq(expires_at),
        ))
        .returning(HoldRow::as_returning())
        .get_result(c))?)
}

pub fn release_holds(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    conversation_id: &ConversationId,
) -> Result<usize, DbError> {
    let target = booking_holds::table
        .filter(booking_holds::workspace_id.eq(workspace_id))
        .filter(booking_holds::conversation_id.eq(conversation_id));
    Ok(on_backend!(conn, c => diesel::delete(target).execute(c))?)
}

/// Deletes holds that lapsed; they already block nothing, this only keeps the table small.
pub fn purge_expired_holds(conn: &mut DbConn, now: i64) -> Result<usize, DbError> {
    let target = booking_holds::table.filter(booking_holds::expires_at.le(now));
    Ok(on_backend!(conn, c => diesel::delete(target).execute(c))?)
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = time_off)]
pub struct TimeOffRow {
    pub id: i64,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub doctor_id: i64,
    pub starts_at: i64,
    pub ends_at: i64,
    pub reason: String,
}

pub fn add_time_off(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    doctor_id: i64,
    range: (i64, i64),
    reason: &str,
) -> Result<TimeOffRow, DbError> {
    Ok(on_backend!(conn, c => diesel::insert_into(time_off::table)
        .values((
            time_off::workspace_id.eq(workspace_id),
            time_off::doctor_id.eq(doctor_id),
            time_off::starts_at.eq(range.0),
            time_off::ends_at.eq(range.1),
            time_off::reason.eq(reason),
        ))
        .returning(TimeOffRow::as_returning())
        .get_result(c))?)
}

pub fn time_off(conn: &mut DbConn, workspace_id: WorkspaceId, doctor_id: i64) -> Result<Vec<TimeOffRow>, DbError> {
    Ok(on_backend!(conn, c => time_off::table
        .filter(time_off::workspace_id.eq(workspace_id))
        .filter(time_off::doctor_id.eq(doctor_id))
        .order(time_off::starts_at.asc())
        .select(TimeOffRow::as_select())
        .load(c))?)
}

pub fn delete_time_off(conn: &mut DbConn, workspace_id: WorkspaceId, doctor_id: i64, id: i64) -> Result<bool, DbError> {
    let target = time_off::table
        .filter(time_off::workspace_id.eq(workspace_id))
        .filter(time_off::doctor_id.eq(doctor_id))
        .filter(time_off::id.eq(id));
    Ok(on_backend!(conn, c => diesel::delete(target).execute(c))? == 1)
}

/// The database's own refusal of an overlapping booking: PostgreSQL's exclusion constraint, and
/// on SQLite the triggers of the same name, whose error message is that name.
pub const OVERLAP_CONSTRAINT: &str = "bookings_no_overlap";

/// Whether an error is the database refusing an overlapping booking ([`OVERLAP_CONSTRAINT`]).
pub fn is_overlap_violation(err: &DbError) -> bool {
    match err {
        DbError::Query(diesel::result::Error::DatabaseError(_, info)) => {
            info.constraint_name() == Some(OVERLAP_CONSTRAINT) || info.message() == OVERLAP_CONSTRAINT
        }
        _ => false,
    }
}
