//! The team admins' way through the proxy: requests under `[team_admin] path` are answered by
//! the page and API, with the caller identified by the guard's identity source.

use super::context::{contained, scim_base_url, RequestCtx, RouteKind};
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
        Ok(Err(BodyError::TooLarge)) => {
            let r = AdminResponse::error(413, "too_large", "the request body is too large");
            return write(session, ctx, r).await;
        }
        Ok(Err(BodyError::Unreadable)) | Err(_) => {
            let r = AdminResponse::error(400, "unreadable", "the request body could not be read");
            return write(session, ctx, r).await;
        }
    };
    let req = session.req_header();
    let (method, headers) = (req.method.clone(), req.headers.clone());
    let parts = ctx.parts.clone();
    let tenant_url = scim_base_url(session, &parts);
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
    let response = answered.unwrap_or_else(|_| {
        AdminResponse::error(500, "internal", "the request failed inside the gateway")
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
