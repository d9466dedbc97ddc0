//! The admin listener: `/metrics` (Prometheus text), `/healthz` (the process is alive) and
//! `/readyz` (the backend accepts connections and the store is writable). Keep it off the public
//! interface.

use crate::parts::Parts;
use crate::store::StoreError;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::{HttpServer, ServeHttp};
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;
use std::sync::Arc;
use std::time::Duration;

/// The admin HTTP application.
pub struct Admin {
    parts: Arc<ArcSwap<Parts>>,
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let _ = session.read_request_body().await;
        let parts = self.parts.load_full();
        let (status, ctype, body) = match session.req_header().uri.path() {
            "/metrics" => (200, "text/plain; version=0.0.4", metrics(&parts).await),
            "/healthz" => (200, "text/plain", "ok\n".to_string()),
            "/readyz" => readiness(&parts).await,
            _ => (404, "text/plain", "not found\n".to_string()),
        };
        let mut response = Response::new(body.into_bytes());
        *response.status_mut() =
            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let len = response.body().len();
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(ctype),
        );
        headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
        response
    }
}

/// The metrics, with the store's pools as they are now and the brakes as the store keeps them
/// (a release through a command or another gateway shows at the next scrape; when the store
/// does not answer in time the brake gauges keep their last values).
async fn metrics(parts: &Parts) -> String {
    let metrics = &parts.telemetry.metrics;
    for p in parts.store.pools() {
        metrics.store_pool(p.pool, p.max, p.open, p.idle, p.waiting);
    }
    if parts.config.brake.any() {
        if let Ok(Ok(brakes)) = tokio::time::timeout(READINESS_WAIT, parts.store.brakes(None)).await
        {
            for (tenant, state) in &brakes {
                metrics.brake_held(tenant, state.held_since.is_some());
            }
            metrics.brake_held_tenants(
                brakes
                    .iter()
                    .filter(|(_, s)| s.held_since.is_some())
                    .count(),
            );
        }
    }
    metrics.render()
}

/// How long a readiness probe waits for the backend's port and for a store write.
const READINESS_WAIT: Duration = Duration::from_secs(2);

async fn readiness(parts: &Parts) -> (u16, &'static str, String) {
    let backend = parts.upstream.address();
    let reachable = tokio::time::timeout(READINESS_WAIT, tokio::net::TcpStream::connect(backend))
        .await
        .is_ok_and(|r| r.is_ok());
    let store = tokio::time::timeout(READINESS_WAIT, parts.store.check_writable())
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "no answer within {} s",
                READINESS_WAIT.as_secs()
            )))
        });
    let body = serde_json::json!({
        "backend": if reachable { "ok".to_string() } else { format!("cannot connect to {backend}") },
        "store": match &store { Ok(()) => "ok".to_string(), Err(e) => e.to_string() },
    });
    let ready = reachable && store.is_ok();
    (
        if ready { 200 } else { 503 },
        "application/json",
        body.to_string(),
    )
}

/// The admin service listening on `addr`.
pub fn admin_service(parts: Arc<ArcSwap<Parts>>, addr: &str) -> Service<HttpServer<Admin>> {
    let mut service = Service::new(
        "scimgate admin".to_string(),
        HttpServer::new_app(Admin { parts }),
    );
    service.add_tcp(addr);
    service
}
