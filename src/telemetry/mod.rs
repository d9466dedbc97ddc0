//! What the gateway reports and remembers across config reloads: metrics, the provisioning log
//! and the authentication-failure limiter.

pub mod limiter;
pub mod metrics;
pub mod provisioning;
pub mod timed_store;

use limiter::AuthLimiter;
use metrics::Metrics;
use provisioning::{LogError, ProvisioningLog};
use std::path::Path;
use std::time::Duration;

/// Process-wide state shared by every version of the config.
pub struct Telemetry {
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// SCIM write events.
    pub provisioning: ProvisioningLog,
    /// Failed-authentication limiter.
    pub limiter: AuthLimiter,
}

impl Telemetry {
    /// Telemetry for a process: the provisioning log at `provisioning_log` (none when `None`) and
    /// a limiter allowing `max_failures` failed authentications per `window` and client address.
    pub fn new(
        provisioning_log: Option<&Path>,
        max_failures: u32,
        window: Duration,
    ) -> Result<Self, LogError> {
        Ok(Telemetry {
            metrics: Metrics::new(),
            provisioning: ProvisioningLog::open(provisioning_log)?,
            limiter: AuthLimiter::new(max_failures, window),
        })
    }
}
