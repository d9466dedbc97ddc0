//! End-to-end tests: the legacy API served by a real pingora `Server` on a loopback port,
//! spoken to with a minimal raw HTTP/1.1 client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::gateway::server::{build, server_conf, Running};

use super::{legacy_service, LegacyBackend};

mod projects;

const SERVICE_TOKEN: &str = "svc-token";
const PASSWORD: &str = "demo-pass";

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A pingora server running the demo backend on a thread.
struct TestServer {
    addr: SocketAddr,
    dir: PathBuf,
    running: Option<Running>,
}

impl TestServer {
    fn start(name: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let dir = temp_dir(name);
        let backend = LegacyBackend::open(&dir.join("legacy.db"), SERVICE_TOKEN, PASSWORD)?;
        let addr = free_port()?;
        let mut server = build(server_conf(1, Duration::ZERO, &dir));
        server.add_service(legacy_service(backend, &addr.to_string()));
        let running = Running::start(server);
        wait_listening(addr)?;
        Ok(TestServer {
            addr,
            dir,
            running: Some(running),
        })
    }

    fn client(&self) -> Result<Client, Box<dyn std::error::Error>> {
        Client::connect(self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "scimgate-demo-e2e-{name}-{}-{}",
        std::process::id(),
        super::crypto::new_session_token()
    ));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

fn wait_listening(addr: SocketAddr) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
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
        self.json()["error"].as_str().unwrap_or("").to_owned()
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

    fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()
    }

    fn head(method: &str, path: &str, token: Option<&str>, len: usize) -> String {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: legacy.test\r\n");
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if len > 0 || method != "GET" {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {len}\r\n"
            ));
        }
        head
    }

    fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Reply, Box<dyn std::error::Error>> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let head = Self::head(method, path, token, body.len());
        self.send_raw(format!("{head}\r\n{body}").as_bytes())?;
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
        let len: usize = reply.header("content-length").unwrap_or("0").parse()?;
        reply.body = vec![0; len];
        self.reader.read_exact(&mut reply.body)?;
        Ok(reply)
    }
}

fn login(c: &mut Client, email: &str, password: &str) -> Result<Reply, Box<dyn std::error::Error>> {
    c.call(
        "POST",
        "/api/login",
        None,
        Some(&json!({"email": email, "password": password})),
    )
}

fn session(
    c: &mut Client,
    email: &str,
    password: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let r = login(c, email, password)?;
    assert_eq!(r.status, 200, "login {email}: {r:?}");
    Ok(r.json()["session"].as_str().ok_or("no session")?.to_owned())
}

#[test]
fn login_me_and_errors() -> TestResult {
    let server = TestServer::start("basics")?;
    let mut c = server.client()?;
    let r = login(&mut c, "admin@acme.test", "wrong")?;
    assert_eq!((r.status, r.error_code().as_str()), (401, "unauthorized"));
    let admin = session(&mut c, "admin@acme.test", PASSWORD)?;
    assert_eq!(admin.len(), 64);

    let r = c.call("GET", "/api/me", Some(&admin), None)?;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let me = r.json();
    assert_eq!(me["email"], "admin@acme.test");
    assert_eq!(me["role"], "admin");
    assert_eq!(me["display_name"], "Ada Admin");
    assert_eq!(me["status"], "active");
    assert_eq!(me["title"], Value::Null);
    assert!(me.get("password_hash").is_none());

    let r = c.call("GET", "/api/me", None, None)?;
    assert_eq!(r.status, 401);
    let r = c.call("DELETE", "/api/me", Some(&admin), None)?;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
    let r = c.call("GET", "/api/nothing", Some(&admin), None)?;
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    c.send_raw(b"POST /api/teams/acme/members HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer svc-token\r\nContent-Length: 5\r\n\r\n{oops")?;
    let r = c.read_reply()?;
    assert_eq!((r.status, r.error_code().as_str()), (400, "bad_json"));
    // All of the above went over one keep-alive connection.
    assert_eq!(r.header("connection"), Some("keep-alive"));
    Ok(())
}

#[test]
fn admin_manages_members() -> TestResult {
    let server = TestServer::start("admin")?;
    let mut c = server.client()?;
    let admin = session(&mut c, "admin@acme.test", PASSWORD)?;
    let members = "/api/teams/acme/members";

    for i in 0..4 {
        let body = json!({"email": format!("user{i}@acme.test"), "first_name": "User",
            "last_name": format!("{i}"), "display_name": format!("User {i}"),
            "title": "Tester", "status": "active", "externalId": "ignored"});
        let r = c.call("POST", members, Some(&admin), Some(&body))?;
        assert_eq!(r.status, 201, "{r:?}");
        assert_eq!(r.json()["team"], "acme");
    }
    let dup = json!({"email": "USER0@acme.test"});
    let r = c.call("POST", members, Some(SERVICE_TOKEN), Some(&dup))?;
    assert_eq!((r.status, r.error_code().as_str()), (409, "email_taken"));
    let r = c.call(
        "POST",
        members,
        Some(&admin),
        Some(&json!({"email": "has space"})),
    )?;
    assert_eq!((r.status, r.error_code().as_str()), (422, "invalid"));
    let bad_status = json!({"email": "s@acme.test", "status": "deleted"});
    let r = c.call("POST", members, Some(&admin), Some(&bad_status))?;
    assert_eq!(r.status, 422);

    check_paging(&mut c, &admin)?;
    check_get_put_delete(&mut c, &admin)?;
    Ok(())
}

fn check_paging(c: &mut Client, admin: &str) -> TestResult {
    let mut seen = Vec::new();
    for page in 1..=4 {
        let r = c.call(
            "GET",
            &format!("/api/teams/acme/members?page={page}&per_page=2"),
            Some(admin),
            None,
        )?;
        let v = r.json();
        assert_eq!(
            (v["total"].as_u64(), v["page"].as_u64()),
            (Some(7), Some(page))
        );
        assert_eq!(v["per_page"], 2);
        for m in v["members"].as_array().ok_or("members")? {
            seen.push(m["id"].as_i64().ok_or("id")?);
        }
    }
    assert_eq!(seen.len(), 7);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "ordered by id: {seen:?}"
    );
    let r = c.call(
        "GET",
        "/api/teams/acme/members?per_page=1000",
        Some(admin),
        None,
    )?;
    assert_eq!(r.json()["per_page"], 200);
    assert_eq!(r.json()["page"], 1);
    let r = c.call(
        "GET",
        "/api/teams/acme/members?email=CAROL%40ACME.test",
        Some(SERVICE_TOKEN),
        None,
    )?;
    let v = r.json();
    assert_eq!(v["total"], 1);
    assert_eq!(v["members"][0]["email"], "carol@acme.test");
    let r = c.call("GET", "/api/teams/globex/members", Some(admin), None)?;
    assert_eq!(r.status, 403);
    Ok(())
}

fn check_get_put_delete(c: &mut Client, admin: &str) -> TestResult {
    let path = "/api/teams/acme/members/4";
    let r = c.call("GET", path, Some(admin), None)?;
    assert_eq!(
        (r.status, r.json()["email"].as_str()),
        (200, Some("user0@acme.test"))
    );
    let created_at = r.json()["created_at"].clone();

    let change = json!({"title": null, "display_name": "Renamed", "role": "admin"});
    let r = c.call("PUT", path, Some(admin), Some(&change))?;
    let v = r.json();
    assert_eq!(r.status, 200);
    assert_eq!(
        (v["title"].clone(), v["display_name"].as_str()),
        (Value::Null, Some("Renamed"))
    );
    assert_eq!(
        (v["first_name"].as_str(), v["role"].as_str()),
        (Some("User"), Some("admin"))
    );
    assert_eq!(v["created_at"], created_at);

    let clash = json!({"email": "Bob@Acme.Test"});
    let r = c.call("PUT", path, Some(admin), Some(&clash))?;
    assert_eq!((r.status, r.error_code().as_str()), (409, "email_taken"));

    let r = c.call("DELETE", path, Some(admin), None)?;
    assert_eq!((r.status, r.body.len()), (204, 0));
    let r = c.call("GET", path, Some(admin), None)?;
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    let r = c.call("GET", "/api/teams/acme/members/999", Some(admin), None)?;
    assert_eq!(r.status, 404);
    Ok(())
}

#[test]
fn self_service_routes() -> TestResult {
    let server = TestServer::start("self")?;
    let mut c = server.client()?;
    let bob = session(&mut c, "bob@acme.test", PASSWORD)?;
    let bob_id = c.call("GET", "/api/me", Some(&bob), None)?.json()["id"].clone();
    assert_eq!(bob_id, 2);

    let wrong = json!({"current_password": "nope", "new_password": "new-pass"});
    let r = c.call("PUT", "/api/me/password", Some(&bob), Some(&wrong))?;
    assert_eq!(r.status, 403);
    let right = json!({"current_password": PASSWORD, "new_password": "new-pass"});
    let r = c.call("PUT", "/api/me/password", Some(&bob), Some(&right))?;
    assert_eq!(r.status, 204);
    assert_eq!(login(&mut c, "bob@acme.test", PASSWORD)?.status, 401);

    let email = json!({"email": "robert@acme.test"});
    let r = c.call("PUT", "/api/me/email", Some(&bob), Some(&email))?;
    assert_eq!(
        (r.status, r.json()["email"].as_str()),
        (200, Some("robert@acme.test"))
    );
    let r = c.call(
        "PUT",
        "/api/me/email",
        Some(&bob),
        Some(&json!({"email": "carol@acme.test"})),
    )?;
    assert_eq!(r.status, 409);
    let bob = session(&mut c, "robert@acme.test", "new-pass")?;

    let profile = json!({"first_name": "Robert", "title": "Foreman", "status": "suspended"});
    let r = c.call("PATCH", "/api/users/2", Some(&bob), Some(&profile))?;
    let v = r.json();
    assert_eq!((r.status, v["first_name"].as_str()), (200, Some("Robert")));
    assert_eq!(
        (v["title"].as_str(), v["status"].as_str()),
        (Some("Foreman"), Some("active"))
    );
    let r = c.call("PATCH", "/api/users/3", Some(&bob), Some(&profile))?;
    assert_eq!(r.status, 403);

    let r = c.call("DELETE", "/api/teams/globex/members/me", Some(&bob), None)?;
    assert_eq!(r.status, 403);
    let r = c.call("DELETE", "/api/teams/acme/members/me", Some(&bob), None)?;
    assert_eq!(r.status, 204);
    let r = c.call("GET", "/api/me", Some(&bob), None)?;
    assert_eq!(r.status, 401, "the session ended with the membership");
    let r = c.call(
        "GET",
        "/api/teams/acme/members/2",
        Some(SERVICE_TOKEN),
        None,
    )?;
    assert_eq!(r.status, 404);
    Ok(())
}

#[test]
fn suspended_member_is_locked_out() -> TestResult {
    let server = TestServer::start("suspend")?;
    let mut c = server.client()?;
    let carol = session(&mut c, "carol@acme.test", PASSWORD)?;
    let suspend = json!({"status": "suspended"});
    let r = c.call(
        "PUT",
        "/api/teams/acme/members/3",
        Some(SERVICE_TOKEN),
        Some(&suspend),
    )?;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (200, Some("suspended"))
    );
    assert_eq!(c.call("GET", "/api/me", Some(&carol), None)?.status, 401);
    assert_eq!(login(&mut c, "carol@acme.test", PASSWORD)?.status, 401);
    Ok(())
}

#[test]
fn body_cap_and_expect_continue() -> TestResult {
    let server = TestServer::start("body")?;
    let mut c = server.client()?;
    let head = Client::head("POST", "/api/login", None, 8);
    c.send_raw(format!("{head}Expect: 100-continue\r\n\r\n").as_bytes())?;
    let interim = c.read_reply()?;
    assert_eq!(interim.status, 100);
    c.send_raw(b"{\"a\":1}\n")?;
    let r = c.read_reply()?;
    assert_eq!(
        (r.status, r.header("connection")),
        (401, Some("keep-alive"))
    );

    let mut big = server.client()?;
    let len = super::http::MAX_BODY_BYTES + 1;
    let head = Client::head("POST", "/api/teams/acme/members", Some(SERVICE_TOKEN), len);
    big.send_raw(format!("{head}\r\n").as_bytes())?;
    let r = big.read_reply()?;
    assert_eq!((r.status, r.error_code().as_str()), (413, "too_large"));

    let mut chunked = server.client()?;
    chunked
        .send_raw(b"POST /api/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")?;
    // 16 chunks of 64 KiB fill the cap exactly; one more byte is too much.
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..16 {
        chunked.send_raw(format!("{:x}\r\n", chunk.len()).as_bytes())?;
        chunked.send_raw(&chunk)?;
        chunked.send_raw(b"\r\n")?;
    }
    chunked.send_raw(b"1\r\nX\r\n")?;
    let status = chunked.read_reply()?.status;
    assert_eq!(status, 413);
    Ok(())
}
