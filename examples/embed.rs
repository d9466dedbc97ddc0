//! Embedding scimgate in your own pingora proxy: your `ProxyHttp` asks scimgate first (SCIM
//! requests and guarded self-service routes are answered there, with metrics and the provisioning
//! log), lets it answer failures on its routes and count every request, and routes the rest
//! itself. The service is built by the gateway, so the whole-head deadline and the head limits
//! stay in front of your proxy.
//!
//! Run: `cargo run --example embed -- conf/demo.toml 127.0.0.1:8081` (the backend named in the
//! config must be running, and its credential variable set).

use async_trait::async_trait;
use pingora::prelude::Opt;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::server::{RunArgs, Server};
use pingora::upstreams::peer::HttpPeer;
use pingora::Error;
use scimgate::{Gateway, Proxy, RequestCtx};
use std::net::SocketAddr;
use std::path::Path;

/// Your proxy: scimgate in front, your own routing behind.
struct MyProxy {
    scimgate: Proxy,
    upstream: SocketAddr,
}

/// Your per-request state, holding scimgate's.
struct MyCtx {
    scimgate: RequestCtx,
}

#[async_trait]
impl ProxyHttp for MyProxy {
    type CTX = MyCtx;

    fn new_ctx(&self) -> MyCtx {
        MyCtx {
            scimgate: self.scimgate.new_ctx(),
        }
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut MyCtx,
    ) -> pingora::Result<bool> {
        if self
            .scimgate
            .request_filter(session, &mut ctx.scimgate)
            .await?
        {
            return Ok(true); // answered by scimgate (SCIM, or a guard decision)
        }
        // ... your own filters here ...
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut MyCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }

    /// SCIM-shaped errors on SCIM routes, and no half-written answer passed off as whole.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut MyCtx,
    ) -> FailToProxy {
        self.scimgate
            .fail_to_proxy(session, e, &mut ctx.scimgate)
            .await
    }

    /// scimgate's request metrics and log event.
    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut MyCtx) {
        self.scimgate.logging(session, e, &mut ctx.scimgate).await;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let config_path = args.next().unwrap_or_else(|| "conf/demo.toml".into());
    let listen: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:8081".into())
        .parse()?;
    let gateway = Gateway::from_file(Path::new(&config_path))?;
    let upstream = gateway.parts.load().config.backend.address;
    let mut server = Server::new(Some(Opt::default()))?;
    server.bootstrap();
    let proxy = MyProxy {
        scimgate: gateway.proxy(),
        upstream,
    };
    let service = gateway.service_for(&server.configuration, proxy, &[listen]);
    server.add_service(service);
    server.run(RunArgs::default());
    Ok(())
}
