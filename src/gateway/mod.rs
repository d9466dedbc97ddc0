//! A running gateway as a whole: its swappable [`Parts`], the telemetry that outlives reloads, the
//! HTTPS certificate store, and reload — re-read the config, validate and build it whole, then
//! swap it in atomically, or keep serving the old one and say why.

pub mod admin;
pub mod server;
pub mod tls;

use crate::config::{self, Config, ConfigError};
use crate::gateway::admin::admin_service;
use crate::gateway::tls::{CertStore, TlsError};
use crate::parts::{BuildError, Parts};
use crate::proxy::head_deadline::HeadDeadline;
use crate::proxy::Proxy;
use crate::telemetry::provisioning::LogError;
use crate::telemetry::Telemetry;
use arc_swap::ArcSwap;
use pingora::listeners::ListenerConfig;
use pingora::proxy::ProxyHttp;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::listening::Service;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a gateway cannot start, or a reload was rejected (the old config keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The config file is invalid or unreadable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The provisioning log cannot be opened.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The HTTPS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The state for the config cannot be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A reload of a gateway that was built from a `Config` value, not a file.
    #[error("this gateway was not started from a config file")]
    NoSource,
    /// The thread that reloads on SIGHUP cannot start.
    #[error("cannot start the reload thread: {0}")]
    ReloadThread(std::io::Error),
}

/// A gateway's live state.
pub struct Gateway {
    /// The current config version's state; requests in flight keep the version they started with.
    pub parts: Arc<ArcSwap<Parts>>,
    /// Metrics, provisioning log, limiter.
    pub telemetry: Arc<Telemetry>,
    certs: Option<Arc<CertStore>>,
    source: Option<PathBuf>,
}

impl Gateway {
    /// Builds the state for `config`; `source` is the file reloads re-read.
    pub fn new(config: Config, source: Option<PathBuf>) -> Result<Arc<Gateway>, GatewayError> {
        let s = &config.server;
        let telemetry = Arc::new(Telemetry::new(
            s.provisioning_log.as_deref(),
            s.auth_failures.max,
            s.auth_failures.window,
        )?);
        let certs = match &config.server.tls {
            Some(t) => Some(CertStore::load(&t.cert, &t.key)?),
            None => None,
        };
        let parts = Arc::new(ArcSwap::from_pointee(Parts::build(
            config,
            telemetry.clone(),
        )?));
        Ok(Arc::new(Gateway {
            parts,
            telemetry,
            certs,
            source,
        }))
    }

    /// Loads and validates the config file at `path` and builds the gateway for it; reloads
    /// re-read that file.
    pub fn from_file(path: &Path) -> Result<Arc<Gateway>, GatewayError> {
        let config = config::load(path)?;
        Gateway::new(config, Some(path.to_path_buf()))
    }

    /// The pingora glue over this gateway's current parts: serve it as is, or call it from the
    /// phases of your own `ProxyHttp` (see the crate documentation).
    pub fn proxy(&self) -> Proxy {
        Proxy::new(self.parts.clone())
    }

    /// A pingora service for `proxy`, your own `ProxyHttp` that embeds [`Gateway::proxy`], behind
    /// the gateway's whole-head deadline and head limits, listening on `listen`.
    pub fn service_for<P>(
        &self,
        conf: &Arc<ServerConf>,
        proxy: P,
        listen: &[SocketAddr],
    ) -> Service<HeadDeadline<P>>
    where
        P: ProxyHttp + Send + Sync + 'static,
        P::CTX: Send + Sync,
    {
        server::proxy_service(self.parts.clone(), conf, proxy, listen)
    }

    /// Adds the gateway's services (plain and HTTPS listeners, admin listener) to `srv`.
    pub fn add_services(&self, srv: &mut Server) -> Result<(), GatewayError> {
        let parts = self.parts.load_full();
        let s = &parts.config.server;
        let conf: Arc<ServerConf> = srv.configuration.clone();
        let proxy = self.proxy();
        let mut gateway = server::proxy_service(self.parts.clone(), &conf, proxy, &s.listen);
        if let (Some(tls), Some(certs)) = (&s.tls, &self.certs) {
            for addr in &tls.listen {
                let settings = certs.listener_settings(&tls.cert, &tls.key, tls.http2)?;
                let listener = ListenerConfig::tcp(addr.to_string()).tls(settings);
                gateway.add_listener(listener.l4_buffer(server::listener_buffers()));
            }
        }
        srv.add_service(gateway);
        if let Some(addr) = s.admin_listen {
            srv.add_service(admin_service(self.parts.clone(), &addr.to_string()));
        }
        Ok(())
    }

    /// Every address the gateway listens on.
    pub fn listen_addresses(&self) -> Vec<std::net::SocketAddr> {
        let parts = self.parts.load();
        let s = &parts.config.server;
        let mut all = s.listen.clone();
        all.extend(s.tls.iter().flat_map(|t| t.listen.iter().copied()));
        all.extend(s.admin_listen);
        all
    }

    /// Re-reads the config file and swaps it in, or leaves the running config untouched.
    pub fn reload(&self) -> Result<(), GatewayError> {
        let Some(path) = &self.source else {
            return Err(GatewayError::NoSource);
        };
        let result = config::load(path)
            .map_err(GatewayError::from)
            .and_then(|c| self.swap(c));
        self.telemetry.metrics.reload(result.is_ok());
        match &result {
            Ok(()) => tracing::info!(config = %path.display(), "config reloaded"),
            Err(e) => {
                tracing::error!(config = %path.display(), error = %e, "config reload rejected; the previous config keeps serving")
            }
        }
        result
    }

    /// Validates and builds `config` whole, then swaps it in (certificate included).
    pub fn swap(&self, config: Config) -> Result<(), GatewayError> {
        let current = self.parts.load_full();
        let old = &current.config.server;
        if config.server.listen != old.listen
            || config.server.admin_listen != old.admin_listen
            || config.server.tls.as_ref().map(|t| &t.listen) != old.tls.as_ref().map(|t| &t.listen)
        {
            tracing::warn!("listen addresses changed: they take effect at the next restart or graceful upgrade");
        }
        let new_tls = config.server.tls.clone();
        let parts = Parts::build_after(config, self.telemetry.clone(), Some(&current))?;
        match (&self.certs, &new_tls) {
            (Some(store), Some(t)) => store.reload(&t.cert, &t.key)?,
            (None, Some(_)) => tracing::warn!("TLS was added: it takes effect at the next restart"),
            _ => {}
        }
        self.parts.store(Arc::new(parts));
        Ok(())
    }

    /// Reloads on every SIGHUP, on a thread of its own, for the life of the process.
    pub fn reload_on_sighup(self: &Arc<Self>) -> Result<(), GatewayError> {
        let gateway = self.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(GatewayError::ReloadThread)?;
        std::thread::Builder::new()
            .name("scimgate-reload".into())
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(mut hangup) =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                    else {
                        tracing::error!("cannot listen for SIGHUP; reload is unavailable");
                        return;
                    };
                    while hangup.recv().await.is_some() {
                        let _ = gateway.reload();
                    }
                });
            })
            .map_err(GatewayError::ReloadThread)?;
        Ok(())
    }
}
