//! A fleet: two gateways in front of one lax backend (no unique emails, a whoami-based guard)
//! over one PostgreSQL store, as an operator runs them behind a load balancer. What one instance
//! decides must hold on the other: one user per userName, no lost update, `If-Match` checked
//! against what either wrote, the guard's managed flag, pending-create notes. And when the
//! database goes away (a relay between the gateways and PostgreSQL is cut or stalled), SCIM
//! answers `503` with `Retry-After`, proxied traffic flows, guarded routes fail closed, and
//! everything recovers without a restart.

use super::cutter::Cutter;
use super::harness::assert_scim_error;
use super::http::{self, Reply};
use super::lax::{self, Lax, UMBRELLA};
use super::pg::TestDb;
use super::races::{conditional, etag, one_created_rest_conflict, together};
use scimgate::gateway::server::free_port;
use scimgate::store::engine::StoreSettings;
use scimgate::store::postgres::{PgSettings, PostgresStore};
use scimgate::store::{Store, UserRecord};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Requests per race, spread over both instances.
const RACERS: usize = 20;

/// Two gateways over the store `settings` names, in front of one lax backend, with the same keys.
fn fleet(settings: PgSettings) -> (Lax, Lax) {
    fleet_with_admin(settings, None)
}

/// [`fleet`], the first instance with its admin listener (`/metrics`, `/readyz`) on `admin`.
fn fleet_with_admin(settings: PgSettings, admin: Option<SocketAddr>) -> (Lax, Lax) {
    let store = StoreSettings::Postgres(settings);
    let a = lax::start_with(|c| {
        c.store = store.clone();
        c.server.admin_listen = admin;
    });
    let b = a.another_instance(|c| c.store = store);
    (a, b)
}

fn user(name: &str) -> Value {
    json!({"schemas": [CORE], "userName": name, "displayName": name})
}

fn patch_body(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

fn created_id(r: &Reply) -> String {
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().expect("id").to_string()
}

/// The app's password change as the member `id` of umbrella (a guarded route).
fn change_password(instance: &Lax, id: &str) -> Reply {
    let auth = format!("Bearer {}", instance.backend.session(UMBRELLA, id));
    instance.gw.request(
        "PUT",
        "/v1/me/password",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        Some(b"{\"password\":\"n3w\"}"),
    )
}

#[test]
fn concurrent_creates_of_one_user_name_through_two_instances_make_one_user() {
    let Some(db) = TestDb::create() else { return };
    let (a, b) = fleet(db.settings());
    // Warm both instances up (connections to the backend and the database opened), so that
    // their racers really overlap.
    for r in together(RACERS, |i| {
        let instance = if i % 2 == 0 { &a } else { &b };
        instance
            .gw
            .scim("POST", "/Users", Some(&user(&format!("warm{i}@lax.test"))))
    }) {
        created_id(&r);
    }
    let spellings = ["Fleet@Lax.test", "fleet@lax.test", "FLEET@LAX.TEST"];
    let replies = together(RACERS, |i| {
        let instance = if i % 2 == 0 { &a } else { &b };
        let body = user(spellings[i % spellings.len()]);
        instance.gw.scim("POST", "/Users", Some(&body))
    });
    let winner = one_created_rest_conflict(&replies);
    let people: Vec<Value> = a
        .backend
        .people(UMBRELLA)
        .into_iter()
        .filter(|p| {
            p["email"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case("fleet@lax.test"))
        })
        .collect();
    assert_eq!(people.len(), 1, "{people:?}");
    assert_eq!(people[0]["id"], replies[winner].json()["id"]);
    // The reservation was released: after a delete, the name can be created again elsewhere.
    let id = replies[winner].json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        a.gw.scim("DELETE", &format!("/Users/{id}"), None).status,
        204
    );
    created_id(&b.gw.scim("POST", "/Users", Some(&user("fleet@lax.test"))));
}

#[test]
fn concurrent_patches_through_two_instances_lose_no_update() {
    let Some(db) = TestDb::create() else { return };
    let (a, b) = fleet(db.settings());
    let id = created_id(&a.gw.scim("POST", "/Users", Some(&user("patched@lax.test"))));
    let path = format!("/Users/{id}");
    // Each racer adds its own element of a list only the store holds: a read-modify-write that
    // loses elements unless writes to one user are serialised across instances.
    let replies = together(RACERS, |i| {
        let instance = if i % 2 == 0 { &a } else { &b };
        let ops = json!([{"op": "add", "path": "emails",
            "value": [{"type": format!("t{i}"), "value": format!("u{i}@race.test")}]}]);
        instance.gw.scim("PATCH", &path, Some(&patch_body(ops)))
    });
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for instance in [&a, &b] {
        let emails = instance.gw.scim("GET", &path, None).json()["emails"].clone();
        let n = emails.as_array().map_or(0, Vec::len);
        assert_eq!(n, RACERS, "every element on either instance: {emails}");
    }
}

#[test]
fn a_stale_etag_gets_412_whichever_instance_answers() {
    let Some(db) = TestDb::create() else { return };
    let (a, b) = fleet(db.settings());
    let id = created_id(&a.gw.scim("POST", "/Users", Some(&user("tagged@lax.test"))));
    let path = format!("/Users/{id}");
    let seen = etag(&a.gw.scim("GET", &path, None));
    assert_eq!(
        etag(&b.gw.scim("GET", &path, None)),
        seen,
        "one version on both"
    );
    let rename = patch_body(json!([{"op": "replace", "path": "displayName", "value": "B"}]));
    let r = conditional(&b.gw, "PATCH", &path, &seen, Some(&rename));
    assert_eq!(r.status, 200, "{}", r.text());
    let stale = patch_body(json!([{"op": "replace", "path": "displayName", "value": "A"}]));
    let r = conditional(&a.gw, "PATCH", &path, &seen, Some(&stale));
    assert_scim_error(&r, 412, None);
    assert_eq!(a.gw.scim("GET", &path, None).json()["displayName"], "B");
}

#[test]
fn a_user_provisioned_through_one_instance_is_guarded_by_the_other_at_once() {
    let Some(db) = TestDb::create() else { return };
    let (a, b) = fleet(db.settings());
    // Two members the app made itself; b's guard has already seen both as unmanaged.
    let linked = a
        .backend
        .seed(UMBRELLA, json!({"email": "linked@lax.test", "name": "L"}));
    let made = a
        .backend
        .seed(UMBRELLA, json!({"email": "other@lax.test", "name": "O"}));
    assert_eq!(change_password(&b, &linked).status, 200);
    assert_eq!(change_password(&b, &made).status, 200);
    // Entra links the first one through instance a (lookup, then PATCH) ...
    let ops = patch_body(json!([{"op": "replace", "path": "displayName", "value": "Linked"}]));
    let r = a.gw.scim("PATCH", &format!("/Users/{linked}"), Some(&ops));
    assert_eq!(r.status, 200, "{}", r.text());
    // ... and creates a new one through a: instance b refuses both on the very next request.
    let created = created_id(&a.gw.scim("POST", "/Users", Some(&user("new@lax.test"))));
    let r = change_password(&b, &linked);
    assert_eq!(
        r.status,
        403,
        "linked through a, guarded by b: {}",
        r.text()
    );
    assert_eq!(change_password(&b, &created).status, 403);
    assert_eq!(
        change_password(&b, &made).status,
        200,
        "unmanaged stays free"
    );
    // Deleted through b, the account is no longer managed on a.
    assert_eq!(
        b.gw.scim("DELETE", &format!("/Users/{created}"), None)
            .status,
        204
    );
    let seeded_again = a.backend.seed(UMBRELLA, json!({"email": "back@lax.test"}));
    assert_eq!(change_password(&a, &seeded_again).status, 200);
}

#[test]
fn a_create_one_instance_noted_but_never_recorded_is_repaired_by_the_other() {
    let Some(db) = TestDb::create() else { return };
    let (a, b) = fleet(db.settings());
    // What instance a leaves when it dies between the backend's create and its own record: a
    // pending note in the store and an account in the backend the store knows nothing of.
    let resource = json!({"schemas": [CORE], "userName": "crashed@lax.test",
        "externalId": "ext-crashed", "title": "Held by the store only"});
    let note = UserRecord {
        shadow: resource,
        managed: true,
        created: "2026-12-05T08:00:00Z".into(),
        last_modified: "2026-12-05T08:00:00Z".into(),
    };
    let store = PostgresStore::open_blocking(&db.settings()).expect("store");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(store.put_pending_create("umbrella", "crashed@lax.test", &note))
        .expect("note");
    let id = a
        .backend
        .seed(UMBRELLA, json!({"email": "crashed@lax.test", "name": "C"}));
    drop(a);
    // Entra's retry lands on b: the lookup finds the user with what the note kept, and b guards it.
    let r = b.gw.scim(
        "GET",
        "/Users?filter=userName%20eq%20%22crashed%40lax.test%22",
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let found = r.json();
    assert_eq!(found["totalResults"], 1, "{found}");
    assert_eq!(found["Resources"][0]["id"], id.as_str());
    assert_eq!(
        found["Resources"][0]["externalId"], "ext-crashed",
        "{found}"
    );
    assert_eq!(found["Resources"][0]["title"], "Held by the store only");
    assert_eq!(
        change_password(&b, &id).status,
        403,
        "SCIM made it: managed"
    );
}

/// The database behind a relay the test controls.
fn behind(db: &TestDb) -> (Cutter, PgSettings) {
    let target: SocketAddr = db.address();
    let cutter = Cutter::start(target);
    let mut settings = db.settings();
    settings.url = settings
        .url
        .replacen(&target.to_string(), &cutter.addr.to_string(), 1);
    // Short enough for a quick test, long enough for a loaded CI machine.
    settings.connect_timeout = Duration::from_millis(2_000);
    settings.statement_timeout = Duration::from_millis(2_000);
    settings.pool_wait = Duration::from_millis(1_000);
    (cutter, settings)
}

fn assert_store_503(r: &Reply, what: &str) {
    assert_scim_error(r, 503, None);
    let wait = r.header("retry-after").and_then(|v| v.parse::<u64>().ok());
    assert!(wait.is_some_and(|s| s >= 1), "{what}: Retry-After {wait:?}");
    assert!(
        r.json()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("store")),
        "{what}: {}",
        r.text()
    );
}

/// Polls `check` until it holds or `within` passes.
fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_database_that_goes_down_or_hangs_fails_scim_cleanly_and_recovers_by_itself() {
    let Some(db) = TestDb::create() else { return };
    let (cutter, settings) = behind(&db);
    let admin = free_port().expect("port");
    let (a, b) = fleet_with_admin(settings, Some(admin));
    let probe = |path: &str| http::send(admin, "GET", path, &[], None);
    assert_eq!(probe("/readyz").status, 200, "{}", probe("/readyz").text());
    let metrics = probe("/metrics").text();
    for line in [
        r#"scimgate_store_pool_connections{pool="statements",state="max"} 8"#,
        r#"scimgate_store_pool_connections{pool="holds",state="max"} 8"#,
        r#"scimgate_store_pool_connections{pool="reads",state="max"} 2"#,
        r#"scimgate_store_pool_connections{pool="writes",state="max"} 1"#,
        r#"scimgate_store_pool_connections{pool="notifications",state="max"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    let id = created_id(&a.gw.scim("POST", "/Users", Some(&user("kept@lax.test"))));
    let unmanaged = a.backend.seed(UMBRELLA, json!({"email": "free@lax.test"}));
    let people_before = a.backend.people(UMBRELLA).len();

    for (how, fault) in [
        ("down", Cutter::cut as fn(&Cutter)),
        ("hung", Cutter::stall),
    ] {
        fault(&cutter);
        for instance in [&a, &b] {
            let started = Instant::now();
            let r = instance
                .gw
                .scim("POST", "/Users", Some(&user("lost@lax.test")));
            assert_store_503(&r, &format!("{how}: create"));
            let r = instance.gw.scim("GET", &format!("/Users/{id}"), None);
            assert_store_503(&r, &format!("{how}: read"));
            let ops = patch_body(json!([{"op": "replace", "path": "displayName", "value": "x"}]));
            let r = instance
                .gw
                .scim("PATCH", &format!("/Users/{id}"), Some(&ops));
            assert_store_503(&r, &format!("{how}: patch"));
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{how}: answers come in time"
            );
            // The guard cannot know who is managed: it fails closed, and says why.
            let r = change_password(instance, &unmanaged);
            assert_eq!(r.status, 503, "{how}: {}", r.text());
            assert!(r.text().contains("store"), "{how}: {}", r.text());
            // Proxied traffic does not need the store.
            let r = instance
                .gw
                .request("GET", &format!("/v1/{UMBRELLA}/people/{id}"), &[], None);
            assert_ne!(r.status, 503, "{how}: proxied: {}", r.text());
        }
        assert_eq!(
            a.backend.people(UMBRELLA).len(),
            people_before,
            "{how}: nothing reached the backend"
        );
        let ready = probe("/readyz");
        assert_eq!(ready.status, 503, "{how}: {}", ready.text());
        assert!(
            ready.json()["store"]
                .as_str()
                .is_some_and(|s| s.starts_with("store")),
            "{how}: {}",
            ready.text()
        );
        assert!(
            probe("/metrics")
                .text()
                .contains("scimgate_store_errors_total{kind="),
            "{how}: store failures counted"
        );
        cutter.heal();
        for instance in [&a, &b] {
            eventually(Duration::from_secs(15), "SCIM reads recover", || {
                instance
                    .gw
                    .scim("GET", &format!("/Users/{id}"), None)
                    .status
                    == 200
            });
            assert_eq!(change_password(instance, &unmanaged).status, 200);
            assert_eq!(change_password(instance, &id).status, 403);
        }
        assert_eq!(probe("/readyz").status, 200, "{how}: ready again");
    }
    let r = b.gw.scim("POST", "/Users", Some(&user("after@lax.test")));
    created_id(&r);
}
