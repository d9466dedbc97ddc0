//! pingora glue: reads a request (body capped), asks [`Api`], writes a JSON response.

use std::sync::Arc;

use async_trait::async_trait;
use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, EXPECT};
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use super::api::{Api, ApiReply, ApiRequest};
use super::error::ApiError;

/// Largest accepted request body (1 MiB); larger ones get 413.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The legacy API as a pingora [`ServeHttp`] application.
pub struct LegacyHttpApp {
    api: Arc<Api>,
}

impl LegacyHttpApp {
    pub(crate) fn new(api: Arc<Api>) -> Self {
        LegacyHttpApp { api }
    }
}

#[async_trait]
impl ServeHttp for LegacyHttpApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let reply = match read_body(session).await {
            Ok(body) => self.answer(session, &body),
            Err(e) => ApiReply::error(&e),
        };
        let header = session.req_header();
        tracing::debug!(
            method = %header.method,
            path = header.uri.path(),
            status = reply.status.as_u16(),
            "demo backend request"
        );
        into_response(reply)
    }
}

impl LegacyHttpApp {
    fn answer(&self, session: &ServerSession, body: &[u8]) -> ApiReply {
        let header = session.req_header();
        let authorization = header
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        self.api.handle(&ApiRequest {
            method: &header.method,
            path: header.uri.path(),
            query: header.uri.query(),
            authorization,
            body,
        })
    }
}

/// Reads the whole request body, refusing more than [`MAX_BODY_BYTES`].
async fn read_body(session: &mut ServerSession) -> Result<Vec<u8>, ApiError> {
    if declared_length(session).is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(ApiError::too_large(MAX_BODY_BYTES));
    }
    if expects_continue(session) {
        send_continue(session).await?;
    }
    let mut body = Vec::new();
    loop {
        let chunk = session.read_request_body().await.map_err(|e| {
            tracing::debug!(error = %e, "demo backend: cannot read request body");
            ApiError::bad_request("cannot read the request body")
        })?;
        let Some(chunk) = chunk else {
            return Ok(body);
        };
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::too_large(MAX_BODY_BYTES));
        }
        body.extend_from_slice(&chunk);
    }
}

fn declared_length(session: &ServerSession) -> Option<usize> {
    session
        .get_header(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn expects_continue(session: &ServerSession) -> bool {
    session
        .get_header(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Answers `Expect: 100-continue` without giving up keep-alive: pingora would otherwise mark
/// the connection for closing because a response starts before the body was read.
async fn send_continue(session: &mut ServerSession) -> Result<(), ApiError> {
    session.set_close_on_response_before_downstream_finish(false);
    let sent = session.write_continue_response().await;
    session.set_close_on_response_before_downstream_finish(true);
    sent.map_err(|e| {
        tracing::debug!(error = %e, "demo backend: cannot write 100 Continue");
        ApiError::bad_request("cannot write 100 Continue")
    })
}

/// Turns a reply into an HTTP response with `Content-Type` and `Content-Length`
/// (no body and no `Content-Length` for 204).
fn into_response(reply: ApiReply) -> Response<Vec<u8>> {
    let body = reply.body.map(|v| v.to_string().into_bytes());
    let mut response = Response::new(body.clone().unwrap_or_default());
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if reply.status != StatusCode::NO_CONTENT {
        let len = body.as_ref().map_or(0, Vec::len);
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
    }
    if let Some(allow) = reply.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
        headers.insert(ALLOW, allow);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_reply_has_length_and_type() {
        let r = into_response(ApiReply::error(&ApiError::not_found("x")));
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let len = r
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok());
        assert_eq!(len, Some(r.body().len().to_string().as_str()));
        assert_eq!(
            r.headers().get(CONTENT_TYPE),
            Some(&HeaderValue::from_static("application/json"))
        );
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap_or_default();
        assert_eq!(v, json!({"error": "not_found", "message": "x"}));
    }

    #[test]
    fn no_content_has_no_body_headers() {
        let r = into_response(ApiReply {
            status: StatusCode::NO_CONTENT,
            body: None,
            allow: None,
        });
        assert!(r.body().is_empty());
        assert!(r.headers().get(CONTENT_LENGTH).is_none());
        assert!(r.headers().get(CONTENT_TYPE).is_none());
    }

    #[test]
    fn allow_header_on_405() {
        let mut reply = ApiReply::error(&ApiError::method_not_allowed());
        reply.allow = Some("GET, POST".into());
        let r = into_response(reply);
        assert_eq!(
            r.headers().get(ALLOW),
            Some(&HeaderValue::from_static("GET, POST"))
        );
    }
}
