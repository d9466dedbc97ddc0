//! The tenants and SCIM API keys of the SQLite engine (schema version 1 of its migrations).
//! The trait methods of [`Store`](super::super::Store) and the engine's
//! `rows` call these methods (and name nothing else here, so the engine's module does not
//! depend on this one). Writes that read first (add, revoke) run on the writer thread, so nothing comes
//! between their read and their write.

use super::super::keys::{KeyAdded, LiveKey, Revocation, StoreKey, StoreTenant};
use super::super::StoreError;
use super::SqliteStore;
use rusqlite::{params, Connection, OptionalExtension, Row};

/// Creates the tenant enabled, or enables it; no change (0 rows) when it is enabled already.
const ENABLE_TENANT: &str = "INSERT INTO tenants (name, enabled, created_at, created_by) \
                             VALUES (?1, 1, ?2, ?3) \
                             ON CONFLICT (name) DO UPDATE SET enabled = 1 WHERE enabled = 0";
const DISABLE_TENANT: &str = "UPDATE tenants SET enabled = 0 WHERE name = ?1";
const REVOKE_TENANT_KEYS: &str =
    "UPDATE api_keys SET revoked_at = ?2 WHERE tenant = ?1 AND revoked_at IS NULL";
const TENANT_ENABLED: &str = "SELECT 1 FROM tenants WHERE name = ?1 AND enabled = 1";
/// A key whose id or hash is taken is not inserted (0 rows).
const INSERT_KEY: &str = "INSERT OR IGNORE INTO api_keys \
                          (id, sha256, tenant, label, created_at, created_by) \
                          VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const KEY_COLUMNS: &str =
    "id, sha256, tenant, label, created_at, created_by, last_used_at, revoked_at";
/// A live key revoked, answered as now held; nothing when it is revoked or unknown.
const REVOKE_KEY: &str = "UPDATE api_keys SET revoked_at = ?3 \
                          WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2) AND revoked_at IS NULL \
                          RETURNING id, sha256, tenant, label, created_at, created_by, \
                          last_used_at, revoked_at";
const LIVE_KEY: &str = "SELECT k.id, k.tenant FROM api_keys AS k \
                        JOIN tenants AS t ON t.name = k.tenant \
                        WHERE k.sha256 = ?1 AND k.revoked_at IS NULL AND t.enabled = 1";
const TOUCH_KEY: &str = "UPDATE api_keys SET last_used_at = ?2 \
                         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)";

impl SqliteStore {
    /// [`Store::enable_tenant`](super::super::Store::enable_tenant).
    pub(super) async fn enable(&self, name: &str, by: &str, now: &str) -> Result<bool, StoreError> {
        let (name, by, now) = (name.to_string(), by.to_string(), now.to_string());
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(ENABLE_TENANT)?
                .execute(params![name, now, by])?;
            Ok(changed > 0)
        })
        .await
    }

    /// [`Store::disable_tenant`](super::super::Store::disable_tenant): in one transaction.
    pub(super) async fn disable(&self, name: &str, now: &str) -> Result<usize, StoreError> {
        let (name, now) = (name.to_string(), now.to_string());
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.prepare_cached(DISABLE_TENANT)?.execute(params![name])?;
            let revoked = tx
                .prepare_cached(REVOKE_TENANT_KEYS)?
                .execute(params![name, now])?;
            tx.commit()?;
            Ok(revoked)
        })
        .await
    }

    /// [`Store::add_key`](super::super::Store::add_key).
    pub(super) async fn insert_key(&self, key: &StoreKey) -> Result<KeyAdded, StoreError> {
        let key = key.clone();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            if !tx
                .prepare_cached(TENANT_ENABLED)?
                .exists(params![key.tenant])?
            {
                return Ok(KeyAdded::TenantNotEnabled);
            }
            let inserted = tx.prepare_cached(INSERT_KEY)?.execute(params![
                key.id,
                key.sha256,
                key.tenant,
                key.label,
                key.created_at,
                key.created_by
            ])?;
            tx.commit()?;
            Ok(if inserted > 0 {
                KeyAdded::Added
            } else {
                KeyAdded::Taken
            })
        })
        .await
    }

    /// Every store tenant and every key, in order (for copying the store).
    pub(super) async fn key_tables(&self) -> Result<(Vec<StoreTenant>, Vec<StoreKey>), StoreError> {
        self.read(|conn| Ok((tenant_rows(conn)?, key_rows(conn, None)?)))
            .await
    }

    /// [`Store::tenant_keys`](super::super::Store::tenant_keys) (`Some`) or
    /// [`Store::all_keys`](super::super::Store::all_keys) (`None`).
    pub(super) async fn keys_of(&self, tenant: Option<&str>) -> Result<Vec<StoreKey>, StoreError> {
        let tenant = tenant.map(str::to_string);
        self.read(move |conn| key_rows(conn, tenant.as_deref()))
            .await
    }

    /// [`Store::revoke_key`](super::super::Store::revoke_key).
    pub(super) async fn revoke(
        &self,
        id: &str,
        tenant: Option<&str>,
        now: &str,
    ) -> Result<Revocation, StoreError> {
        let (id, tenant, now) = (id.to_string(), tenant.map(str::to_string), now.to_string());
        self.write(move |conn| {
            let revoked = conn
                .prepare_cached(REVOKE_KEY)?
                .query_row(params![id, tenant, now], key_at)
                .optional()?;
            if let Some(key) = revoked {
                return Ok(Revocation::Revoked(key));
            }
            let sql = format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2)"
            );
            let before = conn
                .prepare_cached(&sql)?
                .query_row(params![id, tenant], key_at)
                .optional()?;
            Ok(before.map_or(Revocation::Unknown, Revocation::AlreadyRevoked))
        })
        .await
    }

    /// [`Store::tenant`](super::super::Store::tenant).
    pub(super) async fn tenant_named(&self, name: &str) -> Result<Option<StoreTenant>, StoreError> {
        let name = name.to_string();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT name, enabled, created_at, created_by FROM tenants WHERE name = ?1",
            )?
            .query_row(params![name], tenant_at)
            .optional()
        })
        .await
    }

    /// [`Store::live_key`](super::super::Store::live_key).
    pub(super) async fn live(&self, sha256: &str) -> Result<Option<LiveKey>, StoreError> {
        let sha256 = sha256.to_string();
        self.read(move |conn| {
            conn.prepare_cached(LIVE_KEY)?
                .query_row(params![sha256], |r| {
                    Ok(LiveKey {
                        id: r.get(0)?,
                        tenant: r.get(1)?,
                    })
                })
                .optional()
        })
        .await
    }

    /// [`Store::touch_key`](super::super::Store::touch_key).
    pub(super) async fn touch(&self, id: &str, at: &str) -> Result<(), StoreError> {
        let (id, at) = (id.to_string(), at.to_string());
        self.write(move |conn| {
            conn.prepare_cached(TOUCH_KEY)?
                .execute(params![id, at])
                .map(drop)
        })
        .await
    }
}

/// The keys of `tenant`, or every key, in order.
fn key_rows(conn: &Connection, tenant: Option<&str>) -> rusqlite::Result<Vec<StoreKey>> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE ?1 IS NULL OR tenant = ?1 ORDER BY tenant, id"
    );
    conn.prepare_cached(&sql)?
        .query_map(params![tenant], key_at)?
        .collect()
}

/// Every store tenant, by name.
fn tenant_rows(conn: &Connection) -> rusqlite::Result<Vec<StoreTenant>> {
    conn.prepare("SELECT name, enabled, created_at, created_by FROM tenants ORDER BY name")?
        .query_map([], tenant_at)?
        .collect()
}

fn tenant_at(r: &Row<'_>) -> rusqlite::Result<StoreTenant> {
    Ok(StoreTenant {
        name: r.get(0)?,
        enabled: r.get(1)?,
        created_at: r.get(2)?,
        created_by: r.get(3)?,
    })
}

fn key_at(r: &Row<'_>) -> rusqlite::Result<StoreKey> {
    Ok(StoreKey {
        id: r.get(0)?,
        sha256: r.get(1)?,
        tenant: r.get(2)?,
        label: r.get(3)?,
        created_at: r.get(4)?,
        created_by: r.get(5)?,
        last_used_at: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}
