//! The Entra and Okta scenarios against the "shapes" backend (`tests/support/shapes_backend.rs`),
//! configured by nothing but `tests/fixtures/shapes.toml`: contacts as native lists of objects,
//! enumerations as words, one `full_name`, epoch-millisecond times and whole-object PUTs. Then
//! every attribute `/Schemas` advertises round-trips, `meta` times are `xsd:dateTime`, elements
//! the backend added survive updates, and a value outside a refusing map writes nothing.

use super::harness::{assert_scim_error, Gateway};
use super::scenarios::{self, create_body, filter, patch, ENTERPRISE};
use super::shapes_backend::ShapesBackend;
use scimgate::backend::spec::{Otherwise, Transform};
use scimgate::config::Config;
use serde_json::{json, Map, Value};

/// The backend's name of tenant `umbrella`.
const ORG: &str = "umbrella-org";

fn gateway_with(adjust: impl FnOnce(&mut Config)) -> (Gateway, ShapesBackend) {
    let backend = ShapesBackend::new();
    let text = include_str!("../fixtures/shapes.toml");
    let gw = Gateway::fixture("shapes.toml", text, "umbrella", adjust, |addr| {
        backend.service(addr)
    });
    (gw, backend)
}

fn gateway() -> (Gateway, ShapesBackend) {
    gateway_with(|_| {})
}

fn person(backend: &ShapesBackend, id: &str) -> Value {
    backend.person(ORG, id)
}

fn puts(backend: &ShapesBackend) -> usize {
    let put = "PUT /v3/orgs/{org}/people/{id}";
    backend.requests().iter().filter(|r| *r == put).count()
}

// ---- the Entra and Okta scenarios ----------------------------------------------------------

#[test]
fn test_connection_gets_an_empty_list_response() {
    let (gw, _backend) = gateway();
    scenarios::test_connection(&gw);
}

#[test]
fn create_then_read_back_exactly_and_409_on_duplicate() {
    let (gw, backend) = gateway();
    let created = scenarios::create_read_back_and_conflict(&gw);
    let native = person(&backend, created["id"].as_str().unwrap());
    assert_eq!(native["login"], "alice@contoso.com");
    assert_eq!(native["full_name"], "Alice Smith");
    assert_eq!(native["display_name"], "Alice Smith");
    assert_eq!(native["status"], "ACTIVE");
    assert_eq!(
        native["contacts"]["emails"],
        json!([{"address": "alice@contoso.com", "kind": "WORK", "is_primary": true, "verified": false}])
    );
    assert_eq!(backend.people(ORG).len(), 1);
}

#[test]
fn lookups_by_every_matching_attribute() {
    let (gw, backend) = gateway();
    scenarios::lookups(&gw);
    let seeded = backend.seed(
        ORG,
        json!({"login": "bob@umbrella.test", "full_name": "Bob Lee", "status": "DISABLED", "kind": "CON",
               "contacts": {"emails": [{"address": "bob@umbrella.test", "kind": "WORK", "is_primary": true}]}}),
    );
    let found = filter(
        &gw,
        "emails[type eq \"work\"].value eq \"BOB@umbrella.test\"",
    );
    assert_eq!(found["totalResults"], 1);
    let bob = &found["Resources"][0];
    assert_eq!(bob["id"], seeded["id"]);
    assert_eq!(bob["active"], false);
    assert_eq!(bob["userType"], "Contractor");
    assert_eq!(
        bob["emails"],
        json!([{"value": "bob@umbrella.test", "type": "work", "primary": true}])
    );
}

#[test]
fn invalid_filters_are_400_never_an_unfiltered_list() {
    let (gw, backend) = gateway();
    scenarios::invalid_filters(&gw);
    assert!(backend.requests().is_empty(), "{:?}", backend.requests());
}

#[test]
fn patch_default_dialect_and_disable_reenable() {
    let (gw, backend) = gateway();
    let mgr = scenarios::create(&gw, "boss@contoso.com", "boss");
    let id = scenarios::disable_with_default_dialect(&gw, &mgr);
    let native = person(&backend, &id);
    assert_eq!(native["status"], "DISABLED");
    assert_eq!(native["full_name"], "Alice Smyth");
    assert_eq!(
        native["contacts"]["emails"],
        json!([{"address": "new@contoso.com", "kind": "WORK", "is_primary": true, "verified": false}])
    );
    scenarios::reenable(&gw, &id);
    assert_eq!(person(&backend, &id)["status"], "ACTIVE");
}

#[test]
fn patch_aad_opt_dialect_with_pathless_value_object() {
    let (gw, backend) = gateway();
    let id = scenarios::patch_aad_opt_dialect(&gw);
    let native = person(&backend, &id);
    assert_eq!(native["full_name"], "Alicia Smyth");
    assert_eq!(native["display_name"], "Alice S");
    assert_eq!(native["status"], "DISABLED");
}

#[test]
fn manager_shapes_all_read_back_as_value_object() {
    let (gw, _backend) = gateway();
    scenarios::manager_shapes(&gw);
}

#[test]
fn filtered_path_creates_missing_element() {
    let (gw, backend) = gateway();
    scenarios::filtered_path_creates_missing_element(&gw);
    let native = &backend.people(ORG)[0];
    assert_eq!(
        native["contacts"]["emails"],
        json!([{"address": "w@contoso.com", "kind": "WORK", "is_primary": false, "verified": false}])
    );
}

#[test]
fn read_only_attributes_give_mutability() {
    let (gw, _backend) = gateway();
    scenarios::read_only_attributes(&gw);
}

#[test]
fn delete_then_404() {
    let (gw, backend) = gateway();
    scenarios::delete_then_404(&gw, "p-999");
    assert!(backend.people(ORG).is_empty());
}

#[test]
fn paging_and_okta_test_connection() {
    let (gw, _backend) = gateway();
    scenarios::paging(&gw, 0, 7, 3);
}

#[test]
fn put_replaces_the_user() {
    let (gw, backend) = gateway();
    let id = scenarios::put_replaces(&gw);
    let native = person(&backend, &id);
    assert_eq!(native["full_name"], "Al Smith");
    assert_eq!(native["status"], "DISABLED");
}

#[test]
fn bad_bodies_get_scim_errors_and_nothing_is_written() {
    let (gw, backend) = gateway();
    scenarios::bad_bodies(&gw);
    assert!(backend.people(ORG).is_empty());
}

// ---- what this backend's shapes add --------------------------------------------------------

/// A value for every writable attribute `/Schemas` advertises, different for each `round`:
/// two elements of every multi-valued attribute, the second one primary.
fn every_attribute(gw: &Gateway, round: usize) -> Value {
    let schemas = gw.scim("GET", "/Schemas", None).json();
    let mut user = Map::new();
    for schema in schemas["Resources"].as_array().expect("schemas") {
        let mut attrs = Map::new();
        for a in schema["attributes"].as_array().expect("attributes") {
            if let Some(v) = value_of(a, round, 0) {
                attrs.insert(a["name"].as_str().unwrap().to_string(), v);
            }
        }
        if schema["id"] == ENTERPRISE {
            user.insert(ENTERPRISE.into(), Value::Object(attrs));
        } else {
            user.extend(attrs);
        }
    }
    user.insert(
        "schemas".into(),
        json!(["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE]),
    );
    Value::Object(user)
}

fn value_of(a: &Value, round: usize, element: usize) -> Option<Value> {
    let name = a["name"].as_str().unwrap();
    if a["mutability"] == "readOnly" || name == "$ref" {
        return None;
    }
    if a["multiValued"] == true && element == 0 {
        let two: Vec<Value> = (1..=2).filter_map(|i| value_of(a, round, i)).collect();
        return Some(Value::Array(two));
    }
    let tag = format!("{name}-{round}-{element}");
    Some(match a["type"].as_str().unwrap() {
        "complex" => {
            let mut sub = Map::new();
            for s in a["subAttributes"].as_array().unwrap() {
                let sub_name = s["name"].as_str().unwrap();
                let v = match sub_name {
                    "primary" if element == 2 => json!(true),
                    "primary" => continue,
                    _ => match value_of(s, round, element) {
                        Some(v) => v,
                        None => continue,
                    },
                };
                sub.insert(sub_name.to_string(), v);
            }
            Value::Object(sub)
        }
        "boolean" => json!(round.is_multiple_of(2)),
        "reference" => json!(format!("https://{tag}.test/")),
        _ => match a["canonicalValues"].as_array() {
            Some(words) => words[(round + element) % words.len()].clone(),
            None if name == "userName" => json!(format!("user-{round}@umbrella.test")),
            None => json!(tag),
        },
    })
}

/// `resource` without what the server adds (`id`, `meta`).
fn written(resource: &Value) -> Value {
    let mut r = resource.clone();
    let o = r.as_object_mut().unwrap();
    o.remove("id");
    o.remove("meta");
    r
}

#[test]
fn every_advertised_attribute_round_trips_and_meta_times_are_xsd_date_times() {
    let (gw, backend) = gateway();
    let first = every_attribute(&gw, 1);
    let r = gw.scim("POST", "/Users", Some(&first));
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    assert_eq!(written(&created), first, "every attribute as written");
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/Users/{id}");
    assert_eq!(gw.scim("GET", &path, None).json(), created);
    let native = person(&backend, &id);
    assert_eq!(native["full_name"], "givenName-1-0 familyName-1-0");
    assert_eq!(native["contacts"]["emails"][1]["address"], "value-1-2");
    assert_eq!(
        native["contacts"]["phones"][0]["number"], "value-1-2",
        "the primary phone first"
    );
    assert_eq!(native["chat_handles"], json!(["value-1-1", "value-1-2"]));
    assert_eq!(native["postal"][0]["city"], "locality-1-1");

    let second = every_attribute(&gw, 2);
    let r = gw.scim("PUT", &path, Some(&second));
    assert_eq!(r.status, 200, "{}", r.text());
    let replaced = r.json();
    assert_eq!(written(&replaced), second, "every attribute replaced");
    assert_eq!(gw.scim("GET", &path, None).json(), replaced);
    assert_eq!(person(&backend, &id)["status"], "ACTIVE");
    for user in [&created, &replaced] {
        for key in ["created", "lastModified"] {
            assert_xsd_date_time(&user["meta"][key]);
        }
    }
}

/// Asserts an `xsd:dateTime` in UTC: `YYYY-MM-DDThh:mm:ss[.f+]Z`.
fn assert_xsd_date_time(v: &Value) {
    let text = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339);
    assert!(parsed.is_ok() && text.ends_with('Z'), "{text}");
    assert!(text.as_bytes()[10] == b'T' && text.len() >= 20, "{text}");
}

#[test]
fn epoch_millisecond_times_of_people_scim_never_wrote_are_xsd_date_times() {
    let (gw, backend) = gateway();
    let seeded = backend.seed(ORG, json!({"login": "eve@umbrella.test"}));
    backend.app_update(ORG, seeded["id"].as_str().unwrap(), |p| {
        p.insert("created_ms".into(), json!(1764789356123_i64));
        p.insert("updated_ms".into(), json!(1764789400000_i64));
    });
    let eve = &filter(&gw, "userName eq \"eve@umbrella.test\"")["Resources"][0];
    assert_eq!(eve["meta"]["created"], "2025-12-03T19:15:56.123Z");
    assert_eq!(eve["meta"]["lastModified"], "2025-12-03T19:16:40Z");
}

#[test]
fn patch_adds_replaces_and_removes_list_elements() {
    let (gw, backend) = gateway();
    let id = scenarios::create(&gw, "alice@contoso.com", "e1");
    let u = patch(
        &gw,
        &id,
        json!([
            {"op": "add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+47 555"},
            {"op": "add", "path": "emails", "value": [{"value": "a@home.test", "type": "home"}]},
            {"op": "add", "path": "ims", "value": [{"value": "alice@chat", "type": "xmpp"}]}
        ]),
    );
    assert_eq!(
        u["phoneNumbers"],
        json!([{"type": "mobile", "value": "+47 555"}])
    );
    let native = person(&backend, &id);
    assert_eq!(
        native["contacts"]["phones"],
        json!([{"number": "+47 555", "label": "MOBILE"}])
    );
    assert_eq!(native["contacts"]["emails"][1]["address"], "a@home.test");
    assert_eq!(native["contacts"]["emails"][1]["kind"], "HOME");
    assert_eq!(native["chat_handles"], json!(["alice@chat"]));
    let u = patch(
        &gw,
        &id,
        json!([
            {"op": "remove", "path": "emails[type eq \"work\"]"},
            {"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+47 556"},
            {"op": "remove", "path": "ims"}
        ]),
    );
    assert_eq!(
        u["emails"],
        json!([{"value": "a@home.test", "type": "home"}])
    );
    let native = person(&backend, &id);
    assert_eq!(
        native["contacts"]["emails"],
        json!([{"address": "a@home.test", "kind": "HOME", "is_primary": false, "verified": false}])
    );
    assert_eq!(
        native["contacts"]["phones"],
        json!([{"number": "+47 556", "label": "MOBILE"}])
    );
    assert_eq!(native["chat_handles"], json!([]));
    assert!(u.get("ims").is_none());
}

/// Adds an element to person `id`'s emails as the service's app would.
fn add_email(backend: &ShapesBackend, id: &str, address: &str) {
    backend.app_update(ORG, id, |p| {
        let emails = p["contacts"]["emails"].as_array_mut().unwrap();
        emails.push(
            json!({"address": address, "kind": "OTHER", "is_primary": false, "source": "sso"}),
        );
    });
}

#[test]
fn elements_and_keys_the_backend_added_survive_patch_and_put() {
    let (gw, backend) = gateway();
    let id = scenarios::create(&gw, "alice@contoso.com", "e1");
    backend.app_update(ORG, &id, |p| {
        p["contacts"]["emails"][0]["label"] = json!("main");
    });
    add_email(&backend, &id, "a@sso.test");
    let seen = gw.scim("GET", &format!("/Users/{id}"), None).json();
    assert_eq!(
        seen["emails"][1],
        json!({"value": "a@sso.test", "type": "other"})
    );
    // Entra: a PATCH of another attribute writes the list back with the element and the key.
    patch(
        &gw,
        &id,
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "al@contoso.com"}]),
    );
    let sso = json!({"address": "a@sso.test", "kind": "OTHER", "is_primary": false, "source": "sso", "verified": false});
    assert_eq!(
        person(&backend, &id)["contacts"]["emails"],
        json!([{"address": "al@contoso.com", "kind": "WORK", "is_primary": true, "verified": false, "label": "main"}, sso])
    );
    // Okta: a PUT of what it knows keeps an element SCIM never wrote, where it is.
    add_email(&backend, &id, "b@sso.test");
    let put = create_body("al@contoso.com", "e1");
    let r = gw.scim("PUT", &format!("/Users/{id}"), Some(&put));
    assert_eq!(r.status, 200, "{}", r.text());
    let emails = person(&backend, &id)["contacts"]["emails"].clone();
    let addresses: Vec<&str> = emails
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["address"].as_str().unwrap())
        .collect();
    // a@sso.test came back in the PATCH above (a PATCH result carries every element read), so
    // SCIM wrote it and a replacing PUT without it removes it.
    assert_eq!(addresses, ["al@contoso.com", "b@sso.test"]);
    assert_eq!(emails[0]["label"], "main");
    assert_eq!(emails[1]["source"], "sso");
    assert_eq!(puts(&backend), 2);
    // Entra removes an element the backend added, by a PATCH of the view that showed it.
    patch(
        &gw,
        &id,
        json!([{"op": "remove", "path": "emails[value eq \"b@sso.test\"]"}]),
    );
    let emails = person(&backend, &id)["contacts"]["emails"].clone();
    assert_eq!(emails.as_array().unwrap().len(), 1, "{emails}");
}

#[test]
fn a_value_outside_a_refusing_map_is_400_and_nothing_is_written() {
    // Every word map refuses what it does not list.
    let (gw, backend) = gateway_with(|c| {
        for f in &mut c.users.fields {
            let subs = f.list.iter_mut().flat_map(|l| l.subs.iter_mut());
            let converts = subs.map(|s| &mut s.convert).chain([&mut f.convert]);
            for convert in converts {
                if let Transform::Words { otherwise, .. } = &mut convert.transform {
                    *otherwise = Otherwise::Refuse;
                }
            }
        }
    });
    let id = scenarios::create(&gw, "alice@contoso.com", "e1");
    let before = person(&backend, &id);
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "replace", "path": "locale", "value": "fr-FR"}]});
    let r = gw.scim("PATCH", &format!("/Users/{id}"), Some(&body));
    assert_scim_error(&r, 400, Some("invalidValue"));
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("\"fr-FR\" is not one of"));
    assert_eq!(person(&backend, &id), before, "nothing was written");
    assert_eq!(puts(&backend), 0);
    let mut odd = create_body("bob@contoso.com", "e2");
    odd["userType"] = json!("Intern");
    assert_scim_error(
        &gw.scim("POST", "/Users", Some(&odd)),
        400,
        Some("invalidValue"),
    );
    assert_eq!(
        backend.people(ORG).len(),
        1,
        "no create reached the backend"
    );
    assert!(gw
        .scim("GET", &format!("/Users/{id}"), None)
        .json()
        .get("locale")
        .is_none());
    // /Schemas says which values round-trip.
    let user = gw
        .scim(
            "GET",
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
            None,
        )
        .json();
    let attr = |name: &str| -> Value {
        user["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        attr("userType")["canonicalValues"],
        json!(["Contractor", "Employee"])
    );
    assert_eq!(
        attr("locale")["canonicalValues"],
        json!(["de-DE", "en-GB", "en-US", "nb-NO"])
    );
    let email_type = attr("emails")["subAttributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "type")
        .unwrap()
        .clone();
    assert_eq!(
        email_type["canonicalValues"],
        json!(["home", "other", "work"])
    );
    assert!(attr("displayName").get("canonicalValues").is_none());
}
