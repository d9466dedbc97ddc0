//! The self-service guard against the demo: SCIM-managed members cannot change their password or
//! email or leave the team; unmanaged members can; admins can still remove managed members; a
//! member SCIM deleted is no longer guarded.

use super::harness::{Gateway, PASSWORD};
use serde_json::{json, Value};

/// Links a seeded member to SCIM the way Entra does: lookup by userName, then a PATCH.
pub fn link_by_scim(gw: &Gateway, email: &str) -> String {
    let id = gw.id_of(email);
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "externalId", "value": format!("aad-{id}")}]});
    let r = gw.scim("PATCH", &format!("/Users/{id}"), Some(&patch));
    assert_eq!(r.status, 200, "{}", r.text());
    id
}

fn call(
    gw: &Gateway,
    session: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> super::http::Reply {
    let auth = format!("Bearer {session}");
    let body = body.map(|b| b.to_string());
    let mut headers = vec![("Authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    gw.request(method, path, &headers, body.as_deref().map(str::as_bytes))
}

fn change_password(gw: &Gateway, session: &str) -> u16 {
    let body = json!({"current_password": PASSWORD, "new_password": "n3w-Passw0rd!"});
    call(gw, session, "PUT", "/api/me/password", Some(body)).status
}

fn assert_blocked(r: &super::http::Reply, rule: &str) {
    assert_eq!(r.status, 403, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"], "managed_by_identity_provider", "{body}");
    assert_eq!(body["rule"], rule);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("identity provider"));
}

#[test]
fn managed_member_is_blocked_on_each_action_and_unmanaged_is_not() {
    let gw = Gateway::demo();
    let bob = link_by_scim(&gw, "bob@acme.test");
    let bob_session = gw.login("bob@acme.test");
    let r = call(
        &gw,
        &bob_session,
        "PUT",
        "/api/me/password",
        Some(json!({"current_password": PASSWORD, "new_password": "x-new-pass"})),
    );
    assert_blocked(&r, "change-password");
    let r = call(
        &gw,
        &bob_session,
        "PUT",
        "/api/me/email",
        Some(json!({"email": "bob2@acme.test"})),
    );
    assert_blocked(&r, "change-email");
    let r = call(
        &gw,
        &bob_session,
        "PATCH",
        &format!("/api/users/{bob}"),
        Some(json!({"email": "bob3@acme.test"})),
    );
    assert_blocked(&r, "change-email-in-profile");
    let r = call(
        &gw,
        &bob_session,
        "DELETE",
        "/api/teams/acme/members/me",
        None,
    );
    assert_blocked(&r, "leave-team");
    let r = call(
        &gw,
        &bob_session,
        "DELETE",
        &format!("/api/teams/acme/members/{bob}"),
        None,
    );
    assert_blocked(&r, "leave-team");
    // Profile changes without email pass.
    let r = call(
        &gw,
        &bob_session,
        "PATCH",
        &format!("/api/users/{bob}"),
        Some(json!({"first_name": "Robert"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["first_name"], "Robert");
    // Nothing changed: bob still logs in with the old password, same email, still a member.
    let me = call(&gw, &gw.login("bob@acme.test"), "GET", "/api/me", None).json();
    assert_eq!(me["email"], "bob@acme.test");
    // Carol is not managed: she can change her password.
    let carol = gw.login("carol@acme.test");
    assert_eq!(change_password(&gw, &carol), 204);
}

#[test]
fn admin_can_remove_a_managed_member_and_scim_delete_unguards() {
    let gw = Gateway::demo();
    let bob = link_by_scim(&gw, "bob@acme.test");
    let admin = gw.login("admin@acme.test");
    let r = call(
        &gw,
        &admin,
        "DELETE",
        &format!("/api/teams/acme/members/{bob}"),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());

    // Linked by SCIM, guarded on the very next request; after SCIM deletes the account the
    // gateway no longer treats it as managed (the session dies with the account: 401, not 403).
    let carol = link_by_scim(&gw, "carol@acme.test");
    let session = gw.login("carol@acme.test");
    assert_eq!(change_password(&gw, &session), 403);
    let r = gw.scim("DELETE", &format!("/Users/{carol}"), None);
    assert_eq!(r.status, 204);
    assert_eq!(change_password(&gw, &session), 401);
}

#[test]
fn unidentified_callers_fail_closed() {
    let gw = Gateway::demo();
    link_by_scim(&gw, "bob@acme.test");
    let r = gw.request(
        "PUT",
        "/api/me/password",
        &[("Content-Type", "application/json")],
        Some(b"{}"),
    );
    assert_eq!(r.status, 401, "{}", r.text());
    let r = call(
        &gw,
        "not-a-session",
        "DELETE",
        "/api/teams/acme/members/me",
        None,
    );
    assert_eq!(r.status, 401, "{}", r.text());
}
