//! Validation of `[deprovision_brake]` and of each tenant's `deprovision_brake`: the brake is
//! on for every tenant when the section is present (unless `enabled = false`), and for a tenant
//! whose entry has its own table; a key a tenant leaves out is the section's, then the default.

use super::validator::Validator;
use crate::brake::settings::{BrakePolicy, BrakeSettings};
use crate::config::file::{BrakeFile, TenantFile};
use crate::store::brake::Thresholds;
use serde_spanned::Spanned;
use std::collections::HashMap;

/// Deprovisionings per window for a tenant of any size (a large reorganisation is released by
/// hand).
pub const DEFAULT_MAX_COUNT: u64 = 100;
/// Share of a tenant's managed users per window: far above normal leavers (about 1-2 % a month).
pub const DEFAULT_MAX_PERCENT: u64 = 10;
/// A small tenant may lose this many per window whatever its share.
pub const DEFAULT_MIN_COUNT: u64 = 10;
/// One hour: longer than one Entra incremental cycle (40 min), so a cycle's burst is one window.
pub const DEFAULT_WINDOW_SECS: u64 = 3600;
/// Ten minutes: an Entra or Okta retry comes at its next cycle anyway; earlier retries would only
/// be held again.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 600;

impl Validator<'_> {
    pub(super) fn brake(
        &mut self,
        section: Option<&BrakeFile>,
        tenants: &[TenantFile],
    ) -> BrakeSettings {
        let none = BrakeFile::default();
        let base = section.unwrap_or(&none);
        let default = match section {
            Some(s) => self.policy(s, &none, "deprovision_brake"),
            None => None,
        };
        let mut own = HashMap::new();
        for t in tenants {
            if let Some(b) = &t.deprovision_brake {
                let name = t.name.get_ref();
                let at = format!("tenants[{name:?}].deprovision_brake");
                own.insert(name.clone(), self.policy(b, base, &at));
            }
        }
        BrakeSettings {
            default,
            tenants: own,
        }
    }

    /// The policy of `file` over `base`; none when disabled.
    fn policy(&mut self, file: &BrakeFile, base: &BrakeFile, at: &str) -> Option<BrakePolicy> {
        let pick = |own: &Option<Spanned<u64>>, inherited: &Option<Spanned<u64>>| {
            own.as_ref().or(inherited.as_ref()).cloned()
        };
        let max_count = pick(&file.max_count, &base.max_count);
        let max_percent = pick(&file.max_percent, &base.max_percent);
        let window = pick(&file.window_secs, &base.window_secs);
        let retry = pick(&file.retry_after_secs, &base.retry_after_secs);
        self.bounded(max_count.as_ref(), 1, u64::from(u32::MAX), at, "max_count");
        self.bounded(max_percent.as_ref(), 0, 100, at, "max_percent");
        self.bounded(window.as_ref(), 60, 30 * 86_400, at, "window_secs");
        self.bounded(retry.as_ref(), 1, 86_400, at, "retry_after_secs");
        let value = |v: Option<Spanned<u64>>, default: u64| v.map_or(default, |v| *v.get_ref());
        let min_count = pick(&file.min_count, &base.min_count);
        let enabled = file.enabled.or(base.enabled).unwrap_or(true);
        let percent = value(max_percent, DEFAULT_MAX_PERCENT);
        enabled.then(|| BrakePolicy {
            thresholds: Thresholds {
                max_count: value(max_count, DEFAULT_MAX_COUNT),
                max_percent: (percent > 0).then_some(percent),
                min_count: value(min_count, DEFAULT_MIN_COUNT),
                window_secs: value(window, DEFAULT_WINDOW_SECS),
            },
            retry_after_secs: value(retry, DEFAULT_RETRY_AFTER_SECS),
        })
    }

    fn bounded(&mut self, v: Option<&Spanned<u64>>, min: u64, max: u64, at: &str, key: &str) {
        if let Some(v) = v.filter(|v| !(min..=max).contains(v.get_ref())) {
            self.at(
                v,
                format!(
                    "{at}.{key} must be between {min} and {max}, not {}",
                    v.get_ref()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::from_str;
    use std::path::Path;

    const DEMO: &str = include_str!("../../../conf/demo.toml");

    /// The demo's config without its brake section, with `extra` appended.
    fn with(extra: &str) -> Result<crate::config::Config, crate::config::ConfigError> {
        let cut = DEMO.find("# ---- the brake").unwrap();
        from_str(&format!("{}{extra}", &DEMO[..cut]), Path::new("t.toml"))
    }

    #[test]
    fn the_demo_brakes_every_tenant_beyond_any_conformance_run() {
        let c = from_str(DEMO, Path::new("conf/demo.toml")).unwrap();
        let acme = c.brake.for_tenant("acme").unwrap();
        assert_eq!(acme.thresholds.max_count, 1_000_000);
        assert_eq!(acme.thresholds.max_percent, None);
        assert_eq!(acme.thresholds.limit(0), 1_000_000);
    }

    #[test]
    fn without_the_section_no_tenant_is_braked_unless_its_entry_asks() {
        let c = with("[[tenants]]\nname = \"a\"\n[[tenants]]\nname = \"b\"\n[tenants.deprovision_brake]\nmax_count = 7\n").unwrap();
        assert_eq!(c.brake.for_tenant("a"), None);
        let b = c.brake.for_tenant("b").unwrap();
        assert_eq!(b.thresholds.max_count, 7);
        assert_eq!(b.thresholds.max_percent, Some(10), "the default share");
        assert_eq!(b.thresholds.window_secs, 3600);
    }

    #[test]
    fn a_tenant_inherits_the_section_and_may_turn_it_off() {
        let c = with(
            "[deprovision_brake]\nmax_count = 20\nmax_percent = 0\nwindow_secs = 600\n\
             [[tenants]]\nname = \"big\"\ndeprovision_brake = { max_count = 500 }\n\
             [[tenants]]\nname = \"off\"\ndeprovision_brake = { enabled = false }\n",
        )
        .unwrap();
        let store_tenant = c.brake.for_tenant("anyone").unwrap();
        assert_eq!(store_tenant.thresholds.max_count, 20);
        assert_eq!(
            store_tenant.thresholds.max_percent, None,
            "0 turns the share off"
        );
        let big = c.brake.for_tenant("big").unwrap();
        assert_eq!(
            (big.thresholds.max_count, big.thresholds.window_secs),
            (500, 600)
        );
        assert_eq!(c.brake.for_tenant("off"), None);
    }

    #[test]
    fn values_out_of_range_and_unknown_keys_are_errors_with_positions() {
        let e = with("[deprovision_brake]\nmax_count = 0\nmax_percent = 150\nwindow_secs = 5\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("deprovision_brake.max_count must be between 1"),
            "{e}"
        );
        assert!(e.contains("max_percent must be between 0 and 100"), "{e}");
        assert!(e.contains("window_secs must be between 60"), "{e}");
        let e = with("[deprovision_brake]\nmax_deletes = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `max_deletes`"), "{e}");
    }
}
