//! The team admins' way through the proxy: requests under `[team_admin] path` are answered by
//! the page and API, with the caller identified by the guard's identity source.

use super::context::{contained, RequestCtx, RouteKind};
use super::http_io::{self, BodyError};
use crate::team_admin::{AdminRequest, AdminResponse, TeamAdmin};
use pingora::proxy::Session;
use std::sync::Arc;

/// Largest API request body (a key label).
const MAX_BODY: usize = 4096;

/// The part of `path` after the team-admin `prefix`, when the request is for it.
pub fn subpath<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// Answers a request for the page or the API; `path` follows the configured prefix.
pub async fn serve(
    session: &mut Session,
    ctx: &mut RequestCtx,
    admin: Arc<TeamAdmin>,
    path: String,
) -> pingora::Result<bool> {
    ctx.kind = RouteKind::TeamAdmin;
    let deadline = ctx.parts.config.server.body_timeout;
    let body = match tokio::time::timeout(deadline, http_io::read_body(session, MAX_BODY)).await {
        Ok(Ok(b)) => b,
        Ok(Err(BodyError::TooLarge)) => return write(session, ctx, too_large()).await,
        Ok(Err(BodyError::Unreadable)) | Err(_) => return write(session, ctx, unreadable()).await,
    };
    let req = session.req_header();
    let (method, headers) = (req.method.clone(), req.headers.clone());
    let parts = ctx.parts.clone();
    let tenant_url = tenant_url(session, &parts);
    let request_id = ctx.request_id.clone();
    let answered = contained(async move {
        let caller = match (&parts.guard, TeamAdmin::is_api(&path)) {
            (Some(guard), true) => Some(guard.identify(&headers).await),
            _ => None,
        };
        let req = AdminRequest {
            method: &method,
            path: &path,
            headers: &headers,
            body: &body,
            tenant_url: &tenant_url,
            request_id: &request_id,
        };
        admin.handle(&req, caller).await
    })
    .await;
    let response = answered.unwrap_or_else(|_| AdminResponse {
        status: 500,
        content_type: "application/json",
        headers: Vec::new(),
        body: br#"{"error":"internal","detail":"the request failed inside the gateway"}"#.to_vec(),
    });
    write(session, ctx, response).await
}

async fn write(
    session: &mut Session,
    ctx: &mut RequestCtx,
    r: AdminResponse,
) -> pingora::Result<bool> {
    ctx.status = r.status;
    http_io::write_response(session, r.status, r.content_type, &r.headers, r.body.into()).await?;
    Ok(true)
}

fn too_large() -> AdminResponse {
    AdminResponse {
        status: 413,
        content_type: "application/json",
        headers: Vec::new(),
        body: br#"{"error":"too_large","detail":"the request body is too large"}"#.to_vec(),
    }
}

fn unreadable() -> AdminResponse {
    AdminResponse {
        status: 400,
        content_type: "application/json",
        headers: Vec::new(),
        body: br#"{"error":"unreadable","detail":"the request body could not be read"}"#.to_vec(),
    }
}

/// The Tenant URL identity providers are given: the configured public SCIM URL, else this
/// request's scheme and host with the SCIM base path.
fn tenant_url(session: &Session, parts: &crate::parts::Parts) -> String {
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
    format!(
        "{}://{host}{}",
        if tls { "https" } else { "http" },
        scim.base_path
    )
}
