//! What the gateway reports and remembers across config reloads: metrics, the provisioning log
//! and the authentication-failure limiter.

pub mod limiter;
pub mod metrics;
pub mod provisioning;

use crate::config::Config;
use limiter::AuthLimiter;
use metrics::Metrics;
use provisioning::{LogError, ProvisioningLog};

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
    /// Telemetry for a process started with `config` (log path and limits are read once).
    pub fn new(config: &Config) -> Result<Self, LogError> {
        let s = &config.server;
        Ok(Telemetry {
            metrics: Metrics::new(),
            provisioning: ProvisioningLog::open(s.provisioning_log.as_deref())?,
            limiter: AuthLimiter::new(s.auth_failures.max, s.auth_failures.window),
        })
    }
}
