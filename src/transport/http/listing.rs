//! ChatGenius's "get all" lists (bookings, patients, leads): a bare JSON array of every record,
//! never cut short, or one page of it with `limit`/`offset`.
//!
//! Without `limit` the records are read a page ([`MAX_PAGE`]) at a time and streamed as one
//! array, so a workspace with a hundred thousand patients costs the server one page of memory.
//! The first page is read before the answer starts, so a failure there is an ordinary error
//! response; a later one ends the stream early, and the client sees an unfinished array, never
//! a shorter list that looks whole. Records added or changed while the list streams may be
//! missed or repeated at a page boundary, as with any offset paging.
//!
//! With `limit`, a full page carries `Link: <…?limit=L&offset=O+L>; rel="next"` (RFC 8288); a
//! page shorter than `limit` is the last.

use std::future::Future;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::Serialize;

use super::MAX_PAGE;
use crate::error::ApiError;

/// Which records a list route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `limit` records from `offset`.
    Page { limit: i64, offset: i64 },
    /// Every record from `offset`.
    All { offset: i64 },
}

impl Listing {
    /// Reads `limit` (1 to [`MAX_PAGE`]; absent: every record) and `offset` (default 0).
    pub fn of(limit: Option<i64>, offset: Option<i64>) -> Result<Listing, ApiError> {
        let offset = offset.unwrap_or(0);
        if offset < 0 {
            return Err(ApiError::bad_request("invalid query parameter `offset`: 0 or more"));
        }
        match limit {
            None => Ok(Listing::All { offset }),
            Some(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(Listing::Page { limit, offset }),
            Some(_) => Err(ApiError::bad_request(format!("invalid query parameter `limit`: 1 to {MAX_PAGE}"))),
        }
    }
}

/// The list as a JSON array: `fetch(limit, offset)` reads one page of it.
pub async fn respond<T, F, Fut>(req: &HttpRequest, listing: Listing, fetch: F) -> Result<HttpResponse, ApiError>
where
    T: Serialize + 'static,
    F: Fn(i64, i64) -> Fut + 'static,
    Fut: Future<Output = Result<Vec<T>, ApiError>> + 'static,
{
    match listing {
        Listing::Page { limit, offset } => {
            let rows = fetch(limit, offset).await?;
            let mut response = HttpResponse::Ok();
            if rows.len() as i64 == limit {
                response.insert_header((header::LINK, next_link(req, limit, offset + limit)));
            }
            Ok(response.json(rows))
        }
        Listing::All { offset } => {
            let first = fetch(MAX_PAGE, offset).await?;
            let body = async_stream::stream! {
                let mut more = first.len() as i64 == MAX_PAGE;
                let mut next = offset + first.len() as i64;
                let mut chunk = b"[".to_vec();
                let mut empty = true;
                append(&mut chunk, &first, &mut empty);
                yield Ok::<_, actix_web::Error>(Bytes::from(chunk));
                while more {
                    match fetch(MAX_PAGE, next).await {
                        Ok(rows) => {
                            more = rows.len() as i64 == MAX_PAGE;
                            next += rows.len() as i64;
                            let mut chunk = Vec::new();
                            append(&mut chunk, &rows, &mut empty);
                            yield Ok(Bytes::from(chunk));
                        }
                        Err(err) => {
                            tracing::warn!(error = %err.message(), "a list stopped while it streamed");
                            yield Err(actix_web::error::ErrorInternalServerError(err.message().to_owned()));
                            return;
                        }
                    }
                }
                yield Ok(Bytes::from_static(b"]"));
            };
            Ok(HttpResponse::Ok().content_type("application/json").streaming(body))
        }
    }
}

/// Writes `rows` into `out` as array elements, a comma before each but the array's first.
fn append<T: Serialize>(out: &mut Vec<u8>, rows: &[T], empty: &mut bool) {
    for row in rows {
        if !std::mem::take(empty) {
            out.push(b',');
        }
        // A value that derives Serialize has no way to fail here.
        let _ = serde_json::to_writer(&mut *out, row);
    }
}

/// The request's own path and query with `limit` and `offset` set for the next page.
fn next_link(req: &HttpRequest, limit: i64, offset: i64) -> String {
    let kept = form_urlencoded::parse(req.query_string().as_bytes()).filter(|(k, _)| k != "limit" && k != "offset");
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .append_pair("limit", &limit.to_string())
        .append_pair("offset", &offset.to_string())
        .finish();
    format!("<{}?{query}>; rel=\"next\"", req.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_and_offset_choose_a_page_or_everything() {
        assert_eq!(Listing::of(None, None).unwrap(), Listing::All { offset: 0 });
        assert_eq!(Listing::of(None, Some(7)).unwrap(), Listing::All { offset: 7 });
        assert_eq!(Listing::of(Some(10), Some(20)).unwrap(), Listing::Page { limit: 10, offset: 20 });
        for (limit, offset) in [(Some(0), None), (Some(MAX_PAGE + 1), None), (Some(5), Some(-1))] {
            assert_eq!(actix_web::ResponseError::status_code(&Listing::of(limit, offset).unwrap_err()), 400);
        }
    }

    #[test]
    fn the_next_link_keeps_the_filters() {
        let req = actix_web::test::TestRequest::get().uri("/api/leads?stage=new&limit=2&offset=4").to_http_request();
        assert_eq!(next_link(&req, 2, 6), "</api/leads?stage=new&limit=2&offset=6>; rel=\"next\"");
    }

    #[test]
    fn rows_become_one_array_across_chunks() {
        let (mut out, mut empty) = (b"[".to_vec(), true);
        append(&mut out, &[1, 2], &mut empty);
        append(&mut out, &Vec::<i32>::new(), &mut empty);
        append(&mut out, &[3], &mut empty);
        out.push(b']');
        assert_eq!(String::from_utf8(out).unwrap(), "[1,2,3]");
    }
}
