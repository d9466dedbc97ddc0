//! The guard fails closed against the lax backend, which answers `200` to every self-service
//! request it receives (so a request let through shows): a caller whoami cannot identify gets
//! `401`, a whoami that errors, hangs or answers garbage and a store that cannot say whether the
//! caller is managed get `503`, a body too slow to arrive gets `408` — on every protected route,
//! and nothing reaches the backend.

use super::http::{self, Reply};
use super::lax::{self, Lax, UMBRELLA};
use super::lax_backend::Whoami;
use std::io::{self, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The protected routes of `tests/fixtures/lax.toml` as (method, path, body), each changing
/// person `id`'s own account.
fn protected(id: &str) -> Vec<(&'static str, String, &'static str)> {
    vec![
        ("PUT", "/v1/me/password".into(), r#"{"password":"n3w"}"#),
        (
            "PATCH",
            format!("/v1/profiles/{id}"),
            r#"{"email":"new@x.test"}"#,
        ),
        ("DELETE", format!("/v1/{UMBRELLA}/members/{id}"), ""),
    ]
}

fn send(lax: &Lax, session: Option<&str>, (method, path, body): &(&str, String, &str)) -> Reply {
    let auth = session.map(|s| format!("Bearer {s}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let body = (!body.is_empty()).then_some(body.as_bytes());
    lax.gw.request(method, path, &headers, body)
}

/// The requests that reached the backend other than its whoami and SCIM's user calls.
fn forwarded(lax: &Lax) -> Vec<String> {
    lax.backend
        .requests()
        .into_iter()
        .filter(|r| !r.ends_with(" /v1/whoami") && !r.contains("/people"))
        .collect()
}

fn assert_refused(r: &Reply, status: u16, error: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.json()["error"], error, "{}", r.text());
}

/// A gateway with person 1 of umbrella created by SCIM (managed) and person 2 the app's own.
fn with_people() -> Lax {
    let lax = lax::start();
    let r = lax.gw.scim(
        "POST",
        "/Users",
        Some(&serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "managed@x.test"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    lax.backend
        .seed(UMBRELLA, serde_json::json!({"email": "own@x.test"}));
    lax
}

#[test]
fn callers_whoami_does_not_know_get_401_and_nothing_is_forwarded() {
    let lax = with_people();
    for route in protected("1") {
        assert_refused(&send(&lax, None, &route), 401, "unauthenticated");
        assert_refused(&send(&lax, Some("forged"), &route), 401, "unauthenticated");
    }
    assert_eq!(forwarded(&lax), Vec::<String>::new());
}

#[test]
fn a_whoami_that_fails_hangs_or_answers_garbage_gets_503_and_nothing_is_forwarded() {
    let lax = with_people();
    for how in [
        Whoami::Status(500),
        Whoami::Status(404),
        Whoami::Garbage,
        Whoami::Hangs(Duration::from_secs(4)),
    ] {
        lax.backend.whoami_fails(how);
        for id in ["1", "2"] {
            for route in protected(id) {
                // A fresh session each time: nothing comes from the whoami cache.
                let session = lax.backend.session(UMBRELLA, id);
                let started = Instant::now();
                let r = send(&lax, Some(&session), &route);
                assert_refused(&r, 503, "guard_unavailable");
                assert!(
                    started.elapsed() < Duration::from_secs(3),
                    "{how:?}: {:?}",
                    started.elapsed()
                );
            }
        }
    }
    assert_eq!(forwarded(&lax), Vec::<String>::new());
    // Once whoami answers again, the unmanaged person's request goes through.
    lax.backend.whoami_fails(Whoami::Answers);
    let session = lax.backend.session(UMBRELLA, "2");
    assert_eq!(send(&lax, Some(&session), &protected("2")[0]).status, 200);
}

#[test]
fn a_store_that_fails_gets_503_on_every_protected_route_and_nothing_is_forwarded() {
    let lax = with_people();
    // The store cannot be read: its users table is gone (renamed by another process).
    let conn = rusqlite::Connection::open(&lax.store).expect("open the store");
    conn.execute_batch("ALTER TABLE users RENAME TO users_away")
        .expect("hide the table");
    let session = lax.backend.session(UMBRELLA, "2");
    for route in protected("2") {
        assert_refused(
            &send(&lax, Some(&session), &route),
            503,
            "guard_unavailable",
        );
    }
    assert_eq!(forwarded(&lax), Vec::<String>::new());
    conn.execute_batch("ALTER TABLE users_away RENAME TO users")
        .expect("restore the table");
    for route in protected("2") {
        let r = send(&lax, Some(&session), &route);
        assert_eq!(
            r.status,
            200,
            "the unmanaged person passes again: {}",
            r.text()
        );
    }
    assert_eq!(forwarded(&lax).len(), 3);
}

#[test]
fn a_body_too_slow_for_a_protected_route_gets_408_and_nothing_is_forwarded() {
    let lax = lax::start_with(|c| c.server.body_timeout = Duration::from_millis(800));
    let session = lax.backend.session(UMBRELLA, "1");
    let mut stream = TcpStream::connect(lax.gw.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "PATCH /v1/profiles/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {session}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"email\":"
    );
    stream.write_all(head.as_bytes()).expect("head");
    let started = Instant::now();
    let mut writer = stream.try_clone().expect("clone");
    // One byte every 100 ms: never idle long, but the whole body would take 20 s.
    let dribbler = std::thread::spawn(move || {
        for _ in 0..100 {
            if writer.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let reply = http::try_read_reply(&mut stream);
    let took = started.elapsed();
    let _ = stream.shutdown(std::net::Shutdown::Both);
    dribbler.join().expect("dribbler");
    let reply = reply.unwrap_or_else(|e: io::Error| panic!("no answer after {took:?}: {e}"));
    assert_refused(&reply, 408, "timeout");
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(3),
        "cut off after {took:?}"
    );
    assert_eq!(forwarded(&lax), Vec::<String>::new());
}
