//! A whole-head deadline for HTTP/1 connections (`server.header_timeout_ms`): pingora reads a
//! request head with a per-read timeout only, so a client dribbling its head a byte at a time
//! could hold a connection forever. This wrapper reads the first head itself under the deadline
//! (answering `408` past it), then hands the connection to the proxy.

use super::Gateway;
use crate::app::App;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::BytesMut;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN};
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest head read here; a longer one is passed on for pingora's parser to refuse.
const MAX_HEAD: usize = 64 * 1024;

/// Keep-alive idle timeout between requests on one connection, in seconds (pingora's default).
const KEEPALIVE_SECS: u64 = 60;

/// The gateway's proxy behind a head deadline.
pub struct HeadDeadline {
    proxy: Arc<HttpProxy<Gateway>>,
    app: Arc<ArcSwap<App>>,
}

impl HeadDeadline {
    /// Wraps `proxy`; the deadline is read from the current config for each connection.
    pub fn new(proxy: HttpProxy<Gateway>, app: Arc<ArcSwap<App>>) -> Self {
        HeadDeadline {
            proxy: Arc::new(proxy),
            app,
        }
    }
}

/// Reads until the end of a request head; `None` when the client went away first.
async fn read_head(stream: &mut Stream) -> Option<BytesMut> {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let ended =
            buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n");
        if ended || buf.len() > MAX_HEAD {
            return Some(buf);
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

#[async_trait]
impl ServerApp for HeadDeadline {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return self.proxy.process_new(stream, shutdown).await;
        }
        let limit = self.app.load().config.server.header_timeout;
        let head = match tokio::time::timeout(limit, read_head(&mut stream)).await {
            Ok(Some(head)) => head,
            Ok(None) => return None,
            Err(_) => {
                let _ = stream
                    .write_all(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                    .await;
                let _ = stream.flush().await;
                return None;
            }
        };
        let mut session = ServerSession::new_http1(stream);
        session.set_pipelined_prefix(head);
        session.set_keepalive((!*shutdown.borrow()).then_some(KEEPALIVE_SECS));
        let mut result = self.proxy.process_new_http(session, shutdown).await;
        while let Some((stream, settings)) = result.map(|r| r.consume()) {
            let mut session = ServerSession::new_http1(stream);
            if let Some(settings) = settings {
                settings.apply_to_session(&mut session);
            }
            result = self.proxy.process_new_http(session, shutdown).await;
        }
        None
    }

    async fn cleanup(&self) {
        self.proxy.http_cleanup().await;
    }
}
