//! What the gateway does to traffic it passes to the backend unchanged, and nothing more:
//! forwarded headers on the request, the timeouts of proxied and upgraded connections, framing an
//! HTTP/1.0 client can read, and aborting (never patching) a response whose upstream failed after
//! its head was sent.

use super::hop_by_hop;
use crate::config::ProxySettings;
use crate::forwarded::{Forwarding, HeaderChange, Hop};
use http::header::{HOST, TRANSFER_ENCODING};
use http::{HeaderMap, Version};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, Result};
use std::os::fd::BorrowedFd;
use std::time::Duration;

/// The forwarded-header changes for a request arriving on `session` with `headers`.
pub fn forwarded_changes(
    forwarding: &Forwarding,
    session: &Session,
    headers: &HeaderMap,
    authority: Option<&str>,
) -> Vec<HeaderChange> {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or(authority);
    let hop = Hop {
        peer: session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip()),
        https: session.digest().is_some_and(|d| d.ssl_digest.is_some()),
        host,
    };
    forwarding.changes(headers, &hop)
}

/// Adds the forwarded headers to a request pingora is about to send upstream.
pub fn add_forwarded(
    settings: &ProxySettings,
    session: &Session,
    upstream: &mut RequestHeader,
) -> Result<()> {
    let Some(forwarding) = &settings.forwarded else {
        return Ok(());
    };
    let authority = upstream.uri.authority().map(|a| a.as_str().to_string());
    for (name, value) in
        forwarded_changes(forwarding, session, &upstream.headers, authority.as_deref())
    {
        match value {
            Some(v) => upstream.insert_header(name, v)?,
            None => {
                upstream.remove_header(&name);
            }
        }
    }
    Ok(())
}

/// The peer for one proxied request: an upgrade request (WebSocket) waits for its answer and
/// then reads under `upgrade_idle_timeout_ms`, everything else under `read_timeout_ms`.
pub fn peer_for(mut peer: HttpPeer, settings: &ProxySettings, session: &Session) -> HttpPeer {
    if session.is_upgrade_req() {
        peer.options.read_timeout = settings.upgrade_idle_timeout;
    }
    peer
}

/// Adjusts an upstream response head before it goes to the client: hop-by-hop headers are
/// dropped; an upgraded connection reads the client under the upgrade idle timeout (instead of
/// pingora's 60 s); an HTTP/1.0 client, which cannot parse chunked framing, gets the body
/// de-chunked and delimited by the end of the connection.
///
/// pingora restarts both read timeouts of an upgraded connection whenever data moves either
/// way, so together they end a connection idle in both directions, never a one-way stream.
pub fn adjust_response(settings: &ProxySettings, session: &mut Session, head: &mut ResponseHeader) {
    for name in hop_by_hop::response_drops(head.status.as_u16(), &head.headers) {
        head.remove_header(&name);
    }
    if head.status.as_u16() == 101 {
        session.set_read_timeout(settings.upgrade_idle_timeout);
    }
    if session.req_header().version == Version::HTTP_10
        && head.headers.contains_key(TRANSFER_ENCODING)
    {
        head.remove_header(&TRANSFER_ENCODING);
        session.set_keepalive(None);
    }
}

/// Ends a response whose head was already sent and which failed with `e`: nothing more is
/// written, the failure is logged (at `warn` unless the client went away), and the connection
/// will end with a reset.
pub fn abort_started(session: &Session, e: &Error, route: &str, request_id: &str) {
    let path = session.req_header().uri.path();
    let status = session.response_written().map(|r| r.status.as_u16());
    if e.esource() == &ErrorSource::Downstream {
        tracing::debug!(route, path, status, request_id, error = %e, "response cut short: the client went away");
    } else {
        tracing::warn!(route, path, status, request_id, error = %e, "response aborted: it failed after its head was sent");
    }
    reset_on_close(session);
}

/// Makes the client connection end with a reset instead of an orderly close: a close could pass
/// a cut body off as complete (a body delimited by the end of the connection), a reset cannot.
fn reset_on_close(session: &Session) {
    let Some(stream) = session.downstream_session.stream() else {
        return; // HTTP/2: pingora resets the stream itself.
    };
    let fd = stream.id();
    if fd < 0 {
        return;
    }
    // SAFETY: `fd` is the socket of the client connection `session` owns; `session` is borrowed
    // for this whole function, so the descriptor stays open while it is borrowed here.
    let socket = unsafe { BorrowedFd::borrow_raw(fd) };
    if let Err(e) = socket2::SockRef::from(&socket).set_linger(Some(Duration::ZERO)) {
        tracing::debug!(error = %e, "could not arm the connection reset");
    }
}
