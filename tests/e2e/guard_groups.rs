//! The guard on group memberships, against the demo: a membership that group push made cannot
//! be left through the app, by any spelling of the route; memberships made in the app can; the
//! team's admins can still remove members; a membership SCIM removed is the member's own again.

use super::group_scenarios as groups;
use super::harness::Gateway;
use serde_json::json;

/// `DELETE path` with `session`.
fn delete(gw: &Gateway, session: &str, path: &str) -> super::http::Reply {
    let auth = format!("Bearer {session}");
    gw.request("DELETE", path, &[("Authorization", auth.as_str())], None)
}

/// `PUT path` with `session` and no body.
fn put(gw: &Gateway, session: &str, path: &str) -> super::http::Reply {
    let auth = format!("Bearer {session}");
    gw.request("PUT", path, &[("Authorization", auth.as_str())], None)
}

fn assert_blocked(r: &super::http::Reply, rule: &str) {
    assert_eq!(r.status, 403, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"], "managed_by_identity_provider", "{body}");
    assert_eq!(body["rule"], rule, "{body}");
}

/// The id of the seeded project `Launch` (members: the admin and bob, added in the app).
fn launch(gw: &Gateway) -> String {
    let found = groups::lookup(gw, "displayName eq \"Launch\"");
    found["Resources"][0]["id"]
        .as_str()
        .expect("Launch")
        .to_string()
}

#[test]
fn a_pushed_membership_cannot_be_left_and_an_app_membership_can() {
    let gw = Gateway::demo();
    let bob = gw.id_of("bob@acme.test");
    let carol = gw.id_of("carol@acme.test");
    let platform = groups::create(&gw, "Platform", "ext-platform");
    groups::patch(
        &gw,
        &platform,
        json!([{"op": "add", "path": "members", "value": [{"value": bob}]}]),
    );
    let admin = gw.login("admin@acme.test");
    let r = put(
        &gw,
        &admin,
        &format!("/api/teams/acme/projects/{platform}/members/{carol}"),
    );
    assert!(
        r.status < 300,
        "the admin adds carol in the app: {}",
        r.text()
    );

    let bob_session = gw.login("bob@acme.test");
    for path in [
        format!("/api/projects/{platform}/members/me"),
        format!("/api/projects/{platform}/members/{bob}"),
        format!("/api/projects/00{platform}/members/ME"),
        format!("/api/projects/{platform}/members/%6De"),
    ] {
        let r = delete(&gw, &bob_session, &path);
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert_blocked(&r, "leave-project");
    }
    for path in [
        format!("/api//projects/./{platform}/members/me/"),
        format!("/api/projects/{platform}/members/..%2Fmembers/me"),
    ] {
        let r = delete(&gw, &bob_session, &path);
        assert!(matches!(r.status, 400 | 403), "{path}: {}", r.text());
    }
    assert!(
        groups::members(&gw, &platform).contains(&bob),
        "bob is still a member"
    );

    // Bob's account itself is not managed: his other memberships are his own.
    let r = delete(
        &gw,
        &bob_session,
        &format!("/api/projects/{}/members/me", launch(&gw)),
    );
    assert_eq!(
        r.status,
        204,
        "leaving a project joined in the app: {}",
        r.text()
    );
    // Carol joined Platform in the app: she may leave it.
    let carol_session = gw.login("carol@acme.test");
    let r = delete(
        &gw,
        &carol_session,
        &format!("/api/projects/{platform}/members/me"),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(!groups::members(&gw, &platform).contains(&carol));
}

#[test]
fn an_admin_removes_members_but_cannot_leave_a_pushed_membership() {
    let gw = Gateway::demo();
    let bob = gw.id_of("bob@acme.test");
    let admin_id = gw.id_of("admin@acme.test");
    let platform = groups::create(&gw, "Platform", "ext-platform");
    let both = json!([{"value": bob}, {"value": admin_id}]);
    groups::patch(
        &gw,
        &platform,
        json!([{"op": "add", "path": "members", "value": both}]),
    );
    let admin = gw.login("admin@acme.test");

    let r = delete(
        &gw,
        &admin,
        &format!("/api/teams/acme/projects/{platform}/members/{bob}"),
    );
    assert_eq!(r.status, 204, "an admin removes a member: {}", r.text());
    assert!(!groups::members(&gw, &platform).contains(&bob));
    let r = delete(
        &gw,
        &admin,
        &format!("/api/teams/acme/projects/{platform}/members/{admin_id}"),
    );
    assert_blocked(&r, "leave-project-as-admin");
    let r = delete(&gw, &admin, &format!("/api/projects/{platform}/members/me"));
    assert_blocked(&r, "leave-project");
    assert!(groups::members(&gw, &platform).contains(&admin_id));
}

#[test]
fn a_membership_scim_removed_or_a_group_scim_deleted_is_no_longer_guarded() {
    let gw = Gateway::demo();
    let bob = gw.id_of("bob@acme.test");
    let platform = groups::create(&gw, "Platform", "ext-platform");
    let add = json!([{"op": "add", "path": "members", "value": [{"value": bob}]}]);
    groups::patch(&gw, &platform, add.clone());
    let bob_session = gw.login("bob@acme.test");
    let leave = format!("/api/projects/{platform}/members/me");
    assert_blocked(&delete(&gw, &bob_session, &leave), "leave-project");

    // Removed by SCIM, then added back in the app: the membership is bob's own.
    groups::patch(
        &gw,
        &platform,
        json!([{"op": "remove", "path": format!("members[value eq \"{bob}\"]")}]),
    );
    let admin = gw.login("admin@acme.test");
    let r = put(
        &gw,
        &admin,
        &format!("/api/teams/acme/projects/{platform}/members/{bob}"),
    );
    assert!(r.status < 300, "{}", r.text());
    assert_eq!(delete(&gw, &bob_session, &leave).status, 204);

    // A second pushed group, then deleted by SCIM: nothing of it stays guarded.
    let ops = groups::create(&gw, "Ops", "ext-ops");
    groups::patch(&gw, &ops, add);
    let leave_ops = format!("/api/projects/{ops}/members/me");
    assert_blocked(&delete(&gw, &bob_session, &leave_ops), "leave-project");
    assert_eq!(
        gw.scim("DELETE", &format!("/Groups/{ops}"), None).status,
        204
    );
    let r = delete(&gw, &bob_session, &leave_ops);
    assert_ne!(r.status, 403, "{}", r.text());
}
