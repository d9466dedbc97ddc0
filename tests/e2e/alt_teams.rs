//! The alt backend's teams (`tests/support/alt_teams.rs`) over real HTTP, without a gateway:
//! team CRUD, unique titles, member validation, the accounts' `team_ids` and `team` filter, and
//! the cascades of deletes. The gateway's SCIM `/Groups` over these routes is tested elsewhere.

use super::alt_backend::AltBackend;
use super::harness::wait_listening;
use super::http::{self, Reply};
use scimgate::gateway::server::{self, Running};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

const KEY: &str = "alt-teams-api-key";
const ORG: &str = "globex-org";
const TEAMS: &str = "/v1/orgs/globex-org/teams";
const ACCOUNTS: &str = "/v1/orgs/globex-org/accounts";

/// The alt backend alone, listening on a free loopback port.
struct Alt {
    addr: SocketAddr,
    backend: AltBackend,
    _running: Running,
}

impl Alt {
    fn start() -> Alt {
        let backend = AltBackend::new(KEY);
        let addr = server::free_port().expect("port");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut srv = server::build(server::server_conf(1, Duration::ZERO, dir.path()));
        srv.add_service(backend.service(&addr.to_string()));
        let running = Running::start(srv);
        assert!(wait_listening(addr, Duration::from_secs(10)), "alt backend");
        Alt {
            addr,
            backend,
            _running: running,
        }
    }

    /// A request with the API key and, given a body, JSON.
    fn call(&self, method: &str, target: &str, body: Option<Value>) -> Reply {
        let body = body.map(|b| b.to_string());
        let mut headers = vec![("X-Api-Key", KEY)];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        http::send(
            self.addr,
            method,
            target,
            &headers,
            body.as_deref().map(str::as_bytes),
        )
    }

    /// Seeds an account with `login` and answers its id.
    fn account(&self, org: &str, login: &str) -> String {
        let a = self
            .backend
            .seed(org, json!({ "login": login }))
            .expect("seed");
        a["id"].as_str().expect("id").to_owned()
    }

    /// Seeds a team called `title` with `members` and answers its id.
    fn team(&self, org: &str, title: &str, members: &[&str]) -> String {
        let t = self
            .backend
            .seed_team(org, json!({ "title": title, "member_ids": members }))
            .expect("seed team");
        t["id"].as_str().expect("id").to_owned()
    }

    /// The stored team `id` of the test organisation.
    fn stored_team(&self, id: &str) -> Value {
        self.backend
            .teams(ORG)
            .into_iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("no team {id}"))
    }

    /// The stored account `id` of the test organisation.
    fn stored_account(&self, id: &str) -> Value {
        self.backend
            .accounts(ORG)
            .into_iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("no account {id}"))
    }
}

/// Asserts an `{"errors":[{"code": code}]}` answer with `status`.
fn assert_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["code"], code, "{}", r.text());
}

/// The ids of a list answer's `data`.
fn ids(r: &Reply) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|v| v["id"].as_str().expect("id").to_owned())
        .collect()
}

#[test]
fn alt_team_crud_over_http() {
    let alt = Alt::start();
    let ann = alt.account(ORG, "ann");
    let r = alt.call(
        "POST",
        TEAMS,
        Some(json!({ "team": { "title": "Ops", "member_ids": [ann] } })),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let team = r.json()["data"].clone();
    let id = team["id"].as_str().expect("id").to_owned();
    let hex = id.strip_prefix("team_").expect("team_ prefix");
    assert!(
        hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(team["org"], ORG);
    assert_eq!(team["title"], "Ops");
    assert_eq!(team["member_ids"], json!([ann]));
    assert!(team["created"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(team["created"], team["modified"]);
    assert_eq!(alt.backend.teams(ORG), std::slice::from_ref(&team));

    let r = alt.call("GET", &format!("{TEAMS}/{id}"), None);
    assert_eq!((r.status, r.json()["data"].clone()), (200, team.clone()));

    // A team without members, then the list in creation order, paged and filtered.
    let r = alt.call("POST", TEAMS, Some(json!({ "team": { "title": "Dev" } })));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["data"]["member_ids"], json!([]));
    let dev = r.json()["data"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        ids(&alt.call("GET", TEAMS, None)),
        [id.as_str(), dev.as_str()]
    );
    let page = alt.call("GET", &format!("{TEAMS}?offset=1&limit=1"), None);
    assert_eq!(
        page.json()["meta"],
        json!({ "total": 2, "offset": 1, "limit": 1 })
    );
    assert_eq!(ids(&page), [dev.as_str()]);
    let found = alt.call("GET", &format!("{TEAMS}?title=oPS"), None);
    assert_eq!(ids(&found), [id.as_str()]);
    assert_eq!(found.json()["meta"]["total"], 1);
    assert_eq!(
        ids(&alt.call("GET", &format!("{TEAMS}?title=Op"), None)),
        Vec::<String>::new()
    );
    assert_error(
        &alt.call("GET", &format!("{TEAMS}?limit=x"), None),
        400,
        "validation",
    );

    // PATCH merges: the title changes, the members stay.
    std::thread::sleep(Duration::from_millis(10));
    let r = alt.call(
        "PATCH",
        &format!("{TEAMS}/{id}"),
        Some(json!({ "team": { "title": "Operations" } })),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let patched = r.json()["data"].clone();
    assert_eq!(patched["title"], "Operations");
    assert_eq!(patched["member_ids"], json!([ann]));
    assert_eq!(patched["created"], team["created"]);
    assert_ne!(patched["modified"], team["modified"]);
    let r = alt.call(
        "PATCH",
        &format!("{TEAMS}/{id}"),
        Some(json!({ "team": { "member_ids": [] } })),
    );
    assert_eq!(r.json()["data"]["member_ids"], json!([]));
    assert_eq!(r.json()["data"]["title"], "Operations");

    // Deleted, then gone.
    let r = alt.call("DELETE", &format!("{TEAMS}/{id}"), None);
    assert_eq!(r.status, 204, "{}", r.text());
    for method in ["GET", "DELETE"] {
        let r = alt.call(method, &format!("{TEAMS}/{id}"), None);
        assert_error(&r, 404, "not_found");
        assert_eq!(r.json()["data"], Value::Null);
    }
    let r = alt.call(
        "PATCH",
        &format!("{TEAMS}/{id}"),
        Some(json!({ "team": { "title": "X" } })),
    );
    assert_error(&r, 404, "not_found");
    assert_eq!(ids(&alt.call("GET", TEAMS, None)), [dev.as_str()]);

    let kinds: Vec<String> = alt
        .backend
        .request_log()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert!(
        kinds.contains(&"POST /v1/orgs/{org}/teams".to_owned()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"GET /v1/orgs/{org}/teams".to_owned()),
        "{kinds:?}"
    );
    for method in ["GET", "PATCH", "DELETE"] {
        let kind = format!("{method} /v1/orgs/{{org}}/teams/{{id}}");
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
}

#[test]
fn alt_team_titles_are_unique_per_org_ignoring_case() {
    let alt = Alt::start();
    let ops = alt.team(ORG, "Ops", &[]);
    let dev = alt.team(ORG, "Dev", &[]);
    let r = alt.call("POST", TEAMS, Some(json!({ "team": { "title": "OPS" } })));
    assert_error(&r, 409, "title_taken");
    let r = alt.call(
        "PATCH",
        &format!("{TEAMS}/{dev}"),
        Some(json!({ "team": { "title": "ops" } })),
    );
    assert_error(&r, 409, "title_taken");
    assert_eq!(alt.stored_team(&dev)["title"], "Dev");
    // A team may change the case of its own title; another organisation may use it.
    let r = alt.call(
        "PATCH",
        &format!("{TEAMS}/{ops}"),
        Some(json!({ "team": { "title": "OPS" } })),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(alt
        .backend
        .seed_team("initech-org", json!({ "title": "ops" }))
        .is_ok());
    assert_eq!(alt.backend.teams(ORG).len(), 2);
    assert_eq!(alt.backend.teams("initech-org").len(), 1);
    assert_eq!(
        alt.backend.seed_team(ORG, json!({ "title": "Dev" })),
        Err("title_taken".to_owned())
    );

    // Missing, blank or mistyped input is a validation error, like the accounts'.
    for body in [
        json!({ "team": {} }),
        json!({ "team": { "title": "  " } }),
        json!({ "team": { "title": 7 } }),
        json!({ "team": { "title": "QA", "member_ids": "acc_1" } }),
        json!({ "title": "QA" }),
    ] {
        assert_error(&alt.call("POST", TEAMS, Some(body)), 400, "validation");
    }
    let r = alt.call(
        "PATCH",
        &format!("{TEAMS}/{ops}"),
        Some(json!({ "team": { "title": "" } })),
    );
    assert_error(&r, 400, "validation");
    assert_eq!(alt.backend.teams(ORG).len(), 2);
}

#[test]
fn alt_team_members_must_be_accounts_of_the_org() {
    let alt = Alt::start();
    let ann = alt.account(ORG, "ann");
    let bob = alt.account(ORG, "bob");
    let stranger = alt.account("initech-org", "eve");
    for members in [json!(["acc_000000000000"]), json!([ann, stranger])] {
        let body = json!({ "team": { "title": "Ops", "member_ids": members } });
        assert_error(&alt.call("POST", TEAMS, Some(body)), 400, "unknown_member");
    }
    assert!(alt.backend.teams(ORG).is_empty());

    let ops = alt.team(ORG, "Ops", &[&ann]);
    let before = alt.stored_team(&ops);
    let r = alt.call(
        "PATCH",
        &format!("{TEAMS}/{ops}"),
        Some(json!({ "team": { "title": "Ops2", "member_ids": [bob, "acc_ffffffffffff"] } })),
    );
    assert_error(&r, 400, "unknown_member");
    assert_eq!(
        alt.stored_team(&ops),
        before,
        "a refused PATCH changes nothing"
    );

    // Ids are kept in order without repeats.
    let r = alt.call(
        "PATCH",
        &format!("{TEAMS}/{ops}"),
        Some(json!({ "team": { "member_ids": [bob, ann, bob] } })),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["member_ids"], json!([bob, ann]));
    // The team's members are its own record: the accounts' team_ids do not follow.
    assert_eq!(alt.stored_account(&ann)["team_ids"], json!([]));
}

#[test]
fn alt_account_team_ids_are_checked_and_filtered() {
    let alt = Alt::start();
    let ops = alt.team(ORG, "Ops", &[]);
    let dev = alt.team(ORG, "Dev", &[]);
    let foreign = alt.team("initech-org", "Ops", &[]);

    let r = alt.call(
        "POST",
        ACCOUNTS,
        Some(json!({ "account": { "login": "ann" } })),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["data"]["team_ids"], json!([]));
    let ann = r.json()["data"]["id"].as_str().expect("id").to_owned();
    let r = alt.call(
        "POST",
        ACCOUNTS,
        Some(json!({ "account": { "login": "bob", "team_ids": [ops] } })),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["data"]["team_ids"], json!([ops]));
    let bob = r.json()["data"]["id"].as_str().expect("id").to_owned();
    let r = alt.call(
        "POST",
        ACCOUNTS,
        Some(json!({ "account": { "login": "cy", "team_ids": [foreign] } })),
    );
    assert_error(&r, 400, "unknown_team");
    let r = alt.call(
        "POST",
        ACCOUNTS,
        Some(json!({ "account": { "login": "cy", "team_ids": [7] } })),
    );
    assert_error(&r, 400, "validation");
    assert_eq!(alt.backend.accounts(ORG).len(), 2);

    // PATCH merges team_ids with the other keys; a refused one changes nothing.
    let before = alt.stored_account(&ann);
    let r = alt.call(
        "PATCH",
        &format!("{ACCOUNTS}/{ann}"),
        Some(json!({ "account": { "nick": "A", "team_ids": [dev, "team_000000000000"] } })),
    );
    assert_error(&r, 400, "unknown_team");
    assert_eq!(alt.stored_account(&ann), before);
    let r = alt.call(
        "PATCH",
        &format!("{ACCOUNTS}/{ann}"),
        Some(json!({ "account": { "team_ids": [dev, ops] } })),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["team_ids"], json!([dev, ops]));
    let r = alt.call(
        "PATCH",
        &format!("{ACCOUNTS}/{ann}"),
        Some(json!({ "account": { "nick": "A" } })),
    );
    assert_eq!(r.json()["data"]["team_ids"], json!([dev, ops]));

    // The list's team filter, with paging and next to the login filter.
    let listed = alt.call("GET", &format!("{ACCOUNTS}?team={ops}"), None);
    assert_eq!(ids(&listed), [ann.as_str(), bob.as_str()]);
    assert_eq!(listed.json()["meta"]["total"], 2);
    let page = alt.call(
        "GET",
        &format!("{ACCOUNTS}?team={ops}&offset=1&limit=1"),
        None,
    );
    assert_eq!(ids(&page), [bob.as_str()]);
    assert_eq!(
        ids(&alt.call("GET", &format!("{ACCOUNTS}?team={dev}"), None)),
        [ann.as_str()]
    );
    assert_eq!(
        ids(&alt.call("GET", &format!("{ACCOUNTS}?team={dev}&login=BOB"), None)),
        Vec::<String>::new()
    );
    // The account's team_ids are its own record: the teams' member_ids do not follow.
    assert_eq!(alt.stored_team(&ops)["member_ids"], json!([]));
    let log = alt.backend.request_log();
    let query = log
        .iter()
        .rev()
        .find(|r| r.kind == "GET /v1/orgs/{org}/accounts")
        .and_then(|r| r.query.clone());
    assert_eq!(query, Some(format!("team={dev}&login=BOB")));
}

#[test]
fn alt_deletes_cascade_to_the_other_record() {
    let alt = Alt::start();
    let ann = alt.account(ORG, "ann");
    let bob = alt.account(ORG, "bob");
    let ops = alt.team(ORG, "Ops", &[&ann, &bob]);
    let dev = alt.team(ORG, "Dev", &[&bob]);
    for (who, teams) in [(&ann, json!([ops, dev])), (&bob, json!([dev]))] {
        let r = alt.call(
            "PATCH",
            &format!("{ACCOUNTS}/{who}"),
            Some(json!({ "account": { "team_ids": teams } })),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }

    // Deleting a team takes it out of every account's team_ids.
    let ann_before = alt.stored_account(&ann);
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(
        alt.call("DELETE", &format!("{TEAMS}/{dev}"), None).status,
        204
    );
    let ann_after = alt.stored_account(&ann);
    assert_eq!(ann_after["team_ids"], json!([ops]));
    assert_ne!(ann_after["modified"], ann_before["modified"]);
    assert_eq!(alt.stored_account(&bob)["team_ids"], json!([]));
    assert_eq!(
        ids(&alt.call("GET", &format!("{ACCOUNTS}?team={dev}"), None)),
        Vec::<String>::new()
    );

    // Deleting an account takes it out of every team's member_ids.
    assert_eq!(
        alt.call("DELETE", &format!("{ACCOUNTS}/{bob}"), None)
            .status,
        204
    );
    assert_eq!(alt.stored_team(&ops)["member_ids"], json!([ann]));
    assert_eq!(
        alt.call("DELETE", &format!("{ACCOUNTS}/{ann}"), None)
            .status,
        204
    );
    assert_eq!(alt.stored_team(&ops)["member_ids"], json!([]));
}

#[test]
fn alt_team_routes_check_the_key_and_take_faults() {
    let alt = Alt::start();
    let ops = alt.team(ORG, "Ops", &[]);
    let r = http::send(alt.addr, "GET", TEAMS, &[], None);
    assert_error(&r, 401, "unauthenticated");

    alt.backend.fail_next("/teams", 503);
    assert_error(
        &alt.call("GET", &format!("{TEAMS}/{ops}"), None),
        503,
        "injected",
    );
    alt.backend.fail_next_method("PATCH", "/teams/", 500);
    assert_eq!(alt.call("GET", &format!("{TEAMS}/{ops}"), None).status, 200);
    let r = alt.call(
        "PATCH",
        &format!("{TEAMS}/{ops}"),
        Some(json!({ "team": { "title": "Changed" } })),
    );
    assert_error(&r, 500, "injected");
    assert_eq!(alt.stored_team(&ops)["title"], "Ops");
    alt.backend
        .respond_next("/teams", 200, json!({ "data": [] }));
    assert_eq!(alt.call("GET", TEAMS, None).json(), json!({ "data": [] }));
    alt.backend.delay_next("/teams", Duration::from_millis(300));
    let started = std::time::Instant::now();
    assert_eq!(alt.call("GET", TEAMS, None).status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    let r = alt.call(
        "PUT",
        &format!("{TEAMS}/{ops}"),
        Some(json!({ "team": {} })),
    );
    assert_error(&r, 405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, PATCH, DELETE"));
    let r = alt.call("DELETE", TEAMS, None);
    assert_eq!(r.header("allow"), Some("GET, POST"));

    let counts = alt.backend.request_counts();
    assert_eq!(
        counts.get("GET /v1/orgs/{org}/teams"),
        Some(&3),
        "{counts:?}"
    );
    assert_eq!(
        counts.get("GET /v1/orgs/{org}/teams/{id}"),
        Some(&2),
        "{counts:?}"
    );
    assert_eq!(
        counts.get("PATCH /v1/orgs/{org}/teams/{id}"),
        Some(&1),
        "{counts:?}"
    );
    assert_eq!(
        counts.get("PUT /v1/orgs/{org}/teams/{id}"),
        Some(&1),
        "{counts:?}"
    );
    assert_eq!(
        counts.get("DELETE /v1/orgs/{org}/teams"),
        Some(&1),
        "{counts:?}"
    );
}
