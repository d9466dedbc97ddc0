//! A minimal blocking HTTP/1.1 client connection: keep-alive when the server allows it,
//! reconnect when it does not (HTTP/1.0, `Connection: close`), Content-Length, chunked or
//! read-to-EOF bodies.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response: status and body.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One client connection, opened lazily and reopened after the server closes it.
pub struct Conn {
    addr: SocketAddr,
    timeout: Duration,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    /// Connections opened so far.
    pub connects: u64,
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

impl Conn {
    pub fn new(addr: SocketAddr, timeout: Duration) -> Conn {
        Conn {
            addr,
            timeout,
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
            connects: 0,
        }
    }

    /// Opens the connection now if it is not open.
    pub fn ensure_open(&mut self) -> io::Result<()> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, self.timeout)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(self.timeout))?;
            s.set_write_timeout(Some(self.timeout))?;
            self.stream = Some(s);
            self.buf.clear();
            self.connects += 1;
        }
        Ok(())
    }

    /// Sends `req` and reads the whole response. A reused connection that fails before any
    /// response byte arrives (closed by the server while idle) is reopened and tried once more.
    pub fn request(&mut self, req: &[u8]) -> io::Result<Response> {
        let reused = self.stream.is_some();
        match self.try_request(req) {
            Err(e) if reused && e.kind() != io::ErrorKind::WouldBlock && self.buf.is_empty() => {
                self.stream = None;
                self.try_request(req).map_err(|e2| {
                    io::Error::new(e2.kind(), format!("{e2} (after retry of: {e})"))
                })
            }
            other => other,
        }
    }

    fn try_request(&mut self, req: &[u8]) -> io::Result<Response> {
        self.ensure_open()?;
        self.buf.clear();
        let result = self.exchange(req);
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    fn exchange(&mut self, req: &[u8]) -> io::Result<Response> {
        let stream = self.stream.as_mut().ok_or_else(|| invalid("not connected"))?;
        stream.write_all(req)?;
        loop {
            let head_end = read_until_head(stream, &mut self.buf)?;
            let head = parse_head(&self.buf[..head_end])?;
            if (100..200).contains(&head.status) {
                self.buf.drain(..head_end);
                continue;
            }
            let body = read_body(stream, &mut self.buf, head_end, &head)?;
            if !head.keep_alive {
                self.stream = None;
            }
            self.buf.clear();
            return Ok(Response {
                status: head.status,
                body,
            });
        }
    }
}

struct Head {
    status: u16,
    keep_alive: bool,
    length: Option<usize>,
    chunked: bool,
    no_body: bool,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk)?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// Reads until the end of the response head; returns the offset just past it.
fn read_until_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut searched = 0;
    loop {
        if let Some(p) = find(buf, b"\r\n\r\n", searched) {
            return Ok(p + 4);
        }
        searched = buf.len().saturating_sub(3);
        if buf.len() > 1 << 20 {
            return Err(invalid("response head too large"));
        }
        if fill(stream, buf)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the response head",
            ));
        }
    }
}

fn parse_head(head: &[u8]) -> io::Result<Head> {
    let text = std::str::from_utf8(head).map_err(|_| invalid("response head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or("");
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let mut keep_alive = version == "HTTP/1.1";
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            length = Some(v.parse().map_err(|_| invalid("bad content-length"))?);
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().contains("chunked");
        } else if k.eq_ignore_ascii_case("connection") {
            let v = v.to_ascii_lowercase();
            if v.contains("close") {
                keep_alive = false;
            } else if v.contains("keep-alive") {
                keep_alive = true;
            }
        }
    }
    let no_body = status == 204 || status == 304;
    if !no_body && length.is_none() && !chunked {
        keep_alive = false;
    }
    Ok(Head {
        status,
        keep_alive,
        length,
        chunked,
        no_body,
    })
}

fn read_body(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    start: usize,
    head: &Head,
) -> io::Result<Vec<u8>> {
    if head.no_body {
        return Ok(Vec::new());
    }
    if head.chunked {
        return read_chunked(stream, buf, start);
    }
    match head.length {
        Some(len) => {
            while buf.len() < start + len {
                if fill(stream, buf)? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed inside the body",
                    ));
                }
            }
            Ok(buf[start..start + len].to_vec())
        }
        None => {
            while fill(stream, buf)? > 0 {}
            Ok(buf[start..].to_vec())
        }
    }
}

fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>, start: usize) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut pos = start;
    loop {
        let line_end = loop {
            if let Some(p) = find(buf, b"\r\n", pos) {
                break p;
            }
            if fill(stream, buf)? == 0 {
                return Err(invalid("connection closed inside a chunk header"));
            }
        };
        let size_text = std::str::from_utf8(&buf[pos..line_end]).map_err(|_| invalid("chunk"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        pos = line_end + 2;
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                if let Some(p) = find(buf, b"\r\n", pos) {
                    if p == pos {
                        return Ok(body);
                    }
                    pos = p + 2;
                    continue;
                }
                if fill(stream, buf)? == 0 {
                    return Err(invalid("connection closed inside trailers"));
                }
            }
        }
        while buf.len() < pos + size + 2 {
            if fill(stream, buf)? == 0 {
                return Err(invalid("connection closed inside a chunk"));
            }
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}
