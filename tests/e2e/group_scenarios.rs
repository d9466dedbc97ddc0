//! SCIM Group scenarios shared by the tests of every backend and membership model: each drives a
//! gateway through the Entra ID and Okta group shapes of `shared/azure-ad.md` and asserts only
//! what SCIM shows, so the same body holds whichever backend is behind the gateway.

use super::harness::{assert_scim_error, enc, Gateway};
use super::scenarios;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The core Group schema URN.
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Creates `n` users named `{prefix}{i}@example.test`; answers their ids.
pub fn users(gw: &Gateway, prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let name = format!("{prefix}{i}@example.test");
            scenarios::create(gw, &name, &format!("ext-{prefix}{i}"))
        })
        .collect()
}

/// Entra's group create (no members); answers the new group's id.
pub fn create(gw: &Gateway, name: &str, external_id: &str) -> String {
    let body = json!({
        "schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId": external_id,
        "displayName": name,
        "meta": {"resourceType": "Group"}
    });
    let r = gw.scim("POST", "/Groups", Some(&body));
    assert_eq!(r.status, 201, "{name}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    let created = r.json();
    let id = created["id"].as_str().expect("id").to_string();
    assert!(r
        .header("location")
        .is_some_and(|l| l.ends_with(&format!("/Groups/{id}"))));
    assert_eq!(created["displayName"], name);
    assert_eq!(created["externalId"], external_id);
    id
}

/// A group PATCH answered `204`.
pub fn patch(gw: &Gateway, id: &str, ops: Value) {
    let r = patch_reply(gw, id, ops);
    assert_eq!(r.status, 204, "{}", r.text());
}

/// A group PATCH's raw answer.
pub fn patch_reply(gw: &Gateway, id: &str, ops: Value) -> super::http::Reply {
    let body = json!({"schemas": [PATCH_OP], "Operations": ops});
    gw.scim("PATCH", &format!("/Groups/{id}"), Some(&body))
}

/// The member ids of a group, read with GET.
pub fn members(gw: &Gateway, id: &str) -> BTreeSet<String> {
    let r = gw.scim("GET", &format!("/Groups/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["members"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|m| m["value"].as_str().expect("value").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn values(ids: &[&String]) -> Value {
    Value::Array(
        ids.iter()
            .map(|id| json!({"$ref": null, "value": id}))
            .collect(),
    )
}

/// A `displayName eq` lookup as Entra sends it; answers the ListResponse.
pub fn lookup(gw: &Gateway, filter: &str) -> Value {
    let r = gw.scim(
        "GET",
        &format!("/Groups?excludedAttributes=members&filter={}", enc(filter)),
        None,
    );
    assert_eq!(r.status, 200, "{filter}: {}", r.text());
    r.json()
}

/// Entra's whole group cycle: create, lookups by displayName and externalId, rename, add one
/// and many members, idempotent re-add, both remove dialects (removing only those listed),
/// idempotent re-remove, `excludedAttributes=members`, delete, then 404s.
pub fn entra_cycle(gw: &Gateway) {
    let u = users(gw, "entra-g", 4);
    let id = create(gw, "Sales EMEA", "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159");
    let found = lookup(gw, "displayName eq \"sales emea\"");
    assert_eq!(found["totalResults"], 1, "{found}");
    assert_eq!(found["Resources"][0]["id"], id.as_str());
    assert!(found["Resources"][0].get("members").is_none());
    let by_external = lookup(gw, "externalId eq \"8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159\"");
    assert_eq!(by_external["Resources"][0]["id"], id.as_str());
    assert_eq!(lookup(gw, "displayName eq \"nobody\"")["totalResults"], 0);

    patch(
        gw,
        &id,
        json!([{"op": "Replace", "path": "displayName", "value": "Sales EU"}]),
    );
    let got = gw.scim(
        "GET",
        &format!("/Groups/{id}?excludedAttributes=members"),
        None,
    );
    assert_eq!(got.json()["displayName"], "Sales EU");
    assert!(got.json().get("members").is_none());

    patch(
        gw,
        &id,
        json!([{"op": "Add", "path": "members", "value": values(&[&u[0]])}]),
    );
    patch(
        gw,
        &id,
        json!([{"op": "Add", "path": "members", "value": values(&[&u[1], &u[2], &u[3]])}]),
    );
    assert_eq!(members(gw, &id), set(&[&u[0], &u[1], &u[2], &u[3]]));
    let member = |query: &str| {
        let full = gw.scim("GET", &format!("/Groups/{id}{query}"), None).json();
        full["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["value"] == u[0].as_str())
            .cloned()
            .unwrap()
    };
    let first = member("");
    assert!(first["$ref"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/Users/{}", u[0])));
    assert_eq!(first["type"], "User");
    assert!(
        first.get("display").is_none(),
        "display is returned on request only: {first}"
    );
    let named = member("?attributes=members.value,members.display");
    assert!(
        named["display"].is_string(),
        "members carry a display name when asked: {named}"
    );

    patch(
        gw,
        &id,
        json!([{"op": "Add", "path": "members", "value": values(&[&u[0]])}]),
    );
    assert_eq!(
        members(gw, &id).len(),
        4,
        "re-adding a member changes nothing"
    );

    patch(
        gw,
        &id,
        json!([{"op": "Remove", "path": "members", "value": [{"value": u[0]}]}]),
    );
    assert_eq!(
        members(gw, &id),
        set(&[&u[1], &u[2], &u[3]]),
        "only the listed member goes"
    );
    patch(
        gw,
        &id,
        json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", u[1])}]),
    );
    assert_eq!(members(gw, &id), set(&[&u[2], &u[3]]));
    patch(
        gw,
        &id,
        json!([{"op": "Remove", "path": "members", "value": [{"value": u[0]}]}]),
    );
    assert_eq!(
        members(gw, &id).len(),
        2,
        "removing an absent member changes nothing"
    );

    let r = gw.scim("DELETE", &format!("/Groups/{id}"), None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_scim_error(&gw.scim("GET", &format!("/Groups/{id}"), None), 404, None);
    let r = patch_reply(
        gw,
        &id,
        json!([{"op": "Add", "path": "members", "value": values(&[&u[2]])}]),
    );
    assert_scim_error(&r, 404, None);
    assert_eq!(lookup(gw, "displayName eq \"Sales EU\"")["totalResults"], 0);
}

/// Okta's group push: create with `members: []`, list by page, rename with a value object,
/// one PATCH mixing a filtered remove with an add, a full replace of members, and PUT with the
/// whole member list (a PUT without `members` keeps them).
pub fn okta_push(gw: &Gateway) {
    let u = users(gw, "okta-g", 3);
    let body = json!({"schemas": [GROUP], "displayName": "Engineering", "members": []});
    let r = gw.scim("POST", "/Groups", Some(&body));
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let page = gw.scim("GET", "/Groups?startIndex=1&count=100", None);
    assert_eq!(page.status, 200, "{}", page.text());
    let listed = page.json();
    assert!(listed["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["id"] == id.as_str()));

    patch(
        gw,
        &id,
        json!([{"op": "replace", "value": {"id": id, "displayName": "Eng"}}]),
    );
    patch(
        gw,
        &id,
        json!([{"op": "add", "path": "members", "value": [{"value": u[0]}, {"value": u[1]}]}]),
    );
    patch(
        gw,
        &id,
        json!([
            {"op": "remove", "path": format!("members[value eq \"{}\"]", u[0])},
            {"op": "add", "path": "members", "value": [{"value": u[2], "display": "x"}]}
        ]),
    );
    assert_eq!(members(gw, &id), set(&[&u[1], &u[2]]));
    patch(
        gw,
        &id,
        json!([{"op": "replace", "path": "members", "value": [{"value": u[0]}]}]),
    );
    assert_eq!(members(gw, &id), set(&[&u[0]]));

    let put = json!({"schemas": [GROUP], "displayName": "Eng", "members": [{"value": u[1]}, {"value": u[2]}]});
    let r = gw.scim("PUT", &format!("/Groups/{id}"), Some(&put));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(members(gw, &id), set(&[&u[1], &u[2]]));
    let rename_only = json!({"schemas": [GROUP], "displayName": "Engineering"});
    let r = gw.scim("PUT", &format!("/Groups/{id}"), Some(&rename_only));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["displayName"], "Engineering");
    assert_eq!(
        members(gw, &id),
        set(&[&u[1], &u[2]]),
        "a PUT without members keeps them"
    );
}

/// Bad input: an unknown member id is `400 invalidValue` with nothing applied; a taken
/// displayName is `409 uniqueness` on create and on rename.
pub fn bad_input(gw: &Gateway) {
    let u = users(gw, "bad-g", 1);
    let a = create(gw, "Alpha", "ext-alpha");
    let b = create(gw, "Beta", "ext-beta");
    patch(
        gw,
        &a,
        json!([{"op": "add", "path": "members", "value": [{"value": u[0]}]}]),
    );
    let r = patch_reply(
        gw,
        &a,
        json!([
            {"op": "remove", "path": "members", "value": [{"value": u[0]}]},
            {"op": "add", "path": "members", "value": [{"value": "999999"}]}
        ]),
    );
    assert_scim_error(&r, 400, Some("invalidValue"));
    assert!(
        r.json()["detail"].as_str().unwrap().contains("999999"),
        "{}",
        r.text()
    );
    assert_eq!(members(gw, &a), set(&[&u[0]]), "nothing was applied");

    let dup = json!({"schemas": [GROUP], "displayName": "ALPHA"});
    assert_scim_error(
        &gw.scim("POST", "/Groups", Some(&dup)),
        409,
        Some("uniqueness"),
    );
    let r = patch_reply(
        gw,
        &b,
        json!([{"op": "replace", "path": "displayName", "value": "alpha"}]),
    );
    assert_scim_error(&r, 409, Some("uniqueness"));
    assert_eq!(lookup(gw, "displayName eq \"Beta\"")["totalResults"], 1);

    let nested = json!({"schemas": [GROUP], "displayName": "Gamma", "members": [{"value": a, "type": "Group"}]});
    assert_scim_error(
        &gw.scim("POST", "/Groups", Some(&nested)),
        400,
        Some("invalidValue"),
    );
    assert_eq!(lookup(gw, "displayName eq \"Gamma\"")["totalResults"], 0);
}

/// Concurrent PATCHes of one group, each adding its own member, lose none.
pub fn concurrent_adds(gw: &Gateway) {
    let u = users(gw, "conc-g", 12);
    let id = create(gw, "Concurrent", "ext-conc");
    std::thread::scope(|s| {
        for member in &u {
            let id = &id;
            s.spawn(move || {
                patch(
                    gw,
                    id,
                    json!([{"op": "add", "path": "members", "value": [{"value": member}]}]),
                );
            });
        }
    });
    assert_eq!(members(gw, &id).len(), u.len());
}

/// One PATCH adding `n` members, then one removing all of them.
pub fn many_members(gw: &Gateway, n: usize) {
    let u = users(gw, "many-g", n);
    let id = create(gw, "Everyone", "ext-everyone");
    let all: Vec<Value> = u.iter().map(|id| json!({"value": id})).collect();
    patch(
        gw,
        &id,
        json!([{"op": "Add", "path": "members", "value": all}]),
    );
    assert_eq!(members(gw, &id).len(), n);
    let r = gw.scim(
        "GET",
        &format!(
            "/Groups?filter={}&excludedAttributes=members",
            enc("displayName eq \"Everyone\"")
        ),
        None,
    );
    assert!(r.json()["Resources"][0].get("members").is_none());
    patch(
        gw,
        &id,
        json!([{"op": "Remove", "path": "members", "value": all}]),
    );
    assert!(members(gw, &id).is_empty());
}
