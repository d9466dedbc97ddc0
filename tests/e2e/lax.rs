//! A gateway configured by `tests/fixtures/lax.toml` in front of a fresh "lax" backend
//! (`tests/support/lax_backend.rs`, no unique emails, two workspaces, a whoami call), with a
//! SCIM key for each of its two tenants.

use super::harness::Gateway;
use super::lax_backend::LaxBackend;
use scimgate::auth::{self, ApiKey, Keyring};
use scimgate::config::Config;
use scimgate::gateway::server;
use scimgate::store::engine::StoreSettings;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The backend's name of tenant `umbrella` (the gateway's default key acts for it).
pub const UMBRELLA: &str = "umbrella-ws";
/// The backend's name of tenant `wayne`.
pub const WAYNE: &str = "wayne-ws";

/// The running gateway, its backend, tenant `wayne`'s key and the store file.
pub struct Lax {
    /// The gateway; its own key acts for tenant `umbrella`.
    pub gw: Gateway,
    pub backend: LaxBackend,
    /// Tenant `wayne`'s SCIM key.
    pub wayne: String,
    pub store: PathBuf,
    /// Holds the store, which outlives a restart.
    store_dir: Arc<tempfile::TempDir>,
}

/// Starts the gateway with `adjust` applied to the config last.
pub fn start_with(adjust: impl FnOnce(&mut Config)) -> Lax {
    let store_dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let keys = (auth::generate_key(), auth::generate_key());
    launch(LaxBackend::new(), store_dir, keys, adjust)
}

impl Lax {
    /// Stops the gateway and starts a new one with the same config, keys, store and backend
    /// state (the backend on a new port): what a restart leaves of the gateway's memory.
    pub fn restart(self) -> Lax {
        self.restart_with(|_| {})
    }

    /// [`Lax::restart`] with `adjust` applied to the new gateway's config.
    pub fn restart_with(mut self, adjust: impl FnOnce(&mut Config)) -> Lax {
        self.gw.stop();
        let keys = (self.gw.token.clone(), self.wayne.clone());
        launch(self.backend.clone(), self.store_dir.clone(), keys, adjust)
    }

    /// Another gateway with the same keys in front of the same backend state (the backend on
    /// a port of its own), its config changed by `adjust`: a second instance of a fleet.
    pub fn another_instance(&self, adjust: impl FnOnce(&mut Config)) -> Lax {
        let keys = (self.gw.token.clone(), self.wayne.clone());
        let store_dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        launch(self.backend.clone(), store_dir, keys, adjust)
    }
}

fn launch(
    backend: LaxBackend,
    store_dir: Arc<tempfile::TempDir>,
    (umbrella, wayne): (String, String),
    adjust: impl FnOnce(&mut Config),
) -> Lax {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = server::free_port().expect("port");
    let backend_addr = server::free_port().expect("port");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lax.toml");
    let mut config = scimgate::config::from_str(include_str!("../fixtures/lax.toml"), &file)
        .unwrap_or_else(|e| panic!("{e}"));
    config.server.listen = vec![listen];
    config.backend.address = backend_addr;
    config.store = StoreSettings::Sqlite(store_dir.path().join("scimgate.sqlite"));
    let tenant = |name: &str| {
        config
            .tenants
            .iter()
            .find(|t| t.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("tenant {name}"))
    };
    config.keyring = Keyring::new(vec![
        ApiKey::from_secret(tenant("umbrella"), &umbrella),
        ApiKey::from_secret(tenant("wayne"), &wayne),
    ]);
    adjust(&mut config);
    // The SQLite file, unless `adjust` chose another store.
    let store = store_dir.path().join("scimgate.sqlite");
    let conf = server::server_conf(config.server.threads, Duration::ZERO, dir.path());
    let mut srv = server::build(conf);
    srv.add_service(backend.service(&backend_addr.to_string()));
    let gw = Gateway::start(srv, config, umbrella, dir, &[backend_addr]);
    Lax {
        gw,
        backend,
        wayne,
        store,
        store_dir,
    }
}

/// Starts the gateway as `tests/fixtures/lax.toml` says.
pub fn start() -> Lax {
    start_with(|_| {})
}
