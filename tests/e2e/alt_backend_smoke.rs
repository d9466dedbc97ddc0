//! Smoke test of the "alt" test backend (`tests/support/alt_backend.rs`) and its scimgate config
//! (`tests/fixtures/alt.toml`): the backend served by a real pingora `Server` on a loopback port,
//! spoken to with a minimal raw HTTP/1.1 client over one keep-alive connection, and the config
//! loaded by scimgate's own loader.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use scimgate::server::{self, Running};
use serde_json::{json, Value};

use super::alt_backend::AltBackend;

const KEY: &str = "alt-test-key";
const ORG: &str = "globex-org";
const ACCOUNTS: &str = "/v1/orgs/globex-org/accounts";

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A pingora server running only the alt backend; stopped when dropped.
struct TestServer {
    addr: SocketAddr,
    backend: AltBackend,
    _running: Running,
    _dir: tempfile::TempDir,
}

impl TestServer {
    fn start() -> Result<Self, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let backend = AltBackend::new(KEY);
        let addr = server::free_port()?;
        let mut srv = server::build(server::server_conf(1, Duration::ZERO, dir.path()));
        srv.add_service(backend.service(&addr.to_string()));
        let running = Running::start(srv);
        if !server::wait_listening(addr, Duration::from_secs(10)) {
            return Err(format!("{addr} is not listening").into());
        }
        Ok(TestServer {
            addr,
            backend,
            _running: running,
            _dir: dir,
        })
    }

    fn client(&self) -> Result<Client, Box<dyn std::error::Error>> {
        Client::connect(self.addr)
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

/// A tiny HTTP/1.1 client on one keep-alive connection.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Result<Self, Box<dyn std::error::Error>> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// A request with the right API key.
    fn call(
        &mut self,
        method: &str,
        target: &str,
        body: Option<&Value>,
    ) -> Result<Reply, Box<dyn std::error::Error>> {
        self.call_with_key(method, target, Some(KEY), body)
    }

    fn call_with_key(
        &mut self,
        method: &str,
        target: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Reply, Box<dyn std::error::Error>> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: alt.test\r\n");
        if let Some(k) = key {
            head.push_str(&format!("X-Api-Key: {k}\r\n"));
        }
        if !body.is_empty() || method != "GET" {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        self.writer
            .write_all(format!("{head}\r\n{body}").as_bytes())?;
        self.writer.flush()?;
        self.read_reply()
    }

    fn read_reply(&mut self) -> Result<Reply, Box<dyn std::error::Error>> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line.split_whitespace().nth(1).ok_or("no status")?.parse()?;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').ok_or("bad header")?;
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        if status == 204 {
            if reply.header("content-length").is_some() {
                return Err("204 with Content-Length".into());
            }
            return Ok(reply);
        }
        let len: usize = reply
            .header("content-length")
            .ok_or_else(|| format!("{status} answer without Content-Length"))?
            .parse()?;
        reply.body = vec![0; len];
        self.reader.read_exact(&mut reply.body)?;
        Ok(reply)
    }
}

fn is_rfc3339(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
    })
}

#[test]
fn serves_the_account_lifecycle() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.client()?;

    // Create: the body is wrapped in "account"; `active` is ignored and starts true.
    let r = c.call(
        "POST",
        ACCOUNTS,
        Some(
            &json!({"account": {"login": "Ann", "given": "Ann", "family": "Lee", "active": false}}),
        ),
    )?;
    assert_eq!(r.status, 201, "{:?}", r.json());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let ann = r.json()["data"].clone();
    let id = ann["id"].as_str().ok_or("no id")?.to_owned();
    let hex = id.strip_prefix("acc_").ok_or("id without acc_")?;
    assert!(
        hex.len() == 12 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(ann["org"], ORG);
    assert_eq!(ann["login"], "Ann");
    assert_eq!(ann["nick"], Value::Null);
    assert_eq!(ann["active"], true);
    assert!(is_rfc3339(&ann["created"]) && is_rfc3339(&ann["modified"]));

    // Duplicate login, ignoring case; missing login; body without the envelope.
    let r = c.call(
        "POST",
        ACCOUNTS,
        Some(&json!({"account": {"login": "ANN"}})),
    )?;
    assert_eq!((r.status, r.error_code()), (409, "duplicate_login".into()));
    let r = c.call("POST", ACCOUNTS, Some(&json!({"account": {"given": "X"}})))?;
    assert_eq!((r.status, r.error_code()), (400, "validation".into()));
    let r = c.call("POST", ACCOUNTS, Some(&json!({"login": "bob"})))?;
    assert_eq!((r.status, r.error_code()), (400, "validation".into()));
    // Logins are unique per organisation only.
    let r = c.call(
        "POST",
        "/v1/orgs/other-org/accounts",
        Some(&json!({"account": {"login": "ann"}})),
    )?;
    assert_eq!(r.status, 201);
    let r = c.call(
        "POST",
        ACCOUNTS,
        Some(&json!({"account": {"login": "bob", "nick": "bobby"}})),
    )?;
    assert_eq!(r.status, 201);
    let bob = r.json()["data"]["id"].as_str().ok_or("no id")?.to_owned();

    // List and get.
    let r = c.call("GET", ACCOUNTS, None)?;
    assert_eq!(r.status, 200);
    let list = r.json();
    assert_eq!(list["meta"], json!({"total": 2, "offset": 0, "limit": 20}));
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(list["data"][1]["id"], bob.as_str());
    let r = c.call("GET", &format!("{ACCOUNTS}?login=aNN"), None)?;
    assert_eq!(r.json()["meta"]["total"], 1);
    assert_eq!(r.json()["data"][0]["id"], id.as_str());
    let r = c.call("GET", &format!("{ACCOUNTS}/{id}"), None)?;
    assert_eq!((r.status, r.json()["data"].clone()), (200, ann.clone()));
    let r = c.call("GET", &format!("{ACCOUNTS}/acc_000000000000"), None)?;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"data": null, "errors": [{"code": "not_found"}]})
    );
    let r = c.call("GET", &format!("/v1/orgs/other-org/accounts/{id}"), None)?;
    assert_eq!(r.status, 404, "an account is only visible in its org");

    // Partial update: absent fields stay, null clears, `active` is ignored.
    let r = c.call(
        "PATCH",
        &format!("{ACCOUNTS}/{id}"),
        Some(&json!({"account": {"given": "Anne", "family": null, "active": false}})),
    )?;
    assert_eq!(r.status, 200, "{:?}", r.json());
    let patched = r.json()["data"].clone();
    assert_eq!(patched["login"], "Ann");
    assert_eq!(patched["given"], "Anne");
    assert_eq!(patched["family"], Value::Null);
    assert_eq!(patched["active"], true);
    assert_eq!(patched["created"], ann["created"]);
    let r = c.call(
        "PATCH",
        &format!("{ACCOUNTS}/{id}"),
        Some(&json!({"account": {"login": "BOB"}})),
    )?;
    assert_eq!((r.status, r.error_code()), (409, "duplicate_login".into()));
    let r = c.call(
        "PATCH",
        &format!("{ACCOUNTS}/{id}"),
        Some(&json!({"account": {"login": null}})),
    )?;
    assert_eq!((r.status, r.error_code()), (400, "validation".into()));
    // Changing the case of one's own login is not a duplicate.
    let r = c.call(
        "PATCH",
        &format!("{ACCOUNTS}/{id}"),
        Some(&json!({"account": {"login": "ann"}})),
    )?;
    assert_eq!(
        (r.status, r.json()["data"]["login"].clone()),
        (200, json!("ann"))
    );

    // Deactivate and activate.
    let r = c.call("POST", &format!("{ACCOUNTS}/{id}/deactivate"), None)?;
    assert_eq!(
        (r.status, r.json()["data"]["active"].clone()),
        (200, json!(false))
    );
    assert_eq!(server.backend.accounts(ORG)[0]["active"], false);
    let r = c.call("POST", &format!("{ACCOUNTS}/{id}/activate"), None)?;
    assert_eq!(
        (r.status, r.json()["data"]["active"].clone()),
        (200, json!(true))
    );
    let r = c.call("GET", &format!("{ACCOUNTS}/{id}/deactivate"), None)?;
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));

    // Delete, then it is gone; the connection is still usable after the 204.
    let r = c.call("DELETE", &format!("{ACCOUNTS}/{id}"), None)?;
    assert_eq!((r.status, r.body.len()), (204, 0));
    let r = c.call("GET", &format!("{ACCOUNTS}/{id}"), None)?;
    assert_eq!(r.status, 404);
    let r = c.call("DELETE", &format!("{ACCOUNTS}/{id}"), None)?;
    assert_eq!(r.status, 404);
    let logins: Vec<Value> = server
        .backend
        .accounts(ORG)
        .iter()
        .map(|a| a["login"].clone())
        .collect();
    assert_eq!(logins, vec![json!("bob")]);
    Ok(())
}

#[test]
fn requires_the_api_key() -> TestResult {
    let server = TestServer::start()?;
    let mut c = server.client()?;
    let unauthenticated = json!({"data": null, "errors": [{"code": "unauthenticated"}]});
    let r = c.call_with_key("GET", ACCOUNTS, None, None)?;
    assert_eq!((r.status, r.json()), (401, unauthenticated.clone()));
    let r = c.call_with_key(
        "POST",
        ACCOUNTS,
        Some("wrong"),
        Some(&json!({"account": {"login": "eve"}})),
    )?;
    assert_eq!((r.status, r.json()), (401, unauthenticated));
    assert!(server.backend.accounts(ORG).is_empty());
    let r = c.call("GET", "/v1/nothing", None)?;
    assert_eq!(r.status, 404);
    Ok(())
}

#[test]
fn pages_with_offset_and_limit() -> TestResult {
    let server = TestServer::start()?;
    for i in 0..55 {
        server
            .backend
            .seed(ORG, json!({"login": format!("user{i:02}")}))?;
    }
    assert_eq!(
        server.backend.seed(ORG, json!({"login": "USER00"})),
        Err("duplicate_login".to_owned())
    );
    let mut c = server.client()?;
    let page = |c: &mut Client, query: &str| -> Result<Value, Box<dyn std::error::Error>> {
        let r = c.call("GET", &format!("{ACCOUNTS}?{query}"), None)?;
        assert_eq!(r.status, 200, "{query}: {:?}", r.json());
        Ok(r.json())
    };
    let logins = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["login"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };

    let p = page(&mut c, "")?;
    assert_eq!(p["meta"], json!({"total": 55, "offset": 0, "limit": 20}));
    assert_eq!(logins(&p).len(), 20);
    let p = page(&mut c, "offset=0&limit=500")?;
    assert_eq!(p["meta"], json!({"total": 55, "offset": 0, "limit": 50}));
    assert_eq!(logins(&p).len(), 50);
    let p = page(&mut c, "offset=50&limit=50")?;
    assert_eq!(
        logins(&p),
        ["user50", "user51", "user52", "user53", "user54"]
    );
    let p = page(&mut c, "offset=7&limit=2")?;
    assert_eq!(logins(&p), ["user07", "user08"]);
    let p = page(&mut c, "offset=100")?;
    assert_eq!(
        (p["meta"]["total"].clone(), logins(&p).len()),
        (json!(55), 0)
    );
    let p = page(&mut c, "login=USER42&offset=0&limit=50")?;
    assert_eq!(
        (p["meta"]["total"].clone(), logins(&p)),
        (json!(1), vec!["user42".to_owned()])
    );
    let p = page(&mut c, "login=nobody")?;
    assert_eq!(p["meta"]["total"], 0);

    let r = c.call("GET", &format!("{ACCOUNTS}?offset=-1"), None)?;
    assert_eq!((r.status, r.error_code()), (400, "validation".into()));
    Ok(())
}

#[test]
fn injects_faults_and_records_requests() -> TestResult {
    let server = TestServer::start()?;
    let backend = &server.backend;
    let mut c = server.client()?;
    let ann = backend.seed(ORG, json!({"login": "ann"}))?;
    let id = ann["id"].as_str().ok_or("no id")?.to_owned();

    backend.fail_next("/deactivate", 503);
    backend.fail_next_method("PATCH", "/accounts/", 500);
    // The GET does not match either fault.
    let r = c.call("GET", &format!("{ACCOUNTS}/{id}"), None)?;
    assert_eq!(r.status, 200);
    let r = c.call("POST", &format!("{ACCOUNTS}/{id}/deactivate"), None)?;
    assert_eq!(
        (r.status, r.json()),
        (503, json!({"errors": [{"code": "injected"}]}))
    );
    assert_eq!(
        backend.accounts(ORG)[0]["active"],
        true,
        "a fault changes nothing"
    );
    let r = c.call(
        "PATCH",
        &format!("{ACCOUNTS}/{id}"),
        Some(&json!({"account": {"nick": "a"}})),
    )?;
    assert_eq!((r.status, r.error_code()), (500, "injected".into()));
    // Each fault is used once.
    let r = c.call("POST", &format!("{ACCOUNTS}/{id}/deactivate"), None)?;
    assert_eq!(r.status, 200);
    // Faults come before authentication.
    backend.fail_next("/accounts", 502);
    let r = c.call_with_key("GET", ACCOUNTS, None, None)?;
    assert_eq!(r.status, 502);
    let r = c.call("GET", &format!("{ACCOUNTS}?login=ann"), None)?;
    assert_eq!(r.status, 200);

    assert_eq!(
        backend.requests(),
        vec![
            format!("GET {ACCOUNTS}/{id}"),
            format!("POST {ACCOUNTS}/{id}/deactivate"),
            format!("PATCH {ACCOUNTS}/{id}"),
            format!("POST {ACCOUNTS}/{id}/deactivate"),
            format!("GET {ACCOUNTS}"),
            format!("GET {ACCOUNTS}"),
        ]
    );
    let log = backend.request_log();
    assert_eq!(log[5].query.as_deref(), Some("login=ann"));
    assert_eq!(
        log.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 503, 500, 200, 502, 200]
    );
    let counts = backend.request_counts();
    assert_eq!(counts["POST /v1/orgs/{org}/accounts/{id}/deactivate"], 2);
    assert_eq!(counts["GET /v1/orgs/{org}/accounts"], 2);
    backend.clear_requests();
    assert!(backend.requests().is_empty());

    // Any answer can be injected, and answers can be held back.
    let odd = json!({"account": {"login": "x"}});
    backend.respond_next("/accounts/", 200, odd.clone());
    let r = c.call("GET", &format!("{ACCOUNTS}/{id}"), None)?;
    assert_eq!((r.status, r.json()), (200, odd));
    backend.delay_next("/accounts", Duration::from_millis(300));
    let started = Instant::now();
    let r = c.call("GET", &format!("{ACCOUNTS}/{id}"), None)?;
    assert_eq!(r.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let r = c.call("GET", &format!("{ACCOUNTS}/{id}"), None)?;
    assert_eq!(r.json()["data"]["login"], "ann", "each is used once");
    Ok(())
}

#[test]
fn alt_config_fixture_loads() -> TestResult {
    use scimgate::backend::spec::{Paging, WriteOn};

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alt.toml");
    let config = scimgate::config::from_str(include_str!("../fixtures/alt.toml"), &path)
        .map_err(|e| e.to_string())?;
    let users = &config.users;
    assert!(matches!(
        &users.list.paging,
        Paging::Offset { offset, size } if offset == "offset" && size == "limit"
    ));
    assert_eq!(users.list.max_size, 50);
    assert_eq!(users.list.results, "/data");
    assert_eq!(users.list.total.as_deref(), Some("/meta/total"));
    assert_eq!(users.create.body, "/account");
    assert_eq!(users.update.call.method, http::Method::PATCH);
    assert!(users.deactivate.is_some() && users.reactivate.is_some());
    let filters: Vec<(String, &str)> = users
        .filters
        .iter()
        .map(|f| (f.target.attr.canonical(), f.param.as_str()))
        .collect();
    assert_eq!(filters, [("userName".to_owned(), "login")]);
    let active = users
        .fields
        .iter()
        .find(|f| f.native == ["active"])
        .ok_or("no active field")?;
    assert_eq!(active.on, WriteOn::Never);
    let Some(scimgate::config::BackendAuth::Header(auth)) = config.backend.auth.as_ref() else {
        return Err("no backend header auth".into());
    };
    assert_eq!(auth.header.as_str(), "x-api-key");
    assert_eq!(auth.scheme, None);
    assert_eq!(auth.token_env, "SCIMGATE_ALT_API_KEY");
    assert_eq!(config.tenants.len(), 1);
    assert_eq!(config.tenants[0].name, "globex");
    assert_eq!(config.tenants[0].backend_name, ORG);
    Ok(())
}
