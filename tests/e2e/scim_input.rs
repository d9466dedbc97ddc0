//! SCIM input that RFC 7643/7644 makes an error, sent to a gateway over the "alt" backend: each
//! row must get its SCIM error, and afterwards the backend has received no write and its accounts
//! and the gateway's store hold exactly what they held before. Then the input the gateway must
//! accept instead of refusing (Entra's unqualified extension names, the typed slot a replace
//! fills), with the state it must leave.

use super::alt::{alt_gateway_from, ORG};
use super::alt_backend::AltBackend;
use super::harness::{assert_scim_error, enc, Gateway};
use super::http::Reply;
use super::scenarios::{create_body, ENTERPRISE};
use serde_json::{json, Value};
use std::path::PathBuf;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// A gateway over a fresh alt backend with one SCIM-created user.
struct Fixture {
    gw: Gateway,
    backend: AltBackend,
    store: PathBuf,
    id: String,
}

impl Fixture {
    fn new() -> Fixture {
        Self::with_config(include_str!("../fixtures/alt.toml"))
    }

    /// A fixture over `toml` (`tests/fixtures/alt.toml` with changes).
    fn with_config(toml: &str) -> Fixture {
        let mut store = PathBuf::new();
        let (gw, backend) = alt_gateway_from(toml, |c| {
            store = c.store.sqlite_path().unwrap().to_path_buf()
        });
        let r = gw.scim(
            "POST",
            "/Users",
            Some(&create_body("victim@globex.test", "ext-victim")),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["id"].as_str().expect("id").to_string();
        Fixture {
            gw,
            backend,
            store,
            id,
        }
    }

    /// The backend's accounts, the store's rows (users and pending creates) and the number of
    /// writes the backend has received.
    fn state(&self) -> State {
        let conn = rusqlite::Connection::open(&self.store).expect("open the store");
        let rows = |sql: &str| -> Vec<String> {
            let mut stmt = conn.prepare(sql).expect("prepare");
            stmt.query_map([], |row| row.get::<_, String>(0))
                .expect("query")
                .map(|r| r.expect("row"))
                .collect()
        };
        State {
            accounts: self.backend.accounts(ORG),
            users: rows(
                "SELECT id || ' ' || last_modified || ' ' || shadow FROM users ORDER BY id",
            ),
            pending: rows("SELECT user_name FROM pending_creates ORDER BY user_name"),
            writes: self.writes(),
        }
    }

    fn writes(&self) -> usize {
        self.backend
            .requests()
            .iter()
            .filter(|r| !r.starts_with("GET "))
            .count()
    }

    /// The user's store record (`shadow`).
    fn shadow(&self) -> Value {
        let conn = rusqlite::Connection::open(&self.store).expect("open the store");
        let text: String = conn
            .query_row(
                "SELECT shadow FROM users WHERE id = ?1",
                [&self.id],
                |row| row.get(0),
            )
            .expect("the user's store record");
        serde_json::from_str(&text).expect("shadow JSON")
    }

    fn user_path(&self) -> String {
        format!("/Users/{}", self.id)
    }

    fn patch(&self, ops: Value) -> Reply {
        self.gw
            .scim("PATCH", &self.user_path(), Some(&patch_body(ops)))
    }
}

/// What a refused request must leave untouched.
struct State {
    accounts: Vec<Value>,
    users: Vec<String>,
    pending: Vec<String>,
    writes: usize,
}

/// One refused request: method, path relative to the SCIM base, body, and the error it must get.
struct Row {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Option<Value>,
    status: u16,
    scim_type: Option<&'static str>,
}

fn row(
    name: &'static str,
    method: &'static str,
    path: impl Into<String>,
    body: Option<Value>,
    status: u16,
    scim_type: Option<&'static str>,
) -> Row {
    Row {
        name,
        method,
        path: path.into(),
        body,
        status,
        scim_type,
    }
}

fn patch_body(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

/// A valid create body with `edit` applied.
fn create_with(user: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut body = create_body(user, &format!("ext-{user}"));
    edit(&mut body);
    body
}

/// Class 5: `schemas` missing or not naming the core User schema.
fn schema_rows(rows: &mut Vec<Row>, user: &str) {
    let bodies: [(&'static str, Value); 5] = [
        (
            "POST without schemas",
            create_with("s1@globex.test", |b| {
                b.as_object_mut().expect("object").remove("schemas");
            }),
        ),
        (
            "POST with only the enterprise schema",
            create_with("s2@globex.test", |b| b["schemas"] = json!([ENTERPRISE])),
        ),
        (
            "POST with schemas a string",
            create_with("s3@globex.test", |b| b["schemas"] = json!(CORE)),
        ),
        (
            "POST with empty schemas",
            create_with("s4@globex.test", |b| b["schemas"] = json!([])),
        ),
        (
            "POST with schemas null",
            create_with("s5@globex.test", |b| b["schemas"] = Value::Null),
        ),
    ];
    for (name, body) in bodies {
        rows.push(row(
            name,
            "POST",
            "/Users",
            Some(body),
            400,
            Some("invalidSyntax"),
        ));
    }
    let put = create_with("victim@globex.test", |b| {
        b.as_object_mut().expect("object").remove("schemas");
        b["displayName"] = json!("Changed");
    });
    rows.push(row(
        "PUT without schemas",
        "PUT",
        user,
        Some(put),
        400,
        Some("invalidSyntax"),
    ));
}

/// Class 6: multi-valued attributes as an object or scalar, and two primaries.
fn multi_valued_rows(rows: &mut Vec<Row>, user: &str) {
    let one = json!({"type": "home", "value": "m@home.test"});
    let two_primaries = json!([{"type": "work", "value": "a@globex.test", "primary": true},
                               {"type": "home", "value": "b@home.test", "primary": "True"}]);
    let posts: [(&'static str, Value); 4] = [
        ("POST emails an object", one.clone()),
        ("POST emails a number", json!(7)),
        ("POST emails true", json!(true)),
        ("POST two primary emails", two_primaries.clone()),
    ];
    for (name, emails) in posts {
        let body = create_with("m1@globex.test", |b| b["emails"] = emails);
        rows.push(row(
            name,
            "POST",
            "/Users",
            Some(body),
            400,
            Some("invalidValue"),
        ));
    }
    let put = create_with("victim@globex.test", |b| b["emails"] = one.clone());
    rows.push(row(
        "PUT emails an object",
        "PUT",
        user,
        Some(put),
        400,
        Some("invalidValue"),
    ));
    let put = create_with("victim@globex.test", |b| {
        b["emails"] = two_primaries.clone()
    });
    rows.push(row(
        "PUT two primaries",
        "PUT",
        user,
        Some(put),
        400,
        Some("invalidValue"),
    ));
    let patches: [(&'static str, Value); 4] = [
        (
            "PATCH add emails an object",
            json!([{"op": "add", "path": "emails", "value": one}]),
        ),
        (
            "PATCH replace phoneNumbers a string",
            json!([{"op": "replace", "path": "phoneNumbers", "value": "+1 555"}]),
        ),
        (
            "PATCH path-less emails an object",
            json!([{"op": "replace", "value": {"emails": {"value": "p@x.test"}}}]),
        ),
        (
            "PATCH replace with two primaries",
            json!([{"op": "replace", "path": "emails", "value": two_primaries}]),
        ),
    ];
    for (name, ops) in patches {
        rows.push(row(
            name,
            "PATCH",
            user,
            Some(patch_body(ops)),
            400,
            Some("invalidValue"),
        ));
    }
}

/// Class 7: query parameters and an empty PATCH path.
fn query_rows(rows: &mut Vec<Row>, user: &str) {
    let lookup = format!("filter={}", enc("userName eq \"victim@globex.test\""));
    let gets: [(&'static str, String, &'static str); 9] = [
        ("startIndex 1.5", "startIndex=1.5".into(), "invalidValue"),
        ("count 1e2", "count=1e2".into(), "invalidValue"),
        ("count empty", "count=".into(), "invalidValue"),
        ("startIndex abc", "startIndex=abc".into(), "invalidValue"),
        ("empty filter", "filter=".into(), "invalidFilter"),
        ("blank filter", "filter=+%20".into(), "invalidFilter"),
        (
            "repeated filter",
            format!("{lookup}&{lookup}"),
            "invalidFilter",
        ),
        (
            "filter not UTF-8 once decoded",
            "filter=userName+eq+%22victim%FF%22".into(),
            "invalidFilter",
        ),
        (
            "attributes not UTF-8 once decoded",
            "attributes=%C0%AF".into(),
            "invalidValue",
        ),
    ];
    for (name, query, scim_type) in gets {
        rows.push(row(
            name,
            "GET",
            format!("/Users?{query}"),
            None,
            400,
            Some(scim_type),
        ));
    }
    rows.push(row(
        "GET one user with a non-UTF-8 parameter",
        "GET",
        format!("{user}?excludedAttributes=%FF"),
        None,
        400,
        Some("invalidValue"),
    ));
    rows.push(row(
        "POST .search with an empty filter",
        "POST",
        "/Users/.search",
        Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": ""})),
        400,
        Some("invalidFilter"),
    ));
    for path in ["", " "] {
        let ops = json!([{"op": "replace", "path": path, "value": {"displayName": "Empty Path"}}]);
        rows.push(row(
            "PATCH with an empty path",
            "PATCH",
            user,
            Some(patch_body(ops)),
            400,
            Some("invalidPath"),
        ));
    }
}

/// Class 8: a path-less add/replace carrying read-only attributes.
fn read_only_rows(rows: &mut Vec<Row>, user: &str) {
    let values = [
        json!({"id": "hijacked"}),
        json!({"displayName": "Sneaky", "id": "hijacked"}),
        json!({"displayName": "Sneaky", "meta": {"created": "2000-01-01T00:00:00Z"}}),
        json!({"meta.lastModified": "2000-01-01T00:00:00Z"}),
        json!({"groups": [{"value": "admins"}]}),
    ];
    for value in values {
        for op in ["add", "replace"] {
            let ops = json!([{"op": op, "value": value.clone()}]);
            rows.push(row(
                "PATCH path-less with a read-only attribute",
                "PATCH",
                user,
                Some(patch_body(ops)),
                400,
                Some("mutability"),
            ));
        }
    }
}

/// Class 9: a filtered replace that matches nothing and is not Entra's typed slot.
fn no_target_rows(rows: &mut Vec<Row>, user: &str) {
    let ops = [
        json!({"op": "replace", "path": "emails[value eq \"nobody@globex.test\"].type", "value": "home"}),
        json!({"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "h@home.test"}}),
        json!({"op": "replace", "path": "emails[value eq \"nobody@globex.test\"]", "value": {"type": "home"}}),
        json!({"op": "Replace", "path": "phoneNumbers[type eq \"fax\" and value eq \"1\"].display", "value": "Fax"}),
    ];
    for op in ops {
        rows.push(row(
            "PATCH replace whose filter matches nothing",
            "PATCH",
            user,
            Some(patch_body(json!([op]))),
            400,
            Some("noTarget"),
        ));
    }
}

/// Class 10: Bulk is not supported.
fn bulk_rows(rows: &mut Vec<Row>) {
    let bulk = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{"method": "POST", "path": "/Users", "bulkId": "1",
                        "data": create_body("bulk@globex.test", "ext-bulk")}]});
    rows.push(row("POST /Bulk", "POST", "/Bulk", Some(bulk), 501, None));
    rows.push(row("GET /Bulk", "GET", "/Bulk", None, 501, None));
}

#[test]
fn malformed_scim_input_is_refused_and_changes_nothing() {
    let f = Fixture::new();
    let user = f.user_path();
    let mut rows = Vec::new();
    schema_rows(&mut rows, &user);
    multi_valued_rows(&mut rows, &user);
    query_rows(&mut rows, &user);
    read_only_rows(&mut rows, &user);
    no_target_rows(&mut rows, &user);
    bulk_rows(&mut rows);
    let read_before = f.gw.scim("GET", &user, None).json();
    let mut failures = Vec::new();
    for r in &rows {
        let before = f.state();
        let reply = f.gw.scim(r.method, &r.path, r.body.as_ref());
        let answered =
            std::panic::catch_unwind(|| assert_scim_error(&reply, r.status, r.scim_type));
        let after = f.state();
        let mut wrong = Vec::new();
        if answered.is_err() {
            let text: String = reply.text().chars().take(160).collect();
            wrong.push(format!("got {} {text}", reply.status));
        }
        for (part, changed) in [
            ("backend accounts", after.accounts != before.accounts),
            ("store users", after.users != before.users),
            ("pending creates", after.pending != before.pending),
            ("backend writes", after.writes != before.writes),
        ] {
            if changed {
                wrong.push(format!("{part} changed"));
            }
        }
        if !wrong.is_empty() {
            let (name, method, path) = (r.name, r.method, &r.path);
            failures.push(format!("{name} ({method} {path}): {}", wrong.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    assert_eq!(f.gw.scim("GET", &user, None).json(), read_before);
    assert_eq!(f.backend.accounts(ORG).len(), 1, "no user was created");
}

/// Class 12: unqualified extension names in PATCH paths and filters reach the enterprise
/// extension, stored by the gateway and found by a filter.
#[test]
fn unqualified_extension_names_resolve_in_patch_paths_and_filters() {
    let f = Fixture::new();
    let r = f.patch(json!([
        {"op": "Replace", "path": "department", "value": "Ops"},
        {"op": "Add", "path": "manager", "value": "boss-1"},
        {"op": "replace", "path": "employeeNumber", "value": "42"},
        {"op": "replace", "value": {"costCenter": "CC-7"}}
    ]));
    assert_eq!(r.status, 200, "{}", r.text());
    let expected = json!({"employeeNumber": "42", "costCenter": "CC-7", "department": "Ops",
                          "manager": {"value": "boss-1"}});
    assert_eq!(r.json()[ENTERPRISE], expected);
    assert_eq!(
        f.shadow()[ENTERPRISE],
        expected,
        "the store holds the extension"
    );
    assert_eq!(
        f.gw.scim("GET", &f.user_path(), None).json()[ENTERPRISE],
        expected
    );
    for filter in [
        "department eq \"ops\"",
        "manager.value eq \"boss-1\"",
        "employeeNumber eq \"42\" and userName eq \"victim@globex.test\"",
    ] {
        let r =
            f.gw.scim("GET", &format!("/Users?filter={}", enc(filter)), None);
        assert_eq!(r.status, 200, "{filter}: {}", r.text());
        assert_eq!(r.json()["totalResults"], 1, "{filter}: {}", r.text());
        assert_eq!(r.json()["Resources"][0]["id"], f.id.as_str(), "{filter}");
    }
}

/// Class 6 and 9, what stays accepted: making an element primary demotes the others (RFC 7644
/// §3.5.2), and Entra's typed-slot replace creates the element it names.
#[test]
fn primary_is_moved_and_typed_slots_are_filled() {
    let f = Fixture::new();
    let r = f.patch(json!([
        {"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"},
        {"op": "Add", "path": "emails", "value": [{"type": "home", "value": "h@home.test", "primary": true}]}
    ]));
    assert_eq!(r.status, 200, "{}", r.text());
    let emails = json!([{"value": "victim@globex.test", "type": "work", "primary": false},
                        {"value": "h@home.test", "type": "home", "primary": true}]);
    let stored = f.shadow();
    assert_eq!(stored["emails"], emails);
    assert_eq!(
        stored["phoneNumbers"],
        json!([{"value": "+1 555 0100", "type": "mobile"}])
    );
    assert_eq!(r.json()["emails"], emails);
}

/// Class 13: a PATCH that ends in a deactivate or reactivate call answers what the next GET
/// returns, and a change of `active` alone sends only that call (no unchanged full update).
#[test]
fn activation_patch_answers_the_next_get_and_sends_only_the_activation_call() {
    // The account's `modified` time, which the (de)activate calls change, read as `title`: the
    // answer must show the time after the call, as the next GET does.
    let toml = format!(
        "{}\n[[users.fields]]\nscim = \"title\"\nnative = \"modified\"\non = \"never\"\n",
        include_str!("../fixtures/alt.toml")
    );
    let f = Fixture::with_config(&toml);
    for (active, call) in [
        (false, "POST /v1/orgs/{org}/accounts/{id}/deactivate"),
        (true, "POST /v1/orgs/{org}/accounts/{id}/activate"),
    ] {
        f.backend.clear_requests();
        let r = f.patch(json!([{"op": "Replace", "path": "active", "value": active}]));
        assert_eq!(r.status, 200, "{}", r.text());
        let writes: Vec<String> = f
            .backend
            .request_counts()
            .into_iter()
            .filter(|(route, _)| !route.starts_with("GET "))
            .map(|(route, n)| format!("{n} {route}"))
            .collect();
        assert_eq!(writes, [format!("1 {call}")], "active = {active}");
        let next = f.gw.scim("GET", &f.user_path(), None);
        assert_eq!(r.json(), next.json(), "active = {active}");
        assert_eq!(r.header("etag"), next.header("etag"), "active = {active}");
        assert_eq!(f.shadow()["active"], active);
        let account = f.backend.accounts(ORG);
        assert_eq!(account[0]["active"], active);
    }
    // With another change, the update is sent once and the answer is still the next GET.
    f.backend.clear_requests();
    let r = f.patch(
        json!([{"op": "replace", "path": "nickName", "value": "Vic"},
                           {"op": "replace", "path": "active", "value": false}]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let counts = f.backend.request_counts();
    assert_eq!(counts.get("PATCH /v1/orgs/{org}/accounts/{id}"), Some(&1));
    assert_eq!(
        counts.get("POST /v1/orgs/{org}/accounts/{id}/deactivate"),
        Some(&1)
    );
    assert_eq!(r.json(), f.gw.scim("GET", &f.user_path(), None).json());
    assert_eq!(f.backend.accounts(ORG)[0]["nick"], "Vic");
}

/// Class 14: `[users.filters]` takes the pinned element form when a field mapping pins the same
/// element, so Entra's e-mail lookup is one backend search, not a scan of every account.
#[test]
fn a_pinned_element_in_users_filters_makes_email_lookups_a_backend_search() {
    let toml = include_str!("../fixtures/alt.toml")
        .replace(
            "[users.filters]\nuserName = \"login\"",
            "[users.filters]\n'emails[type eq \"work\"].value' = \"login\"",
        )
        .replace(
            "scim = \"userName\"\nnative = \"login\"",
            "scim = 'emails[type eq \"work\"].value'\nnative = \"login\"",
        )
        .replace(
            "scim = \"nickName\"\nnative = \"nick\"",
            "scim = \"userName\"\nnative = \"nick\"",
        );
    assert!(toml.contains("'emails[type eq \"work\"].value' = \"login\""));
    let f = Fixture::with_config(&toml);
    for i in 0..3 {
        f.backend
            .seed(ORG, json!({"login": format!("other{i}@globex.test")}))
            .expect("seed");
    }
    f.backend.clear_requests();
    let lookup = enc("emails[type eq \"work\"].value eq \"VICTIM@globex.test\"");
    let r = f.gw.scim("GET", &format!("/Users?filter={lookup}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["totalResults"], 1, "{}", r.text());
    assert_eq!(r.json()["Resources"][0]["id"], f.id.as_str());
    let lists: Vec<String> = f
        .backend
        .request_log()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/accounts"))
        .map(|r| r.query.unwrap_or_default())
        .collect();
    assert!(!lists.is_empty());
    assert!(
        lists
            .iter()
            .all(|q| q.contains("login=VICTIM%40globex.test")),
        "every list call searches by login, none scans: {lists:?}"
    );
    // Another type is not the pinned element: the gateway scans, and still answers exactly.
    let home = enc("emails[type eq \"home\"].value eq \"victim@globex.test\"");
    let r = f.gw.scim("GET", &format!("/Users?filter={home}"), None);
    assert_eq!(r.json()["totalResults"], 0, "{}", r.text());
}
