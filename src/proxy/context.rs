//! What the proxy keeps per request ([`RequestCtx`], [`RouteKind`]) and the helpers every way
//! through it shares.

use crate::parts::Parts;
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
    /// Answered by the team admins' SCIM page or API.
    TeamAdmin,
}

impl RouteKind {
    /// Label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Scim => "scim",
            RouteKind::Guarded => "guarded",
            RouteKind::Proxied => "proxied",
            RouteKind::TeamAdmin => "team_admin",
        }
    }
}

/// Per-request state.
pub struct RequestCtx {
    /// The gateway's parts for the config current when the request began.
    pub(super) parts: Arc<Parts>,
    /// Which way the request went.
    pub(super) kind: RouteKind,
    /// When it began.
    pub(super) started: Instant,
    /// The SCIM tenant it acted for, if any.
    pub(super) tenant: Option<String>,
    /// The status answered.
    pub(super) status: u16,
    /// Its id in logs and the provisioning log.
    pub(super) request_id: String,
}

/// A request handler that panicked; the message is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the gateway hit an internal error handling this request; it was logged")]
pub struct HandlerFailed;

/// Runs `work` on a task of its own, so that a bug that panics while handling one request
/// becomes an error answer for that request instead of tearing down its connection task.
pub async fn contained<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> std::result::Result<T, HandlerFailed> {
    tokio::spawn(work).await.map_err(|e| {
        tracing::error!(error = %e, "request handler failed; answered 500");
        HandlerFailed
    })
}

/// The current UTC time, RFC 3339 to the second.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The SCIM endpoint's URL as clients reach it (the Tenant URL, and the base of `meta.location`):
/// `[scim] public_url`, else this request's scheme and host with the SCIM base path.
pub fn scim_base_url(session: &pingora::proxy::Session, parts: &crate::parts::Parts) -> String {
    let scim = &parts.config.scim;
    if let Some(u) = &scim.public_url {
        return u.clone();
    }
    let req = session.req_header();
    let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
    let host = req
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".into());
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{host}{}", scim.base_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn panics_are_contained_to_their_request() {
        let failed = contained(async { panic!("bug in a handler") }).await;
        assert_eq!(failed, Err(HandlerFailed));
        assert_eq!(
            contained(async { 7 }).await,
            Ok(7),
            "the gateway still serves"
        );
    }

    #[test]
    fn now_is_rfc3339_seconds() {
        let n = now_rfc3339();
        assert!(n.ends_with('Z') && n.len() == 20, "{n}");
    }
}
