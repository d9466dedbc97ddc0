//! Prometheus metrics: requests by route kind, method and status; SCIM operations by tenant,
//! kind and result; backend call latency and errors; guard blocks; authentication failures; and
//! per-key use (which key, never its secret, and when it was last used); the brake on mass
//! deprovisioning (held requests, trips, held tenants).

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::time::Duration;

/// Every metric the gateway exports, in one registry.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    scim_operations: IntCounterVec,
    backend_seconds: HistogramVec,
    backend_errors: IntCounterVec,
    store_seconds: HistogramVec,
    store_errors: IntCounterVec,
    store_pool: IntGaugeVec,
    guard_blocks: IntCounterVec,
    auth_failures: IntCounterVec,
    key_uses: IntCounterVec,
    key_last_used: IntGaugeVec,
    reloads: IntCounterVec,
    backend_throttled: IntCounterVec,
    throttled_answers: IntCounterVec,
    version_conflicts: IntCounterVec,
    team_admin_actions: IntCounterVec,
    brake_held_requests: IntCounterVec,
    brake_trips: IntCounterVec,
    brake_held: IntGaugeVec,
    brake_held_tenants: IntGaugeVec,
}

// The metric names and labels are fixed and valid, and each is registered once: a failure here
// is a bug the unit tests catch, not a condition to handle at run time.
#[allow(clippy::panic)]
fn registered<M: Collector + Clone + 'static>(
    registry: &Registry,
    name: &str,
    metric: prometheus::Result<M>,
) -> M {
    let m = metric.unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(m.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    m
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(
        registry,
        name,
        IntCounterVec::new(Opts::new(name, help), labels),
    )
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    registered(
        registry,
        name,
        IntGaugeVec::new(Opts::new(name, help), labels),
    )
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let registry = Registry::new();
        let backend_seconds = registered(
            &registry,
            "scimgate_backend_call_seconds",
            HistogramVec::new(
                HistogramOpts::new(
                    "scimgate_backend_call_seconds",
                    "Latency of calls to the backend user API",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ]),
                &["operation"],
            ),
        );
        let store_seconds = registered(
            &registry,
            "scimgate_store_call_seconds",
            HistogramVec::new(
            HistogramOpts::new(
                "scimgate_store_call_seconds",
                "Latency of calls to the gateway's store, by operation (serialise: waiting for a hold)",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0,
            ]),
            &["operation"],
        ),
        );
        let store_pool = registered(
            &registry,
            "scimgate_store_pool_connections",
            IntGaugeVec::new(
                Opts::new(
                    "scimgate_store_pool_connections",
                    "Connections of the store engine's pools (PostgreSQL): max, open, idle, and \
                 requests waiting for one",
                ),
                &["pool", "state"],
            ),
        );
        let key_last_used = registered(
            &registry,
            "scimgate_api_key_last_used_timestamp_seconds",
            IntGaugeVec::new(
                Opts::new(
                    "scimgate_api_key_last_used_timestamp_seconds",
                    "When each SCIM API key was last used (Unix time)",
                ),
                &["tenant", "key"],
            ),
        );
        Metrics {
            requests: counter(
                &registry,
                "scimgate_requests_total",
                "Requests by route kind, method and status",
                &["route", "method", "status"],
            ),
            scim_operations: counter(
                &registry,
                "scimgate_scim_operations_total",
                "SCIM operations by tenant, kind and result",
                &["tenant", "operation", "result"],
            ),
            backend_errors: counter(
                &registry,
                "scimgate_backend_errors_total",
                "Failed backend calls by operation and kind",
                &["operation", "kind"],
            ),
            store_errors: counter(
                &registry,
                "scimgate_store_errors_total",
                "Failed store calls by operation and kind (unavailable, busy, corrupt)",
                &["operation", "kind"],
            ),
            team_admin_actions: counter(
                &registry,
                "scimgate_team_admin_actions_total",
                "Team-admin SCIM actions (enable, disable, key_create, key_revoke) by result",
                &["action", "result"],
            ),
            guard_blocks: counter(
                &registry,
                "scimgate_guard_blocks_total",
                "Self-service requests blocked by the guard, by rule",
                &["rule"],
            ),
            auth_failures: counter(
                &registry,
                "scimgate_auth_failures_total",
                "Failed SCIM authentications by reason",
                &["reason"],
            ),
            key_uses: counter(
                &registry,
                "scimgate_api_key_uses_total",
                "Authenticated SCIM requests by tenant and key id",
                &["tenant", "key"],
            ),
            reloads: counter(
                &registry,
                "scimgate_config_reloads_total",
                "Config reloads by result",
                &["result"],
            ),
            backend_throttled: counter(
                &registry,
                "scimgate_backend_throttled_total",
                "Backend answers asking the gateway to slow down (429, or 503 with Retry-After), by operation",
                &["operation"],
            ),
            throttled_answers: counter(
                &registry,
                "scimgate_throttled_answers_total",
                "SCIM requests answered 429 because of throttling, by cause (backend, gateway_rate)",
                &["cause"],
            ),
            version_conflicts: counter(
                &registry,
                "scimgate_backend_version_conflicts_total",
                "Version-checked backend writes refused as stale (412) and retried from a fresh read",
                &[],
            ),
            brake_held_requests: counter(
                &registry,
                "scimgate_brake_held_requests_total",
                "Deactivations and deletes refused (503) because the tenant's deprovisioning brake holds",
                &["tenant"],
            ),
            brake_trips: counter(
                &registry,
                "scimgate_brake_trips_total",
                "Times a tenant's deprovisioning brake tripped through this gateway",
                &["tenant"],
            ),
            brake_held: gauge(
                &registry,
                "scimgate_brake_held",
                "1 while the tenant's deprovisioning brake holds, 0 once released (read from the store at each scrape)",
                &["tenant"],
            ),
            brake_held_tenants: gauge(
                &registry,
                "scimgate_brake_held_tenants",
                "Tenants whose deprovisioning brake holds (read from the store at each scrape)",
                &[],
            ),
            backend_seconds,
            store_seconds,
            store_pool,
            key_last_used,
            registry,
        }
    }

    /// Counts one finished request.
    pub fn request(&self, route: &str, method: &str, status: u16) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
    }

    /// Counts one SCIM operation.
    pub fn scim_operation(&self, tenant: &str, operation: &str, result: &str) {
        self.scim_operations
            .with_label_values(&[tenant, operation, result])
            .inc();
    }

    /// Records one backend call; `error` names the failure kind, if it failed.
    pub fn backend_call(&self, operation: &str, took: Duration, error: Option<&str>) {
        self.backend_seconds
            .with_label_values(&[operation])
            .observe(took.as_secs_f64());
        if let Some(kind) = error {
            self.backend_errors
                .with_label_values(&[operation, kind])
                .inc();
        }
    }

    /// Records one store call; `error` names the failure kind, if it failed.
    pub fn store_call(&self, operation: &str, took: Duration, error: Option<&str>) {
        self.store_seconds
            .with_label_values(&[operation])
            .observe(took.as_secs_f64());
        if let Some(kind) = error {
            self.store_errors
                .with_label_values(&[operation, kind])
                .inc();
        }
    }

    /// Sets the gauges of one store connection pool as it is now.
    pub fn store_pool(&self, pool: &str, max: usize, open: usize, idle: usize, waiting: usize) {
        for (state, n) in [
            ("max", max),
            ("open", open),
            ("idle", idle),
            ("waiting", waiting),
        ] {
            self.store_pool
                .with_label_values(&[pool, state])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Counts one throttled backend answer.
    pub fn backend_throttled(&self, operation: &str) {
        self.backend_throttled.with_label_values(&[operation]).inc();
    }

    /// Counts one SCIM request answered 429 because of throttling.
    pub fn throttled_answer(&self, cause: &str) {
        self.throttled_answers.with_label_values(&[cause]).inc();
    }

    /// Counts one stale version-checked write.
    pub fn version_conflict(&self) {
        self.version_conflicts.with_label_values::<&str>(&[]).inc();
    }

    /// Counts one guard block.
    pub fn guard_block(&self, rule: &str) {
        self.guard_blocks.with_label_values(&[rule]).inc();
    }

    /// Counts one team-admin action (`enable`, `disable`, `key_create`, `key_revoke`).
    pub fn team_admin_action(&self, action: &str, result: &str) {
        self.team_admin_actions
            .with_label_values(&[action, result])
            .inc();
    }

    /// Counts one failed authentication.
    pub fn auth_failure(&self, reason: &str) {
        self.auth_failures.with_label_values(&[reason]).inc();
    }

    /// Records a use of a key.
    pub fn key_used(&self, tenant: &str, key: &str, unix_now: i64) {
        self.key_uses.with_label_values(&[tenant, key]).inc();
        self.key_last_used
            .with_label_values(&[tenant, key])
            .set(unix_now);
    }

    /// Counts one deprovisioning refused by a held brake.
    pub fn brake_held_request(&self, tenant: &str) {
        self.brake_held_requests.with_label_values(&[tenant]).inc();
    }

    /// Counts one trip of a tenant's brake.
    pub fn brake_trip(&self, tenant: &str) {
        self.brake_trips.with_label_values(&[tenant]).inc();
    }

    /// Sets whether a tenant's brake holds.
    pub fn brake_held(&self, tenant: &str, held: bool) {
        self.brake_held
            .with_label_values(&[tenant])
            .set(i64::from(held));
    }

    /// Sets how many tenants' brakes hold.
    pub fn brake_held_tenants(&self, n: usize) {
        self.brake_held_tenants
            .with_label_values::<&str>(&[])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Counts one config reload attempt.
    pub fn reload(&self, ok: bool) {
        self.reloads
            .with_label_values(&[if ok { "ok" } else { "rejected" }])
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels() {
        let m = Metrics::new();
        m.request("scim", "GET", 200);
        m.request("scim", "GET", 200);
        m.guard_block("leave-team");
        m.backend_call("get user", Duration::from_millis(3), Some("timeout"));
        m.key_used("acme", "k1", 1_700_000_000);
        let text = m.render();
        assert!(
            text.contains(r#"scimgate_requests_total{method="GET",route="scim",status="200"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"scimgate_guard_blocks_total{rule="leave-team"} 1"#));
        assert!(text
            .contains(r#"scimgate_backend_errors_total{kind="timeout",operation="get user"} 1"#));
        assert!(text.contains(
            r#"scimgate_api_key_last_used_timestamp_seconds{key="k1",tenant="acme"} 1700000000"#
        ));
        assert!(text.contains("scimgate_backend_call_seconds_bucket"));
        m.store_call("get", Duration::from_micros(300), Some("unavailable"));
        let text = m.render();
        assert!(
            text.contains(r#"scimgate_store_errors_total{kind="unavailable",operation="get"} 1"#)
        );
        assert!(text.contains(r#"scimgate_store_call_seconds_count{operation="get"} 1"#));
        m.store_pool("statements", 8, 3, 1, 0);
        let text = m.render();
        assert!(
            text.contains(r#"scimgate_store_pool_connections{pool="statements",state="open"} 3"#)
        );
    }
}
