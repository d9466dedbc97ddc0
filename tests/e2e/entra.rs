//! Every Entra ID request shape of `shared/azure-ad.md`, plus Okta's, against the demo.

use super::harness::{assert_scim_error, enc, Gateway};
use super::http;
use serde_json::{json, Value};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn create_body(user: &str, external_id: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": external_id,
        "userName": user,
        "active": true,
        "displayName": "Alice Smith",
        "emails": [{"primary": true, "type": "work", "value": user}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Alice Smith", "familyName": "Smith", "givenName": "Alice"},
        "roles": [],
        "addresses": null,
        ENTERPRISE: {"department": "Sales", "employeeNumber": "701984", "manager": null}
    })
}

fn filter(gw: &Gateway, f: &str) -> Value {
    let r = gw.scim("GET", &format!("/Users?filter={}", enc(f)), None);
    assert_eq!(r.status, 200, "{f}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    r.json()
}

#[test]
fn test_connection_gets_an_empty_list_response() {
    let gw = Gateway::demo();
    for path in [
        "/Users?filter=userName+eq+%22f7a1c2d4-9b7e-4c47-8f3a-1f2e3d4c5b6a%22",
        "/Users?aadOptscim062020&filter=userName+eq+%22f7a1c2d4-9b7e-4c47-8f3a-1f2e3d4c5b6a%22",
        "/Users?filter=userName%20eq%20%22nobody%40contoso.com%22&aadOptscim062020",
    ] {
        let r = gw.scim("GET", path, None);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(
            r.json(),
            json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"itemsPerPage":0,"startIndex":1,"Resources":[]})
        );
    }
    // Tenant URL entered with a trailing slash.
    let r = gw.scim("GET", "//Users?filter=userName+eq+%22x%22", None);
    assert_eq!(r.status, 200, "{}", r.text());
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
    let gw = Gateway::demo();
    let r = gw.scim(
        "POST",
        "/Users",
        Some(&create_body("alice@contoso.com", "0a21f0f2-8d2a")),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(r.header("location"), created["meta"]["location"].as_str());
    for key in ["created", "lastModified", "location", "version"] {
        assert!(created["meta"][key].is_string(), "meta.{key} in {created}");
    }
    assert_eq!(created["meta"]["resourceType"], "User");
    assert_eq!(created["externalId"], "0a21f0f2-8d2a");
    assert_eq!(
        created["emails"],
        json!([{"primary": true, "type": "work", "value": "alice@contoso.com"}])
    );
    assert_eq!(
        created[ENTERPRISE],
        json!({"department": "Sales", "employeeNumber": "701984"})
    );
    assert_eq!(created["name"]["formatted"], "Alice Smith");
    assert!(created.get("addresses").is_none() && created.get("roles").is_none());
    let got = gw.scim("GET", &format!("/Users/{id}"), None);
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), created, "what SCIM wrote comes back exactly");
    let dup = gw.scim(
        "POST",
        "/Users",
        Some(&create_body("alice@contoso.com", "other")),
    );
    assert_scim_error(&dup, 409, Some("uniqueness"));
}

#[test]
fn lookups_by_every_matching_attribute() {
    let gw = Gateway::demo();
    let r = gw.scim(
        "POST",
        "/Users",
        Some(&create_body("alice@contoso.com", "ext-alice")),
    );
    let id = r.json()["id"].as_str().unwrap().to_string();
    for f in [
        "userName eq \"alice@contoso.com\"",
        "USERNAME EQ \"Alice@Contoso.com\"",
        "externalId eq \"ext-alice\"",
        "emails[type eq \"work\"].value eq \"alice@contoso.com\"",
        "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"alice@contoso.com\"",
        "userName eq \"alice@contoso.com\" and active eq true",
    ] {
        let body = filter(&gw, f);
        assert_eq!(body["totalResults"], 1, "{f}: {body}");
        assert_eq!(body["Resources"][0]["id"], id.as_str(), "{f}");
    }
    for f in [
        "externalId eq \"EXT-ALICE\"",
        "userName eq \"bob@contoso.com\"",
        "emails[type eq \"home\"].value eq \"alice@contoso.com\"",
    ] {
        assert_eq!(filter(&gw, f)["totalResults"], 0, "{f}");
    }
    // Seeded members that SCIM never wrote are found too.
    assert_eq!(
        filter(&gw, "userName eq \"bob@acme.test\"")["totalResults"],
        1
    );
}

#[test]
fn invalid_filters_are_400_never_an_unfiltered_list() {
    let gw = Gateway::demo();
    for f in [
        "userName eq",
        "userName xx \"a\"",
        "nosuch eq \"a\"",
        "(userName eq \"a\"",
        "userName eq \"a\" garbage",
        "active gt true",
    ] {
        let r = gw.scim("GET", &format!("/Users?filter={}", enc(f)), None);
        assert_scim_error(&r, 400, Some("invalidFilter"));
    }
}

fn patch(gw: &Gateway, id: &str, ops: Value) -> Value {
    let body =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    let r = gw.scim("PATCH", &format!("/Users/{id}"), Some(&body));
    assert_eq!(r.status, 200, "{}", r.text());
    let patched = r.json();
    let got = gw.scim("GET", &format!("/Users/{id}"), None).json();
    assert_eq!(
        got, patched,
        "PATCH answers the full resource, as GET shows it"
    );
    patched
}

#[test]
fn patch_default_dialect_and_disable_reenable() {
    let gw = Gateway::demo();
    let id = gw
        .scim(
            "POST",
            "/Users",
            Some(&create_body("alice@contoso.com", "e1")),
        )
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mgr = gw.id_of("admin@acme.test");
    let u = patch(
        &gw,
        &id,
        json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"},
            {"op": "Replace", "path": "name.familyName", "value": "Smyth"},
            {"op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": "Ops"},
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": mgr}
        ]),
    );
    assert_eq!(u["emails"][0]["value"], "new@contoso.com");
    assert_eq!(u["name"]["familyName"], "Smyth");
    assert_eq!(u[ENTERPRISE]["department"], "Ops");
    assert_eq!(u[ENTERPRISE]["manager"], json!({"value": mgr}));
    assert_eq!(u["active"], false);
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
    // Disabled users stay readable; re-enable with Add "True".
    let u = patch(
        &gw,
        &id,
        json!([{"op": "Add", "path": "active", "value": "True"}]),
    );
    assert_eq!(u["active"], true);
    // A PATCH that changes nothing succeeds.
    let again = patch(
        &gw,
        &id,
        json!([{"op": "replace", "path": "active", "value": true}]),
    );
    assert_eq!(again["active"], true);
}

#[test]
fn patch_aad_opt_dialect_with_pathless_value_object() {
    let gw = Gateway::demo();
    let id = gw
        .scim(
            "POST",
            "/Users",
            Some(&create_body("alice@contoso.com", "e1")),
        )
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let u = patch(
        &gw,
        &id,
        json!([{"op": "replace", "value": {
            "displayName": "Alice S", "name.givenName": "Alicia", "name.familyName": "Smyth",
            format!("{ENTERPRISE}:employeeNumber"): "42", "active": false}}]),
    );
    assert_eq!(u["displayName"], "Alice S");
    assert_eq!(u["name"]["givenName"], "Alicia");
    assert_eq!(u["name"]["familyName"], "Smyth");
    assert_eq!(u["name"]["formatted"], "Alice Smith");
    assert_eq!(u[ENTERPRISE]["employeeNumber"], "42");
    assert_eq!(u["active"], false);
}

#[test]
fn manager_shapes_all_read_back_as_value_object() {
    let gw = Gateway::demo();
    let id = gw
        .scim(
            "POST",
            "/Users",
            Some(&create_body("alice@contoso.com", "e1")),
        )
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("{ENTERPRISE}:manager");
    for value in [
        json!("m1"),
        json!({"value": "m2"}),
        json!([{"$ref": "../Users/m3", "value": "m3"}]),
    ] {
        let expected = match &value {
            Value::String(s) => s.clone(),
            Value::Object(o) => o["value"].as_str().unwrap().to_string(),
            _ => "m3".to_string(),
        };
        let u = patch(
            &gw,
            &id,
            json!([{"op": "Replace", "path": path, "value": value}]),
        );
        assert_eq!(u[ENTERPRISE]["manager"], json!({"value": expected}));
    }
    let u = patch(
        &gw,
        &id,
        json!([{"op": "Replace", "path": path, "value": ""}]),
    );
    assert!(u[ENTERPRISE].get("manager").is_none(), "{u}");
}

#[test]
fn filtered_path_creates_missing_element() {
    let gw = Gateway::demo();
    let mut body = create_body("alice@contoso.com", "e1");
    body.as_object_mut().unwrap().remove("emails");
    let id = gw.scim("POST", "/Users", Some(&body)).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let u = patch(
        &gw,
        &id,
        json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "w@contoso.com"}]),
    );
    assert_eq!(
        u["emails"],
        json!([{"type": "work", "value": "w@contoso.com"}])
    );
    let found = filter(&gw, "emails[type eq \"work\"].value eq \"w@contoso.com\"");
    assert_eq!(found["totalResults"], 1);
}

#[test]
fn read_only_attributes_give_mutability() {
    let gw = Gateway::demo();
    let id = gw
        .scim(
            "POST",
            "/Users",
            Some(&create_body("alice@contoso.com", "e1")),
        )
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for path in ["id", "meta.created"] {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": path, "value": "x"}]});
        let r = gw.scim("PATCH", &format!("/Users/{id}"), Some(&body));
        assert_scim_error(&r, 400, Some("mutability"));
    }
}

#[test]
fn delete_then_404() {
    let gw = Gateway::demo();
    let id = gw
        .scim(
            "POST",
            "/Users",
            Some(&create_body("alice@contoso.com", "e1")),
        )
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = gw.scim("DELETE", &format!("/Users/{id}"), None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_scim_error(&gw.scim("GET", &format!("/Users/{id}"), None), 404, None);
    assert_scim_error(&gw.scim("DELETE", &format!("/Users/{id}"), None), 404, None);
    assert_eq!(filter(&gw, "externalId eq \"e1\"")["totalResults"], 0);
    assert_scim_error(&gw.scim("GET", "/Users/999999", None), 404, None);
}

#[test]
fn paging_and_okta_test_connection() {
    let gw = Gateway::demo();
    for i in 0..5 {
        let r = gw.scim(
            "POST",
            "/Users",
            Some(&create_body(&format!("u{i}@contoso.com"), &format!("e{i}"))),
        );
        assert_eq!(r.status, 201);
    }
    // 3 seeded + 5 created.
    let r = gw.scim("GET", "/Users?startIndex=1&count=2", None).json();
    assert_eq!(r["totalResults"], 8);
    assert_eq!(r["itemsPerPage"], 2);
    assert_eq!(r["startIndex"], 1);
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let page = gw
            .scim("GET", &format!("/Users?startIndex={start}&count=3"), None)
            .json();
        let items = page["Resources"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        seen.extend(items.iter().map(|u| u["id"].as_str().unwrap().to_string()));
        start += items.len();
    }
    assert_eq!(seen.len(), 8);
    seen.dedup();
    assert_eq!(seen.len(), 8, "no user twice across pages");
    let odd = gw.scim("GET", "/Users?startIndex=2&count=3", None).json();
    assert_eq!(odd["Resources"][0]["id"].as_str().unwrap(), seen[1]);
    let filtered = gw
        .scim(
            "GET",
            &format!("/Users?filter={}&startIndex=2&count=2", enc("emails pr")),
            None,
        )
        .json();
    assert_eq!(filtered["totalResults"], 5);
    assert_eq!(filtered["itemsPerPage"], 2);
    let count0 = gw.scim("GET", "/Users?count=0", None).json();
    assert_eq!(count0["totalResults"], 8);
    assert_eq!(count0["Resources"], json!([]));
}

#[test]
fn put_replaces_the_user() {
    let gw = Gateway::demo();
    let created = gw
        .scim(
            "POST",
            "/Users",
            Some(&create_body("alice@contoso.com", "e1")),
        )
        .json();
    let id = created["id"].as_str().unwrap();
    let mut full = create_body("alice@contoso.com", "e1");
    full["name"] = json!({"givenName": "Al", "familyName": "Smith"});
    full["active"] = json!(false);
    full[ENTERPRISE] = json!({"costCenter": "CC1"});
    let r = gw.scim("PUT", &format!("/Users/{id}"), Some(&full));
    assert_eq!(r.status, 200, "{}", r.text());
    let u = r.json();
    assert_eq!(u["name"], json!({"givenName": "Al", "familyName": "Smith"}));
    assert_eq!(u["active"], false);
    assert_eq!(u[ENTERPRISE], json!({"costCenter": "CC1"}));
    assert_eq!(gw.scim("GET", &format!("/Users/{id}"), None).json(), u);
}

#[test]
fn discovery_endpoints_and_405() {
    let gw = Gateway::demo();
    let spc = gw.scim("GET", "/ServiceProviderConfig", None).json();
    assert_eq!(spc["patch"]["supported"], true);
    let schemas = gw.scim("GET", "/Schemas", None).json();
    assert_eq!(schemas["totalResults"], 2);
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
    assert_scim_error(&gw.scim("GET", "/Groups", None), 404, None);
}

#[test]
fn everything_else_is_proxied_unchanged() {
    let gw = Gateway::demo();
    let session = gw.login("bob@acme.test");
    let auth = format!("Bearer {session}");
    let me = gw.request("GET", "/api/me", &[("Authorization", auth.as_str())], None);
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["email"], "bob@acme.test");
    let missing = gw.request("GET", "/api/nope", &[], None);
    assert_eq!(missing.status, 404);
    let _ = http::send(gw.addr, "GET", "/", &[], None);
}

#[test]
fn bad_bodies_get_scim_errors_and_nothing_is_written() {
    let gw = Gateway::demo();
    let auth = format!("Bearer {}", gw.token);
    let h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/scim+json"),
    ];
    for body in [
        &b"{not json"[..],
        b"",
        b"[1,2]",
        b"{\"userName\": 5}",
        b"{\"userName\":\"a@b.c\",\"userName\":\"x@y.z\"}",
    ] {
        let r = gw.request("POST", "/scim/v2/Users", &h, Some(body));
        assert_eq!(
            r.status,
            400,
            "{:?}: {}",
            String::from_utf8_lossy(body),
            r.text()
        );
        assert_eq!(r.header("content-type"), Some("application/scim+json"));
    }
    assert_eq!(filter(&gw, "userName eq \"a@b.c\"")["totalResults"], 0);
}
