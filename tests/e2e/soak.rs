//! Soak: `scimgate run` (the real binary, a child process) in front of the demo backend under a
//! steady mix of Entra-like provisioning, guarded self-service calls and plain proxied traffic.
//! Checks: no unexpected status (in particular no 5xx), and the process's resident memory
//! (`VmRSS`) and open descriptors (`/proc/<pid>/fd`) flat after warm-up (growth under 10%).
//! Writes the figures to `soak-<date>.json` and a Markdown summary `soak-<date>.md`.
//!
//! - `soak_ci` runs 25 s (results under Cargo's target tmp folder) with every `cargo test`.
//! - `soak_long` is ignored by default: `soak/run.sh` runs it for `SCIMGATE_SOAK_SECS` seconds
//!   (600 by default) and writes the results to `soak/results/` (or `SCIMGATE_SOAK_RESULTS`).

use super::crash::{entra_diff, entra_user, ChildSetup, GatewayProcess, PASSWORD};
use super::harness::enc;
use super::http::Reply;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Users each provisioning worker cycles through (create, update, disable, delete, re-create).
const USERS_PER_WORKER: usize = 15;
const PROVISIONING_WORKERS: usize = 2;
/// Pause between two requests of one worker: the load is steady, not a stress test.
const PACE: Duration = Duration::from_millis(25);
/// Largest growth after warm-up, in percent.
const MAX_GROWTH_PCT: f64 = 10.0;

/// What the soak saw.
#[derive(Default)]
struct Tally {
    /// Per request kind: (count, status → count).
    kinds: BTreeMap<String, (u64, BTreeMap<u16, u64>)>,
    /// Requests answered with a status not expected for their kind.
    unexpected: Vec<String>,
    unexpected_5xx: u64,
    transport_errors: Vec<String>,
    latencies_ms: Vec<f64>,
}

impl Tally {
    fn record(&mut self, kind: &str, expected: &[u16], r: Result<Reply, String>, took: Duration) {
        self.latencies_ms.push(took.as_secs_f64() * 1000.0);
        match r {
            Ok(r) => {
                let e = self.kinds.entry(kind.to_string()).or_default();
                e.0 += 1;
                *e.1.entry(r.status).or_default() += 1;
                if r.status >= 500 {
                    self.unexpected_5xx += 1;
                }
                if !expected.contains(&r.status) && self.unexpected.len() < 50 {
                    self.unexpected
                        .push(format!("{kind}: {} {}", r.status, r.text()));
                }
            }
            Err(e) => {
                if self.transport_errors.len() < 50 {
                    self.transport_errors.push(format!("{kind}: {e}"));
                }
            }
        }
    }

    fn total(&self) -> u64 {
        self.kinds.values().map(|k| k.0).sum::<u64>() + self.transport_errors.len() as u64
    }
}

/// One sample of the gateway process.
#[derive(Clone, Copy)]
struct Sample {
    at_s: f64,
    rss_kb: u64,
    fds: u64,
}

fn sample(pid: u32, started: Instant) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Sample {
        at_s: started.elapsed().as_secs_f64(),
        rss_kb,
        fds,
    })
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A series' baseline (median of the first quarter after warm-up), end (median of the last
/// quarter), maximum and growth in percent.
fn trend(samples: &[Sample], warmup_s: f64, f: fn(&Sample) -> u64) -> Value {
    let post: Vec<&Sample> = samples.iter().filter(|s| s.at_s >= warmup_s).collect();
    let q = (post.len() / 4).max(1);
    let baseline = median(post.iter().take(q).map(|s| f(s)).collect());
    let end = median(post.iter().rev().take(q).map(|s| f(s)).collect());
    let max = samples.iter().map(f).max().unwrap_or(0);
    let growth = if baseline == 0 {
        0.0
    } else {
        (end as f64 - baseline as f64) * 100.0 / baseline as f64
    };
    json!({"baseline": baseline, "end": end, "max": max, "growth_pct": (growth * 10.0).round() / 10.0})
}

/// Entra's cycle for the worker's users, one request at a time (each recorded): lookup by
/// userName, then create, or GET and PATCH what differs. Each visit changes the department; every
/// third round disables the users, every fourth deletes them (re-created on the next visit).
fn provisioning_worker(gw: &GatewayProcess, w: usize, stop: &AtomicBool, tally: &Mutex<Tally>) {
    let mut visit = 0usize;
    let timed = |kind: &str, expected: &[u16], f: &dyn Fn() -> Result<Reply, String>| {
        let t = Instant::now();
        let r = f();
        let out = r
            .as_ref()
            .ok()
            .filter(|r| expected.contains(&r.status))
            .cloned();
        tally.lock().unwrap().record(kind, expected, r, t.elapsed());
        out
    };
    while !stop.load(Ordering::Relaxed) {
        let i = visit % USERS_PER_WORKER;
        let round = visit / USERS_PER_WORKER;
        visit += 1;
        let mut user = entra_user(&format!("soak-w{w}"), i, round % 2 == 1);
        if round % 3 == 2 {
            user["active"] = json!(false);
        }
        let name = user["userName"].as_str().unwrap().to_string();
        let lookup = format!("/Users?filter={}", enc(&format!("userName eq \"{name}\"")));
        let Some(found) = timed("scim-lookup", &[200], &|| gw.try_scim("GET", &lookup, None))
        else {
            continue;
        };
        std::thread::sleep(PACE);
        let Some(id) = found.json()["Resources"][0]["id"]
            .as_str()
            .map(str::to_string)
        else {
            timed("scim-create", &[201], &|| {
                gw.try_scim("POST", "/Users", Some(&user))
            });
            std::thread::sleep(PACE);
            continue;
        };
        if round % 4 == 3 {
            timed("scim-delete", &[204], &|| {
                gw.try_scim("DELETE", &format!("/Users/{id}"), None)
            });
            std::thread::sleep(PACE);
            continue;
        }
        let Some(got) = timed("scim-get", &[200], &|| {
            gw.try_scim("GET", &format!("/Users/{id}"), None)
        }) else {
            continue;
        };
        std::thread::sleep(PACE);
        let ops = entra_diff(&got.json(), &user);
        if !ops.is_empty() {
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
            timed("scim-patch", &[200], &|| {
                gw.try_scim("PATCH", &format!("/Users/{id}"), Some(&body))
            });
            std::thread::sleep(PACE);
        }
    }
}

/// Logs a demo member in through the gateway (a proxied request), recording it.
fn login(gw: &GatewayProcess, email: &str, tally: &Mutex<Tally>) -> Option<String> {
    let body = json!({"email": email, "password": PASSWORD}).to_string();
    let t = Instant::now();
    let r = gw.try_request(
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        Some(body.as_bytes()),
    );
    let session = r
        .as_ref()
        .ok()
        .and_then(|r| r.json()["session"].as_str().map(str::to_string));
    tally
        .lock()
        .unwrap()
        .record("proxy-login", &[200], r, t.elapsed());
    session
}

fn call(
    gw: &GatewayProcess,
    session: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Reply, String> {
    let auth = session.map(|s| format!("Bearer {s}"));
    let body = body.map(|b| b.to_string());
    let mut headers = Vec::new();
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    gw.try_request(method, path, &headers, body.as_deref().map(str::as_bytes))
}

/// One guarded call: kind, session, method, path, body, expected statuses.
type GuardedCall<'a> = (
    &'a str,
    Option<&'a str>,
    &'a str,
    String,
    Option<Value>,
    &'a [u16],
);

/// Self-service calls through the guard: bob (SCIM-managed) is refused, carol (not managed)
/// passes; sessions are renewed regularly, so the guard's identity cache sees new callers.
fn guarded_worker(
    gw: &GatewayProcess,
    bob_id: &str,
    carol_id: &str,
    stop: &AtomicBool,
    tally: &Mutex<Tally>,
) {
    let mut n = 0u64;
    let mut bob = String::new();
    let mut carol = String::new();
    while !stop.load(Ordering::Relaxed) {
        if n.is_multiple_of(40) {
            bob = login(gw, "bob@acme.test", tally).unwrap_or_default();
            carol = login(gw, "carol@acme.test", tally).unwrap_or_default();
        }
        let calls: [GuardedCall; 5] = [
            (
                "guard-password-managed",
                Some(&bob),
                "PUT",
                "/api/me/password".into(),
                Some(json!({"current_password": PASSWORD, "new_password": "n3w-Passw0rd!"})),
                &[403],
            ),
            (
                "guard-email-in-profile-managed",
                Some(&bob),
                "PATCH",
                format!("/api/users/{bob_id}"),
                Some(json!({"email": "bob.other@acme.test"})),
                &[403],
            ),
            (
                "guard-leave-managed",
                Some(&bob),
                "DELETE",
                "/api/teams/acme/members/me".into(),
                None,
                &[403],
            ),
            (
                "guard-profile-managed",
                Some(&bob),
                "PATCH",
                format!("/api/users/{bob_id}"),
                Some(json!({"first_name": format!("Bob{}", n % 7)})),
                &[200],
            ),
            (
                "guard-profile-unmanaged",
                Some(&carol),
                "PATCH",
                format!("/api/users/{carol_id}"),
                Some(json!({"first_name": format!("Carol{}", n % 7)})),
                &[200],
            ),
        ];
        for (kind, session, method, path, body, expected) in calls {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let t = Instant::now();
            let r = call(gw, session, method, &path, body);
            tally.lock().unwrap().record(kind, expected, r, t.elapsed());
            std::thread::sleep(PACE);
        }
        n += 1;
    }
}

/// Plain traffic the gateway forwards, and SCIM reads Entra repeats as liveness checks.
fn proxied_worker(gw: &GatewayProcess, stop: &AtomicBool, tally: &Mutex<Tally>) {
    let carol = login(gw, "carol@acme.test", tally).unwrap_or_default();
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let r = call(gw, Some(&carol), "GET", "/api/me", None);
        tally
            .lock()
            .unwrap()
            .record("proxy-me", &[200], r, t.elapsed());
        std::thread::sleep(PACE);
        let t = Instant::now();
        let r = call(gw, None, "GET", "/api/me", None);
        tally
            .lock()
            .unwrap()
            .record("proxy-unauthenticated", &[401], r, t.elapsed());
        std::thread::sleep(PACE);
        let t = Instant::now();
        let r = call(gw, None, "GET", "/api/nope", None);
        tally
            .lock()
            .unwrap()
            .record("proxy-unknown", &[404], r, t.elapsed());
        std::thread::sleep(PACE);
        let t = Instant::now();
        let r = gw.try_scim(
            "GET",
            "/Users?filter=userName+eq+%22f7a1c2d4-9b7e-4c47-8f3a-1f2e3d4c5b6a%22",
            None,
        );
        tally
            .lock()
            .unwrap()
            .record("scim-test-connection", &[200], r, t.elapsed());
        std::thread::sleep(PACE);
        let t = Instant::now();
        let r = gw.try_scim("GET", "/Users?startIndex=1&count=10", None);
        tally
            .lock()
            .unwrap()
            .record("scim-list", &[200], r, t.elapsed());
        std::thread::sleep(PACE);
    }
}

/// Runs the soak for `duration` and writes the results to `results`; answers the report.
fn soak(duration: Duration, results: &Path) -> Value {
    let setup = ChildSetup::new();
    let gw = setup.spawn();
    let pid = gw.pid();
    // Bob becomes SCIM-managed the way Entra links an existing account.
    let link = |email: &str, managed: bool| -> String {
        let id = gw
            .scim(
                "GET",
                &format!("/Users?filter={}", enc(&format!("userName eq \"{email}\""))),
                None,
            )
            .json()["Resources"][0]["id"]
            .as_str()
            .expect("seeded member")
            .to_string();
        if managed {
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "externalId", "value": format!("aad-{id}")}]});
            let r = gw.scim("PATCH", &format!("/Users/{id}"), Some(&body));
            assert_eq!(r.status, 200, "{}", r.text());
        }
        id
    };
    let bob_id = link("bob@acme.test", true);
    let carol_id = link("carol@acme.test", false);

    let warmup = (duration.as_secs_f64() * 0.3).clamp(5.0, 60.0);
    let interval = Duration::from_secs_f64((duration.as_secs_f64() / 120.0).clamp(1.0, 5.0));
    let stop = AtomicBool::new(false);
    let tally = Mutex::new(Tally::default());
    let samples = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for w in 0..PROVISIONING_WORKERS {
            let (gw, stop, tally) = (&gw, &stop, &tally);
            s.spawn(move || provisioning_worker(gw, w, stop, tally));
        }
        s.spawn(|| guarded_worker(&gw, &bob_id, &carol_id, &stop, &tally));
        s.spawn(|| proxied_worker(&gw, &stop, &tally));
        while started.elapsed() < duration {
            if let Some(x) = sample(pid, started) {
                samples.lock().unwrap().push(x);
            }
            let remaining = duration.saturating_sub(started.elapsed());
            std::thread::sleep(interval.min(remaining));
        }
        stop.store(true, Ordering::SeqCst);
    });
    let elapsed = started.elapsed();
    if let Some(x) = sample(pid, started) {
        samples.lock().unwrap().push(x);
    }
    let log_tail = gw.log_tail();
    drop(gw);

    let tally = tally.into_inner().unwrap();
    let samples = samples.into_inner().unwrap();
    let rss = trend(&samples, warmup, |s| s.rss_kb);
    let fds = trend(&samples, warmup, |s| s.fds);
    let date = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]-[minute]-[second]Z"
        ))
        .expect("date");
    let kinds: BTreeMap<&String, Value> = tally
        .kinds
        .iter()
        .map(|(k, (n, statuses))| (k, json!({"count": n, "statuses": statuses})))
        .collect();
    let report = json!({
        "date": date,
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "duration_s": (elapsed.as_secs_f64() * 10.0).round() / 10.0,
        "warmup_s": warmup,
        "sample_interval_s": interval.as_secs_f64(),
        "requests": tally.total(),
        "rate_per_s": ((tally.total() as f64 / elapsed.as_secs_f64()) * 10.0).round() / 10.0,
        "kinds": kinds,
        "unexpected_5xx": tally.unexpected_5xx,
        "unexpected": tally.unexpected,
        "transport_errors": tally.transport_errors,
        "latency_ms": {
            "p50": (percentile(&tally.latencies_ms, 0.5) * 10.0).round() / 10.0,
            "p99": (percentile(&tally.latencies_ms, 0.99) * 10.0).round() / 10.0,
            "max": (percentile(&tally.latencies_ms, 1.0) * 10.0).round() / 10.0,
        },
        "rss_kb": rss,
        "open_fds": fds,
        "max_growth_pct": MAX_GROWTH_PCT,
        "samples": samples.iter().map(|s| json!([(s.at_s * 10.0).round() / 10.0, s.rss_kb, s.fds])).collect::<Vec<_>>(),
        "load_average": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    });
    write_results(results, &date, &report);
    if !tally.unexpected.is_empty() || tally.unexpected_5xx > 0 {
        eprintln!("gateway log tail:\n{log_tail}");
    }
    report
}

fn write_results(dir: &Path, date: &str, report: &Value) {
    std::fs::create_dir_all(dir).expect("results folder");
    let json_path = dir.join(format!("soak-{date}.json"));
    std::fs::write(&json_path, serde_json::to_string_pretty(report).unwrap()).expect("write");
    let mut kinds = String::new();
    if let Some(k) = report["kinds"].as_object() {
        for (name, v) in k {
            kinds.push_str(&format!(
                "| {name} | {} | {} |\n",
                v["count"], v["statuses"]
            ));
        }
    }
    let md = format!(
        "# scimgate soak, {date}\n\n\
         - Build: {profile}; duration {dur} s (warm-up {warm} s); load average at the end: {load}\n\
         - Requests: {req} ({rate}/s); unexpected 5xx: {x5}; other unexpected answers: {xu}; transport errors: {te}\n\
         - Latency: p50 {p50} ms, p99 {p99} ms, max {max} ms\n\
         - RSS (kB): baseline {rb}, end {re}, max {rm}, growth {rg}% (limit {lim}%)\n\
         - Open fds: baseline {fb}, end {fe}, max {fm}, growth {fg}% (limit {lim}%)\n\n\
         | request kind | count | statuses |\n|---|---|---|\n{kinds}\n\
         Raw figures and samples (`[seconds, rss_kb, fds]`): `{json}`\n",
        profile = report["profile"].as_str().unwrap_or(""),
        dur = report["duration_s"],
        warm = report["warmup_s"],
        load = report["load_average"].as_str().unwrap_or(""),
        req = report["requests"],
        rate = report["rate_per_s"],
        x5 = report["unexpected_5xx"],
        xu = report["unexpected"].as_array().map_or(0, Vec::len),
        te = report["transport_errors"].as_array().map_or(0, Vec::len),
        p50 = report["latency_ms"]["p50"],
        p99 = report["latency_ms"]["p99"],
        max = report["latency_ms"]["max"],
        rb = report["rss_kb"]["baseline"],
        re = report["rss_kb"]["end"],
        rm = report["rss_kb"]["max"],
        rg = report["rss_kb"]["growth_pct"],
        fb = report["open_fds"]["baseline"],
        fe = report["open_fds"]["end"],
        fm = report["open_fds"]["max"],
        fg = report["open_fds"]["growth_pct"],
        lim = MAX_GROWTH_PCT,
        json = json_path.file_name().unwrap().to_string_lossy(),
    );
    std::fs::write(dir.join(format!("soak-{date}.md")), md).expect("write");
    eprintln!("soak: results in {}", json_path.display());
}

fn assert_soak(report: &Value) {
    let summary = json!({
        "requests": report["requests"], "rate_per_s": report["rate_per_s"],
        "unexpected_5xx": report["unexpected_5xx"], "unexpected": report["unexpected"],
        "transport_errors": report["transport_errors"], "latency_ms": report["latency_ms"],
        "rss_kb": report["rss_kb"], "open_fds": report["open_fds"], "kinds": report["kinds"],
    });
    eprintln!("soak: {summary:#}");
    assert_eq!(report["unexpected_5xx"], 0, "{summary:#}");
    assert_eq!(report["unexpected"], json!([]), "{summary:#}");
    assert_eq!(report["transport_errors"], json!([]), "{summary:#}");
    assert!(
        report["requests"].as_u64().unwrap_or(0) > 100,
        "{summary:#}"
    );
    for series in ["rss_kb", "open_fds"] {
        let growth = report[series]["growth_pct"].as_f64().unwrap_or(f64::MAX);
        assert!(
            growth < MAX_GROWTH_PCT,
            "{series} grew {growth}% after warm-up: {summary:#}"
        );
    }
}

/// The CI soak: 25 s.
#[test]
fn soak_ci() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("soak-results");
    let report = soak(Duration::from_secs(25), &dir);
    assert_soak(&report);
}

/// The long soak (`soak/run.sh`): `SCIMGATE_SOAK_SECS` seconds (600 by default), results in
/// `SCIMGATE_SOAK_RESULTS` (`soak/results` by default).
#[test]
#[ignore = "10 minutes; run by soak/run.sh"]
fn soak_long() {
    let secs: u64 = std::env::var("SCIMGATE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let dir = std::env::var_os("SCIMGATE_SOAK_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("soak/results"));
    let report = soak(Duration::from_secs(secs), &dir);
    assert_soak(&report);
}
