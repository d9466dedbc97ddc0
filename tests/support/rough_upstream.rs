//! A purpose-built upstream for the transparency tests: a raw HTTP/1.1 server on loopback that
//! answers each path under `/t/` with one behaviour — echoing the request head, pausing inside a
//! `Content-Length` body, dying in the middle of a body, chunked answers, a long poll, and
//! upgraded connections that echo, push, or are reset. Every connection is closed after one answer.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How long the upstream pauses inside `paused-length` (between head and body, and again
/// inside the body) and before answering `long-poll`: longer than the tests' backend read timeout.
pub const PAUSE: Duration = Duration::from_millis(1500);

/// How many bytes `/t/ws-push` sends after its `101`, one every 300 ms, before falling silent.
pub const PUSHES: usize = 10;

/// The body of `/t/chunked`, sent in three chunks: every byte value, and bytes that look like
/// chunk framing.
pub fn chunked_body() -> Vec<u8> {
    let mut body: Vec<u8> = (0..=255u8).collect();
    body.extend_from_slice(b"\r\n0\r\n\r\n-not-the-end-");
    body.extend((0..4000u32).map(|i| (i % 251) as u8));
    body
}

/// The answer of `/t/hop-headers`: end-to-end headers (kept) and hop-by-hop ones, standard and
/// named by `Connection` (all dropped).
pub const HOP_HEADERS: &[u8] = b"HTTP/1.1 200 OK\r\nX-App: kept\r\nSet-Cookie: a=1\r\n\
Set-Cookie: b=2\r\nCache-Control: no-cache\r\nKeep-Alive: timeout=5, max=100\r\n\
Connection: close, X-Hop\r\nX-Hop: secret\r\nProxy-Connection: keep-alive\r\n\
Upgrade: h2c\r\nContent-Length: 2\r\n\r\nok";

/// A running upstream; the accept thread lives as long as the test process.
pub struct RoughUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl RoughUpstream {
    /// Binds a free loopback port and starts serving.
    pub fn start() -> RoughUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let log = heads.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(stream) = conn else { continue };
                let log = log.clone();
                thread::spawn(move || serve(stream, &log));
            }
        });
        RoughUpstream { addr, heads }
    }

    /// The request heads received so far, in order.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("lock").clone()
    }
}

fn serve(mut stream: TcpStream, log: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Some((head, _body)) = read_request(&mut stream) else {
        return;
    };
    log.lock().expect("lock").push(head.clone());
    let path = head
        .split(' ')
        .nth(1)
        .unwrap_or("")
        .trim_start_matches("/t/")
        .to_string();
    let _ = answer(&mut stream, &path, &head);
}

fn answer(s: &mut TcpStream, path: &str, head: &str) -> std::io::Result<()> {
    const LENGTH_10: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n";
    const CHUNKED: &[u8] =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    const SWITCH: &[u8] =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    match path {
        "echo-headers" => {
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{head}",
                head.len()
            );
            s.write_all(reply.as_bytes())
        }
        "hop-headers" => s.write_all(HOP_HEADERS),
        "long-poll" => {
            thread::sleep(PAUSE);
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndone")
        }
        "paused-length" => {
            s.write_all(LENGTH_10)?;
            thread::sleep(PAUSE);
            s.write_all(b"01234")?;
            thread::sleep(PAUSE);
            s.write_all(b"56789")
        }
        "stall-length" => {
            s.write_all(LENGTH_10)?;
            s.write_all(b"abc")?;
            thread::sleep(Duration::from_secs(10));
            Ok(())
        }
        "die-length" => {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n")?;
            s.write_all(&[b'a'; 100])?;
            thread::sleep(Duration::from_millis(100));
            s.shutdown(Shutdown::Both)
        }
        "chunked" => {
            s.write_all(CHUNKED)?;
            for part in chunked_body().chunks(1500) {
                s.write_all(format!("{:x}\r\n", part.len()).as_bytes())?;
                s.write_all(part)?;
                s.write_all(b"\r\n")?;
                thread::sleep(Duration::from_millis(50));
            }
            s.write_all(b"0\r\n\r\n")
        }
        "die-chunked" => {
            s.write_all(CHUNKED)?;
            s.write_all(b"5\r\nhello\r\n5\r\nworld\r\n")?;
            thread::sleep(Duration::from_millis(100));
            s.shutdown(Shutdown::Both)
        }
        "ws" => {
            s.write_all(SWITCH)?;
            let mut buf = [0u8; 4096];
            loop {
                match s.read(&mut buf)? {
                    0 => return Ok(()),
                    n => s.write_all(&buf[..n])?,
                }
            }
        }
        "ws-push" => {
            s.write_all(SWITCH)?;
            for _ in 0..PUSHES {
                thread::sleep(Duration::from_millis(300));
                s.write_all(b".")?;
            }
            thread::sleep(Duration::from_secs(10));
            Ok(())
        }
        "ws-sink" => {
            s.write_all(SWITCH)?;
            let mut buf = [0u8; 4096];
            while s.read(&mut buf)? > 0 {}
            Ok(())
        }
        "ws-die" => {
            s.write_all(SWITCH)?;
            s.write_all(b"hi")?;
            thread::sleep(Duration::from_millis(100));
            socket2::SockRef::from(&*s).set_linger(Some(Duration::ZERO))
        }
        _ => {
            s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        }
    }
}

/// Reads one request head (as text) and its `Content-Length` body.
fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some((head, body))
}
