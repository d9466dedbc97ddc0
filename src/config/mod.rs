//! Configuration: the TOML file format ([`file`]) and its validation into the resolved [`Config`]
//! the rest of the gateway runs on ([`validate`]). Errors name `file:line:column`.

mod file;
pub mod validate;

use crate::auth::{Keyring, Tenant};
use crate::backend::group_spec::GroupApi;
use crate::backend::settings::BackendSettings;
use crate::backend::spec::UserApi;
use crate::brake::settings::BrakeSettings;
use crate::forwarded::Forwarding;
use crate::guard::rules::GuardSettings;
use crate::store::engine::StoreSettings;
use crate::team_admin::TeamAdminSettings;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use validate::from_str;

/// A validated, resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listeners and process settings.
    pub server: ServerSettings,
    /// The SCIM endpoint.
    pub scim: ScimSettings,
    /// The gateway's store: a SQLite file, or a PostgreSQL database for a fleet.
    pub store: StoreSettings,
    /// How to reach the backend.
    pub backend: BackendSettings,
    /// Tenants in file order.
    pub tenants: Vec<Arc<Tenant>>,
    /// Every accepted SCIM key.
    pub keyring: Keyring,
    /// The backend's native user API.
    pub users: UserApi,
    /// The backend's native group API (`/Groups` is served only with it).
    pub groups: Option<GroupApi>,
    /// Self-service routes guarded for SCIM-managed accounts (none when `[guard]` is absent).
    pub guard: Option<GuardSettings>,
    /// The team admins' SCIM page and API, when configured.
    pub team_admin: Option<TeamAdminSettings>,
    /// Which tenants' deactivations and deletes the brake on mass deprovisioning counts.
    pub brake: BrakeSettings,
    /// How proxied traffic is carried.
    pub proxy: ProxySettings,
    /// Every environment variable the file names, in file order (`scimgate check` warns about
    /// the unset ones).
    pub env_vars: Vec<EnvVarUse>,
}

impl Config {
    /// True when at least one key authenticates as tenant `name`.
    pub fn keyring_has_tenant(&self, name: &str) -> bool {
        self.keyring.tenant_names().any(|t| t == name)
    }
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Plain-HTTP listen addresses.
    pub listen: Vec<SocketAddr>,
    /// Worker threads.
    pub threads: usize,
    /// How long a graceful shutdown waits for requests in flight.
    pub grace_period: Duration,
    /// Largest request body the gateway reads (413 above).
    pub max_body_bytes: usize,
    /// Deadline for a client to send the request head on a fresh connection.
    pub header_timeout: Duration,
    /// Deadline for a client to send a whole request body the gateway reads.
    pub body_timeout: Duration,
    /// Largest number of backend calls in flight at once.
    pub max_backend_calls: usize,
    /// The metrics and health listener (`/metrics`, `/healthz`, `/readyz`), if any.
    pub admin_listen: Option<SocketAddr>,
    /// HTTPS listeners, if any.
    pub tls: Option<TlsSettings>,
    /// Failed SCIM authentications allowed per client address and window (429 past it).
    pub auth_failures: AuthFailureLimit,
    /// JSON-lines file receiving one event per SCIM write, if any.
    pub provisioning_log: Option<PathBuf>,
}

/// `[server.tls]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// HTTPS listen addresses.
    pub listen: Vec<SocketAddr>,
    /// PEM certificate chain file.
    pub cert: PathBuf,
    /// PEM private key file.
    pub key: PathBuf,
    /// Offer HTTP/2 by ALPN.
    pub http2: bool,
}

/// `[server.auth_failures]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthFailureLimit {
    /// Failures allowed per window.
    pub max: u32,
    /// The window.
    pub window: Duration,
}

/// `[scim]`.
#[derive(Debug, Clone)]
pub struct ScimSettings {
    /// Path prefix of the SCIM endpoint, without trailing slash (`/scim/v2`).
    pub base_path: String,
    /// The public URL of the SCIM base (`https://gw.example.com/scim/v2`) for `meta.location`;
    /// when unset it is derived from each request's Host.
    pub public_url: Option<String>,
    /// Default and largest `count` of a list response.
    pub max_results: usize,
    /// Largest number of backend users a gateway-evaluated filter may scan.
    pub max_scan: usize,
    /// The environment variable holding the key cursors are signed with (at least 32 bytes);
    /// `None` signs with a random key per process.
    pub cursor_key_env: Option<String>,
    /// Seconds a cursor stays valid (`cursorTimeout`).
    pub cursor_timeout_secs: u64,
}

/// `[proxy]`: timeouts of proxied traffic and the forwarded headers added to it.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Longest wait for a proxied upstream to send anything (its response head, then each part
    /// of the body); `None` waits without limit.
    pub read_timeout: Option<Duration>,
    /// Longest wait for the upstream's answer to an upgrade request (WebSocket), then the
    /// longest an upgraded connection may stay idle in both directions; `None` waits without
    /// limit.
    pub upgrade_idle_timeout: Option<Duration>,
    /// The forwarded headers policy; `None` when `forwarded_headers = false`.
    pub forwarded: Option<Forwarding>,
}
/// An environment variable named by a setting (a secret read at run time), and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVarUse {
    /// The variable's name.
    pub name: String,
    /// The setting that names it (`backend.auth.token_env`).
    pub setting: String,
    /// 1-based line of the name in the file.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// One problem found in a config file, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: usize,
    /// 1-based column, when known.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Everything wrong with a config file.
#[derive(Debug, Clone)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                p.line,
                p.column,
                p.message
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Reads and validates a config file. Relative paths inside it are relative to its folder.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        problems: vec![Problem {
            line: 0,
            column: 0,
            message: format!("cannot read the file: {e}"),
        }],
    })?;
    from_str(&text, path)
}
