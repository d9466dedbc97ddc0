//! Every Entra ID request shape of `shared/azure-ad.md`, plus Okta's, against the demo.

use super::harness::{assert_scim_error, Gateway};
use super::http;
use super::races::legacy_members;
use super::scenarios::{self, filter};
use serde_json::{json, Value};

/// The legacy service's one member with `email` (its own view, read with an admin session).
fn legacy_member(gw: &Gateway, email: &str) -> Value {
    let members = legacy_members(gw, email);
    assert_eq!(members.len(), 1, "{members:?}");
    members[0].clone()
}

#[test]
fn test_connection_gets_an_empty_list_response() {
    scenarios::test_connection(&Gateway::demo());
}

#[test]
fn bad_or_missing_keys_get_401_with_www_authenticate() {
    let gw = Gateway::demo();
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![("Authorization", "Bearer scimgate_wrong".into())],
        vec![("Authorization", format!("Basic {}", gw.token))],
        vec![
            ("Authorization", format!("Bearer {}", gw.token)),
            ("Authorization", format!("Bearer {}", gw.token)),
        ],
    ];
    for headers in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = gw.request("GET", "/scim/v2/Users", &h, None);
        assert_scim_error(&r, 401, None);
        assert!(r
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer")));
    }
    let r = gw.request(
        "GET",
        &format!("/scim/v2/Users?access_token={}", gw.token),
        &[],
        None,
    );
    assert_scim_error(&r, 401, None);
    let lower = format!("bearer {}", gw.token);
    let r = gw.request(
        "GET",
        "/scim/v2/Users",
        &[("authorization", lower.as_str())],
        None,
    );
    assert_eq!(r.status, 200);
}

#[test]
fn create_then_read_back_exactly_and_409_on_duplicate() {
    scenarios::create_read_back_and_conflict(&Gateway::demo());
}

#[test]
fn lookups_by_every_matching_attribute() {
    let gw = Gateway::demo();
    scenarios::lookups(&gw);
    // Seeded members that SCIM never wrote are found too.
    assert_eq!(
        filter(&gw, "userName eq \"bob@acme.test\"")["totalResults"],
        1
    );
}

#[test]
fn invalid_filters_are_400_never_an_unfiltered_list() {
    scenarios::invalid_filters(&Gateway::demo());
}

#[test]
fn patch_default_dialect_and_disable_reenable() {
    let gw = Gateway::demo();
    let mgr = gw.id_of("admin@acme.test");
    let id = scenarios::disable_with_default_dialect(&gw, &mgr);
    // The legacy service really holds the change.
    let admin = gw.login("admin@acme.test");
    let auth = format!("Bearer {admin}");
    let native = gw
        .request(
            "GET",
            &format!("/api/teams/acme/members/{id}"),
            &[("Authorization", auth.as_str())],
            None,
        )
        .json();
    assert_eq!(native["status"], "suspended");
    assert_eq!(native["last_name"], "Smyth");
    // Disabled users stay readable; re-enable with Add "True"; a PATCH that changes nothing
    // succeeds.
    scenarios::reenable(&gw, &id);
}

#[test]
fn patch_aad_opt_dialect_with_pathless_value_object() {
    scenarios::patch_aad_opt_dialect(&Gateway::demo());
}

#[test]
fn manager_shapes_all_read_back_as_value_object() {
    scenarios::manager_shapes(&Gateway::demo());
}

#[test]
fn filtered_path_creates_missing_element() {
    scenarios::filtered_path_creates_missing_element(&Gateway::demo());
}

#[test]
fn read_only_attributes_give_mutability() {
    scenarios::read_only_attributes(&Gateway::demo());
}

#[test]
fn delete_then_404() {
    scenarios::delete_then_404(&Gateway::demo(), "999999");
}

#[test]
fn paging_and_okta_test_connection() {
    // 3 seeded members + 5 created, 3 a page.
    scenarios::paging(&Gateway::demo(), 3, 5, 3);
}

#[test]
fn put_replaces_the_user() {
    let gw = Gateway::demo();
    let id = scenarios::put_replaces(&gw);
    assert_eq!(
        legacy_member(&gw, "alice@contoso.com")["status"],
        "suspended"
    );
    // `active` maps to `status` with `default = true`: a PUT without it writes the default, and
    // the user is active again (the default is not reported back as if the client had sent it).
    let u = scenarios::put_without_active(&gw, &id);
    assert!(u.get("active").is_none(), "{u}");
    let member = legacy_member(&gw, "alice@contoso.com");
    assert_eq!(member["status"], "active", "{member}");
    assert_eq!(member["first_name"], "Alison", "{member}");
}

#[test]
fn discovery_endpoints_and_405() {
    let gw = Gateway::demo();
    let spc = gw.scim("GET", "/ServiceProviderConfig", None).json();
    assert_eq!(spc["patch"]["supported"], true);
    let schemas = gw.scim("GET", "/Schemas", None).json();
    assert_eq!(
        schemas["totalResults"], 3,
        "User, EnterpriseUser and Group: {schemas}"
    );
    let rt = gw.scim("GET", "/ResourceTypes", None).json();
    assert_eq!(rt["Resources"][0]["endpoint"], "/Users");
    let one = gw.scim(
        "GET",
        "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
        None,
    );
    assert_eq!(one.status, 200);
    for path in ["/ServiceProviderConfig", "/Schemas", "/ResourceTypes"] {
        assert_scim_error(&gw.scim("POST", path, Some(&json!({}))), 405, None);
    }
    assert_scim_error(&gw.scim("GET", "/Groups/999999", None), 404, None);
}

#[test]
fn everything_else_is_proxied_unchanged() {
    let gw = Gateway::demo();
    let legacy = gw.backends[0];
    let admin = format!("Bearer {}", gw.login("admin@acme.test"));
    let bob = format!("Bearer {}", gw.login("bob@acme.test"));
    // The same status, content type and bytes as the legacy service answers itself.
    for (auth, target) in [
        (&bob, "/api/me"),
        (
            &admin,
            "/api/teams/acme/members?email=bob%40acme.test&per_page=5",
        ),
        (&bob, "/api/teams/acme/members"),
        (&bob, "/api/nope?x=%2F"),
        (&bob, "/"),
    ] {
        let h = [("Authorization", auth.as_str())];
        let via = gw.request("GET", target, &h, None);
        let direct = http::send(legacy, "GET", target, &h, None);
        assert_eq!(
            (via.status, via.header("content-type"), via.text()),
            (direct.status, direct.header("content-type"), direct.text()),
            "{target}"
        );
    }
    // A write the guard does not protect reaches the service: the member exists there, unmanaged
    // (not SCIM-written: no externalId), and SCIM finds it.
    let body = json!({"email": "erin@acme.test", "first_name": "Erin", "last_name": "Ng"});
    let r = gw.request(
        "POST",
        "/api/teams/acme/members",
        &[
            ("Authorization", admin.as_str()),
            ("Content-Type", "application/json"),
        ],
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let member = legacy_member(&gw, "erin@acme.test");
    assert_eq!(
        (member["first_name"].clone(), member["last_name"].clone()),
        (json!("Erin"), json!("Ng"))
    );
    let found = filter(&gw, "userName eq \"erin@acme.test\"");
    assert_eq!(found["totalResults"], 1, "{found}");
    assert_eq!(
        found["Resources"][0]["id"],
        r.json()["id"].to_string().trim_matches('"')
    );
    assert!(found["Resources"][0].get("externalId").is_none(), "{found}");
}

#[test]
fn bad_bodies_get_scim_errors_and_nothing_is_written() {
    scenarios::bad_bodies(&Gateway::demo());
}

#[test]
fn a_filtered_sub_attribute_remove_leaves_the_other_elements_intact() {
    let gw = Gateway::demo();
    let mut body = scenarios::create_body("dana@contoso.com", "e-dana");
    body["emails"] = json!([
        {"type": "home", "value": "dana@home.test", "display": "Home"},
        {"type": "work", "value": "dana@contoso.com", "display": "Work", "primary": true},
        {"type": "other", "value": "dana@other.test", "display": "Other"},
        {"type": "work", "value": "d.w@contoso.com", "display": "Work 2"}
    ]);
    let r = gw.scim("POST", "/Users", Some(&body));
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    let patched = scenarios::patch(
        &gw,
        &id,
        json!([{"op": "remove", "path": "emails[type eq \"work\"].display"}]),
    );
    assert_eq!(
        patched["emails"],
        json!([
            {"type": "home", "value": "dana@home.test", "display": "Home"},
            {"type": "work", "value": "dana@contoso.com", "primary": true},
            {"type": "other", "value": "dana@other.test", "display": "Other"},
            {"type": "work", "value": "d.w@contoso.com"}
        ]),
        "only the work elements lose display, every other element and attribute stays"
    );
    assert_eq!(
        legacy_member(&gw, "dana@contoso.com")["email"],
        "dana@contoso.com"
    );
}
