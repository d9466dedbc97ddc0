//! Which tenants the brake on mass deprovisioning watches, and with which thresholds: the
//! resolved form of `[deprovision_brake]` and of each `[[tenants]]` entry's `deprovision_brake`.

use crate::store::brake::Thresholds;
use std::collections::HashMap;

/// The brake of one tenant: when it holds, and what a held request is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrakePolicy {
    /// When further deprovisionings are held.
    pub thresholds: Thresholds,
    /// The `Retry-After` of a held request, in seconds.
    pub retry_after_secs: u64,
}

/// The brake's policy of every tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrakeSettings {
    /// The policy of tenants without their own (store tenants included); none: no brake.
    pub default: Option<BrakePolicy>,
    /// The policies of `[[tenants]]` entries that set their own; `None`: no brake for it.
    pub tenants: HashMap<String, Option<BrakePolicy>>,
}

impl BrakeSettings {
    /// The policy of tenant `name`; none when its deprovisionings are not braked.
    pub fn for_tenant(&self, name: &str) -> Option<&BrakePolicy> {
        match self.tenants.get(name) {
            Some(own) => own.as_ref(),
            None => self.default.as_ref(),
        }
    }

    /// Whether some tenant is braked.
    pub fn any(&self) -> bool {
        self.default.is_some() || self.tenants.values().any(Option::is_some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_count: u64) -> BrakePolicy {
        BrakePolicy {
            thresholds: Thresholds {
                max_count,
                max_percent: None,
                min_count: 0,
                window_secs: 60,
            },
            retry_after_secs: 60,
        }
    }

    #[test]
    fn a_tenant_of_its_own_overrides_the_default_even_to_turn_the_brake_off() {
        let settings = BrakeSettings {
            default: Some(policy(5)),
            tenants: HashMap::from([("big".into(), Some(policy(50))), ("off".into(), None)]),
        };
        assert_eq!(settings.for_tenant("other"), Some(&policy(5)));
        assert_eq!(settings.for_tenant("big"), Some(&policy(50)));
        assert_eq!(settings.for_tenant("off"), None);
        assert!(settings.any());
        assert!(!BrakeSettings::default().any());
    }
}
