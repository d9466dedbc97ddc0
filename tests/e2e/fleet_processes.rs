//! Three `scimgate run` processes over one PostgreSQL server of the test's own, in front of the
//! demo backend, driven the way Entra drives a fleet behind a load balancer: racing creates and
//! PATCHes spread over the instances, a member linked on one instance and guarded on another,
//! one instance killed with SIGKILL in the middle of a provisioning burst while clients retry
//! through the others, and PostgreSQL restarted in the middle of the next burst. Nothing may be
//! duplicated or lost, and no gateway is restarted.

use super::crash::{
    demo_config_text, entra_sync, entra_user, DemoBackend, GatewayProcess, Step, PASSWORD,
};
use super::harness::enc;
use super::http::Reply;
use super::pg_cluster::PgCluster;
use super::races::one_created_rest_conflict;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

const INSTANCES: usize = 3;
const RACERS: usize = 20;
const BURST: usize = 60;
const THREADS: usize = 6;
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The fleet: the demo backend and three gateways with one SCIM key, over `pg`.
struct Fleet {
    _dir: tempfile::TempDir,
    backend: DemoBackend,
    gateways: Vec<GatewayProcess>,
}

impl Fleet {
    fn start(pg: &PgCluster) -> Fleet {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = DemoBackend::start(dir.path());
        let token = scimgate::auth::generate_key();
        let gateways = (0..INSTANCES)
            .map(|i| {
                let listen = scimgate::gateway::server::free_port().expect("port");
                let config = write_config(dir.path(), i, listen, backend.addr, &token, pg);
                GatewayProcess::start(
                    &config,
                    listen,
                    &token,
                    &[("SCIMGATE_DEMO_SERVICE_TOKEN", &backend.token)],
                    "warn",
                    &dir.path().join(format!("gateway-{i}.log")),
                )
            })
            .collect();
        Fleet {
            _dir: dir,
            backend,
            gateways,
        }
    }

    /// The demo's members whose email starts with `prefix`: email → how many.
    fn members_named(&self, prefix: &str) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for m in self.backend.members() {
            let email = m["email"].as_str().unwrap_or("").to_lowercase();
            if email.starts_with(prefix) {
                *out.entry(email).or_default() += 1;
            }
        }
        out
    }
}

/// `conf/demo.toml` for instance `i`: its own listen port, the shared backend, the SCIM key of
/// tenant `acme`, and the store in `pg`.
fn write_config(
    dir: &Path,
    i: usize,
    listen: SocketAddr,
    backend: SocketAddr,
    token: &str,
    pg: &PgCluster,
) -> std::path::PathBuf {
    let store = format!(
        "url = \"{}\"\nconnect_timeout_ms = 1000\nstatement_timeout_ms = 2000",
        pg.url()
    );
    let text = demo_config_text(listen, backend, &store, token);
    let path = dir.join(format!("scimgate-{i}.toml"));
    std::fs::write(&path, text).expect("config");
    path
}

fn user(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
        "emails": [{"type": "work", "value": name, "primary": true}]})
}

/// A member's password change through instance `gw` (a guarded route).
fn change_password(gw: &GatewayProcess, email: &str) -> u16 {
    let login = json!({"email": email, "password": PASSWORD}).to_string();
    let r = gw
        .try_request(
            "POST",
            "/api/login",
            &[("Content-Type", "application/json")],
            Some(login.as_bytes()),
        )
        .expect("login");
    assert_eq!(r.status, 200, "login {email}: {}", r.text());
    let auth = format!("Bearer {}", r.json()["session"].as_str().expect("session"));
    let body = json!({"current_password": PASSWORD, "new_password": "n3w-Passw0rd!"}).to_string();
    gw.try_request(
        "PUT",
        "/api/me/password",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
    )
    .expect("password change")
    .status
}

/// Entra's cycle over `users` from `THREADS` threads through the instances `live`; a step that
/// fails (a dead instance, a `503`) is retried on the next live instance after a pause, for up
/// to 30 s. `during(writes)` runs on the calling thread while the workers run, with the number
/// of steps done so far. Answers each step's outcome and the failed attempts' errors, with the
/// instance each came from.
fn burst(
    fleet: &Fleet,
    live: &[usize],
    users: &[Value],
    during: impl FnOnce(&AtomicUsize),
) -> (Vec<Step>, Vec<(usize, String)>) {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let failures: Mutex<Vec<(usize, String)>> = Mutex::default();
    let steps: Mutex<Vec<Option<Step>>> = Mutex::new(vec![None; users.len()]);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (next, done, failures, steps) = (&next, &done, &failures, &steps);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(u) = users.get(i) else { break };
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut attempt = i + t;
                let step = loop {
                    let at = live[attempt % live.len()];
                    match entra_sync(&fleet.gateways[at], u) {
                        Ok(step) => break step,
                        Err(e) => {
                            assert!(Instant::now() < deadline, "user {i}: {e}");
                            failures.lock().unwrap().push((at, e));
                            attempt += 1;
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                };
                steps.lock().unwrap()[i] = Some(step);
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        during(&done);
    });
    let steps = steps.into_inner().unwrap();
    (
        steps
            .into_iter()
            .map(|s| s.expect("every step ran"))
            .collect(),
        failures.into_inner().unwrap(),
    )
}

/// Asserts that every failed attempt was a clean one: the killed instance's connection refused
/// or broken (for it, also after the response head: the kill can land between head and body),
/// or a SCIM `503` (the store away), never another error.
fn assert_clean(failures: &[(usize, String)], killed: Option<usize>) {
    for (at, e) in failures {
        let cut = Some(*at) == killed
            && (e.starts_with("body cut short") || e.starts_with("chunked body cut short"));
        let transport = cut
            || ["connect:", "write:", "read:", "no complete response"]
                .iter()
                .any(|t| e.starts_with(t));
        assert!(
            transport || e.contains(": 503 "),
            "an unclean failure from instance {at}: {e}"
        );
    }
}

/// Waits until `done` reaches `n`.
fn wait_for(done: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while done.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "the burst is too slow");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every burst user exactly once in the backend, and exactly as Entra wrote it when read
/// through any live instance.
fn assert_converged(fleet: &Fleet, live: &[usize], users: &[Value]) {
    let members = fleet.members_named("fleet-");
    for u in users {
        let email = u["userName"].as_str().unwrap();
        assert_eq!(
            members.get(email),
            Some(&1),
            "{email} in the backend: {members:?}"
        );
    }
    for (k, u) in users.iter().enumerate() {
        let gw = &fleet.gateways[live[k % live.len()]];
        let name = u["userName"].as_str().unwrap();
        let found = gw.scim(
            "GET",
            &format!("/Users?filter={}", enc(&format!("userName eq \"{name}\""))),
            None,
        );
        assert_eq!(found.json()["totalResults"], 1, "{name}: {}", found.text());
        let got = &found.json()["Resources"][0];
        assert_eq!(got["externalId"], u["externalId"], "{name}: {got}");
        let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        assert_eq!(got[ent], u[ent], "{name}: only the store holds it: {got}");
    }
}

#[test]
fn three_gateway_processes_over_one_postgres_survive_kill_9_and_a_database_restart() {
    let pg = PgCluster::start();
    let fleet = Fleet::start(&pg);
    let gw = |i: usize| &fleet.gateways[i];

    // 1. Twenty creates of one userName spread over the three instances: one user.
    let barrier = Barrier::new(RACERS);
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..RACERS)
            .map(|i| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    gw(i % INSTANCES).scim("POST", "/Users", Some(&user("fleet-race@acme.test")))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winner = one_created_rest_conflict(&replies);
    assert_eq!(fleet.members_named("fleet-race@").len(), 1);
    let id = replies[winner].json()["id"].as_str().unwrap().to_string();

    // 2. Concurrent PATCHes of that user through all three: none lost.
    let barrier = Barrier::new(RACERS);
    std::thread::scope(|s| {
        for i in 0..RACERS {
            let (barrier, id) = (&barrier, &id);
            s.spawn(move || {
                let ops = json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "emails",
                    "value": [{"type": format!("t{i}"), "value": format!("u{i}@race.test")}]}]});
                barrier.wait();
                let r = gw(i % INSTANCES).scim("PATCH", &format!("/Users/{id}"), Some(&ops));
                assert_eq!(r.status, 200, "{}", r.text());
            });
        }
    });
    for i in 0..INSTANCES {
        let emails = gw(i).scim("GET", &format!("/Users/{id}"), None).json()["emails"].clone();
        assert_eq!(
            emails.as_array().map_or(0, Vec::len),
            RACERS + 1,
            "instance {i}: {emails}"
        );
    }

    // 3. Bob, linked through instance A (lookup, then PATCH), is refused on C at once.
    assert_eq!(change_password(gw(2), "carol@acme.test"), 204, "unmanaged");
    let found = gw(0).scim(
        "GET",
        &format!("/Users?filter={}", enc("userName eq \"bob@acme.test\"")),
        None,
    );
    let bob = found.json()["Resources"][0]["id"]
        .as_str()
        .expect("bob")
        .to_string();
    let link = json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "externalId", "value": "aad-bob"}]});
    assert_eq!(
        gw(0)
            .scim("PATCH", &format!("/Users/{bob}"), Some(&link))
            .status,
        200
    );
    assert_eq!(
        change_password(gw(2), "bob@acme.test"),
        403,
        "linked on A, guarded on C"
    );
    assert_eq!(change_password(gw(1), "bob@acme.test"), 403, "and on B");

    // 4. An Entra burst over all three; instance B is killed with SIGKILL mid-burst and the
    //    clients retry through A and C.
    let users: Vec<Value> = (0..BURST).map(|i| entra_user("fleet", i, false)).collect();
    let pid = gw(1).pid();
    let (steps, failures) = burst(&fleet, &[0, 1, 2], &users, |done| {
        wait_for(done, BURST / 3);
        let killed = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
    });
    eprintln!(
        "fleet: kill -9 of B mid-burst; {} failed attempts retried elsewhere",
        failures.len()
    );
    assert_clean(&failures, Some(1));
    assert_eq!(steps.len(), BURST);
    assert_converged(&fleet, &[0, 2], &users);

    // 5. The next cycle (HR moved every third user) through A and C; PostgreSQL restarts in
    //    the middle of it. The gateways keep running and converge without a restart.
    let moved: Vec<Value> = (0..BURST)
        .map(|i| entra_user("fleet", i, i % 3 == 0))
        .collect();
    let (_, failures) = burst(&fleet, &[0, 2], &moved, |done| {
        wait_for(done, BURST / 4);
        pg.restart(Duration::from_secs(2));
    });
    eprintln!(
        "fleet: PostgreSQL restarted mid-cycle; {} failed attempts retried",
        failures.len()
    );
    assert!(!failures.is_empty(), "the restart fell inside the cycle");
    assert_clean(&failures, None);
    assert_converged(&fleet, &[0, 2], &moved);
    // A last cycle changes nothing: nothing was lost that Entra would send again.
    let (steps, failures) = burst(&fleet, &[0, 2], &moved, |_| {});
    assert!(failures.is_empty(), "{failures:?}");
    assert!(steps.iter().all(|s| *s == Step::Unchanged), "{steps:?}");
    assert_eq!(
        change_password(gw(0), "bob@acme.test"),
        403,
        "still guarded after the restart"
    );
}
