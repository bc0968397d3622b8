//! The booking engine: availability, reservations, holds, reschedules and status changes, each
//! decided and written inside one transaction (`BEGIN IMMEDIATE` on SQLite; the database's
//! `bookings_no_overlap` rule — PostgreSQL's exclusion constraint, SQLite's triggers — has the
//! last word), with its webhook event queued in the same transaction. [`desk::BookingDesk`]
//! serialises a workspace's reservations in front of this; [`slots`] is the pure arithmetic of
//! free time.
//!
//! Times a person types (`date` + `time`) are read in the workspace's time zone; instants are
//! epoch milliseconds inside and RFC 3339 (UTC) in JSON.

pub mod desk;
pub mod slots;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::ids::{ConversationId, WorkspaceId};
use crate::on_backend;
use crate::status::BookingStatus;
use crate::storage::bookings::{self, BookingRow, BusyQuery, HoldRow, NewBooking, NewTime};
use crate::storage::contacts::{self, Authority, Person};
use crate::storage::outbox;
use crate::storage::schedule::{self, DoctorRow, ServiceRow};
use crate::storage::schema::workspaces;
use crate::storage::{lock_workspace, write_tx, DbConn, DbError, Guarded};
use slots::{DoctorCalendar, Slot, SlotQuery, WeeklyWindow};

/// Granularity of offered start times, in minutes.
pub const DEFAULT_STEP_MIN: i64 = 15;
/// Longest date range one availability query may span, in days.
pub const MAX_RANGE_DAYS: i64 = 62;
/// How many alternatives a conflict offers, and how far around the wanted day they are sought.
const ALTERNATIVES: usize = 3;
const ALTERNATIVES_DAYS_AROUND: i64 = 7;
const DAY_MS: i64 = 86_400_000;

/// A doctor or service named by id or by name (case-insensitive), as the API or a visitor did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    Id(i64),
    Name(String),
}

/// When an appointment starts: a wall-clock time at the practice, or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Local(NaiveDateTime),
    At(i64),
}

/// How far ahead the practice takes bookings (`FRONTDESK_BOOKING_HORIZON_DAYS`). A date years
/// away is nearly always a typo (2062 for 2026) or a probe, and a clinic's calendar, hours and
/// prices are not planned that far; refusing it keeps such rows out of every later query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    days: u32,
}

impl Horizon {
    /// Two years.
    pub const DEFAULT_DAYS: u32 = 730;
    /// A hundred years: the most a setting may ask for.
    pub const MAX_DAYS: u32 = 36_500;

    pub const fn days(days: u32) -> Self {
        let days = if days == 0 {
            1
        } else if days > Self::MAX_DAYS {
            Self::MAX_DAYS
        } else {
            days
        };
        Horizon { days }
    }

    /// The last instant (ms) a booking may start at, seen at `now`.
    fn last_start(self, now: i64) -> i64 {
        now.saturating_add(i64::from(self.days) * DAY_MS)
    }
}

impl Default for Horizon {
    fn default() -> Self {
        Horizon { days: Self::DEFAULT_DAYS }
    }
}

#[derive(Debug, Clone)]
pub struct BookingRequest {
    pub service: Named,
    /// `None`: any doctor free at that time.
    pub doctor: Option<Named>,
    pub start: Start,
    pub customer_name: String,
    pub customer_email: Option<String>,
    pub customer_phone: Option<String>,
    pub notes: String,
    /// `api`, `external`, `chat`.
    pub source: String,
    pub conversation_id: Option<ConversationId>,
}

/// Why a booking operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    /// The request names something that does not exist or cannot be read (400).
    #[error("{0}")]
    Invalid(String),
    /// Well-formed but impossible, such as a time in the past (422).
    #[error("{0}")]
    Unprocessable(String),
    /// The time is taken or outside the doctor's hours (409), with the nearest free slots.
    #[error("{message}")]
    Conflict { message: String, alternatives: Vec<SlotView> },
    /// The booking is not in a state that allows the change (409).
    #[error("{0}")]
    State(String),
    /// Later than the booking horizon (422); `field` is the request field that set the time.
    #[error("`{field}` is more than {days} days ahead: bookings are taken at most {days} days in advance")]
    BeyondHorizon { field: &'static str, days: u32 },
    #[error("booking not found")]
    NotFound,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for BookingError {
    fn from(err: diesel::result::Error) -> Self {
        BookingError::Db(DbError::Query(err))
    }
}

/// A free slot as the API and the chat show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotView {
    pub doctor_id: i64,
    pub doctor_name: String,
    pub date: String,
    pub time: String,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(skip)]
    pub starts_at_ms: i64,
}

/// A booking as the API, the webhooks and the chat show it: ChatGenius's fields first.
#[derive(Debug, Clone, Serialize)]
pub struct BookingView {
    pub id: i64,
    pub customer_name: String,
    pub customer_email: Option<String>,
    pub customer_phone: Option<String>,
    pub date: String,
    pub time: String,
    pub service: String,
    pub doctor_name: String,
    pub status: BookingStatus,
    pub doctor_id: Option<i64>,
    pub service_id: Option<i64>,
    pub patient_id: Option<i64>,
    pub conversation_id: Option<ConversationId>,
    pub starts_at: String,
    pub ends_at: String,
    pub notes: String,
    pub source: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A calendar date written exactly as `YYYY-MM-DD` (chrono alone would also take `2027-3-1`).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// The instant a local date begins at the practice. Where the clocks skip midnight (a
/// spring-forward at 00:00), the day begins when the clocks resume.
pub fn start_of_day(tz: Tz, date: NaiveDate) -> i64 {
    let midnight = date.and_time(NaiveTime::MIN);
    (0..=3 * 60)
        .step_by(15)
        .find_map(|minutes| tz.from_local_datetime(&(midnight + chrono::Duration::minutes(minutes))).earliest())
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|| midnight.and_utc().timestamp_millis())
}

pub fn rfc3339(ms: i64) -> String {
    use chrono::{Datelike, Timelike};
    let t = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", t.year(), t.month(), t.day(), t.hour(), t.minute(), t.second())
}

fn local(tz: Tz, ms: i64) -> DateTime<Tz> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().with_timezone(&tz)
}

impl BookingView {
    pub fn new(row: &BookingRow, tz: Tz) -> Self {
        let at = local(tz, row.starts_at);
        BookingView {
            id: row.id,
            customer_name: row.customer_name.clone(),
            customer_email: row.customer_email.clone(),
            customer_phone: row.customer_phone.clone(),
            date: at.format("%Y-%m-%d").to_string(),
            time: at.format("%H:%M").to_string(),
            service: row.service_name.clone(),
            doctor_name: row.doctor_name.clone(),
            status: row.status,
            doctor_id: row.doctor_id,
            service_id: row.service_id,
            patient_id: row.contact_id,
            conversation_id: row.conversation_id.clone(),
            starts_at: rfc3339(row.starts_at),
            ends_at: rfc3339(row.ends_at),
            notes: row.notes.clone(),
            source: row.source.clone(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }

    /// The payload of a booking's webhook events (ChatGenius's `new_booking` example, plus ids).
    pub fn event_data(&self) -> serde_json::Value {
        serde_json::json!({
            "booking_id": self.id,
            "customer_name": self.customer_name,
            "customer_email": self.customer_email,
            "customer_phone": self.customer_phone,
            "date": self.date,
            "time": self.time,
            "service": self.service,
            "doctor_name": self.doctor_name,
            "status": self.status,
            "doctor_id": self.doctor_id,
            "patient_id": self.patient_id,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "source": self.source,
        })
    }
}

/// A workspace's schedule as one transaction sees it.
pub struct Practice {
    pub workspace_id: WorkspaceId,
    pub tz: Tz,
    pub doctors: Vec<DoctorRow>,
    pub services: Vec<ServiceRow>,
}

pub fn workspace_tz(conn: &mut DbConn, workspace_id: WorkspaceId) -> Result<Tz, DbError> {
    let name: String = on_backend!(conn, c => workspaces::table
        .filter(workspaces::id.eq(workspace_id))
        .select(workspaces::timezone)
        .first(c))?;
    Ok(name.parse().unwrap_or(Tz::UTC))
}

use diesel::prelude::*;

impl Practice {
    pub fn load(conn: &mut DbConn, workspace_id: WorkspaceId) -> Result<Self, DbError> {
        Ok(Practice {
            workspace_id,
            tz: workspace_tz(conn, workspace_id)?,
            doctors: schedule::doctors(conn, workspace_id, true)?,
            services: schedule::services(conn, workspace_id)?,
        })
    }

    pub fn service(&self, named: &Named) -> Result<&ServiceRow, BookingError> {
        let found = match named {
            Named::Id(id) => self.services.iter().find(|s| s.id == *id),
            Named::Name(name) => self.services.iter().find(|s| s.name.eq_ignore_ascii_case(name.trim())),
        };
        found.ok_or_else(|| {
            let known: Vec<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
            BookingError::Invalid(match named {
                Named::Id(id) => format!("unknown service id {id}"),
                Named::Name(name) if known.is_empty() => {
                    format!("unknown service `{name}`: this practice has no services yet")
                }
                Named::Name(name) => format!("unknown service `{name}`; services: {}", known.join(", ")),
            })
        })
    }

    pub fn doctor(&self, named: &Named) -> Result<&DoctorRow, BookingError> {
        let found = match named {
            Named::Id(id) => self.doctors.iter().find(|d| d.id == *id),
            Named::Name(name) => {
                let wanted = name.trim().trim_start_matches("Dr. ").trim_start_matches("Dr ");
                self.doctors.iter().find(|d| {
                    d.name.eq_ignore_ascii_case(name.trim())
                        || d.name.trim_start_matches("Dr. ").eq_ignore_ascii_case(wanted)
                })
            }
        };
        found.ok_or_else(|| {
            let known: Vec<&str> = self.doctors.iter().map(|d| d.name.as_str()).collect();
            BookingError::Invalid(match named {
                Named::Id(id) => format!("unknown doctor id {id}"),
                Named::Name(name) if known.is_empty() => {
                    format!("unknown doctor `{name}`: this practice has no doctors yet")
                }
                Named::Name(name) => format!("unknown doctor `{name}`; doctors: {}", known.join(", ")),
            })
        })
    }

    /// The doctors a request may use: the one named, or every active doctor.
    fn candidates(&self, doctor: Option<&Named>) -> Result<Vec<&DoctorRow>, BookingError> {
        match doctor {
            Some(named) => Ok(vec![self.doctor(named)?]),
            None if self.doctors.is_empty() => {
                Err(BookingError::Invalid("this practice has no doctors to book with".into()))
            }
            None => Ok(self.doctors.iter().collect()),
        }
    }

    pub fn instant(&self, start: Start) -> Result<i64, BookingError> {
        match start {
            Start::At(ms) => Ok(ms),
            Start::Local(at) => {
                self.tz.from_local_datetime(&at).earliest().map(|t| t.timestamp_millis()).ok_or_else(|| {
                    BookingError::Invalid(format!("{} does not exist in {} (a clock change)", at, self.tz.name()))
                })
            }
        }
    }

    /// The instant `start` names, if a booking may start then: not in the past and not beyond the
    /// horizon. Every path that books, holds or moves a time asks this, so the rule lives here.
    fn bookable(&self, start: Start, now: i64, horizon: Horizon) -> Result<i64, BookingError> {
        let starts_at = self.instant(start)?;
        if starts_at < now {
            return Err(BookingError::Unprocessable("that date and time have already passed".into()));
        }
        if starts_at > horizon.last_start(now) {
            let field = match start {
                Start::Local(_) => "date",
                Start::At(_) => "starts_at",
            };
            return Err(BookingError::BeyondHorizon { field, days: horizon.days });
        }
        Ok(starts_at)
    }

    pub fn today(&self, now: i64) -> NaiveDate {
        local(self.tz, now).date_naive()
    }

    pub fn slot_view(&self, slot: &Slot) -> SlotView {
        use chrono::{Datelike, Timelike};
        // A month of 20 doctors is ten thousand slots: plain integer formatting, not chrono's
        // format strings, keeps the answer cheap.
        let at = local(self.tz, slot.starts_at);
        SlotView {
            doctor_id: slot.doctor_id,
            doctor_name: self
                .doctors
                .iter()
                .find(|d| d.id == slot.doctor_id)
                .map(|d| d.name.clone())
                .unwrap_or_default(),
            date: format!("{:04}-{:02}-{:02}", at.year(), at.month(), at.day()),
            time: format!("{:02}:{:02}", at.hour(), at.minute()),
            starts_at: rfc3339(slot.starts_at),
            ends_at: rfc3339(slot.ends_at),
            starts_at_ms: slot.starts_at,
        }
    }

    /// The calendars of `doctors` around `[from, to)`: weekly hours plus everything blocking.
    fn calendars(
        &self,
        conn: &mut DbConn,
        doctors: &[&DoctorRow],
        (from, to): (i64, i64),
        now: i64,
        own_conversation: Option<&ConversationId>,
        except_booking: Option<i64>,
    ) -> Result<Vec<DoctorCalendar>, DbError> {
        let ids: Vec<i64> = doctors.iter().map(|d| d.id).collect();
        let mut hours = bookings::hours_of(conn, self.workspace_id, &ids)?;
        let mut busy = bookings::busy(
            conn,
            &BusyQuery {
                workspace_id: self.workspace_id,
                doctor_ids: &ids,
                from,
                to,
                now,
                own_conversation,
                except_booking,
            },
        )?;
        Ok(ids
            .iter()
            .map(|id| DoctorCalendar {
                doctor_id: *id,
                hours: hours
                    .remove(id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|h| WeeklyWindow {
                        weekday: h.weekday as u32,
                        start_minute: h.start_minute as u32,
                        end_minute: h.end_minute as u32,
                    })
                    .collect(),
                blocked: busy.remove(id).unwrap_or_default(),
            })
            .collect())
    }
}

/// What an availability query asks.
#[derive(Debug, Clone)]
pub struct AvailabilityRequest {
    pub service: Named,
    pub doctor: Option<Named>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub step_min: i64,
    /// The visitor whose own hold does not count against them.
    pub conversation_id: Option<ConversationId>,
    /// A booking being moved: its own time is offered too.
    pub moving: Option<i64>,
}

/// Free slots for a service over a date range (inclusive), for one doctor or any.
pub fn availability(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    req: &AvailabilityRequest,
    now: i64,
) -> Result<Vec<SlotView>, BookingError> {
    if req.to < req.from {
        return Err(BookingError::Invalid("`to` must not be before `from`".into()));
    }
    if (req.to - req.from).num_days() >= MAX_RANGE_DAYS {
        return Err(BookingError::Invalid(format!("a date range spans at most {MAX_RANGE_DAYS} days")));
    }
    let practice = Practice::load(conn, workspace_id)?;
    let service = practice.service(&req.service)?.clone();
    let doctors = practice.candidates(req.doctor.as_ref())?;
    let query = SlotQuery {
        tz: practice.tz,
        from: req.from,
        to: req.to,
        duration_min: service.duration_min as i64,
        buffer_min: service.buffer_min as i64,
        step_min: req.step_min,
        not_before: now,
    };
    // Read as UTC, the local dates are within a day of their instants in any time zone (offsets
    // stay within ±14 h), so a day either side covers them, even where midnight is skipped.
    let from = req.from.and_time(NaiveTime::MIN).and_utc().timestamp_millis() - DAY_MS;
    let to = req.to.and_time(NaiveTime::MIN).and_utc().timestamp_millis() + 2 * DAY_MS;
    let calendars = practice.calendars(conn, &doctors, (from, to), now, req.conversation_id.as_ref(), req.moving)?;
    Ok(slots::free_slots(&calendars, &query).iter().map(|s| practice.slot_view(s)).collect())
}

/// The first doctor among `doctors` free for the whole appointment, by the calendars.
fn first_free(calendars: &[DoctorCalendar], tz: Tz, starts_at: i64, service: &ServiceRow) -> Option<i64> {
    calendars
        .iter()
        .find(|c| slots::is_free(c, tz, starts_at, service.duration_min as i64, service.buffer_min as i64))
        .map(|c| c.doctor_id)
}

fn ranges(starts_at: i64, service: &ServiceRow) -> (i64, i64) {
    let ends_at = starts_at + service.duration_min as i64 * 60_000;
    (ends_at, ends_at + service.buffer_min as i64 * 60_000)
}

/// What a request wants, as far as finding it free goes.
struct Wanted<'a> {
    service: &'a Named,
    /// `None`: any doctor free then.
    doctor: Option<&'a Named>,
    start: Start,
    /// The visitor whose own hold does not stand in their way.
    own_conversation: Option<&'a ConversationId>,
    /// A booking being moved, whose own time does not stand in its way.
    moving: Option<i64>,
    horizon: Horizon,
}

/// A time found free: the service, the first doctor free for it, and its ranges.
struct FreeTime {
    service: ServiceRow,
    doctor_id: i64,
    doctor_name: String,
    starts_at: i64,
    ends_at: i64,
    occupied_until: i64,
}

/// Takes the workspace's schedule lock, then finds the first doctor free for the whole
/// appointment; a conflict (without alternatives yet) when none is.
fn find_free(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    wanted: &Wanted<'_>,
    now: i64,
) -> Result<(Practice, FreeTime), BookingError> {
    lock_workspace(conn, Guarded::Schedule, workspace_id)?;
    let practice = Practice::load(conn, workspace_id)?;
    let service = practice.service(wanted.service)?.clone();
    let doctors = practice.candidates(wanted.doctor)?;
    let starts_at = practice.bookable(wanted.start, now, wanted.horizon)?;
    let (ends_at, occupied_until) = ranges(starts_at, &service);
    let range = (starts_at, occupied_until);
    let calendars = practice.calendars(conn, &doctors, range, now, wanted.own_conversation, wanted.moving)?;
    let doctor_id = first_free(&calendars, practice.tz, starts_at, &service).ok_or_else(|| conflict(Vec::new()))?;
    let doctor_name = doctors.iter().find(|d| d.id == doctor_id).map(|d| d.name.clone()).unwrap_or_default();
    Ok((practice, FreeTime { service, doctor_id, doctor_name, starts_at, ends_at, occupied_until }))
}

/// A conflict gains the nearest free alternatives, read after its transaction has ended (a
/// PostgreSQL transaction refused by the exclusion constraint can run nothing more).
fn with_alternatives<T>(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    wanted: &Wanted<'_>,
    now: i64,
    outcome: Result<T, BookingError>,
) -> Result<T, BookingError> {
    match outcome {
        Err(BookingError::Conflict { message, .. }) => {
            Err(BookingError::Conflict { message, alternatives: alternatives(conn, workspace_id, wanted, now)? })
        }
        other => other,
    }
}

/// Books an appointment: resolves the service and doctor, checks the time is free, matches or
/// creates the patient, writes the booking, releases the visitor's hold and queues
/// `new_booking` (and `new_patient`), all in one transaction.
pub fn reserve(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    req: &BookingRequest,
    now: i64,
    horizon: Horizon,
) -> Result<BookingRow, BookingError> {
    let wanted = Wanted {
        service: &req.service,
        doctor: req.doctor.as_ref(),
        start: req.start,
        own_conversation: req.conversation_id.as_ref(),
        moving: None,
        horizon,
    };
    let outcome =
        write_tx(conn, |conn| reserve_in_tx(conn, workspace_id, req, &wanted, now)).map_err(overlap_is_conflict);
    with_alternatives(conn, workspace_id, &wanted, now, outcome)
}

/// The database refusing an overlapping row (PostgreSQL's exclusion constraint, SQLite's
/// triggers) is the same conflict the engine's own check reports: the time was booked first.
fn overlap_is_conflict(err: BookingError) -> BookingError {
    match err {
        BookingError::Db(db) if bookings::is_overlap_violation(&db) => conflict(Vec::new()),
        other => other,
    }
}

fn conflict(alternatives: Vec<SlotView>) -> BookingError {
    BookingError::Conflict { message: "that time is not available".into(), alternatives }
}

fn reserve_in_tx(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    req: &BookingRequest,
    wanted: &Wanted<'_>,
    now: i64,
) -> Result<BookingRow, BookingError> {
    let (practice, free) = find_free(conn, workspace_id, wanted, now)?;
    let person = Person {
        name: Some(req.customer_name.as_str()),
        email: req.customer_email.as_deref(),
        phone: req.customer_phone.as_deref(),
        external_id: None,
    };
    let patient = contacts::merge(conn, workspace_id, &person, None, Authority::Visitor, "booking", now)?;
    let row = bookings::insert(
        conn,
        &NewBooking {
            workspace_id,
            doctor_id: free.doctor_id,
            doctor_name: free.doctor_name,
            service_id: free.service.id,
            service_name: free.service.name.clone(),
            contact_id: patient.map(|merged| merged.contact.id),
            conversation_id: req.conversation_id.clone(),
            customer_name: req.customer_name.trim().to_owned(),
            customer_email: req.customer_email.clone(),
            customer_phone: req.customer_phone.clone(),
            starts_at: free.starts_at,
            ends_at: free.ends_at,
            occupied_until: free.occupied_until,
            notes: req.notes.clone(),
            source: req.source.clone(),
        },
        now,
    )?;
    if let Some(conversation) = &req.conversation_id {
        bookings::release_holds(conn, workspace_id, conversation)?;
    }
    outbox::emit(conn, workspace_id, "new_booking", BookingView::new(&row, practice.tz).event_data(), now)?;
    Ok(row)
}

/// The free slots nearest to the wanted time, for the wanted doctor or any.
fn alternatives(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    wanted: &Wanted<'_>,
    now: i64,
) -> Result<Vec<SlotView>, BookingError> {
    let practice = Practice::load(conn, workspace_id)?;
    let Ok(service) = practice.service(wanted.service) else { return Ok(Vec::new()) };
    let Ok(doctors) = practice.candidates(wanted.doctor) else { return Ok(Vec::new()) };
    let at = practice.instant(wanted.start)?;
    let window = ALTERNATIVES_DAYS_AROUND * DAY_MS + DAY_MS;
    let range = (at - window, at + window);
    let calendars = practice.calendars(conn, &doctors, range, now, wanted.own_conversation, wanted.moving)?;
    let query = SlotQuery {
        tz: practice.tz,
        from: practice.today(now),
        to: practice.today(now),
        duration_min: service.duration_min as i64,
        buffer_min: service.buffer_min as i64,
        step_min: DEFAULT_STEP_MIN,
        not_before: now,
    };
    Ok(slots::nearest(&calendars, &query, at, ALTERNATIVES, ALTERNATIVES_DAYS_AROUND)
        .iter()
        .map(|s| practice.slot_view(s))
        .collect())
}

/// A visitor's wish to keep a slot while they finish booking it.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub conversation_id: ConversationId,
    /// A booking being moved: its own time does not stand in its way.
    pub moving: Option<i64>,
    pub service: Named,
    /// `None`: the first doctor free at that time.
    pub doctor: Option<Named>,
    pub start: Start,
    /// How long the hold lasts, in milliseconds.
    pub hold_ms: i64,
}

/// Holds a slot for a visitor between choosing it and confirming (one hold per conversation).
pub fn hold(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    req: &HoldRequest,
    now: i64,
    horizon: Horizon,
) -> Result<HoldRow, BookingError> {
    let wanted = Wanted {
        service: &req.service,
        doctor: req.doctor.as_ref(),
        start: req.start,
        own_conversation: Some(&req.conversation_id),
        moving: req.moving,
        horizon,
    };
    let outcome = write_tx(conn, |conn| {
        let (_, free) = find_free(conn, workspace_id, &wanted, now)?;
        let range = (free.starts_at, free.occupied_until);
        Ok(bookings::hold(conn, workspace_id, &req.conversation_id, free.doctor_id, range, now + req.hold_ms)?)
    });
    with_alternatives(conn, workspace_id, &wanted, now, outcome)
}

/// Moves a confirmed booking to a new time (and optionally another doctor).
pub fn reschedule(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: i64,
    start: Start,
    doctor: Option<&Named>,
    now: i64,
    horizon: Horizon,
) -> Result<BookingRow, BookingError> {
    let outcome = write_tx(conn, |conn| reschedule_in_tx(conn, workspace_id, id, start, doctor, now, horizon))
        .map_err(overlap_is_conflict);
    if !matches!(outcome, Err(BookingError::Conflict { .. })) {
        return outcome;
    }
    let Some(row) = bookings::get(conn, workspace_id, id)? else { return Err(BookingError::NotFound) };
    let service = row.service_id.map(Named::Id).unwrap_or_else(|| Named::Name(row.service_name.clone()));
    let doctor = doctor.cloned().or(row.doctor_id.map(Named::Id));
    let wanted = Wanted {
        service: &service,
        doctor: doctor.as_ref(),
        start,
        own_conversation: row.conversation_id.as_ref(),
        moving: Some(id),
        horizon,
    };
    with_alternatives(conn, workspace_id, &wanted, now, outcome)
}

fn reschedule_in_tx(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: i64,
    start: Start,
    doctor: Option<&Named>,
    now: i64,
    horizon: Horizon,
) -> Result<BookingRow, BookingError> {
    lock_workspace(conn, Guarded::Schedule, workspace_id)?;
    let practice = Practice::load(conn, workspace_id)?;
    let row = bookings::get(conn, workspace_id, id)?.ok_or(BookingError::NotFound)?;
    if row.status != BookingStatus::Confirmed {
        return Err(BookingError::State(format!("booking {id} is {} and cannot be rescheduled", row.status)));
    }
    let doctor = match doctor {
        Some(named) => practice.doctor(named)?,
        None => row
            .doctor_id
            .and_then(|d| practice.doctors.iter().find(|doc| doc.id == d))
            .ok_or_else(|| BookingError::Invalid("the booking's doctor no longer exists; name a doctor".into()))?,
    };
    let starts_at = practice.bookable(start, now, horizon)?;
    // The booking keeps its own length and buffer, even if the service changed since.
    let ends_at = starts_at + (row.ends_at - row.starts_at);
    let occupied_until = starts_at + (row.occupied_until - row.starts_at);
    let calendars = practice.calendars(
        conn,
        &[doctor],
        (starts_at, occupied_until),
        now,
        row.conversation_id.as_ref(),
        Some(row.id),
    )?;
    let duration_min = (row.ends_at - row.starts_at) / 60_000;
    let buffer_min = (row.occupied_until - row.ends_at) / 60_000;
    if !slots::is_free(&calendars[0], practice.tz, starts_at, duration_min, buffer_min) {
        return Err(conflict(Vec::new()));
    }
    let moved = bookings::reschedule(
        conn,
        workspace_id,
        id,
        &NewTime { doctor_id: doctor.id, doctor_name: doctor.name.clone(), starts_at, ends_at, occupied_until },
        now,
    )?
    .ok_or(BookingError::NotFound)?;
    let mut data = BookingView::new(&moved, practice.tz).event_data();
    let before = BookingView::new(&row, practice.tz);
    data["previous_date"] = before.date.into();
    data["previous_time"] = before.time.into();
    data["previous_doctor_name"] = before.doctor_name.into();
    outbox::emit(conn, workspace_id, "booking_rescheduled", data, now)?;
    Ok(moved)
}

/// The final statuses and the webhook event each one queues.
pub fn event_for(status: BookingStatus) -> Option<&'static str> {
    match status {
        BookingStatus::Cancelled => Some("booking_cancelled"),
        BookingStatus::Completed => Some("booking_completed"),
        BookingStatus::NoShow => Some("no_show"),
        BookingStatus::Confirmed => None,
    }
}

/// Cancels, completes or marks as no-show a confirmed booking, with its event.
pub fn finish(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: i64,
    status: BookingStatus,
    reason: Option<&str>,
    now: i64,
) -> Result<BookingRow, BookingError> {
    let event = event_for(status).ok_or_else(|| BookingError::Invalid(format!("`{status}` is not a final status")))?;
    write_tx(conn, |conn| {
        let tz = workspace_tz(conn, workspace_id)?;
        match bookings::finish(conn, workspace_id, id, status, now)? {
            Some(row) => {
                let mut data = BookingView::new(&row, tz).event_data();
                if let Some(reason) = reason {
                    data["reason"] = reason.into();
                }
                outbox::emit(conn, workspace_id, event, data, now)?;
                Ok(row)
            }
            None => match bookings::get(conn, workspace_id, id)? {
                None => Err(BookingError::NotFound),
                Some(row) => Err(BookingError::State(format!("booking {id} is already {}", row.status))),
            },
        }
    })
}

/// How a booking's refusal reads over the API: bad input 400, a broken rule 422, a taken time
/// 409 with alternatives, an unknown booking 404.
impl From<BookingError> for crate::error::ApiError {
    fn from(err: BookingError) -> Self {
        match err {
            BookingError::Invalid(message) => crate::error::ApiError::bad_request(message),
            BookingError::Unprocessable(message) => crate::error::ApiError::unprocessable(message),
            BookingError::Conflict { message, alternatives } => crate::error::ApiError::conflict(message)
                .with("alternatives", serde_json::to_value(alternatives).unwrap_or_default()),
            BookingError::State(message) => crate::error::ApiError::conflict(message),
            BookingError::BeyondHorizon { field, .. } => {
                crate::error::ApiError::unprocessable(err.to_string()).with("field", serde_json::Value::from(field))
            }
            BookingError::NotFound => crate::error::ApiError::not_found("booking not found"),
            BookingError::Db(err) => err.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_begins_at_midnight_or_when_the_clocks_resume() {
        let tz: Tz = "Europe/London".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
        assert_eq!(rfc3339(start_of_day(tz, day)), "2026-06-30T23:00:00Z", "midnight in summer time");

        // Santiago moves its clocks at midnight: on that day 00:00 does not exist.
        let santiago: Tz = "America/Santiago".parse().unwrap();
        let skipped = (0..366)
            .filter_map(|n| NaiveDate::from_ymd_opt(2026, 1, 1).unwrap().checked_add_days(chrono::Days::new(n)))
            .find(|d| santiago.from_local_datetime(&d.and_time(NaiveTime::MIN)).earliest().is_none())
            .expect("a day without a midnight in Santiago in 2026");
        let start = start_of_day(santiago, skipped);
        let local_start = DateTime::<Utc>::from_timestamp_millis(start).unwrap().with_timezone(&santiago);
        assert_eq!(local_start.date_naive(), skipped);
        assert_eq!(local_start.time(), NaiveTime::from_hms_opt(1, 0, 0).unwrap(), "the first minute that exists");
    }

    #[test]
    fn dates_are_strict_and_instants_are_utc() {
        assert_eq!(parse_date("2027-03-01"), NaiveDate::from_ymd_opt(2027, 3, 1));
        assert_eq!(parse_date(" 2027-03-01 "), NaiveDate::from_ymd_opt(2027, 3, 1));
        assert_eq!(parse_date("2027-3-1"), None);
        assert_eq!(parse_date("2027-02-30"), None);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_803_895_200_000), "2027-03-01T10:00:00Z");
    }

    #[test]
    fn the_horizon_defaults_to_two_years_and_stays_in_bounds() {
        assert_eq!(Horizon::default(), Horizon::days(730));
        assert_eq!(Horizon::default().last_start(1_000), 1_000 + 730 * DAY_MS);
        assert_eq!(Horizon::days(0), Horizon::days(1));
        assert_eq!(Horizon::days(u32::MAX), Horizon::days(Horizon::MAX_DAYS));
        assert_eq!(Horizon::days(Horizon::MAX_DAYS).last_start(i64::MAX), i64::MAX, "no overflow");
    }

    #[test]
    fn each_final_status_has_its_event() {
        assert_eq!(event_for(BookingStatus::Cancelled), Some("booking_cancelled"));
        assert_eq!(event_for(BookingStatus::Completed), Some("booking_completed"));
        assert_eq!(event_for(BookingStatus::NoShow), Some("no_show"));
        assert_eq!(event_for(BookingStatus::Confirmed), None);
    }
}
