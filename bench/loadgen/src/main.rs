//! `loadgen SPEC.json`: drives HTTP/1.1 load as the spec says and prints a JSON report.
//!
//! One blocking thread per connection: simple, and precise enough for fixed-rate pacing
//! (timer slack is set to 1 ns, so sleeps end within tens of microseconds when a core is free).
//! See `bench/README.md` for what each mode measures.

mod http;
mod spec;
mod stats;

use http::Conn;
use serde_json::{json, Value};
use spec::{Mode, Spec, Step, Vars};
use stats::Recorder;
use std::io::{BufRead, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Everything a worker needs, shared.
struct Shared {
    spec: Spec,
    steps: Vec<Step>,
    addr: SocketAddr,
    host: String,
    next: AtomicU64,
    stop: AtomicBool,
    collected: Mutex<Vec<Option<String>>>,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: loadgen SPEC.json   (or - for standard input)");
        std::process::exit(2);
    };
    let text = if path == "-" {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut s);
        s
    } else {
        std::fs::read_to_string(&path).unwrap_or_else(|e| die(&format!("cannot read {path}: {e}")))
    };
    let spec: Spec =
        serde_json::from_str(&text).unwrap_or_else(|e| die(&format!("bad spec {path}: {e}")));
    let report = run(spec);
    println!("{report}");
}

fn die(msg: &str) -> ! {
    eprintln!("loadgen: {msg}");
    std::process::exit(2);
}

fn run(spec: Spec) -> Value {
    let addr = spec
        .addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| die(&format!("bad addr {}", spec.addr)));
    // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this process's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
    let shared = Arc::new(Shared {
        host: spec.host.clone().unwrap_or_else(|| spec.addr.clone()),
        steps: spec.steps.iter().map(Step::compile).collect(),
        addr,
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        collected: Mutex::new(Vec::new()),
        spec,
    });
    if shared.spec.connections == 0 || shared.steps.is_empty() {
        die("connections and steps must not be empty");
    }
    match shared.spec.mode {
        Mode::Idle => idle(&shared),
        mode => timed(&shared, mode),
    }
}

/// Clock ticks of utime+stime of a process (summed over its threads), if it exists.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state(3) ... utime is field 14, stime 15 (1-based overall).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn cpu_snapshot(pids: &[u32]) -> Vec<Option<u64>> {
    let mut v: Vec<Option<u64>> = pids.iter().map(|p| cpu_ticks(&p.to_string())).collect();
    v.push(cpu_ticks("self"));
    v
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn cpu_report(pids: &[u32], before: &[Option<u64>], after: &[Option<u64>]) -> Value {
    let tck = clk_tck();
    let delta = |i: usize| match (before.get(i).copied().flatten(), after.get(i).copied().flatten()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / tck),
        _ => None,
    };
    let per_pid: serde_json::Map<String, Value> = pids
        .iter()
        .enumerate()
        .map(|(i, p)| (p.to_string(), json!(delta(i))))
        .collect();
    let total: f64 = (0..pids.len()).filter_map(delta).sum();
    json!({
        "watched_cpu_s": total,
        "watched_cpu_s_by_pid": per_pid,
        "loadgen_cpu_s": delta(pids.len()),
        "clk_tck": tck,
    })
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// Runs one iteration (all steps) on `conn`. `intended` is when the first step should have
/// been sent (rate mode); `record` says whether to count it. Returns the collected value.
fn iteration(
    sh: &Shared,
    conn: &mut Conn,
    n: u64,
    intended: Option<Instant>,
    record: bool,
    rec: &mut Recorder,
    buf: &mut Vec<u8>,
) -> Option<String> {
    let values = &sh.spec.values;
    let mut vars = Vars {
        n: n.to_string(),
        v: (!values.is_empty()).then(|| values[(n as usize) % values.len()].as_str()),
        captured: Vec::new(),
    };
    if record {
        rec.iterations += 1;
    }
    for (i, step) in sh.steps.iter().enumerate() {
        step.render(&sh.host, &vars, buf);
        let sent = Instant::now();
        let from = if i == 0 { intended.unwrap_or(sent) } else { sent };
        let result = conn.request(buf);
        let done = Instant::now();
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                if record {
                    rec.record_io_error(format!("{:?}: {e}", e.kind()));
                }
                return None;
            }
        };
        let ok = step.is_ok(response.status);
        if record {
            let lat = done.saturating_duration_since(from).as_micros() as u64;
            let svc = done.saturating_duration_since(sent).as_micros() as u64;
            rec.record(&step.name, lat, svc, response.status, ok);
        }
        if !ok {
            return None;
        }
        if !step.capture.is_empty() {
            let body: Option<Value> = serde_json::from_slice(&response.body).ok();
            for (name, pointer) in &step.capture {
                let found = body.as_ref().and_then(|b| b.pointer(pointer)).and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                });
                match found {
                    Some(v) => vars.captured.push((name.clone(), v)),
                    None => {
                        if record {
                            rec.capture_errors += 1;
                        }
                        return None;
                    }
                }
            }
        }
    }
    sh.spec
        .collect
        .as_ref()
        .and_then(|name| vars.captured.iter().rev().find(|(k, _)| k == name))
        .map(|(_, v)| v.clone())
}

/// Closed-loop, fixed-rate and fixed-count modes.
fn timed(sh: &Arc<Shared>, mode: Mode) -> Value {
    let spec = &sh.spec;
    if mode == Mode::Count {
        sh.collected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .resize(spec.iterations as usize, None);
    }
    if mode == Mode::Rate && spec.rate <= 0.0 {
        die("rate mode needs rate > 0");
    }
    // Open the connections before the clock starts.
    let mut conns: Vec<Conn> = (0..spec.connections)
        .map(|_| {
            let mut c = Conn::new(sh.addr, Duration::from_secs_f64(spec.timeout_s));
            let _ = c.ensure_open();
            c
        })
        .collect();
    let t0 = Instant::now() + Duration::from_millis(20);
    let warm_end = t0 + Duration::from_secs_f64(spec.warmup_s);
    let end = warm_end + Duration::from_secs_f64(spec.duration_s);
    let mut handles = Vec::new();
    for mut conn in conns.drain(..) {
        let sh = sh.clone();
        handles.push(std::thread::spawn(move || {
            let mut rec = Recorder::new();
            let mut buf = Vec::with_capacity(4096);
            sleep_until(t0);
            match mode {
                Mode::Closed => loop {
                    let now = Instant::now();
                    if now >= end || sh.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let n = sh.spec.start + sh.next.fetch_add(1, Ordering::Relaxed);
                    iteration(&sh, &mut conn, n, None, now >= warm_end, &mut rec, &mut buf);
                },
                Mode::Rate => loop {
                    let i = sh.next.fetch_add(1, Ordering::Relaxed);
                    let intended = t0 + Duration::from_secs_f64(i as f64 / sh.spec.rate);
                    if intended >= end || sh.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    sleep_until(intended);
                    let record = intended >= warm_end;
                    if record && Instant::now().saturating_duration_since(intended) > Duration::from_millis(1) {
                        rec.late_starts += 1;
                    }
                    let n = sh.spec.start + i;
                    iteration(&sh, &mut conn, n, Some(intended), record, &mut rec, &mut buf);
                },
                Mode::Count | Mode::Idle => loop {
                    let i = sh.next.fetch_add(1, Ordering::Relaxed);
                    if i >= sh.spec.iterations || sh.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let got = iteration(&sh, &mut conn, sh.spec.start + i, None, true, &mut rec, &mut buf);
                    if got.is_some() {
                        let mut c = sh.collected.lock().unwrap_or_else(|e| e.into_inner());
                        if let Some(slot) = c.get_mut(i as usize) {
                            *slot = got;
                        }
                    }
                },
            }
            (rec, conn.connects)
        }));
    }
    let (before, window_start) = if mode == Mode::Count {
        sleep_until(t0);
        (cpu_snapshot(&spec.watch_pids), Instant::now())
    } else {
        sleep_until(warm_end);
        (cpu_snapshot(&spec.watch_pids), warm_end)
    };
    let mut after = None;
    if mode != Mode::Count {
        sleep_until(end);
        after = Some(cpu_snapshot(&spec.watch_pids));
    }
    let mut total = Recorder::new();
    let mut connects = 0;
    for h in handles {
        if let Ok((rec, c)) = h.join() {
            total.merge(&rec);
            connects += c;
        }
    }
    let finished = Instant::now();
    let after = after.unwrap_or_else(|| cpu_snapshot(&spec.watch_pids));
    let seconds = match mode {
        Mode::Count => finished.duration_since(window_start).as_secs_f64(),
        _ => spec.duration_s,
    };
    let mut report = total.report(seconds);
    let extra = json!({
        "mode": format!("{mode:?}").to_lowercase(),
        "connections": spec.connections,
        "rate": spec.rate,
        "connects": connects,
        "overrun_s": finished.saturating_duration_since(end).as_secs_f64(),
        "cpu": cpu_report(&spec.watch_pids, &before, &after),
    });
    merge_into(&mut report, extra);
    if mode == Mode::Count && spec.collect.is_some() {
        let c = sh.collected.lock().unwrap_or_else(|e| e.into_inner());
        merge_into(&mut report, json!({ "collected": *c }));
    }
    report
}

fn merge_into(target: &mut Value, extra: Value) {
    if let (Value::Object(t), Value::Object(e)) = (target, extra) {
        t.extend(e);
    }
}

/// Idle mode: open the connections, use each once, report READY, hold until stdin closes.
fn idle(sh: &Arc<Shared>) -> Value {
    let spec = &sh.spec;
    let mut rec = Recorder::new();
    let mut buf = Vec::with_capacity(4096);
    let mut conns = Vec::with_capacity(spec.connections);
    let started = Instant::now();
    for i in 0..spec.connections {
        let mut c = Conn::new(sh.addr, Duration::from_secs_f64(spec.timeout_s));
        iteration(sh, &mut c, spec.start + i as u64, None, true, &mut rec, &mut buf);
        conns.push(c);
    }
    let open_s = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout();
    let _ = writeln!(out, "READY {} {}", rec.ok, rec.requests - rec.ok);
    let _ = out.flush();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            if line.is_err() {
                break;
            }
        }
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs_f64(spec.hold_s));
    let held = started.elapsed().as_secs_f64();
    drop(conns);
    let mut report = rec.report(open_s);
    merge_into(
        &mut report,
        json!({"mode": "idle", "connections": spec.connections, "held_s": held}),
    );
    report
}
