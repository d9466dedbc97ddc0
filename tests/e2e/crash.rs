//! `kill -9` of the real `scimgate run` process in the middle of an Entra-style provisioning burst,
//! then a restart on the same store and a full Entra re-sync: every user must end up in the backend
//! exactly once, with exactly the attributes Entra wrote (no duplicate, no lost attribute).
//!
//! Also the child-process harness the soak test uses: the demo legacy backend runs in the test
//! process (so it survives the gateway's crash) and the gateway is the binary Cargo built, started
//! as `scimgate run --config <file>` with a config derived from `conf/demo.toml`.

use super::harness::enc;
use super::http::{self, Reply};
use super::scenarios::ENTERPRISE;
use scimgate::demo::{legacy_service, LegacyBackend};
use scimgate::gateway::server::{self, Running};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Password of the demo's seeded members.
pub const PASSWORD: &str = "demo-password";

// ---- a client that survives the server dying ------------------------------------------------

/// Sends one request with `Connection: close` and reads the answer; `Err` when the connection
/// cannot be made or breaks before a complete answer (the gateway was killed).
pub fn try_send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Reply, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let bytes = http::request_bytes(addr, method, target, headers, body);
    stream
        .write_all(&bytes)
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read: {e}"))?;
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Result<Reply, String> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no complete response head ({} bytes)", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let rest = &raw[head_end + 4..];
    let body = if status == 204 || status == 304 {
        Vec::new()
    } else if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if rest.len() < len {
            return Err(format!("body cut short: {} of {len} bytes", rest.len()));
        }
        rest[..len].to_vec()
    } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut buf: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = buf
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunked body cut short")?;
        let size_text = String::from_utf8_lossy(&buf[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size {size_text:?}: {e}"))?;
        if size == 0 {
            return Ok(out);
        }
        let start = line_end + 2;
        if buf.len() < start + size + 2 {
            return Err("chunk cut short".into());
        }
        out.extend_from_slice(&buf[start..start + size]);
        buf = &buf[start + size + 2..];
    }
}

// ---- the demo backend in the test process, the gateway as a child process -------------------

/// The demo legacy service, served by this test process on a free loopback port.
pub struct DemoBackend {
    pub addr: SocketAddr,
    /// The service token (admin of every team); the gateway gets it through its environment.
    pub token: String,
    running: Option<Running>,
}

impl DemoBackend {
    /// Opens (creating and seeding) `dir/legacy.sqlite` and serves it.
    pub fn start(dir: &Path) -> DemoBackend {
        let token = format!("svc-{}", scimgate::auth::generate_key());
        let addr = server::free_port().expect("port");
        let legacy =
            LegacyBackend::open(&dir.join("legacy.sqlite"), &token, PASSWORD).expect("legacy");
        let mut srv = server::build(server::server_conf(2, Duration::ZERO, dir));
        srv.add_service(legacy_service(legacy, &addr.to_string()));
        let running = Running::start(srv);
        assert!(
            super::harness::wait_listening(addr, Duration::from_secs(20)),
            "the demo backend on {addr} is not listening"
        );
        DemoBackend {
            addr,
            token,
            running: Some(running),
        }
    }

    /// A request to the legacy API as admin of every team (the service token).
    pub fn admin(&self, method: &str, target: &str, body: Option<&Value>) -> Reply {
        let auth = format!("Bearer {}", self.token);
        let body = body.map(|b| b.to_string());
        let mut headers = vec![("Authorization", auth.as_str())];
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

    /// Every member of team `acme`, as the legacy API lists them.
    pub fn members(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for page in 1.. {
            let r = self.admin(
                "GET",
                &format!("/api/teams/acme/members?page={page}&per_page=200"),
                None,
            );
            assert_eq!(r.status, 200, "{}", r.text());
            let body = r.json();
            let members = body["members"].as_array().cloned().unwrap_or_default();
            let n = members.len();
            out.extend(members);
            if n < 200 {
                break;
            }
        }
        out
    }
}

impl Drop for DemoBackend {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
    }
}

/// Everything a `scimgate run` child needs: a temp folder with its config file and store, the
/// demo backend, and the SCIM key of tenant `acme`.
pub struct ChildSetup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub store: PathBuf,
    pub listen: SocketAddr,
    pub scim_token: String,
    pub backend: DemoBackend,
}

impl ChildSetup {
    /// Starts the demo backend and writes `dir/scimgate.toml`: `conf/demo.toml` with a free listen
    /// port, the backend's address, an absolute store path and a fresh SCIM key for `acme`.
    pub fn new() -> ChildSetup {
        Self::with_route(|backend| backend)
    }

    /// Like [`Self::new`], with the gateway sent to `route(backend address)` (a relay).
    pub fn with_route(route: impl FnOnce(SocketAddr) -> SocketAddr) -> ChildSetup {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = DemoBackend::start(dir.path());
        let backend_route = route(backend.addr);
        let listen = server::free_port().expect("port");
        let store = dir.path().join("state").join("scimgate.sqlite");
        let scim_token = scimgate::auth::generate_key();
        let store_line = format!("path = {:?}", store.display().to_string());
        let text = demo_config_text(listen, backend_route, &store_line, &scim_token);
        let config = dir.path().join("scimgate.toml");
        std::fs::write(&config, text).expect("write config");
        ChildSetup {
            dir,
            config,
            store,
            listen,
            scim_token,
            backend,
        }
    }

    /// Starts `scimgate run --config <file>` and waits until it answers SCIM requests.
    pub fn spawn(&self) -> GatewayProcess {
        GatewayProcess::start(
            &self.config,
            self.listen,
            &self.scim_token,
            &[("SCIMGATE_DEMO_SERVICE_TOKEN", &self.backend.token)],
            "warn",
            &self.dir.path().join("gateway.log"),
        )
    }
}

/// `conf/demo.toml` for a `scimgate run` child: listening on `listen`, in front of `backend`,
/// its `[store]` line replaced by `store` (one or more lines), with SCIM key `token` for `acme`.
pub fn demo_config_text(
    listen: SocketAddr,
    backend: SocketAddr,
    store: &str,
    token: &str,
) -> String {
    let keys = format!(
        "backend = \"acme\"\nkeys = [{}]",
        scimgate::auth::key_entry(token)
    );
    let mut text = scimgate::commands::DEMO_CONFIG.to_string();
    for (from, to) in [
        (
            "listen = [\"127.0.0.1:8080\"]".to_string(),
            format!("listen = [\"{listen}\"]"),
        ),
        (
            "address = \"127.0.0.1:9090\"".to_string(),
            format!("address = \"{backend}\""),
        ),
        ("path = \"scimgate.sqlite\"".to_string(), store.to_string()),
        ("backend = \"acme\"".to_string(), keys),
    ] {
        assert_eq!(
            text.matches(&from).count(),
            1,
            "conf/demo.toml no longer has exactly one `{from}`"
        );
        text = text.replace(&from, &to);
    }
    text
}

/// A running `scimgate run` child; killed (SIGKILL) when dropped.
pub struct GatewayProcess {
    child: std::process::Child,
    pub addr: SocketAddr,
    pub token: String,
    log: PathBuf,
}

impl GatewayProcess {
    /// Starts `scimgate run --config <config>` with `env` and `RUST_LOG=<rust_log>`, its output
    /// appended to `log`, and waits until it answers SCIM requests with `token`.
    pub fn start(
        config: &Path,
        listen: SocketAddr,
        token: &str,
        env: &[(&str, &str)],
        rust_log: &str,
        log: &Path,
    ) -> GatewayProcess {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_scimgate"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .envs(env.iter().copied())
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log fd"))
            .stderr(out)
            .spawn()
            .expect("spawn scimgate");
        let process = GatewayProcess {
            child,
            addr: listen,
            token: token.to_string(),
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = process.try_scim("GET", "/ServiceProviderConfig", None) {
                assert_eq!(r.status, 200, "{}", r.text());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "scimgate run did not answer within 30 s; log:\n{}",
                process.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        process
    }

    /// Everything the child has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9` and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines of the child's log.
    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// A SCIM request (`path` relative to `/scim/v2`) that reports a dead gateway as `Err`.
    pub fn try_scim(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let auth = format!("Bearer {}", self.token);
        let body = body.map(|b| b.to_string());
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/scim+json"));
        }
        try_send(
            self.addr,
            method,
            &format!("/scim/v2{path}"),
            &headers,
            body.as_deref().map(str::as_bytes),
        )
    }

    /// A SCIM request to a gateway that must be up.
    pub fn scim(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.try_scim(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\nlog:\n{}", self.log_tail()))
    }

    /// A plain request to the gateway (guarded or proxied traffic).
    pub fn try_request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Reply, String> {
        try_send(self.addr, method, target, headers, body)
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

// ---- Entra's cycle ------------------------------------------------------------------------

/// What Entra holds for user `i` of the test; `moved` changes department and title-ish data the
/// way an HR update between two cycles does.
pub fn entra_user(prefix: &str, i: usize, moved: bool) -> Value {
    let user = format!("{prefix}-{i:03}@contoso.test");
    let department = if moved {
        format!("Moved-{}", i % 4)
    } else {
        format!("Dept-{}", i % 5)
    };
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": format!("0a21f0f2-{prefix}-{i:04}"),
        "userName": user,
        "active": true,
        "displayName": format!("User {i} Tester"),
        "emails": [{"primary": true, "type": "work", "value": format!("{prefix}.{i}.work@contoso.test")}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": format!("User {i} Tester"), "familyName": "Tester", "givenName": format!("User{i}")},
        "roles": [],
        ENTERPRISE: {"department": department, "employeeNumber": format!("{}", 700000 + i)}
    })
}

/// The attributes Entra compares, as `(SCIM path for a PATCH, value in the resource)`.
fn compared(user: &Value) -> Vec<(String, Value)> {
    let work_email = user["emails"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["type"] == "work"))
        .map(|e| e["value"].clone())
        .unwrap_or(Value::Null);
    vec![
        ("externalId".into(), user["externalId"].clone()),
        ("displayName".into(), user["displayName"].clone()),
        ("active".into(), user["active"].clone()),
        ("emails[type eq \"work\"].value".into(), work_email),
        ("name.givenName".into(), user["name"]["givenName"].clone()),
        ("name.familyName".into(), user["name"]["familyName"].clone()),
        ("name.formatted".into(), user["name"]["formatted"].clone()),
        (
            format!("{ENTERPRISE}:department"),
            user[ENTERPRISE]["department"].clone(),
        ),
        (
            format!("{ENTERPRISE}:employeeNumber"),
            user[ENTERPRISE]["employeeNumber"].clone(),
        ),
    ]
}

/// Entra's PATCH operations turning `current` into `desired` (only what differs; `Add` for
/// what is missing, `Replace` for what changed).
pub fn entra_diff(current: &Value, desired: &Value) -> Vec<Value> {
    compared(current)
        .into_iter()
        .zip(compared(desired))
        .filter(|((_, have), (_, want))| have != want)
        .map(|((path, have), (_, want))| {
            let op = if have.is_null() { "Add" } else { "Replace" };
            json!({"op": op, "path": path, "value": want})
        })
        .collect()
}

/// What one Entra step did for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Created,
    Patched(Vec<String>),
    Unchanged,
}

/// One Entra step for `desired`: lookup by userName; create when missing, else GET and PATCH
/// what differs. `Err` when the gateway failed to answer (transport error) or answered an error.
pub fn entra_sync(gw: &GatewayProcess, desired: &Value) -> Result<Step, String> {
    let user = desired["userName"].as_str().expect("userName");
    let lookup = gw.try_scim(
        "GET",
        &format!("/Users?filter={}", enc(&format!("userName eq \"{user}\""))),
        None,
    )?;
    if lookup.status != 200 {
        return Err(format!(
            "lookup {user}: {} {}",
            lookup.status,
            lookup.text()
        ));
    }
    let found = lookup.json();
    match found["totalResults"].as_u64() {
        Some(0) => {
            let r = gw.try_scim("POST", "/Users", Some(desired))?;
            if r.status != 201 {
                return Err(format!("create {user}: {} {}", r.status, r.text()));
            }
            Ok(Step::Created)
        }
        Some(1) => {
            let id = found["Resources"][0]["id"].as_str().ok_or("no id")?;
            let got = gw.try_scim("GET", &format!("/Users/{id}"), None)?;
            if got.status != 200 {
                return Err(format!("get {user}: {} {}", got.status, got.text()));
            }
            let ops = entra_diff(&got.json(), desired);
            if ops.is_empty() {
                return Ok(Step::Unchanged);
            }
            let paths = ops
                .iter()
                .map(|o| o["path"].as_str().unwrap_or("").to_string())
                .collect();
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
            let r = gw.try_scim("PATCH", &format!("/Users/{id}"), Some(&body))?;
            if r.status != 200 && r.status != 204 {
                return Err(format!("patch {user}: {} {}", r.status, r.text()));
            }
            Ok(Step::Patched(paths))
        }
        n => Err(format!("lookup {user} found {n:?} users: {found}")),
    }
}

// ---- a relay that holds one backend answer back -------------------------------------------

/// A TCP relay between the gateway and the backend. Armed with a method, it forwards the next
/// successful (2xx) answer to a request with that method except its last byte, and holds it:
/// the backend has committed the write, the gateway has not seen the whole answer and so has not
/// recorded anything. Killing the gateway then lands exactly between the two.
pub struct Relay {
    pub addr: SocketAddr,
    armed: Arc<Mutex<Option<String>>>,
    held: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    pub fn start(target: SocketAddr) -> Relay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("relay bind");
        let addr = listener.local_addr().expect("relay addr");
        let armed: Arc<Mutex<Option<String>>> = Arc::default();
        let held: Arc<Mutex<Option<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (a, h, st) = (armed.clone(), held.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(backend) = TcpStream::connect(target) else {
                    continue;
                };
                let request: Arc<Mutex<String>> = Arc::default();
                let (c1, b1, r1) = (
                    client.try_clone().expect("clone"),
                    backend.try_clone().expect("clone"),
                    request.clone(),
                );
                // Gateway → backend: remember the request line of the current request.
                std::thread::spawn(move || {
                    let (mut from, mut to) = (c1, b1);
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let text = String::from_utf8_lossy(&buf[..n]);
                        let first = text.split("\r\n").next().unwrap_or("");
                        if first.ends_with(" HTTP/1.1") {
                            *r1.lock().unwrap() = first.to_string();
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                    let _ = from.shutdown(std::net::Shutdown::Both);
                });
                // Backend → gateway: hold the armed answer back.
                let (a, h) = (a.clone(), h.clone());
                std::thread::spawn(move || {
                    let (mut from, mut to) = (backend, client);
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let line = request.lock().unwrap().clone();
                        let mut armed = a.lock().unwrap();
                        let hit = buf[..n].starts_with(b"HTTP/1.1 2")
                            && armed
                                .as_deref()
                                .is_some_and(|m| line.starts_with(&format!("{m} ")));
                        if hit {
                            *armed = None;
                            drop(armed);
                            let _ = to.write_all(&buf[..n - 1]);
                            *h.lock().unwrap() = Some(line);
                            // Never send the rest; the gateway dies waiting for it.
                            return;
                        }
                        drop(armed);
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Relay {
            addr,
            armed,
            held,
            stop,
        }
    }

    /// Holds back the next 2xx answer to a `method` request.
    pub fn arm(&self, method: &str) {
        *self.held.lock().unwrap() = None;
        *self.armed.lock().unwrap() = Some(method.to_string());
    }

    /// The request line whose answer is held, once it is.
    pub fn held(&self) -> Option<String> {
        self.held.lock().unwrap().clone()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

// ---- the test -----------------------------------------------------------------------------

const USERS: usize = 50;
const THREADS: usize = 4;

/// What one cycle did, per user.
#[derive(Debug, Default)]
struct Cycle {
    created: Vec<usize>,
    patched: BTreeMap<usize, Vec<String>>,
    unchanged: Vec<usize>,
    /// Users whose step broke (the gateway died under it).
    broken: Vec<(usize, String)>,
}

/// Entra's cycle over `users` from `THREADS` threads. With `kill = Some((method, after))`, once
/// `after` steps wrote something the relay is armed to hold the next `method` answer, and the
/// gateway is killed with SIGKILL as soon as it is held: the remaining steps break.
fn cycle(
    gw: &mut GatewayProcess,
    relay: &Relay,
    users: &[Value],
    kill: Option<(&str, usize)>,
) -> (Cycle, Option<String>) {
    let out = Mutex::new(Cycle::default());
    let writes = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    let dead = AtomicBool::new(false);
    let mut held = None;
    let pid = gw.pid();
    let gwr: &GatewayProcess = gw;
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    while !dead.load(Ordering::SeqCst) {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(u) = users.get(i) else { break };
                        let step = entra_sync(gwr, u);
                        let mut o = out.lock().unwrap();
                        match step {
                            Ok(Step::Created) => o.created.push(i),
                            Ok(Step::Patched(p)) => {
                                o.patched.insert(i, p);
                            }
                            Ok(Step::Unchanged) => o.unchanged.push(i),
                            Err(e) => {
                                o.broken.push((i, e));
                                break;
                            }
                        }
                        if !matches!(o.unchanged.last(), Some(&j) if j == i) {
                            writes.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        if let Some((method, after)) = kill {
            let deadline = Instant::now() + Duration::from_secs(120);
            while writes.load(Ordering::SeqCst) < after {
                assert!(Instant::now() < deadline, "the cycle is too slow");
                assert!(
                    !workers.iter().all(|w| w.is_finished()),
                    "the cycle ended before {after} writes"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            relay.arm(method);
            while relay.held().is_none() {
                assert!(Instant::now() < deadline, "no {method} answer to hold");
                assert!(
                    !workers.iter().all(|w| w.is_finished()),
                    "the cycle ended before a {method} answer could be held"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            // kill -9: no graceful shutdown, nothing flushed by the process.
            let status = Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .expect("kill");
            assert!(status.success());
            held = relay.held();
            dead.store(true, Ordering::SeqCst);
        }
    });
    if kill.is_some() {
        gw.kill9();
    }
    (out.into_inner().unwrap(), held)
}

/// The store's records (id → shadow), read from the file (SQLite replays the WAL).
fn store_records(store: &Path) -> BTreeMap<String, Value> {
    let conn = rusqlite::Connection::open(store).expect("open store");
    let mut stmt = conn.prepare("SELECT id, shadow FROM users").expect("query");
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .expect("rows");
    rows.map(|r| {
        let (id, shadow) = r.expect("row");
        (id, serde_json::from_str(&shadow).expect("shadow"))
    })
    .collect()
}

/// The burst users the backend holds: email → id.
fn burst_members(backend: &DemoBackend) -> BTreeMap<String, String> {
    backend
        .members()
        .iter()
        .filter(|m| m["email"].as_str().is_some_and(|e| e.starts_with("crash-")))
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_string(),
                m["id"].to_string(),
            )
        })
        .collect()
}

#[test]
fn kill_9_mid_burst_then_resync_converges() {
    let relay = Arc::new(Mutex::new(None::<Relay>));
    let setup = ChildSetup::with_route(|backend| {
        let r = Relay::start(backend);
        let addr = r.addr;
        *relay.lock().unwrap() = Some(r);
        addr
    });
    let relay = relay.lock().unwrap().take().expect("relay");
    let seeded = setup.backend.members().len();
    let burst: Vec<Value> = (0..USERS).map(|i| entra_user("crash", i, false)).collect();

    // 1. Entra's initial cycle; after 15 creates the gateway is killed (-9) right after the
    //    backend committed a create and before the gateway saw its answer (so before it recorded).
    let mut gw = setup.spawn();
    let (first, held) = cycle(&mut gw, &relay, &burst, Some(("POST", 15)));
    let in_backend = burst_members(&setup.backend);
    let records = store_records(&setup.store);
    eprintln!(
        "crash 1: killed -9 holding the answer to {held:?}; created {}, broken {:?}; backend holds {} burst users, store {} records",
        first.created.len(),
        first.broken,
        in_backend.len(),
        records.len()
    );
    assert!(
        first.patched.is_empty() && first.unchanged.is_empty(),
        "{first:?}"
    );
    // Every acknowledged create is in the backend and recorded (durable across kill -9).
    for i in &first.created {
        let email = burst[*i]["userName"].as_str().unwrap();
        let id = in_backend
            .get(email)
            .unwrap_or_else(|| panic!("{email} lost"));
        assert_eq!(records[id.as_str()]["externalId"], burst[*i]["externalId"]);
    }
    let unrecorded: Vec<&String> = in_backend
        .values()
        .filter(|id| !records.contains_key(id.as_str()))
        .collect();
    assert!(
        !unrecorded.is_empty(),
        "the kill did not fall between the backend create and the record"
    );

    // 2. Restart on the same store; Entra's next cycle (HR moved every third user). The gateway
    //    is killed again right after the backend applied an update and before it was recorded.
    let desired: Vec<Value> = (0..USERS)
        .map(|i| entra_user("crash", i, i % 3 == 0))
        .collect();
    let mut gw = setup.spawn();
    let (second, held) = cycle(&mut gw, &relay, &desired, Some(("PUT", 2)));
    eprintln!(
        "crash 2: killed -9 holding the answer to {held:?}; created {}, patched {:?}, unchanged {}, broken {:?}",
        second.created.len(),
        second.patched,
        second.unchanged.len(),
        second.broken
    );
    // The users created in the backend but never recorded were found by userName (no
    // duplicate) and given what only the store holds.
    for id in &unrecorded {
        let (email, _) = in_backend.iter().find(|(_, v)| v == id).unwrap();
        let i: usize = email["crash-".len().."crash-".len() + 3].parse().unwrap();
        assert!(!second.created.contains(&i), "{email} created twice");
        // Its create was noted before it reached the backend, so nothing had to be re-sent.
        if let Some(paths) = second.patched.get(&i) {
            assert!(
                !paths.contains(&"externalId".to_string()),
                "{email}: {paths:?}"
            );
        }
    }

    // 3. Restart; a full re-sync converges.
    let mut gw = setup.spawn();
    let (third, _) = cycle(&mut gw, &relay, &desired, None);
    eprintln!(
        "crash 3: created {}, patched {:?}, unchanged {}",
        third.created.len(),
        third.patched,
        third.unchanged.len()
    );
    assert!(
        third.broken.is_empty(),
        "{:?}\n{}",
        third.broken,
        gw.log_tail()
    );
    assert!(
        !third.patched.is_empty(),
        "the update lost by the second kill is sent again"
    );

    // Convergence: each user exactly once in the backend ...
    let members = setup.backend.members();
    assert_eq!(members.len(), seeded + USERS, "{members:#?}");
    let mut by_email: BTreeMap<String, usize> = BTreeMap::new();
    for m in &members {
        *by_email
            .entry(m["email"].as_str().unwrap_or("").to_lowercase())
            .or_default() += 1;
    }
    for u in &desired {
        let email = u["userName"].as_str().unwrap();
        assert_eq!(by_email.get(email), Some(&1), "{email} in the backend");
    }
    // ... and exactly what Entra wrote via SCIM, found once by userName and by externalId. Users
    // the gateway never recorded were repaired by Entra's PATCH of what it compares: their work
    // email has no `primary` flag (see `kill_9_between_backend_create_and_record_keeps_...`).
    let repaired: Vec<usize> = [&second, &third]
        .iter()
        .flat_map(|c| c.patched.iter())
        .filter(|(_, p)| p.contains(&"externalId".to_string()))
        .map(|(i, _)| *i)
        .collect();
    for (i, want) in desired.iter().enumerate() {
        let user = want["userName"].as_str().unwrap();
        let ext = want["externalId"].as_str().unwrap();
        let by_name = gw.scim(
            "GET",
            &format!("/Users?filter={}", enc(&format!("userName eq \"{user}\""))),
            None,
        );
        assert_eq!(
            by_name.json()["totalResults"],
            1,
            "{user}: {}",
            by_name.text()
        );
        let id = by_name.json()["Resources"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let by_ext = gw.scim(
            "GET",
            &format!("/Users?filter={}", enc(&format!("externalId eq \"{ext}\""))),
            None,
        );
        assert_eq!(by_ext.json()["totalResults"], 1, "{ext}: {}", by_ext.text());
        assert_eq!(by_ext.json()["Resources"][0]["id"], id.as_str());
        let got = gw.scim("GET", &format!("/Users/{id}"), None).json();
        assert_eq!(got["userName"], want["userName"], "user {i}");
        assert_eq!(got["externalId"], want["externalId"], "user {i}: {got}");
        if repaired.contains(&i) {
            let mut email = want["emails"][0].clone();
            email.as_object_mut().unwrap().remove("primary");
            assert_eq!(got["emails"], json!([email]), "user {i}: {got}");
        } else {
            assert_eq!(got["emails"], want["emails"], "user {i}: {got}");
        }
        assert_eq!(got["name"], want["name"], "user {i}: {got}");
        assert_eq!(got["displayName"], want["displayName"], "user {i}: {got}");
        assert_eq!(got["active"], true, "user {i}: {got}");
        assert_eq!(got[ENTERPRISE], want[ENTERPRISE], "user {i}: {got}");
    }
    eprintln!(
        "crash: repaired after the kills (created in the backend, never recorded): {repaired:?}"
    );
    // 4. Another cycle changes nothing: Entra would not send the same PATCH again.
    let (fourth, _) = cycle(&mut gw, &relay, &desired, None);
    assert!(
        fourth.created.is_empty() && fourth.patched.is_empty() && fourth.broken.is_empty(),
        "{fourth:?}"
    );
    assert_eq!(fourth.unchanged.len(), USERS);
}

/// The narrowest crash window: the backend committed a create and the gateway was killed before
/// it recorded the SCIM resource. After the restart Entra finds the user by userName and PATCHes
/// what differs from what it maps; every attribute of the original create must come back.
#[test]
fn kill_9_between_backend_create_and_record_keeps_every_attribute_written() {
    let relay = Arc::new(Mutex::new(None::<Relay>));
    let setup = ChildSetup::with_route(|backend| {
        let r = Relay::start(backend);
        let addr = r.addr;
        *relay.lock().unwrap() = Some(r);
        addr
    });
    let relay = relay.lock().unwrap().take().expect("relay");
    let want = entra_user("window", 1, false);
    let mut gw = setup.spawn();
    relay.arm("POST");
    let held = std::thread::scope(|s| {
        let gwr = &gw;
        let create = s.spawn(|| gwr.try_scim("POST", "/Users", Some(&want)));
        let deadline = Instant::now() + Duration::from_secs(30);
        while relay.held().is_none() {
            assert!(
                Instant::now() < deadline,
                "the create never reached the backend"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let status = Command::new("kill")
            .args(["-9", &gwr.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        assert!(create.join().unwrap().is_err(), "the create was answered");
        relay.held()
    });
    gw.kill9();
    eprintln!("crash window: killed -9 holding the answer to {held:?}");
    assert!(store_records(&setup.store).is_empty());
    let gw = setup.spawn();
    let step = entra_sync(&gw, &want).expect("sync");
    eprintln!("crash window: Entra's next cycle: {step:?}");
    // The noted create supplied everything only the store holds: nothing to re-send.
    assert!(matches!(step, Step::Unchanged), "{step:?}");
    let id = gw
        .scim(
            "GET",
            &format!(
                "/Users?filter={}",
                enc("userName eq \"window-001@contoso.test\"")
            ),
            None,
        )
        .json()["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let got = gw.scim("GET", &format!("/Users/{id}"), None).json();
    for key in [
        "userName",
        "externalId",
        "displayName",
        "name",
        "active",
        ENTERPRISE,
    ] {
        assert_eq!(got[key], want[key], "{key}: {got}");
    }
    assert_eq!(got["emails"], want["emails"], "emails: {got}");
}
