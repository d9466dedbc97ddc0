//! Operating the gateway, through sockets: HTTPS (TLS 1.2 and 1.3, HTTP/2 by ALPN, nothing
//! older), certificate and key changes by reload while clients keep connections open, broken
//! reloads, `/metrics` and the health endpoints, the request limits (413, 429, slow clients),
//! the provisioning log, and the `scimgate run` process: failed bind, SIGTERM, SIGINT, SIGHUP.
//!
//! Each test writes its config file to a temporary folder (the demo config with this test's
//! ports, keys and `[server]` settings) and runs the gateway from it with reload enabled.

use super::harness::{assert_scim_error, enc, DEMO_SERVICE_TOKEN, PASSWORD};
use super::http::{self, Reply};
use super::scenarios::create_body;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use scimgate::commands::DEMO_CONFIG;
use scimgate::demo::{legacy_service, LegacyBackend};
use scimgate::gateway::server::{self, Running};
use scimgate::gateway::Gateway;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---- config files ----------------------------------------------------------------------------

/// What varies between the tests' config files; rendered onto `conf/demo.toml`.
#[derive(Clone)]
struct Settings {
    listen: SocketAddr,
    admin: SocketAddr,
    backend: SocketAddr,
    /// HTTPS listener; the certificate is `cert.pem` / `key.pem` beside the config file.
    tls: Option<SocketAddr>,
    /// SCIM keys of tenant `acme`: (id, secret).
    keys: Vec<(String, String)>,
    grace_seconds: u64,
    /// Extra `[server]` lines (`max_body_bytes = 4096`, ...).
    server: Vec<String>,
    /// `[server.auth_failures]`: max and window seconds.
    auth_failures: Option<(u32, u64)>,
}

impl Settings {
    fn new(backend: SocketAddr) -> Settings {
        Settings {
            listen: free_port(),
            admin: free_port(),
            backend,
            tls: None,
            keys: vec![key("entra-1")],
            grace_seconds: 0,
            server: Vec::new(),
            auth_failures: None,
        }
    }

    fn render(&self) -> String {
        let mut text = DEMO_CONFIG.to_string();
        replace_once(
            &mut text,
            "listen = [\"127.0.0.1:8080\"]",
            &format!("listen = [\"{}\"]", self.listen),
        );
        let mut server = vec![
            format!("grace_period_seconds = {}", self.grace_seconds),
            format!("admin_listen = \"{}\"", self.admin),
        ];
        server.extend(self.server.iter().cloned());
        replace_once(&mut text, "grace_period_seconds = 1", &server.join("\n"));
        let mut tables = String::new();
        if let Some(tls) = self.tls {
            tables.push_str(&format!(
                "[server.tls]\nlisten = [\"{tls}\"]\ncert = \"cert.pem\"\nkey = \"key.pem\"\nhttp2 = true\n\n"
            ));
        }
        if let Some((max, window)) = self.auth_failures {
            tables.push_str(&format!(
                "[server.auth_failures]\nmax = {max}\nwindow_seconds = {window}\n\n"
            ));
        }
        replace_once(&mut text, "\n[scim]\n", &format!("\n{tables}[scim]\n"));
        replace_once(
            &mut text,
            "address = \"127.0.0.1:9090\"",
            &format!("address = \"{}\"", self.backend),
        );
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|(id, secret)| {
                let hash = scimgate::auth::hash_key(secret.as_bytes());
                format!("{{ id = \"{id}\", sha256 = \"{}\" }}", hex::encode(hash))
            })
            .collect();
        replace_once(
            &mut text,
            "backend = \"acme\"\n",
            &format!("backend = \"acme\"\nkeys = [{}]\n", keys.join(", ")),
        );
        text
    }
}

fn replace_once(text: &mut String, from: &str, to: &str) {
    assert_eq!(
        text.matches(from).count(),
        1,
        "conf/demo.toml changed: {from:?}"
    );
    *text = text.replacen(from, to, 1);
}

/// A new SCIM key named `id`: (id, secret).
fn key(id: &str) -> (String, String) {
    (id.to_string(), scimgate::auth::generate_key())
}

fn free_port() -> SocketAddr {
    server::free_port().expect("free port")
}

// ---- a gateway run from a config file ----------------------------------------------------------

/// A gateway started from a config file on disk, with its [`Gateway`] at hand for reloads, in
/// front of the demo's legacy service.
struct Ops {
    dir: tempfile::TempDir,
    path: PathBuf,
    settings: Settings,
    runtime: Arc<Gateway>,
    running: Option<Running>,
}

impl Ops {
    /// Starts a gateway; `setup` adjusts the settings (the backend is already chosen).
    fn start(setup: impl FnOnce(&mut Settings, &Path)) -> Ops {
        std::env::set_var("SCIMGATE_DEMO_SERVICE_TOKEN", DEMO_SERVICE_TOKEN);
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = free_port();
        let mut settings = Settings::new(backend);
        setup(&mut settings, dir.path());
        let path = dir.path().join("scimgate.toml");
        std::fs::write(&path, settings.render()).expect("write config");
        let config = scimgate::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let legacy = LegacyBackend::open(
            &dir.path().join("legacy.sqlite"),
            DEMO_SERVICE_TOKEN,
            PASSWORD,
        )
        .expect("legacy");
        let mut srv = server::build(server::server_conf(2, Duration::ZERO, dir.path()));
        srv.add_service(legacy_service(legacy, &backend.to_string()));
        let runtime = Gateway::new(config, Some(path.clone())).expect("runtime");
        runtime.add_services(&mut srv).expect("services");
        let running = Running::start(srv);
        for a in runtime.listen_addresses().into_iter().chain([backend]) {
            assert!(
                super::harness::wait_listening(a, Duration::from_secs(10)),
                "{a} is not listening"
            );
        }
        Ops {
            dir,
            path,
            settings,
            runtime,
            running: Some(running),
        }
    }

    fn secret(&self, id: &str) -> String {
        self.settings
            .keys
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| panic!("no key {id}"))
    }

    /// Changes the settings and rewrites the config file (no reload).
    fn rewrite(&mut self, change: impl FnOnce(&mut Settings)) {
        change(&mut self.settings);
        std::fs::write(&self.path, self.settings.render()).expect("write config");
    }

    fn reload(&self) -> Result<(), String> {
        self.runtime.reload().map_err(|e| e.to_string())
    }

    /// A SCIM request over a fresh plain-HTTP connection, with the key `secret`.
    fn scim(&self, secret: &str, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let auth = format!("Bearer {secret}");
        let body = body.map(Value::to_string);
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/scim+json"));
        }
        http::send(
            self.settings.listen,
            method,
            &format!("/scim/v2{path}"),
            &headers,
            body.as_deref().map(str::as_bytes),
        )
    }

    fn admin(&self, path: &str) -> Reply {
        http::send(self.settings.admin, "GET", path, &[], None)
    }

    fn metrics(&self) -> Metrics {
        let r = self.admin("/metrics");
        assert_eq!(r.status, 200, "{}", r.text());
        Metrics::parse(&r.text())
    }
}

impl Drop for Ops {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
    }
}

/// Entra's Test Connection: a lookup of a random GUID.
fn test_connection_path() -> String {
    let guid = format!("{:032x}", rand_u128());
    format!("/Users?filter={}", enc(&format!("userName eq \"{guid}\"")))
}

fn rand_u128() -> u128 {
    let key = scimgate::auth::generate_key();
    let hash = scimgate::auth::hash_key(key.as_bytes());
    u128::from_le_bytes(hash[..16].try_into().expect("16 bytes"))
}

fn assert_empty_list(r: &Reply) {
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["totalResults"], 0, "{body}");
    assert_eq!(
        body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:ListResponse",
        "{body}"
    );
}

/// Polls `check` until it passes (metrics of a request are recorded just after its response).
fn eventually(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

// ---- HTTP/1.1 over any stream (plain or TLS), keeping the connection open ----------------------

/// One client connection that stays open across requests.
pub(super) struct Conn<S: Read + Write> {
    pub(super) stream: S,
    host: String,
}

impl<S: Read + Write> Conn<S> {
    pub(super) fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> io::Result<Reply> {
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            req.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body.unwrap_or_default());
        self.stream.write_all(&bytes)?;
        self.stream.flush()?;
        http::try_read_reply(&mut self.stream)
    }

    fn scim(&mut self, secret: &str, method: &str, path: &str) -> Reply {
        let auth = format!("Bearer {secret}");
        self.send(
            method,
            &format!("/scim/v2{path}"),
            &[("Authorization", &auth)],
            None,
        )
        .unwrap_or_else(|e| panic!("{method} {path} on the open connection: {e}"))
    }
}

fn plain_conn(addr: SocketAddr) -> Conn<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    Conn {
        stream,
        host: addr.to_string(),
    }
}

// ---- TLS -----------------------------------------------------------------------------------

/// A self-signed certificate for `localhost` and 127.0.0.1.
pub(super) struct TestCert {
    der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl TestCert {
    pub(super) fn new() -> TestCert {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("self-signed certificate");
        TestCert {
            der: c.cert.der().clone(),
            cert_pem: c.cert.pem(),
            key_pem: c.signing_key.serialize_pem(),
        }
    }

    /// Writes `cert.pem` and `key.pem` into `dir` (where the config file points).
    pub(super) fn install(&self, dir: &Path) {
        std::fs::write(dir.join("cert.pem"), &self.cert_pem).expect("cert.pem");
        std::fs::write(dir.join("key.pem"), &self.key_pem).expect("key.pem");
    }
}

pub(super) type TlsConn = Conn<StreamOwned<ClientConnection, TcpStream>>;

/// A finished TLS handshake to `addr` as `localhost`, trusting `roots`, offering `versions` and
/// the ALPN `protocols`; no session resumption, so every connection shows the current cert.
pub(super) fn tls_connect(
    addr: SocketAddr,
    roots: &[&TestCert],
    versions: &[&'static rustls::SupportedProtocolVersion],
    protocols: &[&[u8]],
) -> Result<TlsConn, String> {
    pingora::tls::install_default_crypto_provider();
    let mut store = RootCertStore::empty();
    for c in roots {
        store.add(c.der.clone()).expect("root");
    }
    let mut config = ClientConfig::builder_with_protocol_versions(versions)
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
    config.resumption = rustls::client::Resumption::disabled();
    let name = ServerName::try_from("localhost").expect("name");
    let conn = ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| format!("handshake: {e}"))?;
    }
    Ok(Conn {
        stream: tls,
        host: format!("localhost:{}", addr.port()),
    })
}

fn peer_cert(c: &TlsConn) -> CertificateDer<'static> {
    c.stream.conn.peer_certificates().expect("peer certificate")[0].clone()
}

pub(super) const H1: &[&[u8]] = &[b"http/1.1"];

fn tls_gateway(cert: &TestCert) -> Ops {
    Ops::start(|s, dir| {
        cert.install(dir);
        s.tls = Some(free_port());
    })
}

// ---- 1. HTTPS round trip ------------------------------------------------------------------------

#[test]
fn https_round_trip_over_tls12_and_tls13_with_h2_by_alpn() {
    let cert = TestCert::new();
    let gw = tls_gateway(&cert);
    let tls_addr = gw.settings.tls.expect("tls");
    let secret = gw.secret("entra-1");
    for (version, expected) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let mut c = tls_connect(tls_addr, &[&cert], &[version], H1).expect("handshake");
        assert_eq!(c.stream.conn.protocol_version(), Some(expected));
        assert_eq!(c.stream.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        // Entra's Test Connection, then a create whose meta.location says https://, on one
        // kept-alive connection.
        let r = c.scim(&secret, "GET", &test_connection_path());
        assert_empty_list(&r);
        assert_eq!(r.header("content-type"), Some("application/scim+json"));
        let user = format!("tls-{expected:?}@acme.test").to_lowercase();
        let body = create_body(&user, &format!("ext-{expected:?}")).to_string();
        let auth = format!("Bearer {secret}");
        let r = c
            .send(
                "POST",
                "/scim/v2/Users",
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/scim+json"),
                ],
                Some(body.as_bytes()),
            )
            .expect("create over TLS");
        assert_eq!(r.status, 201, "{}", r.text());
        let created = r.json();
        let id = created["id"].as_str().expect("id");
        let location = created["meta"]["location"].as_str().expect("location");
        assert_eq!(
            location,
            format!("https://localhost:{}/scim/v2/Users/{id}", tls_addr.port()),
            "{created}"
        );
        assert_eq!(r.header("location"), Some(location));
        let r = c.scim(&secret, "GET", &format!("/Users/{id}"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["userName"], user);
    }
    // HTTP/2 is offered by ALPN: a client offering h2 gets h2.
    let c = tls_connect(
        tls_addr,
        &[&cert],
        &[&rustls::version::TLS13],
        &[b"h2", b"http/1.1"],
    )
    .expect("handshake");
    assert_eq!(c.stream.conn.alpn_protocol(), Some(&b"h2"[..]));
    let c = tls_connect(tls_addr, &[&cert], &[&rustls::version::TLS12], &[b"h2"]).expect("h2");
    assert_eq!(c.stream.conn.alpn_protocol(), Some(&b"h2"[..]));
    // The plain listener still answers plain HTTP, with http:// locations.
    assert_empty_list(&gw.scim(&secret, "GET", &test_connection_path(), None));
}

// ---- 2. TLS 1.1 refused -------------------------------------------------------------------------

/// A TLS 1.1 ClientHello: record and client version 0x0302, no supported_versions extension,
/// TLS 1.0/1.1 cipher suites, SNI localhost.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&rand_u128().to_be_bytes());
    body.extend_from_slice(&rand_u128().to_be_bytes()); // 32 random bytes
    body.push(0); // no session id
    let suites: [u16; 6] = [0xc013, 0xc014, 0xc009, 0xc00a, 0x002f, 0x0035];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    let mut ext = Vec::new();
    // server_name: localhost
    let host = b"localhost";
    let mut sni = Vec::new();
    sni.extend_from_slice(&((host.len() + 3) as u16).to_be_bytes());
    sni.push(0);
    sni.extend_from_slice(&(host.len() as u16).to_be_bytes());
    sni.extend_from_slice(host);
    push_ext(&mut ext, 0x0000, &sni);
    push_ext(&mut ext, 0x000a, &[0, 4, 0x00, 0x1d, 0x00, 0x17]); // groups: x25519, P-256
    push_ext(&mut ext, 0x000b, &[1, 0]); // ec_point_formats: uncompressed
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut handshake = vec![0x01]; // ClientHello
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x02]; // handshake record, TLS 1.1
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

fn push_ext(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

#[test]
fn tls11_client_hello_gets_an_alert_never_a_server_hello() {
    let cert = TestCert::new();
    let gw = tls_gateway(&cert);
    let tls_addr = gw.settings.tls.expect("tls");
    let mut s = TcpStream::connect(tls_addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(&tls11_client_hello()).expect("write");
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&chunk[..n]);
                if answer.len() >= 7 {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server neither answered nor closed: {e}"),
        }
    }
    if let Some(&kind) = answer.first() {
        assert_ne!(
            kind, 22,
            "the server answered a handshake record: {answer:02x?}"
        );
        assert_eq!(kind, 21, "expected an alert record: {answer:02x?}");
        assert!(answer.len() >= 7, "truncated alert: {answer:02x?}");
        assert_eq!(answer[5], 2, "the alert is fatal: {answer:02x?}");
        // protocol_version (70), or handshake_failure (40) from stacks that answer so.
        assert!([70, 40].contains(&answer[6]), "alert {answer:02x?}");
    }
    // Modern clients are still served on the same listener.
    let secret = gw.secret("entra-1");
    let mut c = tls_connect(tls_addr, &[&cert], &[&rustls::version::TLS12], H1).expect("tls");
    assert_empty_list(&c.scim(&secret, "GET", &test_connection_path()));
}

// ---- 3. certificate swap by reload --------------------------------------------------------------

#[test]
fn certificate_swap_by_reload_keeps_open_connections_and_serves_the_new_cert() {
    let (a, b) = (TestCert::new(), TestCert::new());
    let gw = tls_gateway(&a);
    let tls_addr = gw.settings.tls.expect("tls");
    let secret = gw.secret("entra-1");
    let roots = [&a, &b];
    let mut open =
        tls_connect(tls_addr, &roots, &[&rustls::version::TLS13], H1).expect("handshake");
    assert_eq!(peer_cert(&open), a.der);
    assert_empty_list(&open.scim(&secret, "GET", &test_connection_path()));

    b.install(gw.dir.path());
    gw.reload().expect("reload with cert B");

    // The open connection keeps its session (cert A) and keeps working.
    assert_empty_list(&open.scim(&secret, "GET", &test_connection_path()));
    assert_eq!(peer_cert(&open), a.der);
    // New connections, on either version, get cert B.
    for v in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let mut fresh = tls_connect(tls_addr, &roots, &[v], H1).expect("handshake");
        assert_eq!(peer_cert(&fresh), b.der, "{v:?}");
        assert_empty_list(&fresh.scim(&secret, "GET", &test_connection_path()));
    }
    // A client that trusts only A no longer gets through; one trusting only B does.
    assert!(tls_connect(tls_addr, &[&a], &[&rustls::version::TLS13], H1).is_err());
    assert!(tls_connect(tls_addr, &[&b], &[&rustls::version::TLS13], H1).is_ok());

    // A broken key file is rejected and cert B keeps serving.
    std::fs::write(gw.dir.path().join("key.pem"), "not a key\n").expect("write");
    let err = gw.reload().expect_err("a broken key must be rejected");
    assert!(err.contains("key.pem"), "{err}");
    let mut fresh = tls_connect(tls_addr, &roots, &[&rustls::version::TLS13], H1).expect("tls");
    assert_eq!(peer_cert(&fresh), b.der);
    assert_empty_list(&fresh.scim(&secret, "GET", &test_connection_path()));
    assert_empty_list(&open.scim(&secret, "GET", &test_connection_path()));
}

// ---- 4. a key added by reload -------------------------------------------------------------------

#[test]
fn key_added_and_removed_by_reload_while_a_connection_stays_open() {
    let mut gw = Ops::start(|_, _| {});
    let old = gw.secret("entra-1");
    let new = key("entra-2");
    let mut open = plain_conn(gw.settings.listen);
    assert_empty_list(&open.scim(&old, "GET", &test_connection_path()));
    assert_scim_error(
        &open.scim(&new.1, "GET", &test_connection_path()),
        401,
        None,
    );

    gw.rewrite(|s| s.keys.push(new.clone()));
    gw.reload().expect("reload with a second key");
    // Both keys work, on the open connection and on new ones.
    assert_empty_list(&open.scim(&new.1, "GET", &test_connection_path()));
    assert_empty_list(&open.scim(&old, "GET", &test_connection_path()));
    assert_empty_list(&gw.scim(&new.1, "GET", &test_connection_path(), None));
    assert_empty_list(&gw.scim(&old, "GET", &test_connection_path(), None));

    gw.rewrite(|s| s.keys.retain(|(id, _)| id != "entra-1"));
    gw.reload().expect("reload without the old key");
    assert_scim_error(
        &gw.scim(&old, "GET", &test_connection_path(), None),
        401,
        None,
    );
    assert_scim_error(&open.scim(&old, "GET", &test_connection_path()), 401, None);
    assert_empty_list(&open.scim(&new.1, "GET", &test_connection_path()));
    assert_empty_list(&gw.scim(&new.1, "GET", &test_connection_path(), None));
}

// ---- 5. a broken config on reload ---------------------------------------------------------------

#[test]
fn broken_config_on_reload_is_rejected_and_the_old_one_keeps_serving() {
    let mut gw = Ops::start(|_, _| {});
    let secret = gw.secret("entra-1");
    let rejected = |gw: &Ops| {
        gw.metrics()
            .get("scimgate_config_reloads_total", &[("result", "rejected")])
    };
    let ok = |gw: &Ops| {
        gw.metrics()
            .get("scimgate_config_reloads_total", &[("result", "ok")])
    };
    assert_eq!(rejected(&gw), 0.0);
    let path = gw.path.display().to_string();

    // Not TOML at all.
    std::fs::write(&gw.path, "[server\nlisten = oops\n").expect("write");
    let err = gw.reload().expect_err("garbage must be rejected");
    assert!(err.starts_with(&format!("{path}:1:")), "{err}");
    assert_empty_list(&gw.scim(&secret, "GET", &test_connection_path(), None));
    assert_eq!(rejected(&gw), 1.0);

    // Valid TOML, invalid mapping: the error names the line of the bad attribute.
    let good = gw.settings.render();
    let bad = good.replacen("scim = \"title\"", "scim = \"titel\"", 1);
    assert_ne!(good, bad);
    let line = bad
        .lines()
        .position(|l| l.contains("\"titel\""))
        .expect("line")
        + 1;
    std::fs::write(&gw.path, &bad).expect("write");
    let err = gw.reload().expect_err("a bad mapping must be rejected");
    assert!(err.contains(&format!("{path}:{line}:")), "{err}");
    assert!(err.contains("titel"), "{err}");
    assert_empty_list(&gw.scim(&secret, "GET", &test_connection_path(), None));
    assert_eq!(rejected(&gw), 2.0);

    // A valid file that cannot be built (the backend credential variable is missing).
    let unbuildable = good.replacen(
        "token_env = \"SCIMGATE_DEMO_SERVICE_TOKEN\"",
        "token_env = \"SCIMGATE_OPS_TEST_UNSET_VARIABLE\"",
        1,
    );
    std::fs::write(&gw.path, unbuildable).expect("write");
    let err = gw
        .reload()
        .expect_err("an unbuildable config must be rejected");
    assert!(err.contains("SCIMGATE_OPS_TEST_UNSET_VARIABLE"), "{err}");
    assert_empty_list(&gw.scim(&secret, "GET", &test_connection_path(), None));
    assert_eq!(rejected(&gw), 3.0);

    // A missing file.
    std::fs::remove_file(&gw.path).expect("remove");
    let err = gw.reload().expect_err("a missing file must be rejected");
    assert!(err.contains("cannot read"), "{err}");
    assert_eq!(rejected(&gw), 4.0);

    // Fixed: the next reload is taken.
    assert_eq!(ok(&gw), 0.0);
    gw.rewrite(|_| {});
    gw.reload().expect("valid again");
    assert_eq!(ok(&gw), 1.0);
    assert_eq!(rejected(&gw), 4.0);
    assert_empty_list(&gw.scim(&secret, "GET", &test_connection_path(), None));
}

// ---- 6. metrics and health ----------------------------------------------------------------------

/// A metric series (name and labels) and how much it should move.
type Delta<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// A parsed Prometheus text exposition: `name{labels}` → value.
pub(super) struct Metrics(BTreeMap<String, f64>);

impl Metrics {
    pub(super) fn parse(text: &str) -> Metrics {
        let mut all = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            if let Some((series, value)) = line.rsplit_once(' ') {
                all.insert(series.to_string(), value.parse().unwrap_or(f64::NAN));
            }
        }
        Metrics(all)
    }

    /// The value of `name` with exactly `labels` (0 when absent).
    pub(super) fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut labels = labels.to_vec();
        labels.sort();
        let series = if labels.is_empty() {
            name.to_string()
        } else {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            format!("{name}{{{}}}", l.join(","))
        };
        self.0.get(&series).copied().unwrap_or(0.0)
    }

    /// The sum of every series of `name`.
    pub(super) fn sum(&self, name: &str) -> f64 {
        self.0
            .iter()
            .filter(|(k, _)| *k == name || k.starts_with(&format!("{name}{{")))
            .map(|(_, v)| v)
            .sum()
    }
}

fn json_request(addr: SocketAddr, method: &str, path: &str, auth: &str, body: &Value) -> Reply {
    let auth = format!("Bearer {auth}");
    let body = body.to_string();
    http::send(
        addr,
        method,
        path,
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
    )
}

#[test]
fn metrics_move_exactly_with_a_scripted_sequence_and_health_follows_the_backend() {
    let mut gw = Ops::start(|_, _| {});
    let secret = gw.secret("entra-1");
    let key_id = "entra-1";
    let addr = gw.settings.listen;

    let r = gw.admin("/healthz");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    let r = gw.admin("/readyz");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"backend": "ok", "store": "ok"}));
    assert_eq!(gw.admin("/nope").status, 404);

    let before = gw.metrics();
    let started = time::OffsetDateTime::now_utc().unix_timestamp();
    // 3 SCIM GETs.
    for _ in 0..3 {
        assert_empty_list(&gw.scim(&secret, "GET", &test_connection_path(), None));
    }
    // 1 bad key.
    let wrong = scimgate::auth::generate_key();
    assert_scim_error(
        &gw.scim(&wrong, "GET", &test_connection_path(), None),
        401,
        None,
    );
    // 1 guard block: bob linked by SCIM (a lookup and a PATCH), logs in, changes his password.
    let lookup = gw.scim(
        &secret,
        "GET",
        &format!("/Users?filter={}", enc("userName eq \"bob@acme.test\"")),
        None,
    );
    assert_eq!(lookup.status, 200, "{}", lookup.text());
    let bob = lookup.json()["Resources"][0]["id"]
        .as_str()
        .expect("bob")
        .to_string();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "externalId", "value": "aad-bob"}]});
    let r = gw.scim(&secret, "PATCH", &format!("/Users/{bob}"), Some(&patch));
    assert_eq!(r.status, 200, "{}", r.text());
    let login = http::send(
        addr,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        Some(
            json!({"email": "bob@acme.test", "password": PASSWORD})
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(login.status, 200, "{}", login.text());
    let session = login.json()["session"]
        .as_str()
        .expect("session")
        .to_string();
    let r = json_request(
        addr,
        "PUT",
        "/api/me/password",
        &session,
        &json!({"current_password": PASSWORD, "new_password": "n3w-Passw0rd!"}),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["rule"], "change-password");
    // 1 proxied request.
    let auth = format!("Bearer {session}");
    let r = http::send(addr, "GET", "/api/me", &[("Authorization", &auth)], None);
    assert_eq!(r.status, 200, "{}", r.text());
    let finished = time::OffsetDateTime::now_utc().unix_timestamp();

    const REQUESTS: &str = "scimgate_requests_total";
    const OPERATIONS: &str = "scimgate_scim_operations_total";
    let expected: [Delta; 12] = [
        (
            REQUESTS,
            &[("route", "scim"), ("method", "GET"), ("status", "200")],
            4.0,
        ),
        (
            REQUESTS,
            &[("route", "scim"), ("method", "GET"), ("status", "401")],
            1.0,
        ),
        (
            REQUESTS,
            &[("route", "scim"), ("method", "PATCH"), ("status", "200")],
            1.0,
        ),
        (
            REQUESTS,
            &[("route", "proxied"), ("method", "POST"), ("status", "200")],
            1.0,
        ),
        (
            REQUESTS,
            &[("route", "guarded"), ("method", "PUT"), ("status", "403")],
            1.0,
        ),
        (
            REQUESTS,
            &[("route", "proxied"), ("method", "GET"), ("status", "200")],
            1.0,
        ),
        (
            OPERATIONS,
            &[
                ("tenant", "acme"),
                ("operation", "list"),
                ("result", "success"),
            ],
            4.0,
        ),
        (
            OPERATIONS,
            &[
                ("tenant", "acme"),
                ("operation", "patch"),
                ("result", "success"),
            ],
            1.0,
        ),
        (
            OPERATIONS,
            &[
                ("tenant", "-"),
                ("operation", "list"),
                ("result", "unauthorized"),
            ],
            1.0,
        ),
        (
            "scimgate_auth_failures_total",
            &[("reason", "unknown_key")],
            1.0,
        ),
        (
            "scimgate_guard_blocks_total",
            &[("rule", "change-password")],
            1.0,
        ),
        (
            "scimgate_api_key_uses_total",
            &[("tenant", "acme"), ("key", key_id)],
            5.0,
        ),
    ];
    let totals = [
        ("scimgate_requests_total", 9.0),
        ("scimgate_scim_operations_total", 6.0),
        ("scimgate_auth_failures_total", 1.0),
        ("scimgate_guard_blocks_total", 1.0),
        ("scimgate_api_key_uses_total", 5.0),
    ];
    eventually("metric deltas", || {
        let after = gw.metrics();
        for (name, labels, delta) in &expected {
            let d = after.get(name, labels) - before.get(name, labels);
            if d != *delta {
                return Err(format!("{name}{labels:?}: delta {d}, expected {delta}"));
            }
        }
        for (name, delta) in totals {
            let d = after.sum(name) - before.sum(name);
            if d != delta {
                return Err(format!("{name} (all series): delta {d}, expected {delta}"));
            }
        }
        Ok(())
    });
    let after = gw.metrics();
    let last_used = after.get(
        "scimgate_api_key_last_used_timestamp_seconds",
        &[("tenant", "acme"), ("key", key_id)],
    );
    assert!(
        (started as f64..=finished as f64).contains(&last_used),
        "last used {last_used} not within [{started}, {finished}]"
    );
    let calls = |m: &Metrics| m.sum("scimgate_backend_call_seconds_count");
    assert!(
        calls(&after) >= calls(&before) + 6.0,
        "backend calls: {} then {}",
        calls(&before),
        calls(&after)
    );
    assert_eq!(
        after.sum("scimgate_backend_errors_total"),
        before.sum("scimgate_backend_errors_total")
    );
    // The PATCH held the user (reading its record under the hold) and wrote its record, the
    // guard read the managed flag: each timed.
    for op in ["serialise_user_and_get", "put", "is_managed"] {
        let n = |m: &Metrics| m.get("scimgate_store_call_seconds_count", &[("operation", op)]);
        assert!(
            n(&after) > n(&before),
            "store {op}: {} then {}",
            n(&before),
            n(&after)
        );
    }
    assert_eq!(after.sum("scimgate_store_errors_total"), 0.0);

    // Readiness follows the current config's backend: pointed at a closed port, 503.
    gw.rewrite(|s| s.backend = free_port());
    gw.reload().expect("reload");
    let r = gw.admin("/readyz");
    assert_eq!(r.status, 503, "{}", r.text());
    let body = r.json();
    assert!(
        body["backend"]
            .as_str()
            .is_some_and(|b| b.starts_with("cannot connect")),
        "{body}"
    );
    assert_eq!(body["store"], "ok");
    assert_eq!(gw.admin("/healthz").status, 200, "alive, though not ready");
    // A SCIM request now fails with a SCIM 502, counted as a backend error.
    let r = gw.scim(&secret, "GET", &test_connection_path(), None);
    assert_scim_error(&r, 502, None);
    eventually("backend error counted", || {
        let m = gw.metrics();
        (m.sum("scimgate_backend_errors_total") > before.sum("scimgate_backend_errors_total"))
            .then_some(())
            .ok_or_else(|| "no backend error counted".to_string())
    });
}

// ---- 7. limits ------------------------------------------------------------------------------

#[test]
fn oversized_scim_bodies_get_a_scim_413() {
    let gw = Ops::start(|s, _| s.server.push("max_body_bytes = 2048".into()));
    let secret = gw.secret("entra-1");
    let mut big = create_body("big@acme.test", "ext-big");
    big["displayName"] = json!("x".repeat(4096));
    let r = gw.scim(&secret, "POST", "/Users", Some(&big));
    assert_scim_error(&r, 413, None);
    // Chunked, with no declared length: cut off while reading.
    let body = big.to_string();
    let mut raw = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {secret}\r\nContent-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for part in body.as_bytes().chunks(1000) {
        raw.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        raw.extend_from_slice(part);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    assert_scim_error(&http::raw(gw.settings.listen, &raw), 413, None);
    // Nothing was created; a body under the cap is fine.
    let list = gw.scim(
        &secret,
        "GET",
        &format!("/Users?filter={}", enc("userName eq \"big@acme.test\"")),
        None,
    );
    assert_eq!(list.json()["totalResults"], 0, "{}", list.text());
    let r = gw.scim(
        &secret,
        "POST",
        "/Users",
        Some(&create_body("small@acme.test", "ext-small")),
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

#[test]
fn repeated_bad_keys_get_429_with_retry_after_while_a_valid_key_still_works() {
    let gw = Ops::start(|s, _| s.auth_failures = Some((3, 60)));
    let secret = gw.secret("entra-1");
    let wrong = scimgate::auth::generate_key();
    for _ in 0..3 {
        assert_scim_error(
            &gw.scim(&wrong, "GET", &test_connection_path(), None),
            401,
            None,
        );
    }
    let r = gw.scim(&wrong, "GET", &test_connection_path(), None);
    assert_scim_error(&r, 429, None);
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After: {:?}", r.headers));
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // No key at all counts as a failure too, and is throttled the same way.
    let r = http::send(gw.settings.listen, "GET", "/scim/v2/Users", &[], None);
    assert_scim_error(&r, 429, None);
    // A valid key from the same address is never refused.
    for _ in 0..3 {
        assert_empty_list(&gw.scim(&secret, "GET", &test_connection_path(), None));
    }
    assert_scim_error(
        &gw.scim(&wrong, "GET", &test_connection_path(), None),
        429,
        None,
    );
    let m = gw.metrics();
    assert_eq!(m.sum("scimgate_auth_failures_total"), 6.0);
    assert_eq!(
        m.get(
            "scimgate_scim_operations_total",
            &[
                ("tenant", "-"),
                ("operation", "list"),
                ("result", "unauthorized")
            ]
        ),
        6.0
    );
}

#[test]
fn a_client_dribbling_its_body_is_cut_off_after_body_timeout() {
    let gw = Ops::start(|s, _| s.server.push("body_timeout_ms = 500".into()));
    let secret = gw.secret("entra-1");
    let mut s = TcpStream::connect(gw.settings.listen).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\nContent-Type: application/scim+json\r\nContent-Length: 400\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("head");
    let started = Instant::now();
    let mut writer = s.try_clone().expect("clone");
    let dribbler = std::thread::spawn(move || {
        for _ in 0..60 {
            if writer.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let outcome = http::try_read_reply(&mut s);
    let took = started.elapsed();
    match outcome {
        Ok(r) => {
            assert_scim_error(&r, 408, None);
        }
        Err(e) => assert!(
            matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ),
            "neither 408 nor closed: {e}"
        ),
    }
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "cut off after {took:?}"
    );
    let _ = s.shutdown(std::net::Shutdown::Both);
    dribbler.join().expect("dribbler");
    // The gateway is fine afterwards.
    assert_empty_list(&gw.scim(&secret, "GET", &test_connection_path(), None));
}

#[test]
fn a_client_sending_a_partial_head_is_cut_off_after_header_timeout() {
    let gw = Ops::start(|s, _| s.server.push("header_timeout_ms = 500".into()));
    let mut s = TcpStream::connect(gw.settings.listen).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n")
        .expect("partial head");
    let started = Instant::now();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    let closed = loop {
        match s.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    let took = started.elapsed();
    assert!(
        closed,
        "still open {took:?} after a partial head with header_timeout_ms = 500"
    );
    assert!(took < Duration::from_secs(3), "cut off only after {took:?}");
    if !got.is_empty() {
        assert!(
            got.starts_with(b"HTTP/1.1 408"),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
    }
}

// ---- 8. the provisioning log --------------------------------------------------------------------

#[test]
fn provisioning_log_has_one_json_line_per_write_and_scimgate_log_reads_the_tail() {
    let gw = Ops::start(|s, _| {
        s.server
            .push("provisioning_log = \"logs/provisioning.jsonl\"".into())
    });
    let secret = gw.secret("entra-1");
    // Reads are not logged.
    assert_empty_list(&gw.scim(&secret, "GET", &test_connection_path(), None));
    let r = gw.scim(
        &secret,
        "POST",
        "/Users",
        Some(&create_body("prov@acme.test", "ext-prov")),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Prov"}]});
    let r = gw.scim(&secret, "PATCH", &format!("/Users/{id}"), Some(&patch));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = gw.scim(&secret, "DELETE", &format!("/Users/{id}"), None);
    assert_eq!(r.status, 204, "{}", r.text());
    // A failed write is logged as a failure.
    let r = gw.scim(&secret, "DELETE", &format!("/Users/{id}"), None);
    assert_eq!(r.status, 404, "{}", r.text());

    let file = gw.dir.path().join("logs/provisioning.jsonl");
    let text = std::fs::read_to_string(&file).expect("provisioning log");
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(events.len(), 4, "{text}");
    let expected = [
        ("create", 201, "success"),
        ("patch", 200, "success"),
        ("delete", 204, "success"),
        ("delete", 404, "failure"),
    ];
    let mut request_ids = std::collections::HashSet::new();
    for (e, (operation, status, result)) in events.iter().zip(expected) {
        assert_eq!(e["tenant"], "acme", "{e}");
        assert_eq!(e["key_id"], "entra-1", "{e}");
        assert_eq!(e["operation"], operation, "{e}");
        assert_eq!(e["scim_id"], id.as_str(), "{e}");
        assert_eq!(e["status"], status, "{e}");
        assert_eq!(e["result"], result, "{e}");
        assert!(e["latency_ms"].as_f64().is_some_and(|l| l >= 0.0), "{e}");
        let rid = e["request_id"].as_str().expect("request_id");
        assert!(
            !rid.is_empty() && request_ids.insert(rid.to_string()),
            "{e}"
        );
        assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
        assert!(!text.contains(&secret), "the log never holds the key");
    }
    assert!(events[3]["detail"].as_str().is_some_and(|d| !d.is_empty()));

    let tail = scimgate::commands::log(&gw.path, 2).expect("scimgate log");
    let tail: Vec<Value> = tail
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(tail, events[2..].to_vec());
    let all = scimgate::commands::log(&gw.path, 50).expect("scimgate log");
    assert_eq!(all.lines().count(), 4);
}

// ---- 9 and 10. the `scimgate run` process --------------------------------------------------------

/// A config file for a `scimgate run` child process, in `dir`; the backend is a closed port.
fn child_config(dir: &Path, setup: impl FnOnce(&mut Settings)) -> (PathBuf, Settings) {
    let mut settings = Settings::new(free_port());
    setup(&mut settings);
    let path = dir.join("scimgate.toml");
    std::fs::write(&path, settings.render()).expect("write config");
    (path, settings)
}

/// `scimgate <args>`, stderr to `dir/stderr.log`.
fn spawn_scimgate(dir: &Path, args: &[&str]) -> Child {
    let stderr = std::fs::File::create(dir.join("stderr.log")).expect("stderr file");
    Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .args(args)
        .env("SCIMGATE_DEMO_SERVICE_TOKEN", DEMO_SERVICE_TOKEN)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn scimgate")
}

fn run_child(dir: &Path, config: &Path) -> Child {
    let config = config.display().to_string();
    spawn_scimgate(dir, &["run", "--config", &config])
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{name}");
}

fn stderr_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
}

/// Kills the child if a test fails before it exits.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `scimgate run` and waits until it answers on every listener.
fn start_child(dir: &Path, config: &Path, settings: &Settings) -> Reap {
    let child = Reap(run_child(dir, config));
    for a in [settings.listen, settings.admin] {
        assert!(
            super::harness::wait_listening(a, Duration::from_secs(15)),
            "scimgate run is not listening on {a}: {}",
            stderr_of(dir)
        );
    }
    // Let pingora reach its signal loop before the test signals it.
    std::thread::sleep(Duration::from_millis(500));
    child
}

#[test]
fn run_exits_non_zero_naming_the_address_when_a_listener_is_taken() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    for which in ["listen", "admin_listen"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (config, _) = child_config(dir.path(), |s| match which {
            "listen" => s.listen = addr,
            _ => s.admin = addr,
        });
        let mut child = run_child(dir.path(), &config);
        let status = wait_exit(&mut child, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{which} taken: scimgate run kept running"));
        let stderr = stderr_of(dir.path());
        assert!(!status.success(), "{which} taken: {status}; {stderr}");
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("cannot listen on {addr}")),
            "{which}: {stderr}"
        );
    }
    drop(taken);
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_zero_within_the_grace_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, settings) = child_config(dir.path(), |s| s.grace_seconds = 1);
    let secret = settings.keys[0].1.clone();
    let mut child = start_child(dir.path(), &config, &settings);
    // A request in flight: the head is sent, the body is not (a GET with a body; the SCIM route
    // reads it before answering and needs no backend for ServiceProviderConfig).
    let mut s = TcpStream::connect(settings.listen).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "GET /scim/v2/ServiceProviderConfig HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\nContent-Length: 2\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("head");
    std::thread::sleep(Duration::from_millis(100));
    let signalled = Instant::now();
    signal(&child.0, "TERM");
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(b"{}").expect("body");
    let r = http::try_read_reply(&mut s).expect("the request in flight is answered");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["patch"]["supported"], true);
    let status = wait_exit(&mut child.0, Duration::from_secs(1 + 5))
        .unwrap_or_else(|| panic!("still running after SIGTERM: {}", stderr_of(dir.path())));
    let took = signalled.elapsed();
    assert!(status.success(), "{status}: {}", stderr_of(dir.path()));
    assert!(took >= Duration::from_millis(900), "exited after {took:?}");
    assert!(
        !dir.path().join("scimgate.pid").exists(),
        "the pid file is removed"
    );
}

#[test]
fn sigint_stops_at_once_without_waiting_for_the_grace_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, settings) = child_config(dir.path(), |s| s.grace_seconds = 30);
    let mut child = start_child(dir.path(), &config, &settings);
    let signalled = Instant::now();
    signal(&child.0, "INT");
    let status = wait_exit(&mut child.0, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running after SIGINT: {}", stderr_of(dir.path())));
    assert!(status.success(), "{status}: {}", stderr_of(dir.path()));
    assert!(signalled.elapsed() < Duration::from_secs(5));
}

#[test]
fn scimgate_reload_command_swaps_keys_in_the_running_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, mut settings) = child_config(dir.path(), |s| s.grace_seconds = 0);
    let old = settings.keys[0].1.clone();
    let _child = start_child(dir.path(), &config, &settings);
    let spc = |secret: &str| {
        let auth = format!("Bearer {secret}");
        http::send(
            settings.listen,
            "GET",
            "/scim/v2/ServiceProviderConfig",
            &[("Authorization", &auth)],
            None,
        )
        .status
    };
    assert_eq!(spc(&old), 200);
    let new = key("entra-2");
    settings.keys = vec![new.clone()];
    std::fs::write(&config, settings.render()).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .args(["reload", "--config", &config.display().to_string()])
        .env("SCIMGATE_DEMO_SERVICE_TOKEN", DEMO_SERVICE_TOKEN)
        .output()
        .expect("scimgate reload");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("the new key works after scimgate reload", || {
        match (spc(&new.1), spc(&old)) {
            (200, 401) => Ok(()),
            other => Err(format!("new/old key: {other:?}")),
        }
    });
    // The reload is counted just after the new config is swapped in: wait for the count too.
    eventually("the reload is counted", || {
        let m = Metrics::parse(&http::send(settings.admin, "GET", "/metrics", &[], None).text());
        let n = m.get("scimgate_config_reloads_total", &[("result", "ok")]);
        if n == 1.0 {
            Ok(())
        } else {
            Err(format!("reloads counted: {n}"))
        }
    });
}

/// A graceful binary upgrade: `scimgate run` (old), then `scimgate run --upgrade` (new), then
/// SIGQUIT to the old one. Checks that every request is answered throughout and that the old
/// process exits 0 while the new one keeps serving; answers the new process and its settings.
fn upgrade(dir: &Path) -> (Reap, Settings, String) {
    let (config, settings) = child_config(dir, |s| s.grace_seconds = 1);
    let secret = settings.keys[0].1.clone();
    let spc = |addr: SocketAddr| {
        let auth = format!("Bearer {secret}");
        let r = http::send(
            addr,
            "GET",
            "/scim/v2/ServiceProviderConfig",
            &[("Authorization", &auth)],
            None,
        );
        assert_eq!(r.status, 200, "{}", r.text());
    };
    let mut old = start_child(dir, &config, &settings);
    spc(settings.listen);
    let mut open = plain_conn(settings.listen);
    assert_eq!(
        open.scim(&secret, "GET", "/ServiceProviderConfig").status,
        200
    );

    let stderr = std::fs::File::create(dir.join("stderr-new.log")).expect("stderr file");
    let new = Reap(
        Command::new(env!("CARGO_BIN_EXE_scimgate"))
            .args([
                "run",
                "--config",
                &config.display().to_string(),
                "--upgrade",
            ])
            .env("SCIMGATE_DEMO_SERVICE_TOKEN", DEMO_SERVICE_TOKEN)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn scimgate --upgrade"),
    );
    let sock = dir.join("scimgate-upgrade.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "the new process does not wait on {}: {}",
            sock.display(),
            std::fs::read_to_string(dir.join("stderr-new.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&old.0, "QUIT");
    // The open connection and new connections are served throughout the handover.
    assert_eq!(
        open.scim(&secret, "GET", "/ServiceProviderConfig").status,
        200
    );
    let handover = Instant::now();
    let mut served = 0;
    let old_status = loop {
        spc(settings.listen);
        let health = http::send(settings.admin, "GET", "/healthz", &[], None);
        assert_eq!(health.status, 200, "admin listener during the handover");
        served += 1;
        if let Some(status) = old.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            handover.elapsed() < Duration::from_secs(20),
            "the old process is still running: {}",
            stderr_of(dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(old_status.success(), "{old_status}: {}", stderr_of(dir));
    assert!(served > 10, "only {served} requests during the handover");
    for _ in 0..5 {
        spc(settings.listen);
    }
    let mut new = new;
    assert!(
        new.0.try_wait().expect("wait").is_none(),
        "the new process stopped: {}",
        std::fs::read_to_string(dir.join("stderr-new.log")).unwrap_or_default()
    );
    (new, settings, config.display().to_string())
}

#[test]
fn graceful_upgrade_hands_the_listeners_to_the_new_process_without_refusing_a_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (new, settings, _) = upgrade(dir.path());
    let r = http::send(settings.admin, "GET", "/healthz", &[], None);
    assert_eq!(r.status, 200, "the admin listener moved too");
    drop(new);
}

#[test]
fn after_an_upgrade_the_pid_file_names_the_new_process_and_reload_reaches_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (new, _settings, config) = upgrade(dir.path());
    let pid = std::fs::read_to_string(dir.path().join("scimgate.pid")).unwrap_or_default();
    assert_eq!(pid.trim(), new.0.id().to_string(), "scimgate.pid");
    let out = Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .args(["reload", "--config", &config])
        .env("SCIMGATE_DEMO_SERVICE_TOKEN", DEMO_SERVICE_TOKEN)
        .output()
        .expect("scimgate reload");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
