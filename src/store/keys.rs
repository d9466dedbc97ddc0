//! Tenants and SCIM API keys kept in the store, next to the static ones of the config file: a
//! tenant is enabled when a team admin turns SCIM on for the team, and its keys are added and
//! revoked without touching the config. A key is kept as the SHA-256 of its secret (hex), never
//! the secret. Times are RFC 3339 text in UTC with whole seconds, so they compare as text.

/// Now, as the store keeps times (`2026-05-01T10:00:00Z`).
pub fn now() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A tenant kept in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreTenant {
    /// The backend's team, as a config `[[tenants]]` entry names it.
    pub name: String,
    /// Whether its keys act (a disabled tenant's keys are all revoked).
    pub enabled: bool,
    /// When it was first enabled.
    pub created_at: String,
    /// Who first enabled it.
    pub created_by: String,
}

/// A SCIM API key kept in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreKey {
    /// The public id (`auth::key_id` of the hash), unique in the store.
    pub id: String,
    /// SHA-256 of the secret, 64 lower-case hex digits.
    pub sha256: String,
    /// The store tenant it acts for.
    pub tenant: String,
    /// What its owner calls it.
    pub label: String,
    /// When it was added.
    pub created_at: String,
    /// Who added it.
    pub created_by: String,
    /// When it last authenticated a request (updated at most about once a minute).
    pub last_used_at: Option<String>,
    /// When it was revoked; a revoked key never acts again.
    pub revoked_at: Option<String>,
}

impl StoreKey {
    /// A key that has not been used or revoked yet.
    pub fn new(id: &str, sha256: &str, tenant: &str, label: &str, by: &str, now: &str) -> Self {
        StoreKey {
            id: id.into(),
            sha256: sha256.into(),
            tenant: tenant.into(),
            label: label.into(),
            created_at: now.into(),
            created_by: by.into(),
            last_used_at: None,
            revoked_at: None,
        }
    }
}

/// The live key a hash names: not revoked, its tenant enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveKey {
    /// The key's id.
    pub id: String,
    /// Its store tenant.
    pub tenant: String,
}

/// What [`Store::add_key`](super::Store::add_key) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAdded {
    /// The key is stored.
    Added,
    /// Nothing was stored: the tenant is not an enabled store tenant.
    TenantNotEnabled,
    /// Nothing was stored: a key with this id or hash is stored already.
    Taken,
}

/// What [`Store::revoke_key`](super::Store::revoke_key) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// The key was live and is revoked now (the key as now held).
    Revoked(StoreKey),
    /// The key had been revoked before; nothing changed.
    AlreadyRevoked(StoreKey),
    /// No key with this id (in the tenant given).
    Unknown,
}
