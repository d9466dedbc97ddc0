//! HTTPS to the backend: the alt backend behind a TLS listener with certificates from a test CA.
//! SCIM calls and proxied traffic go through TLS; a certificate from another CA or for another
//! name is refused with a 502 (a SCIM error on SCIM routes), quickly; a backend that requires
//! a client certificate gets the configured one; a reload re-reads the CA bundle.

use super::alt_backend::AltBackend;
use super::alt_upstream::{alt_toml, parse, start, TenantSpec};
use super::crash::GatewayProcess;
use super::harness::{assert_scim_error, Gateway};
use super::pki::{Ca, Leaf};
use super::scenarios::create_body;
use scimgate::gateway::server::{self, Running};
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

const API_KEY: &str = "alt-e2e-api-key";
const ORG: &str = "globex-org";

/// How the gateway is told to reach the TLS backend.
struct GatewayTls<'a> {
    ca: &'a Path,
    server_name: Option<&'a str>,
    client: Option<&'a Leaf>,
}

/// A TLS alt backend serving `leaf` (requiring client certificates of `clients_of`, if given)
/// and a gateway reaching it as `https://localhost:PORT` configured by `tls`.
fn tls_gateway(leaf: &Leaf, clients_of: Option<&Ca>, tls: GatewayTls<'_>) -> (Gateway, AltBackend) {
    std::env::set_var("SCIMGATE_ALT_API_KEY", API_KEY);
    let dir = tempfile::tempdir().expect("tempdir");
    let backend_addr = server::free_port().expect("port");
    let listen = server::free_port().expect("port");
    let mut tls_table = format!(
        "[backend.tls]\nca_file = {:?}\n",
        tls.ca.display().to_string()
    );
    if let Some(name) = tls.server_name {
        tls_table.push_str(&format!("server_name = {name:?}\n"));
    }
    if let Some(c) = tls.client {
        tls_table.push_str(&format!(
            "client_cert = {:?}\nclient_key = {:?}\n",
            c.cert_file.display().to_string(),
            c.key_file.display().to_string()
        ));
    }
    let backend_toml = format!(
        "[backend]\naddress = \"https://localhost:{}\"\nhost = \"alt.local\"\n\
         connect_timeout_ms = 2000\nread_timeout_ms = 5000\n\n{tls_table}\n\
         [backend.auth]\nheader = \"X-Api-Key\"\ntoken_env = \"SCIMGATE_ALT_API_KEY\"\n",
        backend_addr.port()
    );
    let (text, keys) = alt_toml(&backend_toml, &globex(), listen, dir.path());
    let config = parse(&text, dir.path());
    assert!(
        config.backend.tls.is_some(),
        "the backend is reached over TLS"
    );
    let backend = AltBackend::new(API_KEY);
    let service = backend.tls_service(
        &backend_addr.to_string(),
        &leaf.cert_file,
        &leaf.key_file,
        clients_of.map(Ca::client_verifier),
    );
    let gw = start(
        config,
        &keys[0].token,
        dir,
        |srv| {
            srv.add_service(service);
        },
        &[backend_addr],
    );
    (gw, backend)
}

/// A proxied (non-SCIM) request to the backend's list route, with the backend's API key.
fn proxied_list(gw: &Gateway) -> super::http::Reply {
    gw.request(
        "GET",
        &format!("/v1/orgs/{ORG}/accounts"),
        &[("X-Api-Key", API_KEY)],
        None,
    )
}

/// SCIM create, read, PATCH and delete, and proxied traffic, all reach the TLS backend; the
/// backend holds what SCIM wrote.
fn scim_and_proxied_round_trip(gw: &Gateway, backend: &AltBackend) {
    let r = gw.scim(
        "POST",
        "/Users",
        Some(&create_body("tls@contoso.com", "tls-1")),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    let held = backend.accounts(ORG);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["login"], "tls@contoso.com");
    let got = gw.scim("GET", &format!("/Users/{id}"), None);
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["userName"], "tls@contoso.com");
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "nickName", "value": "Tessa"}]
    });
    let r = gw.scim("PATCH", &format!("/Users/{id}"), Some(&patch));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(backend.accounts(ORG)[0]["nick"], "Tessa");
    let r = proxied_list(gw);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][0]["id"], id.as_str(), "{}", r.text());
    let r = gw.scim("DELETE", &format!("/Users/{id}"), None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(backend.accounts(ORG).is_empty());
}

#[test]
fn scim_calls_and_proxied_traffic_reach_a_tls_backend() {
    let certs = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("scimgate test CA");
    let ca_file = ca.write(certs.path(), "ca.pem");
    let leaf = ca.server(certs.path(), "backend", &["localhost"]);
    let tls = GatewayTls {
        ca: &ca_file,
        server_name: None,
        client: None,
    };
    let (gw, backend) = tls_gateway(&leaf, None, tls);
    scim_and_proxied_round_trip(&gw, &backend);
    let kinds: Vec<String> = backend.request_log().into_iter().map(|r| r.kind).collect();
    assert!(
        kinds.contains(&"GET /v1/orgs/{org}/accounts".to_string()),
        "the proxied request reached the backend: {kinds:?}"
    );
}

/// The gateway refuses `leaf` (wrong CA or wrong name): 502 on SCIM routes as a SCIM error that
/// says what failed, 502 for proxied traffic, both quickly, and the backend saw no request.
fn assert_refused(gw: &Gateway, backend: &AltBackend, why: &str) {
    let started = Instant::now();
    let r = gw.scim("GET", "/Users?count=1", None);
    assert_scim_error(&r, 502, None);
    let detail = r.json()["detail"].as_str().unwrap_or_default().to_string();
    assert!(detail.contains("TLS handshake"), "{detail}");
    assert!(detail.contains(why), "{why} in {detail}");
    let r = proxied_list(gw);
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused in {:?}",
        started.elapsed()
    );
    assert!(backend.request_log().is_empty(), "no request got through");
}

#[test]
fn a_certificate_from_another_ca_is_refused_with_a_502() {
    let certs = tempfile::tempdir().expect("tempdir");
    let trusted = Ca::new("trusted CA");
    let ca_file = trusted.write(certs.path(), "ca.pem");
    let rogue = Ca::new("rogue CA");
    let leaf = rogue.server(certs.path(), "backend", &["localhost"]);
    let tls = GatewayTls {
        ca: &ca_file,
        server_name: None,
        client: None,
    };
    let (gw, backend) = tls_gateway(&leaf, None, tls);
    assert_refused(&gw, &backend, "UnknownIssuer");
}

#[test]
fn a_certificate_for_another_name_is_refused_unless_server_name_says_that_name() {
    let certs = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("scimgate test CA");
    let ca_file = ca.write(certs.path(), "ca.pem");
    let leaf = ca.server(certs.path(), "backend", &["api.quill.test"]);
    let tls = GatewayTls {
        ca: &ca_file,
        server_name: None,
        client: None,
    };
    let (gw, backend) = tls_gateway(&leaf, None, tls);
    assert_refused(&gw, &backend, "not valid for name");
    drop(gw);

    let certs = tempfile::tempdir().expect("tempdir");
    let ca_file = ca.write(certs.path(), "ca.pem");
    let tls = GatewayTls {
        ca: &ca_file,
        server_name: Some("api.quill.test"),
        client: None,
    };
    let (gw, backend) = tls_gateway(&leaf, None, tls);
    scim_and_proxied_round_trip(&gw, &backend);
}

#[test]
fn mtls_required_by_the_backend_is_satisfied_by_the_configured_client_certificate() {
    let certs = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("scimgate test CA");
    let ca_file = ca.write(certs.path(), "ca.pem");
    let leaf = ca.server(certs.path(), "backend", &["localhost"]);
    let client = ca.client(certs.path(), "gateway-client");
    let tls = GatewayTls {
        ca: &ca_file,
        server_name: None,
        client: Some(&client),
    };
    let (gw, backend) = tls_gateway(&leaf, Some(&ca), tls);
    scim_and_proxied_round_trip(&gw, &backend);
    drop(gw);

    let certs = tempfile::tempdir().expect("tempdir");
    let ca_file = ca.write(certs.path(), "ca.pem");
    let tls = GatewayTls {
        ca: &ca_file,
        server_name: None,
        client: None,
    };
    let (gw, backend) = tls_gateway(&leaf, Some(&ca), tls);
    let r = gw.scim("GET", "/Users?count=1", None);
    assert_scim_error(&r, 502, None);
    assert_eq!(proxied_list(&gw).status, 502);
    assert!(backend.request_log().is_empty());
}

#[test]
fn tls_files_are_checked_when_the_config_is_loaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let missing = dir.path().join("nope.pem");
    let backend = format!(
        "[backend]\naddress = \"https://localhost:1\"\n[backend.tls]\nca_file = {:?}\n",
        missing.display().to_string()
    );
    let (text, _) = alt_toml(&backend, &[], listen, dir.path());
    let err = scimgate::config::from_str(&text, &dir.path().join("s.toml"))
        .expect_err("a missing CA bundle is a config error")
        .to_string();
    assert!(err.contains("nope.pem"), "{err}");
    let plain_with_tls = "[backend]\naddress = \"127.0.0.1:1\"\n[backend.tls]\n";
    let (text, _) = alt_toml(plain_with_tls, &[], listen, dir.path());
    let err = scimgate::config::from_str(&text, &dir.path().join("s.toml"))
        .expect_err("[backend.tls] needs https")
        .to_string();
    assert!(err.contains("https://"), "{err}");
}

#[test]
fn a_reload_rereads_the_ca_bundle() {
    std::env::set_var("SCIMGATE_ALT_API_KEY", API_KEY);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("scimgate test CA");
    let leaf = ca.server(dir.path(), "backend", &["localhost"]);
    Ca::new("outdated CA").write(dir.path(), "ca.pem");
    let backend_addr = server::free_port().expect("port");
    let listen = server::free_port().expect("port");
    let backend_toml = format!(
        "[backend]\naddress = \"https://localhost:{}\"\n[backend.tls]\nca_file = \"ca.pem\"\n\
         [backend.auth]\nheader = \"X-Api-Key\"\ntoken_env = \"SCIMGATE_ALT_API_KEY\"\n",
        backend_addr.port()
    );
    let (text, keys) = alt_toml(&backend_toml, &globex(), listen, dir.path());
    let config = dir.path().join("scimgate.toml");
    std::fs::write(&config, text).expect("config");
    let backend = AltBackend::new(API_KEY);
    let mut srv = server::build(server::server_conf(1, Duration::ZERO, dir.path()));
    srv.add_service(backend.tls_service(
        &backend_addr.to_string(),
        &leaf.cert_file,
        &leaf.key_file,
        None,
    ));
    let running = Running::start(srv);
    assert!(super::harness::wait_listening(
        backend_addr,
        Duration::from_secs(10)
    ));
    let gw = GatewayProcess::start(
        &config,
        listen,
        &keys[0].token,
        &[],
        "warn",
        &dir.path().join("gateway.log"),
    );
    let r = gw.scim("GET", "/Users?count=1", None);
    assert_eq!(r.status, 502, "{}", r.text());

    ca.write(dir.path(), "ca.pem");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .args(["reload", "--config"])
        .arg(&config)
        .output()
        .expect("scimgate reload");
    assert!(out.status.success(), "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = gw.scim("GET", "/Users?count=1", None);
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{}\n{}", r.text(), gw.log_tail());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!backend.request_log().is_empty());
    drop(gw);
    running.stop();
}

fn globex() -> [TenantSpec<'static>; 1] {
    [TenantSpec {
        name: "globex",
        org: ORG,
        extra: "",
    }]
}
