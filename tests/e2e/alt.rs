//! The demo's SCIM scenarios against the "alt" backend (`tests/support/alt_backend.rs`), whose API
//! differs in every way, with nothing but `tests/fixtures/alt.toml`; then the failures of
//! operations that take several backend calls, with faults injected into the backend.

use super::alt_backend::AltBackend;
use super::harness::{assert_scim_error, enc, Gateway};
use super::scenarios::{self, create_body, filter, ids, patch};
use scimgate::config::Config;
use scimgate::gateway::server;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The alt backend's API key, in `SCIMGATE_ALT_API_KEY`; every test uses the same value.
const ALT_API_KEY: &str = "alt-e2e-api-key";
/// The backend's name of tenant `globex`.
pub(super) const ORG: &str = "globex-org";
const CREATE: &str = "POST /v1/orgs/{org}/accounts";
const LIST: &str = "GET /v1/orgs/{org}/accounts";
const DELETE: &str = "DELETE /v1/orgs/{org}/accounts/{id}";
const DEACTIVATE: &str = "POST /v1/orgs/{org}/accounts/{id}/deactivate";
const ACTIVATE: &str = "POST /v1/orgs/{org}/accounts/{id}/activate";

/// A gateway configured by `tests/fixtures/alt.toml` in front of a fresh alt backend, with a SCIM
/// key for tenant `globex`.
fn alt_gateway() -> (Gateway, AltBackend) {
    alt_gateway_with(|_| {})
}

/// Like [`alt_gateway`], with `adjust` applied to the config last.
pub(super) fn alt_gateway_with(adjust: impl FnOnce(&mut Config)) -> (Gateway, AltBackend) {
    alt_gateway_from(include_str!("../fixtures/alt.toml"), adjust)
}

/// Like [`alt_gateway_with`], with the config file's text given (`tests/fixtures/alt.toml` with
/// changes, or another alt fixture such as [`super::alt_upstream::ALT_USER_GROUPS`], whose
/// group members are kept on the accounts).
pub(super) fn alt_gateway_from(
    toml: &str,
    adjust: impl FnOnce(&mut Config),
) -> (Gateway, AltBackend) {
    std::env::set_var("SCIMGATE_ALT_API_KEY", ALT_API_KEY);
    let backend = AltBackend::new(ALT_API_KEY);
    let gw = Gateway::fixture("alt.toml", toml, "globex", adjust, |addr| {
        backend.service(addr)
    });
    (gw, backend)
}

/// How many requests the backend's route `route` received.
fn calls(backend: &AltBackend, route: &str) -> usize {
    backend.request_counts().get(route).copied().unwrap_or(0)
}

/// The backend's account `id` of tenant `globex`.
fn account(backend: &AltBackend, id: &str) -> Value {
    backend
        .accounts(ORG)
        .into_iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no account {id} in the backend"))
}

/// The SCIM error's detail.
fn detail(r: &super::http::Reply) -> String {
    r.json()["detail"].as_str().unwrap_or_default().to_string()
}

// ---- the demo's scenarios ------------------------------------------------------------------

#[test]
fn test_connection_gets_an_empty_list_response() {
    let (gw, backend) = alt_gateway();
    scenarios::test_connection(&gw);
    let log = backend.request_log();
    assert!(
        !log.is_empty() && log.iter().all(|r| r.kind == LIST),
        "{log:?}"
    );
    assert_eq!(
        log[0].query.as_deref(),
        Some("offset=0&limit=50&login=f7a1c2d4-9b7e-4c47-8f3a-1f2e3d4c5b6a"),
        "the lookup is the backend's own search"
    );
}

#[test]
fn create_then_read_back_exactly_and_409_on_duplicate() {
    let (gw, backend) = alt_gateway();
    let created = scenarios::create_read_back_and_conflict(&gw);
    let id = created["id"].as_str().unwrap();
    assert!(
        id.starts_with("acc_"),
        "the SCIM id is the backend's id: {id}"
    );
    let native = account(&backend, id);
    assert_eq!(native["login"], "alice@contoso.com");
    assert_eq!(native["given"], "Alice");
    assert_eq!(native["family"], "Smith");
    assert_eq!(native["nick"], Value::Null);
    assert_eq!(native["active"], true);
    assert_eq!(backend.accounts(ORG).len(), 1);
    assert_eq!(
        calls(&backend, CREATE),
        2,
        "the duplicate reached the backend"
    );
    assert_eq!(calls(&backend, DEACTIVATE), 0);
}

#[test]
fn lookups_by_every_matching_attribute() {
    let (gw, backend) = alt_gateway();
    scenarios::lookups(&gw);
    // Accounts that SCIM never wrote are found too.
    let seeded = backend
        .seed(
            ORG,
            json!({"login": "bob@globex.test", "given": "Bob", "family": "Lee"}),
        )
        .expect("seed");
    let found = filter(&gw, "userName eq \"BOB@globex.test\"");
    assert_eq!(found["totalResults"], 1);
    let bob = &found["Resources"][0];
    assert_eq!(bob["id"], seeded["id"]);
    assert_eq!(
        bob["name"],
        json!({"givenName": "Bob", "familyName": "Lee"})
    );
    assert_eq!(bob["active"], true);
    assert_eq!(bob["meta"]["created"], seeded["created"]);
}

#[test]
fn invalid_filters_are_400_never_an_unfiltered_list() {
    let (gw, backend) = alt_gateway();
    scenarios::invalid_filters(&gw);
    assert!(backend.requests().is_empty(), "{:?}", backend.requests());
}

#[test]
fn patch_default_dialect_and_disable_reenable() {
    let (gw, backend) = alt_gateway();
    let mgr = scenarios::create(&gw, "boss@contoso.com", "boss");
    let id = scenarios::disable_with_default_dialect(&gw, &mgr);
    // The backend really holds the change, made through its deactivate call.
    let native = account(&backend, &id);
    assert_eq!(native["active"], false);
    assert_eq!(native["family"], "Smyth");
    assert_eq!(native["login"], "alice@contoso.com");
    assert_eq!(calls(&backend, DEACTIVATE), 1);
    assert_eq!(calls(&backend, ACTIVATE), 0);
    scenarios::reenable(&gw, &id);
    assert_eq!(account(&backend, &id)["active"], true);
    assert_eq!(calls(&backend, ACTIVATE), 1);
    assert_eq!(calls(&backend, DEACTIVATE), 1);
    assert_eq!(account(&backend, &mgr)["active"], true);
}

#[test]
fn patch_aad_opt_dialect_with_pathless_value_object() {
    let (gw, backend) = alt_gateway();
    let id = scenarios::patch_aad_opt_dialect(&gw);
    let native = account(&backend, &id);
    assert_eq!(native["given"], "Alicia");
    assert_eq!(native["family"], "Smyth");
    assert_eq!(native["active"], false);
    assert_eq!(calls(&backend, DEACTIVATE), 1);
    // `active` is changed only by its own calls, and has no default: a PUT that leaves it out
    // leaves the account disabled.
    let u = scenarios::put_without_active(&gw, &id);
    assert_eq!(u["active"], false, "{u}");
    let native = account(&backend, &id);
    assert_eq!(native["given"], "Alison");
    assert_eq!(native["active"], false);
    assert_eq!(calls(&backend, ACTIVATE), 0);
}

#[test]
fn manager_shapes_all_read_back_as_value_object() {
    let (gw, _backend) = alt_gateway();
    scenarios::manager_shapes(&gw);
}

#[test]
fn filtered_path_creates_missing_element() {
    let (gw, _backend) = alt_gateway();
    scenarios::filtered_path_creates_missing_element(&gw);
}

#[test]
fn read_only_attributes_give_mutability() {
    let (gw, _backend) = alt_gateway();
    scenarios::read_only_attributes(&gw);
}

#[test]
fn delete_then_404() {
    let (gw, backend) = alt_gateway();
    let id = scenarios::delete_then_404(&gw, "acc_000000000000");
    assert!(backend.accounts(ORG).is_empty());
    assert!(backend
        .requests()
        .contains(&format!("DELETE /v1/orgs/{ORG}/accounts/{id}")));
}

#[test]
fn paging_over_more_users_than_the_backends_largest_page() {
    let (gw, backend) = alt_gateway();
    // 60 users, 55 a page: more than the backend's largest page (50).
    let seen = scenarios::paging(&gw, 0, 60, 55);
    let native: Vec<String> = backend
        .accounts(ORG)
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen, native, "the backend's order");
    for (start, count) in [(7, 55), (48, 5), (50, 3), (51, 50), (60, 10), (61, 10)] {
        let r = gw.scim(
            "GET",
            &format!("/Users?startIndex={start}&count={count}"),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let page = r.json();
        let from = (start - 1).min(60);
        let expected = &seen[from..(from + count).min(60)];
        assert_eq!(page["totalResults"], 60);
        assert_eq!(page["startIndex"], start);
        assert_eq!(page["itemsPerPage"], expected.len());
        assert_eq!(ids(&page), expected, "startIndex={start}&count={count}");
    }
    // Without count: scim.max_results (100), so everything.
    assert_eq!(ids(&gw.scim("GET", "/Users", None).json()), seen);
    for r in backend.request_log().iter().filter(|r| r.kind == LIST) {
        let query = r.query.as_deref().unwrap_or("");
        let limit: usize = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "limit")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_else(|| panic!("no limit in {query}"));
        assert!(limit <= 50, "asked the backend for {limit} a page: {query}");
        assert_eq!(r.status, 200);
    }
}

#[test]
fn put_replaces_the_user() {
    let (gw, backend) = alt_gateway();
    let id = scenarios::put_replaces(&gw);
    let native = account(&backend, &id);
    assert_eq!(native["given"], "Al");
    assert_eq!(native["active"], false);
    assert_eq!(calls(&backend, DEACTIVATE), 1);
    // `active` is changed only by its own calls, and has no default: a PUT that leaves it out
    // leaves the account disabled.
    let u = scenarios::put_without_active(&gw, &id);
    assert_eq!(u["active"], false, "{u}");
    let native = account(&backend, &id);
    assert_eq!(native["given"], "Alison");
    assert_eq!(native["active"], false);
    assert_eq!(calls(&backend, ACTIVATE), 0);
}

#[test]
fn bad_bodies_get_scim_errors_and_nothing_is_written() {
    let (gw, backend) = alt_gateway();
    scenarios::bad_bodies(&gw);
    assert!(backend.accounts(ORG).is_empty());
    assert_eq!(calls(&backend, CREATE), 0);
}

// ---- failures of multi-call operations -----------------------------------------------------

fn inactive_alice() -> Value {
    let mut body = create_body("alice@contoso.com", "e1");
    body["active"] = json!(false);
    body
}

#[test]
fn inactive_create_whose_deactivate_fails_is_undone() {
    let (gw, backend) = alt_gateway();
    backend.fail_next("/deactivate", 500);
    let r = gw.scim("POST", "/Users", Some(&inactive_alice()));
    assert_scim_error(&r, 502, None);
    assert!(detail(&r).contains("nothing was applied"), "{}", r.text());
    assert!(backend.accounts(ORG).is_empty(), "the account was removed");
    let routes: Vec<String> = backend.request_log().into_iter().map(|r| r.kind).collect();
    assert_eq!(routes, [CREATE, DEACTIVATE, DELETE]);
    assert_eq!(filter(&gw, "externalId eq \"e1\"")["totalResults"], 0);
    // Entra retries the same POST in its next cycle: it succeeds.
    let r = gw.scim("POST", "/Users", Some(&inactive_alice()));
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    assert_eq!(created["active"], false);
    let id = created["id"].as_str().unwrap();
    assert_eq!(account(&backend, id)["active"], false);
    assert_eq!(backend.accounts(ORG).len(), 1);
    assert_eq!(
        gw.scim("GET", &format!("/Users/{id}"), None).json(),
        created
    );
}

#[test]
fn inactive_create_whose_undo_fails_says_where_the_account_is() {
    let (gw, backend) = alt_gateway();
    backend.fail_next("/deactivate", 500);
    backend.fail_next_method("DELETE", "/accounts/", 503);
    let r = gw.scim("POST", "/Users", Some(&inactive_alice()));
    assert_scim_error(&r, 502, None);
    let accounts = backend.accounts(ORG);
    assert_eq!(accounts.len(), 1, "the account could not be removed");
    let id = accounts[0]["id"].as_str().unwrap();
    let d = detail(&r);
    assert!(
        d.contains(id) && d.contains("could not be removed"),
        "the detail names the account left behind: {d}"
    );
    assert!(!d.contains("nothing was applied"), "{d}");
}

#[test]
fn create_refused_with_500_is_502_and_writes_nothing() {
    let (gw, backend) = alt_gateway();
    backend.fail_next_method("POST", "/accounts", 500);
    let r = gw.scim(
        "POST",
        "/Users",
        Some(&create_body("alice@contoso.com", "e1")),
    );
    assert_scim_error(&r, 502, None);
    assert!(detail(&r).contains("500"), "{}", r.text());
    assert!(backend.accounts(ORG).is_empty());
    let routes: Vec<String> = backend.request_log().into_iter().map(|r| r.kind).collect();
    assert_eq!(routes, [CREATE], "no retry of a POST, nothing to undo");
    assert_eq!(filter(&gw, "externalId eq \"e1\"")["totalResults"], 0);
    assert_eq!(
        filter(&gw, "userName eq \"alice@contoso.com\"")["totalResults"],
        0
    );
}

#[test]
fn patch_whose_deactivate_fails_keeps_the_other_changes_and_says_so() {
    let (gw, backend) = alt_gateway();
    let id = scenarios::create(&gw, "alice@contoso.com", "e1");
    backend.fail_next("/deactivate", 500);
    let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "Replace", "path": "name.familyName", "value": "Smyth"},
        {"op": "Replace", "path": format!("{}:department", scenarios::ENTERPRISE), "value": "Ops"},
        {"op": "Replace", "path": "active", "value": "False"}]});
    let r = gw.scim("PATCH", &format!("/Users/{id}"), Some(&ops));
    assert_scim_error(&r, 502, None);
    assert!(
        detail(&r).contains("the other attributes were updated, `active` was not"),
        "{}",
        r.text()
    );
    let got = gw.scim("GET", &format!("/Users/{id}"), None).json();
    assert_eq!(got["name"]["familyName"], "Smyth");
    assert_eq!(got[scenarios::ENTERPRISE]["department"], "Ops");
    assert_eq!(got["active"], true);
    let native = account(&backend, &id);
    assert_eq!(
        (native["family"].clone(), native["active"].clone()),
        (json!("Smyth"), json!(true))
    );
    // The same PATCH again finishes the job.
    let u = patch(&gw, &id, ops["Operations"].clone());
    assert_eq!(u["active"], false);
    assert_eq!(account(&backend, &id)["active"], false);
    assert_eq!(calls(&backend, DEACTIVATE), 2);
}

#[test]
fn backend_400_is_invalid_value() {
    let (gw, backend) = alt_gateway();
    backend.fail_next_method("POST", "/accounts", 400);
    let r = gw.scim(
        "POST",
        "/Users",
        Some(&create_body("alice@contoso.com", "e1")),
    );
    assert_scim_error(&r, 400, Some("invalidValue"));
    assert!(backend.accounts(ORG).is_empty());
    let id = scenarios::create(&gw, "alice@contoso.com", "e1");
    backend.fail_next_method("PATCH", "/accounts/", 400);
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "replace", "path": "name.familyName", "value": "Smyth"}]});
    let r = gw.scim("PATCH", &format!("/Users/{id}"), Some(&body));
    assert_scim_error(&r, 400, Some("invalidValue"));
    let got = gw.scim("GET", &format!("/Users/{id}"), None).json();
    assert_eq!(got["name"]["familyName"], "Smith", "nothing changed");
    assert_eq!(account(&backend, &id)["family"], "Smith");
}

#[test]
fn answers_that_do_not_match_the_mapping_are_502() {
    let (gw, backend) = alt_gateway();
    let id = scenarios::create(&gw, "alice@contoso.com", "e1");
    let path = format!("/Users/{id}");
    let user_name = format!("/Users?filter={}", enc("userName eq \"alice@contoso.com\""));
    for (target, answer) in [
        (
            path.as_str(),
            json!({"account": {"id": id, "login": "alice@contoso.com"}}),
        ),
        (path.as_str(), json!({"data": "alice"})),
        (user_name.as_str(), json!({"accounts": [], "total": 0})),
        (
            user_name.as_str(),
            json!({"data": {"id": id}, "meta": {"total": 1}}),
        ),
    ] {
        backend.respond_next("/accounts", 200, answer.clone());
        let r = gw.scim("GET", target, None);
        assert_scim_error(&r, 502, None);
        assert!(
            detail(&r).contains("does not match the configured mapping"),
            "{answer} for GET {target}: {}",
            r.text()
        );
    }
    backend.respond_next("/accounts", 200, id_less_account());
    let r = gw.scim("GET", "/Users", None);
    assert_scim_error(&r, 502, None);
    assert!(detail(&r).contains("id_field"), "{}", r.text());
    assert_eq!(
        gw.scim("GET", &path, None).status,
        200,
        "faults are used once"
    );
}

/// A list answer whose account lacks the id field (`users.id_field`).
fn id_less_account() -> Value {
    json!({"data": [{"login": "alice@contoso.com"}], "meta": {"total": 1}})
}

#[test]
fn lookup_answered_with_an_account_without_id_is_502() {
    let (gw, backend) = alt_gateway();
    backend.respond_next("/accounts", 200, id_less_account());
    let r = gw.scim(
        "GET",
        &format!("/Users?filter={}", enc("userName eq \"alice@contoso.com\"")),
        None,
    );
    assert_scim_error(&r, 502, None);
    assert!(detail(&r).contains("id_field"), "{}", r.text());
}

#[test]
fn backend_down_is_502() {
    let closed = server::free_port().expect("port");
    let (gw, backend) = alt_gateway_with(|c| c.backend.address = closed);
    let lookup = format!("/Users?filter={}", enc("userName eq \"alice@contoso.com\""));
    for (method, path, body) in [
        ("GET", lookup.as_str(), None),
        ("GET", "/Users/acc_0123456789ab", None),
        (
            "POST",
            "/Users",
            Some(create_body("alice@contoso.com", "e1")),
        ),
        ("DELETE", "/Users/acc_0123456789ab", None),
    ] {
        let r = gw.scim(method, path, body.as_ref());
        assert_scim_error(&r, 502, None);
        assert!(
            detail(&r).contains("unreachable"),
            "{method} {path}: {}",
            r.text()
        );
    }
    assert!(backend.requests().is_empty());
}

#[test]
fn backend_slower_than_the_timeouts_is_504() {
    // Connect and read timeouts of 300 ms: no backend call may take longer than 900 ms.
    let (gw, backend) = alt_gateway_with(|c| {
        c.backend.connect_timeout = Duration::from_millis(300);
        c.backend.read_timeout = Duration::from_millis(300);
    });
    let id = scenarios::create(&gw, "alice@contoso.com", "e1");
    // Slow every time (the gateway retries a GET once on a pooled connection).
    backend.delay_next("/accounts/", Duration::from_secs(3));
    backend.delay_next("/accounts/", Duration::from_secs(3));
    let started = Instant::now();
    let r = gw.scim("GET", &format!("/Users/{id}"), None);
    assert_scim_error(&r, 504, None);
    assert!(detail(&r).contains("in time"), "{}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered before the backend: {:?}",
        started.elapsed()
    );
    // Calls the delays do not match (the list has no `/accounts/`) still answer.
    let found = filter(&gw, "userName eq \"alice@contoso.com\"");
    assert_eq!(found["Resources"][0]["id"], id.as_str());
}

#[test]
fn backend_slower_than_the_read_timeout_is_504() {
    // alt.toml's connect timeout (2 s) leaves the read timeout to do the work.
    let (gw, backend) = alt_gateway_with(|c| c.backend.read_timeout = Duration::from_millis(300));
    let id = scenarios::create(&gw, "alice@contoso.com", "e1");
    // A timeout is never retried, so one slow answer is enough.
    backend.delay_next("/accounts/", Duration::from_secs(2));
    let started = Instant::now();
    let r = gw.scim("GET", &format!("/Users/{id}"), None);
    assert_scim_error(&r, 504, None);
    assert!(detail(&r).contains("in time"), "{}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered before the backend: {:?}",
        started.elapsed()
    );
    // The backend answers in time again.
    let r = gw.scim("GET", &format!("/Users/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
}
