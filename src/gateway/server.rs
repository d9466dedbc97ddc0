//! Assembling and running the pingora [`Server`]: conf built in code (never from argv), listeners
//! checked before pingora binds them (pingora keeps running with nothing listening otherwise),
//! and a handle that runs the whole server on a thread and stops it on demand.

use crate::parts::Parts;
use crate::proxy::head_deadline::HeadDeadline;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::listeners::ListenerConfig;
use pingora::protocols::l4::stream::L4BufferSettings;
use pingora::proxy::ProxyHttp;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::listening::Service;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::Notify;

/// pingora settings for a gateway process; `run_dir` holds the pid file and upgrade socket.
pub fn server_conf(threads: usize, grace: Duration, run_dir: &Path) -> ServerConf {
    ServerConf {
        threads,
        grace_period_seconds: Some(grace.as_secs()),
        graceful_shutdown_timeout_seconds: Some(grace.as_secs().max(1)),
        pid_file: run_dir.join("pingora.pid").display().to_string(),
        upgrade_sock: run_dir.join("scimgate-upgrade.sock").display().to_string(),
        ..ServerConf::default()
    }
}

/// An address the gateway cannot listen on.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// Why binding failed.
    pub source: std::io::Error,
}

/// Fails with a clear message when an address cannot be bound.
pub fn check_binds(addrs: &[SocketAddr]) -> Result<(), BindError> {
    for addr in addrs {
        TcpListener::bind(addr).map_err(|source| BindError {
            addr: *addr,
            source,
        })?;
    }
    Ok(())
}

/// A proxy service for `proxy` (scimgate's [`Proxy`], or one that embeds it) behind the head
/// deadline, listening on the plain-HTTP addresses `listen` (HTTPS listeners are added by
/// [`crate::gateway::Gateway::add_services`]).
pub fn proxy_service<P>(
    parts: Arc<ArcSwap<Parts>>,
    conf: &Arc<ServerConf>,
    proxy: P,
    listen: &[SocketAddr],
) -> Service<HeadDeadline<P>>
where
    P: ProxyHttp + Send + Sync + 'static,
    P::CTX: Send + Sync,
{
    let proxy = pingora::proxy::http_proxy(conf, proxy);
    let mut service = Service::new("scimgate".to_string(), HeadDeadline::new(proxy, parts));
    for addr in listen {
        service.add_listener(ListenerConfig::tcp(addr.to_string()).l4_buffer(listener_buffers()));
    }
    service
}

/// Per-connection buffers of the gateway's listeners. Read: pingora's default (64 KiB) is
/// allocated for every open connection, idle ones included: with 8 KiB, 1,000 idle keep-alive
/// clients cost about 50 MiB less, and SCIM and proxied requests are no slower (measured with
/// `bench/`). Write: none, so every write reaches the client at once. pingora flushes a response
/// head with a `Content-Length` only together with the body, so with a write buffer a proxied
/// answer whose body pauses would hold back its head (and small body parts) until more bytes came.
pub fn listener_buffers() -> L4BufferSettings {
    L4BufferSettings::default().read(8 << 10).write(0)
}

/// A bootstrapped pingora server with no services yet.
pub fn build(conf: ServerConf) -> Server {
    build_upgrading(conf, false)
}

/// Like [`build`]; with `upgrade`, the listening sockets are taken over from a running
/// scimgate through the upgrade socket (graceful binary upgrade: start the new process this way,
/// then send SIGQUIT to the old one).
pub fn build_upgrading(conf: ServerConf, upgrade: bool) -> Server {
    let opt = Opt {
        upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(Some(opt), conf);
    server.bootstrap();
    server
}

struct NotifyShutdown(Arc<Notify>);

#[async_trait]
impl ShutdownSignalWatch for NotifyShutdown {
    async fn recv(&self) -> ShutdownSignal {
        self.0.notified().await;
        ShutdownSignal::FastShutdown
    }
}

/// A server running on its own thread (tests, embedding); dropping it stops the server.
pub struct Running {
    stop: Arc<Notify>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Runs `server` on a new thread until [`Running::stop`] or drop.
    pub fn start(server: Server) -> Running {
        let stop = Arc::new(Notify::new());
        let signal = NotifyShutdown(stop.clone());
        let thread = std::thread::spawn(move || {
            server.run(RunArgs {
                shutdown_signal: Box::new(signal),
            });
        });
        Running {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A free loopback port, found by binding port 0.
pub fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}
