//! The gateway's own state, in one SQLite file (WAL): per tenant and backend user id, the SCIM
//! resource as last written (so attributes the backend cannot hold round-trip), `externalId`,
//! the SCIM-managed flag and the `meta` timestamps.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{mpsc, Mutex, MutexGuard};

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

/// The SQLite-backed store: one connection for reads (never blocked by a writer, thanks to WAL)
/// and one for writes, owned by a thread of its own so a slow or locked disk never stalls the
/// gateway's async workers.
pub struct Store {
    reader: Mutex<Connection>,
    writer: mpsc::Sender<WriteJob>,
}

/// A write for the writer thread.
type WriteJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// Runs writes in order on `conn` until the store is dropped.
fn writer_thread(mut conn: Connection) -> Result<mpsc::Sender<WriteJob>, StoreError> {
    let (tx, rx) = mpsc::channel::<WriteJob>();
    std::thread::Builder::new()
        .name("scimgate-store".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                job(&mut conn);
            }
        })
        .map_err(|e| StoreError(format!("cannot start the store writer: {e}")))?;
    Ok(tx)
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
CREATE TABLE IF NOT EXISTS pending_creates (
    tenant    TEXT NOT NULL,
    user_name TEXT NOT NULL,
    shadow    TEXT NOT NULL,
    created   TEXT NOT NULL,
    PRIMARY KEY (tenant, user_name)
);
CREATE TABLE IF NOT EXISTS write_probe (id INTEGER PRIMARY KEY, at TEXT NOT NULL);
";

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|p| p.into_inner())
}

impl Store {
    /// Opens (creating if needed) the store file.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        }
        let writer = connect(path)?;
        writer.execute_batch(SCHEMA)?;
        Ok(Store {
            reader: Mutex::new(connect(path)?),
            writer: writer_thread(writer)?,
        })
    }

    /// Runs a write on the writer thread and waits for it without blocking the caller's thread.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let _ = done.send(work(conn));
        });
        self.writer
            .send(job)
            .map_err(|_| StoreError("the store writer has stopped".into()))?;
        result
            .await
            .map_err(|_| StoreError("the store writer has stopped".into()))?
    }

    /// The record of one user.
    pub fn get(&self, tenant: &str, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let conn = lock(&self.reader);
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
        let conn = lock(&self.reader);
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
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM users WHERE tenant = ?1 AND external_id = ?2 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![tenant, external_id], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether the identity provider owns the account.
    pub fn is_managed(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self.get(tenant, id)?.is_some_and(|r| r.managed))
    }

    /// Whether the identity provider owns an account whose id equals `id` ignoring ASCII case,
    /// as a case-insensitive backend resolves `USR_BOB` to `usr_bob`. Walks the tenant's ids:
    /// asked only for a guarded request whose id has letters and no exact record.
    pub fn is_managed_ignoring_case(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT 1 FROM users WHERE tenant = ?1 AND id = ?2 COLLATE NOCASE AND managed = 1 LIMIT 1",
        )?;
        Ok(stmt.exists(params![tenant, id])?)
    }

    /// The resource of a create that reached the backend but was never recorded (the gateway
    /// stopped in between), by userName.
    pub fn pending_create(
        &self,
        tenant: &str,
        user_name: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT shadow, created FROM pending_creates WHERE tenant = ?1 AND user_name = ?2",
        )?;
        let row = stmt
            .query_row(params![tenant, user_name.to_lowercase()], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .optional()?;
        row.map(|(shadow, created)| {
            Ok(UserRecord {
                shadow: serde_json::from_str(&shadow)
                    .map_err(|e| StoreError(format!("corrupt pending create: {e}")))?,
                managed: true,
                last_modified: created.clone(),
                created,
            })
        })
        .transpose()
    }

    /// Notes a create before it is sent to the backend, so its attributes survive a crash
    /// between the backend's write and [`Store::put`].
    pub async fn put_pending_create(
        &self,
        tenant: &str,
        user_name: &str,
        rec: &UserRecord,
    ) -> Result<(), StoreError> {
        let (tenant, user_name) = (tenant.to_string(), user_name.to_lowercase());
        let (shadow, created) = (rec.shadow.to_string(), rec.created.clone());
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO pending_creates (tenant, user_name, shadow, created) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![tenant, user_name, shadow, created])?;
            Ok(())
        })
        .await
    }

    /// Inserts or replaces a user's record, and forgets a pending create of its userName.
    pub async fn put(&self, tenant: &str, id: &str, rec: &UserRecord) -> Result<(), StoreError> {
        let external_id = rec
            .shadow
            .get("externalId")
            .and_then(Value::as_str)
            .map(str::to_string);
        let user_name = rec
            .shadow
            .get("userName")
            .and_then(Value::as_str)
            .map(str::to_lowercase);
        let (tenant, id, rec) = (tenant.to_string(), id.to_string(), rec.clone());
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.prepare_cached(
                "INSERT INTO users (tenant, id, external_id, shadow, managed, created, last_modified)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (tenant, id) DO UPDATE SET external_id = ?3, shadow = ?4, managed = ?5,
                     created = ?6, last_modified = ?7",
            )?
            .execute(params![tenant, id, external_id, rec.shadow.to_string(), rec.managed, rec.created, rec.last_modified])?;
            if let Some(name) = user_name {
                tx.prepare_cached("DELETE FROM pending_creates WHERE tenant = ?1 AND user_name = ?2")?
                    .execute(params![tenant, name])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Forgets a pending create (the backend refused it, or it was undone).
    pub async fn clear_pending_create(
        &self,
        tenant: &str,
        user_name: &str,
    ) -> Result<(), StoreError> {
        let (tenant, user_name) = (tenant.to_string(), user_name.to_lowercase());
        self.write(move |conn| {
            conn.prepare_cached(
                "DELETE FROM pending_creates WHERE tenant = ?1 AND user_name = ?2",
            )?
            .execute(params![tenant, user_name])?;
            Ok(())
        })
        .await
    }

    /// Forgets a user (after SCIM deleted it).
    pub async fn delete(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM users WHERE tenant = ?1 AND id = ?2")?
                .execute(params![tenant, id])?;
            Ok(())
        })
        .await
    }

    /// Checks the store can really be written (a committed write, so a full disk shows).
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos().to_string())
            .unwrap_or_default();
        self.write(move |conn| {
            conn.prepare_cached("INSERT OR REPLACE INTO write_probe (id, at) VALUES (1, ?1)")?
                .execute(params![now])?;
            Ok(())
        })
        .await
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

    #[tokio::test]
    async fn put_get_find_delete_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        store.put("acme", "7", &record("ext-1")).await.unwrap();
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
        assert!(!store.is_managed_ignoring_case("acme", "8").unwrap());
        store.put("acme", "7", &record("ext-2")).await.unwrap();
        assert!(store
            .find_by_external_id("acme", "ext-1")
            .unwrap()
            .is_empty());
        assert_eq!(store.all("acme").unwrap().len(), 1);
        store.delete("acme", "7").await.unwrap();
        assert_eq!(store.get("acme", "7").unwrap(), None);
        store.check_writable().await.unwrap();
    }

    #[tokio::test]
    async fn pending_creates_are_kept_until_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        store
            .put_pending_create("acme", "A@B.C", &record("ext-1"))
            .await
            .unwrap();
        let pending = store.pending_create("acme", "a@b.c").unwrap().unwrap();
        assert_eq!(pending.shadow["externalId"], "ext-1");
        store.put("acme", "7", &record("ext-1")).await.unwrap();
        assert!(
            store.pending_create("acme", "a@b.c").unwrap().is_none(),
            "recording clears it"
        );
        store
            .put_pending_create("acme", "x@y.z", &record("ext-9"))
            .await
            .unwrap();
        store.clear_pending_create("acme", "X@Y.Z").await.unwrap();
        assert!(store.pending_create("acme", "x@y.z").unwrap().is_none());
    }
}
