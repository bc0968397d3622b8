//! Patients over REST (ChatGenius's patients API): search, the profile with its booking history
//! and lead, and partial updates.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::domain::chat::Chat;
use crate::domain::patients::{self, PatientChanges};
use crate::error::{ApiError, JsonBody, QueryParams};
use crate::transport::http::auth::Caller;
use crate::transport::http::listing::{self, Listing};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientQuery {
    pub search: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// `GET /api/patients?search=`: a bare array (ChatGenius's shape), newest first.
pub async fn list_patients(
    req: HttpRequest,
    chat: web::Data<Chat>,
    caller: Caller,
    query: QueryParams<PatientQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    let (workspace_id, search) = (caller.workspace_id, q.search);
    let fetch = move |limit, offset| {
        let (chat, search) = (chat.clone(), search.clone());
        async move { patients::search(&chat.db, workspace_id, search, limit, offset).await }
    };
    listing::respond(&req, Listing::of(q.limit, q.offset)?, fetch).await
}

/// `GET /api/patients/:id`: the profile with its bookings (newest first) and lead.
pub async fn get_patient(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let profile = patients::profile(&chat.db, caller.workspace_id, *path).await?;
    let mut body = serde_json::to_value(profile.patient).map_err(ApiError::internal)?;
    body["bookings"] = serde_json::to_value(profile.bookings).map_err(ApiError::internal)?;
    body["lead"] = serde_json::to_value(profile.lead).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(body))
}

/// `PUT /api/patients/:id`: changes only the fields sent (ChatGenius: "only send the fields you
/// want to change"); an empty string clears a field.
pub async fn update_patient(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<PatientChanges>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(patients::update(&chat.db, caller.workspace_id, *path, body.0).await?))
}
