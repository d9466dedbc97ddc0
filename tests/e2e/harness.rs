//! Starts a real gateway and a real backend on free loopback ports inside the test process, and
//! hands the test a SCIM client bound to them.

use super::http::{self, Reply};
use scimgate::auth::{ApiKey, Keyring};
use scimgate::commands::{demo_config, DemoOptions};
use scimgate::config::Config;
use scimgate::demo::{legacy_service, LegacyBackend};
use scimgate::gateway::server::{self, Running};
use scimgate::store::engine::StoreSettings;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// The demo's backend credential variable; every test uses the same value.
pub const DEMO_SERVICE_TOKEN: &str = "test-service-token";
/// Password of the seeded demo members.
pub const PASSWORD: &str = "demo-password";

/// A running gateway (and whatever backend the test started with it).
pub struct Gateway {
    pub addr: SocketAddr,
    pub token: String,
    /// The backends the test started with it (for the demo: the legacy service).
    pub backends: Vec<SocketAddr>,
    /// The running gateway's state (its store and store keys, as the admin API will use them).
    pub gateway: std::sync::Arc<scimgate::Gateway>,
    _dir: tempfile::TempDir,
    running: Option<Running>,
    /// The PostgreSQL database of a demo run with `SCIMGATE_E2E_STORE=postgres`; dropped after
    /// the gateway stops.
    database: Option<super::pg::TestDb>,
}

/// With this variable set to `postgres`, every demo gateway keeps its store in a fresh
/// PostgreSQL database instead of SQLite (CI runs the demo suites both ways).
pub const STORE_VAR: &str = "SCIMGATE_E2E_STORE";

impl Gateway {
    /// The demo: gateway + built-in legacy service, like `scimgate demo`; its store is SQLite,
    /// or PostgreSQL when [`STORE_VAR`] says so.
    pub fn demo() -> Gateway {
        if std::env::var(STORE_VAR).is_ok_and(|v| v == "postgres") {
            let db = super::pg::TestDb::create().expect("PostgreSQL for SCIMGATE_E2E_STORE");
            let store = StoreSettings::Postgres(db.settings());
            let mut gw = Self::demo_with(|c| c.store = store);
            gw.database = Some(db);
            return gw;
        }
        Self::demo_with(|_| {})
    }

    /// The demo with its config changed by `adjust` (another store, say).
    pub fn demo_with(adjust: impl FnOnce(&mut Config)) -> Gateway {
        std::env::set_var("SCIMGATE_DEMO_SERVICE_TOKEN", DEMO_SERVICE_TOKEN);
        let dir = tempfile::tempdir().expect("tempdir");
        let token = scimgate::auth::generate_key();
        let listen = server::free_port().expect("port");
        let legacy_addr = server::free_port().expect("port");
        let opts = DemoOptions {
            listen,
            token: token.clone(),
            password: PASSWORD.into(),
            data: dir.path().to_path_buf(),
        };
        let legacy = LegacyBackend::open(
            &dir.path().join("legacy.sqlite"),
            DEMO_SERVICE_TOKEN,
            PASSWORD,
        )
        .expect("legacy");
        let mut config = demo_config(&opts, legacy_addr).expect("demo config");
        adjust(&mut config);
        let mut srv = server::build(server::server_conf(2, Duration::from_secs(0), dir.path()));
        srv.add_service(legacy_service(legacy, &legacy_addr.to_string()));
        Self::start(srv, config, token, dir, &[legacy_addr])
    }

    /// A gateway configured by the fixture file `tests/fixtures/{name}` (its `text`), in front
    /// of the service `backend` makes for the backend's address, with a SCIM key for tenant
    /// `tenant`; `adjust` changes the config last.
    pub fn fixture<S: pingora::services::Service + 'static>(
        name: &str,
        text: &str,
        tenant: &str,
        adjust: impl FnOnce(&mut Config),
        backend: impl FnOnce(&str) -> S,
    ) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = scimgate::auth::generate_key();
        let listen = server::free_port().expect("port");
        let backend_addr = server::free_port().expect("port");
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let mut config = scimgate::config::from_str(text, &file).unwrap_or_else(|e| panic!("{e}"));
        config.server.listen = vec![listen];
        config.backend.address = backend_addr;
        config.store = StoreSettings::Sqlite(dir.path().join("scimgate.sqlite"));
        let tenant = config
            .tenants
            .iter()
            .find(|t| t.name == tenant)
            .cloned()
            .unwrap_or_else(|| panic!("no tenant {tenant} in {name}"));
        config.keyring = Keyring::new(vec![ApiKey::from_secret(tenant, &token)]);
        adjust(&mut config);
        let conf = server::server_conf(config.server.threads, Duration::ZERO, dir.path());
        let mut srv = server::build(conf);
        srv.add_service(backend(&backend_addr.to_string()));
        Self::start(srv, config, token, dir, &[backend_addr])
    }

    /// A gateway over `config` on a pingora server that already holds the test's backend service.
    pub fn start(
        mut srv: pingora::server::Server,
        config: Config,
        token: String,
        dir: tempfile::TempDir,
        backends: &[SocketAddr],
    ) -> Gateway {
        let addr = config.server.listen[0];
        let runtime = scimgate::Gateway::new(config, None).expect("runtime");
        runtime.add_services(&mut srv).expect("services");
        let running = Running::start(srv);
        for a in backends.iter().chain([&addr]) {
            assert!(
                wait_listening(*a, Duration::from_secs(10)),
                "{a} is not listening"
            );
        }
        Gateway {
            addr,
            token,
            backends: backends.to_vec(),
            gateway: runtime,
            _dir: dir,
            running: Some(running),
            database: None,
        }
    }

    /// Stops the gateway now (it also stops when dropped).
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
    }

    /// A SCIM request with the bearer key; `path` is relative to `/scim/v2`.
    pub fn scim(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.scim_as(&self.token, method, path, body)
    }

    /// A SCIM request with the bearer key `token` (another tenant's, say).
    pub fn scim_as(&self, token: &str, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let auth = format!("Bearer {token}");
        let body = body.map(|b| b.to_string());
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/scim+json"));
        }
        http::send(
            self.addr,
            method,
            &format!("/scim/v2{path}"),
            &headers,
            body.as_deref().map(str::as_bytes),
        )
    }

    /// A plain request to the gateway with extra headers.
    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        http::send(self.addr, method, target, headers, body)
    }

    /// Logs a demo member in through the gateway; returns the session token.
    pub fn login(&self, email: &str) -> String {
        let body = serde_json::json!({"email": email, "password": PASSWORD}).to_string();
        let r = self.request(
            "POST",
            "/api/login",
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        );
        assert_eq!(r.status, 200, "login {email}: {}", r.text());
        r.json()["session"].as_str().expect("session").to_string()
    }

    /// Looks a user up by userName and returns its SCIM id.
    pub fn id_of(&self, user_name: &str) -> String {
        let r = self.scim(
            "GET",
            &format!(
                "/Users?filter={}",
                enc(&format!("userName eq \"{user_name}\""))
            ),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["Resources"][0]["id"]
            .as_str()
            .expect("found")
            .to_string()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Percent-encodes a query value the way Entra does (`+` for space, `%22` for quotes).
pub fn enc(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Asserts an RFC 7644 error body with the given status and scimType.
pub fn assert_scim_error(r: &Reply, status: u16, scim_type: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/scim+json"),
        "{}",
        r.text()
    );
    let body = r.json();
    assert_eq!(
        body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
        "{body}"
    );
    assert_eq!(body["status"], status.to_string(), "{body}");
    match scim_type {
        Some(t) => assert_eq!(body["scimType"], t, "{body}"),
        None => assert!(body.get("scimType").is_none(), "{body}"),
    }
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

/// Waits until something accepts connections on `addr` (bounded by `timeout`).
pub fn wait_listening(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
