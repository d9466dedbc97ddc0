//! The gateway's own state, in one SQLite file (WAL): per tenant and backend user id, the SCIM
//! resource as last written (so attributes the backend cannot hold round-trip), `externalId`,
//! the SCIM-managed flag and the `meta` timestamps.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// What the store knows of one user.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    /// The SCIM resource as last written through the gateway (no `id`, no `meta`).
    pub shadow: Value,
    /// True while the identity provider owns the account.
    pub managed: bool,
    /// `meta.created`.
    pub created: String,
    /// `meta.lastModified`.
    pub last_modified: String,
}

/// A store failure (file unwritable, disk full, corrupt database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

/// The SQLite-backed store. Calls are short and serialised by one connection lock.
pub struct Store {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    tenant        TEXT NOT NULL,
    id            TEXT NOT NULL,
    external_id   TEXT,
    shadow        TEXT NOT NULL,
    managed       INTEGER NOT NULL DEFAULT 0,
    created       TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX IF NOT EXISTS users_external_id ON users (tenant, external_id);
";

impl Store {
    /// Opens (creating if needed) the store file.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The record of one user.
    pub fn get(&self, tenant: &str, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT shadow, managed, created, last_modified FROM users WHERE tenant = ?1 AND id = ?2",
        )?;
        let row = stmt
            .query_row(params![tenant, id], read_record)
            .optional()?;
        row.transpose()
    }

    /// The records of several users, keyed by id (missing ones are absent).
    pub fn get_many(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> Result<HashMap<String, UserRecord>, StoreError> {
        let mut out = HashMap::new();
        for id in ids {
            if let Some(r) = self.get(tenant, id)? {
                out.insert(id.clone(), r);
            }
        }
        Ok(out)
    }

    /// Every record of a tenant, for filters evaluated in the gateway.
    pub fn all(&self, tenant: &str) -> Result<Vec<(String, UserRecord)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, shadow, managed, created, last_modified FROM users WHERE tenant = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![tenant], |row| {
            let id: String = row.get(0)?;
            Ok((id, read_record_at(row, 1)))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, rec) = row?;
            out.push((id, rec?));
        }
        Ok(out)
    }

    /// Ids of the tenant's users whose `externalId` is `external_id` (case-exact).
    pub fn find_by_external_id(
        &self,
        tenant: &str,
        external_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM users WHERE tenant = ?1 AND external_id = ?2 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![tenant, external_id], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Inserts or replaces a user's record.
    pub fn put(&self, tenant: &str, id: &str, rec: &UserRecord) -> Result<(), StoreError> {
        let external_id = rec.shadow.get("externalId").and_then(Value::as_str);
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO users (tenant, id, external_id, shadow, managed, created, last_modified)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (tenant, id) DO UPDATE SET external_id = ?3, shadow = ?4, managed = ?5,
                 created = ?6, last_modified = ?7",
        )?
        .execute(params![
            tenant,
            id,
            external_id,
            rec.shadow.to_string(),
            rec.managed,
            rec.created,
            rec.last_modified
        ])?;
        Ok(())
    }

    /// Forgets a user (after SCIM deleted it).
    pub fn delete(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("DELETE FROM users WHERE tenant = ?1 AND id = ?2")?
            .execute(params![tenant, id])?;
        Ok(())
    }

    /// Whether the identity provider owns the account.
    pub fn is_managed(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self.get(tenant, id)?.is_some_and(|r| r.managed))
    }

    /// Checks the store can be written (for readiness probes).
    pub fn check_writable(&self) -> Result<(), StoreError> {
        self.conn().execute_batch("BEGIN IMMEDIATE; ROLLBACK;")?;
        Ok(())
    }
}

fn read_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<UserRecord, StoreError>> {
    Ok(read_record_at(row, 0))
}

fn read_record_at(row: &rusqlite::Row<'_>, at: usize) -> Result<UserRecord, StoreError> {
    let get = |i: usize| -> Result<String, StoreError> { Ok(row.get::<_, String>(at + i)?) };
    let shadow = serde_json::from_str(&get(0)?)
        .map_err(|e| StoreError(format!("corrupt shadow record: {e}")))?;
    Ok(UserRecord {
        shadow,
        managed: row.get::<_, bool>(at + 1)?,
        created: get(2)?,
        last_modified: get(3)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(ext: &str) -> UserRecord {
        UserRecord {
            shadow: json!({"externalId": ext, "userName": "a@b.c"}),
            managed: true,
            created: "2026-01-01T00:00:00Z".into(),
            last_modified: "2026-01-02T00:00:00Z".into(),
        }
    }

    #[test]
    fn put_get_find_delete_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        store.put("acme", "7", &record("ext-1")).unwrap();
        assert_eq!(store.get("acme", "7").unwrap(), Some(record("ext-1")));
        assert_eq!(store.get("other", "7").unwrap(), None);
        assert_eq!(
            store.find_by_external_id("acme", "ext-1").unwrap(),
            vec!["7"]
        );
        assert!(store
            .find_by_external_id("acme", "EXT-1")
            .unwrap()
            .is_empty());
        assert!(store.is_managed("acme", "7").unwrap());
        store.put("acme", "7", &record("ext-2")).unwrap();
        assert!(store
            .find_by_external_id("acme", "ext-1")
            .unwrap()
            .is_empty());
        assert_eq!(store.all("acme").unwrap().len(), 1);
        store.delete("acme", "7").unwrap();
        assert_eq!(store.get("acme", "7").unwrap(), None);
        store.check_writable().unwrap();
    }
}
