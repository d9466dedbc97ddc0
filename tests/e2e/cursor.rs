//! Cursor paging (RFC 9865) through real sockets: a 5,000-user demo directory walked while users
//! come and go, cursors refused when forged, expired, or used by another tenant or query, a
//! cursor continued on another instance holding the same key, groups, and a backend that pages
//! by its own continuation token (`tests/fixtures/tokens.toml`).

use super::harness::{assert_scim_error, enc, Gateway, PASSWORD};
use super::http;
use super::tokens_backend::TokensBackend;
use scimgate::auth::{ApiKey, Keyring, Tenant};
use scimgate::commands::{demo_config, DemoOptions};
use scimgate::config::Config;
use scimgate::gateway::server;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The variable holding the fleet's cursor key in these tests (48 bytes).
const KEY_VAR: &str = "SCIMGATE_TEST_CURSOR_KEY";
const KEY: &str = "cursor-key-for-the-e2e-tests-0123456789abcdefgh";
/// The demo backend's credential (see the harness).
const SERVICE: &str = "Bearer test-service-token";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// One page: its ids and the next cursor.
fn page(gw: &Gateway, token: &str, path: &str) -> (Vec<String>, Option<String>, Value) {
    let r = gw.scim_as(token, "GET", path, None);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    let body = r.json();
    assert_eq!(
        body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );
    assert!(body.get("startIndex").is_none(), "{body}");
    let ids: Vec<String> = body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(body["itemsPerPage"], ids.len());
    let next = body["nextCursor"].as_str().map(str::to_string);
    (ids, next, body)
}

/// Every id of a cursor walk of `list` (`/Users?attributes=userName`, say), `count` a page.
fn walk(gw: &Gateway, token: &str, list: &str, count: usize) -> Vec<String> {
    let sep = if list.contains('?') { '&' } else { '?' };
    let mut cursor = String::new();
    let mut all = Vec::new();
    loop {
        let path = format!("{list}{sep}cursor={cursor}&count={count}");
        let (ids, next, _) = page(gw, token, &path);
        assert!(ids.len() <= count);
        all.extend(ids);
        match next {
            Some(n) => cursor = n,
            None => return all,
        }
    }
}

/// A demo member created in the backend directly; its id.
fn seed(backend: SocketAddr, email: &str) -> String {
    let body = json!({ "email": email }).to_string();
    let r = http::send(
        backend,
        "POST",
        "/api/teams/acme/members",
        &[
            ("Authorization", SERVICE),
            ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].to_string()
}

/// Deletes a demo member in the backend directly.
fn remove(backend: SocketAddr, id: &str) {
    let r = http::send(
        backend,
        "DELETE",
        &format!("/api/teams/acme/members/{id}"),
        &[("Authorization", SERVICE)],
        None,
    );
    assert!(r.status == 204 || r.status == 200, "{}", r.text());
}

/// Seeds `emails` on 8 threads; their ids, in the order of `emails`.
fn seed_all(backend: SocketAddr, emails: &[String]) -> Vec<String> {
    let chunks: Vec<&[String]> = emails.chunks(emails.len().div_ceil(8)).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|c| s.spawn(move || c.iter().map(|e| seed(backend, e)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("seeder"))
            .collect()
    })
}

/// The demo with a second tenant, `globex`: the keys of acme and globex.
fn two_tenants(adjust: impl FnOnce(&mut Config)) -> (Gateway, String, String) {
    let acme_key = scimgate::auth::generate_key();
    let globex_key = scimgate::auth::generate_key();
    let (a, g) = (acme_key.clone(), globex_key.clone());
    let gw = Gateway::demo_with(move |c| {
        let acme = c
            .tenants
            .iter()
            .find(|t| t.name == "acme")
            .cloned()
            .expect("acme");
        let globex = Arc::new(Tenant {
            name: "globex".into(),
            backend_name: "globex".into(),
        });
        c.tenants.push(globex.clone());
        c.keyring = Keyring::new(vec![
            ApiKey::from_secret(acme, &a),
            ApiKey::from_secret(globex, &g),
        ]);
        adjust(c);
    });
    (gw, acme_key, globex_key)
}

/// Another gateway instance in front of `first`'s demo backend, with its own store.
fn another_instance(first: &Gateway, adjust: impl FnOnce(&mut Config)) -> Gateway {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = DemoOptions {
        listen: server::free_port().expect("port"),
        token: first.token.clone(),
        password: PASSWORD.into(),
        data: dir.path().to_path_buf(),
    };
    let mut config = demo_config(&opts, first.backends[0]).expect("demo config");
    adjust(&mut config);
    let srv = server::build(server::server_conf(2, Duration::ZERO, dir.path()));
    Gateway::start(srv, config, first.token.clone(), dir, &[])
}

#[test]
fn a_5000_user_directory_is_walked_once_while_users_come_and_go() {
    let started = Instant::now();
    let gw = Gateway::demo();
    let backend = gw.backends[0];
    // Every tenth member is deleted during the walk; the others stay throughout.
    let emails: Vec<String> = (0..5500).map(|i| format!("load{i}@acme.test")).collect();
    let ids = seed_all(backend, &emails);
    let before = walk(&gw, &gw.token, "/Users?attributes=userName", 100);
    let churn: Vec<String> = ids.iter().step_by(10).cloned().collect();
    let churned: HashSet<&String> = churn.iter().collect();
    let stable: HashSet<String> = before
        .iter()
        .filter(|id| !churned.contains(id))
        .cloned()
        .collect();
    assert!(stable.len() >= 4950, "{}", stable.len());
    let walking = AtomicBool::new(true);
    let (seen, churned_during) = std::thread::scope(|s| {
        let churner = s.spawn(|| {
            let mut n = 0;
            for id in &churn {
                if !walking.load(Ordering::Relaxed) {
                    break;
                }
                remove(backend, id);
                seed(backend, &format!("new{n}@acme.test"));
                n += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            n
        });
        let seen = walk(&gw, &gw.token, "/Users?attributes=userName", 100);
        walking.store(false, Ordering::Relaxed);
        (seen, churner.join().expect("churner"))
    });
    assert!(
        churned_during >= 50,
        "the walk overlapped {churned_during} deletions only"
    );
    let mut counts: HashMap<&String, usize> = HashMap::new();
    for id in &seen {
        *counts.entry(id).or_default() += 1;
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "seen twice: {repeated:?}");
    let missed: Vec<_> = stable
        .iter()
        .filter(|id| !counts.contains_key(id))
        .collect();
    assert!(
        missed.is_empty(),
        "{} missed: {:?}",
        missed.len(),
        &missed[..missed.len().min(10)]
    );
    let numbers: Vec<u64> = seen.iter().map(|id| id.parse().expect("numeric")).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "in id order");
    eprintln!(
        "5,000-user cursor walk, {churned_during} users deleted and created during it: {:?}",
        started.elapsed()
    );
}

#[test]
fn forged_edited_expired_and_misapplied_cursors_are_refused() {
    let (gw, acme, globex) = two_tenants(|c| c.scim.cursor_timeout_secs = 2);
    for i in 0..5 {
        seed(gw.backends[0], &format!("c{i}@acme.test"));
    }
    let (_, next, body) = page(&gw, &acme, "/Users?cursor=&count=2");
    let cursor = next.expect("more pages");
    assert!(
        body["totalResults"].as_u64().is_some_and(|t| t >= 5),
        "{body}"
    );
    assert!(cursor
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c)));
    // The cursor works for the same tenant and query, with another count.
    let (ids, _, _) = page(&gw, &acme, &format!("/Users?cursor={cursor}&count=3"));
    assert_eq!(ids.len(), 3);
    let mut edited = cursor.clone().into_bytes();
    let last = edited.len() - 3;
    edited[last] = if edited[last] == b'A' { b'B' } else { b'A' };
    let edited = String::from_utf8(edited).expect("ascii");
    for (token, path) in [
        (&acme, format!("/Users?cursor={edited}&count=2")),
        (&acme, "/Users?cursor=bm90LWEtY3Vyc29y&count=2".to_string()),
        (&acme, "/Users?cursor=%21%21&count=2".to_string()),
        (&globex, format!("/Users?cursor={cursor}&count=2")),
        (
            &acme,
            format!(
                "/Users?cursor={cursor}&count=2&filter={}",
                enc("userName sw \"c\"")
            ),
        ),
        (&acme, format!("/Users?cursor={cursor}&attributes=userName")),
        (&acme, format!("/Groups?cursor={cursor}")),
    ] {
        let r = gw.scim_as(token, "GET", &path, None);
        assert_scim_error(&r, 400, Some("invalidCursor"));
    }
    let r = gw.scim_as(
        &acme,
        "POST",
        "/Users/.search",
        Some(&json!({"schemas": [SEARCH], "cursor": edited})),
    );
    assert_scim_error(&r, 400, Some("invalidCursor"));
    for count in ["0", "-5", "ten"] {
        let r = gw.scim_as(&acme, "GET", &format!("/Users?cursor=&count={count}"), None);
        assert_scim_error(&r, 400, Some("invalidCount"));
    }
    let r = gw.scim_as(&acme, "GET", "/Users?cursor=&startIndex=1", None);
    assert_scim_error(&r, 400, Some("invalidValue"));
    let r = gw.scim_as(
        &acme,
        "POST",
        "/.search",
        Some(&json!({"schemas": [SEARCH], "cursor": ""})),
    );
    assert_scim_error(&r, 400, Some("invalidValue"));
    std::thread::sleep(Duration::from_millis(3100));
    let r = gw.scim_as(
        &acme,
        "GET",
        &format!("/Users?cursor={cursor}&count=2"),
        None,
    );
    assert_scim_error(&r, 400, Some("expiredCursor"));
}

#[test]
fn service_provider_config_advertises_both_pagings() {
    let gw = Gateway::demo();
    let spc = gw.scim("GET", "/ServiceProviderConfig", None).json();
    assert_eq!(
        spc["pagination"],
        json!({"cursor": true, "index": true, "defaultPaginationMethod": "index",
               "defaultPageSize": 100, "maxPageSize": 100, "cursorTimeout": 3600})
    );
    // Index paging stays the default: no cursor in its answers.
    let body = gw.scim("GET", "/Users?count=1", None).json();
    assert_eq!(body["startIndex"], 1);
    assert!(body.get("nextCursor").is_none(), "{body}");
}

#[test]
fn a_cursor_is_continued_by_another_instance_with_the_same_key() {
    std::env::set_var(KEY_VAR, KEY);
    let keyed = |c: &mut Config| c.scim.cursor_key_env = Some(KEY_VAR.into());
    let a = Gateway::demo_with(keyed);
    seed_all(
        a.backends[0],
        &(0..30)
            .map(|i| format!("f{i}@acme.test"))
            .collect::<Vec<_>>(),
    );
    let b = another_instance(&a, keyed);
    let stranger = another_instance(&a, |_| {});
    let mut cursor = String::new();
    let mut seen = Vec::new();
    for turn in 0.. {
        // Pages alternate between the instances.
        let gw = if turn % 2 == 0 { &a } else { &b };
        let (ids, next, _) = page(gw, &a.token, &format!("/Users?cursor={cursor}&count=7"));
        seen.extend(ids);
        if turn == 1 {
            let r = stranger.scim(
                "GET",
                &format!("/Users?cursor={}&count=7", next.clone().expect("more")),
                None,
            );
            assert_scim_error(&r, 400, Some("invalidCursor"));
        }
        match next {
            Some(n) => cursor = n,
            None => break,
        }
    }
    assert_eq!(
        seen,
        walk(&a, &a.token, "/Users", 100),
        "the same walk as on one instance"
    );
    assert!(seen.len() >= 30);
}

#[test]
fn groups_are_walked_by_cursor_too() {
    let gw = Gateway::demo();
    for i in 0..7 {
        let r = gw.scim(
            "POST",
            "/Groups",
            Some(&json!({"schemas": [GROUP], "displayName": format!("Team {i}")})),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let all = walk(&gw, &gw.token, "/Groups?excludedAttributes=members", 100);
    assert_eq!(all.len(), 8, "7 and the demo's project");
    assert_eq!(walk(&gw, &gw.token, "/Groups", 3), all);
    let filtered = walk(
        &gw,
        &gw.token,
        &format!("/Groups?filter={}", enc("displayName sw \"Team\"")),
        2,
    );
    assert_eq!(filtered.len(), 7);
    // POST /Groups/.search takes the cursor in its body.
    let mut cursor = String::new();
    let mut seen = Vec::new();
    loop {
        let r = gw.scim(
            "POST",
            "/Groups/.search",
            Some(&json!({"schemas": [SEARCH], "cursor": cursor, "count": 3})),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let body = r.json();
        seen.extend(
            body["Resources"]
                .as_array()
                .expect("list")
                .iter()
                .map(|g| g["id"].as_str().expect("id").to_string()),
        );
        match body["nextCursor"].as_str() {
            Some(n) => cursor = n.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, all);
}

#[test]
fn a_filter_the_gateway_evaluates_is_walked_in_id_order() {
    let gw = Gateway::demo();
    let ids = seed_all(
        gw.backends[0],
        &(0..40)
            .map(|i| format!("eval{i}@acme.test"))
            .collect::<Vec<_>>(),
    );
    // `sw` on userName is evaluated in the gateway over a scan of the backend.
    let list = format!("/Users?filter={}", enc("userName sw \"eval\""));
    let seen = walk(&gw, &gw.token, &list, 6);
    let mut expected = ids;
    expected.sort_by_key(|id| id.parse::<u64>().expect("numeric"));
    assert_eq!(seen, expected);
}

// ---- a backend paging by its own token ------------------------------------------------------

const ORG: &str = "initech-org";

fn tokens_gateway() -> (Gateway, TokensBackend) {
    tokens_gateway_from(include_str!("../fixtures/tokens.toml"))
}

/// The tokens backend behind `tests/fixtures/tokens.toml` changed to keyset paging (`after`).
fn keyset_gateway() -> (Gateway, TokensBackend) {
    let text = include_str!("../fixtures/tokens.toml");
    let keyset = text.replace(
        r#"paging = { style = "cursor", cursor = "page_token", size = "limit", next = "/next_page_token", max_size = 50 }"#,
        r#"paging = { style = "after", after = "after", size = "limit", max_size = 50 }"#,
    );
    assert_ne!(keyset, text, "tokens.toml changed shape");
    tokens_gateway_from(&keyset)
}

fn tokens_gateway_from(text: &str) -> (Gateway, TokensBackend) {
    let backend = TokensBackend::new();
    let gw = Gateway::fixture(
        "tokens.toml",
        text,
        "initech",
        |_| {},
        |addr| backend.service(addr),
    );
    (gw, backend)
}

fn list_requests(backend: &TokensBackend) -> Vec<String> {
    backend
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /api/initech-org/accounts?"))
        .collect()
}

#[test]
fn a_token_paged_backend_is_walked_by_scim_cursor_with_its_own_tokens() {
    let (gw, backend) = tokens_gateway();
    let ids: Vec<String> = (0..230)
        .map(|i| backend.seed(ORG, &format!("acct{i}")))
        .collect();
    let before = list_requests(&backend).len();
    let mut cursor = String::new();
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut late = None;
    loop {
        let (page_ids, next, body) =
            page(&gw, &gw.token, &format!("/Users?cursor={cursor}&count=40"));
        assert!(
            body.get("totalResults").is_none(),
            "the backend reports no total: {body}"
        );
        seen.extend(page_ids);
        pages += 1;
        if pages == 2 {
            // An account ahead of the walk goes away, one is added at its end.
            backend.remove(ORG, &ids[200]);
            late = Some(backend.seed(ORG, "late"));
        }
        match next {
            Some(n) => cursor = n,
            None => break,
        }
    }
    let mut expected: Vec<String> = ids.iter().filter(|id| *id != &ids[200]).cloned().collect();
    expected.extend(late);
    assert_eq!(seen, expected);
    let calls = &list_requests(&backend)[before..];
    // 230 accounts in pages of 40: 6 SCIM pages, each one backend call at the token
    // (the backend serves at most 50) and no offsets.
    assert_eq!(pages, 6);
    assert!(calls.iter().all(|c| !c.contains("offset")), "{calls:?}");
    assert_eq!(
        calls.iter().filter(|c| c.contains("page_token=pt")).count(),
        5,
        "{calls:?}"
    );
    assert_eq!(calls.len(), 6, "{calls:?}");
}

#[test]
fn a_token_paged_backend_still_pages_by_index_and_filters() {
    let (gw, backend) = tokens_gateway();
    let ids: Vec<String> = (0..120)
        .map(|i| backend.seed(ORG, &format!("user{i:03}")))
        .collect();
    let r = gw.scim("GET", "/Users?startIndex=61&count=30", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    let got: Vec<&str> = body["Resources"]
        .as_array()
        .expect("list")
        .iter()
        .map(|u| u["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        got,
        ids[60..90].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(body["startIndex"], 61);
    // A filter the backend answers, and one the gateway evaluates, walked by cursor.
    let one = walk(
        &gw,
        &gw.token,
        &format!("/Users?filter={}", enc("userName eq \"user007\"")),
        5,
    );
    assert_eq!(one, vec![ids[7].clone()]);
    let tens = walk(
        &gw,
        &gw.token,
        &format!("/Users?filter={}", enc("userName sw \"user01\"")),
        4,
    );
    assert_eq!(tens, ids[10..20].to_vec());
    // A SCIM cursor of the token walk is no cursor of a filtered one.
    let (_, next, _) = page(&gw, &gw.token, "/Users?cursor=&count=10");
    let r = gw.scim(
        "GET",
        &format!(
            "/Users?cursor={}&filter={}",
            next.expect("more"),
            enc("userName sw \"user\"")
        ),
        None,
    );
    assert_scim_error(&r, 400, Some("invalidCursor"));
}

#[test]
fn a_keyset_paged_backend_is_walked_after_the_last_id() {
    let (gw, backend) = keyset_gateway();
    let ids: Vec<String> = (0..130)
        .map(|i| backend.seed(ORG, &format!("k{i:03}")))
        .collect();
    let before = list_requests(&backend).len();
    let mut cursor = String::new();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (page_ids, next, _) = page(&gw, &gw.token, &format!("/Users?cursor={cursor}&count=30"));
        seen.extend(page_ids);
        pages += 1;
        if pages == 1 {
            // Accounts the walk passed go away: keyset paging does not shift.
            backend.remove(ORG, &ids[0]);
            backend.remove(ORG, &ids[10]);
        }
        match next {
            Some(n) => cursor = n,
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let calls = &list_requests(&backend)[before..];
    assert!(
        calls
            .iter()
            .all(|c| !c.contains("offset") && !c.contains("page_token")),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.contains(&format!("after={}", ids[29]))),
        "{calls:?}"
    );
    // Index paging walks the keyset from the first page.
    let r = gw.scim("GET", "/Users?startIndex=101&count=5", None);
    let body = r.json();
    let got: Vec<&str> = body["Resources"]
        .as_array()
        .expect("list")
        .iter()
        .map(|u| u["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        got,
        ids[102..107].iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[test]
fn a_cursor_key_variable_unset_or_short_stops_the_gateway() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = DemoOptions {
        listen: server::free_port().expect("port"),
        token: scimgate::auth::generate_key(),
        password: PASSWORD.into(),
        data: dir.path().to_path_buf(),
    };
    std::env::set_var(
        "SCIMGATE_TEST_SHORT_CURSOR_KEY",
        "only-31-bytes-of-cursor-key-xyz",
    );
    for var in [
        "SCIMGATE_TEST_UNSET_CURSOR_KEY",
        "SCIMGATE_TEST_SHORT_CURSOR_KEY",
    ] {
        let mut config = demo_config(&opts, server::free_port().expect("port")).expect("config");
        config.scim.cursor_key_env = Some(var.into());
        let err = scimgate::Gateway::new(config, None)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("scim.cursor_key_env") && err.contains(var),
            "{err}"
        );
    }
}
