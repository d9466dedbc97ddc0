//! A whole-head deadline for HTTP/1 connections (`server.header_timeout_ms`): pingora reads a
//! request head with a per-read timeout only, so a client dribbling its head a byte at a time
//! could hold a connection forever. This wrapper reads the first head itself under the deadline
//! (answering `408` past it), then hands the connection to the proxy; on a kept-alive connection
//! it reads each following head the same way. A head too long for pingora's parser is answered
//! here on SCIM paths ([`head_limits`]).

use super::{head_limits, scim_subpath};
use crate::parts::Parts;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::BytesMut;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN};
use pingora::proxy::{HttpProxy, ProxyHttp};
use pingora::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Keep-alive idle timeout between requests on one connection, in seconds (pingora's default).
const KEEPALIVE_SECS: u64 = 60;

/// A proxy (scimgate's [`super::Proxy`], or one that embeds it) behind a head deadline.
pub struct HeadDeadline<P> {
    proxy: Arc<HttpProxy<P>>,
    parts: Arc<ArcSwap<Parts>>,
}

impl<P> HeadDeadline<P> {
    /// Wraps `proxy`; the deadline is read from the current config for each connection.
    pub fn new(proxy: HttpProxy<P>, parts: Arc<ArcSwap<Parts>>) -> Self {
        HeadDeadline {
            proxy: Arc::new(proxy),
            parts,
        }
    }
}

/// Reads until the end of a request head (after what `buf` already holds), or past
/// [`head_limits::MAX_HEAD`]; `None` when the client went away first.
async fn read_head(stream: &mut Stream, mut buf: BytesMut) -> Option<BytesMut> {
    loop {
        let ended =
            buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n");
        if ended || buf.len() > head_limits::MAX_HEAD {
            return Some(buf);
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

impl<P> HeadDeadline<P> {
    /// The next head on a kept-alive connection: its first bytes within the keep-alive idle
    /// timeout (and before shutdown), the rest within the head deadline. `None` closes.
    async fn next_head(&self, stream: &mut Stream, shutdown: &ShutdownWatch) -> Option<BytesMut> {
        let mut buf = BytesMut::with_capacity(4096);
        let mut stopping = shutdown.clone();
        let idle = Duration::from_secs(KEEPALIVE_SECS);
        tokio::select! {
            read = tokio::time::timeout(idle, stream.read_buf(&mut buf)) => match read {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            },
            _ = stopping.changed() => return None,
        }
        self.rest_of_head(stream, buf).await
    }

    /// Reads the rest of a head under `server.header_timeout_ms`, answering `408` past it.
    async fn rest_of_head(&self, stream: &mut Stream, buf: BytesMut) -> Option<BytesMut> {
        let limit = self.parts.load().config.server.header_timeout;
        match tokio::time::timeout(limit, read_head(stream, buf)).await {
            Ok(head) => head,
            Err(_) => {
                let _ = stream
                    .write_all(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                    .await;
                let _ = stream.flush().await;
                None
            }
        }
    }

    /// Answers a head too long to parse with a SCIM error when it is for a SCIM path; true when
    /// it did (the connection is then closed).
    async fn refused(&self, stream: &mut Stream, head: &[u8]) -> bool {
        let Some(why) = head_limits::too_long(head) else {
            return false;
        };
        let base = self.parts.load().config.scim.base_path.clone();
        let scim = head_limits::target_path(head).is_some_and(|p| scim_subpath(p, &base).is_some());
        if scim {
            let _ = stream.write_all(&head_limits::answer(why)).await;
            let _ = stream.flush().await;
        }
        scim
    }
}

#[async_trait]
impl<P> ServerApp for HeadDeadline<P>
where
    P: ProxyHttp + Send + Sync + 'static,
    P::CTX: Send + Sync,
{
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return self.proxy.process_new(stream, shutdown).await;
        }
        let mut head = self
            .rest_of_head(&mut stream, BytesMut::with_capacity(4096))
            .await?;
        let mut settings: Option<HttpPersistentSettings> = None;
        loop {
            if self.refused(&mut stream, &head).await {
                return None;
            }
            let mut session = ServerSession::new_http1(stream);
            match settings.take() {
                Some(settings) => settings.apply_to_session(&mut session),
                None => session.set_keepalive((!*shutdown.borrow()).then_some(KEEPALIVE_SECS)),
            }
            session.set_pipelined_prefix(head);
            let reused = self.proxy.process_new_http(session, shutdown).await?;
            (stream, settings) = reused.consume();
            head = self.next_head(&mut stream, shutdown).await?;
        }
    }

    async fn cleanup(&self) {
        self.proxy.http_cleanup().await;
    }
}
