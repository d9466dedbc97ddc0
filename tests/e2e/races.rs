//! Races against the demo: concurrent SCIM writes, each from its own thread on its own
//! connection, released together by a barrier. Creates of one userName and writes to one user are
//! serialised by the gateway (`Directory::lock`), so no duplicate and no lost update may appear;
//! `If-Match` makes a stale writer fail with 412.

use super::harness::{assert_scim_error, enc, Gateway};
use super::http::Reply;
use serde_json::{json, Value};
use std::sync::Barrier;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Threads per race.
const RACERS: usize = 20;

/// Runs `f(i)` for `i` in `0..n` on `n` threads released together; answers the replies in order.
pub fn together<F>(n: usize, f: F) -> Vec<Reply>
where
    F: Fn(usize) -> Reply + Sync,
{
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                s.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("racer thread"))
            .collect()
    })
}

fn patch_body(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

fn create(gw: &Gateway, body: &Value) -> Value {
    let r = gw.scim("POST", "/Users", Some(body));
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

/// The SCIM users whose userName equals `user_name` (case-insensitively, as SCIM compares it).
fn scim_lookup(gw: &Gateway, user_name: &str) -> Value {
    let r = gw.scim(
        "GET",
        &format!(
            "/Users?filter={}",
            enc(&format!("userName eq \"{user_name}\""))
        ),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The legacy service's members whose email equals `email` ignoring case, read through the
/// gateway with an admin session (the backend's own view, not the SCIM one).
pub fn legacy_members(gw: &Gateway, email: &str) -> Vec<Value> {
    let session = gw.login("admin@acme.test");
    let auth = format!("Bearer {session}");
    let exact = gw.request(
        "GET",
        &format!("/api/teams/acme/members?email={}", enc(email)),
        &[("Authorization", auth.as_str())],
        None,
    );
    assert_eq!(exact.status, 200, "{}", exact.text());
    let all = gw.request(
        "GET",
        "/api/teams/acme/members?per_page=200",
        &[("Authorization", auth.as_str())],
        None,
    );
    assert_eq!(all.status, 200, "{}", all.text());
    let all = all.json();
    assert!(
        all["total"].as_u64().expect("total") <= 200,
        "one page holds every member"
    );
    let matching: Vec<Value> = all["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter(|m| {
            m["email"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
        .cloned()
        .collect();
    assert!(
        exact.json()["total"].as_u64().expect("total") <= matching.len() as u64,
        "{}",
        exact.text()
    );
    matching
}

/// Exactly one 201; every other reply a 409 uniqueness error. Answers the winner's index.
pub fn one_created_rest_conflict(replies: &[Reply]) -> usize {
    let winners: Vec<usize> = (0..replies.len())
        .filter(|&i| replies[i].status == 201)
        .collect();
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one create succeeds: {statuses:?}"
    );
    for (i, r) in replies.iter().enumerate() {
        if i != winners[0] {
            assert_scim_error(r, 409, Some("uniqueness"));
        }
    }
    winners[0]
}

#[test]
fn twenty_concurrent_creates_of_one_user_name_make_exactly_one_user() {
    let gw = Gateway::demo();
    let user = "race@acme.test";
    let replies = together(RACERS, |i| {
        let body = json!({"schemas": [CORE], "userName": user, "externalId": format!("ext-{i}"),
            "displayName": format!("Racer {i}"),
            "emails": [{"type": "work", "value": user, "primary": true}]});
        gw.scim("POST", "/Users", Some(&body))
    });
    let winner = one_created_rest_conflict(&replies);
    let created = replies[winner].json();

    let found = scim_lookup(&gw, user);
    assert_eq!(found["totalResults"], 1, "{found}");
    assert_eq!(
        found["Resources"][0], created,
        "the stored user is the winner's, whole"
    );
    assert_eq!(created["externalId"], format!("ext-{winner}"));
    let members = legacy_members(&gw, user);
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(
        Some(members[0]["id"].to_string().trim_matches('"')),
        created["id"].as_str()
    );
}

#[test]
fn concurrent_creates_differing_only_in_case_make_one_user() {
    let gw = Gateway::demo();
    let spellings = [
        "Case@Race.test",
        "case@race.test",
        "CASE@RACE.TEST",
        "cAsE@rAcE.tEsT",
    ];
    let replies = together(RACERS, |i| {
        let body = json!({"schemas": [CORE], "userName": spellings[i % spellings.len()], "externalId": format!("ext-{i}")});
        gw.scim("POST", "/Users", Some(&body))
    });
    one_created_rest_conflict(&replies);
    assert_eq!(scim_lookup(&gw, "case@race.test")["totalResults"], 1);
    assert_eq!(legacy_members(&gw, "case@race.test").len(), 1);
}

#[test]
fn concurrent_patches_of_one_user_lose_no_update() {
    let gw = Gateway::demo();
    let user = "patched@acme.test";
    let id = create(
        &gw,
        &json!({"schemas": [CORE], "userName": user, "emails": [{"type": "work", "value": user, "primary": true}]}),
    )["id"]
        .as_str()
        .expect("id")
        .to_string();
    let path = format!("/Users/{id}");

    // Each racer adds its own element.
    let replies = together(RACERS, |i| {
        let ops = json!([{"op": "add", "path": "emails",
            "value": [{"type": format!("t{i}"), "value": format!("u{i}@race.test")}]}]);
        gw.scim("PATCH", &path, Some(&patch_body(ops)))
    });
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let emails = gw.scim("GET", &path, None).json()["emails"].clone();
    let types: Vec<&str> = emails
        .as_array()
        .expect("emails")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    for i in 0..RACERS {
        let t = format!("t{i}");
        assert!(types.contains(&t.as_str()), "{t} was lost: {emails}");
    }
    assert_eq!(types.len(), RACERS + 1, "{emails}");

    // Each racer rewrites its own element through a filtered path, while others add more.
    let replies = together(RACERS, |i| {
        let ops = json!([
            {"op": "replace", "path": format!("emails[type eq \"t{i}\"].value"),
             "value": format!("v{i}@race.test")},
            {"op": "add", "path": "emails",
             "value": [{"type": format!("x{i}"), "value": format!("x{i}@race.test")}]}
        ]);
        gw.scim("PATCH", &path, Some(&patch_body(ops)))
    });
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let emails = gw.scim("GET", &path, None).json()["emails"].clone();
    let list = emails.as_array().expect("emails");
    assert_eq!(list.len(), 2 * RACERS + 1, "{emails}");
    for i in 0..RACERS {
        let of = |t: String| list.iter().find(|e| e["type"] == t.as_str()).cloned();
        assert_eq!(
            of(format!("t{i}")).map(|e| e["value"].clone()),
            Some(json!(format!("v{i}@race.test"))),
            "{emails}"
        );
        assert!(of(format!("x{i}")).is_some(), "x{i} was lost: {emails}");
    }
    assert_eq!(list[0]["value"], user, "the original element stays first");
}

pub fn etag(r: &Reply) -> String {
    let tag = r.header("etag").expect("ETag").to_string();
    assert_eq!(
        r.json()["meta"]["version"],
        tag.as_str(),
        "ETag is meta.version"
    );
    tag
}

pub fn conditional(
    gw: &Gateway,
    method: &str,
    path: &str,
    tag: &str,
    body: Option<&Value>,
) -> Reply {
    let auth = format!("Bearer {}", gw.token);
    let body = body.map(Value::to_string);
    let mut headers = vec![("Authorization", auth.as_str()), ("If-Match", tag)];
    if body.is_some() {
        headers.push(("Content-Type", "application/scim+json"));
    }
    gw.request(
        method,
        &format!("/scim/v2{path}"),
        &headers,
        body.as_deref().map(str::as_bytes),
    )
}

#[test]
fn if_match_guards_put_patch_and_delete() {
    let gw = Gateway::demo();
    let user = "etag@acme.test";
    let r = gw.scim(
        "POST",
        "/Users",
        Some(&json!({"schemas": [CORE], "userName": user, "displayName": "One"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let e1 = etag(&r);
    let id = r.json()["id"].as_str().expect("id").to_string();
    let path = format!("/Users/{id}");
    assert_eq!(etag(&gw.scim("GET", &path, None)), e1);

    let rename =
        |name: &str| patch_body(json!([{"op": "replace", "path": "displayName", "value": name}]));
    let r = gw.scim("PATCH", &path, Some(&rename("Two")));
    assert_eq!(r.status, 200, "{}", r.text());
    let e2 = etag(&r);
    assert_ne!(e1, e2, "a change changes the ETag");
    let current = gw.scim("GET", &path, None).json();

    // Stale: 412 with an error body, and nothing changes.
    let put = json!({"schemas": [CORE], "userName": user, "displayName": "Stale"});
    assert_scim_error(&conditional(&gw, "PUT", &path, &e1, Some(&put)), 412, None);
    assert_scim_error(
        &conditional(&gw, "PATCH", &path, &e1, Some(&rename("Stale"))),
        412,
        None,
    );
    assert_scim_error(&conditional(&gw, "DELETE", &path, &e1, None), 412, None);
    assert_scim_error(
        &conditional(
            &gw,
            "PATCH",
            &path,
            "W/\"0000000000000000\"",
            Some(&rename("Stale")),
        ),
        412,
        None,
    );
    assert_eq!(gw.scim("GET", &path, None).json(), current);

    // Current: accepted, and each success hands out the next ETag.
    let r = conditional(&gw, "PATCH", &path, &e2, Some(&rename("Three")));
    assert_eq!(r.status, 200, "{}", r.text());
    let e3 = etag(&r);
    assert_ne!(e3, e2);
    let r = conditional(
        &gw,
        "PUT",
        &path,
        &e3,
        Some(&json!({"schemas": [CORE], "userName": user, "displayName": "Four"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let e4 = etag(&r);
    assert_eq!(r.json()["displayName"], "Four");
    // A list that holds the current tag, and `*`, are accepted.
    let r = conditional(
        &gw,
        "PATCH",
        &path,
        &format!("W/\"nope\", {e4}"),
        Some(&rename("Five")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let e5 = etag(&r);
    let r = conditional(&gw, "PATCH", &path, "*", Some(&rename("Six")));
    assert_eq!(r.status, 200, "{}", r.text());
    let e6 = etag(&r);
    assert_scim_error(&conditional(&gw, "DELETE", &path, &e5, None), 412, None);
    let r = conditional(&gw, "DELETE", &path, &e6, None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_scim_error(&gw.scim("GET", &path, None), 404, None);
    assert_scim_error(&conditional(&gw, "DELETE", &path, &e6, None), 404, None);
}

#[test]
fn conditional_patches_racing_on_one_etag_let_exactly_one_through() {
    let gw = Gateway::demo();
    let r = gw.scim(
        "POST",
        "/Users",
        Some(&json!({"schemas": [CORE], "userName": "cas@acme.test"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let tag = etag(&r);
    let path = format!("/Users/{}", r.json()["id"].as_str().expect("id"));
    let replies = together(RACERS, |i| {
        let body = patch_body(json!([{"op": "replace", "path": "displayName",
            "value": format!("Racer {i}")}]));
        conditional(&gw, "PATCH", &path, &tag, Some(&body))
    });
    let winners: Vec<usize> = (0..RACERS).filter(|&i| replies[i].status == 200).collect();
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one conditional PATCH wins: {statuses:?}"
    );
    for (i, r) in replies.iter().enumerate() {
        if i != winners[0] {
            assert_scim_error(r, 412, None);
        }
    }
    let now = gw.scim("GET", &path, None).json();
    assert_eq!(now["displayName"], format!("Racer {}", winners[0]));
}

#[test]
fn a_create_retried_after_success_is_409_not_a_duplicate() {
    let gw = Gateway::demo();
    let user = "retry@acme.test";
    let body = json!({"schemas": [CORE], "userName": user, "externalId": "ext-retry", "displayName": "Retry",
        "emails": [{"type": "work", "value": user, "primary": true}]});
    let created = create(&gw, &body);
    for _ in 0..3 {
        assert_scim_error(
            &gw.scim("POST", "/Users", Some(&body)),
            409,
            Some("uniqueness"),
        );
    }
    let found = scim_lookup(&gw, user);
    assert_eq!(found["totalResults"], 1, "{found}");
    let id = created["id"].as_str().expect("id");
    assert_eq!(
        gw.scim("GET", &format!("/Users/{id}"), None).json(),
        created,
        "the retries changed nothing"
    );
    assert_eq!(legacy_members(&gw, user).len(), 1);
}

#[test]
fn concurrent_deletes_of_one_user_succeed_once() {
    let gw = Gateway::demo();
    let created = create(
        &gw,
        &json!({"schemas": [CORE], "userName": "doomed@acme.test"}),
    );
    let path = format!("/Users/{}", created["id"].as_str().expect("id"));
    let replies = together(RACERS, |_| gw.scim("DELETE", &path, None));
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 204).count(),
        1,
        "exactly one DELETE succeeds: {statuses:?}"
    );
    for r in replies.iter().filter(|r| r.status != 204) {
        assert_scim_error(r, 404, None);
    }
    assert_scim_error(&gw.scim("GET", &path, None), 404, None);
    assert_eq!(scim_lookup(&gw, "doomed@acme.test")["totalResults"], 0);
    assert!(legacy_members(&gw, "doomed@acme.test").is_empty());
}

/// Racing PATCHes that flip `active` (a separate backend call in the demo) and rename the user:
/// afterwards SCIM and the legacy service agree on both, and SCIM shows one racer's whole write.
#[test]
fn racing_activation_flips_leave_scim_and_the_backend_in_agreement() {
    let gw = Gateway::demo();
    let created = create(
        &gw,
        &json!({"schemas": [CORE], "userName": "flip@acme.test", "displayName": "Start"}),
    );
    let id = created["id"].as_str().expect("id").to_string();
    let path = format!("/Users/{id}");
    let replies = together(RACERS, |i| {
        let ops = json!([
            {"op": "replace", "path": "active", "value": i.is_multiple_of(2)},
            {"op": "replace", "path": "displayName", "value": format!("Racer {i}")}
        ]);
        gw.scim("PATCH", &path, Some(&patch_body(ops)))
    });
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let scim = gw.scim("GET", &path, None).json();
    let name = scim["displayName"].as_str().expect("displayName");
    let racer: usize = name
        .strip_prefix("Racer ")
        .and_then(|n| n.parse().ok())
        .expect("a racer's name");
    assert_eq!(
        scim["active"],
        racer.is_multiple_of(2),
        "one racer's whole write: {scim}"
    );
    let session = gw.login("admin@acme.test");
    let auth = format!("Bearer {session}");
    let native = gw
        .request(
            "GET",
            &format!("/api/teams/acme/members/{id}"),
            &[("Authorization", auth.as_str())],
            None,
        )
        .json();
    assert_eq!(native["display_name"], name, "{native}");
    let status = if racer.is_multiple_of(2) {
        "active"
    } else {
        "suspended"
    };
    assert_eq!(native["status"], status, "{native} vs {scim}");
}
