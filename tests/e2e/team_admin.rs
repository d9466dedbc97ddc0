//! Team admins turn SCIM on and manage their team's keys through the gateway, with their own app
//! session (the demo's whoami): enable, generate, use on `/scim/v2`, revoke, disable; who may
//! act on which team; cross-site writes; keys kept across a restart; no secret in list answers,
//! logs or metrics.

use super::harness::{Gateway, DEMO_SERVICE_TOKEN, PASSWORD};
use super::http::Reply;
use scimgate::store::engine::StoreSettings;
use serde_json::{json, Value};

const API: &str = "/scim-admin/api";

/// An API call with the app session `session`, as the page sends it (same origin, JSON).
fn call(gw: &Gateway, session: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
    let auth = format!("Bearer {session}");
    let host = gw.addr.to_string();
    let origin = format!("http://{host}");
    let body = body.map(|b| b.to_string());
    let mut headers = vec![("Authorization", auth.as_str())];
    if method != "GET" {
        headers.extend([
            ("Content-Type", "application/json"),
            ("Origin", origin.as_str()),
            ("Sec-Fetch-Site", "same-origin"),
        ]);
    }
    gw.request(
        method,
        &format!("{API}{path}"),
        &headers,
        body.as_deref().map(str::as_bytes),
    )
}

/// A new key of `team`, made by `session`; answers `(id, secret)`.
fn new_key(gw: &Gateway, session: &str, team: &str, label: &str) -> (String, String) {
    let r = call(
        gw,
        session,
        "POST",
        &format!("/teams/{team}/keys"),
        Some(json!({"label": label})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    assert!(
        created["tenant_url"]
            .as_str()
            .unwrap()
            .ends_with("/scim/v2"),
        "{created}"
    );
    (
        created["id"].as_str().unwrap().to_string(),
        created["key"].as_str().unwrap().to_string(),
    )
}

fn state(gw: &Gateway, session: &str, team: &str) -> Value {
    let r = call(gw, session, "GET", &format!("/teams/{team}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// A member of `team` with `role`, made with the backend's service credential; answers their
/// app session.
fn join(gw: &Gateway, team: &str, email: &str, role: &str) -> String {
    let body = json!({"email": email, "role": role, "password": PASSWORD}).to_string();
    let auth = format!("Bearer {DEMO_SERVICE_TOKEN}");
    let r = gw.request(
        "POST",
        &format!("/api/teams/{team}/members"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
    );
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    gw.login(email)
}

/// `admin` turns SCIM on or off for `team`.
fn switch(gw: &Gateway, admin: &str, team: &str, on: bool) {
    let action = if on { "enable" } else { "disable" };
    let r = call(gw, admin, "POST", &format!("/teams/{team}/{action}"), None);
    assert_eq!(r.status, 200, "{action}: {}", r.text());
}

#[test]
fn an_admin_enables_scim_generates_a_key_uses_it_and_revokes_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("provisioning.jsonl");
    let metrics_at = scimgate::gateway::server::free_port().unwrap();
    let gw = Gateway::demo_with(|c| {
        c.server.provisioning_log = Some(log.clone());
        c.server.admin_listen = Some(metrics_at);
    });
    let admin = gw.login("admin@acme.test");

    let me = call(&gw, &admin, "GET", "/me", None).json();
    assert_eq!(
        (me["team"].as_str(), me["admin"].as_bool()),
        (Some("acme"), Some(true))
    );
    let before = state(&gw, &admin, "acme");
    assert_eq!(before["scim_enabled"], false, "{before}");
    assert_eq!(before["enabled_by_operator"], true, "the demo's config key");
    let r = call(&gw, &admin, "POST", "/teams/acme/keys", None);
    assert_eq!(r.status, 409, "no key before SCIM is enabled: {}", r.text());

    let r = call(&gw, &admin, "POST", "/teams/acme/enable", None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["scim_enabled"], true);
    let (id, secret) = new_key(&gw, &admin, "acme", "Entra ID");
    let users = gw.scim_as(&secret, "GET", "/Users?count=1", None);
    assert_eq!(users.status, 200, "the new key works: {}", users.text());

    let listed = state(&gw, &admin, "acme");
    let text = listed.to_string();
    assert!(!text.contains(&secret), "a list never shows the secret");
    let key = &listed["keys"][0];
    assert_eq!(
        (key["id"].as_str(), key["label"].as_str()),
        (Some(id.as_str()), Some("Entra ID"))
    );
    assert_eq!(key["created_by"], me["id"]);
    assert!(
        key.get("sha256").is_none() && key.get("key").is_none(),
        "{key}"
    );

    let r = call(
        &gw,
        &admin,
        "DELETE",
        &format!("/teams/acme/keys/{id}"),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let after = gw.scim_as(&secret, "GET", "/Users?count=1", None);
    assert_eq!(after.status, 401, "revoked at once: {}", after.text());
    let r = call(&gw, &admin, "DELETE", "/teams/acme/keys/nope", None);
    assert_eq!(r.status, 404);

    let (_, second) = new_key(&gw, &admin, "acme", "Okta");
    let r = call(&gw, &admin, "POST", "/teams/acme/disable", None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (
            r.json()["scim_enabled"].as_bool(),
            r.json()["revoked"].as_u64()
        ),
        (Some(false), Some(1))
    );
    assert_eq!(gw.scim_as(&second, "GET", "/Users", None).status, 401);

    let events = std::fs::read_to_string(&log).unwrap();
    assert!(!events.contains(&secret) && !events.contains(&second));
    let actions: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["actor"].is_string())
        .collect();
    let ops: Vec<&str> = actions
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        [
            "scim_enable",
            "key_create",
            "key_revoke",
            "key_create",
            "scim_disable"
        ]
    );
    assert!(actions
        .iter()
        .all(|e| e["actor"] == me["id"] && e["tenant"] == "acme"));
    let metrics = super::http::send(metrics_at, "GET", "/metrics", &[], None).text();
    let created = r#"scimgate_team_admin_actions_total{action="key_create",result="success"} 2"#;
    assert!(metrics.contains(created), "{metrics}");
    assert!(!metrics.contains(&secret) && !metrics.contains(&second));
}

#[test]
fn only_an_admin_of_the_team_may_act_on_it() {
    let gw = Gateway::demo();
    let admin = gw.login("admin@acme.test");
    let member = gw.login("bob@acme.test");
    let other = join(&gw, "beta", "boss@beta.test", "admin");
    switch(&gw, &admin, "acme", true);
    let (id, _) = new_key(&gw, &admin, "acme", "Entra ID");

    for (method, path) in [
        ("GET", "/teams/acme".to_string()),
        ("POST", "/teams/acme/keys".to_string()),
        ("POST", "/teams/acme/disable".to_string()),
        ("DELETE", format!("/teams/acme/keys/{id}")),
    ] {
        let r = call(&gw, &member, method, &path, None);
        assert_eq!(r.status, 403, "a member: {method} {path}: {}", r.text());
        let r = call(&gw, &other, method, &path, None);
        assert_eq!(
            r.status,
            404,
            "another team's admin: {method} {path}: {}",
            r.text()
        );
    }
    assert_eq!(
        call(&gw, &member, "GET", "/me", None).json()["admin"],
        false
    );
    let r = gw.request("GET", &format!("{API}/teams/acme"), &[], None);
    assert_eq!(r.status, 401, "no session: {}", r.text());
    let live = &state(&gw, &admin, "acme")["keys"][0];
    assert!(
        live["revoked_at"].is_null(),
        "nobody else touched the key: {live}"
    );
    switch(&gw, &other, "beta", true);
    assert_eq!(state(&gw, &other, "beta")["keys"], json!([]));
}

#[test]
fn a_cross_site_write_is_refused() {
    let gw = Gateway::demo();
    let admin = gw.login("admin@acme.test");
    let auth = format!("Bearer {admin}");
    let forged: [&[(&str, &str)]; 3] = [
        &[
            ("Content-Type", "application/json"),
            ("Origin", "https://evil.test"),
        ],
        &[
            ("Content-Type", "application/json"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        &[("Content-Type", "application/x-www-form-urlencoded")],
    ];
    for extra in forged {
        let mut headers = vec![("Authorization", auth.as_str())];
        headers.extend_from_slice(extra);
        let r = gw.request(
            "POST",
            &format!("{API}/teams/acme/enable"),
            &headers,
            Some(b"{}"),
        );
        assert_eq!(r.status, 403, "{extra:?}: {}", r.text());
        assert_eq!(r.json()["error"], "cross_site");
    }
    assert_eq!(
        state(&gw, &admin, "acme")["scim_enabled"],
        false,
        "nothing changed"
    );
}

#[test]
fn the_page_is_served_unframeable() {
    let gw = Gateway::demo();
    let r = gw.request("GET", "/scim-admin/", &[], None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert!(r.text().contains("Generate SCIM API key"));
}

#[test]
fn store_keys_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSettings::Sqlite(dir.path().join("kept.sqlite"));
    let mut first = Gateway::demo_with(|c| c.store = store.clone());
    let admin = first.login("admin@acme.test");
    assert_eq!(
        call(&first, &admin, "POST", "/teams/acme/enable", None).status,
        200
    );
    let (id, secret) = new_key(&first, &admin, "acme", "Entra ID");
    first.stop();
    drop(first);

    let second = Gateway::demo_with(|c| c.store = store);
    assert_eq!(
        second
            .scim_as(&secret, "GET", "/Users?count=1", None)
            .status,
        200
    );
    let admin = second.login("admin@acme.test");
    let used = (0..50).find_map(|_| {
        let keys = state(&second, &admin, "acme")["keys"].clone();
        assert_eq!(keys[0]["id"], id.as_str(), "{keys}");
        if keys[0]["last_used_at"].is_string() {
            return Some(keys);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        None
    });
    assert!(used.is_some(), "the key's last use is recorded");
}

/// `session` changes its own email: the guard's answer, or the app's.
fn change_email(gw: &Gateway, session: &str, to: &str) -> u16 {
    let auth = format!("Bearer {session}");
    let body = json!({"email": to}).to_string();
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    gw.request("PUT", "/api/me/email", &headers, Some(body.as_bytes()))
        .status
}

#[test]
fn the_guard_holds_a_teams_scim_accounts_while_its_admins_keep_scim_on() {
    let gw = Gateway::demo();
    let admin = join(&gw, "beta", "boss@beta.test", "admin");
    let member = join(&gw, "beta", "dana@beta.test", "member");
    switch(&gw, &admin, "beta", true);
    let (_, key) = new_key(&gw, &admin, "beta", "Entra ID");

    // The identity provider takes the account over with the team's own key.
    let filter = super::harness::enc("userName eq \"dana@beta.test\"");
    let found = gw
        .scim_as(&key, "GET", &format!("/Users?filter={filter}"), None)
        .json();
    let id = found["Resources"][0]["id"]
        .as_str()
        .expect("dana")
        .to_string();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "externalId", "value": "aad-dana"}]});
    let r = gw.scim_as(&key, "PATCH", &format!("/Users/{id}"), Some(&patch));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        change_email(&gw, &member, "dana2@beta.test"),
        403,
        "SCIM on: held"
    );

    switch(&gw, &admin, "beta", false);
    assert_eq!(
        change_email(&gw, &member, "dana3@beta.test"),
        200,
        "SCIM off: free"
    );

    switch(&gw, &admin, "beta", true);
    assert_eq!(
        change_email(&gw, &member, "dana4@beta.test"),
        403,
        "on again: held"
    );
    assert_eq!(
        leave(&gw, &member, "beta"),
        403,
        "cannot leave while SCIM is on"
    );
    switch(&gw, &admin, "beta", false);
    let left = leave(&gw, &member, "beta");
    assert!(
        (200..300).contains(&left),
        "leaves once SCIM is off: {left}"
    );
}

/// `session` leaves `team` through the app's self-service route.
fn leave(gw: &Gateway, session: &str, team: &str) -> u16 {
    let auth = format!("Bearer {session}");
    let path = format!("/api/teams/{team}/members/me");
    gw.request("DELETE", &path, &[("Authorization", auth.as_str())], None)
        .status
}

#[test]
fn with_every_member_managed_scim_on_holds_them_all_and_off_frees_them() {
    let gw = Gateway::demo_with(|c| {
        if let Some(g) = c.guard.as_mut() {
            g.all_members_managed = true;
        }
    });
    let admin = join(&gw, "beta", "boss@beta.test", "admin");
    let member = join(&gw, "beta", "erin@beta.test", "member");
    switch(&gw, &admin, "beta", true);
    assert_eq!(
        change_email(&gw, &member, "erin2@beta.test"),
        403,
        "every member held"
    );
    switch(&gw, &admin, "beta", false);
    assert_eq!(
        change_email(&gw, &member, "erin3@beta.test"),
        200,
        "SCIM off: free"
    );
}

#[test]
fn a_key_revoked_on_one_instance_of_a_fleet_stops_on_the_other_within_the_bound() {
    let Some(db) = super::pg::TestDb::create() else {
        return;
    };
    let store = StoreSettings::Postgres(db.settings());
    let a = Gateway::demo_with(|c| c.store = store.clone());
    let b = Gateway::demo_with(|c| c.store = store);
    let admin = a.login("admin@acme.test");
    switch(&a, &admin, "acme", true);
    let (id, key) = new_key(&a, &admin, "acme", "Entra ID");
    let users = |gw: &Gateway| gw.scim_as(&key, "GET", "/Users?count=1", None).status;
    assert_eq!(
        users(&b),
        200,
        "a key made on one instance acts on the other"
    );

    let r = call(
        &a,
        &admin,
        "DELETE",
        &format!("/teams/acme/keys/{id}"),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(users(&a), 401, "at once where it was revoked");
    let revoked = std::time::Instant::now();
    while users(&b) != 401 {
        assert!(
            revoked.elapsed() < std::time::Duration::from_secs(7),
            "still accepted on the other instance past the 5 s bound"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
