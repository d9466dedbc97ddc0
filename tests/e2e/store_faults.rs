//! The gateway's store (SQLite, WAL) failing under SCIM writes: writes must fail cleanly with a
//! SCIM error, and no backend change may be left unrecorded unless it was compensated.
//!
//! How the faults are made (as root or not, no privileges needed for the first three):
//! - **Locked store** — the test opens the store file itself and holds `BEGIN EXCLUSIVE`. Every
//!   gateway write then waits for the store's `busy_timeout` (5 s) and fails with "database is
//!   locked": exactly what another process writing the file, or a stuck writer, does. Reads still
//!   work (WAL). Not used: making the folder or file read-only (the gateway's descriptor stays
//!   open, and root ignores the modes anyway) and replacing the file (by POSIX semantics the
//!   gateway keeps writing to the unlinked inode): neither makes a running gateway fail.
//! - **Locked between the backend call and the record** — the backend is slowed down for one call
//!   (the alt backend's `delay_next`) and the lock is taken while the gateway waits for it: the
//!   gateway checked the store first, wrote to the backend, and then cannot record.
//! - **Disk full** — a 1 MiB tmpfs holds the store and a filler file takes all its space. Needs
//!   root (CAP_SYS_ADMIN for `mount`); the test says so and passes without running elsewhere.

use super::alt_backend::AltBackend;
use super::harness::{assert_scim_error, enc, Gateway};
use super::http::Reply;
use super::scenarios::{self, create_body, ENTERPRISE};
use scimgate::auth::{self, ApiKey, Keyring};
use scimgate::gateway::server;
use scimgate::store::engine::StoreSettings;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ALT_API_KEY: &str = "alt-e2e-api-key";
const ORG: &str = "globex-org";
/// The store's `busy_timeout`; a write to a locked store is refused after it.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A gateway configured by `tests/fixtures/alt.toml` (2 threads) in front of a fresh alt backend,
/// with its store at `store`, or in its temp folder when `None`. Answers the store's path too.
fn alt_gateway(store: Option<PathBuf>) -> (Gateway, AltBackend, PathBuf) {
    std::env::set_var("SCIMGATE_ALT_API_KEY", ALT_API_KEY);
    let dir = tempfile::tempdir().expect("tempdir");
    let token = auth::generate_key();
    let listen = server::free_port().expect("port");
    let backend_addr = server::free_port().expect("port");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alt.toml");
    let mut config = scimgate::config::from_str(include_str!("../fixtures/alt.toml"), &file)
        .unwrap_or_else(|e| panic!("{e}"));
    config.server.listen = vec![listen];
    config.server.threads = 2;
    config.backend.address = backend_addr;
    let store = store.unwrap_or_else(|| dir.path().join("scimgate.sqlite"));
    config.store = StoreSettings::Sqlite(store.clone());
    let tenant = config
        .tenants
        .iter()
        .find(|t| t.name == "globex")
        .cloned()
        .expect("tenant globex");
    config.keyring = Keyring::new(vec![ApiKey::from_secret(tenant, &token)]);
    let backend = AltBackend::new(ALT_API_KEY);
    let conf = server::server_conf(config.server.threads, Duration::ZERO, dir.path());
    let mut srv = server::build(conf);
    srv.add_service(backend.service(&backend_addr.to_string()));
    let gw = Gateway::start(srv, config, token, dir, &[backend_addr]);
    (gw, backend, store)
}

/// Another process's write transaction on the store file, held until dropped.
struct StoreLock {
    conn: rusqlite::Connection,
}

impl StoreLock {
    fn take(store: &Path) -> StoreLock {
        let conn = rusqlite::Connection::open(store).expect("open the store");
        conn.busy_timeout(Duration::from_secs(30)).expect("busy");
        conn.execute_batch("BEGIN EXCLUSIVE")
            .expect("lock the store");
        StoreLock { conn }
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        let _ = self.conn.execute_batch("ROLLBACK");
    }
}

fn detail(r: &Reply) -> String {
    r.json()["detail"].as_str().unwrap_or_default().to_string()
}

/// The backend's account with login `login`, if any.
fn account_by_login(backend: &AltBackend, login: &str) -> Option<Value> {
    backend
        .accounts(ORG)
        .into_iter()
        .find(|a| a["login"].as_str() == Some(login))
}

fn account(backend: &AltBackend, id: &str) -> Option<Value> {
    backend.accounts(ORG).into_iter().find(|a| a["id"] == id)
}

/// Methods of the backend requests logged since the last clear, as `"METHOD /path"`.
fn writes(backend: &AltBackend) -> Vec<String> {
    backend
        .requests()
        .into_iter()
        .filter(|r| !r.starts_with("GET "))
        .collect()
}

fn patch_body(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// The refusal of a write to an unwritable store: 503 with `Retry-After`, a SCIM error naming
/// the store.
fn assert_store_refusal(r: &Reply, what: &str) {
    assert_scim_error(r, 503, None);
    let wait = r.header("retry-after").and_then(|v| v.parse::<u64>().ok());
    assert!(wait.is_some_and(|s| s >= 1), "{what}: Retry-After {wait:?}");
    let d = detail(r);
    assert!(
        d.contains("store") && (d.contains("locked") || d.contains("full")),
        "{what}: {d}"
    );
}

#[test]
fn locked_store_refuses_writes_before_any_backend_write() {
    let (gw, backend, store) = alt_gateway(None);
    let id = scenarios::create(&gw, "alice@contoso.com", "ext-alice");
    let before = account(&backend, &id).expect("alice");
    backend.clear_requests();
    let lock = StoreLock::take(&store);

    // A create, and while it waits for the store, a read of alice on the other worker thread.
    let (create, read, read_took) = std::thread::scope(|s| {
        let create = s.spawn(|| {
            let t = Instant::now();
            let r = gw.scim(
                "POST",
                "/Users",
                Some(&create_body("bob@contoso.com", "ext-bob")),
            );
            (r, t.elapsed())
        });
        std::thread::sleep(Duration::from_millis(500));
        let t = Instant::now();
        let read = gw.scim("GET", &format!("/Users/{id}"), None);
        let took = t.elapsed();
        (create.join().unwrap(), read, took)
    });
    let (create, create_took) = create;
    assert_store_refusal(&create, "create");
    assert!(
        create_took >= BUSY_TIMEOUT - Duration::from_millis(500) && create_took < BUSY_TIMEOUT * 3,
        "refused after {create_took:?}"
    );
    assert_eq!(read.status, 200, "reads still work: {}", read.text());
    eprintln!(
        "store_faults: create refused after {create_took:?}; a GET sent meanwhile took {read_took:?}"
    );

    let patch = gw.scim(
        "PATCH",
        &format!("/Users/{id}"),
        Some(&patch_body(
            json!([{"op": "Replace", "path": "name.familyName", "value": "Smyth"}]),
        )),
    );
    assert_store_refusal(&patch, "patch");
    let mut put = create_body("alice@contoso.com", "ext-alice");
    put["name"]["givenName"] = json!("Alicia");
    let put = gw.scim("PUT", &format!("/Users/{id}"), Some(&put));
    assert_store_refusal(&put, "put");
    let delete = gw.scim("DELETE", &format!("/Users/{id}"), None);
    assert_store_refusal(&delete, "delete");

    // The backend was only read: no write reached it, nothing needs compensating.
    assert_eq!(writes(&backend), Vec::<String>::new());
    assert_eq!(backend.accounts(ORG), vec![before.clone()]);
    let got = gw.scim("GET", &format!("/Users/{id}"), None).json();
    assert_eq!(got["name"]["familyName"], "Smith");
    assert_eq!(got["externalId"], "ext-alice");

    // Unlocked, the same writes go through, without a restart.
    drop(lock);
    let bob = scenarios::create(&gw, "bob@contoso.com", "ext-bob");
    let patched = scenarios::patch(
        &gw,
        &id,
        json!([{"op": "Replace", "path": "name.familyName", "value": "Smyth"}]),
    );
    assert_eq!(patched["name"]["familyName"], "Smyth");
    assert_eq!(
        gw.scim("DELETE", &format!("/Users/{bob}"), None).status,
        204
    );
}

/// While writes wait for a locked store (up to its 5 s busy timeout each), traffic that does not
/// need the store — a proxied request, Entra's Test Connection lookup — must still be answered
/// promptly.
#[test]
fn locked_store_does_not_stall_other_traffic() {
    let (gw, _backend, store) = alt_gateway(None);
    let ids: Vec<String> = (0..2)
        .map(|i| scenarios::create(&gw, &format!("w{i}@contoso.com"), &format!("e{i}")))
        .collect();
    let lock = StoreLock::take(&store);
    let timings = std::thread::scope(|s| {
        for id in &ids {
            let gw = &gw;
            s.spawn(move || {
                let body = patch_body(
                    json!([{"op": "Replace", "path": "name.familyName", "value": "Stuck"}]),
                );
                let r = gw.scim("PATCH", &format!("/Users/{id}"), Some(&body));
                assert_store_refusal(&r, "patch");
            });
        }
        std::thread::sleep(Duration::from_millis(1000));
        let t = Instant::now();
        let proxied = gw.request("GET", &format!("/v1/orgs/{ORG}/accounts"), &[], None);
        let proxied_took = t.elapsed();
        assert_eq!(
            proxied.status,
            401,
            "the backend's answer: {}",
            proxied.text()
        );
        let t = Instant::now();
        let r = gw.scim(
            "GET",
            "/Users?filter=userName+eq+%22f7a1c2d4-9b7e-4c47-8f3a-1f2e3d4c5b6a%22",
            None,
        );
        let lookup_took = t.elapsed();
        assert_eq!(r.status, 200, "{}", r.text());
        (proxied_took, lookup_took)
    });
    drop(lock);
    eprintln!(
        "store_faults: with two writes waiting on the locked store: proxied request {:?}, Test Connection {:?}",
        timings.0, timings.1
    );
    assert!(
        timings.0 < Duration::from_secs(2) && timings.1 < Duration::from_secs(2),
        "stalled: proxied {:?}, Test Connection {:?}",
        timings.0,
        timings.1
    );
}

/// Runs `send` on another thread, takes the store lock `lead` later (while the backend holds the
/// gateway's write back) and answers the reply once it arrives; the lock is released after it.
fn lock_while_backend_writes(
    store: &Path,
    lead: Duration,
    send: impl FnOnce() -> Reply + Send,
) -> Reply {
    std::thread::scope(|s| {
        let request = s.spawn(send);
        std::thread::sleep(lead);
        let lock = StoreLock::take(store);
        let reply = request.join().unwrap();
        drop(lock);
        reply
    })
}

/// How long the test waits before locking; the backend holds the write back `LEAD + 3 s`.
const LEAD: Duration = Duration::from_millis(1000);
const ATTEMPTS: usize = 3;

#[test]
fn store_failing_after_the_backend_create_deletes_the_user_again() {
    for attempt in 1..=ATTEMPTS {
        let (gw, backend, store) = alt_gateway(None);
        backend.delay_next("/accounts", LEAD * attempt as u32 + Duration::from_secs(3));
        let r = lock_while_backend_writes(&store, LEAD * attempt as u32, || {
            gw.scim(
                "POST",
                "/Users",
                Some(&create_body("carol@contoso.com", "ext-carol")),
            )
        });
        let log = backend.requests();
        if !log.iter().any(|r| r.starts_with("POST ")) {
            eprintln!("store_faults: attempt {attempt}: locked before the gateway checked the store; again");
            continue;
        }
        assert_store_refusal(&r, "create");
        assert!(
            detail(&r).contains("deleted again"),
            "the answer says what happened: {}",
            detail(&r)
        );
        // The backend saw the create and its compensation, and holds nobody.
        let w = writes(&backend);
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(w[0], format!("POST /v1/orgs/{ORG}/accounts"));
        assert!(
            w[1].starts_with(&format!("DELETE /v1/orgs/{ORG}/accounts/acc_")),
            "{w:?}"
        );
        assert!(
            backend.accounts(ORG).is_empty(),
            "{:?}",
            backend.accounts(ORG)
        );
        // Entra's retry in the next cycle: not found, created, complete.
        let found = scenarios::filter(&gw, "userName eq \"carol@contoso.com\"");
        assert_eq!(found["totalResults"], 0);
        let id = scenarios::create(&gw, "carol@contoso.com", "ext-carol");
        let got = gw.scim("GET", &format!("/Users/{id}"), None).json();
        assert_eq!(got["externalId"], "ext-carol");
        assert_eq!(got[ENTERPRISE]["department"], "Sales");
        return;
    }
    panic!("the lock never fell between the store check and the backend create");
}

/// How many backend requests to `/accounts/{id}` a SCIM `method` on user `id` makes before the
/// backend call with `backend_method` (measured on a harmless request of the same shape).
fn calls_before(backend: &AltBackend, id: &str, backend_method: &str) -> usize {
    let item = format!("/accounts/{id}");
    let log = backend.requests();
    let hits: Vec<&String> = log.iter().filter(|r| r.contains(&item)).collect();
    hits.iter()
        .position(|r| r.starts_with(&format!("{backend_method} ")))
        .unwrap_or_else(|| panic!("no {backend_method} in {hits:?}"))
}

#[test]
fn store_failing_after_the_backend_update_puts_the_user_back() {
    for attempt in 1..=ATTEMPTS {
        let (gw, backend, store) = alt_gateway(None);
        let id = scenarios::create(&gw, "dave@contoso.com", "ext-dave");
        // A PATCH that works, to learn how many reads precede the backend's PATCH.
        backend.clear_requests();
        scenarios::patch(
            &gw,
            &id,
            json!([{"op": "Replace", "path": "nickName", "value": "dj"}]),
        );
        let reads = calls_before(&backend, &id, "PATCH");
        let before = account(&backend, &id).expect("dave");
        backend.clear_requests();
        let item = format!("/accounts/{id}");
        for _ in 0..reads {
            backend.delay_next(&item, Duration::ZERO);
        }
        let lead = LEAD * attempt as u32;
        backend.delay_next(&item, lead + Duration::from_secs(3));
        let r = lock_while_backend_writes(&store, lead, || {
            gw.scim(
                "PATCH",
                &format!("/Users/{id}"),
                Some(&patch_body(json!([
                    {"op": "Replace", "path": "name.familyName", "value": "Dawson"},
                    {"op": "Replace", "path": "externalId", "value": "ext-dave-2"},
                    {"op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "Ops"}
                ]))),
            )
        });
        if !backend.requests().iter().any(|r| r.starts_with("PATCH ")) {
            eprintln!("store_faults: attempt {attempt}: locked before the gateway checked the store; again");
            continue;
        }
        assert_store_refusal(&r, "patch");
        assert!(detail(&r).contains("put back"), "{}", detail(&r));
        // The update and the update that restored the account, which is as it was.
        let w = writes(&backend);
        assert_eq!(
            w,
            vec![format!("PATCH /v1/orgs/{ORG}/accounts/{id}"); 2],
            "{w:?}"
        );
        let after = account(&backend, &id).expect("dave");
        for field in ["login", "given", "family", "nick", "active"] {
            assert_eq!(after[field], before[field], "{field}");
        }
        // SCIM shows the user as before the failed PATCH.
        let got = gw.scim("GET", &format!("/Users/{id}"), None).json();
        assert_eq!(got["name"]["familyName"], "Smith");
        assert_eq!(got["externalId"], "ext-dave");
        assert_eq!(got["nickName"], "dj");
        assert_eq!(got[ENTERPRISE]["department"], "Sales");
        return;
    }
    panic!("the lock never fell between the store check and the backend update");
}

/// A SCIM DELETE whose store update fails after the backend deleted the user: the answer must
/// match the backend (204 when the user is gone, or a failure with the user still there).
#[test]
fn store_failing_after_the_backend_delete_answers_what_happened() {
    for attempt in 1..=ATTEMPTS {
        let (gw, backend, store) = alt_gateway(None);
        let other = scenarios::create(&gw, "erin@contoso.com", "ext-erin");
        let id = scenarios::create(&gw, "frank@contoso.com", "ext-frank");
        backend.clear_requests();
        assert_eq!(
            gw.scim("DELETE", &format!("/Users/{other}"), None).status,
            204
        );
        let reads = calls_before(&backend, &other, "DELETE");
        backend.clear_requests();
        let item = format!("/accounts/{id}");
        for _ in 0..reads {
            backend.delay_next(&item, Duration::ZERO);
        }
        let lead = LEAD * attempt as u32;
        backend.delay_next(&item, lead + Duration::from_secs(3));
        let r = lock_while_backend_writes(&store, lead, || {
            gw.scim("DELETE", &format!("/Users/{id}"), None)
        });
        if !backend.requests().iter().any(|r| r.starts_with("DELETE ")) {
            eprintln!("store_faults: attempt {attempt}: locked before the gateway checked the store; again");
            continue;
        }
        let gone = account(&backend, &id).is_none();
        eprintln!(
            "store_faults: DELETE with the store locked after the backend call: {} {:?}; user gone from the backend: {gone}",
            r.status,
            detail(&r)
        );
        if gone {
            assert_eq!(r.status, 204, "the user was deleted, yet: {}", r.text());
        } else {
            assert_store_refusal(&r, "delete");
        }
        return;
    }
    panic!("the lock never fell between the store check and the backend delete");
}

// ---- disk full ----------------------------------------------------------------------------

/// A small tmpfs mounted for the test; unmounted (lazily) when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `path`, or `None` when this process may not mount.
    fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).ok()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "store_faults: cannot mount a tmpfs ({}); the disk-full test needs root",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Tmpfs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the file system holding `dir` with `dir/filler` until a write fails (ENOSPC).
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    for chunk in [4096usize, 512, 1] {
        let buf = vec![0u8; chunk];
        while f.write_all(&buf).and_then(|_| f.sync_data()).is_ok() {}
    }
    path
}

/// Entra's create body with a large enterprise attribute (kept only in the store) so that every
/// record needs new pages.
fn big_body(user: &str, ext: &str) -> Value {
    let mut body = create_body(user, ext);
    body[ENTERPRISE]["organization"] = json!("x".repeat(6000));
    body
}

#[test]
fn full_disk_fails_writes_cleanly_and_recovers() {
    let outer = tempfile::tempdir().expect("tempdir");
    let Some(fs) = Tmpfs::mount(&outer.path().join("mnt"), "1m") else {
        return;
    };
    let (mut gw, backend, _store) = alt_gateway(Some(fs.path.join("scimgate.sqlite")));
    let alice = scenarios::create(&gw, "alice@contoso.com", "ext-alice");
    let filler = fill(&fs.path);

    // Creates until the store runs out of room: each is either complete (201, recorded, readable)
    // or refused with the backend's user deleted again.
    let mut refused = 0;
    for i in 0..12 {
        let user = format!("full{i}@contoso.com");
        let r = gw.scim(
            "POST",
            "/Users",
            Some(&big_body(&user, &format!("ext-{i}"))),
        );
        match r.status {
            201 => {
                let id = r.json()["id"].as_str().unwrap().to_string();
                let got = gw.scim("GET", &format!("/Users/{id}"), None).json();
                assert_eq!(got["externalId"], format!("ext-{i}"));
                assert_eq!(
                    got[ENTERPRISE]["organization"].as_str().map(str::len),
                    Some(6000)
                );
            }
            _ => {
                assert_store_refusal(&r, "create");
                // Refused before the backend (the create could not be noted), or undone after.
                let d = detail(&r);
                assert!(
                    d.contains("deleted again") || d.contains("store failed"),
                    "{d}"
                );
                assert_eq!(
                    account_by_login(&backend, &user),
                    None,
                    "{user} left behind"
                );
                refused += 1;
            }
        }
    }
    eprintln!("store_faults: disk full: {refused} of 12 creates refused");
    assert!(refused > 0, "the full disk was never noticed");

    // A PATCH is refused and the backend put back.
    let before = account(&backend, &alice).unwrap();
    let r = gw.scim(
        "PATCH",
        &format!("/Users/{alice}"),
        Some(&patch_body(json!([
            {"op": "Replace", "path": "name.familyName", "value": "Full"},
            {"op": "Add", "path": format!("{ENTERPRISE}:organization"), "value": "y".repeat(6000)}
        ]))),
    );
    assert_store_refusal(&r, "patch");
    // Refused by the write probe before the backend, or put back after.
    let d = detail(&r);
    assert!(d.contains("put back") || d.contains("store failed"), "{d}");
    assert_eq!(
        account(&backend, &alice).unwrap()["family"],
        before["family"]
    );
    assert_eq!(
        gw.scim("GET", &format!("/Users/{alice}"), None).json()["name"]["familyName"],
        "Smith"
    );

    // Room again: the refused users are created (no leftovers make them 409), without a restart.
    std::fs::remove_file(&filler).expect("remove filler");
    let id = scenarios::create(&gw, "full0@contoso.com", "ext-0");
    let again = gw.scim("GET", &format!("/Users/{id}"), None).json();
    assert_eq!(again["externalId"], "ext-0");
    let r = gw.scim(
        "GET",
        &format!("/Users?filter={}", enc("userName eq \"full0@contoso.com\"")),
        None,
    );
    assert_eq!(r.json()["totalResults"], 1);
    gw.stop();
    drop(fs);
}

/// A SCIM DELETE on a full disk: the backend call happens (the store check before it writes
/// nothing), then the store cannot forget the user. The answer must match the backend.
#[test]
fn full_disk_delete_answers_what_happened() {
    let outer = tempfile::tempdir().expect("tempdir");
    let Some(fs) = Tmpfs::mount(&outer.path().join("mnt"), "1m") else {
        return;
    };
    let (mut gw, backend, _store) = alt_gateway(Some(fs.path.join("scimgate.sqlite")));
    let ids: Vec<String> = (0..3)
        .map(|i| scenarios::create(&gw, &format!("del{i}@contoso.com"), &format!("e{i}")))
        .collect();
    let filler = fill(&fs.path);
    // Fill the last pages of the write-ahead log too, so that the next record must grow it.
    for i in 0..12 {
        let _ = gw.scim(
            "POST",
            "/Users",
            Some(&big_body(&format!("pad{i}@contoso.com"), &format!("p{i}"))),
        );
    }
    let mut outcomes = Vec::new();
    for id in &ids {
        backend.clear_requests();
        let r = gw.scim("DELETE", &format!("/Users/{id}"), None);
        let gone = account(&backend, id).is_none();
        outcomes.push((r.status, gone, detail(&r)));
    }
    eprintln!(
        "store_faults: DELETE on a full disk (status, gone from the backend, detail): {outcomes:?}"
    );
    std::fs::remove_file(&filler).expect("remove filler");
    gw.stop();
    drop(fs);
    for (status, gone, detail) in outcomes {
        if gone {
            assert_eq!(status, 204, "deleted, yet answered {status}: {detail}");
        } else {
            assert_eq!(status, 503, "{detail}");
        }
    }
}
