//! Transparent proxying (issue 18): the application behind the gateway must not notice it.
//! A gateway proxies to the rough upstream (`tests/support/rough_upstream.rs`) and raw TCP
//! clients watch exactly the bytes and how each connection ends. Every test runs twice: without
//! `[guard]`, and with a `[guard]` whose rule covers the tested paths, so each request is planned
//! by the guard before it is proxied.

use super::harness::Gateway;
use super::ops::{tls_connect, TestCert, H1};
use super::rough_upstream::{chunked_body, RoughUpstream, PAUSE, PUSHES};
use scimgate::auth;
use scimgate::config::{Config, TlsSettings};
use scimgate::gateway::server;
use scimgate::store::engine::StoreSettings;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// The backend read timeout of every test gateway: every pause of the upstream is longer.
const BACKEND_READ_TIMEOUT_MS: u64 = 1000;

/// A guard whose rule matches every `/t/{case}` path (PATCH carrying `email`), so GETs there are
/// planned and allowed by the guard and PATCHes with a body are read and forwarded by it.
const GUARD: &str = r#"
[guard]
[guard.identity]
source = "header"
header = "X-Test-User"

[[guard.rules]]
name = "test-email"
methods = ["PATCH"]
path = "/t/{case}"
fields = ["email"]
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    Plain,
    Guarded,
}

/// A gateway in front of a fresh rough upstream, configured by `tests/fixtures/alt.toml` plus
/// `[guard]` (when guarded) and `proxy` (a `[proxy]` section, or nothing).
fn gateway(setup: Setup, proxy: &str) -> (Gateway, RoughUpstream) {
    gateway_with(setup, proxy, |_, _| Vec::new())
}

/// Like [`gateway`], with `adjust` applied to the config last (given the gateway's folder); it
/// returns further addresses to wait for.
fn gateway_with(
    setup: Setup,
    proxy: &str,
    adjust: impl FnOnce(&mut Config, &Path) -> Vec<SocketAddr>,
) -> (Gateway, RoughUpstream) {
    std::env::set_var("SCIMGATE_ALT_API_KEY", "alt-e2e-api-key");
    let upstream = RoughUpstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = include_str!("../fixtures/alt.toml").to_string();
    if setup == Setup::Guarded {
        text.push_str(GUARD);
    }
    text.push_str(proxy);
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alt.toml");
    let mut config = scimgate::config::from_str(&text, &file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.guard.is_some(), setup == Setup::Guarded);
    config.server.listen = vec![server::free_port().expect("port")];
    config.backend.address = upstream.addr;
    config.backend.read_timeout = Duration::from_millis(BACKEND_READ_TIMEOUT_MS);
    config.store = StoreSettings::Sqlite(dir.path().join("scimgate.sqlite"));
    let mut wait_for = adjust(&mut config, dir.path());
    wait_for.push(upstream.addr);
    let conf = server::server_conf(1, Duration::ZERO, dir.path());
    let gw = Gateway::start(
        server::build(conf),
        config,
        auth::generate_key(),
        dir,
        &wait_for,
    );
    (gw, upstream)
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Orderly close (FIN).
    Closed,
    /// Reset by the gateway: an aborted response.
    Reset,
    /// Still open when the test stopped waiting.
    StillOpen,
}

/// A raw client connection to the gateway.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(gw: &Gateway) -> Client {
        let stream = TcpStream::connect(gw.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads until the response head is complete; returns it and leaves the rest buffered.
    fn head(&mut self) -> String {
        read_head(&mut self.stream, &mut self.buf)
    }

    /// Reads until at least `n` bytes are buffered (or the connection ends); takes them all.
    fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
            }
        }
        std::mem::take(&mut self.buf)
    }

    /// Reads everything until the connection ends or `wait` passes.
    fn rest(&mut self, wait: Duration) -> (Vec<u8>, Ending) {
        self.stream.set_read_timeout(Some(wait)).expect("timeout");
        let mut chunk = [0u8; 4096];
        let ending = loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => break Ending::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break Ending::Reset,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    break Ending::StillOpen
                }
                Err(e) => panic!("read: {e}"),
            }
        };
        (std::mem::take(&mut self.buf), ending)
    }
}

/// Reads from `stream` into `buf` until a response head is complete; returns the head and
/// leaves what follows it in `buf`.
fn read_head(stream: &mut impl Read, buf: &mut Vec<u8>) -> String {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            buf.drain(..end + 4);
            return head;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => panic!("no response head: {:?}", String::from_utf8_lossy(buf)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn get(gw: &Gateway, version: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/{version}\r\nHost: {}\r\n\r\n", gw.addr).into_bytes()
}

fn upgrade(gw: &Gateway, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        gw.addr
    )
    .into_bytes()
}

fn header<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// Asserts that a response cut short carries nothing the upstream did not send: `body` must be a
/// prefix of `sent`, never the gateway's error JSON.
fn assert_only_upstream_bytes(body: &[u8], sent: &[u8]) {
    assert!(
        sent.starts_with(body),
        "foreign bytes in the response: {:?}",
        String::from_utf8_lossy(body)
    );
}

// ---- 1. timeouts of proxied traffic ----------------------------------------------------------

fn idle_websocket_outlives_the_backend_read_timeout(setup: Setup) {
    let (gw, _up) = gateway(setup, "");
    let mut c = Client::connect(&gw);
    c.send(&upgrade(&gw, "/t/ws"));
    let head = c.head();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    std::thread::sleep(Duration::from_millis(2500));
    for message in [&b"still there?"[..], b"\x81\x05hello"] {
        c.send(message);
        assert_eq!(c.take(message.len()), message, "echo after the idle time");
    }
    let (extra, ending) = c.rest(Duration::from_millis(300));
    assert_eq!((extra, ending), (Vec::new(), Ending::StillOpen));
}

fn upgraded_connection_idle_past_its_limit_ends_without_foreign_bytes(setup: Setup) {
    let (gw, _up) = gateway(setup, "\n[proxy]\nupgrade_idle_timeout_ms = 1500\n");
    let mut c = Client::connect(&gw);
    c.send(&upgrade(&gw, "/t/ws"));
    assert!(c.head().starts_with("HTTP/1.1 101"));
    c.send(b"ping");
    assert_eq!(c.take(4), b"ping");
    let started = Instant::now();
    let (bytes, ending) = c.rest(Duration::from_secs(6));
    assert_eq!(bytes, b"", "nothing may be written into an upgraded stream");
    assert_eq!(ending, Ending::Reset);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1300) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

fn websocket_pushing_to_a_silent_client_stays_open_then_idles_out(setup: Setup) {
    let (gw, _up) = gateway(setup, "\n[proxy]\nupgrade_idle_timeout_ms = 1500\n");
    let mut c = Client::connect(&gw);
    c.send(&upgrade(&gw, "/t/ws-push"));
    assert!(c.head().starts_with("HTTP/1.1 101"));
    let started = Instant::now();
    // The client never sends: the backend's pushes (3 s of them) keep the connection open.
    assert_eq!(c.take(PUSHES), vec![b'.'; PUSHES]);
    assert!(started.elapsed() > Duration::from_millis(2500));
    // Then the backend falls silent: the connection idles out, with nothing written into it.
    let (bytes, ending) = c.rest(Duration::from_secs(6));
    assert_eq!((bytes, ending), (Vec::new(), Ending::Reset));
}

fn websocket_client_talking_to_a_silent_backend_stays_open(setup: Setup) {
    let (gw, _up) = gateway(setup, "\n[proxy]\nupgrade_idle_timeout_ms = 1500\n");
    let mut c = Client::connect(&gw);
    c.send(&upgrade(&gw, "/t/ws-sink"));
    assert!(c.head().starts_with("HTTP/1.1 101"));
    // The backend never answers: the client's own messages (3 s of them) keep it open.
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(300));
        c.send(b"tick");
    }
    let (bytes, ending) = c.rest(Duration::from_millis(500));
    assert_eq!((bytes, ending), (Vec::new(), Ending::StillOpen));
    let (bytes, ending) = c.rest(Duration::from_secs(4));
    assert_eq!(
        (bytes, ending),
        (Vec::new(), Ending::Reset),
        "then it idles out"
    );
}

fn long_poll_outlives_the_backend_read_timeout(setup: Setup) {
    let (gw, _up) = gateway(setup, "");
    let r = gw.request("GET", "/t/long-poll", &[], None);
    assert_eq!((r.status, r.text().as_str()), (200, "done"));
}

fn upstream_stalling_after_the_head_is_cut_at_the_proxy_read_timeout(setup: Setup) {
    let (gw, _up) = gateway(setup, "\n[proxy]\nread_timeout_ms = 1500\n");
    let mut c = Client::connect(&gw);
    c.send(&get(&gw, "1.1", "/t/stall-length"));
    let head = c.head();
    assert_eq!(header(&head, "content-length"), ["10"], "{head}");
    let started = Instant::now();
    let (body, ending) = c.rest(Duration::from_secs(6));
    assert_eq!((body.as_slice(), ending), (&b"abc"[..], Ending::Reset));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1300) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

// ---- 2. failures after the head abort the connection ------------------------------------------

fn content_length_body_cut_by_the_upstream_aborts_the_client(setup: Setup) {
    let (gw, _up) = gateway(setup, "");
    let mut c = Client::connect(&gw);
    c.send(&get(&gw, "1.1", "/t/die-length"));
    let head = c.head();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "content-length"), ["1000"]);
    let (body, ending) = c.rest(Duration::from_secs(5));
    assert_eq!(ending, Ending::Reset);
    assert_only_upstream_bytes(&body, &[b'a'; 100]);
}

fn chunked_body_cut_by_the_upstream_aborts_the_client(setup: Setup) {
    let (gw, _up) = gateway(setup, "");
    let mut c = Client::connect(&gw);
    c.send(&get(&gw, "1.1", "/t/die-chunked"));
    let head = c.head();
    assert_eq!(header(&head, "transfer-encoding"), ["chunked"], "{head}");
    let (wire, ending) = c.rest(Duration::from_secs(5));
    assert_eq!(ending, Ending::Reset);
    let (data, terminated) = dechunk(&wire);
    assert!(
        !terminated,
        "a terminating chunk completes the cut body: {wire:?}"
    );
    assert_only_upstream_bytes(&data, b"helloworld");
}

/// Decodes complete chunks from `wire`; true when the terminating chunk was among them.
fn dechunk(mut wire: &[u8]) -> (Vec<u8>, bool) {
    let mut data = Vec::new();
    while let Some(line_end) = wire.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&wire[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or_else(|| panic!("not chunked framing: {wire:?}"));
        if size == 0 {
            return (data, true);
        }
        let Some(chunk) = wire.get(line_end + 2..line_end + 2 + size) else {
            break;
        };
        data.extend_from_slice(chunk);
        wire = wire.get(line_end + 4 + size..).unwrap_or_default();
    }
    (data, false)
}

fn upgraded_connection_cut_by_the_upstream_ends_without_foreign_bytes(setup: Setup) {
    let (gw, _up) = gateway(setup, "");
    let mut c = Client::connect(&gw);
    c.send(&upgrade(&gw, "/t/ws-die"));
    assert!(c.head().starts_with("HTTP/1.1 101"));
    let (bytes, ending) = c.rest(Duration::from_secs(5));
    assert_eq!(ending, Ending::Reset);
    assert_only_upstream_bytes(&bytes, b"hi");
}

// ---- 3. HTTP/1.0 clients -----------------------------------------------------------------------

fn http10_client_gets_a_chunked_answer_dechunked_then_closed(setup: Setup) {
    let (gw, up) = gateway(setup, "");
    let mut c = Client::connect(&gw);
    c.send(&get(&gw, "1.0", "/t/chunked"));
    let head = c.head();
    assert!(head.contains(" 200 "), "{head}");
    assert!(header(&head, "transfer-encoding").is_empty(), "{head}");
    assert_eq!(header(&head, "connection"), ["close"], "{head}");
    let (body, ending) = c.rest(Duration::from_secs(5));
    assert_eq!(
        ending,
        Ending::Closed,
        "the end of the body is the end of the connection"
    );
    assert!(
        body == chunked_body(),
        "the body is byte-identical ({} bytes)",
        body.len()
    );
    assert!(up.heads()[0].starts_with("GET /t/chunked HTTP/1.1"));
}

fn http10_client_gets_a_content_length_answer_as_sent(setup: Setup) {
    let (gw, _up) = gateway(setup, "");
    let mut c = Client::connect(&gw);
    c.send(&get(&gw, "1.0", "/t/paused-length"));
    let head = c.head();
    assert_eq!(header(&head, "content-length"), ["10"], "{head}");
    assert!(header(&head, "transfer-encoding").is_empty(), "{head}");
    let (body, ending) = c.rest(Duration::from_secs(6));
    assert_eq!(
        (body.as_slice(), ending),
        (&b"0123456789"[..], Ending::Closed)
    );
}

fn http10_client_sees_a_cut_chunked_answer_as_aborted(setup: Setup) {
    let (gw, _up) = gateway(setup, "");
    let mut c = Client::connect(&gw);
    c.send(&get(&gw, "1.0", "/t/die-chunked"));
    let head = c.head();
    assert!(header(&head, "transfer-encoding").is_empty(), "{head}");
    let (body, ending) = c.rest(Duration::from_secs(5));
    assert_eq!(
        ending,
        Ending::Reset,
        "a close would pass {body:?} off as complete"
    );
    assert_only_upstream_bytes(&body, b"helloworld");
}

fn http11_client_still_gets_chunked(setup: Setup) {
    let (gw, _up) = gateway(setup, "");
    let r = gw.request("GET", "/t/chunked", &[], None);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(r.body == chunked_body(), "{} bytes", r.body.len());
}

// ---- 4. the head of a Content-Length answer is sent at once ------------------------------------

fn content_length_head_and_first_bytes_arrive_before_the_body_is_complete(setup: Setup) {
    let (gw, _up) = gateway(setup, "");
    let mut c = Client::connect(&gw);
    let started = Instant::now();
    c.send(&get(&gw, "1.1", "/t/paused-length"));
    let head = c.head();
    let head_at = started.elapsed();
    assert_eq!(header(&head, "content-length"), ["10"], "{head}");
    assert!(head_at < PAUSE / 2, "the head took {head_at:?}");
    assert_eq!(c.take(5), b"01234");
    let first_at = started.elapsed();
    assert!(
        first_at < PAUSE * 2 - PAUSE / 4,
        "the first bytes took {first_at:?}"
    );
    assert_eq!(c.take(5), b"56789");
}

// ---- what else changes: hop-by-hop headers only -------------------------------------------------

fn response_headers_pass_except_hop_by_hop(setup: Setup) {
    let (gw, _up) = gateway(setup, "");
    let mut c = Client::connect(&gw);
    c.send(&get(&gw, "1.1", "/t/hop-headers"));
    let head = c.head();
    assert_eq!(header(&head, "x-app"), ["kept"], "{head}");
    assert_eq!(header(&head, "set-cookie"), ["a=1", "b=2"], "{head}");
    assert_eq!(header(&head, "cache-control"), ["no-cache"], "{head}");
    assert_eq!(header(&head, "content-length"), ["2"], "{head}");
    for hop in ["keep-alive", "x-hop", "proxy-connection", "upgrade"] {
        assert!(header(&head, hop).is_empty(), "{hop} was relayed: {head}");
    }
    assert_eq!(
        header(&head, "connection"),
        ["keep-alive"],
        "the gateway's own: {head}"
    );
    assert_eq!(c.take(2), b"ok");
    // The same answer to a request whose body the guard reads (with [guard]: relayed by it).
    let body = br#"{"displayName": "Ann"}"#;
    let headers = [("Content-Type", "application/json")];
    let r = gw.request("PATCH", "/t/hop-headers", &headers, Some(body));
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(r.header("x-app"), Some("kept"));
    for hop in ["keep-alive", "x-hop", "proxy-connection", "upgrade"] {
        assert_eq!(r.header(hop), None, "{hop} was relayed: {:?}", r.headers);
    }
}

fn content_length_head_arrives_at_once_over_tls(setup: Setup) {
    let cert = TestCert::new();
    let (_gw, _up, tls) = tls_gateway(setup, &cert);
    let mut c = tls_connect(tls, &[&cert], &[&rustls::version::TLS13], H1).expect("handshake");
    let started = Instant::now();
    let request = format!(
        "GET /t/paused-length HTTP/1.1\r\nHost: localhost:{}\r\n\r\n",
        tls.port()
    );
    c.stream.write_all(request.as_bytes()).expect("write");
    let mut buf = Vec::new();
    let head = read_head(&mut c.stream, &mut buf);
    let head_at = started.elapsed();
    assert_eq!(header(&head, "content-length"), ["10"], "{head}");
    assert!(head_at < PAUSE / 2, "the head took {head_at:?}");
}

// ---- 5. forwarded headers ----------------------------------------------------------------------

const SPOOFED: [(&str, &str); 4] = [
    ("X-Forwarded-For", "6.6.6.6"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Host", "evil.example"),
    ("Forwarded", "for=6.6.6.6;proto=https"),
];

fn forwarded_headers_replace_client_values(setup: Setup) {
    let (gw, up) = gateway(setup, "");
    let r = gw.request("GET", "/t/echo-headers", &SPOOFED, None);
    assert_eq!(r.status, 200);
    let seen = r.text();
    let host = gw.addr.to_string();
    assert_eq!(header(&seen, "x-forwarded-for"), ["127.0.0.1"], "{seen}");
    assert_eq!(header(&seen, "x-forwarded-proto"), ["http"], "{seen}");
    assert_eq!(header(&seen, "x-forwarded-host"), [host.as_str()], "{seen}");
    let forwarded = format!("for=127.0.0.1;host=\"{host}\";proto=http");
    assert_eq!(header(&seen, "forwarded"), [forwarded.as_str()], "{seen}");
    assert_eq!(up.heads().len(), 1);
}

/// With `[guard]`, the guard reads this body and forwards the request itself (not pingora).
fn forwarded_headers_on_a_request_with_a_body(setup: Setup) {
    let (gw, up) = gateway(setup, "");
    let body = br#"{"displayName": "Ann"}"#;
    let mut headers = SPOOFED.to_vec();
    headers.push(("Content-Type", "application/json"));
    let r = gw.request("PATCH", "/t/echo-headers", &headers, Some(body));
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.text();
    assert!(seen.starts_with("PATCH /t/echo-headers HTTP/1.1"), "{seen}");
    assert_eq!(header(&seen, "x-forwarded-for"), ["127.0.0.1"], "{seen}");
    assert_eq!(header(&seen, "x-forwarded-proto"), ["http"], "{seen}");
    assert_eq!(header(&seen, "forwarded").len(), 1, "{seen}");
    assert!(
        !seen.contains("6.6.6.6") && !seen.contains("evil"),
        "{seen}"
    );
    assert_eq!(up.heads().len(), 1);
}

/// A gateway with an HTTPS listener (certificate `cert`), and that listener's address.
fn tls_gateway(setup: Setup, cert: &TestCert) -> (Gateway, RoughUpstream, SocketAddr) {
    let tls = server::free_port().expect("port");
    let (gw, up) = gateway_with(setup, "", |config, dir| {
        cert.install(dir);
        config.server.tls = Some(TlsSettings {
            listen: vec![tls],
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            http2: false,
        });
        vec![tls]
    });
    (gw, up, tls)
}

fn forwarded_headers_say_https_over_tls(setup: Setup) {
    let cert = TestCert::new();
    let (_gw, _up, tls) = tls_gateway(setup, &cert);
    let mut c = tls_connect(tls, &[&cert], &[&rustls::version::TLS13], H1).expect("handshake");
    let r = c
        .send("GET", "/t/echo-headers", &SPOOFED, None)
        .expect("reply");
    let seen = r.text();
    let host = format!("localhost:{}", tls.port());
    assert_eq!(header(&seen, "x-forwarded-for"), ["127.0.0.1"], "{seen}");
    assert_eq!(header(&seen, "x-forwarded-proto"), ["https"], "{seen}");
    assert_eq!(header(&seen, "x-forwarded-host"), [host.as_str()], "{seen}");
    let forwarded = format!("for=127.0.0.1;host=\"{host}\";proto=https");
    assert_eq!(header(&seen, "forwarded"), [forwarded.as_str()], "{seen}");
}

fn forwarded_headers_from_a_trusted_proxy_are_extended(setup: Setup) {
    let (gw, _up) = gateway(setup, "\n[proxy]\ntrusted_proxies = [\"127.0.0.0/8\"]\n");
    let r = gw.request("GET", "/t/echo-headers", &SPOOFED, None);
    let seen = r.text();
    let host = gw.addr.to_string();
    assert_eq!(
        header(&seen, "x-forwarded-for"),
        ["6.6.6.6, 127.0.0.1"],
        "{seen}"
    );
    assert_eq!(header(&seen, "x-forwarded-proto"), ["https"], "{seen}");
    assert_eq!(
        header(&seen, "x-forwarded-host"),
        ["evil.example"],
        "{seen}"
    );
    let forwarded = format!("for=6.6.6.6;proto=https, for=127.0.0.1;host=\"{host}\";proto=http");
    assert_eq!(header(&seen, "forwarded"), [forwarded.as_str()], "{seen}");
}

fn forwarded_headers_can_be_turned_off(setup: Setup) {
    let (gw, _up) = gateway(setup, "\n[proxy]\nforwarded_headers = false\n");
    let seen = gw.request("GET", "/t/echo-headers", &SPOOFED, None).text();
    for (name, value) in SPOOFED {
        assert_eq!(header(&seen, name), [value], "{seen}");
    }
    let seen = gw.request("GET", "/t/echo-headers", &[], None).text();
    assert!(!seen.to_ascii_lowercase().contains("forwarded"), "{seen}");
}

/// Runs each test function once without and once with `[guard]`.
macro_rules! without_and_with_guard {
    ($($name:ident),* $(,)?) => {
        mod without_guard {
            $( #[test] fn $name() { super::$name(super::Setup::Plain) } )*
        }
        mod with_guard {
            $( #[test] fn $name() { super::$name(super::Setup::Guarded) } )*
        }
    };
}

without_and_with_guard!(
    idle_websocket_outlives_the_backend_read_timeout,
    upgraded_connection_idle_past_its_limit_ends_without_foreign_bytes,
    websocket_pushing_to_a_silent_client_stays_open_then_idles_out,
    websocket_client_talking_to_a_silent_backend_stays_open,
    long_poll_outlives_the_backend_read_timeout,
    upstream_stalling_after_the_head_is_cut_at_the_proxy_read_timeout,
    content_length_body_cut_by_the_upstream_aborts_the_client,
    chunked_body_cut_by_the_upstream_aborts_the_client,
    upgraded_connection_cut_by_the_upstream_ends_without_foreign_bytes,
    http10_client_gets_a_chunked_answer_dechunked_then_closed,
    http10_client_gets_a_content_length_answer_as_sent,
    http10_client_sees_a_cut_chunked_answer_as_aborted,
    http11_client_still_gets_chunked,
    content_length_head_and_first_bytes_arrive_before_the_body_is_complete,
    content_length_head_arrives_at_once_over_tls,
    forwarded_headers_replace_client_values,
    response_headers_pass_except_hop_by_hop,
    forwarded_headers_on_a_request_with_a_body,
    forwarded_headers_say_https_over_tls,
    forwarded_headers_from_a_trusted_proxy_are_extended,
    forwarded_headers_can_be_turned_off,
);
