//! The guard's way through the proxy: plan from the request head, decide, then let pingora proxy
//! the request, forward the buffered request ourselves, or refuse. A panic while planning or
//! deciding costs only its request, which is refused with `500` (the guard fails closed).

use super::context::{contained, RequestCtx, RouteKind};
use super::http_io::{self, BodyError};
use super::{hop_by_hop, passthrough};
use crate::backend::client::{CallError, Request};
use crate::guard::gate::{Guard, Head, Pending, Plan, Refusal};
use bytes::Bytes;
use pingora::proxy::Session;
use pingora::Result;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

/// Runs the guard; `Ok(false)` lets pingora proxy the request unchanged.
pub async fn check(session: &mut Session, ctx: &mut RequestCtx, guard: Arc<Guard>) -> Result<bool> {
    for name in guard.headers_to_strip(&session.req_header().headers) {
        session.req_header_mut().remove_header(&name);
    }
    let plan = plan_contained(|| {
        let req = session.req_header();
        guard.plan(&Head {
            method: &req.method,
            version: req.version,
            target: req.raw_path(),
            headers: &req.headers,
        })
    });
    let pending = match plan {
        Plan::Untouched | Plan::Allowed => return Ok(false),
        Plan::Refuse(r) => return refuse(session, ctx, r).await,
        Plan::Guarded(p) => p,
    };
    ctx.kind = RouteKind::Guarded;
    let req = session.req_header();
    let head = OwnedHead {
        method: req.method.clone(),
        version: req.version,
        target: req.raw_path().to_vec(),
        headers: req.headers.clone(),
    };
    if !pending.needs_body {
        let decided = decide_contained(guard, pending, head, None, ctx.request_id.clone()).await;
        return match decided {
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
        Ok(Err(BodyError::TooLarge)) => return refuse(session, ctx, Refusal::TooLarge).await,
        Ok(Err(BodyError::Unreadable)) => {
            return refuse(session, ctx, Refusal::MalformedBody).await
        }
        Err(_) => return refuse(session, ctx, Refusal::BodyTimeout(deadline)).await,
    };
    let decided = decide_contained(
        guard,
        pending,
        head.clone(),
        Some(body.clone()),
        ctx.request_id.clone(),
    )
    .await;
    match decided {
        Ok(()) => forward_buffered(session, ctx, &head.borrow(), body).await,
        Err(r) => refuse(session, ctx, r).await,
    }
}

/// A request head the guard's decision owns, so it can run on a task of its own.
#[derive(Clone)]
struct OwnedHead {
    method: http::Method,
    version: http::Version,
    target: Vec<u8>,
    headers: http::HeaderMap,
}

impl OwnedHead {
    fn borrow(&self) -> Head<'_> {
        Head {
            method: &self.method,
            version: self.version,
            target: &self.target,
            headers: &self.headers,
        }
    }
}

/// Plans a request; a panic while planning refuses it with `500` instead of ending the
/// connection's task.
fn plan_contained(plan: impl FnOnce() -> Plan) -> Plan {
    std::panic::catch_unwind(AssertUnwindSafe(plan)).unwrap_or_else(|_| {
        tracing::error!("the guard panicked planning a request; refused it with 500");
        Plan::Refuse(Refusal::Internal(
            "the gateway hit an internal error checking this request; it was logged".into(),
        ))
    })
}

/// Decides a guarded request on a task of its own: a panic refuses it with `500`, never
/// forwards it.
async fn decide_contained(
    guard: Arc<Guard>,
    pending: Pending,
    head: OwnedHead,
    body: Option<Bytes>,
    request_id: String,
) -> Result<(), Refusal> {
    contained_decision(async move {
        guard
            .decide(&pending, &head.borrow(), body.as_deref(), &request_id)
            .await
    })
    .await
}

/// Runs a decision with [`contained`]; a panic becomes a `500` refusal.
async fn contained_decision(
    work: impl std::future::Future<Output = Result<(), Refusal>> + Send + 'static,
) -> Result<(), Refusal> {
    contained(work)
        .await
        .unwrap_or_else(|detail| Err(Refusal::Internal(detail)))
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
    match ctx.app.backend.send(&req).await {
        Ok(mut resp) => {
            ctx.status = resp.status;
            for name in hop_by_hop::response_drops(resp.status, &resp.headers) {
                resp.headers.remove(&name);
            }
            http_io::write_relayed(session, resp.status, &resp.headers, resp.body).await?;
            Ok(true)
        }
        Err(e) => {
            let refusal = Refusal::Backend {
                timed_out: matches!(e, CallError::Timeout(_)),
                detail: e.to_string(),
            };
            refuse(session, ctx, refusal).await
        }
    }
}

async fn refuse(session: &mut Session, ctx: &mut RequestCtx, r: Refusal) -> Result<bool> {
    ctx.status = r.status();
    if let Some(rule) = r.metric_label() {
        ctx.app.telemetry.metrics.guard_block(rule);
    }
    let headers = [("X-Request-Id", ctx.request_id.clone())];
    let body = r.body().to_string();
    http_io::write_response(
        session,
        r.status(),
        "application/json",
        &headers,
        body.into(),
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_planning_refuses_that_request() {
        match plan_contained(|| panic!("bug in the canonicaliser")) {
            Plan::Refuse(r) => assert_eq!(r.status(), 500),
            other => panic!("a panicking plan was not refused: {other:?}"),
        }
        assert!(matches!(plan_contained(|| Plan::Allowed), Plan::Allowed));
    }

    #[tokio::test]
    async fn a_panic_while_deciding_refuses_that_request() {
        let refused = contained_decision(async { panic!("bug in the decision") }).await;
        assert_eq!(refused.map_err(|r| r.status()), Err(500));
        assert_eq!(contained_decision(async { Ok(()) }).await, Ok(()));
    }
}
