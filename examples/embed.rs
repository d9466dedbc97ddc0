//! Embedding scimgate in your own pingora proxy: your `ProxyHttp` asks scimgate first (SCIM
//! requests and guarded self-service routes are handled there), then routes the rest itself.
//!
//! Run: `cargo run --example embed -- conf/demo.toml 127.0.0.1:8081` (the backend named in the
//! config must be running, and its credential variable set).

use async_trait::async_trait;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::RunArgs;
use pingora::upstreams::peer::HttpPeer;
use scimgate::proxy::{Gateway, RequestCtx};
use scimgate::runtime::Runtime;
use std::path::Path;

/// Your proxy: scimgate in front, your own routing behind.
struct MyProxy {
    scimgate: Gateway,
    upstream: std::net::SocketAddr,
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
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let config_path = args.next().unwrap_or_else(|| "conf/demo.toml".into());
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8081".into());
    let config = scimgate::config::load(Path::new(&config_path)).map_err(|e| e.to_string())?;
    let upstream = config.backend.address;
    let runtime = Runtime::new(config, Some(config_path.into())).map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir();
    let mut server = scimgate::server::build(scimgate::server::server_conf(
        2,
        std::time::Duration::from_secs(1),
        &dir,
    ));
    let proxy = MyProxy {
        scimgate: Gateway::new(runtime.app.clone()),
        upstream,
    };
    let mut service = pingora::proxy::http_proxy_service(&server.configuration, proxy);
    service.add_tcp(&listen);
    server.add_service(service);
    server.run(RunArgs::default());
    Ok(())
}
