//! The configuration file format: serde structs that mirror the TOML exactly. Unknown keys are
//! errors. Nothing outside `config/` sees these types; [`super::validate`] turns them into the
//! resolved [`super::Config`].

use serde::Deserialize;
use serde_spanned::Spanned;
use std::collections::BTreeMap;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub server: ServerFile,
    #[serde(default)]
    pub scim: ScimFile,
    #[serde(default)]
    pub store: StoreFile,
    pub backend: BackendFile,
    #[serde(default)]
    pub tenants: Vec<TenantFile>,
    pub users: UsersFile,
    #[serde(default)]
    pub groups: Option<GroupsFile>,
    #[serde(default)]
    pub guard: Option<GuardFile>,
    #[serde(default)]
    pub proxy: ProxyFile,
    #[serde(default)]
    pub team_admin: Option<TeamAdminFile>,
    #[serde(default)]
    pub deprovision_brake: Option<BrakeFile>,
}

/// `[deprovision_brake]` and a tenant's `deprovision_brake`: when deactivations and deletes are
/// held. A tenant's keys override the section's, which override the defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrakeFile {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub max_count: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_percent: Option<Spanned<u64>>,
    #[serde(default)]
    pub min_count: Option<Spanned<u64>>,
    #[serde(default)]
    pub window_secs: Option<Spanned<u64>>,
    #[serde(default)]
    pub retry_after_secs: Option<Spanned<u64>>,
}

/// `[team_admin]`: the team admins' SCIM page and API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamAdminFile {
    pub path: Spanned<String>,
    #[serde(default)]
    pub admin_roles: Option<Vec<String>>,
}

/// `[server]`: listeners and process settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub listen: Vec<Spanned<String>>,
    #[serde(default)]
    pub threads: Option<usize>,
    #[serde(default)]
    pub grace_period_seconds: Option<u64>,
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    #[serde(default)]
    pub header_timeout_ms: Option<u64>,
    #[serde(default)]
    pub body_timeout_ms: Option<u64>,
    #[serde(default)]
    pub max_backend_calls: Option<usize>,
    #[serde(default)]
    pub admin_listen: Option<Spanned<String>>,
    #[serde(default)]
    pub tls: Option<TlsFile>,
    #[serde(default)]
    pub auth_failures: Option<AuthFailuresFile>,
    #[serde(default)]
    pub provisioning_log: Option<String>,
}

/// `[server.tls]`: HTTPS listeners and their certificate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub listen: Vec<Spanned<String>>,
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
    #[serde(default)]
    pub http2: Option<bool>,
}

/// `[server.auth_failures]`: rate limit of failed SCIM authentications per client address.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFailuresFile {
    pub max: u32,
    pub window_seconds: u64,
}

/// `[scim]`: the SCIM endpoint.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimFile {
    #[serde(default)]
    pub base_path: Option<Spanned<String>>,
    #[serde(default)]
    pub public_url: Option<Spanned<String>>,
    #[serde(default)]
    pub max_results: Option<usize>,
    #[serde(default)]
    pub max_scan: Option<usize>,
    #[serde(default)]
    pub cursor_key_env: Option<Spanned<String>>,
    #[serde(default)]
    pub cursor_timeout_seconds: Option<Spanned<u64>>,
}

/// `[store]`: where the gateway keeps what the backend cannot hold: a SQLite `path`, or a
/// PostgreSQL `url` with its password variable, pool and deadlines.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreFile {
    #[serde(default)]
    pub path: Option<Spanned<String>>,
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    #[serde(default)]
    pub password_env: Option<Spanned<String>>,
    #[serde(default)]
    pub pool_size: Option<Spanned<usize>>,
    #[serde(default)]
    pub pool_wait_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub connect_timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub statement_timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub lock_wait_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub synchronous_commit: Option<Spanned<bool>>,
    #[serde(default)]
    pub record_cache: Option<Spanned<bool>>,
    #[serde(default)]
    pub migrate: Option<Spanned<String>>,
}

/// `[backend]`: how to reach the legacy service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendFile {
    pub address: Spanned<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    #[serde(default)]
    pub read_timeout_ms: Option<u64>,
    #[serde(default)]
    pub auth: Option<Spanned<BackendAuthFile>>,
    #[serde(default)]
    pub tls: Option<BackendTlsFile>,
}

/// `[backend.tls]`: how the backend's certificate is checked, and the client certificate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendTlsFile {
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    #[serde(default)]
    pub client_cert: Option<Spanned<String>>,
    #[serde(default)]
    pub client_key: Option<Spanned<String>>,
    #[serde(default)]
    pub server_name: Option<Spanned<String>>,
}

/// `[backend.auth]` and `[tenants.auth]`: the service credential the gateway presents; every
/// secret is read from the environment. `type` picks the kind (`header` by default).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendAuthFile {
    #[serde(default, rename = "type")]
    pub kind: Option<Spanned<String>>,
    #[serde(default)]
    pub header: Option<Spanned<String>>,
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub token_env: Option<Spanned<String>>,
    #[serde(default)]
    pub user_env: Option<Spanned<String>>,
    #[serde(default)]
    pub password_env: Option<Spanned<String>>,
    #[serde(default)]
    pub token_url: Option<Spanned<String>>,
    #[serde(default)]
    pub client_id: Option<Spanned<String>>,
    #[serde(default)]
    pub client_secret_env: Option<Spanned<String>>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default)]
    pub client_auth: Option<Spanned<String>>,
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
}

/// `[[tenants]]`: one team, its backend name and its SCIM keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantFile {
    pub name: Spanned<String>,
    #[serde(default)]
    pub backend: Option<String>,
    #[serde(default)]
    pub keys: Vec<KeyFile>,
    #[serde(default)]
    pub auth: Option<Spanned<BackendAuthFile>>,
    #[serde(default)]
    pub deprovision_brake: Option<BrakeFile>,
}

/// `[[tenants.keys]]`: one SCIM API key, stored as its SHA-256.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub id: Spanned<String>,
    pub sha256: Spanned<String>,
}

/// `[users]`: the backend's native user API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    #[serde(default)]
    pub id_field: Option<String>,
    #[serde(default)]
    pub created_field: Option<String>,
    #[serde(default)]
    pub modified_field: Option<String>,
    #[serde(default)]
    pub time_format: Option<Spanned<String>>,
    pub list: ListFile,
    pub get: OperationFile,
    pub create: OperationFile,
    pub update: UpdateFile,
    pub delete: OperationFile,
    #[serde(default)]
    pub deactivate: Option<OperationFile>,
    #[serde(default)]
    pub reactivate: Option<OperationFile>,
    #[serde(default)]
    pub filters: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub fields: Vec<FieldFile>,
    #[serde(default)]
    pub errors: Vec<ErrorFile>,
    #[serde(default)]
    pub throttling: Option<ThrottlingFile>,
}

/// `[users.update]`: the update call, its style and its version check.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateFile {
    pub method: Spanned<String>,
    pub path: Spanned<String>,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default)]
    pub result: Option<Spanned<String>>,
    #[serde(default)]
    pub body: Option<Spanned<String>>,
    #[serde(default)]
    pub style: Option<Spanned<String>>,
    #[serde(default)]
    pub version: Option<Spanned<VersionFile>>,
}

/// `[users.update.version]`: where the version is read and how the update sends it back.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionFile {
    #[serde(default)]
    pub from_header: Option<String>,
    #[serde(default)]
    pub from_field: Option<String>,
    #[serde(default)]
    pub send_header: Option<String>,
    #[serde(default)]
    pub send_field: Option<String>,
    #[serde(default)]
    pub max_attempts: Option<u32>,
}

/// `[users.throttling]`: backend rate limits and the gateway's own pacing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottlingFile {
    #[serde(default)]
    pub max_wait_ms: Option<u64>,
    #[serde(default)]
    pub rate: Option<Spanned<f64>>,
    #[serde(default)]
    pub burst: Option<u32>,
    #[serde(default)]
    pub tenant_rate: Option<Spanned<f64>>,
    #[serde(default)]
    pub tenant_burst: Option<u32>,
}

/// One backend call: method, path template, optional query and where the payload sits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationFile {
    pub method: Spanned<String>,
    pub path: Spanned<String>,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default)]
    pub result: Option<Spanned<String>>,
    #[serde(default)]
    pub body: Option<Spanned<String>>,
}

/// `[users.list]`: the list/search call and its paging.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListFile {
    pub method: Spanned<String>,
    pub path: Spanned<String>,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    pub results: Spanned<String>,
    #[serde(default)]
    pub total: Option<Spanned<String>>,
    pub paging: PagingFile,
}

/// `[users.list.paging]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagingFile {
    pub style: Spanned<String>,
    #[serde(default)]
    pub page: Option<String>,
    #[serde(default)]
    pub offset: Option<String>,
    #[serde(default)]
    pub size: Option<String>,
    #[serde(default)]
    pub max_size: Option<usize>,
    #[serde(default)]
    pub first_page: Option<u64>,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub next: Option<Spanned<String>>,
    #[serde(default)]
    pub after: Option<String>,
}

/// `[[users.fields]]`: one SCIM attribute ⇄ native field mapping; also each
/// `[[users.fields.elements]]` entry of a native list (a sub-attribute ⇄ a key of the element).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldFile {
    #[serde(default)]
    pub scim: Option<Spanned<String>>,
    pub native: Spanned<String>,
    #[serde(default)]
    pub map: Option<Spanned<BTreeMap<String, toml::Value>>>,
    #[serde(default)]
    pub otherwise: Option<Spanned<String>>,
    #[serde(default)]
    pub normalize: Vec<Spanned<String>>,
    #[serde(default)]
    pub compose: Option<Spanned<String>>,
    #[serde(default)]
    pub primary: Option<Spanned<String>>,
    #[serde(default)]
    pub elements: Vec<FieldFile>,
    #[serde(default)]
    pub native_type: Option<Spanned<String>>,
    #[serde(default)]
    pub constant: Option<toml::Value>,
    #[serde(default)]
    pub default: Option<toml::Value>,
    #[serde(default)]
    pub on: Option<Spanned<String>>,
}

/// `[[users.errors]]`: how a backend error status maps to a SCIM error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorFile {
    pub status: u16,
    #[serde(default)]
    pub body_contains: Option<String>,
    #[serde(default)]
    pub body_field: Option<Spanned<String>>,
    #[serde(default)]
    pub equals: Option<toml::Value>,
    #[serde(default)]
    pub scim_status: Option<u16>,
    #[serde(default)]
    pub scim_type: Option<Spanned<String>>,
    #[serde(default)]
    pub detail: Option<String>,
}

/// `[groups]`: the backend's native group API (SCIM `/Groups` is served only with it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsFile {
    #[serde(default)]
    pub id_field: Option<String>,
    #[serde(default)]
    pub created_field: Option<String>,
    #[serde(default)]
    pub modified_field: Option<String>,
    #[serde(default)]
    pub time_format: Option<Spanned<String>>,
    #[serde(default)]
    pub max_members_per_request: Option<Spanned<usize>>,
    #[serde(default)]
    pub member_calls_at_once: Option<Spanned<usize>>,
    #[serde(default)]
    pub patch_answer: Option<Spanned<String>>,
    pub list: ListFile,
    pub get: OperationFile,
    pub create: OperationFile,
    pub update: OperationFile,
    pub delete: OperationFile,
    #[serde(default)]
    pub filters: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub fields: Vec<FieldFile>,
    #[serde(default)]
    pub errors: Vec<ErrorFile>,
    pub members: Spanned<MembersFile>,
}

/// `[groups.members]`: where the backend keeps who is in a group.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersFile {
    pub model: Spanned<String>,
    #[serde(default)]
    pub add: Option<OperationFile>,
    #[serde(default)]
    pub remove: Option<OperationFile>,
    #[serde(default)]
    pub list: Option<ListFile>,
    #[serde(default)]
    pub value: Option<Spanned<String>>,
    #[serde(default)]
    pub display: Option<String>,
    #[serde(default)]
    pub field: Option<Spanned<String>>,
    #[serde(default)]
    pub native_type: Option<Spanned<String>>,
    #[serde(default)]
    pub search: Option<Spanned<String>>,
}

/// `[guard]`: self-service routes blocked for SCIM-managed accounts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardFile {
    #[serde(default)]
    pub all_members_managed: bool,
    #[serde(default)]
    pub ids_per_tenant: bool,
    pub identity: IdentityFile,
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    #[serde(default)]
    pub session_cookies: Vec<String>,
    #[serde(default)]
    pub credential_params: Option<Vec<String>>,
    #[serde(default)]
    pub rules: Vec<RuleFile>,
}

/// `[guard.identity]`: how the caller of a guarded route is identified.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityFile {
    pub source: Spanned<String>,
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub edge: bool,
    #[serde(default)]
    pub claim: Option<String>,
    #[serde(default)]
    pub jwt_secret_env: Option<Spanned<String>>,
    #[serde(default)]
    pub jwt_algorithm: Option<Spanned<String>>,
    #[serde(default)]
    pub jwt_public_key_file: Option<Spanned<String>>,
    #[serde(default)]
    pub jwt_jwks_file: Option<Spanned<String>>,
    #[serde(default)]
    pub whoami: Option<OperationFile>,
    #[serde(default)]
    pub id_field: Option<String>,
    #[serde(default)]
    pub tenant_field: Option<String>,
    #[serde(default)]
    pub tenant_header: Option<String>,
    #[serde(default)]
    pub tenant_claim: Option<String>,
    #[serde(default)]
    pub role_field: Option<String>,
    #[serde(default)]
    pub role_header: Option<String>,
    #[serde(default)]
    pub role_claim: Option<String>,
    #[serde(default)]
    pub cache_seconds: Option<u64>,
}

/// `[[guard.rules]]`: one guarded self-service route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub name: Spanned<String>,
    pub methods: Vec<Spanned<String>>,
    pub path: Spanned<String>,
    #[serde(default)]
    pub fields: Vec<String>,
    #[serde(default)]
    pub member: Option<Spanned<String>>,
    #[serde(default)]
    pub tenant: Option<Spanned<String>>,
    #[serde(default)]
    pub group: Option<Spanned<String>>,
}

/// `[proxy]`: how proxied traffic is carried (timeouts, forwarded headers).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyFile {
    #[serde(default)]
    pub read_timeout_ms: Option<u64>,
    #[serde(default)]
    pub upgrade_idle_timeout_ms: Option<u64>,
    #[serde(default)]
    pub forwarded_headers: Option<bool>,
    #[serde(default)]
    pub trusted_proxies: Vec<Spanned<String>>,
}
