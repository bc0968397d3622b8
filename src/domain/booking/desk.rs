//! The booking actor ([`frontdesk_actors::BookingDesk`]) given a database connection: each job
//! of a workspace runs with a pooled connection, after the workspace's earlier jobs. It also
//! carries the operator's booking horizon, so every caller that books through it applies the same.

use actix_web::http::StatusCode;
use chrono::{DateTime, NaiveDate};
use frontdesk_actors::BookingDesk as Desk;
use serde::Serialize;

use super::{AvailabilityRequest, BookingError, BookingRequest, BookingView, Horizon, Named, SlotView, Start};
use crate::domain::idempotency::{self, Created, Idempotent};
use crate::error::ApiError;
use crate::ids::WorkspaceId;
use crate::storage::bookings::{self as rows, BookingFilter};
use crate::storage::{now_ms, Db, DbConn, DbError};

pub use crate::status::BookingStatus;

/// Which bookings to list: local dates at the practice (both inclusive) and the usual filters.
#[derive(Debug, Default, Clone)]
pub struct BookingQuery {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub status: Option<BookingStatus>,
    pub doctor_id: Option<i64>,
    pub patient_id: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

/// Free slots to find: dates at the practice (`from` defaults to today there, `to` to `from`).
#[derive(Debug)]
pub struct SlotSearch {
    pub service: Named,
    pub doctor: Option<Named>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub step_min: i64,
}

pub struct BookingDesk {
    db: Db,
    desk: Desk,
    horizon: Horizon,
}

impl BookingDesk {
    pub fn new(db: Db) -> Self {
        Self { db, desk: Desk::new(), horizon: Horizon::default() }
    }

    pub fn with_horizon(mut self, horizon: Horizon) -> Self {
        self.horizon = horizon;
        self
    }

    /// How far ahead bookings are taken.
    pub fn horizon(&self) -> Horizon {
        self.horizon
    }

    /// Runs `job` with a connection, after every earlier job of the same workspace.
    pub async fn run<T, F>(&self, workspace_id: WorkspaceId, job: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> T + Send + 'static,
    {
        let db = self.db.clone();
        self.desk
            .run(workspace_id.get(), move || {
                db.conn().map(|mut conn| {
                    let done = job(&mut conn);
                    // The job is a unit of work like `Db::run`'s: what it queued is due now (a
                    // job that rolled back only wakes the dispatcher for nothing).
                    crate::storage::outbox::end_unit_of_work(true);
                    done
                })
            })
            .await
            .map_err(|err| DbError::Task(err.to_string()))?
    }

    /// Reserves once per idempotency key, in `scope`: the key, the booking and the stored
    /// response commit together. `respond` shapes the answer from the booking.
    pub async fn reserve_once<T: Serialize + Send + 'static>(
        &self,
        workspace_id: WorkspaceId,
        booking: BookingRequest,
        scope: &'static str,
        request: Idempotent,
        respond: fn(BookingView) -> T,
    ) -> Result<Created, ApiError> {
        let horizon = self.horizon;
        let Idempotent { key, digest } = request;
        self.run(workspace_id, move |conn| {
            idempotency::in_transaction(conn, workspace_id, scope, key.as_deref(), &digest, |conn| {
                let row = super::reserve(conn, workspace_id, &booking, now_ms(), horizon)?;
                let tz = super::workspace_tz(conn, workspace_id)?;
                Ok((StatusCode::CREATED, respond(BookingView::new(&row, tz))))
            })
        })
        .await?
    }

    /// Moves a booking to `start`, optionally with another doctor.
    pub async fn reschedule(
        &self,
        workspace_id: WorkspaceId,
        id: i64,
        start: Start,
        doctor: Option<Named>,
    ) -> Result<BookingView, ApiError> {
        let horizon = self.horizon;
        Ok(self
            .run(workspace_id, move |conn| {
                let row = super::reschedule(conn, workspace_id, id, start, doctor.as_ref(), now_ms(), horizon)?;
                Ok::<_, BookingError>(BookingView::new(&row, super::workspace_tz(conn, workspace_id)?))
            })
            .await??)
    }

    /// Ends a booking as `status` (cancelled, completed, no-show), with an optional reason.
    pub async fn finish(
        &self,
        workspace_id: WorkspaceId,
        id: i64,
        status: BookingStatus,
        reason: Option<String>,
    ) -> Result<BookingView, ApiError> {
        if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
            return Err(ApiError::unprocessable("reason must be at most 500 characters"));
        }
        Ok(self
            .run(workspace_id, move |conn| {
                let row = super::finish(conn, workspace_id, id, status, reason.as_deref(), now_ms())?;
                Ok::<_, BookingError>(BookingView::new(&row, super::workspace_tz(conn, workspace_id)?))
            })
            .await??)
    }

    /// The workspace's bookings, newest appointment first.
    pub async fn list(&self, workspace_id: WorkspaceId, query: BookingQuery) -> Result<Vec<BookingView>, ApiError> {
        Ok(self
            .db
            .run(move |conn| {
                let tz = super::workspace_tz(conn, workspace_id)?;
                let filter = BookingFilter {
                    from: query.from.map(|d| super::start_of_day(tz, d)),
                    to: query.to.and_then(|d| d.succ_opt()).map(|d| super::start_of_day(tz, d)),
                    status: query.status,
                    doctor_id: query.doctor_id,
                    contact_id: query.patient_id,
                    conversation_id: None,
                    limit: query.limit,
                    offset: query.offset,
                };
                Ok(rows::list(conn, workspace_id, &filter)?.iter().map(|r| BookingView::new(r, tz)).collect())
            })
            .await?)
    }

    pub async fn get(&self, workspace_id: WorkspaceId, id: i64) -> Result<BookingView, ApiError> {
        self.db
            .run(move |conn| {
                let tz = super::workspace_tz(conn, workspace_id)?;
                Ok(rows::get(conn, workspace_id, id)?.map(|r| BookingView::new(&r, tz)))
            })
            .await?
            .ok_or_else(|| ApiError::not_found("booking not found"))
    }

    /// Free slots for a service, per doctor or any, and the practice's time zone.
    pub async fn availability(
        &self,
        workspace_id: WorkspaceId,
        search: SlotSearch,
    ) -> Result<(Vec<SlotView>, chrono_tz::Tz), ApiError> {
        if !(5..=240).contains(&search.step_min) {
            return Err(ApiError::bad_request("invalid query parameter `step`: 5 to 240 minutes"));
        }
        let (slots, tz) = self
            .db
            .run(move |conn| {
                let tz = super::workspace_tz(conn, workspace_id)?;
                let now = now_ms();
                let today = DateTime::from_timestamp_millis(now).unwrap_or_default().with_timezone(&tz).date_naive();
                let from = search.from.unwrap_or(today);
                let request = AvailabilityRequest {
                    service: search.service,
                    doctor: search.doctor,
                    from,
                    to: search.to.unwrap_or(from),
                    step_min: search.step_min,
                    conversation_id: None,
                    moving: None,
                };
                Ok((super::availability(conn, workspace_id, &request, now), tz))
            })
            .await?;
        Ok((slots?, tz))
    }
}
