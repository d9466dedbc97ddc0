//! The SCIM way through the proxy: read the body (capped, with a deadline), look up a bearer key
//! the config does not hold among the store's keys (`503` when the store cannot answer), hand a
//! plain [`ScimRequest`] to the SCIM server, and record metrics and the provisioning event.

use super::context::{contained, now_rfc3339, scim_base_url, RequestCtx, RouteKind};
use super::http_io::{self, BodyError};
use crate::backend::directory::store_error;
use crate::parts::Parts;
use crate::scim::error::ScimError;
use crate::scim::message::{ScimRequest, ScimResponse, SCIM_CONTENT_TYPE};
use crate::service::Operation;
use crate::telemetry::provisioning::ProvisioningEvent;
use pingora::proxy::Session;
use serde_json::Value;

/// Answers a SCIM request; `path` is the part after the base path.
pub async fn serve(
    session: &mut Session,
    ctx: &mut RequestCtx,
    path: String,
) -> pingora::Result<bool> {
    ctx.kind = RouteKind::Scim;
    let response = answer(session, ctx, &path).await;
    ctx.status = response.status;
    http_io::write_response(
        session,
        response.status,
        SCIM_CONTENT_TYPE,
        &response.headers,
        response.body,
    )
    .await?;
    Ok(true)
}

async fn answer(session: &mut Session, ctx: &mut RequestCtx, path: &str) -> ScimResponse {
    let server = &ctx.parts.config.server;
    let (cap, deadline) = (server.max_body_bytes, server.body_timeout);
    let body = match tokio::time::timeout(deadline, http_io::read_body(session, cap)).await {
        Ok(Ok(b)) => b,
        Ok(Err(BodyError::TooLarge)) => {
            return ScimResponse::error(&ScimError::payload_too_large(format!(
                "the request body is larger than {cap} bytes"
            )))
        }
        Ok(Err(BodyError::Unreadable)) => {
            return ScimResponse::error(&ScimError::invalid_syntax(
                "the request body could not be read",
            ))
        }
        Err(_) => {
            return ScimResponse::error(&ScimError::new(
                408,
                None,
                format!("the request body did not arrive within {deadline:?}"),
            ))
        }
    };
    let req = request(session, &ctx.parts, path.to_string(), body);
    let now = now_rfc3339();
    let operation = Operation::route(&req.method, path);
    let parts = ctx.parts.clone();
    let at = now.clone();
    let routed = operation.clone();
    let handled = contained(async move {
        let headers: Vec<&[u8]> = req.authorization.iter().map(Vec::as_slice).collect();
        let keyring = &parts.config.keyring;
        if let Err(e) = parts.store_keys.prepare(keyring, &headers).await {
            return (ScimResponse::error(&store_error(e)), None);
        }
        parts.scim.handle(&req, &routed, &at).await
    })
    .await;
    let (response, principal) = match handled {
        Ok(r) => r,
        Err(failed) => (
            ScimResponse::error(&ScimError::internal(failed.to_string())),
            None,
        ),
    };
    let tenant = principal.as_ref().map(|p| p.tenant.name.clone());
    let metrics = &ctx.parts.telemetry.metrics;
    metrics.scim_operation(
        tenant.as_deref().unwrap_or("-"),
        operation.label(),
        result_of(response.status, principal.is_some()),
    );
    if let (Some(p), true) = (&principal, operation.is_write()) {
        ctx.parts.telemetry.provisioning.record(&event(
            ctx,
            p.key_id.clone(),
            p.tenant.name.clone(),
            &operation,
            &response,
            &now,
        ));
    }
    ctx.tenant = tenant;
    response
}

fn request(session: &Session, parts: &Parts, path: String, body: bytes::Bytes) -> ScimRequest {
    let h = session.req_header();
    let header = |name: http::HeaderName| {
        h.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let base_url = scim_base_url(session, parts);
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
        client: session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip()),
        base_url,
        body,
    }
}

/// The metric result of a response; a 429 to an authenticated client is throttling, not a
/// refused key.
fn result_of(status: u16, authenticated: bool) -> &'static str {
    match status {
        0..=399 => "success",
        401 => "unauthorized",
        429 if !authenticated => "unauthorized",
        429 => "throttled",
        400..=499 => "client_error",
        _ => "server_error",
    }
}

fn event(
    ctx: &RequestCtx,
    key_id: String,
    tenant: String,
    operation: &Operation,
    response: &ScimResponse,
    now: &str,
) -> ProvisioningEvent {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let scim_id = if operation.is_create() {
        body.get("id").and_then(Value::as_str).map(str::to_string)
    } else {
        operation.resource_id().map(str::to_string)
    };
    let failed = response.status >= 400;
    ProvisioningEvent {
        time: now.to_string(),
        request_id: ctx.request_id.clone(),
        tenant,
        key_id,
        operation: operation.label(),
        backend_id: scim_id.clone(),
        scim_id,
        status: response.status,
        result: if failed { "failure" } else { "success" },
        detail: failed.then(|| {
            body.get("detail")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        }),
        latency_ms: ctx.started.elapsed().as_secs_f64() * 1000.0,
        actor: None,
    }
}
