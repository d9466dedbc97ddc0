//! The guard's way through the proxy: plan from the request head, decide, then let pingora proxy
//! the request, forward the buffered request ourselves, or refuse.

use super::{hop_by_hop, passthrough, RequestCtx, RouteKind};
use crate::backend::client::{CallError, Request};
use crate::guard::gate::{Guard, Head, Plan, Refusal};
use crate::http_io::{self, BodyError};
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};
use serde_json::json;

/// Runs the guard; `Ok(false)` lets pingora proxy the request unchanged.
pub async fn check(session: &mut Session, ctx: &mut RequestCtx, guard: &Guard) -> Result<bool> {
    for name in guard.headers_to_strip(&session.req_header().headers) {
        session.req_header_mut().remove_header(&name);
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
        Plan::Refuse(r) => return refuse(session, ctx, r).await,
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
            Err(r) => refuse(session, ctx, r).await,
        };
    }
    let deadline = ctx.app.config.server.body_timeout;
    let body = match tokio::time::timeout(
        deadline,
        http_io::read_body(session, guard.max_body_bytes()),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(BodyError::TooLarge)) => {
            let message = "the body of a protected route is larger than guard.max_body_bytes";
            return refuse(session, ctx, Refusal::new(413, "too_large", message.into())).await;
        }
        Ok(Err(BodyError::Unreadable)) => {
            return Err(Error::explain(ErrorType::ReadError, "guarded request body"))
        }
        Err(_) => {
            let message = format!("the request body did not arrive within {deadline:?}");
            return refuse(session, ctx, Refusal::new(408, "timeout", message)).await;
        }
    };
    match guard
        .decide(&pending, &head, Some(&body), &ctx.request_id)
        .await
    {
        Ok(()) => forward_buffered(session, ctx, &head, body).await,
        Err(r) => refuse(session, ctx, r).await,
    }
}

/// Forwards a guarded request whose body the gateway read, exactly as checked, and relays the
/// backend's answer.
async fn forward_buffered(
    session: &mut Session,
    ctx: &mut RequestCtx,
    head: &Head<'_>,
    body: bytes::Bytes,
) -> Result<bool> {
    let nominated = hop_by_hop::request_drops(head.headers);
    let mut headers: Vec<_> = head
        .headers
        .iter()
        .filter(|(n, _)| {
            http_io::end_to_end(n) && *n != http::header::EXPECT && !nominated.contains(n)
        })
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    if let Some(forwarding) = &ctx.app.config.proxy.forwarded {
        for (name, value) in passthrough::forwarded_changes(forwarding, session, head.headers, None)
        {
            headers.retain(|(n, _)| *n != name);
            headers.extend(value.map(|v| (name, v)));
        }
    }
    let req = Request {
        method: head.method.clone(),
        target: String::from_utf8_lossy(head.target).into_owned(),
        headers,
        body: Some(body),
    };
    match ctx.app.directory.backend().client().send(&req).await {
        Ok(mut resp) => {
            ctx.status = resp.status;
            for name in hop_by_hop::response_drops(resp.status, &resp.headers) {
                resp.headers.remove(&name);
            }
            http_io::write_relayed(session, resp.status, &resp.headers, resp.body).await?;
            Ok(true)
        }
        Err(e) => {
            let status = if matches!(e, CallError::Timeout(_)) {
                504
            } else {
                502
            };
            refuse(session, ctx, Refusal::new(status, "gateway", e.to_string())).await
        }
    }
}

async fn refuse(session: &mut Session, ctx: &mut RequestCtx, r: Refusal) -> Result<bool> {
    ctx.status = r.status;
    if let Some(rule) = r.body.get("rule").and_then(|v| v.as_str()) {
        ctx.app.telemetry.metrics.guard_block(rule);
    }
    let headers = [("X-Request-Id", ctx.request_id.clone())];
    let body = json!(r.body).to_string();
    http_io::write_response(session, r.status, "application/json", &headers, body.into()).await?;
    Ok(true)
}
