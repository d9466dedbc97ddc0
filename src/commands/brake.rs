//! `scimgate brake status`, `scimgate brake release` and `scimgate brake hold`: the operator's
//! view and control of the brake on mass deprovisioning. They work on the store the config
//! names (the SQLite file a running gateway shares, or the fleet's PostgreSQL database); every
//! gateway reads the brake from the store at each deactivation or delete, so a release or a
//! hold applies to the next one, fleet-wide.

use super::token::{on_runtime, open_existing};
use super::CommandError;
use crate::brake::settings::BrakePolicy;
use crate::config::{self, Config};
use crate::store::brake::{BrakeChange, BrakeState};
use crate::store::engine;
use crate::store::Store;
use std::path::Path;
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `scimgate brake status --config FILE [--tenant T]`: each tenant's thresholds, window and
/// hold (every tenant of the config and every one the store keeps a brake for, or only `T`).
pub fn status(path: &Path, tenant: Option<&str>) -> Result<String, CommandError> {
    let config = config::load(path)?;
    let store = open_existing(&config)?;
    let kept = match &store {
        Some(s) => {
            let s = s.clone();
            let only = tenant.map(str::to_string);
            on_runtime(async move { s.brakes(only.as_deref()).await })?
        }
        None => Vec::new(),
    };
    let mut names: Vec<String> = match tenant {
        Some(t) => vec![t.to_string()],
        None => config.tenants.iter().map(|t| t.name.clone()).collect(),
    };
    for (name, _) in &kept {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let now = now();
    let mut out = Vec::new();
    for name in names {
        let policy = config.brake.for_tenant(&name);
        let state = kept.iter().find(|(n, _)| *n == name).map(|(_, s)| *s);
        let managed = match (&store, policy.and_then(|p| p.thresholds.max_percent)) {
            (Some(s), Some(_)) => {
                let (s, t) = (s.clone(), name.clone());
                let n = on_runtime(async move { s.count(&t).await })?;
                u64::try_from(n).unwrap_or(u64::MAX)
            }
            _ => 0,
        };
        out.push(report(&name, policy, state.as_ref(), managed, now, path));
    }
    if out.is_empty() {
        return Ok("no tenants".into());
    }
    Ok(out.join("\n\n"))
}

/// `scimgate brake release --config FILE --tenant T [--allow N]`: ends the tenant's hold and
/// opens a fresh window that allows `allow` deactivations and deletes beyond the threshold, so
/// the identity provider's retries of the held ones go through.
pub fn release(path: &Path, tenant: &str, allow: u64) -> Result<String, CommandError> {
    let (config, store) = open_for_change(path, tenant)?;
    let before = state_of(&store, tenant)?;
    let change = BrakeChange::Release { allow };
    let t = tenant.to_string();
    let s = store.clone();
    on_runtime(async move { s.change_brake(&t, change, now()).await })?;
    let was = match before.and_then(|b| b.held_since) {
        Some(since) => format!(
            "released tenant {tenant:?} (held since {}, {} deactivations and deletes refused)",
            rfc3339(since),
            before.map_or(0, |b| b.held_requests)
        ),
        None => format!("tenant {tenant:?} was not held; its window starts afresh"),
    };
    let threshold = match config.brake.for_tenant(tenant) {
        Some(p) => format!(
            "a fresh window of {} s allows the threshold{}",
            p.thresholds.window_secs,
            if allow > 0 {
                format!(" plus {allow}")
            } else {
                String::new()
            }
        ),
        None => "the config brakes no deprovisioning of this tenant".into(),
    };
    Ok(format!(
        "{was}; {threshold}. The identity provider's retries go through on every gateway now."
    ))
}

/// `scimgate brake hold --config FILE --tenant T`: holds the tenant's deactivations and deletes
/// by hand, until `brake release`.
pub fn hold(path: &Path, tenant: &str) -> Result<String, CommandError> {
    let (config, store) = open_for_change(path, tenant)?;
    let t = tenant.to_string();
    let s = store.clone();
    let outcome = on_runtime(async move { s.change_brake(&t, BrakeChange::Hold, now()).await })?;
    let since = outcome.state.held_since.map_or_else(String::new, rfc3339);
    let note = if config.brake.for_tenant(tenant).is_none() {
        " (note: the config brakes no deprovisioning of this tenant, so gateways do not consult the hold)"
    } else {
        ""
    };
    Ok(format!(
        "tenant {tenant:?} is held since {since}: every gateway refuses its deactivations and \
         deletes (503, retried by the identity provider) until `scimgate brake release --config \
         {} --tenant {tenant}`{note}",
        path.display()
    ))
}

/// The config and its store (created if missing), once `tenant` is known to either.
fn open_for_change(path: &Path, tenant: &str) -> Result<(Config, Arc<dyn Store>), CommandError> {
    let config = config::load(path)?;
    let store = engine::open(&config.store).map_err(CommandError::Store)?;
    let in_config = config.tenants.iter().any(|t| t.name == tenant);
    if !in_config {
        let (s, t) = (store.clone(), tenant.to_string());
        let in_store = on_runtime(async move {
            Ok(s.tenant(&t).await?.is_some() || !s.brakes(Some(&t)).await?.is_empty())
        })?;
        if !in_store {
            return Err(CommandError::UnknownTenant(tenant.to_string()));
        }
    }
    Ok((config, store))
}

fn state_of(store: &Arc<dyn Store>, tenant: &str) -> Result<Option<BrakeState>, CommandError> {
    let (s, t) = (store.clone(), tenant.to_string());
    let rows = on_runtime(async move { s.brakes(Some(&t)).await })?;
    Ok(rows.into_iter().next().map(|(_, s)| s))
}

/// One tenant's status as lines of text.
fn report(
    name: &str,
    policy: Option<&BrakePolicy>,
    state: Option<&BrakeState>,
    managed: u64,
    now: i64,
    config: &Path,
) -> String {
    let mut lines = Vec::new();
    let held = state.and_then(|s| s.held_since);
    lines.push(match (held, state) {
        (Some(since), Some(s)) => format!(
            "tenant {name:?}: HELD since {} ({} deactivations and deletes refused since)",
            rfc3339(since),
            s.held_requests
        ),
        _ if policy.is_none() => format!("tenant {name:?}: no brake"),
        _ => format!("tenant {name:?}: flowing"),
    });
    if let Some(p) = policy {
        let t = &p.thresholds;
        let share = t.max_percent.map_or_else(String::new, |pc| {
            format!(
                " or {pc} % of {managed} managed users (at least {})",
                t.min_count
            )
        });
        lines.push(format!(
            "  threshold: {} deactivations and deletes per {} s{share}: {} now",
            t.max_count,
            t.window_secs,
            t.limit(managed)
        ));
        let window = match state {
            Some(s) if now < s.window_start.saturating_add(secs(t.window_secs)) => format!(
                "  window: since {}, {} counted, {} allowed beyond the threshold by a release",
                rfc3339(s.window_start),
                s.count,
                s.allowance
            ),
            _ => "  window: none open (the next deactivation or delete opens one)".into(),
        };
        lines.push(window);
    }
    if let Some(s) = state {
        let released = s.released_at.map_or_else(|| "never".into(), rfc3339);
        lines.push(format!("  trips: {}; last released: {released}", s.trips));
    }
    if held.is_some() {
        lines.push(format!(
            "  review the provisioning log (scimgate log --config {c}), then: scimgate brake \
             release --config {c} --tenant {name}",
            c = config.display()
        ));
    }
    lines.join("\n")
}

fn secs(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::brake::Thresholds;

    const POLICY: BrakePolicy = BrakePolicy {
        thresholds: Thresholds {
            max_count: 100,
            max_percent: Some(10),
            min_count: 10,
            window_secs: 3600,
        },
        retry_after_secs: 600,
    };

    #[test]
    fn a_held_tenant_shows_since_when_how_many_were_refused_and_what_to_run() {
        let state = BrakeState {
            window_start: 0,
            count: 25,
            allowance: 0,
            held_since: Some(60),
            held_requests: 7,
            trips: 1,
            released_at: None,
        };
        let text = report(
            "acme",
            Some(&POLICY),
            Some(&state),
            250,
            120,
            Path::new("g.toml"),
        );
        assert!(
            text.contains("HELD since 1970-01-01T00:01:00Z (7 deactivations"),
            "{text}"
        );
        assert!(
            text.contains("10 % of 250 managed users (at least 10): 25 now"),
            "{text}"
        );
        assert!(
            text.contains("window: since 1970-01-01T00:00:00Z, 25 counted"),
            "{text}"
        );
        assert!(text.contains("trips: 1; last released: never"), "{text}");
        assert!(
            text.contains("brake release --config g.toml --tenant acme"),
            "{text}"
        );
    }

    #[test]
    fn a_tenant_without_a_window_or_a_brake_says_so() {
        let text = report("new", Some(&POLICY), None, 0, 0, Path::new("g.toml"));
        assert!(text.starts_with("tenant \"new\": flowing"), "{text}");
        assert!(text.contains("window: none open"), "{text}");
        let text = report("off", None, None, 0, 0, Path::new("g.toml"));
        assert_eq!(text, "tenant \"off\": no brake");
    }
}
