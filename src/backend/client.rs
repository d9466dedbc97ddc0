//! HTTP calls to the backend over pingora's pooled [`Connector`]: one request in, status,
//! headers and a size-capped body out, with connect/read deadlines and a single retry when a
//! pooled connection turns out to be stale.

use super::peer::UpstreamPeer;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::protocols::http::client::HttpSession;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};
use std::sync::Arc;
use std::time::Duration;

/// Largest backend response body the gateway reads.
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// A backend answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// Why a backend call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// Could not connect, or the connection broke.
    Unreachable(String),
    /// No answer within the deadline.
    Timeout(String),
    /// An answer that is not usable HTTP (or too large).
    Protocol(String),
    /// The gateway could not obtain its credential (the OAuth token endpoint failed).
    Credential(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(m) => write!(f, "backend unreachable: {m}"),
            CallError::Timeout(m) => write!(f, "backend timed out: {m}"),
            CallError::Protocol(m) => write!(f, "backend answered garbage: {m}"),
            CallError::Credential(m) => write!(f, "backend credential unavailable: {m}"),
        }
    }
}

/// One outgoing request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Origin-form target (`/api/x?y=1`).
    pub target: String,
    /// Headers besides Content-Length, which the client sets (and Host, unless given here).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Body, if any.
    pub body: Option<Bytes>,
}

/// A pooled client for one upstream (plain HTTP or TLS).
pub struct Client {
    connector: Connector,
    upstream: Arc<UpstreamPeer>,
    connect: Duration,
    read: Duration,
    host: String,
    deadline: Duration,
    slots: tokio::sync::Semaphore,
}

impl Client {
    /// A client for `upstream`, sending `host` as the Host header, with at most `max_calls`
    /// requests in flight (more wait their turn within the call's deadline).
    pub fn new(
        upstream: Arc<UpstreamPeer>,
        host: &str,
        connect: Duration,
        read: Duration,
        max_calls: usize,
    ) -> Self {
        Client {
            connector: Connector::new(None),
            upstream,
            connect,
            read,
            host: host.to_string(),
            deadline: connect + read + read,
            slots: tokio::sync::Semaphore::new(max_calls.max(1)),
        }
    }

    /// Sends `req` and reads the whole answer.
    pub async fn send(&self, req: &Request) -> Result<Response, CallError> {
        match tokio::time::timeout(self.deadline, self.send_with_retry(req)).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout(format!(
                "{} {} took longer than {:?}",
                req.method, req.target, self.deadline
            ))),
        }
    }

    /// The upstream's peer now (its address may have moved), with this client's timeouts.
    fn peer(&self) -> HttpPeer {
        let mut peer = self.upstream.peer();
        peer.options.connection_timeout = Some(self.connect);
        peer.options.read_timeout = Some(self.read);
        peer.options.write_timeout = Some(self.read);
        peer.options.idle_timeout = Some(Duration::from_secs(60));
        peer
    }

    async fn send_with_retry(&self, req: &Request) -> Result<Response, CallError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| CallError::Unreachable("the gateway is shutting down".into()))?;
        let peer = self.peer();
        let (session, reused) = self
            .connector
            .get_http_session(&peer)
            .await
            .map_err(|e| classify(&e, &peer))?;
        match self.exchange(session, &peer, req).await {
            Err((e, wrote)) if reused && !timed_out(&e) && (idempotent(&req.method) || !wrote) => {
                tracing::debug!(error = %e, "stale pooled backend connection; retrying once");
                let (session, _) = self
                    .connector
                    .get_http_session(&peer)
                    .await
                    .map_err(|e| classify(&e, &peer))?;
                self.exchange(session, &peer, req)
                    .await
                    .map_err(|(e, _)| classify(&e, &peer))
            }
            other => other.map_err(|(e, _)| classify(&e, &peer)),
        }
    }

    /// One request/response on `session`; on failure also says whether the request had been sent.
    async fn exchange(
        &self,
        mut session: HttpSession,
        peer: &HttpPeer,
        req: &Request,
    ) -> Result<Response, (Box<Error>, bool)> {
        session.set_read_timeout(Some(self.read));
        session.set_write_timeout(Some(self.read));
        let header = self.header(req).map_err(|e| (e, false))?;
        session
            .write_request_header(header)
            .await
            .map_err(|e| (e, false))?;
        if let Some(body) = &req.body {
            session
                .write_request_body(body.clone(), true)
                .await
                .map_err(|e| (e, false))?;
        }
        session
            .finish_request_body()
            .await
            .map_err(|e| (e, false))?;
        session
            .read_response_header()
            .await
            .map_err(|e| (e, true))?;
        let (status, headers) = match session.response_header() {
            Some(h) => (h.status.as_u16(), h.headers.clone()),
            None => {
                return Err((
                    Error::explain(ErrorType::InvalidHTTPHeader, "no response header"),
                    true,
                ))
            }
        };
        let body = read_body(&mut session).await.map_err(|e| (e, true))?;
        self.connector
            .release_http_session(session, peer, None)
            .await;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn header(&self, req: &Request) -> pingora::Result<Box<RequestHeader>> {
        let mut h = RequestHeader::build(req.method.clone(), req.target.as_bytes(), None)?;
        if !req.headers.iter().any(|(n, _)| n == http::header::HOST) {
            h.insert_header(http::header::HOST, &self.host)?;
        }
        for (name, value) in &req.headers {
            h.append_header(name.clone(), value.clone())?;
        }
        let len = req.body.as_ref().map_or(0, Bytes::len);
        if req.body.is_some() || matches!(req.method, Method::POST | Method::PUT | Method::PATCH) {
            h.insert_header(http::header::CONTENT_LENGTH, len.to_string())?;
        }
        Ok(Box::new(h))
    }
}

async fn read_body(session: &mut HttpSession) -> pingora::Result<Bytes> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = session.read_response_body().await? {
        if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(Error::explain(
                ErrorType::InvalidHTTPHeader,
                "backend response body too large",
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// A timeout is a slow backend, not a stale pooled connection: never retried.
fn timed_out(e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
    )
}

fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

fn classify(e: &Error, peer: &HttpPeer) -> CallError {
    let text = e.to_string();
    match e.etype() {
        ErrorType::TLSHandshakeFailure | ErrorType::InvalidCert | ErrorType::HandshakeError => {
            CallError::Unreachable(format!(
                "TLS handshake with {} failed, is its certificate valid for {:?} and signed by \
                 a trusted CA (backend.tls)? {}",
                peer._address,
                peer.sni,
                text.trim()
            ))
        }
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
            CallError::Timeout(text)
        }
        ErrorType::InvalidHTTPHeader
        | ErrorType::H1Error
        | ErrorType::InvalidH2
        | ErrorType::H2Error => CallError::Protocol(text),
        _ => CallError::Unreachable(text),
    }
}
