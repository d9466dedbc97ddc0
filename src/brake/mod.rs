//! The brake on mass deprovisioning: a wrong scoping filter or an unassigned group in the
//! identity provider can deactivate or delete most of an app's users in one cycle. Before a
//! deactivation or a delete of a user reaches the backend, [`Brake::admit`] counts it in the
//! store against the tenant's thresholds ([`settings`]); past them the tenant is held, and every
//! further deactivation and delete is answered `503` with `Retry-After` (the identity provider
//! retries it later) until an operator runs `scimgate brake release`. The count and the hold
//! live in the store ([`crate::store::brake`]), so a fleet sharing one counts together and a
//! restart forgets nothing; every decision reads the store, so a release is seen at once.

pub mod settings;

use crate::auth::Tenant;
use crate::scim::error::ScimError;
use crate::store::brake::{BrakeChange, BrakeOutcome, Verdict};
use crate::store::{Store, StoreError};
use crate::telemetry::Telemetry;
use settings::{BrakePolicy, BrakeSettings};
use std::sync::Arc;

/// A write that takes a user away from the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deprovisioning {
    /// `active` set to false on an active user (PATCH or PUT).
    Deactivate,
    /// `DELETE /Users/{id}`.
    Delete,
}

impl Deprovisioning {
    /// The word logs and errors use.
    pub fn label(self) -> &'static str {
        match self {
            Deprovisioning::Deactivate => "deactivation",
            Deprovisioning::Delete => "delete",
        }
    }
}

/// The brake of every tenant, over the store that counts for it.
pub struct Brake {
    settings: BrakeSettings,
    store: Arc<dyn Store>,
    telemetry: Arc<Telemetry>,
}

impl Brake {
    /// The brake `settings` describe, counting in `store`.
    pub fn new(settings: BrakeSettings, store: Arc<dyn Store>, telemetry: Arc<Telemetry>) -> Self {
        Brake {
            settings,
            store,
            telemetry,
        }
    }

    /// Counts one deprovisioning of user `id` before it is sent to the backend: `Ok` lets it
    /// go; a held tenant's is refused with a retryable `503`. Runs before any backend write;
    /// a store that cannot count refuses the deprovisioning too (it fails closed).
    pub async fn admit(
        &self,
        tenant: &Tenant,
        what: Deprovisioning,
        id: &str,
    ) -> Result<(), ScimError> {
        let Some(policy) = self.settings.for_tenant(&tenant.name) else {
            return Ok(());
        };
        let change = BrakeChange::Admit {
            thresholds: policy.thresholds,
            managed: 0,
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let outcome = self
            .store
            .change_brake(&tenant.name, change, now)
            .await
            .map_err(|e| not_counted(e, what))?;
        let metrics = &self.telemetry.metrics;
        match outcome.verdict {
            Verdict::Admitted | Verdict::Changed => Ok(()),
            Verdict::Held { tripped } => {
                metrics.brake_held(&tenant.name, true);
                metrics.brake_held_request(&tenant.name);
                if tripped {
                    metrics.brake_trip(&tenant.name);
                    alert(tenant, policy, &outcome, what, id);
                }
                Err(held(tenant, policy, &outcome, what))
            }
        }
    }
}

/// The one alert line of a tenant that just became held.
fn alert(
    tenant: &Tenant,
    policy: &BrakePolicy,
    outcome: &BrakeOutcome,
    what: Deprovisioning,
    id: &str,
) {
    let s = &outcome.state;
    tracing::error!(
        target: "scimgate::brake",
        tenant = %tenant.name,
        deprovisioned = s.count,
        threshold = outcome.limit + s.allowance,
        window_secs = policy.thresholds.window_secs,
        refused = what.label(),
        user = id,
        "DEPROVISIONING BRAKE: tenant {:?} is held after {} deactivations and deletes within {} s; \
         further deactivations and deletes are refused (503) until an operator reviews and runs \
         `scimgate brake release --config FILE --tenant {}`",
        tenant.name,
        s.count,
        policy.thresholds.window_secs,
        tenant.name,
    );
}

/// The answer to a deprovisioning of a held tenant.
fn held(
    tenant: &Tenant,
    policy: &BrakePolicy,
    outcome: &BrakeOutcome,
    what: Deprovisioning,
) -> ScimError {
    let s = &outcome.state;
    let since = s
        .held_since
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "now".into());
    ScimError::unavailable(format!(
        "deprovisioning brake: tenant {:?} is held since {since} (threshold: {} deactivations \
         and deletes per {} s); this {} was not sent to the user service. Retry later; an \
         operator reviews with `scimgate brake status --config FILE --tenant {}` and lets them \
         through with `scimgate brake release --config FILE --tenant {}`",
        tenant.name,
        outcome.limit + s.allowance,
        policy.thresholds.window_secs,
        what.label(),
        tenant.name,
        tenant.name,
    ))
    .with_retry_after(policy.retry_after_secs)
}

/// A deprovisioning the store could not count is not sent: `503`, retryable.
fn not_counted(e: StoreError, what: Deprovisioning) -> ScimError {
    ScimError::unavailable(format!(
        "deprovisioning brake: the store could not count this {} ({e}); it was not sent to \
         the user service, retry later",
        what.label()
    ))
    .with_retry_after(1)
}
