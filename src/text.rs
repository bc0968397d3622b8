//! What the server accepts as text, the same on SQLite and PostgreSQL.
//!
//! PostgreSQL cannot store U+0000 (NUL) in a `text` column, and `jsonb` refuses `\u0000` too;
//! SQLite stores it. Every other Unicode scalar value is storable on both. So NUL is refused at
//! the door, wherever client text enters: JSON bodies ([`crate::error::JsonBody`]), WebSocket
//! frames, multipart form fields, and the URL (query parameters and path segments, through
//! [`refuse_nul_in_url`]). A refusal names the field and nothing is stored, on either backend.
//!
//! Text the server reads from elsewhere (an uploaded document, a crawled page) has no client to
//! answer, so its NULs are dropped ([`drop_nul`]) rather than refused.
//!
//! Each check first looks for the raw marker (`\u0000` in JSON, `%00` in a URL) and walks the
//! parsed value only when it is there, so text without a NUL costs one scan of its bytes.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use serde_json::Value;

use crate::error::ApiError;

const WHY: &str = "must not contain the NUL character (U+0000)";

/// The refusal for a text field (`text`, `customer.name`) holding a NUL.
pub fn nul_in_field(field: &str) -> ApiError {
    ApiError::unprocessable(format!("invalid field `{field}`: {WHY}"))
}

/// Refuses a plain text value (a form field, a frame's field) that holds a NUL.
pub fn check_str(field: &str, value: &str) -> Result<(), ApiError> {
    if value.contains('\0') {
        Err(nul_in_field(field))
    } else {
        Ok(())
    }
}

/// Refuses a JSON document (already known to be valid JSON) with a NUL in any string or key,
/// naming the first such field.
pub fn check_json(bytes: &[u8]) -> Result<(), ApiError> {
    // A NUL can only be written `\u0000` in JSON (raw control characters are a syntax error).
    if !contains(bytes, b"\\u0000") {
        return Ok(());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => check_value(&value),
        // The caller has parsed it already; a document that does not parse here is its error.
        Err(_) => Ok(()),
    }
}

/// Refuses a parsed JSON value with a NUL in any string or key, naming the first such field.
pub fn check_value(value: &Value) -> Result<(), ApiError> {
    match find_nul(value, &mut String::new()) {
        Some(field) => Err(nul_in_field(&field)),
        None => Ok(()),
    }
}

/// The path (`customer.name`, `items[2].text`) of the first string holding a NUL; an object key
/// holding one is named by its (escaped) self.
fn find_nul(value: &Value, path: &mut String) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(if path.is_empty() { "body".to_owned() } else { path.clone() }),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = find_nul(item, path);
            path.truncate(len);
            found
        }),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            if key.contains('\0') {
                path.push_str(&key.replace('\0', "\\u0000"));
                return Some(std::mem::take(path));
            }
            path.push_str(key);
            let found = find_nul(item, path);
            path.truncate(len);
            found
        }),
        _ => None,
    }
}

/// Refuses a query string with a NUL in any parameter's name or value (422 naming it).
pub fn check_query(query: &str) -> Result<(), ApiError> {
    if !contains(query.as_bytes(), b"%00") && !query.contains('\0') {
        return Ok(());
    }
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name.contains('\0') {
            let shown = name.replace('\0', "\\u0000");
            return Err(ApiError::unprocessable(format!("invalid query parameter `{shown}`: its name {WHY}")));
        }
        if value.contains('\0') {
            return Err(ApiError::unprocessable(format!("invalid query parameter `{name}`: {WHY}")));
        }
    }
    Ok(())
}

/// Middleware on every route: a path segment with a NUL names nothing that exists (404, as
/// [`crate::transport::http::path_error`] answers for any id that cannot be one), and a query parameter
/// with one is refused with 422, before any handler or extractor sees them.
pub async fn refuse_nul_in_url(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>, actix_web::Error> {
    let refused = if contains(req.path().as_bytes(), b"%00") {
        Some(ApiError::not_found(format!("nothing at {}", req.path())))
    } else {
        check_query(req.query_string()).err()
    };
    match refused {
        Some(err) => {
            let (req, _) = req.into_parts();
            let res = actix_web::ResponseError::error_response(&err);
            Ok(ServiceResponse::new(req, res).map_into_right_body())
        }
        None => next.call(req).await.map(ServiceResponse::map_into_left_body),
    }
}

/// Removes every NUL from text the server reads from elsewhere (a document, a web page), where
/// there is no client to tell.
pub fn drop_nul(text: &mut String) {
    if text.contains('\0') {
        text.retain(|c| c != '\0');
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(bytes: &str) -> Option<String> {
        check_json(bytes.as_bytes()).err().map(|err| err.message().to_owned())
    }

    #[test]
    fn names_the_field_holding_a_nul() {
        assert_eq!(refusal(r#"{"text":"hi"}"#), None);
        assert_eq!(refusal(r#"{"text":"a\\u0000"}"#), None, "an escaped backslash is no NUL");
        let nested = refusal(r#"{"customer":{"name":"A\u0000B"}}"#).unwrap();
        assert!(nested.contains("`customer.name`"), "{nested}");
        let listed = refusal(r#"{"items":[{"t":"x"},{"t":"\u0000"}]}"#).unwrap();
        assert!(listed.contains("`items[1].t`"), "{listed}");
        let key = refusal(r#"{"variables":{"a\u0000":"x"}}"#).unwrap();
        assert!(key.contains("`variables.a\\u0000`"), "{key}");
        assert!(refusal(r#""\u0000""#).unwrap().contains("`body`"));
    }

    #[test]
    fn text_from_elsewhere_loses_its_nuls() {
        let mut text = "a\0b\0".to_owned();
        drop_nul(&mut text);
        assert_eq!(text, "ab");
    }

    #[test]
    fn query_parameters_are_named() {
        assert!(check_query("search=abc&limit=5").is_ok());
        assert!(check_query("search=%2500").is_ok(), "a percent sign followed by 00 is no NUL");
        let err = check_query("limit=5&search=a%00b").unwrap_err();
        assert_eq!(err.status_code(), actix_web::http::StatusCode::UNPROCESSABLE_ENTITY);
        assert!(err.message().contains("`search`"), "{}", err.message());
        assert!(check_query("a%00=1").unwrap_err().message().contains("name"));
    }

    use actix_web::ResponseError;
}
