//! SCIM against the "replace" backend (`tests/support/replace_backend.rs`), whose `PUT` replaces
//! the whole user and requires `If-Match`, configured by `tests/fixtures/replace.toml`: unmapped
//! native fields survive every SCIM write, an app-side change racing a SCIM update survives (the
//! 412 path), a backend 428 is never a bare 502, and Entra's initial cycle of 1,000 users goes
//! through a backend that answers 429 under load.

use super::harness::{assert_scim_error, enc, Gateway};
use super::http::{self, Reply};
use super::ops::Metrics;
use super::replace_backend::ReplaceBackend;
use scimgate::auth::{self, ApiKey, Keyring};
use scimgate::backend::spec::{Rate, UpdateStyle};
use scimgate::config::Config;
use scimgate::gateway::server;
use scimgate::store::engine::StoreSettings;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The backend's name of tenant `initech`.
const WS: &str = "initech-ws";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A gateway configured by `tests/fixtures/replace.toml` (then `adjust`) in front of a fresh
/// replace backend, with a SCIM key for tenant `initech`.
fn gateway_with(adjust: impl FnOnce(&mut Config)) -> (Gateway, ReplaceBackend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = auth::generate_key();
    let listen = server::free_port().expect("port");
    let backend_addr = server::free_port().expect("port");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replace.toml");
    let mut config = scimgate::config::from_str(include_str!("../fixtures/replace.toml"), &file)
        .unwrap_or_else(|e| panic!("{e}"));
    config.server.listen = vec![listen];
    config.backend.address = backend_addr;
    config.store = StoreSettings::Sqlite(dir.path().join("scimgate.sqlite"));
    let tenant = config.tenants[0].clone();
    config.keyring = Keyring::new(vec![ApiKey::from_secret(tenant, &token)]);
    adjust(&mut config);
    let backend = ReplaceBackend::new();
    let conf = server::server_conf(config.server.threads, Duration::ZERO, dir.path());
    let mut srv = server::build(conf);
    srv.add_service(backend.service(&backend_addr.to_string()));
    let gw = Gateway::start(srv, config, token, dir, &[backend_addr]);
    (gw, backend)
}

fn gateway() -> (Gateway, ReplaceBackend) {
    gateway_with(|_| {})
}

/// A user as the app created it, with native fields no mapping names: a nested object, an
/// array of mixed values, an integer, a float, booleans, a null, and unknown keys.
fn seeded(backend: &ReplaceBackend) -> String {
    let text = r#"{
        "email": "ann@initech.test", "first_name": "Ann", "last_name": "Lee",
        "display_name": "Ann Lee", "enabled": true,
        "profile": {"title": "Clerk", "timezone": "Europe/Oslo", "shortcuts": [{"k": "g", "v": 1}]},
        "role": "admin", "is_owner": false, "seats": 12, "quota_gb": 2.75, "score": 1e3,
        "preferences": {"theme": "dark", "tags": ["a", 1, 2.5, true, null, {"x": []}]},
        "plan": null, "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        "x-unknown": {"nested": {"deeper": [[], {}]}}
    }"#;
    backend.seed(WS, serde_json::from_str(text).expect("seed json"))
}

/// The mapped native fields (top-level keys) of the fixture config.
const MAPPED: [&str; 5] = [
    "email",
    "first_name",
    "last_name",
    "display_name",
    "enabled",
];

/// `user` without its mapped fields and `profile.title`, as text (key order included).
fn unmapped(user: &Value) -> String {
    let mut rest = user.clone();
    let obj = rest.as_object_mut().expect("object");
    for key in MAPPED {
        obj.shift_remove(key);
    }
    if let Some(profile) = obj.get_mut("profile").and_then(Value::as_object_mut) {
        profile.shift_remove("title");
    }
    rest.to_string()
}

fn ok(r: &Reply, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    r.json()
}

fn patch(gw: &Gateway, id: &str, ops: Value) -> Reply {
    gw.scim(
        "PATCH",
        &format!("/Users/{id}"),
        Some(&json!({"schemas": [PATCH_OP], "Operations": ops})),
    )
}

#[test]
fn put_and_patch_of_every_mapped_attribute_keep_every_unmapped_field() {
    let (gw, backend) = gateway();
    let id = seeded(&backend);
    let before = unmapped(&backend.user(WS, &id));
    let put = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ann.lee@initech.test",
        "name": {"givenName": "Annie", "familyName": "Leigh"},
        "displayName": "Annie Leigh", "title": "Manager", "active": true,
        ENTERPRISE: {"department": "Ops"},
    });
    let scim = ok(&gw.scim("PUT", &format!("/Users/{id}"), Some(&put)), 200);
    assert_eq!(scim["userName"], "ann.lee@initech.test");
    assert_eq!(
        scim[ENTERPRISE]["department"], "Ops",
        "store-only attributes round-trip"
    );
    let after_put = backend.user(WS, &id);
    assert_eq!(after_put["email"], "ann.lee@initech.test");
    assert_eq!(after_put["first_name"], "Annie");
    assert_eq!(after_put["last_name"], "Leigh");
    assert_eq!(after_put["display_name"], "Annie Leigh");
    assert_eq!(after_put["profile"]["title"], "Manager");
    assert_eq!(after_put["enabled"], true);
    assert_eq!(
        unmapped(&after_put),
        before,
        "PUT kept every unmapped field byte for byte"
    );

    let ops = json!([
        {"op": "replace", "path": "userName", "value": "a.lee@initech.test"},
        {"op": "replace", "path": "name.givenName", "value": "A."},
        {"op": "replace", "path": "name.familyName", "value": "Lee-Smith"},
        {"op": "replace", "path": "displayName", "value": "A. Lee-Smith"},
        {"op": "replace", "path": "title", "value": "Director"},
        {"op": "replace", "path": "active", "value": "False"},
    ]);
    let scim = ok(&patch(&gw, &id, ops), 200);
    assert_eq!(scim["active"], false);
    let after_patch = backend.user(WS, &id);
    assert_eq!(after_patch["email"], "a.lee@initech.test");
    assert_eq!(after_patch["first_name"], "A.");
    assert_eq!(after_patch["last_name"], "Lee-Smith");
    assert_eq!(after_patch["display_name"], "A. Lee-Smith");
    assert_eq!(after_patch["profile"]["title"], "Director");
    assert_eq!(
        after_patch["enabled"], false,
        "deactivation goes through the same update"
    );
    assert_eq!(
        unmapped(&after_patch),
        before,
        "PATCH kept every unmapped field byte for byte"
    );

    // Clearing a mapped attribute clears only it.
    let scim = ok(
        &patch(
            &gw,
            &id,
            json!([{"op": "remove", "path": "title"}, {"op": "replace", "path": "active", "value": true}]),
        ),
        200,
    );
    assert!(scim.get("title").is_none(), "{scim}");
    let cleared = backend.user(WS, &id);
    assert_eq!(cleared["profile"]["title"], Value::Null);
    assert_eq!(cleared["profile"]["timezone"], "Europe/Oslo");
    assert_eq!(unmapped(&cleared), before);
    assert_eq!(backend.count("PUT 428"), 0, "every write carried If-Match");
    assert_eq!(backend.count("PUT 412"), 0, "nothing raced");
    assert_eq!(backend.count("PUT 200"), 3);
}

#[test]
fn partial_style_against_a_replacing_backend_loses_data() {
    // What the docs warn about, shown: the same backend with style = "partial" (the default)
    // loses every unmapped field on the first update. The check above would catch it.
    let (gw, backend) = gateway_with(|c| c.users.update.style = UpdateStyle::Partial);
    let id = seeded(&backend);
    let before = unmapped(&backend.user(WS, &id));
    ok(
        &patch(
            &gw,
            &id,
            json!([{"op": "replace", "path": "name.givenName", "value": "Annie"}]),
        ),
        200,
    );
    let after = backend.user(WS, &id);
    assert_eq!(after["first_name"], "Annie");
    assert!(
        after.get("role").is_none() && after.get("password_hash").is_none(),
        "{after}"
    );
    assert_ne!(unmapped(&after), before);
}

#[test]
fn an_app_change_racing_a_scim_update_survives_through_412() {
    let (gw, backend) = gateway();
    let id = seeded(&backend);
    // Between the gateway's read and its write, the app promotes the user and changes plan.
    backend.race_next_put(
        &id,
        json!({"role": "owner", "plan": {"name": "enterprise", "seats": 50}}),
    );
    let scim = ok(
        &patch(
            &gw,
            &id,
            json!([{"op": "replace", "path": "name.givenName", "value": "Annie"}]),
        ),
        200,
    );
    assert_eq!(scim["name"]["givenName"], "Annie");
    assert_eq!(backend.count("PUT 412"), 1, "the stale write was refused");
    assert_eq!(backend.count("PUT 200"), 1, "then re-read and re-applied");
    let user = backend.user(WS, &id);
    assert_eq!(user["first_name"], "Annie");
    assert_eq!(
        user["role"], "owner",
        "the app's change was not overwritten"
    );
    assert_eq!(user["plan"], json!({"name": "enterprise", "seats": 50}));
    assert_eq!(
        user["password_hash"],
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
    );
}

#[test]
fn a_user_that_keeps_changing_is_503_with_retry_after_and_nothing_is_overwritten() {
    let (gw, backend) = gateway();
    let id = seeded(&backend);
    for n in 0..3 {
        backend.race_next_put(&id, json!({"role": format!("role-{n}")}));
    }
    let r = patch(
        &gw,
        &id,
        json!([{"op": "replace", "path": "name.givenName", "value": "Annie"}]),
    );
    assert_scim_error(&r, 503, None);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("kept changing"),
        "{}",
        r.text()
    );
    assert_eq!(backend.count("PUT 412"), 3, "max_attempts = 3");
    assert_eq!(backend.count("PUT 200"), 0);
    let user = backend.user(WS, &id);
    assert_eq!(user["role"], "role-2");
    assert_eq!(user["first_name"], "Ann", "nothing was written");
    // The next try passes.
    ok(
        &patch(
            &gw,
            &id,
            json!([{"op": "replace", "path": "name.givenName", "value": "Annie"}]),
        ),
        200,
    );
    assert_eq!(backend.user(WS, &id)["first_name"], "Annie");
    assert_eq!(backend.user(WS, &id)["role"], "role-2");
}

#[test]
fn a_backend_428_is_a_clear_scim_error_not_a_bare_502() {
    // Misconfigured: the backend wants If-Match but the config names no version.
    let (gw, backend) = gateway_with(|c| c.users.update.version = None);
    let id = seeded(&backend);
    let before = backend.user(WS, &id);
    let r = patch(
        &gw,
        &id,
        json!([{"op": "replace", "path": "name.givenName", "value": "Annie"}]),
    );
    assert_scim_error(&r, 500, None);
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("428") && detail.contains("[users.update.version]"),
        "{detail}"
    );
    assert_eq!(backend.count("PUT 428"), 1);
    assert_eq!(backend.user(WS, &id), before, "nothing was written");
}

#[test]
fn a_duplicate_email_reported_in_a_structured_400_is_409_uniqueness() {
    let (gw, backend) = gateway();
    seeded(&backend);
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ANN@initech.test"});
    let r = gw.scim("POST", "/Users", Some(&body));
    assert_scim_error(&r, 409, Some("uniqueness"));
    assert_eq!(
        r.json()["detail"],
        "a user with this userName (email) already exists"
    );
    assert_eq!(backend.users(WS).len(), 1);
}

#[test]
fn a_throttled_read_is_retried_and_a_throttled_write_is_429_with_nothing_applied() {
    let (gw, backend) = gateway();
    let id = seeded(&backend);
    // A read: waited for (Retry-After: 1 fits in max_wait_ms = 3000), the client never sees it.
    backend.throttle_next("GET");
    let started = Instant::now();
    let user = ok(&gw.scim("GET", &format!("/Users/{id}"), None), 200);
    assert_eq!(user["userName"], "ann@initech.test");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it waited for Retry-After"
    );
    assert_eq!(backend.count("429"), 1);

    // A create: 429 with Retry-After, nothing in the backend, nothing left in the store...
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bo@initech.test", "externalId": "bo"});
    backend.throttle_next("POST");
    let r = gw.scim("POST", "/Users", Some(&body));
    assert_scim_error(&r, 429, None);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(backend.users(WS).len(), 1);
    let by_external = ok(
        &gw.scim(
            "GET",
            &format!("/Users?filter={}", enc("externalId eq \"bo\"")),
            None,
        ),
        200,
    );
    assert_eq!(
        by_external["totalResults"], 0,
        "no store record of the refused create"
    );
    // ...so the retry is a plain create, not a duplicate or a conflict.
    let created = ok(&gw.scim("POST", "/Users", Some(&body)), 201);
    assert_eq!(backend.users(WS).len(), 2);
    assert_eq!(created["externalId"], "bo");

    // An update: the read passes, the PUT is refused, nothing changes.
    let before = backend.user(WS, &id);
    backend.throttle_next("PUT");
    let r = patch(
        &gw,
        &id,
        json!([{"op": "replace", "path": "name.givenName", "value": "Annie"}]),
    );
    assert_scim_error(&r, 429, None);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(backend.user(WS, &id), before);
    assert_eq!(
        ok(&gw.scim("GET", &format!("/Users/{id}"), None), 200)["name"]["givenName"],
        "Ann"
    );

    // A delete: same.
    backend.throttle_next("DELETE");
    assert_scim_error(&gw.scim("DELETE", &format!("/Users/{id}"), None), 429, None);
    assert_eq!(backend.users(WS).len(), 2);
    assert_eq!(gw.scim("DELETE", &format!("/Users/{id}"), None).status, 204);
    assert_eq!(backend.users(WS).len(), 1);
}

#[test]
fn a_read_throttled_past_max_wait_is_429_not_a_long_stall() {
    let (gw, backend) = gateway_with(|c| c.users.throttling.max_wait = Duration::from_millis(500));
    let id = seeded(&backend);
    backend.throttle_next("GET");
    let started = Instant::now();
    let r = gw.scim("GET", &format!("/Users/{id}"), None);
    assert_scim_error(&r, 429, None);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

/// Entra's per-user steps of an initial cycle, honouring `Retry-After` on 429 as Entra does:
/// look the user up by userName, create it when absent. Every reply's status is recorded.
fn provision(gw: &Gateway, user: &str, statuses: &Mutex<Vec<u16>>) {
    let record = |r: &Reply| {
        statuses.lock().unwrap().push(r.status);
        if r.status == 429 {
            assert_scim_error(r, 429, None);
            let wait: u64 = r
                .header("retry-after")
                .expect("Retry-After")
                .parse()
                .expect("seconds");
            std::thread::sleep(Duration::from_secs(wait));
        }
    };
    let filter = format!("/Users?filter={}", enc(&format!("userName eq \"{user}\"")));
    let found = loop {
        let r = gw.scim("GET", &filter, None);
        record(&r);
        if r.status != 429 {
            assert_eq!(r.status, 200, "{}", r.text());
            break r.json()["totalResults"].as_u64().expect("total");
        }
    };
    if found > 0 {
        return;
    }
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user, "active": true, "displayName": user,
        "name": {"givenName": "Given", "familyName": "Family"},
        "externalId": user,
    });
    loop {
        let r = gw.scim("POST", "/Users", Some(&body));
        record(&r);
        if r.status != 429 {
            assert!(matches!(r.status, 201 | 409), "{}: {}", r.status, r.text());
            return;
        }
    }
}

/// Runs Entra's initial cycle for `n` users on `clients` threads; answers the statuses seen.
fn initial_cycle(gw: &Gateway, n: usize, clients: usize) -> Vec<u16> {
    let statuses = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..clients {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                provision(gw, &format!("user{i:04}@initech.test"), &statuses);
            });
        }
    });
    statuses.into_inner().unwrap()
}

/// Every user `user0000@..` to `user{n-1}@..` exists exactly once in the backend.
fn assert_each_created_once(backend: &ReplaceBackend, n: usize) {
    let users = backend.users(WS);
    let mut emails: Vec<String> = users
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_string())
        .collect();
    emails.sort();
    let expected: Vec<String> = (0..n).map(|i| format!("user{i:04}@initech.test")).collect();
    assert_eq!(emails, expected);
    assert_eq!(
        backend.count("POST 201"),
        n,
        "every user created exactly once"
    );
}

#[test]
fn entra_initial_cycle_of_1000_users_through_a_backend_that_answers_429() {
    let admin = server::free_port().expect("port");
    let (gw, backend) = gateway_with(|c| c.server.admin_listen = Some(admin));
    assert!(super::harness::wait_listening(
        admin,
        Duration::from_secs(10)
    ));
    backend.limit_per_second(300);
    backend.throttle_every(97);
    let started = Instant::now();
    let statuses = initial_cycle(&gw, 1000, 8);
    let took = started.elapsed();
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 201 | 409 | 429)),
        "unexpected statuses: {:?}",
        statuses
            .iter()
            .filter(|s| !matches!(s, 200 | 201 | 409 | 429))
            .collect::<Vec<_>>()
    );
    assert_each_created_once(&backend, 1000);
    let client_429 = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        !statuses.contains(&409),
        "a create refused with 429 left nothing behind, so its retry never conflicted"
    );
    let listed = ok(&gw.scim("GET", "/Users?count=1", None), 200);
    assert_eq!(listed["totalResults"], 1000);
    // Counted after the list, whose backend call may be throttled (and retried) too.
    let backend_429 = backend.count("429");
    assert!(
        backend_429 > 0,
        "the backend's limit was reached (took {took:?})"
    );
    // Both sides of the throttling show in the metrics.
    let m = Metrics::parse(&http::send(admin, "GET", "/metrics", &[], None).text());
    assert_eq!(
        m.sum("scimgate_backend_throttled_total"),
        backend_429 as f64
    );
    assert_eq!(
        m.get("scimgate_throttled_answers_total", &[("cause", "backend")]),
        client_429 as f64
    );
    let answered_429 = |method| {
        m.get(
            "scimgate_requests_total",
            &[("route", "scim"), ("method", method), ("status", "429")],
        )
    };
    assert_eq!(
        answered_429("POST") + answered_429("GET"),
        client_429 as f64
    );
    assert_eq!(
        m.get(
            "scimgate_scim_operations_total",
            &[
                ("tenant", "initech"),
                ("operation", "create"),
                ("result", "throttled")
            ]
        ),
        statuses.iter().filter(|s| **s == 429).count() as f64 - answered_429("GET"),
    );
    eprintln!(
        "initial cycle: 1000 users in {took:?}; backend answered 429 {backend_429} times, the SCIM client saw 429 {client_429} times"
    );
}

#[test]
fn gateway_pacing_keeps_a_burst_under_the_backend_limit() {
    let (gw, backend) = gateway_with(|c| {
        c.users.throttling.rate = Some(Rate {
            per_second: 80.0,
            burst: 10,
        });
    });
    backend.limit_per_second(100);
    let statuses = initial_cycle(&gw, 100, 4);
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 201)),
        "{statuses:?}"
    );
    assert_each_created_once(&backend, 100);
    assert_eq!(
        backend.count("429"),
        0,
        "the gateway never tripped the backend's limiter"
    );
}
