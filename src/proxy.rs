//! The pingora glue: one [`ProxyHttp`] that sends each request one of three ways — the SCIM
//! server, the guard, or straight through to the backend — and turns failures into answers.

use crate::app::App;
use crate::backend::client::{CallError, Request};
use crate::guard::gate::{Guard, Head, Plan, Refusal};
use crate::http_io::{self, BodyError};
use crate::scim::error::ScimError;
use crate::scim::message::{ScimRequest, ScimResponse, SCIM_CONTENT_TYPE};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType, Result};
use std::sync::Arc;
use std::time::Instant;

/// Which way a request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// Answered by the SCIM server.
    Scim,
    /// Matched a guarded self-service route.
    Guarded,
    /// Passed to the backend unchanged.
    Proxied,
}

impl RouteKind {
    /// Label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Scim => "scim",
            RouteKind::Guarded => "guarded",
            RouteKind::Proxied => "proxied",
        }
    }
}

/// Per-request state.
pub struct RequestCtx {
    app: Arc<App>,
    kind: RouteKind,
    started: Instant,
    tenant: Option<String>,
    status: u16,
    request_id: String,
}

/// The gateway: the current [`App`], swappable on reload.
pub struct Gateway {
    app: Arc<ArcSwap<App>>,
}

impl Gateway {
    /// A gateway serving `app`.
    pub fn new(app: Arc<ArcSwap<App>>) -> Self {
        Gateway { app }
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            app: self.app.load_full(),
            kind: RouteKind::Proxied,
            started: Instant::now(),
            tenant: None,
            status: 0,
            request_id: format!("{:016x}", rand::random::<u64>()),
        }
    }

    /// Runs first for every request: SCIM requests are answered here, guarded self-service
    /// requests are decided here (`Ok(true)` when answered or forwarded by the gateway itself);
    /// everything else continues to `upstream_peer` (`Ok(false)`).
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let app = ctx.app.clone();
        if let Some(rest) =
            scim_subpath(session.req_header().uri.path(), &app.config.scim.base_path)
        {
            ctx.kind = RouteKind::Scim;
            let rest = rest.to_string();
            let response = self.serve_scim(session, ctx, rest).await;
            ctx.status = response.status;
            http_io::write_response(
                session,
                response.status,
                SCIM_CONTENT_TYPE,
                &response.headers,
                response.body,
            )
            .await?;
            return Ok(true);
        }
        match &app.guard {
            Some(guard) => self.guard(session, ctx, guard).await,
            None => Ok(false),
        }
    }

    /// Where proxied traffic goes: the configured backend.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        Ok(Box::new(ctx.app.peer.clone()))
    }

    /// Answers a request that could not be proxied: a SCIM error body on SCIM routes, a small
    /// JSON error elsewhere, always with Content-Length so the connection can be reused.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = failure_status(e);
        if code > 0 {
            let (ctype, body) = match ctx.kind {
                RouteKind::Scim => {
                    let err = ScimError::new(code, None, format!("the gateway failed: {}", e.etype().as_str()));
                    (SCIM_CONTENT_TYPE, err.to_json().to_string())
                }
                RouteKind::Proxied | RouteKind::Guarded => (
                    "application/json",
                    serde_json::json!({"error": "gateway", "status": code, "message": upstream_message(code)}).to_string(),
                ),
            };
            if let Err(w) = http_io::write_response(session, code, ctype, &[], body.into()).await {
                tracing::debug!(error = %w, "could not write the error response");
            }
        }
        ctx.status = code;
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// One log event per request.
    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .unwrap_or(ctx.status);
        let req = session.req_header();
        tracing::info!(
            route = ctx.kind.as_str(),
            method = %req.method,
            path = req.uri.path(),
            status,
            tenant = ctx.tenant.as_deref().unwrap_or("-"),
            micros = ctx.started.elapsed().as_micros() as u64,
            error = e.map(|e| e.to_string()),
            "request"
        );
    }
}

impl Gateway {
    /// The guard's way through: plan from the head, decide, then forward or refuse.
    async fn guard(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        guard: &Guard,
    ) -> Result<bool> {
        if let Some(name) = guard.header_to_strip() {
            session.req_header_mut().remove_header(name);
        }
        let plan = {
            let req = session.req_header();
            guard.plan(&Head {
                method: &req.method,
                version: req.version,
                target: req.raw_path(),
                headers: &req.headers,
            })
        };
        let pending = match plan {
            Plan::Untouched | Plan::Allowed => return Ok(false),
            Plan::Refuse(r) => return self.refuse(session, ctx, r).await,
            Plan::Guarded(p) => p,
        };
        ctx.kind = RouteKind::Guarded;
        let req = session.req_header();
        let (method, version, target, headers) = (
            req.method.clone(),
            req.version,
            req.raw_path().to_vec(),
            req.headers.clone(),
        );
        let head = Head {
            method: &method,
            version,
            target: &target,
            headers: &headers,
        };
        if !pending.needs_body {
            return match guard.decide(&pending, &head, None, &ctx.request_id).await {
                Ok(()) => Ok(false),
                Err(r) => self.refuse(session, ctx, r).await,
            };
        }
        let body = match http_io::read_body(session, guard.max_body_bytes()).await {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                let r = Refusal {
                    status: 413,
                    body: serde_json::json!({"error": "too_large", "message": "the body of a protected route is larger than guard.max_body_bytes"}),
                };
                return self.refuse(session, ctx, r).await;
            }
            Err(BodyError::Unreadable) => {
                return Err(Error::explain(ErrorType::ReadError, "guarded request body"))
            }
        };
        match guard
            .decide(&pending, &head, Some(&body), &ctx.request_id)
            .await
        {
            Ok(()) => self.forward_buffered(session, ctx, &head, body).await,
            Err(r) => self.refuse(session, ctx, r).await,
        }
    }

    /// Forwards a guarded request whose body the gateway read, exactly as checked, and relays
    /// the backend's answer.
    async fn forward_buffered(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        head: &Head<'_>,
        body: bytes::Bytes,
    ) -> Result<bool> {
        let headers = head
            .headers
            .iter()
            .filter(|(n, _)| http_io::end_to_end(n) && *n != http::header::EXPECT)
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        let req = Request {
            method: head.method.clone(),
            target: String::from_utf8_lossy(head.target).into_owned(),
            headers,
            body: Some(body),
        };
        match ctx.app.directory.backend().client().send(&req).await {
            Ok(resp) => {
                ctx.status = resp.status;
                http_io::write_relayed(session, resp.status, &resp.headers, resp.body).await?;
                Ok(true)
            }
            Err(e) => {
                let status = if matches!(e, CallError::Timeout(_)) {
                    504
                } else {
                    502
                };
                let r = Refusal {
                    status,
                    body: serde_json::json!({"error": "gateway", "message": e.to_string()}),
                };
                self.refuse(session, ctx, r).await
            }
        }
    }

    async fn refuse(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        r: Refusal,
    ) -> Result<bool> {
        ctx.status = r.status;
        let headers = [("X-Request-Id", ctx.request_id.clone())];
        http_io::write_response(
            session,
            r.status,
            "application/json",
            &headers,
            r.body.to_string().into(),
        )
        .await?;
        Ok(true)
    }

    async fn serve_scim(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        path: String,
    ) -> ScimResponse {
        let cap = ctx.app.config.server.max_body_bytes;
        let body = match http_io::read_body(session, cap).await {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                return ScimResponse::error(&ScimError::payload_too_large(format!(
                    "the request body is larger than {cap} bytes"
                )))
            }
            Err(BodyError::Unreadable) => {
                return ScimResponse::error(&ScimError::invalid_syntax(
                    "the request body could not be read",
                ))
            }
        };
        let req = scim_request(session, &ctx.app, path, body);
        let now = now_rfc3339();
        let (response, principal) = ctx.app.scim.handle(&req, &now).await;
        ctx.tenant = principal.map(|p| p.tenant.name.clone());
        response
    }
}

/// The part of `path` after the SCIM base path, or `None` when the request is not for SCIM.
/// Repeated slashes after the base are tolerated (`/scim/v2//Users` from a Tenant URL with a
/// trailing slash).
pub fn scim_subpath<'a>(path: &'a str, base: &str) -> Option<&'a str> {
    let rest = path
        .get(..base.len())
        .filter(|p| p.eq_ignore_ascii_case(base))
        .map(|_| &path[base.len()..])?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn scim_request(session: &Session, app: &App, path: String, body: bytes::Bytes) -> ScimRequest {
    let h = session.req_header();
    let header = |name: http::HeaderName| {
        h.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let base_url = match &app.config.scim.public_url {
        Some(u) => u.clone(),
        None => {
            let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
            let host = header(http::header::HOST)
                .or_else(|| h.uri.authority().map(|a| a.to_string()))
                .unwrap_or_else(|| "localhost".into());
            format!(
                "{}://{host}{}",
                if tls { "https" } else { "http" },
                app.config.scim.base_path
            )
        }
    };
    ScimRequest {
        method: h.method.clone(),
        path,
        query: h.uri.query().unwrap_or_default().to_string(),
        authorization: h
            .headers
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .map(|v| v.as_bytes().to_vec())
            .collect(),
        content_type: header(http::header::CONTENT_TYPE),
        if_match: header(http::header::IF_MATCH),
        base_url,
        body,
    }
}

/// The current UTC time, RFC 3339 to the second.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn failure_status(e: &Error) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
            if e.esource() == &ErrorSource::Upstream =>
        {
            504
        }
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

fn upstream_message(code: u16) -> &'static str {
    match code {
        502 => "the user service is unreachable or sent an invalid answer",
        504 => "the user service did not answer in time",
        400 => "the request could not be read",
        _ => "the gateway failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scim_subpath_matches_base_only() {
        assert_eq!(scim_subpath("/scim/v2/Users", "/scim/v2"), Some("/Users"));
        assert_eq!(scim_subpath("/scim/v2", "/scim/v2"), Some(""));
        assert_eq!(scim_subpath("/SCIM/V2//Users", "/scim/v2"), Some("//Users"));
        assert_eq!(scim_subpath("/scim/v20/Users", "/scim/v2"), None);
        assert_eq!(scim_subpath("/api/me", "/scim/v2"), None);
    }

    #[test]
    fn now_is_rfc3339_seconds() {
        let n = now_rfc3339();
        assert!(n.ends_with('Z') && n.len() == 20, "{n}");
    }
}
