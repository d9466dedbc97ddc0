//! Hostile and malformed SCIM requests against the demo: each one gets the RFC 7644 status and
//! `scimType` in a SCIM error body (`application/scim+json`), nothing is written, and the gateway
//! still answers Entra's Test Connection right after.
//!
//! The table in [`hostile_requests_get_rfc7644_errors_and_the_gateway_keeps_answering`] runs every
//! case and reports all mismatches at once. Behaviour that is not an error (paging clamps) and the
//! gateway bugs this file found (now regression tests) have tests of their own.

use super::harness::{assert_scim_error, enc, Gateway};
use super::http::{self, Reply};
use serde_json::{json, Value};
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Entra's Test Connection: a lookup of a random GUID (200, empty ListResponse).
const PROBE: &str = "/Users?filter=userName+eq+%22f7a1c2d4-9b7e-4c47-8f3a-1f2e3d4c5b6a%22";
/// Every userName a hostile create carries ends like this, so leftovers are easy to find.
const HOSTILE_DOMAIN: &str = "@hostile.test";
/// The fixture user PATCH and PUT cases aim at.
const VICTIM: &str = "victim@fixture.test";
/// Bodies above this size are streamed from a second thread (the gateway answers 413 before it
/// has read them, so a plain `write_all` could fail on a reset connection).
const STREAM_ABOVE: usize = 4 << 20;

/// What a case must get back.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// An RFC 7644 error body with this status and `scimType`.
    Error(u16, Option<&'static str>),
    /// `200` with an empty ListResponse: an injection attempt that must find nobody.
    Nobody,
}

/// How a case authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// `Authorization: Bearer <the demo key>`.
    Key,
    /// No `Authorization` header (a case may still add its own).
    Without,
}

/// One hostile request.
struct Case {
    name: String,
    method: &'static str,
    /// The target relative to `/scim/v2` (so it starts with `/` or `?`, or is empty).
    path: String,
    auth: Auth,
    /// `Content-Type` sent with a body (`None`: no header).
    content_type: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    chunked: bool,
    expect: Expect,
}

impl Case {
    fn new(name: impl Into<String>, method: &'static str, path: impl Into<String>) -> Case {
        Case {
            name: name.into(),
            method,
            path: path.into(),
            auth: Auth::Key,
            content_type: Some("application/scim+json".into()),
            headers: Vec::new(),
            body: None,
            chunked: false,
            expect: Expect::Error(400, None),
        }
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Case {
        self.body = Some(body.into());
        self
    }

    fn json(self, body: &Value) -> Case {
        self.body(body.to_string())
    }

    fn content_type(mut self, ct: Option<&str>) -> Case {
        self.content_type = ct.map(str::to_string);
        self
    }

    fn auth(mut self, auth: Auth) -> Case {
        self.auth = auth;
        self
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Case {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    fn chunked(mut self) -> Case {
        self.chunked = true;
        self
    }

    fn expect(mut self, status: u16, scim_type: Option<&'static str>) -> Case {
        self.expect = Expect::Error(status, scim_type);
        self
    }

    fn nobody(mut self) -> Case {
        self.expect = Expect::Nobody;
        self
    }

    /// Sends the case to `gw`.
    fn send(&self, gw: &Gateway) -> Reply {
        let mut headers: Vec<(String, String)> = Vec::new();
        if self.auth == Auth::Key {
            headers.push(("Authorization".into(), format!("Bearer {}", gw.token)));
        }
        if let (Some(ct), Some(_)) = (&self.content_type, &self.body) {
            headers.push(("Content-Type".into(), ct.clone()));
        }
        headers.extend(self.headers.iter().cloned());
        let target = format!("/scim/v2{}", self.path);
        match &self.body {
            Some(body) if self.chunked || body.len() > STREAM_ABOVE => {
                streamed(gw.addr, self.method, &target, &headers, body, self.chunked)
            }
            body => {
                let h: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                http::send(gw.addr, self.method, &target, &h, body.as_deref())
            }
        }
    }
}

/// Sends a request whose (large) body is written by a second thread while this one reads the
/// answer; a write that fails because the gateway already answered and closed is ignored.
fn streamed(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
    chunked: bool,
) -> Reply {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let payload = if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n");
        let mut out = Vec::with_capacity(body.len() + body.len() / 1000 + 16);
        for chunk in body.chunks(64 << 10) {
            out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    } else {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        body.to_vec()
    };
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(head.as_bytes()).expect("write head");
    let mut writer = stream.try_clone().expect("clone");
    let feeder = std::thread::spawn(move || {
        let _ = writer.write_all(&payload);
    });
    let reply = http::read_reply(&mut stream);
    let _ = stream.shutdown(Shutdown::Both);
    let _ = feeder.join();
    reply
}

/// The checks of one case: its expectation, then the follow-up Test Connection.
fn check(gw: &Gateway, case: &Case) -> Result<(), String> {
    let r = case.send(gw);
    let outcome = catch_unwind(AssertUnwindSafe(|| match case.expect {
        Expect::Error(status, scim_type) => assert_scim_error(&r, status, scim_type),
        Expect::Nobody => {
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.header("content-type"), Some("application/scim+json"));
            let body = r.json();
            assert_eq!(body["totalResults"], 0, "{body}");
            assert_eq!(body["Resources"], json!([]), "{body}");
        }
    }));
    let mut problems = Vec::new();
    if outcome.is_err() {
        let body = r.text();
        let shown: String = body.chars().take(300).collect();
        problems.push(format!(
            "expected {:?}, got {} {:?} {shown}",
            case.expect,
            r.status,
            r.header("content-type")
        ));
    }
    let probe = gw.scim("GET", PROBE, None);
    if probe.status != 200 || probe.json()["totalResults"] != 0 {
        problems.push(format!(
            "the follow-up Test Connection got {} {}",
            probe.status,
            probe.text()
        ));
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "{} ({} {}): {}",
            case.name,
            case.method,
            shorten(&case.path),
            problems.join("; ")
        )),
    }
}

fn shorten(s: &str) -> String {
    match s.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn patch_body(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

/// `body` with `schemas` naming the core User schema, as every valid POST and PUT carries it.
fn scim_user(mut body: Value) -> Value {
    body["schemas"] = json!([CORE]);
    body
}

/// `userName` of the n-th hostile create.
fn hostile(n: &str) -> String {
    format!("{n}{HOSTILE_DOMAIN}")
}

/// `{"a":{"a":…1…}}` nested `depth` objects deep.
fn deep_objects(depth: usize) -> String {
    let mut s = String::with_capacity(depth * 6 + 1);
    for _ in 0..depth {
        s.push_str(r#"{"a":"#);
    }
    s.push('1');
    s.push_str(&"}".repeat(depth));
    s
}

/// `[[[…]]]` nested `depth` arrays deep.
fn deep_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn filter_path(f: &str) -> String {
    format!("/Users?filter={}", enc(f))
}

/// Malformed JSON bodies: 400 invalidSyntax on create.
fn bad_json_cases(cases: &mut Vec<Case>) {
    let user = hostile("json");
    let texts: Vec<(&str, Vec<u8>)> = vec![
        (
            "truncated object",
            format!(r#"{{"userName":"{user}""#).into(),
        ),
        ("truncated string", br#"{"userName":"json@hosti"#.to_vec()),
        ("truncated after colon", br#"{"userName":"#.to_vec()),
        ("lone brace", b"{".to_vec()),
        (
            "trailing garbage",
            format!(r#"{{"userName":"{user}"}} xyz"#).into(),
        ),
        (
            "two objects",
            format!(r#"{{"userName":"{user}"}}{{}}"#).into(),
        ),
        (
            "trailing comma",
            format!(r#"{{"userName":"{user}",}}"#).into(),
        ),
        (
            "NaN",
            format!(r#"{{"userName":"{user}","active":NaN}}"#).into(),
        ),
        (
            "-Infinity",
            format!(r#"{{"userName":"{user}","active":-Infinity}}"#).into(),
        ),
        (
            "line comment",
            format!("// hi\n{{\"userName\":\"{user}\"}}").into(),
        ),
        (
            "block comment",
            format!(r#"{{/* hi */"userName":"{user}"}}"#).into(),
        ),
        ("single quotes", format!("{{'userName':'{user}'}}").into()),
        ("unquoted key", format!(r#"{{userName:"{user}"}}"#).into()),
        ("empty body", Vec::new()),
        ("whitespace body", b"  \r\n\t ".to_vec()),
        ("null body", b"null".to_vec()),
        (
            "top-level array",
            format!(r#"[{{"userName":"{user}"}}]"#).into(),
        ),
        ("top-level string", br#""json@hostile.test""#.to_vec()),
        ("top-level number", b"42".to_vec()),
        (
            "byte order mark",
            [
                b"\xEF\xBB\xBF".as_slice(),
                format!(r#"{{"userName":"{user}"}}"#).as_bytes(),
            ]
            .concat(),
        ),
        (
            "invalid UTF-8 ff fe",
            b"{\"userName\":\"\xff\xfe@hostile.test\"}".to_vec(),
        ),
        (
            "overlong UTF-8 slash",
            b"{\"userName\":\"\xc0\xaf@hostile.test\"}".to_vec(),
        ),
        (
            "UTF-8 encoded surrogate",
            b"{\"userName\":\"\xed\xa0\x80@hostile.test\"}".to_vec(),
        ),
        (
            "truncated UTF-8 sequence",
            b"{\"userName\":\"\xe2\x82\"}".to_vec(),
        ),
        (
            "Latin-1 byte",
            b"{\"userName\":\"j\xe9@hostile.test\"}".to_vec(),
        ),
        (
            "raw control character",
            b"{\"userName\":\"j\x01@hostile.test\"}".to_vec(),
        ),
        ("bad escape", br#"{"userName":"j\q@hostile.test"}"#.to_vec()),
        (
            "lone surrogate escape",
            br#"{"userName":"j\ud800@hostile.test"}"#.to_vec(),
        ),
        (
            "number out of range",
            format!(r#"{{"userName":"{user}","active":1e999999}}"#).into(),
        ),
        (
            "leading zero",
            format!(r#"{{"userName":"{user}","active":01}}"#).into(),
        ),
        (
            "duplicate key",
            format!(r#"{{"userName":"a{user}","userName":"b{user}"}}"#).into(),
        ),
        (
            "duplicate key in other case",
            format!(r#"{{"userName":"a{user}","USERNAME":"b{user}"}}"#).into(),
        ),
        (
            "escaped key",
            format!(r#"{{"user\u004eame":"{user}"}}"#).into(),
        ),
        ("100k nested objects", deep_objects(100_000).into()),
        ("100k nested arrays", deep_arrays(100_000).into()),
        (
            "100k nested arrays in emails",
            format!(
                r#"{{"userName":"{user}","emails":{}}}"#,
                deep_arrays(100_000)
            )
            .into(),
        ),
        (
            "65 levels (one past the limit)",
            format!(r#"{{"userName":"{user}","emails":{}}}"#, deep_arrays(64)).into(),
        ),
    ];
    for (name, body) in texts {
        cases.push(
            Case::new(format!("bad JSON: {name}"), "POST", "/Users")
                .body(body)
                .expect(400, Some("invalidSyntax")),
        );
    }
}

/// Values of the wrong type or shape: 400 invalidValue; unknown attributes: 400 invalidSyntax.
fn wrong_type_cases(cases: &mut Vec<Case>) {
    let u = |n: &str| hostile(n);
    let invalid_value: Vec<(&str, Value)> = vec![
        ("userName number", json!({"userName": 42})),
        ("userName array", json!({"userName": [u("a")]})),
        ("userName object", json!({"userName": {"value": u("o")}})),
        ("userName null", json!({"userName": null})),
        ("userName empty", json!({"userName": ""})),
        ("userName boolean", json!({"userName": true})),
        ("userName missing", json!({"displayName": "No Name"})),
        (
            "userName not a sign-in name",
            json!({"userName": "not an email"}),
        ),
        (
            "userName 100 KB",
            json!({"userName": format!("{}{HOSTILE_DOMAIN}", "a".repeat(100_000))}),
        ),
        (
            "userName with NUL",
            json!({"userName": format!("nul\u{0}{HOSTILE_DOMAIN}")}),
        ),
        (
            "active maybe",
            json!({"userName": u("active1"), "active": "maybe"}),
        ),
        (
            "active number",
            json!({"userName": u("active2"), "active": 1}),
        ),
        (
            "active negative zero",
            json!({"userName": u("active3"), "active": -0.0}),
        ),
        (
            "emails as string",
            json!({"userName": u("emails1"), "emails": "a@b.c"}),
        ),
        (
            "emails as number",
            json!({"userName": u("emails2"), "emails": 7}),
        ),
        (
            "emails element a plain string",
            json!({"userName": u("emails3"), "emails": ["a@b.c"]}),
        ),
        (
            "emails value number",
            json!({"userName": u("emails4"), "emails": [{"value": 5}]}),
        ),
        (
            "emails primary yes",
            json!({"userName": u("emails5"), "emails": [{"value": "a@b.c", "primary": "yes"}]}),
        ),
        (
            "name as array of two",
            json!({"userName": u("name1"), "name": [{"givenName": "A"}, {"givenName": "B"}]}),
        ),
        (
            "name as array of a string",
            json!({"userName": u("name2"), "name": ["A B"]}),
        ),
        (
            "name as string",
            json!({"userName": u("name3"), "name": "A B"}),
        ),
        (
            "name.givenName number",
            json!({"userName": u("name4"), "name": {"givenName": 5}}),
        ),
        (
            "manager number",
            json!({"userName": u("mgr1"), ENTERPRISE: {"manager": 5}}),
        ),
        (
            "manager boolean",
            json!({"userName": u("mgr2"), ENTERPRISE: {"manager": true}}),
        ),
        (
            "manager two values",
            json!({"userName": u("mgr3"), ENTERPRISE: {"manager": [{"value": "1"}, {"value": "2"}]}}),
        ),
        (
            "enterprise extension a string",
            json!({"userName": u("ent1"), ENTERPRISE: "Sales"}),
        ),
        (
            "enterprise extension an array",
            json!({"userName": u("ent2"), ENTERPRISE: [1]}),
        ),
        (
            "externalId number",
            json!({"userName": u("ext"), "externalId": 5}),
        ),
        (
            "displayName object",
            json!({"userName": u("dn"), "displayName": {"a": 1}}),
        ),
        (
            "password number",
            json!({"userName": u("pw"), "password": 5}),
        ),
        ("roles number", json!({"userName": u("roles"), "roles": 5})),
        (
            "addresses string",
            json!({"userName": u("addr"), "addresses": "Main St"}),
        ),
    ];
    for (name, body) in invalid_value {
        cases.push(
            Case::new(format!("wrong type: {name}"), "POST", "/Users")
                .json(&scim_user(body))
                .expect(400, Some("invalidValue")),
        );
    }
    let invalid_syntax: Vec<(&str, Value)> = vec![
        (
            "unknown attribute",
            json!({"userName": u("unk1"), "shoeSize": 42}),
        ),
        (
            "unknown name sub-attribute",
            json!({"userName": u("unk2"), "name": {"nickname": "x"}}),
        ),
        (
            "unknown schema URN",
            json!({"userName": u("unk3"), "urn:example:custom:1.0:User": {"a": 1}}),
        ),
        (
            "unknown enterprise attribute",
            json!({"userName": u("unk4"), ENTERPRISE: {"shoeSize": "42"}}),
        ),
        (
            "sub-attribute of a multi-valued attribute",
            json!({"userName": u("unk5"), "emails.value": "x@y.z"}),
        ),
    ];
    for (name, body) in invalid_syntax {
        cases.push(
            Case::new(format!("unknown: {name}"), "POST", "/Users")
                .json(&scim_user(body))
                .expect(400, Some("invalidSyntax")),
        );
    }
}

/// Content types the SCIM server does not read: 415 (checked before the body).
fn content_type_cases(cases: &mut Vec<Case>, victim: &str) {
    let body = json!({"userName": hostile("ct")});
    for ct in [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "application/octet-stream",
    ] {
        cases.push(
            Case::new(format!("content type {ct}"), "POST", "/Users")
                .json(&body)
                .content_type(Some(ct))
                .expect(415, None),
        );
    }
    cases.push(
        Case::new("content type form on create", "POST", "/Users")
            .body(format!("userName={}", enc(&hostile("form"))))
            .content_type(Some("application/x-www-form-urlencoded"))
            .expect(415, None),
    );
    cases.push(
        Case::new(
            "content type text/plain on PATCH",
            "PATCH",
            format!("/Users/{victim}"),
        )
        .json(&patch_body(
            json!([{"op": "replace", "path": "displayName", "value": "X"}]),
        ))
        .content_type(Some("text/plain"))
        .expect(415, None),
    );
    cases.push(
        Case::new(
            "content type text/xml on PUT",
            "PUT",
            format!("/Users/{victim}"),
        )
        .json(&json!({"userName": VICTIM}))
        .content_type(Some("text/xml"))
        .expect(415, None),
    );
}

/// Bodies over `server.max_body_bytes` (1 MiB by default): 413.
fn size_cases(cases: &mut Vec<Case>, victim: &str) {
    let big = |n: usize| {
        let mut b = format!(r#"{{"userName":"{}","displayName":""#, hostile("big")).into_bytes();
        b.resize(n - 2, b'a');
        b.extend_from_slice(br#""}"#);
        b
    };
    cases.push(
        Case::new("20 MB body", "POST", "/Users")
            .body(big(20 << 20))
            .expect(413, None),
    );
    cases.push(
        Case::new("20 MB chunked body", "POST", "/Users")
            .body(big(20 << 20))
            .chunked()
            .expect(413, None),
    );
    cases.push(
        Case::new("1 MiB + 1 byte body", "POST", "/Users")
            .body(big((1 << 20) + 1))
            .expect(413, None),
    );
    cases.push(
        Case::new("20 MB PATCH body", "PATCH", format!("/Users/{victim}"))
            .body(big(20 << 20))
            .expect(413, None),
    );
}

/// Filters the gateway must refuse rather than answer with an unfiltered list: 400 invalidFilter.
fn filter_cases(cases: &mut Vec<Case>) {
    let long = |n: usize| format!("userName eq \"{}\"", "a".repeat(n));
    let filters: Vec<(&str, String)> = vec![
        ("5 KB filter", long(5 << 10)),
        ("60 KB filter", long(60 << 10)),
        (
            "20 nested parentheses",
            format!("{}userName eq \"x\"{}", "(".repeat(20), ")".repeat(20)),
        ),
        ("3000 open parentheses", "(".repeat(3000)),
        ("not without parentheses", "not userName eq \"x\"".into()),
        ("no value", "userName eq".into()),
        ("unterminated string", "userName eq \"x".into()),
        ("unknown attribute", "shoeSize eq \"42\"".into()),
        ("unknown operator", "userName xx \"x\"".into()),
        ("unquoted value", "userName eq x".into()),
        ("value first", "\"x\" eq userName".into()),
        ("junk after a complete filter", "userName pr pr".into()),
        (
            "two comparisons without a keyword",
            "userName eq \"x\" userName eq \"y\"".into(),
        ),
        ("unclosed value filter", "emails[type eq \"work\"".into()),
        (
            "nested value filters",
            "emails[value[type eq \"x\"]]".into(),
        ),
        ("dangling and", "userName eq \"x\" and".into()),
        ("lone and", "and".into()),
        ("lone parenthesis", ")".into()),
        ("bad escape in string", "userName eq \"\\q\"".into()),
        ("complex attribute compared", "name eq \"x\"".into()),
        ("unknown URN", "urn:foo:bar eq \"x\"".into()),
        (
            "SQL-style tautology",
            "userName eq \"a\" or \"1\"=\"1\"".into(),
        ),
        (
            "filter on a simple sub-attribute",
            "emails.value[type eq \"x\"]".into(),
        ),
    ];
    for (name, f) in filters {
        cases.push(
            Case::new(format!("filter: {name}"), "GET", filter_path(&f))
                .expect(400, Some("invalidFilter")),
        );
    }
    cases.push(
        Case::new("filter: 1 MB in a SearchRequest", "POST", "/Users/.search")
            .json(&json!({"filter": long(1_000_000)}))
            .expect(400, Some("invalidFilter")),
    );
    cases.push(
        Case::new("filter: 5 KB in a root SearchRequest", "POST", "/.search")
            .json(&json!({"filter": long(5 << 10)}))
            .expect(400, Some("invalidFilter")),
    );
    cases.push(
        Case::new(
            "filter: raw & splits the parameter",
            "GET",
            "/Users?filter=userName+eq+%22x&email=admin%40acme.test%22",
        )
        .expect(400, Some("invalidFilter")),
    );
    cases.push(
        Case::new(
            "filter: raw # cuts the target",
            "GET",
            "/Users?filter=userName+eq+%22admin%40acme.test#%22",
        )
        .expect(400, Some("invalidFilter")),
    );
    cases.push(
        Case::new(
            "filter given twice",
            "GET",
            format!(
                "/Users?filter={}&filter={}",
                enc("userName eq \"x\""),
                enc("userName eq \"admin@acme.test\"")
            ),
        )
        .expect(400, Some("invalidFilter")),
    );
    cases.push(
        Case::new("SearchRequest filter a number", "POST", "/Users/.search")
            .json(&json!({"filter": 5}))
            .expect(400, Some("invalidValue")),
    );
    cases.push(
        Case::new(
            "SearchRequest startIndex a string",
            "POST",
            "/Users/.search",
        )
        .json(&json!({"startIndex": "abc"}))
        .expect(400, Some("invalidValue")),
    );
    cases.push(
        Case::new("SearchRequest not JSON", "POST", "/Users/.search")
            .body("{")
            .expect(400, Some("invalidSyntax")),
    );
    cases.push(
        Case::new("SearchRequest nested 100k deep", "POST", "/.search")
            .body(deep_objects(100_000))
            .expect(400, Some("invalidSyntax")),
    );
}

/// Filters that try to reach the backend's query string or widen the match: a valid filter that
/// must find nobody (never another user).
fn injection_cases(cases: &mut Vec<Case>) {
    let filters = [
        "userName eq \"x&page=1&email=admin@acme.test\"",
        "userName eq \"x&email=admin@acme.test\"",
        "userName eq \"admin@acme.test&email=bob@acme.test\"",
        "userName eq \"a\\\" or \\\"1\\\"=\\\"1\"",
        "userName eq \"admin@acme.test%26page=1\"",
        "userName eq \"admin%40acme.test\"",
        "userName eq \"admin@acme.test#\"",
        "userName eq \"admin@acme.test?email=bob@acme.test\"",
        "userName eq \"%\"",
        "userName eq \"%%\"",
        "userName eq \"_dmin@acme.test\"",
        "userName eq \"*\"",
        "userName eq \"admin@acme.test \"",
        "userName eq \" admin@acme.test\"",
        "userName eq \"admin@acme.test\\u0000\"",
        "userName eq \"admin@acme.test\\n\"",
        "userName eq \"admin@acme.test\\r\\nX-Injected: 1\"",
        "externalId eq \"x\\\" or externalId ne \\\"\"",
        "emails[type eq \"work\"].value eq \"x&email=admin@acme.test\"",
        "externalId eq \"x\\u0000\"",
        "emails[type eq \"work\"].value eq \"admin@acme.test\\u0000\"",
    ];
    for f in filters {
        cases.push(Case::new(format!("injection: {f}"), "GET", filter_path(f)).nobody());
    }
    cases.push(
        Case::new(
            "injection: %26 inside the encoded value",
            "GET",
            "/Users?filter=userName+eq+%22x%26email%3Dadmin%40acme.test%22",
        )
        .nobody(),
    );
    cases.push(
        Case::new(
            "injection: %2526 double-encoded",
            "GET",
            "/Users?filter=userName+eq+%22x%2526email%253Dadmin%2540acme.test%22",
        )
        .nobody(),
    );
}

/// Ids that are not ids: 404 with an error body.
fn id_cases(cases: &mut Vec<Case>) {
    let long = "a".repeat(10_000);
    let ids = [
        "..",
        ".",
        "..%2F..%2Fapi%2Fme",
        "%2e%2e",
        "%2e%2e%2f1",
        "%00",
        "1%00",
        "%E2%98%83",
        "\u{2603}",
        "\u{0661}",
        long.as_str(),
        "999999999999999999999999999999",
        "-1",
        "0",
        "1%3Femail=admin@acme.test",
        "1%20",
        "1.0",
        "1e0",
        "0x1",
        "%31",
        "1;x=y",
        "1,2",
        "*",
    ];
    for id in ids {
        cases.push(
            Case::new(format!("id {}", shorten(id)), "GET", format!("/Users/{id}"))
                .expect(404, None),
        );
    }
    cases.push(Case::new("id ../api/me", "GET", "/Users/../api/me").expect(404, None));
    cases.push(Case::new("DELETE id ..%2F1", "DELETE", "/Users/..%2F1").expect(404, None));
    cases.push(Case::new("DELETE id ..", "DELETE", "/Users/..").expect(404, None));
    cases.push(
        Case::new("PUT id %2e%2e%2f1", "PUT", "/Users/%2e%2e%2f1")
            .json(&scim_user(json!({"userName": hostile("put-dots")})))
            .expect(404, None),
    );
    cases.push(
        Case::new("PATCH id ../1", "PATCH", "/Users/../1")
            .json(&patch_body(
                json!([{"op": "replace", "path": "displayName", "value": "X"}]),
            ))
            .expect(404, None),
    );
    cases.push(
        Case::new("PATCH unknown id", "PATCH", "/Users/999999")
            .json(&patch_body(
                json!([{"op": "replace", "path": "displayName", "value": "X"}]),
            ))
            .expect(404, None),
    );
    cases.push(
        Case::new("PUT unknown id", "PUT", "/Users/999999")
            .json(&scim_user(json!({"userName": hostile("put-unknown")})))
            .expect(404, None),
    );
    cases.push(Case::new("DELETE unknown id", "DELETE", "/Users/999999").expect(404, None));
}

/// Paging parameters that are not integers: 400 invalidValue.
fn paging_error_cases(cases: &mut Vec<Case>) {
    for q in [
        "startIndex=abc",
        "count=abc",
        "count=--1",
        "startIndex=%00",
        "count=1&count=2",
        "startIndex=1&STARTINDEX=2",
        "startIndex=",
        "count=",
        "startIndex=1e3",
        "startIndex=1.5",
        "count=1e3",
        "count=1.5",
        "count=1e0",
        "count=0x10",
        "count=%FF",
    ] {
        cases.push(
            Case::new(format!("paging {q}"), "GET", format!("/Users?{q}"))
                .expect(400, Some("invalidValue")),
        );
    }
}

/// Credentials anywhere but one `Authorization: Bearer <key>` header: 401.
fn auth_cases(cases: &mut Vec<Case>, token: &str, victim: &str) {
    let list = || {
        Case::new("", "GET", "/Users")
            .auth(Auth::Without)
            .expect(401, None)
    };
    let named = |c: Case, name: &str| Case {
        name: format!("auth: {name}"),
        ..c
    };
    cases.push(named(list(), "no credentials"));
    cases.push(Case {
        path: format!("/Users?access_token={token}"),
        ..named(list(), "access_token query parameter")
    });
    cases.push(named(
        list()
            .header("Authorization", format!("Bearer {token}"))
            .header("Authorization", format!("Bearer {token}")),
        "two Authorization headers",
    ));
    cases.push(named(
        list()
            .header("Authorization", format!("Bearer {token}"))
            .header("Authorization", "Bearer scimgate_wrong"),
        "a good and a bad Authorization header",
    ));
    cases.push(named(
        list().header("Authorization", format!("Bearer {token}, Bearer {token}")),
        "two credentials in one header",
    ));
    cases.push(named(
        list().header("Authorization", "Bearer"),
        "Bearer without a key",
    ));
    cases.push(named(
        list().header("Authorization", "Bearer scimgate_wrong"),
        "wrong key",
    ));
    cases.push(named(
        list().header("Authorization", format!("Bearer {token}x")),
        "key with an extra character",
    ));
    cases.push(named(
        list().header(
            "Authorization",
            format!("Bearer {}", &token[..token.len() - 1]),
        ),
        "key missing its last character",
    ));
    cases.push(named(
        list().header("Authorization", format!("Bearer {}", token.to_uppercase())),
        "key upper-cased",
    ));
    cases.push(named(
        list().header("Authorization", format!("Basic {token}")),
        "Basic scheme",
    ));
    cases.push(named(
        list().header("Authorization", format!("Token {token}")),
        "Token scheme",
    ));
    cases.push(named(list().header("X-Api-Key", token), "X-Api-Key header"));
    cases.push(named(
        list().header("Cookie", format!("token={token}")),
        "cookie",
    ));
    cases.push(
        Case::new("auth: create without credentials", "POST", "/Users")
            .auth(Auth::Without)
            .json(&json!({"userName": hostile("noauth")}))
            .expect(401, None),
    );
    cases.push(
        Case::new(
            "auth: delete without credentials",
            "DELETE",
            format!("/Users/{victim}"),
        )
        .auth(Auth::Without)
        .expect(401, None),
    );
    cases.push(
        Case::new(
            "auth: PATCH with a wrong key",
            "PATCH",
            format!("/Users/{victim}"),
        )
        .auth(Auth::Without)
        .header("Authorization", "Bearer scimgate_wrong")
        .json(&patch_body(
            json!([{"op": "replace", "path": "displayName", "value": "X"}]),
        ))
        .expect(401, None),
    );
}

/// Malformed or forbidden PATCH requests on the fixture user.
fn patch_cases(cases: &mut Vec<Case>, victim: &str) {
    let one = |op: Value| patch_body(json!([op]));
    let with: Vec<(&str, Value, u16, &'static str)> = vec![
        (
            "replace id",
            one(json!({"op": "replace", "path": "id", "value": "1"})),
            400,
            "mutability",
        ),
        (
            "replace core-URN id",
            one(json!({"op": "replace", "path": format!("{CORE}:id"), "value": "1"})),
            400,
            "mutability",
        ),
        (
            "replace meta.created",
            one(json!({"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"})),
            400,
            "mutability",
        ),
        (
            "replace meta",
            one(json!({"op": "replace", "path": "meta", "value": {"version": "x"}})),
            400,
            "mutability",
        ),
        (
            "add groups",
            one(json!({"op": "add", "path": "groups", "value": [{"value": "g1"}]})),
            400,
            "mutability",
        ),
        (
            "remove groups",
            one(json!({"op": "remove", "path": "groups"})),
            400,
            "mutability",
        ),
        (
            "add filtered groups display",
            one(json!({"op": "add", "path": "groups[value eq \"g\"].display", "value": "x"})),
            400,
            "mutability",
        ),
        (
            "unknown op",
            one(json!({"op": "merge", "path": "displayName", "value": "X"})),
            400,
            "invalidSyntax",
        ),
        (
            "empty op",
            one(json!({"op": "", "path": "displayName", "value": "X"})),
            400,
            "invalidSyntax",
        ),
        (
            "missing op",
            one(json!({"path": "displayName", "value": "X"})),
            400,
            "invalidSyntax",
        ),
        (
            "op a number",
            one(json!({"op": 5, "path": "displayName", "value": "X"})),
            400,
            "invalidSyntax",
        ),
        (
            "operation a string",
            patch_body(json!(["add"])),
            400,
            "invalidSyntax",
        ),
        (
            "missing Operations",
            json!({"schemas": [PATCH_OP]}),
            400,
            "invalidSyntax",
        ),
        (
            "Operations an object",
            json!({"schemas": [PATCH_OP], "Operations": {"op": "add", "path": "displayName", "value": "X"}}),
            400,
            "invalidSyntax",
        ),
        (
            "Operations a string",
            json!({"schemas": [PATCH_OP], "Operations": "add"}),
            400,
            "invalidSyntax",
        ),
        (
            "Operations null",
            json!({"schemas": [PATCH_OP], "Operations": null}),
            400,
            "invalidSyntax",
        ),
        (
            "Operations empty",
            patch_body(json!([])),
            400,
            "invalidSyntax",
        ),
        (
            "1001 operations",
            patch_body(Value::Array(vec![
                json!({"op": "replace", "path": "displayName", "value": "X"});
                1001
            ])),
            400,
            "invalidSyntax",
        ),
        (
            "missing schemas",
            json!({"Operations": [{"op": "replace", "path": "displayName", "value": "X"}]}),
            400,
            "invalidSyntax",
        ),
        (
            "User schema instead of PatchOp",
            json!({"schemas": [CORE], "Operations": [{"op": "replace", "path": "displayName", "value": "X"}]}),
            400,
            "invalidSyntax",
        ),
        (
            "schemas a string",
            json!({"schemas": PATCH_OP, "Operations": [{"op": "replace", "path": "displayName", "value": "X"}]}),
            400,
            "invalidSyntax",
        ),
        (
            "remove without path",
            one(json!({"op": "remove"})),
            400,
            "noTarget",
        ),
        (
            "remove with empty path",
            one(json!({"op": "remove", "path": ""})),
            400,
            "invalidPath",
        ),
        (
            "remove with only a value",
            one(json!({"op": "remove", "value": {"displayName": "X"}})),
            400,
            "noTarget",
        ),
        (
            "filter matching nothing and describing nothing",
            one(
                json!({"op": "replace", "path": "emails[type ne \"work\"].value", "value": "x@y.z"}),
            ),
            400,
            "noTarget",
        ),
        (
            "or-filter matching nothing",
            one(
                json!({"op": "replace", "path": "emails[type eq \"x\" or type eq \"y\"].value", "value": "x@y.z"}),
            ),
            400,
            "noTarget",
        ),
        (
            "unknown path",
            one(json!({"op": "replace", "path": "shoeSize", "value": "42"})),
            400,
            "invalidPath",
        ),
        (
            "unknown sub-attribute",
            one(json!({"op": "replace", "path": "name.nickname", "value": "x"})),
            400,
            "invalidPath",
        ),
        (
            "multi-valued sub-attribute without filter",
            one(json!({"op": "replace", "path": "emails.value", "value": "x@y.z"})),
            400,
            "invalidPath",
        ),
        (
            "unclosed filter",
            one(json!({"op": "replace", "path": "emails[type eq \"work\"", "value": "x"})),
            400,
            "invalidPath",
        ),
        (
            "unknown sub-attribute in filter",
            one(json!({"op": "replace", "path": "emails[foo eq \"x\"].value", "value": "x"})),
            400,
            "invalidPath",
        ),
        (
            "filter on a single-valued attribute",
            one(json!({"op": "replace", "path": "name[givenName eq \"x\"]", "value": "x"})),
            400,
            "invalidPath",
        ),
        (
            "unknown URN path",
            one(json!({"op": "replace", "path": "urn:example:foo:bar", "value": "x"})),
            400,
            "invalidPath",
        ),
        (
            "path a number",
            one(json!({"op": "replace", "path": 5, "value": "x"})),
            400,
            "invalidPath",
        ),
        (
            "remove the core schema",
            one(json!({"op": "remove", "path": CORE})),
            400,
            "invalidPath",
        ),
        (
            "5 KB path filter",
            one(
                json!({"op": "replace", "path": format!("emails[type eq \"{}\"].value", "a".repeat(5 << 10)), "value": "x"}),
            ),
            400,
            "invalidPath",
        ),
        (
            "valid op then unknown path",
            patch_body(
                json!([{"op": "replace", "path": "displayName", "value": "Changed"}, {"op": "replace", "path": "nosuch", "value": "x"}]),
            ),
            400,
            "invalidPath",
        ),
        (
            "add without value",
            one(json!({"op": "add", "path": "displayName"})),
            400,
            "invalidValue",
        ),
        (
            "active maybe",
            one(json!({"op": "replace", "path": "active", "value": "maybe"})),
            400,
            "invalidValue",
        ),
        (
            "userName null",
            one(json!({"op": "replace", "path": "userName", "value": null})),
            400,
            "invalidValue",
        ),
        (
            "remove userName",
            one(json!({"op": "remove", "path": "userName"})),
            400,
            "invalidValue",
        ),
        (
            "userName a number",
            one(json!({"op": "replace", "path": "userName", "value": 5})),
            400,
            "invalidValue",
        ),
        (
            "pathless with a string value",
            one(json!({"op": "replace", "value": "x"})),
            400,
            "invalidValue",
        ),
        (
            "core URN path with a string",
            one(json!({"op": "replace", "path": CORE, "value": "x"})),
            400,
            "invalidValue",
        ),
        (
            "manager a number",
            one(json!({"op": "replace", "path": format!("{ENTERPRISE}:manager"), "value": 5})),
            400,
            "invalidValue",
        ),
        (
            "emails not JSON",
            one(json!({"op": "add", "path": "emails", "value": "notjson"})),
            400,
            "invalidValue",
        ),
    ];
    for (name, body, status, scim_type) in with {
        cases.push(
            Case::new(
                format!("PATCH: {name}"),
                "PATCH",
                format!("/Users/{victim}"),
            )
            .json(&body)
            .expect(status, Some(scim_type)),
        );
    }
    let raw: Vec<(&str, String)> = vec![
        (
            "duplicate Operations keys",
            format!(
                r#"{{"schemas":["{PATCH_OP}"],"Operations":[],"Operations":[{{"op":"remove","path":"displayName"}}]}}"#
            ),
        ),
        (
            "body an array",
            r#"[{"op":"replace","path":"displayName","value":"X"}]"#.into(),
        ),
        (
            "truncated body",
            format!(r#"{{"schemas":["{PATCH_OP}"],"Operations":[{{"op":"replace""#),
        ),
        ("100k nested objects", deep_objects(100_000)),
        (
            "100k nested arrays in a value",
            format!(
                r#"{{"schemas":["{PATCH_OP}"],"Operations":[{{"op":"add","path":"emails","value":{}}}]}}"#,
                deep_arrays(100_000)
            ),
        ),
    ];
    for (name, body) in raw {
        cases.push(
            Case::new(
                format!("PATCH: {name}"),
                "PATCH",
                format!("/Users/{victim}"),
            )
            .body(body)
            .expect(400, Some("invalidSyntax")),
        );
    }
}

/// Malformed PUT requests on the fixture user.
fn put_cases(cases: &mut Vec<Case>, victim: &str) {
    let with: Vec<(&str, Value, &'static str)> = vec![
        (
            "without userName",
            json!({"displayName": "No Name"}),
            "invalidValue",
        ),
        (
            "userName null",
            json!({"userName": null, "displayName": "X"}),
            "invalidValue",
        ),
        ("userName a number", json!({"userName": 5}), "invalidValue"),
        (
            "emails a string",
            json!({"userName": VICTIM, "emails": "x@y.z"}),
            "invalidValue",
        ),
        (
            "unknown attribute",
            json!({"userName": VICTIM, "shoeSize": 42}),
            "invalidSyntax",
        ),
    ];
    for (name, body, scim_type) in with {
        cases.push(
            Case::new(format!("PUT: {name}"), "PUT", format!("/Users/{victim}"))
                .json(&scim_user(body))
                .expect(400, Some(scim_type)),
        );
    }
    cases.push(
        Case::new("PUT: truncated body", "PUT", format!("/Users/{victim}"))
            .body(format!(r#"{{"userName":"{VICTIM}""#))
            .expect(400, Some("invalidSyntax")),
    );
    cases.push(
        Case::new("PUT: empty body", "PUT", format!("/Users/{victim}"))
            .body("")
            .expect(400, Some("invalidSyntax")),
    );
    cases.push(
        Case::new(
            "PUT: 100k nested objects",
            "PUT",
            format!("/Users/{victim}"),
        )
        .body(deep_objects(100_000))
        .expect(400, Some("invalidSyntax")),
    );
}

/// Methods an endpoint does not take (405), endpoints that do not exist (404), sorting (400).
fn endpoint_cases(cases: &mut Vec<Case>, victim: &str) {
    let not_allowed: Vec<(&'static str, String)> = vec![
        ("POST", format!("/Users/{victim}")),
        ("DELETE", "/Users".into()),
        ("PUT", "/Users".into()),
        ("PATCH", "/Users".into()),
        ("OPTIONS", "/Users".into()),
        ("TRACE", "/Users".into()),
        ("PURGE", "/Users".into()),
        ("DELETE", "/Schemas".into()),
        ("PUT", "/ResourceTypes/User".into()),
        ("POST", "/ServiceProviderConfig".into()),
        ("PATCH", "/ServiceProviderConfig".into()),
        ("GET", "/Users/.search".into()),
        ("GET", "/.search".into()),
    ];
    for (method, path) in not_allowed {
        let mut case =
            Case::new(format!("method {method} {path}"), method, path.clone()).expect(405, None);
        if method != "GET" && method != "OPTIONS" && method != "TRACE" && method != "DELETE" {
            case = case.json(&json!({}));
        }
        cases.push(case);
    }
    let not_found = [
        ("GET", "/Groups/999999".to_string()),
        ("GET", "/Groups/1/extra".to_string()),
        ("GET", "/Me".to_string()),
        ("GET", String::new()),
        ("GET", "/".to_string()),
        ("GET", format!("/Users/{victim}/extra")),
        ("GET", "/Schemas/urn:nope".to_string()),
        ("GET", "/ResourceTypes/Team".to_string()),
        ("GET", "/Foo".to_string()),
        ("GET", "/..%2Fapi%2Fme".to_string()),
        ("GET", "/Users/%2e%2e/%2e%2e/api/me".to_string()),
    ];
    for (method, path) in not_found {
        let mut case =
            Case::new(format!("endpoint {method} {path:?}"), method, path).expect(404, None);
        if method == "POST" {
            case = case.json(&json!({}));
        }
        cases.push(case);
    }
    cases.push(
        Case::new("a Group without schemas", "POST", "/Groups")
            .json(&json!({"displayName": "x"}))
            .expect(400, Some("invalidSyntax")),
    );
    cases.push(
        Case::new("Bulk is not supported", "POST", "/Bulk")
            .json(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []}))
            .expect(501, None),
    );
    for q in [
        "sortBy=userName",
        "sortBy=userName&sortOrder=descending",
        "SORTBY=meta.created",
    ] {
        cases.push(
            Case::new(format!("sorting {q}"), "GET", format!("/Users?{q}"))
                .expect(400, Some("invalidValue")),
        );
    }
    cases.push(
        Case::new("sorting in a SearchRequest", "POST", "/Users/.search")
            .json(&json!({"sortBy": "userName"}))
            .expect(400, Some("invalidValue")),
    );
    for q in ["attributes=shoeSize", "excludedAttributes=name.nope"] {
        cases.push(
            Case::new(format!("projection {q}"), "GET", format!("/Users?{q}"))
                .expect(400, Some("invalidValue")),
        );
    }
}

fn total_users(gw: &Gateway) -> u64 {
    let r = gw.scim("GET", "/Users?count=0", None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["totalResults"].as_u64().expect("totalResults")
}

#[test]
fn hostile_requests_get_rfc7644_errors_and_the_gateway_keeps_answering() {
    let gw = Gateway::demo();
    let created = gw.scim(
        "POST",
        "/Users",
        Some(
            &json!({"schemas": [CORE], "userName": VICTIM, "displayName": "Victim",
            "emails": [{"type": "work", "value": VICTIM, "primary": true}],
            "name": {"givenName": "Vic", "familyName": "Tim"}}),
        ),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let victim = created.json()["id"].as_str().expect("id").to_string();
    let before = gw.scim("GET", &format!("/Users/{victim}"), None).json();
    let users_before = total_users(&gw);

    let mut cases = Vec::new();
    bad_json_cases(&mut cases);
    wrong_type_cases(&mut cases);
    content_type_cases(&mut cases, &victim);
    size_cases(&mut cases, &victim);
    filter_cases(&mut cases);
    injection_cases(&mut cases);
    id_cases(&mut cases);
    paging_error_cases(&mut cases);
    auth_cases(&mut cases, &gw.token, &victim);
    patch_cases(&mut cases, &victim);
    put_cases(&mut cases, &victim);
    endpoint_cases(&mut cases, &victim);
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    eprintln!("{} hostile cases", cases.len());

    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| check(&gw, case).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} hostile cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // Nothing was written: no new user, no hostile userName, the fixture unchanged.
    assert_eq!(total_users(&gw), users_before);
    let leftovers = gw.scim(
        "GET",
        &filter_path(&format!("userName ew \"{HOSTILE_DOMAIN}\"")),
        None,
    );
    assert_eq!(leftovers.status, 200, "{}", leftovers.text());
    assert_eq!(leftovers.json()["totalResults"], 0, "{}", leftovers.text());
    let after = gw.scim("GET", &format!("/Users/{victim}"), None).json();
    assert_eq!(after, before, "no failed PATCH or PUT changed the user");
}

/// `startIndex` and `count` outside the range: below 1 / below 0 are clamped (RFC 7644
/// §3.4.2.4), large counts are capped at `scim.max_results` (non-integers are 400: see the
/// table's paging cases).
#[test]
fn paging_parameters_are_clamped_consistently() {
    let gw = Gateway::demo();
    let total = total_users(&gw);
    assert!(total >= 3);
    let page = |q: &str| {
        let r = gw.scim("GET", &format!("/Users?{q}"), None);
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        let body = r.json();
        assert_eq!(body["totalResults"], total, "{q}: {body}");
        let items = body["Resources"].as_array().expect("Resources").len() as u64;
        assert_eq!(body["itemsPerPage"], items, "{q}: {body}");
        (body["startIndex"].as_u64().expect("startIndex"), items)
    };
    for q in ["startIndex=-1", "startIndex=0", "startIndex=1"] {
        assert_eq!(page(q), (1, total), "{q}");
    }
    for q in ["count=-1", "count=0", "count=-99999999999"] {
        assert_eq!(page(q), (1, 0), "{q}");
    }
    for q in [
        "count=99999999999999999999",
        "count=9223372036854775807",
        "count=100000",
    ] {
        assert_eq!(page(q), (1, total), "{q}");
    }
    assert_eq!(page("count=1"), (1, 1));
    assert_eq!(page("startIndex=2&count=1"), (2, 1));
    assert_eq!(page("startIndex=%202&count=%201"), (2, 1));
    // Past the end: an empty page that says where it started.
    for q in [
        "startIndex=9223372036854775807",
        "startIndex=4294967296",
        "startIndex=1000",
    ] {
        let (start, items) = page(q);
        assert_eq!(items, 0, "{q}");
        assert!(start > total, "{q}");
    }
}

/// Regression: a decimal `startIndex` beyond `i64` used to fall back to the default (page one)
/// while `9223372036854775807` gave the empty page past the end, so a client paging with a huge
/// startIndex got the first page again instead of the end of the list.
#[test]
fn start_index_beyond_i64_is_past_the_end_not_page_one() {
    let gw = Gateway::demo();
    let r = gw.scim("GET", "/Users?startIndex=99999999999999999999", None);
    if r.status == 400 {
        // Refusing it, as `POST /.search` does for the same number, is fine too.
        assert_scim_error(&r, 400, Some("invalidValue"));
        return;
    }
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(
        body["Resources"],
        json!([]),
        "startIndex=99999999999999999999 must be past the end (or 400 invalidValue), not page one: {body}"
    );
}

/// Regression: the demo backend reads ids as integers, so `/Users/04` reaches user `4`; the
/// gateway used to answer for it but keep its shadow record (externalId, emails, …) under the key
/// `04`, so a PATCH through the alias reported success for id 4 while `GET /Users/4` never showed
/// the change. Only the exact spelling of an id may name a user.
#[test]
fn non_canonical_id_spellings_are_404() {
    let gw = Gateway::demo();
    let r = gw.scim(
        "POST",
        "/Users",
        Some(
            &json!({"schemas": [CORE], "userName": "alias@fixture.test", "externalId": "ext-alias",
            "emails": [{"type": "work", "value": "alias@fixture.test"}]}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    let before = gw.scim("GET", &format!("/Users/{id}"), None).json();

    let patch = patch_body(json!([{"op": "replace", "path": "externalId", "value": "ext-hijack"}]));
    let aliased = gw.scim("PATCH", &format!("/Users/0{id}"), Some(&patch));
    let read = gw.scim("GET", &format!("/Users/{id}"), None).json();
    let alias_get = gw.scim("GET", &format!("/Users/0{id}"), None);
    assert_scim_error(&aliased, 404, None);
    assert_eq!(read, before, "a PATCH through /Users/0{id} changed nothing");
    assert_scim_error(&alias_get, 404, None);
    for alias in ["01", "001"] {
        assert_scim_error(&gw.scim("GET", &format!("/Users/{alias}"), None), 404, None);
    }
}

/// A request target over the `http` crate's URI limit (64 KiB), or a head over the gateway's head
/// limit, never reaches pingora's parser (which would answer a bare `400`): on SCIM paths it is a
/// SCIM error, `414` or `431`, also on a kept-alive connection after a first request; nothing is
/// listed or written, and the gateway keeps serving. Elsewhere pingora's answer stays.
#[test]
fn heads_too_long_for_the_listener_get_scim_errors() {
    let gw = Gateway::demo();
    let auth = format!("Bearer {}", gw.token);
    let users_before = total_users(&gw);
    let long_filter = filter_path(&format!("userName eq \"{}\"", "a".repeat(1_000_000)));
    let r = gw.request(
        "GET",
        &format!("/scim/v2{long_filter}"),
        &[("Authorization", auth.as_str())],
        None,
    );
    assert_scim_error(&r, 414, None);
    assert_eq!(r.header("connection"), Some("close"));
    let big = "b".repeat(100_000);
    let r = gw.request(
        "GET",
        "/scim/v2/Users",
        &[("Authorization", auth.as_str()), ("X-Big", big.as_str())],
        None,
    );
    assert_scim_error(&r, 431, None);
    // Just within the URI limit: the filter arrives and is refused by the filter parser.
    let nested = format!(
        "{}userName eq \"x\"{}",
        "(".repeat(8_000),
        ")".repeat(8_000)
    );
    let r = gw.request(
        "GET",
        &format!("/scim/v2{}", filter_path(&nested)),
        &[("Authorization", auth.as_str())],
        None,
    );
    assert_scim_error(&r, 400, Some("invalidFilter"));
    // The second request of a kept-alive connection is checked the same way.
    let first =
        format!("GET /scim/v2{PROBE} HTTP/1.1\r\nHost: gw\r\nAuthorization: {auth}\r\n\r\n");
    let second =
        format!("GET /scim/v2{long_filter} HTTP/1.1\r\nHost: gw\r\nAuthorization: {auth}\r\n\r\n");
    let mut stream = TcpStream::connect(gw.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream.write_all(first.as_bytes()).expect("write");
    let r = http::try_read_reply(&mut stream).expect("first reply");
    assert_eq!(r.status, 200, "{}", r.text());
    stream.write_all(second.as_bytes()).expect("write");
    let r = http::try_read_reply(&mut stream).expect("second reply");
    assert_scim_error(&r, 414, None);
    // Not SCIM: pingora's own answer.
    let r = gw.request("GET", &format!("/api{long_filter}"), &[], None);
    assert_eq!(r.status, 400);
    assert_ne!(r.header("content-type"), Some("application/scim+json"));
    assert_eq!(total_users(&gw), users_before);
    let probe = gw.scim("GET", PROBE, None);
    assert_eq!(probe.status, 200, "{}", probe.text());
}

/// Regression: a 405 must carry `Allow` (RFC 9110 §15.5.6: "The origin server MUST generate an
/// Allow header field in a 405 response"); it used to name the methods only in the detail text.
#[test]
fn method_not_allowed_names_the_allowed_methods() {
    let gw = Gateway::demo();
    let cases = [
        ("DELETE", "/Users", "GET, POST"),
        ("POST", "/Users/1", "GET, PUT, PATCH, DELETE"),
        ("POST", "/ServiceProviderConfig", "GET"),
        ("GET", "/Users/.search", "POST"),
    ];
    for (method, path, allowed) in cases {
        let body = (method == "POST").then(|| json!({}));
        let r = gw.scim(method, path, body.as_ref());
        assert_scim_error(&r, 405, None);
        assert_eq!(r.header("allow"), Some(allowed), "{method} {path}");
    }
}
