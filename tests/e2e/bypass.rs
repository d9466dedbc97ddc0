//! The guard's bypass corpus: raw HTTP/1.1 requests by bob (SCIM-managed) that try to change his
//! password or email, or make him leave the team, through every spelling a lenient backend might
//! accept. Every attempt must be refused (or the connection dropped) and must leave bob's — and,
//! for the header games, carol's and the admin's — state exactly as it was. Positive controls
//! show that the same requests by an unmanaged member succeed and that the state checks notice.

use super::guard::link_by_scim;
use super::harness::{Gateway, PASSWORD};
use super::http::Reply;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The email every attempt tries to give bob.
const PWNED: &str = "pwned@evil.test";
/// How long to wait for the first byte of an answer.
const FIRST_BYTE: Duration = Duration::from_secs(15);
/// How long to wait for more once something arrived (only when fewer replies than expected
/// came and the server keeps the connection open).
const IDLE: Duration = Duration::from_millis(1500);

// ---------------------------------------------------------------------------------------------
// Raw exchange
// ---------------------------------------------------------------------------------------------

/// What came back on one connection: the final (non-1xx) replies in order, and a note when the
/// byte stream ended in something that is not a complete response.
struct Outcome {
    replies: Vec<Reply>,
    garbled: Option<String>,
}

/// Sends `steps` on one fresh connection: each step is written once the previous one was
/// answered (keep-alive), then reads until the server closes, `want` complete replies arrived
/// in all, or it stays idle. Never panics: a refused write, a reset or a closed connection
/// simply yield fewer replies.
fn exchange(addr: SocketAddr, steps: &[Vec<u8>], want: usize) -> Outcome {
    let mut stream = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => {
            return Outcome {
                replies: Vec::new(),
                garbled: Some(format!("connect failed: {e}")),
            }
        }
    };
    let mut buf = Vec::new();
    let mut open = true;
    for (i, step) in steps.iter().enumerate() {
        // The server may answer and close before reading everything (413, 400): no error here.
        let _ = stream.write_all(step);
        let wanted = if i + 1 == steps.len() { want } else { i + 1 };
        open = read_until(&mut stream, &mut buf, wanted);
        if !open {
            break;
        }
    }
    let (replies, mut garbled) = parse_replies(&buf);
    if !open && replies.len() < want && garbled.is_none() {
        garbled = Some("connection closed".into());
    }
    Outcome { replies, garbled }
}

/// Reads into `buf` until it holds `want` complete replies, the peer closes (`false`) or it
/// stays idle.
fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, want: usize) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    let _ = stream.set_read_timeout(Some(if buf.len() < 5 { FIRST_BYTE } else { IDLE }));
    loop {
        let (replies, garbled) = parse_replies(buf);
        if replies.len() >= want && garbled.is_none() {
            return true;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return false,
            Err(e) => {
                return matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                let _ = stream.set_read_timeout(Some(IDLE));
            }
        }
    }
}

/// Like `http::raw`, but `None` when the connection closed or the answer was garbled.
fn raw_opt(addr: SocketAddr, bytes: &[u8]) -> Option<Reply> {
    let out = exchange(addr, &[bytes.to_vec()], 1);
    out.replies.into_iter().next()
}

/// Parses consecutive responses from `buf`, skipping interim (1xx) ones. The second value
/// describes trailing bytes that do not form a complete response.
fn parse_replies(mut buf: &[u8]) -> (Vec<Reply>, Option<String>) {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let Some(head_end) = find(buf, b"\r\n\r\n") else {
            return (out, Some(format!("incomplete head {:?}", shown(buf, 80))));
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .strip_prefix("HTTP/1.")
            .and_then(|rest| rest.split(' ').nth(1))
            .and_then(|s| s.parse::<u16>().ok());
        let Some(status) = status else {
            return (out, Some(format!("not a status line {status_line:?}")));
        };
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let rest = &buf[head_end + 4..];
        if (100..200).contains(&status) {
            buf = rest;
            continue;
        }
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let (body, used) = if status == 204 || status == 304 {
            (Vec::new(), 0)
        } else if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            if rest.len() < len {
                return (out, Some(format!("{status} with a truncated body")));
            }
            (rest[..len].to_vec(), len)
        } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            match dechunk(rest) {
                Some(x) => x,
                None => return (out, Some(format!("{status} with a truncated chunked body"))),
            }
        } else {
            (rest.to_vec(), rest.len())
        };
        out.push(Reply {
            status,
            headers,
            body,
        });
        buf = &rest[used..];
    }
    (out, None)
}

/// A complete chunked body at the start of `buf`: the data and the bytes it used.
fn dechunk(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let line_end = i + find(&buf[i..], b"\r\n")?;
        let size_text = String::from_utf8_lossy(&buf[i..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        i = line_end + 2;
        if size == 0 {
            let end = i + find(&buf[i..], b"\r\n")?;
            // Trailers end with an empty line; without trailers `end == i`.
            let end = if end == i {
                end
            } else {
                i + find(&buf[i..], b"\r\n\r\n")? + 2
            };
            return Some((out, end + 2));
        }
        out.extend_from_slice(buf.get(i..i + size)?);
        i += size + 2;
        if buf.len() < i {
            return None;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// Bytes as printable text (CR, LF, TAB and non-ASCII escaped), cut after `max` characters.
fn shown(bytes: &[u8], max: usize) -> String {
    let mut s = String::new();
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
        if s.len() > max {
            s.push_str(&format!("…({} bytes)", bytes.len()));
            break;
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Request templates
// ---------------------------------------------------------------------------------------------

/// What a template is filled with.
struct Vars {
    host: String,
    bob: String,
    carol: String,
    admin: String,
    id: String,
    cid: String,
    aid: String,
}

fn pw_json() -> String {
    format!(r#"{{"current_password":"{PASSWORD}","new_password":"pwned-Passw0rd!"}}"#)
}

fn email_json() -> String {
    format!(r#"{{"email":"{PWNED}"}}"#)
}

fn profile_json() -> String {
    format!(r#"{{"first_name":"Mallory","email":"{PWNED}"}}"#)
}

/// Replaces the placeholders `{HOST}`, `{BOB}`, `{CAROL}`, `{ID}` (bob's id), `{CID}` (carol's),
/// `{PW_JSON}`, `{EMAIL_JSON}`, `{PROFILE_JSON}` and, last, `{CL}`: the length of everything
/// after the first empty line.
fn fill(template: &[u8], v: &Vars) -> Vec<u8> {
    let mut out = template.to_vec();
    let subs: [(&str, String); 10] = [
        ("{PW_JSON}", pw_json()),
        ("{EMAIL_JSON}", email_json()),
        ("{PROFILE_JSON}", profile_json()),
        ("{PWNED}", PWNED.to_string()),
        ("{HOST}", v.host.clone()),
        ("{BOB}", v.bob.clone()),
        ("{CAROL}", v.carol.clone()),
        ("{ADMIN}", v.admin.clone()),
        ("{CID}", v.cid.clone()),
        ("{ID}", v.id.clone()),
    ];
    for (k, val) in &subs {
        out = replace(&out, k.as_bytes(), val.as_bytes());
    }
    let body_len = find(&out, b"\r\n\r\n").map_or(0, |i| out.len() - i - 4);
    replace(&out, b"{CL}", body_len.to_string().as_bytes())
}

/// A request built from parts: `Host`, bob's `Authorization`, a `Content-Type` and a
/// `Content-Length` for the body, `Connection: close` — each replaceable.
#[derive(Clone)]
struct Req {
    method: String,
    target: Vec<u8>,
    version: String,
    auth: Option<String>,
    headers: Vec<String>,
    ctype: Option<String>,
    body: Option<Vec<u8>>,
    close: bool,
}

impl Req {
    fn new(method: &str, target: impl AsRef<[u8]>) -> Req {
        Req {
            method: method.to_string(),
            target: target.as_ref().to_vec(),
            version: "HTTP/1.1".into(),
            auth: Some("Bearer {BOB}".into()),
            headers: Vec::new(),
            ctype: None,
            body: None,
            close: true,
        }
    }

    fn json(self, body: &str) -> Req {
        self.body(Some("application/json"), body)
    }

    fn body(mut self, ctype: Option<&str>, body: impl AsRef<[u8]>) -> Req {
        self.ctype = ctype.map(str::to_string);
        self.body = Some(body.as_ref().to_vec());
        self
    }

    fn header(mut self, line: &str) -> Req {
        self.headers.push(line.to_string());
        self
    }

    fn auth(mut self, value: Option<&str>) -> Req {
        self.auth = value.map(str::to_string);
        self
    }

    fn keep_alive(mut self) -> Req {
        self.close = false;
        self
    }

    fn build(&self, v: &Vars) -> Vec<u8> {
        let mut head = Vec::new();
        head.extend_from_slice(self.method.as_bytes());
        head.push(b' ');
        head.extend_from_slice(&self.target);
        head.push(b' ');
        head.extend_from_slice(self.version.as_bytes());
        head.extend_from_slice(b"\r\nHost: {HOST}\r\n");
        if let Some(a) = &self.auth {
            head.extend_from_slice(format!("Authorization: {a}\r\n").as_bytes());
        }
        for h in &self.headers {
            head.extend_from_slice(format!("{h}\r\n").as_bytes());
        }
        if let Some(t) = &self.ctype {
            head.extend_from_slice(format!("Content-Type: {t}\r\n").as_bytes());
        }
        if self.body.is_some() {
            head.extend_from_slice(b"Content-Length: {CL}\r\n");
        }
        if self.close {
            head.extend_from_slice(b"Connection: close\r\n");
        }
        head.extend_from_slice(b"\r\n");
        if let Some(b) = &self.body {
            head.extend_from_slice(b);
        }
        fill(&head, v)
    }
}

/// Builds the bytes of an attempt: one write per step.
type Build = Box<dyn Fn(&Vars) -> Vec<Vec<u8>>>;

/// One bypass attempt.
struct Attempt {
    name: String,
    build: Build,
    /// Complete replies to wait for (more than one for pipelining).
    replies: usize,
    /// Indices of replies that answer harmless requests (pipelining, smuggling) and may be
    /// 2xx; the state checks decide whether a smuggled request got through.
    benign: &'static [usize],
}

impl Attempt {
    fn req(name: impl Into<String>, req: Req) -> Attempt {
        Attempt {
            name: name.into(),
            build: Box::new(move |v| vec![req.build(v)]),
            replies: 1,
            benign: &[],
        }
    }

    /// A request written out by hand (placeholders filled, `{CL}` computed).
    fn raw(name: &str, template: &str) -> Attempt {
        let t = template.as_bytes().to_vec();
        Attempt {
            name: name.into(),
            build: Box::new(move |v| vec![fill(&t, v)]),
            replies: 1,
            benign: &[],
        }
    }

    /// Writes built by `build` (each after the previous one was answered), read until
    /// `replies` answers came; the replies at `benign` may be 2xx.
    fn custom(
        name: &str,
        replies: usize,
        benign: &'static [usize],
        build: impl Fn(&Vars) -> Vec<Vec<u8>> + 'static,
    ) -> Attempt {
        Attempt {
            name: name.into(),
            build: Box::new(build),
            replies,
            benign,
        }
    }

    /// The first request is harmless (its reply may be 2xx); wait for `replies` answers.
    fn benign_first(mut self, replies: usize) -> Attempt {
        self.benign = &[0];
        self.replies = replies;
        self
    }
}

// ---------------------------------------------------------------------------------------------
// The running demo and its state checks
// ---------------------------------------------------------------------------------------------

/// A demo gateway with bob linked to SCIM and sessions for bob, carol and the admin.
struct World {
    gw: Gateway,
    v: Vars,
}

fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl World {
    fn new() -> World {
        let gw = Gateway::demo();
        let id = link_by_scim(&gw, "bob@acme.test");
        let bob = gw.login("bob@acme.test");
        let carol = gw.login("carol@acme.test");
        let admin = gw.login("admin@acme.test");
        let me = |token: &str| {
            let auth = format!("Bearer {token}");
            let r = gw.request("GET", "/api/me", &[("Authorization", auth.as_str())], None);
            assert_eq!(r.status, 200, "{}", r.text());
            id_text(&r.json()["id"])
        };
        assert_eq!(me(&bob), id, "bob's SCIM id is his backend id");
        let cid = me(&carol);
        let aid = me(&admin);
        let v = Vars {
            host: gw.addr.to_string(),
            bob,
            carol,
            admin,
            id,
            cid,
            aid,
        };
        World { gw, v }
    }

    /// One request with `Connection: close`; `None` when no answer came.
    fn call(
        &self,
        method: &str,
        target: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Option<Reply> {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut req = Req::new(method, target).auth(auth.as_deref());
        if let Some(b) = body {
            req = req.json(b);
        }
        raw_opt(self.gw.addr, &req.build(&self.v))
    }

    fn login(&self, email: &str) -> Result<String, String> {
        let body = serde_json::json!({"email": email, "password": PASSWORD}).to_string();
        match self.call("POST", "/api/login", None, Some(&body)) {
            Some(r) if r.status == 200 => r.json()["session"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("login of {email} answered {}", r.text())),
            Some(r) => Err(format!(
                "{email} can no longer log in with the demo password ({} {})",
                r.status,
                r.text()
            )),
            None => Err(format!("login of {email}: no answer")),
        }
    }

    /// Checks that member `id` is still `email` with the demo password and still in team acme.
    fn check_member(&self, email: &str, id: &str) -> Result<(), String> {
        let path = format!("/api/teams/acme/members/{id}");
        match self.call("GET", &path, Some(&self.v.admin), None) {
            Some(r) if r.status == 200 => {
                let now = r.json()["email"].clone();
                if now != email {
                    return Err(format!("member {id}'s email changed from {email} to {now}"));
                }
            }
            Some(r) if r.status == 404 => {
                return Err(format!("{email} (id {id}) is no longer a member of acme"))
            }
            Some(r) => {
                return Err(format!(
                    "the admin cannot read member {id}: {} {}",
                    r.status,
                    r.text()
                ))
            }
            None => return Err(format!("GET {path}: no answer")),
        }
        let session = self.login(email)?;
        match self.call("GET", "/api/me", Some(&session), None) {
            Some(r) if r.status == 200 && r.json()["email"] == email => Ok(()),
            Some(r) => Err(format!(
                "GET /api/me as {email} answered {} {}",
                r.status,
                r.text()
            )),
            None => Err(format!("GET /api/me as {email}: no answer")),
        }
    }

    fn check_bob(&self) -> Result<(), String> {
        self.check_member("bob@acme.test", &self.v.id)
    }

    /// Bob, carol and the admin are all unchanged.
    fn check_all(&self) -> Result<(), String> {
        let mut errs = Vec::new();
        for (email, id) in [
            ("bob@acme.test", &self.v.id),
            ("carol@acme.test", &self.v.cid),
            ("admin@acme.test", &self.v.aid),
        ] {
            if let Err(e) = self.check_member(email, id) {
                errs.push(e);
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("; "))
        }
    }

    /// The request as it went out, sessions replaced by names.
    fn display(&self, bytes: &[u8]) -> String {
        let mut b = bytes.to_vec();
        for (tok, name) in [
            (&self.v.bob, "<bob-session>"),
            (&self.v.carol, "<carol-session>"),
            (&self.v.admin, "<admin-session>"),
        ] {
            b = replace(&b, tok.as_bytes(), name.as_bytes());
        }
        shown(&b, 600)
    }
}

/// Runs a family of attempts against one demo; every attempt must be refused and leave the state
/// unchanged (`others`: carol's and the admin's too). After a state change the demo is replaced
/// so later attempts are judged on a clean state. Fails naming every attempt that got through.
fn run_family(family: &str, attempts: Vec<Attempt>, others: bool) {
    let mut w = World::new();
    let mut failures = Vec::new();
    for a in &attempts {
        let steps = (a.build)(&w.v);
        let out = exchange(w.gw.addr, &steps, a.replies);
        let mut problems = Vec::new();
        for (i, r) in out.replies.iter().enumerate() {
            if (200..300).contains(&r.status) && !a.benign.contains(&i) {
                problems.push(format!(
                    "reply #{} is a success: {} {}",
                    i + 1,
                    r.status,
                    shown(&r.body, 200)
                ));
            }
        }
        let state = if others { w.check_all() } else { w.check_bob() };
        let changed = state.is_err();
        if let Err(e) = state {
            problems.push(format!("STATE CHANGED: {e}"));
        }
        if !problems.is_empty() {
            let statuses: Vec<String> = out.replies.iter().map(|r| r.status.to_string()).collect();
            failures.push(format!(
                "[{family}] {}: {}\n      request: {}\n      replies: [{}]{}",
                a.name,
                problems.join("; "),
                steps
                    .iter()
                    .map(|s| w.display(s))
                    .collect::<Vec<_>>()
                    .join("\n      then, on the same connection: "),
                statuses.join(", "),
                out.garbled
                    .map(|g| format!(" then {g}"))
                    .unwrap_or_default()
            ));
        }
        if changed {
            w = World::new();
        }
    }
    // Anything processed late (after its connection closed) shows up here.
    std::thread::sleep(Duration::from_millis(200));
    let last = if others { w.check_all() } else { w.check_bob() };
    if let Err(e) = last {
        failures.push(format!(
            "[{family}] after the last attempt: STATE CHANGED: {e}"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {} {family} attempts got through or changed state:\n{}",
        failures.len(),
        attempts.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Action {
    Password,
    Email,
    Leave,
    Profile,
}

fn action(kind: Action, target: &[u8]) -> Attempt {
    let req = match kind {
        Action::Password => Req::new("PUT", target).json("{PW_JSON}"),
        Action::Email => Req::new("PUT", target).json("{EMAIL_JSON}"),
        Action::Leave => Req::new("DELETE", target),
        Action::Profile => Req::new("PATCH", target).json("{PROFILE_JSON}"),
    };
    Attempt::req(format!("{} {}", req.method, shown(target, 200)), req)
}

fn path_attempts() -> Vec<Attempt> {
    use Action::*;
    let targets: &[(Action, &[u8])] = &[
        // percent-encoded letters
        (Password, b"/api/me/%70assword"),
        (Password, b"/api/%6De/password"),
        (Password, b"/%61pi/me/password"),
        (Password, b"/api/me/p%61ssw%6Frd"),
        (Email, b"/api/me/%65mail"),
        (Leave, b"/api/teams/acme/members/%6de"),
        (Profile, b"/api/%75sers/{ID}"),
        // encoded slashes
        (Password, b"/api/me%2fpassword"),
        (Password, b"/api/me%2Fpassword"),
        (Password, b"/api%2Fme%2Fpassword"),
        (Email, b"/api/me%2Femail"),
        (Leave, b"/api/teams/acme/members%2fme"),
        (Profile, b"/api/users%2f{ID}"),
        // backslashes
        (Password, b"/api\\me\\password"),
        (Password, b"/api/me\\password"),
        (Password, b"/api/me%5cpassword"),
        (Password, b"/api/me%5Cpassword"),
        (Password, b"/api/x%5c..%5cme/password"),
        // dot segments
        (Password, b"/api/x/../me/password"),
        (Password, b"/api/./me/password"),
        (Password, b"/api/x/%2e%2e/me/password"),
        (Password, b"/api/x/%2E%2E/me/password"),
        (Password, b"/api/%2e/me/password"),
        (Password, b"/api/%2E/me/password"),
        (Password, b"/api/x/.%2e/me/password"),
        (Password, b"/api/x/%2e./me/password"),
        (Password, b"/api/me/password/x/.."),
        (Password, b"/api/me/password/."),
        (Password, b"/api/me/x/%2e%2e/password"),
        (Password, b"/api/me/password/..."),
        (Email, b"/api/x/../me/email"),
        (Leave, b"/api/teams/acme/x/../members/me"),
        (Leave, b"/api/teams/acme/members/./me"),
        (Profile, b"/api/users/x/../{ID}"),
        // double encoding
        (Password, b"/api/me%252fpassword"),
        (Password, b"/api/me/%2570assword"),
        (Password, b"/api/x/%252e%252e/me/password"),
        (Password, b"/api/me/%25%37%30assword"),
        // ; matrix parameters
        (Password, b"/api/me;x=1/password"),
        (Password, b"/api/me/password;"),
        (Password, b"/api/me/password;x=1"),
        (Password, b"/api/me/password%3b"),
        (Password, b"/api/me/password%3Bjsessionid=1"),
        (Email, b"/api/me/email;"),
        (Leave, b"/api/teams/acme/members/me;"),
        (Profile, b"/api/users/{ID};"),
        // repeated slashes
        (Password, b"//api/me/password"),
        (Password, b"///api/me/password"),
        (Password, b"/api//me/password"),
        (Password, b"/api/me//password"),
        (Leave, b"/api/teams//acme/members/me"),
        (Profile, b"//api/users/{ID}"),
        // trailing slash and dot, format suffix
        (Password, b"/api/me/password/"),
        (Password, b"/api/me/password//"),
        (Password, b"/api/me/password."),
        (Password, b"/api/me/password%2e"),
        (Password, b"/api/me/password.json"),
        (Email, b"/api/me/email/"),
        (Leave, b"/api/teams/acme/members/me/"),
        (Profile, b"/api/users/{ID}/"),
        (Profile, b"/api/users/{ID}.json"),
        // case
        (Password, b"/API/ME/PASSWORD"),
        (Password, b"/api/Me/Password"),
        (Email, b"/api/me/EMAIL"),
        (Leave, b"/API/TEAMS/ACME/MEMBERS/ME"),
        (Profile, b"/API/USERS/{ID}"),
        // non-UTF-8 and overlong UTF-8, look-alikes, IIS %u
        (Password, b"/api/me/password%ff"),
        (Password, b"/api/me/password\xff"),
        (Password, b"/api/me%c0%afpassword"),
        (Password, b"/api/x/%c0%ae%c0%ae/me/password"),
        (Password, b"/api/me/%ef%bd%90assword"),
        (Password, b"/api/me/%u0070assword"),
        // NUL, control characters, tab and space
        (Password, b"/api/me/password%00"),
        (Password, b"/api/me/password%00.json"),
        (Password, b"/api/me/password%09"),
        (Password, b"/api/me/password%0d%0a"),
        (Password, b"/api/me/password%20"),
        (Password, b"/api/me/%20password"),
        (Password, b"/api/me/pass\tword"),
        (Password, b"/api/me/password /x"),
        (Email, b"/api/me/e%6dail%00"),
        (Leave, b"/api/teams/acme/members/me%00"),
        (Profile, b"/api/users/{ID}%00"),
        (Profile, b"/api/users/{ID}%20"),
        // fragments and encoded delimiters
        (Password, b"/api/me/password#frag"),
        (Password, b"/api/me/password%23frag"),
        (Password, b"/api/me/password%3f"),
        (Leave, b"/api/teams/acme/members/me#x"),
        // ids: leading zeros, encoded digits, `me` spellings
        (Profile, b"/api/users/0{ID}"),
        (Profile, b"/api/users/0000{ID}"),
        (Profile, b"/api/users/%30{ID}"),
        (Profile, b"/api/users/+{ID}"),
        (Leave, b"/api/teams/acme/members/{ID}"),
        (Leave, b"/api/teams/acme/members/000{ID}"),
        (Leave, b"/api/teams/acme/members/%30{ID}"),
        (Leave, b"/api/teams/acme/members/ME"),
        (Leave, b"/api/teams/acme/members/Me"),
        // absolute form, host disagreeing with Host
        (Password, b"http://evil.example/api/me/password"),
        (Password, b"HTTP://EVIL.EXAMPLE/api/me/password"),
        (Password, b"http://evil.example:80/api/me/password"),
        (Password, b"http://{HOST}@evil.example/api/me/password"),
        (Email, b"http://evil.example/api/me/email"),
        (Leave, b"http://evil.example/api/teams/acme/members/me"),
        (Profile, b"http://evil.example/api/users/{ID}"),
        // absolute form agreeing with Host: still the guarded route
        (Password, b"http://{HOST}/api/me/password"),
        (Password, b"http://{HOST}/api/me/%70assword"),
        (Password, b"https://{HOST}/api/me/password"),
        (Leave, b"http://{HOST}/api/teams/acme/members/me"),
        (Profile, b"http://{HOST}/api/users/{ID}"),
    ];
    targets.iter().map(|(k, t)| action(*k, t)).collect()
}

fn method_attempts() -> Vec<Attempt> {
    let pw = |m: &str, t: &str| Req::new(m, t).json("{PW_JSON}");
    let form = Some("application/x-www-form-urlencoded");
    let pw_form = format!("_method=PUT&current_password={PASSWORD}&new_password=pwned-Passw0rd%21");
    let pw_with_method = format!(
        r#"{{"_method":"PUT","current_password":"{PASSWORD}","new_password":"pwned-Passw0rd!"}}"#
    );
    let list: Vec<(&str, Req)> = vec![
        (
            "POST password + X-HTTP-Method-Override: PUT",
            pw("POST", "/api/me/password").header("X-HTTP-Method-Override: PUT"),
        ),
        (
            "POST email + X-HTTP-Method-Override: PUT",
            Req::new("POST", "/api/me/email")
                .json("{EMAIL_JSON}")
                .header("X-HTTP-Method-Override: PUT"),
        ),
        (
            "POST users/{bob} + X-HTTP-Method-Override: PATCH",
            Req::new("POST", "/api/users/{ID}")
                .json("{PROFILE_JSON}")
                .header("X-HTTP-Method-Override: PATCH"),
        ),
        (
            "POST members/me + X-HTTP-Method-Override: DELETE",
            Req::new("POST", "/api/teams/acme/members/me").header("X-HTTP-Method-Override: DELETE"),
        ),
        (
            "GET members/me + X-HTTP-Method-Override: DELETE",
            Req::new("GET", "/api/teams/acme/members/me").header("X-HTTP-Method-Override: DELETE"),
        ),
        (
            "POST password + X-HTTP-Method: PUT",
            pw("POST", "/api/me/password").header("X-HTTP-Method: PUT"),
        ),
        (
            "POST members/me + X-HTTP-Method: DELETE",
            Req::new("POST", "/api/teams/acme/members/me").header("X-HTTP-Method: DELETE"),
        ),
        (
            "POST password + X-Method-Override: PUT",
            pw("POST", "/api/me/password").header("X-Method-Override: PUT"),
        ),
        (
            "POST password + x_http_method_override: PUT",
            pw("POST", "/api/me/password").header("x_http_method_override: PUT"),
        ),
        (
            "POST password?_method=PUT",
            pw("POST", "/api/me/password?_method=PUT"),
        ),
        (
            "POST email?_method=PUT",
            Req::new("POST", "/api/me/email?_method=PUT").json("{EMAIL_JSON}"),
        ),
        (
            "POST members/me?_method=DELETE",
            Req::new("POST", "/api/teams/acme/members/me?_method=DELETE"),
        ),
        (
            "POST users/{bob}?_method=PATCH",
            Req::new("POST", "/api/users/{ID}?_method=PATCH").json("{PROFILE_JSON}"),
        ),
        (
            "POST password?_METHOD=PUT",
            pw("POST", "/api/me/password?_METHOD=PUT"),
        ),
        (
            "POST password?%5fmethod=PUT",
            pw("POST", "/api/me/password?%5fmethod=PUT"),
        ),
        (
            "POST password?x=1;_method=PUT",
            pw("POST", "/api/me/password?x=1;_method=PUT"),
        ),
        (
            "POST password, form body _method=PUT",
            Req::new("POST", "/api/me/password").body(form, pw_form.as_bytes()),
        ),
        (
            "POST members/me, form body _method=DELETE",
            Req::new("POST", "/api/teams/acme/members/me").body(form, "_method=DELETE"),
        ),
        (
            "POST password, JSON body _method=PUT",
            Req::new("POST", "/api/me/password").json(&pw_with_method),
        ),
        (
            "POST users/{bob}, JSON body _method=PATCH",
            Req::new("POST", "/api/users/{ID}")
                .json(&format!(r#"{{"_method":"PATCH","email":"{PWNED}"}}"#)),
        ),
        ("lower-case put password", pw("put", "/api/me/password")),
        ("mixed-case Put password", pw("Put", "/api/me/password")),
        (
            "mixed-case pUT email",
            Req::new("pUT", "/api/me/email").json("{EMAIL_JSON}"),
        ),
        (
            "lower-case delete members/me",
            Req::new("delete", "/api/teams/acme/members/me"),
        ),
        (
            "lower-case patch users/{bob}",
            Req::new("patch", "/api/users/{ID}").json("{PROFILE_JSON}"),
        ),
    ];
    list.into_iter().map(|(n, r)| Attempt::req(n, r)).collect()
}

fn path_override_attempts() -> Vec<Attempt> {
    let list: Vec<(&str, Req)> = vec![
        (
            "PUT /api/x + X-Original-URL: /api/me/password",
            Req::new("PUT", "/api/x")
                .json("{PW_JSON}")
                .header("X-Original-URL: /api/me/password"),
        ),
        (
            "PUT /api/x + X-Rewrite-URL: /api/me/password",
            Req::new("PUT", "/api/x")
                .json("{PW_JSON}")
                .header("X-Rewrite-URL: /api/me/password"),
        ),
        (
            "PUT /api/x + x_original_url",
            Req::new("PUT", "/api/x")
                .json("{PW_JSON}")
                .header("x_original_url: /api/me/password"),
        ),
        (
            "PUT /api/me + X-Original-URL: /api/me/email",
            Req::new("PUT", "/api/me")
                .json("{EMAIL_JSON}")
                .header("X-Original-URL: /api/me/email"),
        ),
        (
            "PUT /api/login + x-rewrite-url: /api/me/email",
            Req::new("PUT", "/api/login")
                .json("{EMAIL_JSON}")
                .header("x-rewrite-url: /api/me/email"),
        ),
        (
            "DELETE members/0 + X-Original-URL: members/me",
            Req::new("DELETE", "/api/teams/acme/members/0")
                .header("X-Original-URL: /api/teams/acme/members/me"),
        ),
        (
            "DELETE members/0 + X-Rewrite-URL: members/me",
            Req::new("DELETE", "/api/teams/acme/members/0")
                .header("X-Rewrite-URL: /api/teams/acme/members/me"),
        ),
        (
            "PATCH users/0 + X-Original-URL: users/{bob}",
            Req::new("PATCH", "/api/users/0")
                .json("{PROFILE_JSON}")
                .header("X-Original-URL: /api/users/{ID}"),
        ),
        (
            "GET /api/me + X-Original-URL: /api/me/password",
            Req::new("GET", "/api/me").header("X-Original-URL: /api/me/password"),
        ),
    ];
    list.into_iter().map(|(n, r)| Attempt::req(n, r)).collect()
}

/// A gzip member holding `data` in one stored (uncompressed) deflate block.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(data.len()).expect("small");
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0x01];
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&u32::from(len).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn chunked(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn body_attempts() -> Vec<Attempt> {
    let json = Some("application/json");
    let form = Some("application/x-www-form-urlencoded");
    let email = email_json();
    let patch = |name: &str, ctype: Option<&str>, body: &[u8]| {
        Attempt::req(name, Req::new("PATCH", "/api/users/{ID}").body(ctype, body))
    };
    let j = |name: &str, body: String| patch(name, json, body.as_bytes());
    let big = format!(
        r#"{{"first_name":"x","pad":"{}","email":"{PWNED}"}}"#,
        "A".repeat(70_000)
    );
    let utf16: Vec<u8> = email.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(email.as_bytes());
    let mut deep = String::new();
    for _ in 0..100 {
        deep.push_str(r#"{"a":"#);
    }
    deep.push_str(&email);
    deep.push_str(&"}".repeat(100));
    let multipart = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\n{PWNED}\r\n--XyZ--\r\n"
    );
    vec![
        j(
            "duplicate key email (last wins)",
            format!(r#"{{"first_name":"x","email":"a@evil.test","email":"{PWNED}"}}"#),
        ),
        j(
            "duplicate key, first is the current email",
            format!(r#"{{"email":"bob@acme.test","email":"{PWNED}"}}"#),
        ),
        j(
            "duplicate key email / Email",
            format!(r#"{{"Email":"bob@acme.test","email":"{PWNED}"}}"#),
        ),
        j(
            r#"unicode-escaped key "em\u0061il""#,
            format!(r#"{{"em\u0061il":"{PWNED}"}}"#),
        ),
        j(
            "fully escaped key",
            format!(r#"{{"\u0065\u006d\u0061\u0069\u006c":"{PWNED}"}}"#),
        ),
        j(
            r#"escaped-slash key "em\/ail""#,
            format!(r#"{{"em\/ail":"{PWNED}"}}"#),
        ),
        j("key Email", format!(r#"{{"Email":"{PWNED}"}}"#)),
        j("key EMAIL", format!(r#"{{"EMAIL":"{PWNED}"}}"#)),
        j("key e_mail", format!(r#"{{"e_mail":"{PWNED}"}}"#)),
        j("key e-mail", format!(r#"{{"e-mail":"{PWNED}"}}"#)),
        j(
            "key with a leading space",
            format!(r#"{{" email":"{PWNED}"}}"#),
        ),
        j("fullwidth key", format!("{{\"\u{ff45}mail\":\"{PWNED}\"}}")),
        j(
            "nested user.email",
            format!(r#"{{"user":{{"email":"{PWNED}"}}}}"#),
        ),
        j(
            "email in an array of objects",
            format!(r#"{{"users":[{{"email":"{PWNED}"}}]}}"#),
        ),
        j(
            "nested profile.Email",
            format!(r#"{{"first_name":"x","profile":{{"Email":"{PWNED}"}}}}"#),
        ),
        j("email as an array", format!(r#"{{"email":["{PWNED}"]}}"#)),
        j("nesting deeper than the scanner allows", deep),
        patch("form-urlencoded email=", form, b"email=pwned%40evil.test"),
        patch(
            "form-urlencoded em%61il=",
            form,
            b"em%61il=pwned%40evil.test",
        ),
        patch(
            "form-urlencoded first_name & email",
            form,
            b"first_name=x&email=pwned%40evil.test",
        ),
        // The demo service, like many legacy frameworks, parses JSON whatever the label says.
        patch("JSON body labelled as a form", form, email.as_bytes()),
        patch(
            "JSON profile labelled as a form; charset=utf-8",
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            profile_json().as_bytes(),
        ),
        patch(
            "JSON body after blank lines, labelled as a form",
            form,
            format!("\r\n\t {email}").as_bytes(),
        ),
        patch(
            "JSON body labelled as a form, duplicate keys",
            form,
            format!(r#"{{"email":"bob@acme.test","email":"{PWNED}"}}"#).as_bytes(),
        ),
        Attempt::req(
            "Content-Encoding: gzip (real gzip)",
            Req::new("PATCH", "/api/users/{ID}")
                .body(json, gzip_stored(email.as_bytes()))
                .header("Content-Encoding: gzip"),
        ),
        Attempt::req(
            "Content-Encoding: GZIP over a plain body",
            Req::new("PATCH", "/api/users/{ID}")
                .json("{EMAIL_JSON}")
                .header("Content-Encoding: GZIP"),
        ),
        Attempt::req(
            "Content-Encoding: deflate",
            Req::new("PATCH", "/api/users/{ID}")
                .json("{EMAIL_JSON}")
                .header("Content-Encoding: deflate"),
        ),
        Attempt::req(
            "Content-Encoding: identity, gzip",
            Req::new("PATCH", "/api/users/{ID}")
                .body(json, gzip_stored(email.as_bytes()))
                .header("Content-Encoding: identity, gzip"),
        ),
        patch("UTF-8 byte order mark", json, &bom),
        j("top-level array", format!(r#"[{{"email":"{PWNED}"}}]"#)),
        j(
            "second JSON document after the object",
            format!(r#"{{"first_name":"x"}} {{"email":"{PWNED}"}}"#),
        ),
        j("trailing garbage", format!(r#"{{"email":"{PWNED}"}}xyz"#)),
        j(
            "JSON with a comment",
            format!(r#"{{"first_name":"x",/*c*/"email":"{PWNED}"}}"#),
        ),
        j("body larger than guard.max_body_bytes", big.clone()),
        Attempt::req(
            "chunked body larger than guard.max_body_bytes",
            Req::new("PATCH", "/api/users/{ID}")
                .auth(Some("Bearer {BOB}"))
                .header("Content-Type: application/json")
                .header("Transfer-Encoding: chunked")
                .body(
                    None,
                    chunked(&[&big.as_bytes()[..40_000], &big.as_bytes()[40_000..]]),
                ),
        )
        .no_length(),
        patch(
            "Content-Type: text/plain",
            Some("text/plain"),
            email.as_bytes(),
        ),
        patch("no Content-Type", None, email.as_bytes()),
        patch("empty Content-Type", Some(""), email.as_bytes()),
        patch(
            "charset=iso-8859-1",
            Some("application/json; charset=iso-8859-1"),
            email.as_bytes(),
        ),
        patch(
            "charset=utf-16 with a UTF-16LE body",
            Some("application/json; charset=utf-16"),
            &utf16,
        ),
        patch(
            "charset=utf-16 with a UTF-8 body",
            Some("application/json; charset=utf-16"),
            email.as_bytes(),
        ),
        patch(
            "multipart/form-data",
            Some("multipart/form-data; boundary=XyZ"),
            multipart.as_bytes(),
        ),
        patch(
            "Content-Type list json, text/plain",
            Some("application/json, text/plain"),
            email.as_bytes(),
        ),
        Attempt::req(
            "two Content-Type headers",
            Req::new("PATCH", "/api/users/{ID}")
                .body(json, email.as_bytes())
                .header("Content-Type: text/plain"),
        ),
        patch(
            "application/merge-patch+json",
            Some("application/merge-patch+json"),
            email.as_bytes(),
        ),
        patch(
            "APPLICATION/JSON",
            Some("APPLICATION/JSON"),
            email.as_bytes(),
        ),
        Attempt::req(
            "chunked JSON, key split across chunks",
            Req::new("PATCH", "/api/users/{ID}")
                .header("Content-Type: application/json")
                .header("Transfer-Encoding: chunked")
                .body(
                    None,
                    chunked(&[b"{\"first_name\":\"x\",\"em", b"ail\":\"pwned@evil.test\"}"]),
                ),
        )
        .no_length(),
        Attempt::req(
            "email in the query, harmless body",
            Req::new("PATCH", "/api/users/{ID}?email=pwned@evil.test")
                .json(r#"{"first_name":"x"}"#),
        ),
    ]
}

impl Attempt {
    /// Drops the `Content-Length` a [`Req`] body would get (the request frames itself).
    fn no_length(self) -> Attempt {
        let build = self.build;
        Attempt {
            build: Box::new(move |v| {
                build(v)
                    .into_iter()
                    .map(|bytes| {
                        let head_end = find(&bytes, b"\r\n\r\n").unwrap_or(bytes.len());
                        let (head, body) = bytes.split_at(head_end);
                        let head = String::from_utf8_lossy(head);
                        let kept: Vec<&str> = head
                            .split("\r\n")
                            .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"))
                            .collect();
                        let mut out = kept.join("\r\n").into_bytes();
                        out.extend_from_slice(body);
                        out
                    })
                    .collect()
            }),
            ..self
        }
    }
}

/// `GET /api/me` as `token` (a placeholder), keeping the connection open.
fn get_me(token: &str, v: &Vars) -> Vec<u8> {
    Req::new("GET", "/api/me")
        .auth(Some(&format!("Bearer {token}")))
        .keep_alive()
        .build(v)
}

/// Bob's PUT /api/me/password, closing the connection.
fn pw_req(v: &Vars) -> Vec<u8> {
    Req::new("PUT", "/api/me/password")
        .json("{PW_JSON}")
        .build(v)
}

/// Bob's profile update without email (allowed), keeping the connection open.
fn harmless_patch(v: &Vars) -> Vec<u8> {
    Req::new("PATCH", "/api/users/{ID}")
        .json(r#"{"first_name":"Mallory"}"#)
        .keep_alive()
        .build(v)
}

/// `GET /api/me` with `Content-Length: 4` and a chunked body whose one chunk is the leave
/// request: a front end honouring TE and a back end honouring CL disagree on where it ends.
fn te_cl_prefix(v: &Vars) -> Vec<u8> {
    let inner = fill(SMUGGLED_LEAVE.as_bytes(), v);
    let mut out = fill(b"GET /api/me HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {BOB}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", v);
    out.extend_from_slice(format!("{:x}\r\n", inner.len()).as_bytes());
    out.extend_from_slice(&inner);
    out.extend_from_slice(b"\r\n0\r\n\r\n");
    out
}

const SMUGGLED_LEAVE: &str = "DELETE /api/teams/acme/members/me HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {BOB}\r\nConnection: close\r\n\r\n";

fn header_attempts() -> Vec<Attempt> {
    let head = |line: &str, extra: &str, ctype: &str| {
        format!("{line} HTTP/1.1\r\nHost: {{HOST}}\r\n{extra}{ctype}Content-Length: {{CL}}\r\nConnection: close\r\n\r\n")
    };
    let json_ct = "Content-Type: application/json\r\n";
    let pw = |extra: &str| head("PUT /api/me/password", extra, json_ct) + "{PW_JSON}";
    let email = |extra: &str| head("PUT /api/me/email", extra, json_ct) + "{EMAIL_JSON}";
    let leave = |extra: &str| head("DELETE /api/teams/acme/members/me", extra, "");
    let profile = |extra: &str| head("PATCH /api/users/{ID}", extra, json_ct) + "{PROFILE_JSON}";
    let bob = "Authorization: Bearer {BOB}\r\n";
    let bob_carol = "Authorization: Bearer {BOB}\r\nAuthorization: Bearer {CAROL}\r\n";
    let carol_bob = "Authorization: Bearer {CAROL}\r\nAuthorization: Bearer {BOB}\r\n";
    let profile_chunked =
        String::from_utf8(chunked(&[profile_json().as_bytes()])).unwrap_or_default();
    let mut list = vec![
        Attempt::raw("two Authorization (bob, carol): password", &pw(bob_carol)),
        Attempt::raw("two Authorization (carol, bob): password", &pw(carol_bob)),
        Attempt::raw("two Authorization (bob, carol): leave", &leave(bob_carol)),
        Attempt::raw("two Authorization (carol, bob): leave", &leave(carol_bob)),
        Attempt::raw("two Authorization (carol, bob): email", &email(carol_bob)),
        Attempt::raw("two Authorization (carol, bob): profile", &profile(carol_bob)),
        Attempt::raw(
            "lower-case duplicate authorization (carol, bob): password",
            &pw("authorization: Bearer {CAROL}\r\nAUTHORIZATION: Bearer {BOB}\r\n"),
        ),
        Attempt::raw(
            "Authorization: Bearer carol, Bearer bob (one header)",
            &pw("Authorization: Bearer {CAROL}, Bearer {BOB}\r\n"),
        ),
        Attempt::raw(
            "Authorization bob + Cookie session=carol: password",
            &pw("Authorization: Bearer {BOB}\r\nCookie: session={CAROL}\r\n"),
        ),
        Attempt::raw(
            "Cookie sid=carol + Authorization bob: leave",
            &leave("Cookie: sid={CAROL}; session={CAROL}\r\nAuthorization: Bearer {BOB}\r\n"),
        ),
        Attempt::raw("Cookie session=bob only: password", &pw("Cookie: session={BOB}\r\n")),
        Attempt::raw(
            "two Host headers (same, evil)",
            &pw("Host: evil.example\r\nAuthorization: Bearer {BOB}\r\n"),
        ),
        Attempt::raw(
            "two Host headers + absolute form naming the second",
            &(head(
                "PUT http://evil.example/api/me/password",
                "Host: evil.example\r\nAuthorization: Bearer {BOB}\r\n",
                json_ct,
            ) + "{PW_JSON}"),
        ),
        Attempt::raw(
            "no Host header",
            "PUT /api/me/password HTTP/1.1\r\nAuthorization: Bearer {BOB}\r\nContent-Type: application/json\r\nContent-Length: {CL}\r\nConnection: close\r\n\r\n{PW_JSON}",
        ),
        // CL + TE on guarded routes
        Attempt::raw(
            "CL + TE chunked on PUT email",
            &(head(
                "PUT /api/me/email",
                "Authorization: Bearer {BOB}\r\nTransfer-Encoding: chunked\r\n",
                json_ct,
            ) + &String::from_utf8(chunked(&[email_json().as_bytes()])).unwrap_or_default()),
        ),
        Attempt::raw(
            "CL + TE chunked on PATCH profile",
            &(head(
                "PATCH /api/users/{ID}",
                "Authorization: Bearer {BOB}\r\nTransfer-Encoding: chunked\r\n",
                json_ct,
            ) + &profile_chunked),
        ),
        Attempt::raw(
            "TE chunked + CL (TE first) on DELETE leave",
            "DELETE /api/teams/acme/members/me HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {BOB}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\nConnection: close\r\n\r\n0\r\n\r\n",
        ),
        Attempt::raw(
            "duplicate Content-Length (same)",
            &(head("PATCH /api/users/{ID}", "Authorization: Bearer {BOB}\r\nContent-Length: {CL}\r\n", json_ct)
                + "{PROFILE_JSON}"),
        ),
        Attempt::raw(
            "duplicate Content-Length (2, n)",
            &(head("PATCH /api/users/{ID}", "Authorization: Bearer {BOB}\r\nContent-Length: 2\r\n", json_ct)
                + "{PROFILE_JSON}"),
        ),
        Attempt::raw(
            "Content-Length: n, n",
            "PATCH /api/users/{ID} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {BOB}\r\nContent-Type: application/json\r\nContent-Length: {CL}, {CL}\r\nConnection: close\r\n\r\n{PROFILE_JSON}",
        ),
        Attempt::raw(
            "Content-Length: 5, 5",
            "PUT /api/me/email HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {BOB}\r\nContent-Type: application/json\r\nContent-Length: 5, 5\r\nConnection: close\r\n\r\n{\"a\":",
        ),
        Attempt::raw(
            "Content-Length: +n",
            "PATCH /api/users/{ID} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {BOB}\r\nContent-Type: application/json\r\nContent-Length: +{CL}\r\nConnection: close\r\n\r\n{PROFILE_JSON}",
        ),
        Attempt::raw(
            "HTTP/1.0 with Transfer-Encoding: chunked (PATCH)",
            &format!("PATCH /api/users/{{ID}} HTTP/1.0\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{BOB}}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{profile_chunked}"),
        ),
        Attempt::raw(
            "HTTP/1.0 with Transfer-Encoding: chunked (DELETE leave)",
            "DELETE /api/teams/acme/members/me HTTP/1.0\r\nHost: {HOST}\r\nAuthorization: Bearer {BOB}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        Attempt::raw(
            "HTTP/1.0 PUT password",
            "PUT /api/me/password HTTP/1.0\r\nHost: {HOST}\r\nAuthorization: Bearer {BOB}\r\nContent-Type: application/json\r\nContent-Length: {CL}\r\n\r\n{PW_JSON}",
        ),
    ];
    for te in [
        "xchunked",
        "chunked, identity",
        "identity, chunked",
        "gzip, chunked",
        "Chunked",
        "\tchunked",
    ] {
        list.push(Attempt::raw(
            &format!("Transfer-Encoding: {} on PATCH profile", te.replace('\t', "\\t")),
            &format!("PATCH /api/users/{{ID}} HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{BOB}}\r\nContent-Type: application/json\r\nTransfer-Encoding: {te}\r\nConnection: close\r\n\r\n{profile_chunked}"),
        ));
    }
    list.extend([
        Attempt::raw(
            "two Transfer-Encoding: chunked headers",
            &format!("PATCH /api/users/{{ID}} HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{BOB}}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{profile_chunked}"),
        ),
        Attempt::raw(
            "Transfer-Encoding with a space before the colon + CL",
            &format!("PATCH /api/users/{{ID}} HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{BOB}}\r\nContent-Type: application/json\r\nTransfer-Encoding : chunked\r\nContent-Length: {{CL}}\r\nConnection: close\r\n\r\n{profile_chunked}"),
        ),
        Attempt::raw(
            "obs-fold hiding X-HTTP-Method-Override: DELETE",
            "GET /api/teams/acme/members/me HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {BOB}\r\nX-Note: a\r\n X-HTTP-Method-Override: DELETE\r\nConnection: close\r\n\r\n",
        ),
        Attempt::raw(
            "obs-fold continuing Transfer-Encoding",
            &format!("PATCH /api/users/{{ID}} HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{BOB}}\r\nContent-Type: application/json\r\nTransfer-Encoding: identity\r\n chunked\r\nConnection: close\r\n\r\n{profile_chunked}"),
        ),
        Attempt::raw(
            "obs-fold continuing Authorization (carol, then bob)",
            &pw("Authorization: Bearer {CAROL}\r\n Bearer {BOB}\r\n"),
        ),
        Attempt::raw("Expect: 100-continue on PUT password", &pw(&format!("{bob}Expect: 100-continue\r\n"))),
        Attempt::raw(
            "Expect: 100-continue on PATCH profile",
            &profile(&format!("{bob}Expect: 100-continue\r\n")),
        ),
        Attempt::raw(
            "request line without a version",
            "DELETE /api/teams/acme/members/me\r\nHost: {HOST}\r\nAuthorization: Bearer {BOB}\r\n\r\n",
        ),
        Attempt::raw(
            "HTTP/1.2",
            "DELETE /api/teams/acme/members/me HTTP/1.2\r\nHost: {HOST}\r\nAuthorization: Bearer {BOB}\r\nConnection: close\r\n\r\n",
        ),
        // smuggling and pipelining, in one write (pingora drops bytes pipelined behind a
        // request, so these mostly show that nothing behind the first request runs unchecked)
        Attempt::raw(
            "CL.TE: GET /api/me with CL and TE, leave request after the chunked end",
            &format!("GET /api/me HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{BOB}}\r\nContent-Length: {{CL}}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{SMUGGLED_LEAVE}"),
        )
        .benign_first(2),
        Attempt::custom(
            "TE.CL: GET /api/me with CL: 4 and a chunk holding the leave request",
            2,
            &[0],
            |v| vec![te_cl_prefix(v)],
        ),
        Attempt::raw(
            "leave request inside a GET /api/me body (CL covers it)",
            &format!("GET /api/me HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{BOB}}\r\nContent-Length: {{CL}}\r\n\r\n{SMUGGLED_LEAVE}"),
        )
        .benign_first(2),
        Attempt::raw(
            "leave request after the JSON inside a guarded PATCH body",
            &format!("PATCH /api/users/{{ID}} HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: Bearer {{BOB}}\r\nContent-Type: application/json\r\nContent-Length: {{CL}}\r\n\r\n{{\"first_name\":\"x\"}}\r\n\r\n{SMUGGLED_LEAVE}"),
        ),
        Attempt::custom(
            "pipelined: harmless PATCH profile + leave",
            2,
            &[0],
            |v| vec![[harmless_patch(v), fill(SMUGGLED_LEAVE.as_bytes(), v)].concat()],
        ),
        Attempt::custom("pipelined: GET /api/me + PUT password", 2, &[0], |v| {
            vec![[get_me("{BOB}", v), pw_req(v)].concat()]
        }),
        Attempt::custom("pipelined: carol's GET /api/me + bob's leave", 2, &[0], |v| {
            vec![[get_me("{CAROL}", v), fill(SMUGGLED_LEAVE.as_bytes(), v)].concat()]
        }),
        // the same on keep-alive: the second request is written once the first was answered
        Attempt::custom("keep-alive: harmless PATCH profile, then leave", 2, &[0], |v| {
            vec![harmless_patch(v), fill(SMUGGLED_LEAVE.as_bytes(), v)]
        }),
        Attempt::custom("keep-alive: GET /api/me, then PUT password", 2, &[0], |v| {
            vec![get_me("{BOB}", v), pw_req(v)]
        }),
        Attempt::custom("keep-alive: GET /api/me, then PUT email", 2, &[0], |v| {
            vec![
                get_me("{BOB}", v),
                Req::new("PUT", "/api/me/email").json("{EMAIL_JSON}").build(v),
            ]
        }),
        Attempt::custom("keep-alive: carol's GET /api/me, then bob's leave", 2, &[0], |v| {
            vec![get_me("{CAROL}", v), fill(SMUGGLED_LEAVE.as_bytes(), v)]
        }),
        Attempt::custom(
            "keep-alive: carol's allowed profile PATCH, then bob's email PATCH",
            2,
            &[0],
            |v| {
                vec![
                    Req::new("PATCH", "/api/users/{CID}")
                        .auth(Some("Bearer {CAROL}"))
                        .json(r#"{"first_name":"Caroline"}"#)
                        .keep_alive()
                        .build(v),
                    Req::new("PATCH", "/api/users/{ID}").json("{PROFILE_JSON}").build(v),
                ]
            },
        ),
        Attempt::custom(
            "keep-alive: carol's allowed profile PATCH, then PUT password without credentials",
            2,
            &[0],
            |v| {
                vec![
                    Req::new("PATCH", "/api/users/{CID}")
                        .auth(Some("Bearer {CAROL}"))
                        .json(r#"{"first_name":"Caroline"}"#)
                        .keep_alive()
                        .build(v),
                    Req::new("PUT", "/api/me/password")
                        .auth(None)
                        .json("{PW_JSON}")
                        .build(v),
                ]
            },
        ),
        Attempt::custom(
            "keep-alive: refused PUT password, then PATCH email",
            2,
            &[],
            |v| {
                vec![
                    Req::new("PUT", "/api/me/password")
                        .json("{PW_JSON}")
                        .keep_alive()
                        .build(v),
                    Req::new("PATCH", "/api/users/{ID}").json("{PROFILE_JSON}").build(v),
                ]
            },
        ),
        Attempt::custom(
            "keep-alive: refused PUT password whose unread body is a leave request, then GET /api/me",
            2,
            &[1, 2],
            |v| {
                let inner = fill(SMUGGLED_LEAVE.as_bytes(), v);
                let inner = String::from_utf8_lossy(&inner).into_owned();
                vec![
                    Req::new("PUT", "/api/me/password")
                        .body(Some("application/json"), inner)
                        .keep_alive()
                        .build(v),
                    Req::new("GET", "/api/me").build(v),
                ]
            },
        ),
        // desync: the leftover of a CL/TE disagreement prefixes the next request
        Attempt::custom(
            "CL.TE desync: partial leave request left behind, then GET /api/me",
            2,
            &[0, 1],
            |v| {
                let partial = fill(b"DELETE /api/teams/acme/members/me HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {BOB}\r\nX-Ignore: ", v);
                let mut first = fill(b"GET /api/me HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {BOB}\r\nTransfer-Encoding: chunked\r\n", v);
                first.extend_from_slice(format!("Content-Length: {}\r\n\r\n0\r\n\r\n", 5 + partial.len()).as_bytes());
                first.extend_from_slice(&partial);
                vec![first, Req::new("GET", "/api/me").build(v)]
            },
        ),
        Attempt::custom(
            "TE.CL desync: chunk holding a leave request, then GET /api/me",
            2,
            &[0, 1],
            |v| vec![te_cl_prefix(v), Req::new("GET", "/api/me").build(v)],
        ),
    ]);
    list
}

// ---------------------------------------------------------------------------------------------
// Malformed chunked framing
// ---------------------------------------------------------------------------------------------

/// Chunked bodies carrying `data` whose framing no strict reader accepts: chunk sizes that
/// overflow, carry a prefix, a sign or whitespace, or are followed by junk or a bare LF, data
/// longer than its chunk, and a broken size after a well-formed chunk holding all the data.
fn malformed_chunked(data: &str) -> Vec<(&'static str, String)> {
    let n = data.len();
    let end = "\r\n0\r\n\r\n";
    vec![
        (
            "size overflowing 64 bits",
            format!("1{}\r\n{data}{end}", "f".repeat(16)),
        ),
        ("size 2^64-1", format!("ffffffffffffffff\r\n{data}{end}")),
        ("0x prefix", format!("0x{n:x}\r\n{data}{end}")),
        ("+ sign", format!("+{n:x}\r\n{data}{end}")),
        ("- sign", format!("-{n:x}\r\n{data}{end}")),
        ("leading space", format!(" {n:x}\r\n{data}{end}")),
        ("junk after the size", format!("{n:x}zz\r\n{data}{end}")),
        ("bare LF after the size", format!("{n:x}\n{data}{end}")),
        (
            "data longer than its chunk",
            format!("{:x}\r\n{data}{end}", n - 3),
        ),
        (
            "junk size after a whole chunk",
            format!("{n:x}\r\n{data}\r\nzz\r\n\r\n"),
        ),
        (
            "overflowing size after a whole chunk",
            format!("{n:x}\r\n{data}\r\n{}\r\nxx{end}", "f".repeat(17)),
        ),
    ]
}

/// One way through the gateway for a chunked request: the request head (placeholders
/// filled), the body data, and the state that must hold afterwards.
struct FramedRoute {
    what: &'static str,
    head: String,
    data: String,
    unchanged: fn(&World) -> Result<(), String>,
}

/// No member with the email the proxied and SCIM attempts try to create exists.
fn no_mallory(w: &World) -> Result<(), String> {
    let path = "/api/teams/acme/members?email=mallory%40evil.test";
    match w.call("GET", path, Some(&w.v.admin), None) {
        Some(r) if r.status == 200 && r.json()["total"] == 0 => Ok(()),
        Some(r) => Err(format!("mallory@evil.test: {} {}", r.status, r.text())),
        None => Err("listing members: no answer".into()),
    }
}

fn framed_routes(w: &World) -> Vec<FramedRoute> {
    let chunked_head = |line: &str, auth: &str, ctype: &str| {
        format!("{line} HTTP/1.1\r\nHost: {{HOST}}\r\nAuthorization: {auth}\r\nContent-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n\r\n")
    };
    let scim_user = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"mallory@evil.test","name":{"givenName":"M","familyName":"X"}}"#;
    vec![
        FramedRoute {
            what: "guarded route, unmanaged caller",
            head: chunked_head(
                "PATCH /api/users/{CID}",
                "Bearer {CAROL}",
                "application/json",
            ),
            data: email_json(),
            unchanged: |w| w.check_member("carol@acme.test", &w.v.cid),
        },
        FramedRoute {
            what: "guarded route, managed caller",
            head: chunked_head("PATCH /api/users/{ID}", "Bearer {BOB}", "application/json"),
            data: profile_json(),
            unchanged: World::check_bob,
        },
        FramedRoute {
            what: "proxied route",
            head: chunked_head(
                "POST /api/teams/acme/members",
                "Bearer {ADMIN}",
                "application/json",
            ),
            data: r#"{"email":"mallory@evil.test","first_name":"M"}"#.into(),
            unchanged: no_mallory,
        },
        FramedRoute {
            what: "SCIM route",
            head: chunked_head(
                "POST /scim/v2/Users",
                &format!("Bearer {}", w.gw.token),
                "application/scim+json",
            ),
            data: scim_user.into(),
            unchanged: no_mallory,
        },
    ]
}

/// A chunked body whose framing is malformed gets `400` and a closed connection on every way
/// through the gateway (guarded, proxied, SCIM), and nothing reaches the backend: the state
/// is unchanged, and a request pipelined behind it is never answered.
#[test]
fn malformed_chunked_framing_gets_400_and_a_closed_connection() {
    let w = World::new();
    let mut failures = Vec::new();
    for route in framed_routes(&w) {
        for (framing, body) in malformed_chunked(&route.data) {
            let mut bytes = fill(route.head.as_bytes(), &w.v);
            bytes.extend_from_slice(body.as_bytes());
            bytes.extend_from_slice(&get_me("{CAROL}", &w.v));
            let out = exchange(w.gw.addr, &[bytes], 2);
            let statuses: Vec<u16> = out.replies.iter().map(|r| r.status).collect();
            let closed = out.garbled.as_deref() == Some("connection closed");
            if statuses != [400] || !closed {
                failures.push(format!(
                    "{} / {framing}: replies {statuses:?}, then {:?}",
                    route.what, out.garbled
                ));
            }
            if let Err(e) = (route.unchanged)(&w) {
                failures.push(format!("{} / {framing}: STATE CHANGED: {e}", route.what));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn corpus_covers_every_family() {
    let families = [
        ("path", path_attempts()),
        ("method", method_attempts()),
        ("path-override", path_override_attempts()),
        ("body", body_attempts()),
        ("headers", header_attempts()),
    ];
    let mut names = std::collections::HashSet::new();
    let mut total = 0;
    for (family, list) in &families {
        assert!(
            list.len() >= 5,
            "family {family} has only {} attempts",
            list.len()
        );
        for a in list {
            assert!(
                names.insert(a.name.clone()),
                "duplicate attempt name {:?}",
                a.name
            );
        }
        total += list.len();
    }
    assert!(total >= 100, "the corpus has only {total} attempts");
}

#[test]
fn bypass_path_tricks() {
    run_family("path", path_attempts(), false);
}

#[test]
fn bypass_method_overrides() {
    run_family("method", method_attempts(), false);
}

#[test]
fn bypass_path_override_headers() {
    run_family("path-override", path_override_attempts(), false);
}

#[test]
fn bypass_body_encodings() {
    run_family("body", body_attempts(), false);
}

#[test]
fn bypass_header_games_and_smuggling() {
    run_family("headers", header_attempts(), true);
}

/// The corpus could fail: the same requests by carol (unmanaged) on the canonical routes
/// succeed and the state checks notice the change; bob's profile update without email passes,
/// while his canonical guarded requests are refused.
#[test]
fn bypass_positive_controls() {
    let w = World::new();
    let bob_ok = |req: Req, want: u16, what: &str| {
        let r = raw_opt(w.gw.addr, &req.build(&w.v)).unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(r.status, want, "{what}: {}", r.text());
    };
    bob_ok(
        Req::new("PATCH", "/api/users/{ID}").json(r#"{"first_name":"Robert"}"#),
        200,
        "bob's profile update without email",
    );
    bob_ok(
        Req::new("PATCH", "/api/users/{ID}").body(
            Some("application/x-www-form-urlencoded"),
            r#"{"first_name":"Rob"}"#,
        ),
        200,
        "bob's profile update without email, JSON labelled as a form",
    );
    bob_ok(
        Req::new("PUT", "/api/me/password").json("{PW_JSON}"),
        403,
        "bob's canonical password change",
    );
    bob_ok(
        Req::new("PUT", "/api/me/email").json("{EMAIL_JSON}"),
        403,
        "bob's canonical email change",
    );
    bob_ok(
        Req::new("PATCH", "/api/users/{ID}").json("{PROFILE_JSON}"),
        403,
        "bob's canonical profile email change",
    );
    bob_ok(
        Req::new("DELETE", "/api/teams/acme/members/me"),
        403,
        "bob's canonical leave",
    );
    w.check_all()
        .unwrap_or_else(|e| panic!("after bob's controls: {e}"));

    let carol = |m: &str, t: &str| Req::new(m, t).auth(Some("Bearer {CAROL}"));
    let controls: [(&str, Req, u16); 4] = [
        (
            "carol changes her password",
            carol("PUT", "/api/me/password").json("{PW_JSON}"),
            204,
        ),
        (
            "carol changes her email",
            carol("PUT", "/api/me/email").json("{EMAIL_JSON}"),
            200,
        ),
        (
            "carol changes her email in her profile",
            carol("PATCH", "/api/users/{CID}").json("{PROFILE_JSON}"),
            200,
        ),
        (
            "carol leaves the team",
            carol("DELETE", "/api/teams/acme/members/me"),
            204,
        ),
    ];
    for (what, req, want) in controls {
        let w = World::new();
        let r = raw_opt(w.gw.addr, &req.build(&w.v)).unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(r.status, want, "{what}: {}", r.text());
        assert!(
            w.check_member("carol@acme.test", &w.v.cid).is_err(),
            "the state check did not notice that {what}"
        );
        w.check_bob()
            .unwrap_or_else(|e| panic!("{what} changed bob: {e}"));
    }
}
