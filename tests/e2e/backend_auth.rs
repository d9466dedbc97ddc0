//! The credential the gateway presents to the backend: OAuth 2.0 client credentials against a
//! local token endpoint (one token shared by concurrent callers, reused until it expires,
//! replaced when the backend refuses it, never logged), HTTP Basic, and per-tenant credentials.

use super::alt_backend::{AltBackend, RecordedRequest};
use super::alt_upstream::{alt_toml, parse, start, TenantKey, TenantSpec};
use super::crash::GatewayProcess;
use super::harness::{assert_scim_error, Gateway};
use super::scenarios::create_body;
use super::token_endpoint::{TokenEndpoint, TOKEN_PATH};
use base64::Engine;
use scimgate::gateway::server::{self, Running};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;

const CLIENT_ID: &str = "scimgate-quill";
const CLIENT_SECRET: &str = "cs-7f3a9b1e5d";
const SECRET_ENV: &str = "SCIMGATE_TEST_OAUTH_SECRET";

/// `[backend]` at `backend` with the credential table `auth`.
fn backend_toml(backend: SocketAddr, auth: &str) -> String {
    format!(
        "[backend]\naddress = \"{backend}\"\nhost = \"alt.local\"\nconnect_timeout_ms = 2000\n\
         read_timeout_ms = 5000\n\n{auth}\n"
    )
}

/// `[backend.auth]` for the token endpoint at `endpoint`, with `extra` lines.
fn oauth_table(endpoint: SocketAddr, extra: &str) -> String {
    format!(
        "[backend.auth]\ntype = \"oauth2\"\ntoken_url = \"http://{endpoint}{TOKEN_PATH}\"\n\
         client_id = \"{CLIENT_ID}\"\nclient_secret_env = \"{SECRET_ENV}\"\n{extra}\n"
    )
}

/// An alt backend and a token endpoint on one pingora server, and a gateway over `auth`.
struct Setup {
    gw: Gateway,
    backend: AltBackend,
    tokens: TokenEndpoint,
    keys: Vec<TenantKey>,
}

fn setup(
    auth: impl FnOnce(SocketAddr) -> String,
    tenants: &[TenantSpec<'_>],
    secret: &str,
) -> Setup {
    std::env::set_var(SECRET_ENV, CLIENT_SECRET);
    std::env::set_var("SCIMGATE_ALT_API_KEY", "alt-e2e-api-key");
    let dir = tempfile::tempdir().expect("tempdir");
    let backend_addr = server::free_port().expect("port");
    let token_addr = server::free_port().expect("port");
    let listen = server::free_port().expect("port");
    let (text, keys) = alt_toml(
        &backend_toml(backend_addr, &auth(token_addr)),
        tenants,
        listen,
        dir.path(),
    );
    let config = parse(&text, dir.path());
    let backend = AltBackend::new("alt-e2e-api-key");
    let tokens = TokenEndpoint::new(CLIENT_ID, secret);
    let (b, t) = (backend.clone(), tokens.clone());
    let gw = start(
        config,
        &keys[0].token,
        dir,
        |srv| {
            srv.add_service(b.service(&backend_addr.to_string()));
            srv.add_service(t.service(&token_addr.to_string()));
        },
        &[backend_addr, token_addr],
    );
    Setup {
        gw,
        backend,
        tokens,
        keys,
    }
}

fn globex() -> [TenantSpec<'static>; 1] {
    [TenantSpec {
        name: "globex",
        org: "globex-org",
        extra: "",
    }]
}

/// The backend's requests from index `from` on.
fn since(backend: &AltBackend, from: usize) -> Vec<RecordedRequest> {
    backend.request_log().into_iter().skip(from).collect()
}

#[test]
fn oauth_tokens_are_shared_reused_until_expiry_and_replaced_when_refused() {
    let s = setup(
        |t| {
            oauth_table(
                t,
                "scope = \"people.read people.write\"\naudience = \"https://quill\"",
            )
        },
        &globex(),
        CLIENT_SECRET,
    );
    let tokens = s.tokens.clone();
    s.backend
        .check_authorization("*", move |a| tokens.accepts(a));

    // Eight SCIM calls at once on a cold gateway: one token request.
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let r = s.gw.scim("GET", "/Users?count=1", None);
                assert_eq!(r.status, 200, "{}", r.text());
            });
        }
    });
    assert_eq!(s.tokens.requests(), 1, "concurrent callers share one token");
    let form = &s.tokens.forms()[0];
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["scope"], "people.read people.write");
    assert_eq!(form["audience"], "https://quill");
    assert!(
        !form.contains_key("client_secret"),
        "client_secret_basic by default"
    );

    // Reused for every further call.
    let r =
        s.gw.scim("POST", "/Users", Some(&create_body("oa@contoso.com", "oa")));
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    assert_eq!(s.gw.scim("GET", &format!("/Users/{id}"), None).status, 200);
    assert_eq!(s.tokens.requests(), 1, "the token is reused");
    let first = s.tokens.issued()[0].clone();
    assert!(s
        .backend
        .request_log()
        .iter()
        .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {first}"))));

    // The backend refuses the token: one new token, the call repeated once, the client sees 200.
    s.tokens.revoke_all();
    let mark = s.backend.request_log().len();
    let r = s.gw.scim("GET", &format!("/Users/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["userName"], "oa@contoso.com");
    assert_eq!(s.tokens.requests(), 2);
    let second = s.tokens.issued()[1].clone();
    let calls = since(&s.backend, mark);
    assert_eq!(
        calls.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![401, 200],
        "{calls:?}"
    );
    assert_eq!(calls[1].authorization, Some(format!("Bearer {second}")));

    // Refused under eight concurrent calls: they share one replacement.
    s.tokens.revoke_all();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let r = s.gw.scim("GET", &format!("/Users/{id}"), None);
                assert_eq!(r.status, 200, "{}", r.text());
            });
        }
    });
    assert_eq!(s.tokens.requests(), 3, "one replacement for all eight");

    // A token that expires is renewed before it expires: no 401 on the way.
    s.tokens.set_expires_in(Some(5));
    s.tokens.revoke_all();
    let r = s.gw.scim("GET", &format!("/Users/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.tokens.requests(), 4);
    let mark = s.backend.request_log().len();
    assert_eq!(s.gw.scim("GET", &format!("/Users/{id}"), None).status, 200);
    assert_eq!(s.tokens.requests(), 4, "reused within its lifetime");
    std::thread::sleep(Duration::from_millis(4700));
    assert_eq!(s.gw.scim("GET", &format!("/Users/{id}"), None).status, 200);
    assert_eq!(s.tokens.requests(), 5, "renewed once it (nearly) expired");
    let calls = since(&s.backend, mark);
    assert!(calls.iter().all(|r| r.status == 200), "{calls:?}");
}

#[test]
fn a_backend_that_keeps_refusing_fresh_tokens_gets_one_retry_and_a_502() {
    let s = setup(|t| oauth_table(t, ""), &globex(), CLIENT_SECRET);
    s.backend.check_authorization("*", |_| false);
    let r = s.gw.scim("GET", "/Users?count=1", None);
    assert_scim_error(&r, 502, None);
    assert_eq!(s.tokens.requests(), 2, "one token, one replacement");
    assert_eq!(
        s.backend.request_log().len(),
        2,
        "the call is repeated once, not in a loop"
    );
}

#[test]
fn a_token_endpoint_refusing_the_client_gives_a_clear_502_without_the_secret() {
    let s = setup(
        |t| oauth_table(t, "client_auth = \"body\""),
        &globex(),
        "another-secret",
    );
    let r = s.gw.scim("GET", "/Users?count=1", None);
    assert_scim_error(&r, 502, None);
    let text = r.text();
    assert!(text.contains("token endpoint answered 401"), "{text}");
    assert!(text.contains("invalid_client"), "{text}");
    assert!(!text.contains(CLIENT_SECRET), "{text}");
    assert!(
        s.backend.request_log().is_empty(),
        "no call without a credential"
    );
    assert!(s.tokens.requests() >= 1);
}

#[test]
fn client_secret_post_sends_the_client_credentials_in_the_form() {
    let s = setup(
        |t| oauth_table(t, "client_auth = \"body\""),
        &globex(),
        CLIENT_SECRET,
    );
    let tokens = s.tokens.clone();
    s.backend
        .check_authorization("*", move |a| tokens.accepts(a));
    assert_eq!(s.gw.scim("GET", "/Users?count=1", None).status, 200);
    let form = &s.tokens.forms()[0];
    assert_eq!(form["client_id"], CLIENT_ID);
    assert_eq!(form["client_secret"], CLIENT_SECRET);
}

/// `Basic base64(user:password)`.
fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

#[test]
fn http_basic_is_built_from_environment_variables() {
    std::env::set_var("SCIMGATE_TEST_BASIC_USER", "svc-scim");
    std::env::set_var("SCIMGATE_TEST_BASIC_PASSWORD", "pa:ss wörd");
    let s = setup(
        |_| {
            "[backend.auth]\ntype = \"basic\"\nuser_env = \"SCIMGATE_TEST_BASIC_USER\"\n\
             password_env = \"SCIMGATE_TEST_BASIC_PASSWORD\"\n"
                .into()
        },
        &globex(),
        CLIENT_SECRET,
    );
    let expected = basic("svc-scim", "pa:ss wörd");
    let want = expected.clone();
    s.backend
        .check_authorization("*", move |a| a == Some(want.as_str()));
    let r =
        s.gw.scim("POST", "/Users", Some(&create_body("b@contoso.com", "b")));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(s.backend.accounts("globex-org").len(), 1);
    assert!(s
        .backend
        .request_log()
        .iter()
        .all(|r| r.authorization.as_deref() == Some(expected.as_str())));
}

#[test]
fn each_tenant_presents_its_own_credential() {
    std::env::set_var("SCIMGATE_TEST_GLOBEX_KEY", "globex-admin-key");
    std::env::set_var("SCIMGATE_TEST_INITECH_USER", "initech-svc");
    std::env::set_var("SCIMGATE_TEST_INITECH_PASSWORD", "initech-pw");
    let tenants = [
        TenantSpec {
            name: "globex",
            org: "globex-org",
            extra: "[tenants.auth]\nscheme = \"Bearer\"\ntoken_env = \"SCIMGATE_TEST_GLOBEX_KEY\"",
        },
        TenantSpec {
            name: "initech",
            org: "initech-org",
            extra: "[tenants.auth]\ntype = \"basic\"\nuser_env = \"SCIMGATE_TEST_INITECH_USER\"\n\
                    password_env = \"SCIMGATE_TEST_INITECH_PASSWORD\"",
        },
        TenantSpec {
            name: "umbrella",
            org: "umbrella-org",
            extra: "",
        },
    ];
    let mut s = setup(
        |_| "[backend.auth]\nheader = \"X-Api-Key\"\ntoken_env = \"SCIMGATE_ALT_API_KEY\"\n".into(),
        &tenants,
        CLIENT_SECRET,
    );
    s.backend
        .check_authorization("globex-org", |a| a == Some("Bearer globex-admin-key"));
    let initech = basic("initech-svc", "initech-pw");
    let want = initech.clone();
    s.backend
        .check_authorization("initech-org", move |a| a == Some(want.as_str()));
    for (i, key) in s.keys.iter().enumerate() {
        s.gw.token = key.token.clone();
        let user = format!("u{i}@contoso.com");
        let r =
            s.gw.scim("POST", "/Users", Some(&create_body(&user, &user)));
        assert_eq!(r.status, 201, "{}: {}", key.name, r.text());
    }
    for org in ["globex-org", "initech-org", "umbrella-org"] {
        assert_eq!(s.backend.accounts(org).len(), 1, "{org}");
    }
    let log = s.backend.request_log();
    let seen = |org: &str| {
        log.iter()
            .filter(|r| r.path.starts_with(&format!("/v1/orgs/{org}/")))
            .map(|r| r.authorization.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        seen("globex-org"),
        [Some("Bearer globex-admin-key".to_string())].into()
    );
    assert_eq!(seen("initech-org"), [Some(initech)].into());
    assert_eq!(seen("umbrella-org"), [None].into(), "the default X-Api-Key");
    assert!(log.iter().all(|r| r.status < 400), "{log:?}");
}

#[test]
fn tokens_and_secrets_never_appear_in_the_log() {
    std::env::set_var("SCIMGATE_ALT_API_KEY", "alt-e2e-api-key");
    let dir = tempfile::tempdir().expect("tempdir");
    let backend_addr = server::free_port().expect("port");
    let token_addr = server::free_port().expect("port");
    let listen = server::free_port().expect("port");
    let (text, keys) = alt_toml(
        &backend_toml(backend_addr, &oauth_table(token_addr, "")),
        &globex(),
        listen,
        dir.path(),
    );
    let config_file = dir.path().join("scimgate.toml");
    std::fs::write(&config_file, text).expect("config");
    let backend = AltBackend::new("alt-e2e-api-key");
    let tokens = TokenEndpoint::new(CLIENT_ID, CLIENT_SECRET);
    let accepted = tokens.clone();
    backend.check_authorization("*", move |a| accepted.accepts(a));
    let mut srv = server::build(server::server_conf(1, Duration::ZERO, dir.path()));
    srv.add_service(backend.service(&backend_addr.to_string()));
    srv.add_service(tokens.service(&token_addr.to_string()));
    let running = Running::start(srv);
    for a in [backend_addr, token_addr] {
        assert!(super::harness::wait_listening(a, Duration::from_secs(10)));
    }
    let log = dir.path().join("gateway.log");
    let gw = GatewayProcess::start(
        &config_file,
        listen,
        &keys[0].token,
        &[(SECRET_ENV, CLIENT_SECRET)],
        "trace",
        &log,
    );
    let r = gw.scim("POST", "/Users", Some(&create_body("log@contoso.com", "l")));
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    tokens.revoke_all();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "nickName", "value": "L"}]});
    let r = gw.scim("PATCH", &format!("/Users/{id}"), Some(&patch));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(tokens.requests(), 2);
    drop(gw);
    running.stop();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("obtained a backend access token")
            && text.contains("the backend refused the access token"),
        "the log is captured at trace level:\n{}",
        &text[..text.len().min(4000)]
    );
    let basic_pair =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let mut secrets = vec![CLIENT_SECRET.to_string(), basic_pair];
    secrets.extend(tokens.issued());
    for secret in secrets {
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(&secret)).collect();
        assert!(lines.is_empty(), "{secret} appears in the log: {lines:#?}");
    }
}
