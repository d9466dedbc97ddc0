//! The running gateway's state, built from a validated [`Config`]: the SCIM server, the backend
//! directory and store, the store's SCIM keys, and the backend peer that proxied traffic goes to.
//! Swapped whole on reload.

use crate::auth::store_keys::StoreKeys;
use crate::backend::calls::Backend;
use crate::backend::client::Client;
use crate::backend::credentials::{CredentialError, Credentials};
use crate::backend::directory::Directory;
use crate::backend::group_calls::GroupBackend;
use crate::backend::groups::Groups;
use crate::backend::peer::UpstreamPeer;
use crate::brake::Brake;
use crate::config::{Config, ScimSettings};
use crate::guard::gate::Guard;
use crate::guard::jwt::JwtKeyError;
use crate::scim::cursor::{CursorKey, Cursors, MIN_KEY_BYTES};
use crate::service::{GroupDirectory, GroupService, GroupSettings, ScimService, UserDirectory};
use crate::store::engine::{self, StoreSettings};
use crate::store::{OpenError, Store};
use crate::team_admin::TeamAdmin;
use crate::telemetry::timed_store::TimedStore;
use crate::telemetry::Telemetry;
use pingora::upstreams::peer::HttpPeer;
use std::sync::{Arc, OnceLock};

/// Why the state for a config cannot be built (a message an operator can act on).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The store cannot be opened.
    #[error("cannot open the store {store}: {source}")]
    Store {
        /// The store's file or URL.
        store: String,
        /// Why.
        source: OpenError,
    },
    /// A backend credential cannot be built (an unset variable, a secret unfit for a header).
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// The guard's JWT key material cannot be loaded.
    #[error(transparent)]
    GuardKey(#[from] JwtKeyError),
    /// `scim.cursor_key_env` names a variable that is unset or shorter than 32 bytes.
    #[error("scim.cursor_key_env: {0} must hold the cursor key, at least {MIN_KEY_BYTES} bytes (e.g. `openssl rand -base64 48`)")]
    CursorKey(String),
}

/// The key of cursors when `scim.cursor_key_env` is unset: random, one per process, so that a
/// config reload keeps the cursors already issued.
static PROCESS_CURSOR_KEY: OnceLock<CursorKey> = OnceLock::new();

/// The cursors `scim` configures: signed with the key its variable holds, else the process's.
fn cursors(scim: &ScimSettings) -> Result<Cursors, BuildError> {
    let key = match &scim.cursor_key_env {
        Some(var) => std::env::var(var)
            .ok()
            .and_then(|secret| CursorKey::new(secret.as_bytes()))
            .ok_or_else(|| BuildError::CursorKey(var.clone()))?,
        None => PROCESS_CURSOR_KEY.get_or_init(CursorKey::random).clone(),
    };
    Ok(Cursors::new(key, scim.cursor_timeout_secs))
}

/// Everything a request needs, for one version of the config.
pub struct Parts {
    /// The configuration this state was built from.
    pub config: Config,
    /// The SCIM endpoint.
    pub scim: ScimService,
    /// The client of the backend's HTTP API (the gateway's own calls and guarded requests).
    pub backend: Arc<Client>,
    /// The gateway's store (for readiness checks).
    pub store: Arc<dyn Store>,
    /// The SCIM keys and tenants kept in the store: looked up before the SCIM service
    /// authenticates a key the config does not hold; revoked here at once.
    pub store_keys: Arc<StoreKeys>,
    /// The backend: where the gateway's own calls and proxied traffic go.
    pub upstream: Arc<UpstreamPeer>,
    /// The self-service guard, when configured.
    pub guard: Option<Arc<Guard>>,
    /// The team admins' SCIM page and API, when configured (callers are identified by the
    /// guard's identity source).
    pub team_admin: Option<Arc<TeamAdmin>>,
    /// Metrics, provisioning log and limiter (shared by every config version).
    pub telemetry: Arc<Telemetry>,
}

impl Parts {
    /// Builds the state: opens the store and prepares the backend client. Fails with a message
    /// an operator can act on (missing credential variable, unwritable store).
    pub fn build(config: Config, telemetry: Arc<Telemetry>) -> Result<Parts, BuildError> {
        Parts::build_after(config, telemetry, None)
    }

    /// [`Parts::build`] for a reload: a PostgreSQL store whose settings did not change is kept
    /// from `current` (its pools and holds), not opened again.
    pub fn build_after(
        config: Config,
        telemetry: Arc<Telemetry>,
        current: Option<&Parts>,
    ) -> Result<Parts, BuildError> {
        let store = match current {
            Some(c)
                if c.config.store == config.store
                    && matches!(config.store, StoreSettings::Postgres(_)) =>
            {
                c.store.clone()
            }
            _ => {
                let opened = engine::open(&config.store).map_err(|source| BuildError::Store {
                    store: config.store.describe(),
                    source,
                })?;
                Arc::new(TimedStore::new(opened, telemetry.clone()))
            }
        };
        let b = &config.backend;
        let credentials = Credentials::from_config(b, config.server.max_backend_calls)?;
        let upstream = Arc::new(UpstreamPeer::new(
            b.address,
            b.resolve.clone(),
            b.tls.clone(),
        ));
        let client = Arc::new(Client::new(
            upstream.clone(),
            &b.host,
            b.connect_timeout,
            b.read_timeout,
            config.server.max_backend_calls,
        ));
        let backend = Arc::new(Backend::new(
            config.users.clone(),
            client.clone(),
            credentials,
            telemetry.clone(),
        ));
        let brake = Brake::new(config.brake.clone(), store.clone(), telemetry.clone());
        let directory: Arc<dyn UserDirectory> = Arc::new(
            Directory::new(backend.clone(), store.clone(), config.scim.max_scan)
                .with_brake(Arc::new(brake)),
        );
        let store_keys = Arc::new(StoreKeys::new(store.clone(), config.tenants.clone()));
        let mut scim = ScimService::new(
            directory.clone(),
            config.keyring.clone().with_resolved(store_keys.clone()),
            config.scim.max_results,
            telemetry.clone(),
        )
        .with_cursors(cursors(&config.scim)?);
        let groups: Option<Arc<dyn GroupDirectory>> = config.groups.as_ref().map(|api| {
            Arc::new(Groups::new(
                GroupBackend::new(backend, api.clone()),
                store.clone(),
                config.scim.max_scan,
            )) as Arc<dyn GroupDirectory>
        });
        if let (Some(api), Some(groups)) = (&config.groups, &groups) {
            let settings = GroupSettings {
                max_members_per_request: api.max_members_per_request,
                patch_returns_group: api.patch_returns_group,
            };
            scim = scim.with_groups(GroupService::new(
                groups.clone(),
                settings,
                config.scim.max_results,
            ));
        }
        let guard = config
            .guard
            .clone()
            .map(|settings| {
                let scim_tenants = config
                    .tenants
                    .iter()
                    .filter(|t| config.keyring_has_tenant(&t.name))
                    .map(|t| t.name.clone())
                    .collect();
                Guard::new(
                    settings,
                    config.tenants.clone(),
                    scim_tenants,
                    store.clone(),
                    directory.clone(),
                    client.clone(),
                )
                .map(|guard| match &groups {
                    Some(groups) => guard.with_groups(groups.clone()),
                    None => guard,
                })
                .map(Arc::new)
            })
            .transpose()?;
        let team_admin = config.team_admin.clone().map(|settings| {
            let operator_tenants = config
                .tenants
                .iter()
                .filter(|t| config.keyring_has_tenant(&t.name))
                .map(|t| t.backend_name.clone())
                .collect();
            Arc::new(TeamAdmin::new(
                settings,
                store.clone(),
                store_keys.clone(),
                operator_tenants,
                telemetry.clone(),
            ))
        });
        Ok(Parts {
            config,
            scim,
            backend: client,
            store,
            store_keys,
            upstream,
            guard,
            team_admin,
            telemetry,
        })
    }

    /// The peer proxied traffic goes to now (plain or TLS, at the backend's current address).
    pub fn proxied_peer(&self) -> HttpPeer {
        let b = &self.config.backend;
        let mut peer = self.upstream.peer();
        peer.options.connection_timeout = Some(b.connect_timeout);
        // Proxied traffic has its own limit: long-polls and paused bodies are normal there.
        peer.options.read_timeout = self.config.proxy.read_timeout;
        peer
    }
}
