//! A running gateway as a whole: its swappable [`App`], the telemetry that outlives reloads, the
//! HTTPS certificate store, and reload — re-read the config, validate and build it whole, then
//! swap it in atomically, or keep serving the old one and say why.

use crate::admin::admin_service;
use crate::app::App;
use crate::config::{self, Config};
use crate::server;
use crate::telemetry::Telemetry;
use crate::tls::CertStore;
use arc_swap::ArcSwap;
use pingora::listeners::ListenerConfig;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use std::path::PathBuf;
use std::sync::Arc;

/// A gateway's live state.
pub struct Runtime {
    /// The current config version's state; requests in flight keep the version they started with.
    pub app: Arc<ArcSwap<App>>,
    /// Metrics, provisioning log, limiter.
    pub telemetry: Arc<Telemetry>,
    certs: Option<Arc<CertStore>>,
    source: Option<PathBuf>,
}

impl Runtime {
    /// Builds the state for `config`; `source` is the file reloads re-read.
    pub fn new(config: Config, source: Option<PathBuf>) -> Result<Arc<Runtime>, String> {
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
        let app = Arc::new(ArcSwap::from_pointee(App::build(
            config,
            telemetry.clone(),
        )?));
        Ok(Arc::new(Runtime {
            app,
            telemetry,
            certs,
            source,
        }))
    }

    /// Adds the gateway's services (plain and HTTPS listeners, admin listener) to `srv`.
    pub fn add_services(&self, srv: &mut Server) -> Result<(), String> {
        let app = self.app.load_full();
        let s = &app.config.server;
        let conf: Arc<ServerConf> = srv.configuration.clone();
        let mut gateway = server::gateway_service(self.app.clone(), &conf, &s.listen);
        if let (Some(tls), Some(certs)) = (&s.tls, &self.certs) {
            for addr in &tls.listen {
                let settings = certs.listener_settings(&tls.cert, &tls.key, tls.http2)?;
                let listener = ListenerConfig::tcp(addr.to_string()).tls(settings);
                gateway.add_listener(listener.l4_buffer(server::listener_buffers()));
            }
        }
        srv.add_service(gateway);
        if let Some(addr) = s.admin_listen {
            srv.add_service(admin_service(self.app.clone(), &addr.to_string()));
        }
        Ok(())
    }

    /// Every address the gateway listens on.
    pub fn listen_addresses(&self) -> Vec<std::net::SocketAddr> {
        let app = self.app.load();
        let s = &app.config.server;
        let mut all = s.listen.clone();
        all.extend(s.tls.iter().flat_map(|t| t.listen.iter().copied()));
        all.extend(s.admin_listen);
        all
    }

    /// Re-reads the config file and swaps it in, or leaves the running config untouched.
    pub fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.source else {
            return Err("this gateway was not started from a config file".into());
        };
        let result = config::load(path)
            .map_err(|e| e.to_string())
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
    pub fn swap(&self, config: Config) -> Result<(), String> {
        let current = self.app.load_full();
        let old = &current.config.server;
        if config.server.listen != old.listen
            || config.server.admin_listen != old.admin_listen
            || config.server.tls.as_ref().map(|t| &t.listen) != old.tls.as_ref().map(|t| &t.listen)
        {
            tracing::warn!("listen addresses changed: they take effect at the next restart or graceful upgrade");
        }
        let new_tls = config.server.tls.clone();
        let app = App::build(config, self.telemetry.clone())?;
        match (&self.certs, &new_tls) {
            (Some(store), Some(t)) => store.reload(&t.cert, &t.key)?,
            (None, Some(_)) => tracing::warn!("TLS was added: it takes effect at the next restart"),
            _ => {}
        }
        self.app.store(Arc::new(app));
        Ok(())
    }

    /// Reloads on every SIGHUP, on a thread of its own, for the life of the process.
    pub fn reload_on_sighup(self: &Arc<Self>) -> Result<(), String> {
        let runtime = self.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the reload thread: {e}"))?;
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
                        let _ = runtime.reload();
                    }
                });
            })
            .map_err(|e| format!("cannot start the reload thread: {e}"))?;
        Ok(())
    }
}
