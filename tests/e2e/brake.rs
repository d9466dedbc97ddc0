//! The brake on mass deprovisioning through real sockets, in front of the lax backend (whose
//! request log and people show exactly what reached it): a concurrent burst of Entra-style
//! deactivations and deletes lets the threshold through and holds the rest with a retryable
//! RFC 7644 error; creates, updates and lookups flow meanwhile; a restart keeps the hold and the
//! count; `scimgate brake release` lets the retries through; and two gateways over one
//! PostgreSQL store count together.

use super::harness::assert_scim_error;
use super::http::{self, Reply};
use super::lax::{self, Lax, UMBRELLA, WAYNE};
use super::pg::TestDb;
use super::races::together;
use scimgate::brake::settings::{BrakePolicy, BrakeSettings};
use scimgate::config::Config;
use scimgate::gateway::server::free_port;
use scimgate::store::brake::Thresholds;
use scimgate::store::engine::StoreSettings;
use scimgate::store::postgres::PostgresStore;
use scimgate::store::Store;
use serde_json::{json, Value};
use std::path::Path;

const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Deprovisionings a window lets through.
const THRESHOLD: u64 = 5;
/// The burst: 8 deactivations and 4 deletes.
const BURST: usize = 12;
const RETRY_AFTER: u64 = 120;

fn braked(c: &mut Config) {
    c.brake = BrakeSettings {
        default: Some(BrakePolicy {
            thresholds: Thresholds {
                max_count: THRESHOLD,
                max_percent: None,
                min_count: 0,
                window_secs: 3600,
            },
            retry_after_secs: RETRY_AFTER,
        }),
        ..BrakeSettings::default()
    };
}

fn create(lax: &Lax, token: &str, name: &str) -> String {
    let body = json!({"schemas": [CORE], "userName": name, "displayName": name, "active": true});
    let r = lax.gw.scim_as(token, "POST", "/Users", Some(&body));
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().expect("id").to_string()
}

/// Entra's disable: `Replace active "False"` in the default dialect.
fn deactivate(lax: &Lax, id: &str) -> Reply {
    let body = json!({"schemas": [PATCH_OP],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    lax.gw.scim("PATCH", &format!("/Users/{id}"), Some(&body))
}

/// The `i`th request of the burst: a deactivation of `ids[i]`, every third a delete.
fn deprovision(lax: &Lax, ids: &[String], i: usize) -> Reply {
    if i % 3 == 2 {
        lax.gw.scim("DELETE", &format!("/Users/{}", ids[i]), None)
    } else {
        deactivate(lax, &ids[i])
    }
}

/// Deactivations and deletes the backend carried out in `ws`: PATCHes that set `active` false
/// and DELETEs, read from its people and its request log.
fn carried_out(lax: &Lax, ws: &str) -> usize {
    let inactive = lax
        .backend
        .people(ws)
        .iter()
        .filter(|p| p["active"] == json!(false))
        .count();
    let deletes = lax
        .backend
        .requests()
        .iter()
        .filter(|r| r.starts_with(&format!("DELETE /v1/{ws}/people/")))
        .count();
    inactive + deletes
}

fn assert_held(r: &Reply) {
    assert_scim_error(r, 503, None);
    assert_eq!(r.header("retry-after"), Some("120"), "{}", r.text());
    let detail = r.json()["detail"].as_str().unwrap_or_default().to_string();
    assert!(
        detail.contains("deprovisioning brake") && detail.contains("scimgate brake release"),
        "{detail}"
    );
}

/// A config file for the `scimgate brake` commands: the lax fixture over `store`, braked as
/// [`braked`] is.
fn command_config(dir: &Path, store: &Path) -> std::path::PathBuf {
    let text = include_str!("../fixtures/lax.toml").replace(
        "path = \"lax-scimgate.sqlite\"",
        &format!("path = {:?}", store.display().to_string()),
    );
    let file = dir.join("gateway.toml");
    let brake = format!(
        "\n[deprovision_brake]\nmax_count = {THRESHOLD}\nmax_percent = 0\nretry_after_secs = {RETRY_AFTER}\n"
    );
    std::fs::write(&file, format!("{text}{brake}")).expect("config");
    file
}

#[test]
fn a_burst_past_the_threshold_is_held_until_released_and_a_restart_forgets_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let log = work.path().join("provisioning.jsonl");
    let admin = free_port().expect("port");
    let adjust = |c: &mut Config| {
        braked(c);
        c.server.provisioning_log = Some(log.clone());
        c.server.admin_listen = Some(admin);
    };
    let lax = lax::start_with(adjust);
    let token = lax.gw.token.clone();
    let ids: Vec<String> = (0..BURST)
        .map(|i| create(&lax, &token, &format!("leaver{i}@lax.test")))
        .collect();

    let replies = together(BURST, |i| deprovision(&lax, &ids, i));
    let passed: Vec<usize> = (0..BURST).filter(|&i| replies[i].status < 300).collect();
    assert_eq!(passed.len(), THRESHOLD as usize, "{:?}", statuses(&replies));
    for r in replies.iter().filter(|r| r.status >= 300) {
        assert_held(r);
    }
    assert_eq!(
        carried_out(&lax, UMBRELLA),
        THRESHOLD as usize,
        "exactly the threshold reached the backend"
    );

    // Creates, updates and lookups flow while held; another tenant's deprovisionings too.
    let newcomer = create(&lax, &token, "newcomer@lax.test");
    let rename = json!({"schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "New Comer"}]});
    let r = lax
        .gw
        .scim("PATCH", &format!("/Users/{newcomer}"), Some(&rename));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        lax.gw
            .scim("GET", &format!("/Users/{}", ids[0]), None)
            .status,
        200
    );
    let wayne = lax.wayne.clone();
    let other = create(&lax, &wayne, "other@lax.test");
    let r = lax
        .gw
        .scim_as(&wayne, "DELETE", &format!("/Users/{other}"), None);
    assert_eq!(r.status, 204, "another tenant is not held: {}", r.text());
    assert_eq!(carried_out(&lax, WAYNE), 1);

    // Held requests are in the provisioning log and the metrics; the tenant shows held.
    let events = std::fs::read_to_string(&log).expect("provisioning log");
    let held_events = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("event"))
        .filter(|e| {
            e["status"] == 503
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("deprovisioning brake"))
        })
        .count();
    assert_eq!(held_events, BURST - THRESHOLD as usize, "{events}");
    let metrics = http::send(admin, "GET", "/metrics", &[], None).text();
    for line in [
        format!(
            "scimgate_brake_held_requests_total{{tenant=\"umbrella\"}} {}",
            BURST - THRESHOLD as usize
        ),
        "scimgate_brake_trips_total{tenant=\"umbrella\"} 1".to_string(),
        "scimgate_brake_held{tenant=\"umbrella\"} 1".to_string(),
        "scimgate_brake_held_tenants 1".to_string(),
    ] {
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }

    // A restart keeps the hold and the count.
    let store = lax.store.clone();
    let lax = lax.restart_with(braked);
    let held: Vec<usize> = (0..BURST).filter(|i| !passed.contains(i)).collect();
    assert_held(&deprovision(&lax, &ids, held[0]));
    let config = command_config(work.path(), &store);
    let status = scimgate::commands::brake::status(&config, Some("umbrella")).expect("status");
    assert!(status.contains("HELD since"), "{status}");
    assert!(status.contains(&format!("{THRESHOLD} counted")), "{status}");
    let refused = held.len() + 1;
    assert!(
        status.contains(&format!("({refused} deactivations and deletes refused")),
        "{status}"
    );

    // Release with room for every held request: the provider's retries go through, exactly.
    let allow = held.len() as u64 - THRESHOLD;
    let said = scimgate::commands::brake::release(&config, "umbrella", allow).expect("release");
    assert!(said.contains("released tenant \"umbrella\""), "{said}");
    let retries = together(held.len(), |k| deprovision(&lax, &ids, held[k]));
    assert!(
        retries.iter().all(|r| r.status < 300),
        "{:?}",
        statuses(&retries)
    );
    assert_eq!(carried_out(&lax, UMBRELLA), BURST);
    // The fresh window is used up: the next one is held again.
    let another = create(&lax, &token, "later@lax.test");
    assert_held(&deactivate(&lax, &another));
}

#[test]
fn two_gateways_on_one_database_share_the_count_and_see_a_release_at_once() {
    let Some(db) = TestDb::create() else { return };
    let store = StoreSettings::Postgres(db.settings());
    let a = lax::start_with(|c| {
        c.store = store.clone();
        braked(c);
    });
    let b = a.another_instance(|c| {
        c.store = store;
        braked(c);
    });
    let token = a.gw.token.clone();
    let ids: Vec<String> = (0..BURST)
        .map(|i| create(&a, &token, &format!("fleet{i}@lax.test")))
        .collect();
    let replies = together(BURST, |i| {
        let instance = if i % 2 == 0 { &a } else { &b };
        deprovision(instance, &ids, i)
    });
    let held: Vec<usize> = (0..BURST).filter(|&i| replies[i].status >= 300).collect();
    assert_eq!(
        held.len(),
        BURST - THRESHOLD as usize,
        "{:?}",
        statuses(&replies)
    );
    for &i in &held {
        assert_held(&replies[i]);
    }
    assert_eq!(carried_out(&a, UMBRELLA), THRESHOLD as usize);

    // `brake release` on the shared database (what the command does), with room for the
    // held ones: their retries through the other instance pass at once.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let operator = PostgresStore::open(&db.settings()).await.expect("store");
        let release = scimgate::store::brake::BrakeChange::Release {
            allow: held.len() as u64 - THRESHOLD,
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        operator
            .change_brake("umbrella", release, now)
            .await
            .expect("release");
    });
    for &i in &held {
        let instance = if i % 2 == 0 { &b } else { &a };
        let r = deprovision(instance, &ids, i);
        assert!(r.status < 300, "{}: {}", r.status, r.text());
    }
    assert_eq!(carried_out(&a, UMBRELLA), BURST);
}

fn statuses(replies: &[Reply]) -> Vec<u16> {
    replies.iter().map(|r| r.status).collect()
}
