//! SCIM scenarios shared by the tests of every backend: each drives a gateway through the Entra ID
//! (or Okta) request shapes of `shared/azure-ad.md` and asserts only what SCIM shows, so the same
//! body holds whichever backend is behind the gateway.

use super::harness::{assert_scim_error, enc, Gateway};
use serde_json::{json, Value};
use std::collections::HashSet;

/// The enterprise extension's schema URN.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Entra's create body for Alice Smith, with `user` as userName and work email.
pub fn create_body(user: &str, external_id: &str) -> Value {
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

/// Creates a user from [`create_body`] (201 expected); answers its id.
pub fn create(gw: &Gateway, user: &str, external_id: &str) -> String {
    let r = gw.scim("POST", "/Users", Some(&create_body(user, external_id)));
    assert_eq!(r.status, 201, "{user}: {}", r.text());
    r.json()["id"].as_str().expect("id").to_string()
}

/// `GET /Users?filter=…` (200 expected); answers the ListResponse.
pub fn filter(gw: &Gateway, f: &str) -> Value {
    let r = gw.scim("GET", &format!("/Users?filter={}", enc(f)), None);
    assert_eq!(r.status, 200, "{f}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    r.json()
}

/// A PATCH with `ops` (200 expected); checks that GET shows what PATCH answered and answers it.
pub fn patch(gw: &Gateway, id: &str, ops: Value) -> Value {
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

/// Entra's Test Connection (a lookup of a random GUID, with and without `aadOptscim062020`,
/// and a Tenant URL with a trailing slash) gets an empty ListResponse.
pub fn test_connection(gw: &Gateway) {
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
    let r = gw.scim("GET", "//Users?filter=userName+eq+%22x%22", None);
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Creates alice@contoso.com: 201 with everything written, the same on GET, then 409 on a
/// second create of the same userName. Answers the created resource.
pub fn create_read_back_and_conflict(gw: &Gateway) -> Value {
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
    created
}

/// Creates alice@contoso.com (externalId `ext-alice`) and finds her by every matching attribute
/// Entra uses, and nobody with near misses. Answers her id.
pub fn lookups(gw: &Gateway) -> String {
    let id = create(gw, "alice@contoso.com", "ext-alice");
    for f in [
        "userName eq \"alice@contoso.com\"",
        "USERNAME EQ \"Alice@Contoso.com\"",
        "externalId eq \"ext-alice\"",
        "emails[type eq \"work\"].value eq \"alice@contoso.com\"",
        "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"alice@contoso.com\"",
        "userName eq \"alice@contoso.com\" and active eq true",
    ] {
        let body = filter(gw, f);
        assert_eq!(body["totalResults"], 1, "{f}: {body}");
        assert_eq!(body["Resources"][0]["id"], id.as_str(), "{f}");
    }
    for f in [
        "externalId eq \"EXT-ALICE\"",
        "userName eq \"bob@contoso.com\"",
        "emails[type eq \"home\"].value eq \"alice@contoso.com\"",
    ] {
        assert_eq!(filter(gw, f)["totalResults"], 0, "{f}");
    }
    id
}

/// Filters the gateway cannot answer exactly are 400 invalidFilter, never an unfiltered list.
pub fn invalid_filters(gw: &Gateway) {
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

/// Creates alice@contoso.com and sends Entra's default-dialect PATCH: new work email, family
/// name, department, `active` "False" and `manager` as a bare id. Answers her id.
pub fn disable_with_default_dialect(gw: &Gateway, manager: &str) -> String {
    let id = create(gw, "alice@contoso.com", "e1");
    let u = patch(
        gw,
        &id,
        json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"},
            {"op": "Replace", "path": "name.familyName", "value": "Smyth"},
            {"op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": "Ops"},
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": manager}
        ]),
    );
    assert_eq!(u["emails"][0]["value"], "new@contoso.com");
    assert_eq!(u["name"]["familyName"], "Smyth");
    assert_eq!(u[ENTERPRISE]["department"], "Ops");
    assert_eq!(u[ENTERPRISE]["manager"], json!({"value": manager}));
    assert_eq!(u["active"], false);
    id
}

/// Re-enables a disabled user with `Add` "True", then sends a PATCH that changes nothing.
pub fn reenable(gw: &Gateway, id: &str) {
    let u = patch(
        gw,
        id,
        json!([{"op": "Add", "path": "active", "value": "True"}]),
    );
    assert_eq!(u["active"], true);
    let again = patch(
        gw,
        id,
        json!([{"op": "replace", "path": "active", "value": true}]),
    );
    assert_eq!(again["active"], true);
}

/// Creates alice@contoso.com and sends the `aadOptscim062020` PATCH: one pathless replace whose
/// value object is keyed by dotted and URN paths, disabling her. Answers her id.
pub fn patch_aad_opt_dialect(gw: &Gateway) -> String {
    let id = create(gw, "alice@contoso.com", "e1");
    let u = patch(
        gw,
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
    id
}

/// `manager` sent as a bare id, a value object and a `$ref` list all read back as
/// `{"value": id}`; `""` clears it.
pub fn manager_shapes(gw: &Gateway) {
    let id = create(gw, "alice@contoso.com", "e1");
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
            gw,
            &id,
            json!([{"op": "Replace", "path": path, "value": value}]),
        );
        assert_eq!(u[ENTERPRISE]["manager"], json!({"value": expected}));
    }
    let u = patch(
        gw,
        &id,
        json!([{"op": "Replace", "path": path, "value": ""}]),
    );
    assert!(u[ENTERPRISE].get("manager").is_none(), "{u}");
}

/// A filtered PATCH path on a user without such an element creates it, and it can be found.
pub fn filtered_path_creates_missing_element(gw: &Gateway) {
    let mut body = create_body("alice@contoso.com", "e1");
    body.as_object_mut().unwrap().remove("emails");
    let r = gw.scim("POST", "/Users", Some(&body));
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let u = patch(
        gw,
        &id,
        json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "w@contoso.com"}]),
    );
    assert_eq!(
        u["emails"],
        json!([{"type": "work", "value": "w@contoso.com"}])
    );
    let found = filter(gw, "emails[type eq \"work\"].value eq \"w@contoso.com\"");
    assert_eq!(found["totalResults"], 1);
}

/// PATCHing `id` or `meta.created` is 400 mutability.
pub fn read_only_attributes(gw: &Gateway) {
    let id = create(gw, "alice@contoso.com", "e1");
    for path in ["id", "meta.created"] {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": path, "value": "x"}]});
        let r = gw.scim("PATCH", &format!("/Users/{id}"), Some(&body));
        assert_scim_error(&r, 400, Some("mutability"));
    }
}

/// Creates a user and deletes it: 204, then 404 on GET and DELETE, and no lookup finds it;
/// `unknown` (an id the backend never had) is 404 too. Answers the deleted id.
pub fn delete_then_404(gw: &Gateway, unknown: &str) -> String {
    let id = create(gw, "alice@contoso.com", "e1");
    let r = gw.scim("DELETE", &format!("/Users/{id}"), None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_scim_error(&gw.scim("GET", &format!("/Users/{id}"), None), 404, None);
    assert_scim_error(&gw.scim("DELETE", &format!("/Users/{id}"), None), 404, None);
    assert_eq!(filter(gw, "externalId eq \"e1\"")["totalResults"], 0);
    assert_scim_error(
        &gw.scim("GET", &format!("/Users/{unknown}"), None),
        404,
        None,
    );
    id
}

/// With `existing` users (without emails) already there, creates `created` more and pages
/// through all of them `page` at a time: Okta's `startIndex=1&count=2`, every user exactly once,
/// a page starting at index 2, a filtered page and `count=0`. Answers every id in list order.
pub fn paging(gw: &Gateway, existing: usize, created: usize, page: usize) -> Vec<String> {
    let total = existing + created;
    for i in 0..created {
        create(gw, &format!("u{i}@contoso.com"), &format!("e{i}"));
    }
    let r = gw.scim("GET", "/Users?startIndex=1&count=2", None).json();
    assert_eq!(r["totalResults"], total);
    assert_eq!(r["itemsPerPage"], 2);
    assert_eq!(r["startIndex"], 1);
    assert_eq!(r["Resources"].as_array().map(Vec::len), Some(2), "{r}");
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let page = gw
            .scim(
                "GET",
                &format!("/Users?startIndex={start}&count={page}"),
                None,
            )
            .json();
        assert_eq!(page["totalResults"], total, "{page}");
        let items = page["Resources"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        seen.extend(items.iter().map(|u| u["id"].as_str().unwrap().to_string()));
        start += items.len();
    }
    assert_eq!(seen.len(), total);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), total, "no user twice across pages");
    let odd = gw
        .scim("GET", &format!("/Users?startIndex=2&count={page}"), None)
        .json();
    assert_eq!(odd["Resources"][0]["id"].as_str().unwrap(), seen[1]);
    assert_eq!(ids(&odd), seen[1..total.min(1 + page)]);
    let filtered = gw
        .scim(
            "GET",
            &format!("/Users?filter={}&startIndex=2&count=2", enc("emails pr")),
            None,
        )
        .json();
    assert_eq!(filtered["totalResults"], created);
    assert_eq!(filtered["itemsPerPage"], 2);
    let count0 = gw.scim("GET", "/Users?count=0", None).json();
    assert_eq!(count0["totalResults"], total);
    assert_eq!(count0["Resources"], json!([]));
    seen
}

/// The ids of a ListResponse's resources, in order.
pub fn ids(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|u| u["id"].as_str().expect("id").to_string())
        .collect()
}

/// Okta's update: a PUT of the whole user replaces it (dropping the name's `formatted`, disabling
/// it, replacing the enterprise extension). Answers the user's id.
pub fn put_replaces(gw: &Gateway) -> String {
    let id = create(gw, "alice@contoso.com", "e1");
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
    id
}

/// A PUT without `active` of the user `id` that [`put_replaces`] left inactive (200 expected);
/// answers the resource, which GET shows the same. Whether the user stays inactive depends on the
/// backend's mapping of `active`: the caller checks.
pub fn put_without_active(gw: &Gateway, id: &str) -> Value {
    let mut body = create_body("alice@contoso.com", "e1");
    body.as_object_mut().expect("object").remove("active");
    body["name"] = json!({"givenName": "Alison", "familyName": "Smith"});
    let r = gw.scim("PUT", &format!("/Users/{id}"), Some(&body));
    assert_eq!(r.status, 200, "{}", r.text());
    let u = r.json();
    assert_eq!(
        u["name"],
        json!({"givenName": "Alison", "familyName": "Smith"})
    );
    assert_eq!(gw.scim("GET", &format!("/Users/{id}"), None).json(), u);
    u
}

/// Bodies that are not a valid user get 400 SCIM answers and create nothing.
pub fn bad_bodies(gw: &Gateway) {
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
    assert_eq!(filter(gw, "userName eq \"a@b.c\"")["totalResults"], 0);
}
