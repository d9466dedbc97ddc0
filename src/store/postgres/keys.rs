//! The tenants and SCIM API keys of the PostgreSQL engine (schema version 6). The trait methods
//! of [`Store`](super::super::Store) call these methods. Adding a key holds its tenant's row
//! (`FOR SHARE`) and disabling a tenant takes it for update before it revokes the keys, so a
//! key added while its tenant is disabled is revoked with the others, on every gateway at once.

use super::super::keys::{KeyAdded, LiveKey, Revocation, StoreKey, StoreTenant};
use super::super::StoreError;
use super::errors::classify;
use super::{column, PostgresStore};
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

/// Creates the tenant enabled, or enables it; no row when it is enabled already.
const ENABLE_TENANT: &str = "INSERT INTO tenants (name, enabled, created_at, created_by) \
                             VALUES ($1, TRUE, $2, $3) ON CONFLICT (name) \
                             DO UPDATE SET enabled = TRUE WHERE NOT tenants.enabled RETURNING 1";
const DISABLE_TENANT: &str = "UPDATE tenants SET enabled = FALSE WHERE name = $1";
const REVOKE_TENANT_KEYS: &str =
    "UPDATE api_keys SET revoked_at = $2 WHERE tenant = $1 AND revoked_at IS NULL";
/// Whether the tenant is enabled, and whether the key was inserted (not when its id or hash
/// is taken), in one statement.
const ADD_KEY: &str = "WITH t AS (
    SELECT name FROM tenants WHERE name = $3 AND enabled FOR SHARE
), ins AS (
    INSERT INTO api_keys (id, sha256, tenant, label, created_at, created_by)
    SELECT $1::text, $2::text, name, $4::text, $5::text, $6::text FROM t
    ON CONFLICT DO NOTHING RETURNING 1
) SELECT EXISTS (SELECT 1 FROM t), EXISTS (SELECT 1 FROM ins)";
const KEY_COLUMNS: &str =
    "id, sha256, tenant, label, created_at, created_by, last_used_at, revoked_at";
const TENANT_KEYS: &str = "SELECT id, sha256, tenant, label, created_at, created_by, \
                           last_used_at, revoked_at FROM api_keys WHERE tenant = $1 ORDER BY id";
const ALL_KEYS: &str = "SELECT id, sha256, tenant, label, created_at, created_by, \
                        last_used_at, revoked_at FROM api_keys ORDER BY tenant, id";
/// A live key revoked, answered as now held; no row when it is revoked or unknown.
const REVOKE_KEY: &str = "UPDATE api_keys SET revoked_at = $3 \
                          WHERE id = $1 AND ($2::text IS NULL OR tenant = $2) \
                          AND revoked_at IS NULL RETURNING id, sha256, tenant, label, \
                          created_at, created_by, last_used_at, revoked_at";
const SELECT_KEY: &str = "SELECT id, sha256, tenant, label, created_at, created_by, \
                          last_used_at, revoked_at FROM api_keys \
                          WHERE id = $1 AND ($2::text IS NULL OR tenant = $2)";
const SELECT_TENANT: &str =
    "SELECT name, enabled, created_at, created_by FROM tenants WHERE name = $1";
/// The lookup of every request's key (by the unique index on `sha256`), for the query-plan test.
#[doc(hidden)]
pub const LIVE_KEY: &str = "SELECT k.id, k.tenant FROM api_keys AS k \
                        JOIN tenants AS t ON t.name = k.tenant \
                        WHERE k.sha256 = $1 AND k.revoked_at IS NULL AND t.enabled";
const TOUCH_KEY: &str = "UPDATE api_keys SET last_used_at = $2 \
                         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)";

impl PostgresStore {
    /// [`Store::enable_tenant`](super::super::Store::enable_tenant).
    pub(super) async fn enable(&self, name: &str, by: &str, now: &str) -> Result<bool, StoreError> {
        let (name, by, now) = (name.to_string(), by.to_string(), now.to_string());
        self.on_db(|db| async move {
            let rows = db.query(ENABLE_TENANT, &[&name, &now, &by]).await?;
            Ok(!rows.is_empty())
        })
        .await
    }

    /// [`Store::disable_tenant`](super::super::Store::disable_tenant): the tenant's row is
    /// taken first, so a key being added commits before its tenant's keys are revoked.
    pub(super) async fn disable(&self, name: &str, now: &str) -> Result<usize, StoreError> {
        let (name, now) = (name.to_string(), now.to_string());
        self.on_db(|db| async move {
            let mut conn = db.conn().await?;
            let run = async {
                let tx = conn.transaction().await?;
                tx.execute(DISABLE_TENANT, &[&name]).await?;
                let revoked = tx.execute(REVOKE_TENANT_KEYS, &[&name, &now]).await?;
                tx.commit().await?;
                Ok::<_, tokio_postgres::Error>(revoked)
            };
            let revoked = run.await.map_err(|e| classify(&e))?;
            Ok(usize::try_from(revoked).unwrap_or(usize::MAX))
        })
        .await
    }

    /// [`Store::add_key`](super::super::Store::add_key): one statement.
    pub(super) async fn insert_key(&self, key: &StoreKey) -> Result<KeyAdded, StoreError> {
        let k = key.clone();
        self.on_db(|db| async move {
            let params: [&(dyn ToSql + Sync); 6] = [
                &k.id,
                &k.sha256,
                &k.tenant,
                &k.label,
                &k.created_at,
                &k.created_by,
            ];
            let rows = db.query(ADD_KEY, &params).await?;
            let Some(row) = rows.first() else {
                return Err(StoreError::Corrupt(format!("no answer to {ADD_KEY}")));
            };
            let (enabled, added): (bool, bool) = (column(row, 0)?, column(row, 1)?);
            Ok(match (enabled, added) {
                (false, _) => KeyAdded::TenantNotEnabled,
                (true, true) => KeyAdded::Added,
                (true, false) => KeyAdded::Taken,
            })
        })
        .await
    }

    /// [`Store::tenant_keys`](super::super::Store::tenant_keys) (`Some`) or
    /// [`Store::all_keys`](super::super::Store::all_keys) (`None`).
    pub(super) async fn keys_of(&self, tenant: Option<&str>) -> Result<Vec<StoreKey>, StoreError> {
        let rows = match &tenant {
            Some(t) => self.db.read(TENANT_KEYS, &[t]).await?,
            None => self.db.read(ALL_KEYS, &[]).await?,
        };
        rows.iter().map(key_row).collect()
    }

    /// [`Store::revoke_key`](super::super::Store::revoke_key). Keys are never deleted, so a key
    /// the revocation did not change is either revoked already or unknown.
    pub(super) async fn revoke(
        &self,
        id: &str,
        tenant: Option<&str>,
        now: &str,
    ) -> Result<Revocation, StoreError> {
        if id.contains('\0') || tenant.is_some_and(|t| t.contains('\0')) {
            return Ok(Revocation::Unknown);
        }
        let (id, tenant, now) = (id.to_string(), tenant.map(str::to_string), now.to_string());
        self.on_db(|db| async move {
            let revoked = db.query(REVOKE_KEY, &[&id, &tenant, &now]).await?;
            if let Some(row) = revoked.first() {
                return Ok(Revocation::Revoked(key_row(row)?));
            }
            let before = db.query(SELECT_KEY, &[&id, &tenant]).await?;
            Ok(match before.first() {
                Some(row) => Revocation::AlreadyRevoked(key_row(row)?),
                None => Revocation::Unknown,
            })
        })
        .await
    }

    /// [`Store::tenant`](super::super::Store::tenant).
    pub(super) async fn tenant_named(&self, name: &str) -> Result<Option<StoreTenant>, StoreError> {
        let rows = self.db.read(SELECT_TENANT, &[&name]).await?;
        rows.first().map(tenant_row).transpose()
    }

    /// [`Store::live_key`](super::super::Store::live_key).
    pub(super) async fn live(&self, sha256: &str) -> Result<Option<LiveKey>, StoreError> {
        if sha256.contains('\0') {
            return Ok(None);
        }
        let rows = self.db.read(LIVE_KEY, &[&sha256]).await?;
        rows.first()
            .map(|r| {
                Ok(LiveKey {
                    id: column(r, 0)?,
                    tenant: column(r, 1)?,
                })
            })
            .transpose()
    }

    /// [`Store::touch_key`](super::super::Store::touch_key).
    pub(super) async fn touch(&self, id: &str, at: &str) -> Result<(), StoreError> {
        self.write_by(TOUCH_KEY, id, at).await
    }
}

/// Every store tenant and every key (for copying into this store).
pub(super) async fn rows_of(
    client: &impl GenericClient,
) -> Result<(Vec<StoreTenant>, Vec<StoreKey>), StoreError> {
    let select = |sql: String| async move {
        client
            .query(sql.as_str(), &[])
            .await
            .map_err(|e| classify(&e))
    };
    let tenants =
        select("SELECT name, enabled, created_at, created_by FROM tenants ORDER BY name".into())
            .await?;
    let keys = select(format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id")).await?;
    Ok((
        tenants.iter().map(tenant_row).collect::<Result<_, _>>()?,
        keys.iter().map(key_row).collect::<Result<_, _>>()?,
    ))
}

fn tenant_row(r: &Row) -> Result<StoreTenant, StoreError> {
    Ok(StoreTenant {
        name: column(r, 0)?,
        enabled: column(r, 1)?,
        created_at: column(r, 2)?,
        created_by: column(r, 3)?,
    })
}

fn key_row(r: &Row) -> Result<StoreKey, StoreError> {
    Ok(StoreKey {
        id: column(r, 0)?,
        sha256: column(r, 1)?,
        tenant: column(r, 2)?,
        label: column(r, 3)?,
        created_at: column(r, 4)?,
        created_by: column(r, 5)?,
        last_used_at: column(r, 6)?,
        revoked_at: column(r, 7)?,
    })
}
