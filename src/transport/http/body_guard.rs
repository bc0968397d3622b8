//! Every request body ends: the [`BodyGuard`] middleware puts a deadline on reading each
//! request's body, on every route, and checks the framing of multipart bodies as they stream.
//!
//! actix answers slow *headers* itself (`client_request_timeout`), but once a request's head is
//! in, a body that is declared (`Content-Length`, chunked) and never sent would be waited for
//! forever. Here the body is wrapped in a stream that fails with a [`BodyFault`] when:
//! - the whole body has not arrived within `FRONTDESK_BODY_TIMEOUT_SECS` (multipart uploads:
//!   `FRONTDESK_UPLOAD_TIMEOUT_SECS`, since files are large; they still may not stall for longer
//!   than `FRONTDESK_BODY_TIMEOUT_SECS` between two reads);
//! - a multipart body ends without its closing boundary (actix-multipart would wait for the
//!   missing bytes forever, keeping the upload's temporary file open), or a part's headers (or
//!   the preamble before the first part) run past [`MAX_PART_HEADER_BYTES`] (the parser buffers
//!   them whole).
//!
//! The deadlines are checked only while the server waits for the client: a handler that is slow
//! itself never turns the client's complete body into a timeout. Whatever error the handler's
//! extractor made of the failed read, the answer is the fault's own (408, 400 or 413, JSON like
//! every other error) and the connection is closed, since the rest of the body never came. Any
//! answer given before the body was read to its end (a 401, a 404, a refusal) closes the
//! connection too, rather than leaving actix to drain a chunked body with no deadline.
//! WebSocket handshakes are left alone: their "body" is the socket itself, and the sockets have
//! their own deadlines (see [`crate::transport::ws`]).

use std::cell::{Cell, RefCell};
use std::future::{ready, Future, Ready};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::error::PayloadError;
use actix_web::http::{header, ConnectionType, Method, StatusCode};
use actix_web::web::Bytes;
use actix_web::{HttpMessage, ResponseError};
use futures::Stream;
use tokio::time::{Instant, Sleep};

use crate::error::ApiError;

/// Longest run of part headers (or preamble before the first part) a multipart body may have.
pub const MAX_PART_HEADER_BYTES: usize = 8 * 1024;

/// Why a request body could not be read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// The body had not all arrived when its time was up.
    TooSlow { secs: u64 },
    /// Nothing arrived for this long.
    Stalled { secs: u64 },
    /// A multipart body ended without its closing boundary.
    Truncated,
    /// A multipart part's headers went on past the limit.
    HeadersTooLarge { limit: usize },
}

impl std::fmt::Display for BodyFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyFault::TooSlow { secs } => {
                write!(f, "request body not received within {secs} s (FRONTDESK_BODY_TIMEOUT_SECS)")
            }
            BodyFault::Stalled { secs } => {
                write!(f, "request body stalled: nothing received for {secs} s (FRONTDESK_BODY_TIMEOUT_SECS)")
            }
            BodyFault::Truncated => write!(f, "multipart body ends before its closing boundary"),
            BodyFault::HeadersTooLarge { limit } => {
                write!(f, "multipart part headers (or preamble) are over {limit} bytes")
            }
        }
    }
}

impl std::error::Error for BodyFault {}

impl BodyFault {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyFault::TooSlow { .. } | BodyFault::Stalled { .. } => StatusCode::REQUEST_TIMEOUT,
            BodyFault::Truncated => StatusCode::BAD_REQUEST,
            BodyFault::HeadersTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    pub fn to_api_error(self) -> ApiError {
        ApiError::new(self.status(), self.to_string())
    }

    /// The fault behind a payload error this module raised, if it was one.
    pub fn of(err: &PayloadError) -> Option<BodyFault> {
        match err {
            PayloadError::Io(io) => io.get_ref().and_then(|inner| inner.downcast_ref::<BodyFault>()).copied(),
            _ => None,
        }
    }

    fn into_payload_error(self) -> PayloadError {
        let kind = match self {
            BodyFault::TooSlow { .. } | BodyFault::Stalled { .. } => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::InvalidData,
        };
        PayloadError::Io(io::Error::new(kind, self))
    }
}

/// The middleware (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct BodyGuard {
    /// Time for a whole body, and longest stall of a multipart one.
    pub body_timeout: Duration,
    /// Time for a whole multipart body.
    pub upload_timeout: Duration,
}

impl<S, B> Transform<S, ServiceRequest> for BodyGuard
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = BodyGuardService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(BodyGuardService { service, config: *self }))
    }
}

pub struct BodyGuardService<S> {
    service: S,
    config: BodyGuard,
}

impl<S, B> Service<ServiceRequest> for BodyGuardService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let guard = self.config.guard(&mut req);
        let call = self.service.call(req);
        Box::pin(async move {
            let result = call.await;
            let fired = guard.as_ref().and_then(|guard| guard.fault.get());
            let unread = guard.as_ref().and_then(|guard| guard.unread.take());
            let mut res = match (result, fired) {
                (Ok(res), Some(fault)) if res.status().as_u16() >= 400 => {
                    res.into_response(fault.to_api_error().error_response()).map_into_right_body()
                }
                (Ok(res), _) => res.map_into_left_body(),
                // Only a middleware fails this way (a handler's error is already a response);
                // the request went with it, so the answer is built later, from the error.
                (Err(_), Some(fault)) => return Err(HeldError::wrap(fault.to_api_error().into(), unread)),
                (Err(err), None) => return Err(HeldError::wrap(err, unread)),
            };
            // The rest of the body never came (or is still coming): this connection cannot
            // carry another request.
            if fired.is_some() || res.status() == StatusCode::REQUEST_TIMEOUT {
                res.response_mut().head_mut().set_connection_type(ConnectionType::Close);
            }
            // actix drains an unread chunked body after the response to reuse the connection,
            // with no deadline: a client that never finishes it would keep the connection
            // forever. A body still held when the response is sent makes actix close instead.
            if let Some(unread) = unread {
                res = res.map_body(|_, body| {
                    EitherBody::right(BoxBody::new(HoldsUnread { body: BoxBody::new(body), _unread: unread }))
                });
            }
            Ok(res)
        })
    }
}

/// What a guarded body leaves for the middleware: its fault, and the unread rest of it.
#[derive(Default)]
struct GuardState {
    fault: Cell<Option<BodyFault>>,
    unread: RefCell<Option<Payload>>,
}

/// A response body that keeps the request's unread body alive until it has been sent.
struct HoldsUnread {
    body: BoxBody,
    _unread: Payload,
}

impl MessageBody for HoldsUnread {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// An error answered before the body was read: its response holds the unread body (see
/// [`HoldsUnread`]) and closes the connection.
struct HeldError {
    inner: actix_web::Error,
    unread: RefCell<Option<Payload>>,
}

impl HeldError {
    fn wrap(inner: actix_web::Error, unread: Option<Payload>) -> actix_web::Error {
        match unread {
            Some(unread) => HeldError { inner, unread: RefCell::new(Some(unread)) }.into(),
            None => inner,
        }
    }
}

impl std::fmt::Debug for HeldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.inner, f)
    }
}

impl std::fmt::Display for HeldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.inner, f)
    }
}

impl ResponseError for HeldError {
    fn status_code(&self) -> StatusCode {
        self.inner.as_response_error().status_code()
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        let mut res = self.inner.error_response();
        res.head_mut().set_connection_type(ConnectionType::Close);
        match self.unread.borrow_mut().take() {
            Some(unread) => res.map_body(|_, body| BoxBody::new(HoldsUnread { body, _unread: unread })),
            None => res,
        }
    }
}

impl BodyGuard {
    /// Wraps the request's body, if it has one; answers what the body will leave behind.
    fn guard(&self, req: &mut ServiceRequest) -> Option<Rc<GuardState>> {
        // A WebSocket's "body" is the socket: it lasts as long as the conversation.
        if req.method() == Method::GET && req.head().upgrade() {
            return None;
        }
        let payload = req.take_payload();
        if matches!(payload, Payload::None) {
            req.set_payload(payload);
            return None;
        }
        let framing = multipart_boundary(req).map(|boundary| Framing::new(&boundary));
        let (total, idle) = match framing {
            Some(_) => (self.upload_timeout, Some(self.body_timeout)),
            None => (self.body_timeout, None),
        };
        let state = Rc::new(GuardState::default());
        let guarded = GuardedBody {
            inner: payload,
            total_secs: total.as_secs(),
            total: Box::pin(tokio::time::sleep(total)),
            idle: idle.map(|gap| (gap, Box::pin(tokio::time::sleep(gap)))),
            framing,
            state: state.clone(),
            done: false,
            ended: false,
        };
        let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(guarded);
        req.set_payload(Payload::from(stream));
        Some(state)
    }
}

/// The boundary of a `multipart/*` body, when the request declares one.
fn multipart_boundary(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mime: actix_web::mime::Mime = value.parse().ok()?;
    if mime.type_() != actix_web::mime::MULTIPART {
        return None;
    }
    let boundary = mime.get_param(actix_web::mime::BOUNDARY)?.as_str().to_owned();
    (!boundary.is_empty()).then_some(boundary)
}

/// A request body with deadlines and, for multipart, a framing check.
struct GuardedBody {
    inner: Payload,
    total_secs: u64,
    total: Pin<Box<Sleep>>,
    /// The longest gap between two reads, and when the current one runs out.
    idle: Option<(Duration, Pin<Box<Sleep>>)>,
    framing: Option<Framing>,
    state: Rc<GuardState>,
    /// Nothing more is read (the body failed or ended).
    done: bool,
    /// The client's body itself ended (or broke off).
    ended: bool,
}

impl GuardedBody {
    fn fail(&mut self, fault: BodyFault) -> Poll<Option<Result<Bytes, PayloadError>>> {
        self.done = true;
        self.state.fault.set(Some(fault));
        Poll::Ready(Some(Err(fault.into_payload_error())))
    }
}

impl Drop for GuardedBody {
    fn drop(&mut self) {
        if !self.ended {
            *self.state.unread.borrow_mut() = Some(std::mem::replace(&mut self.inner, Payload::None));
        }
    }
}

impl Stream for GuardedBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                if let Some((gap, idle)) = &mut this.idle {
                    idle.as_mut().reset(Instant::now() + *gap);
                }
                if let Some(framing) = &mut this.framing {
                    if let Err(fault) = framing.scan(&bytes) {
                        return this.fail(fault);
                    }
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(err))) => {
                this.done = true;
                this.ended = true;
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                this.ended = true;
                if this.framing.as_ref().is_some_and(|framing| !framing.closed()) {
                    return this.fail(BodyFault::Truncated);
                }
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.total.as_mut().poll(cx).is_ready() {
                    let secs = this.total_secs;
                    return this.fail(BodyFault::TooSlow { secs });
                }
                if let Some((gap, idle)) = &mut this.idle {
                    if idle.as_mut().poll(cx).is_ready() {
                        let secs = gap.as_secs();
                        return this.fail(BodyFault::Stalled { secs });
                    }
                }
                Poll::Pending
            }
        }
    }
}

/// Follows a multipart body's delimiters as it streams, without keeping it: enough to know
/// whether the closing delimiter came and how long each part's headers are.
struct Framing {
    /// `\r\n--boundary`; the body is read as if it began with `\r\n`, so the first delimiter
    /// (which may open the body without one) is found the same way as the others.
    delimiter: Vec<u8>,
    state: FramingState,
    /// The end of the previous chunk, which may hold the start of a delimiter.
    carry: Vec<u8>,
    /// Stream offset of `carry[0]`.
    offset: u64,
    /// Stream offset where the current preamble or headers began.
    since: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FramingState {
    /// Before the first delimiter.
    Preamble,
    /// Right after a delimiter: `--` closes the body, anything else starts a part's headers.
    Delimited,
    /// A part's headers, up to the blank line.
    Headers,
    /// A part's content, up to the next delimiter.
    Content,
    /// After the closing delimiter (the epilogue is ignored).
    Closed,
}

impl Framing {
    fn new(boundary: &str) -> Framing {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        // The virtual `\r\n` before the body sits at offset -2; offsets count from it.
        Framing { delimiter, state: FramingState::Preamble, carry: b"\r\n".to_vec(), offset: 0, since: 0 }
    }

    fn closed(&self) -> bool {
        self.state == FramingState::Closed
    }

    fn scan(&mut self, chunk: &[u8]) -> Result<(), BodyFault> {
        if self.closed() {
            return Ok(());
        }
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(chunk);
        let mut pos = 0;
        let too_long = |since: u64, at: u64| at.saturating_sub(since) > MAX_PART_HEADER_BYTES as u64;
        let keep = loop {
            let at = |i: usize| self.offset + i as u64;
            match self.state {
                FramingState::Preamble | FramingState::Content => {
                    match memchr::memmem::find(&data[pos..], &self.delimiter) {
                        Some(i) => {
                            if self.state == FramingState::Preamble && too_long(self.since, at(pos + i)) {
                                return Err(BodyFault::HeadersTooLarge { limit: MAX_PART_HEADER_BYTES });
                            }
                            pos += i + self.delimiter.len();
                            self.state = FramingState::Delimited;
                        }
                        None => {
                            if self.state == FramingState::Preamble && too_long(self.since, at(data.len())) {
                                return Err(BodyFault::HeadersTooLarge { limit: MAX_PART_HEADER_BYTES });
                            }
                            break data.len().saturating_sub(self.delimiter.len() - 1).max(pos);
                        }
                    }
                }
                FramingState::Delimited => {
                    if data.len() - pos < 2 {
                        break pos;
                    }
                    if &data[pos..pos + 2] == b"--" {
                        self.state = FramingState::Closed;
                        break data.len();
                    }
                    self.state = FramingState::Headers;
                    self.since = at(pos);
                }
                FramingState::Headers => match memchr::memmem::find(&data[pos..], b"\r\n\r\n") {
                    Some(i) => {
                        if too_long(self.since, at(pos + i)) {
                            return Err(BodyFault::HeadersTooLarge { limit: MAX_PART_HEADER_BYTES });
                        }
                        // Only the last header line's end is consumed: the blank line's `\r\n`
                        // opens the next delimiter when a part has no headers and no content.
                        pos += i + 2;
                        self.state = FramingState::Content;
                    }
                    None => {
                        if too_long(self.since, at(data.len())) {
                            return Err(BodyFault::HeadersTooLarge { limit: MAX_PART_HEADER_BYTES });
                        }
                        break data.len().saturating_sub(3).max(pos);
                    }
                },
                FramingState::Closed => break data.len(),
            }
        };
        self.offset += keep as u64;
        self.carry = data.split_off(keep);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for part in parts {
            out.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\n");
            out.extend_from_slice(part.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--XyZ--\r\n");
        out
    }

    /// Feeds `bytes` in chunks of `size`; answers whether the body closed, or its fault.
    fn feed(bytes: &[u8], size: usize) -> Result<bool, BodyFault> {
        let mut framing = Framing::new("XyZ");
        for chunk in bytes.chunks(size) {
            framing.scan(chunk)?;
        }
        Ok(framing.closed())
    }

    #[test]
    fn a_complete_body_closes_however_it_is_cut() {
        let whole = body(&["hello", "", "a line\r\n-- XyZ\r\n-XyZ\r\r\n--Xy"]);
        for size in [1, 2, 3, 5, 7, 64, whole.len()] {
            assert_eq!(feed(&whole, size), Ok(true), "chunks of {size}");
        }
        let mut preamble = b"ignored preamble\r\n".to_vec();
        preamble.extend_from_slice(&whole);
        assert_eq!(feed(&preamble, 4), Ok(true));
        // A part without headers or content.
        assert_eq!(feed(b"--XyZ\r\n\r\n--XyZ--", 1), Ok(true));
    }

    #[test]
    fn a_body_cut_anywhere_before_its_closing_delimiter_is_not_closed() {
        let whole = body(&["hello", "world"]);
        let closing = whole.len() - b"--XyZ--\r\n".len() + b"--XyZ--".len();
        for end in 0..closing {
            for size in [1, 3, 1000] {
                assert_eq!(feed(&whole[..end], size), Ok(false), "cut at {end}, chunks of {size}");
            }
        }
    }

    #[test]
    fn long_headers_or_preamble_are_refused() {
        let long = format!("--XyZ\r\nX-Pad: {}\r\n\r\ncontent\r\n--XyZ--", "a".repeat(MAX_PART_HEADER_BYTES));
        for size in [1, 100, long.len()] {
            assert_eq!(feed(long.as_bytes(), size), Err(BodyFault::HeadersTooLarge { limit: MAX_PART_HEADER_BYTES }));
        }
        let endless_header = format!("--XyZ\r\nX-Pad: {}", "a".repeat(3 * MAX_PART_HEADER_BYTES));
        assert!(feed(endless_header.as_bytes(), 512).is_err());
        let endless_preamble = "p".repeat(2 * MAX_PART_HEADER_BYTES);
        assert!(feed(endless_preamble.as_bytes(), 512).is_err());
        // Content is not headers: a large part is fine.
        let big = body(&[&"c".repeat(10 * MAX_PART_HEADER_BYTES)]);
        assert_eq!(feed(&big, 4096), Ok(true));
    }

    #[test]
    fn faults_survive_the_trip_through_a_payload_error() {
        for fault in [
            BodyFault::TooSlow { secs: 3 },
            BodyFault::Stalled { secs: 2 },
            BodyFault::Truncated,
            BodyFault::HeadersTooLarge { limit: 10 },
        ] {
            assert_eq!(BodyFault::of(&fault.into_payload_error()), Some(fault));
        }
        assert_eq!(BodyFault::of(&PayloadError::Overflow), None);
        assert_eq!(BodyFault::TooSlow { secs: 3 }.status(), StatusCode::REQUEST_TIMEOUT);
    }
}
