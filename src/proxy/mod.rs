//! The pingora glue: one [`ProxyHttp`] that sends each request its way — the SCIM server, the
//! team admins' page and API, the guard, or straight through to the backend — and turns
//! failures into answers.

mod context;
mod guard_route;
pub mod head_deadline;
pub mod head_limits;
mod hop_by_hop;
mod http_io;
mod passthrough;
mod scim_route;
mod team_admin_route;

use crate::parts::Parts;
use crate::scim::error::ScimError;
use crate::scim::message::SCIM_CONTENT_TYPE;
use arc_swap::ArcSwap;
use async_trait::async_trait;
pub use context::RequestCtx;
use context::RouteKind;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType, Result};
use std::sync::Arc;
use std::time::Instant;

/// The gateway: the current [`Parts`], swappable on reload.
pub struct Proxy {
    parts: Arc<ArcSwap<Parts>>,
}

impl Proxy {
    /// A gateway serving `parts`.
    pub fn new(parts: Arc<ArcSwap<Parts>>) -> Self {
        Proxy { parts }
    }
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            parts: self.parts.load_full(),
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
        let parts = ctx.parts.clone();
        if let Some(rest) = scim_subpath(
            session.req_header().uri.path(),
            &parts.config.scim.base_path,
        ) {
            return scim_route::serve(session, ctx, rest.to_string()).await;
        }
        if let Some(admin) = &parts.team_admin {
            let path = session.req_header().uri.path();
            if let Some(rest) = team_admin_route::subpath(path, admin.path()) {
                let rest = rest.to_string();
                return team_admin_route::serve(session, ctx, admin.clone(), rest).await;
            }
        }
        match &parts.guard {
            Some(guard) => guard_route::check(session, ctx, guard.clone()).await,
            None => Ok(false),
        }
    }

    /// Where proxied traffic goes: the configured backend, with the timeouts of proxied traffic.
    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let peer =
            passthrough::peer_for(ctx.parts.proxied_peer(), &ctx.parts.config.proxy, session);
        Ok(Box::new(peer))
    }

    /// Runs just before a proxied request goes upstream: adds the forwarded headers.
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        passthrough::add_forwarded(&ctx.parts.config.proxy, session, upstream_request)
    }

    /// Runs when a proxied response head arrives, before it is sent to the client.
    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        passthrough::adjust_response(&ctx.parts.config.proxy, session, upstream_response);
        Ok(())
    }

    /// Answers a request that could not be proxied: a SCIM error body on SCIM routes, a small
    /// JSON error elsewhere, always with Content-Length so the connection can be reused. When the
    /// response head was already sent, nothing more is written: the connection is reset, so the
    /// client sees an aborted response rather than a complete-looking one.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if let Some(sent) = session.response_written() {
            ctx.status = sent.status.as_u16();
            passthrough::abort_started(session, e, ctx.kind.as_str(), &ctx.request_id);
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        let code = failure_status(e);
        if code > 0 {
            let (ctype, body) = match ctx.kind {
                RouteKind::Scim => {
                    let err = ScimError::new(code, None, format!("the gateway failed: {}", e.etype().as_str()));
                    (SCIM_CONTENT_TYPE, err.to_json().to_string())
                }
                RouteKind::Proxied | RouteKind::Guarded | RouteKind::TeamAdmin => (
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
        let method = req.method.as_str();
        ctx.parts
            .telemetry
            .metrics
            .request(ctx.kind.as_str(), method, status);
        macro_rules! request_event {
            ($level:ident) => {
                tracing::$level!(
                    route = ctx.kind.as_str(),
                    method,
                    path = req.uri.path(),
                    status,
                    tenant = ctx.tenant.as_deref().unwrap_or("-"),
                    request_id = %ctx.request_id,
                    micros = ctx.started.elapsed().as_micros() as u64,
                    error = e.map(|e| e.to_string()),
                    "request"
                )
            };
        }
        // Proxied traffic is the application's own and successful SCIM requests are already in
        // the provisioning log (writes) or are Entra's frequent lookups: both at debug, so they
        // cost nothing by default. Guard decisions and SCIM failures are always logged.
        match ctx.kind {
            RouteKind::Guarded => request_event!(info),
            RouteKind::Scim if status >= 400 || status == 0 => request_event!(info),
            _ => request_event!(debug),
        }
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
}
