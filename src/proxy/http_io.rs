//! Reading a whole request body (capped, answering `Expect: 100-continue`) and writing a complete
//! response from inside `request_filter`, keeping the client connection reusable.

use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the cap.
    TooLarge,
    /// The client sent a broken body (malformed chunked framing) or went away.
    Unreadable,
}

/// Reads the whole request body, refusing more than `cap` bytes. When the body cannot be read,
/// where the next request on the connection would start is unknown: the connection is marked
/// to close after the answer, so no byte after the broken framing is read as a request.
pub async fn read_body(session: &mut Session, cap: usize) -> Result<Bytes, BodyError> {
    let read = read_whole_body(session, cap).await;
    if read == Err(BodyError::Unreadable) {
        session.set_keepalive(None);
    }
    read
}

async fn read_whole_body(session: &mut Session, cap: usize) -> Result<Bytes, BodyError> {
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > cap) {
        return Err(BodyError::TooLarge);
    }
    if expects_continue(session) {
        session.set_close_on_response_before_downstream_finish(false);
        let sent = session.write_continue_response().await;
        session.set_close_on_response_before_downstream_finish(true);
        sent.map_err(|_| BodyError::Unreadable)?;
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = session
        .read_request_body()
        .await
        .map_err(|_| BodyError::Unreadable)?
    {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn expects_continue(session: &Session) -> bool {
    session
        .req_header()
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Writes a whole response: status, `headers`, `Content-Type` (when there is a body) and
/// `Content-Length`.
pub async fn write_response(
    session: &mut Session,
    status: u16,
    content_type: &str,
    headers: &[(&str, String)],
    body: Bytes,
) -> pingora::Result<()> {
    let mut header = ResponseHeader::build(status, Some(headers.len() + 3))?;
    for (name, value) in headers {
        header.append_header(name.to_string(), value.as_str())?;
    }
    if status != 204 && status != 304 {
        if !body.is_empty() {
            header.insert_header(http::header::CONTENT_TYPE, content_type)?;
        }
        header.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    }
    header.insert_header(http::header::CACHE_CONTROL, "no-store")?;
    send(session, header, body).await
}

/// Writes a prepared head and the whole body.
async fn send(session: &mut Session, header: ResponseHeader, body: Bytes) -> pingora::Result<()> {
    let empty = body.is_empty();
    session
        .write_response_header(Box::new(header), empty)
        .await?;
    if !empty {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// Hop-by-hop headers (RFC 9110 §7.6.1), never relayed.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Whether a header is end-to-end (relayed) rather than hop-by-hop.
pub fn end_to_end(name: &http::HeaderName) -> bool {
    !HOP_BY_HOP.contains(&name.as_str())
}

/// Writes a response received from the backend: its status and end-to-end headers, and the body
/// with a fresh `Content-Length`.
pub async fn write_relayed(
    session: &mut Session,
    status: u16,
    headers: &http::HeaderMap,
    body: Bytes,
) -> pingora::Result<()> {
    let mut header = ResponseHeader::build(status, Some(headers.len() + 1))?;
    for (name, value) in headers.iter().filter(|(n, _)| end_to_end(n)) {
        header.append_header(name.clone(), value.clone())?;
    }
    if status != 204 && status != 304 {
        header.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    }
    send(session, header, body).await
}
