//! The SQLite engine of the store seam, for one gateway: one file in WAL mode. Writes run in
//! order on a thread of their own with one-shot replies; reads run on tokio's blocking pool over
//! a few read connections (WAL lets them read while a write is in progress), so a slow or locked
//! disk never stalls an async worker. Holds are in-process locks on exact keys. Groups, their pending
//! creates and memberships are kept by [`groups`]; store tenants and SCIM API keys by [`keys`];
//! the brakes on mass deprovisioning by [`brakes`];
//! the schema's versions by [`migrations`].

mod brakes;
mod groups;
mod keys;
mod migrations;

use super::brake::{BrakeChange, BrakeOutcome, BrakeState};
use super::key_locks::KeyLocks;
use super::keys::{KeyAdded, LiveKey, Revocation, StoreKey, StoreTenant};
use super::rows::{MembershipRow, PendingRow, RecordRow, Rows};
use super::{GroupRecord, Held, OpenError, ResourceKey, Store, StoreError, UserRecord};
use async_trait::async_trait;
use rusqlite::types::Type;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Row};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, TryLockError};
use tokio::sync::Semaphore;

/// Read connections: reads running at once.
const READERS: usize = 4;

/// How long a statement waits for another writer of the file before failing as busy.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The schema, applied on every open: statements a file made by an older scimgate lacks run
/// there too. Every lookup is one index search: `users_external_id_id` answers an externalId
/// in id order without a sort (it replaced `users_external_id`, which made SQLite walk the
/// tenant's rows in primary-key order instead); `users_id_folded` answers an id ignoring case;
/// `work_emails`, kept by triggers in the transaction of every write of a user, answers the
/// work email addresses a user's resource holds, folded to lower case: ASCII letters, and the
/// Kelvin sign (U+212A) to `k`, the one other letter whose lower case is ASCII; so a lookup of an
/// ASCII address finds every address that equals it ignoring case as the filter compares.
/// Groups mirror users (`groups_external_id_id`); a membership's primary key answers a group's
/// members in id order, `memberships_user` a user's memberships (for its delete), and
/// `memberships_folded` whether a membership is managed with both ids ignoring case.
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
DROP INDEX IF EXISTS users_external_id;
CREATE INDEX IF NOT EXISTS users_external_id_id ON users (tenant, external_id, id);
CREATE INDEX IF NOT EXISTS users_id_folded ON users (tenant, id COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS work_emails (
    tenant TEXT NOT NULL,
    email  TEXT NOT NULL,
    id     TEXT NOT NULL,
    PRIMARY KEY (tenant, email, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS work_emails_user ON work_emails (tenant, id);
CREATE TABLE IF NOT EXISTS pending_creates (
    tenant    TEXT NOT NULL,
    user_name TEXT NOT NULL,
    shadow    TEXT NOT NULL,
    created   TEXT NOT NULL,
    PRIMARY KEY (tenant, user_name)
);
CREATE TABLE IF NOT EXISTS groups (
    tenant        TEXT NOT NULL,
    id            TEXT NOT NULL,
    external_id   TEXT,
    shadow        TEXT NOT NULL,
    managed       INTEGER NOT NULL DEFAULT 0,
    created       TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX IF NOT EXISTS groups_external_id_id ON groups (tenant, external_id, id);
CREATE TABLE IF NOT EXISTS pending_group_creates (
    tenant       TEXT NOT NULL,
    display_name TEXT NOT NULL,
    shadow       TEXT NOT NULL,
    created      TEXT NOT NULL,
    PRIMARY KEY (tenant, display_name)
);
CREATE TABLE IF NOT EXISTS memberships (
    tenant   TEXT NOT NULL,
    group_id TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    PRIMARY KEY (tenant, group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS memberships_user ON memberships (tenant, user_id);
CREATE INDEX IF NOT EXISTS memberships_folded
    ON memberships (tenant, group_id COLLATE NOCASE, user_id COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS write_probe (id INTEGER PRIMARY KEY, at TEXT NOT NULL);
";

const SELECT_RECORD: &str =
    "SELECT shadow, managed, created, last_modified FROM users WHERE tenant = ?1 AND id = ?2";
/// A page of a walk in id order, the primary key's order.
const SELECT_PAGE: &str = "SELECT id, shadow, managed, created, last_modified FROM users \
                           WHERE tenant = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
const SELECT_BY_EXTERNAL_ID: &str =
    "SELECT id FROM users WHERE tenant = ?1 AND external_id = ?2 ORDER BY id";
const SELECT_BY_WORK_EMAIL: &str =
    "SELECT id FROM work_emails WHERE tenant = ?1 AND email = lower(?2) ORDER BY id";
const IS_MANAGED: &str =
    "SELECT 1 FROM users WHERE tenant = ?1 AND id = ?2 AND managed = 1 LIMIT 1";
const IS_MANAGED_FOLDED: &str =
    "SELECT 1 FROM users WHERE tenant = ?1 AND id = ?2 COLLATE NOCASE AND managed = 1 LIMIT 1";
const SELECT_PENDING: &str =
    "SELECT shadow, created FROM pending_creates WHERE tenant = ?1 AND user_name = ?2";
/// Every membership of one user (`memberships_user`): part of deleting the user.
const FORGET_USER_MEMBERSHIPS: &str = "DELETE FROM memberships WHERE tenant = ?1 AND user_id = ?2";

/// The lookups by key and the page of a walk, with the index each must search (for the
/// query-plan test; a table without rowid is searched by its `PRIMARY KEY`).
#[cfg(test)]
const LOOKUPS: &[(&str, &str)] = &[
    (SELECT_RECORD, "INDEX sqlite_autoindex_users_1"),
    (SELECT_PAGE, "INDEX sqlite_autoindex_users_1"),
    (SELECT_BY_EXTERNAL_ID, "INDEX users_external_id_id"),
    (SELECT_BY_WORK_EMAIL, "PRIMARY KEY"),
    (IS_MANAGED, "INDEX sqlite_autoindex_users_1"),
    (IS_MANAGED_FOLDED, "INDEX users_id_folded"),
    (SELECT_PENDING, "INDEX sqlite_autoindex_pending_creates_1"),
    (groups::SELECT_GROUP, "INDEX sqlite_autoindex_groups_1"),
    (
        groups::SELECT_GROUPS_BY_EXTERNAL_ID,
        "INDEX groups_external_id_id",
    ),
    (
        groups::SELECT_PENDING_GROUP,
        "INDEX sqlite_autoindex_pending_group_creates_1",
    ),
    (groups::SELECT_MEMBERS, "PRIMARY KEY"),
    (groups::IS_MANAGED_MEMBERSHIP, "INDEX memberships_folded"),
];

/// The rows of `work_emails` for the user in the row `$row` (`NEW`, or the alias of a table
/// the FROM clause starts with, `$from`): its work addresses folded, each once. Text that is not
/// JSON, `emails` that is not a list, and elements that are not objects hold no address.
macro_rules! work_email_rows {
    ($row:literal, $from:literal) => {
        concat!(
            "SELECT DISTINCT ",
            $row,
            ".tenant, ",
            "lower(replace(json_extract(",
            work_email_element!(),
            ", '$.value'), char(8490), 'k')), ",
            $row,
            ".id FROM ",
            $from,
            "json_each(CASE WHEN NOT json_valid(",
            $row,
            ".shadow) THEN '{}' ",
            "WHEN json_type(",
            $row,
            ".shadow, '$.emails') = 'array' THEN ",
            $row,
            ".shadow ",
            "ELSE '{}' END, '$.emails') AS e ",
            "WHERE lower(replace(json_extract(",
            work_email_element!(),
            ", '$.type'), ",
            "char(8490), 'k')) = 'work' ",
            "AND json_type(",
            work_email_element!(),
            ", '$.value') = 'text'"
        )
    };
}

/// An element of `emails` as JSON text, `{}` when it is not an object.
macro_rules! work_email_element {
    () => {
        "(CASE WHEN e.type = 'object' THEN e.value ELSE '{}' END)"
    };
}

/// The triggers that keep `work_emails`, replaced at every open (in one transaction) so a file
/// made by an older build gets this build's.
const WORK_EMAIL_TRIGGERS: &str = concat!(
    "BEGIN IMMEDIATE;
DROP TRIGGER IF EXISTS users_work_emails_added;
DROP TRIGGER IF EXISTS users_work_emails_changed;
DROP TRIGGER IF EXISTS users_work_emails_gone;
CREATE TRIGGER users_work_emails_added AFTER INSERT ON users BEGIN
    INSERT OR IGNORE INTO work_emails (tenant, email, id) ",
    work_email_rows!("NEW", ""),
    ";
END;
CREATE TRIGGER users_work_emails_changed AFTER UPDATE OF shadow ON users BEGIN
    DELETE FROM work_emails WHERE tenant = OLD.tenant AND id = OLD.id;
    INSERT OR IGNORE INTO work_emails (tenant, email, id) ",
    work_email_rows!("NEW", ""),
    ";
END;
CREATE TRIGGER users_work_emails_gone AFTER DELETE ON users BEGIN
    DELETE FROM work_emails WHERE tenant = OLD.tenant AND id = OLD.id;
END;
COMMIT;"
);

/// Fills `work_emails` from the users a file made before it holds (run once, when the table is
/// new); a row whose resource is not JSON is left to be reported as corrupt when read.
const WORK_EMAILS_BACKFILL: &str = concat!(
    "INSERT OR IGNORE INTO work_emails (tenant, email, id) ",
    work_email_rows!("u", "users AS u, ")
);

/// The store in one SQLite file.
pub struct SqliteStore {
    readers: Arc<Readers>,
    read_permits: Arc<Semaphore>,
    writer: mpsc::Sender<WriteJob>,
    /// Holds, by tenant and folded key.
    holds: KeyLocks<(String, String)>,
}

/// A write for the writer thread.
type WriteJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// The read connections; a read takes a permit first, so one of them is always free.
struct Readers(Vec<Mutex<Connection>>);

impl Readers {
    /// Runs `work` on a free connection.
    fn with_free<T>(&self, work: impl FnOnce(&Connection) -> T) -> T {
        for conn in &self.0 {
            match conn.try_lock() {
                Ok(c) => return work(&c),
                Err(TryLockError::Poisoned(p)) => return work(&p.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        // Unreachable while permits are taken: wait for the first connection rather than fail.
        work(&self.0[0].lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store file and its folder, and brings its schema to this
    /// build's version; a file migrated by a newer scimgate is refused.
    pub fn open(path: &Path) -> Result<SqliteStore, OpenError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let mut writer = connect(path).map_err(classify)?;
        too_new(migrations::newer(&writer).map_err(classify)?)?;
        let had_work_emails = has_table(&writer, "work_emails").map_err(classify)?;
        writer.execute_batch(SCHEMA).map_err(classify)?;
        writer
            .execute_batch(WORK_EMAIL_TRIGGERS)
            .map_err(classify)?;
        if !had_work_emails {
            writer
                .execute_batch(WORK_EMAILS_BACKFILL)
                .map_err(classify)?;
        }
        too_new(migrations::migrate(&mut writer).map_err(classify)?)?;
        let readers = (0..READERS)
            .map(|_| {
                let conn = connect(path)?;
                conn.pragma_update(None, "query_only", true)?;
                Ok(Mutex::new(conn))
            })
            .collect::<rusqlite::Result<_>>()
            .map_err(classify)?;
        Ok(SqliteStore {
            readers: Arc::new(Readers(readers)),
            read_permits: Arc::new(Semaphore::new(READERS)),
            writer: writer_thread(writer)?,
            holds: KeyLocks::new(),
        })
    }

    /// The ids `sql` answers for `tenant` and one indexed `key`.
    async fn ids_by(
        &self,
        sql: &'static str,
        tenant: &str,
        key: &str,
    ) -> Result<Vec<String>, StoreError> {
        let (tenant, key) = (tenant.to_string(), key.to_string());
        self.read(move |conn| {
            conn.prepare_cached(sql)?
                .query_map(params![tenant, key], |r| r.get(0))?
                .collect()
        })
        .await
    }

    /// Runs a read on the blocking pool and waits for it without blocking the caller's thread.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = self
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the store's readers have stopped".into()))?;
        let readers = self.readers.clone();
        let read = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            readers.with_free(work)
        });
        read.await
            .map_err(|e| StoreError::Unavailable(format!("a store read stopped: {e}")))?
            .map_err(classify)
    }

    /// Runs a write on the writer thread, after every write sent before it, and waits for it
    /// without blocking the caller's thread.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let _ = done.send(work(conn));
        });
        self.writer.send(job).map_err(|_| writer_stopped())?;
        result
            .await
            .map_err(|_| writer_stopped())?
            .map_err(classify)
    }

    /// Every row of the store as it is held (for copying it into another engine).
    pub async fn rows(&self) -> Result<Rows, StoreError> {
        let (store_tenants, api_keys) = self.key_tables().await?;
        self.read(|conn| {
            Ok(Rows {
                users: record_rows(conn, "users")?,
                pending: pending_rows(conn, "pending_creates", "user_name")?,
                groups: record_rows(conn, "groups")?,
                pending_groups: pending_rows(conn, "pending_group_creates", "display_name")?,
                memberships: conn
                    .prepare(
                        "SELECT tenant, group_id, user_id FROM memberships
                         ORDER BY tenant, group_id, user_id",
                    )?
                    .query_map([], |r| {
                        Ok(MembershipRow {
                            tenant: r.get(0)?,
                            group_id: r.get(1)?,
                            user_id: r.get(2)?,
                        })
                    })?
                    .collect::<rusqlite::Result<_>>()?,
                tenants: Vec::new(),
                keys: Vec::new(),
            })
        })
        .await
        .map(|rows| Rows {
            tenants: store_tenants,
            keys: api_keys,
            ..rows
        })
    }
}

/// Refuses a file at `found`, a version newer than this build knows.
fn too_new(found: Option<i32>) -> Result<(), OpenError> {
    match found {
        Some(found) => Err(OpenError::SchemaTooNew {
            found,
            known: migrations::latest(),
        }),
        None => Ok(()),
    }
}

/// Every row of the users or the groups `table`, in key order.
fn record_rows(conn: &Connection, table: &str) -> rusqlite::Result<Vec<RecordRow>> {
    conn.prepare(&format!(
        "SELECT tenant, id, external_id, shadow, managed, created, last_modified
         FROM {table} ORDER BY tenant, id"
    ))?
    .query_map([], |r| {
        Ok(RecordRow {
            tenant: r.get(0)?,
            id: r.get(1)?,
            external_id: r.get(2)?,
            shadow: r.get(3)?,
            managed: r.get(4)?,
            created: r.get(5)?,
            last_modified: r.get(6)?,
        })
    })?
    .collect()
}

/// Every row of the pending creates `table`, whose folded name is in `name`, in key order.
fn pending_rows(conn: &Connection, table: &str, name: &str) -> rusqlite::Result<Vec<PendingRow>> {
    conn.prepare(&format!(
        "SELECT tenant, {name}, shadow, created FROM {table} ORDER BY tenant, {name}"
    ))?
    .query_map([], |r| {
        Ok(PendingRow {
            tenant: r.get(0)?,
            name: r.get(1)?,
            shadow: r.get(2)?,
            created: r.get(3)?,
        })
    })?
    .collect()
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, tenant: &str, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.read(move |conn| record_of(conn, &tenant, &id)).await
    }

    async fn get_many(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> Result<HashMap<String, UserRecord>, StoreError> {
        let (tenant, ids) = (tenant.to_string(), ids.to_vec());
        self.read(move |conn| {
            let mut out = HashMap::new();
            for id in ids {
                if let Some(r) = record_of(conn, &tenant, &id)? {
                    out.insert(id, r);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn count(&self, tenant: &str) -> Result<usize, StoreError> {
        let tenant = tenant.to_string();
        self.read(move |conn| {
            conn.prepare_cached("SELECT count(*) FROM users WHERE tenant = ?1")?
                .query_row(params![tenant], |row| row.get(0))
        })
        .await
    }

    async fn page(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, UserRecord)>, StoreError> {
        let (tenant, after) = (tenant.to_string(), after.unwrap_or_default().to_string());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            conn.prepare_cached(SELECT_PAGE)?
                .query_map(params![tenant, after, limit], |row| {
                    Ok((row.get(0)?, record_at(row, 1)?))
                })?
                .collect()
        })
        .await
    }

    async fn find_by_external_id(
        &self,
        tenant: &str,
        external_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.ids_by(SELECT_BY_EXTERNAL_ID, tenant, external_id)
            .await
    }

    async fn find_by_work_email(
        &self,
        tenant: &str,
        email: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.ids_by(SELECT_BY_WORK_EMAIL, tenant, email).await
    }

    async fn put(&self, tenant: &str, id: &str, rec: &UserRecord) -> Result<(), StoreError> {
        let (external_id, user_name) = (rec.external_id(), rec.pending_key());
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
            tx.commit()
        })
        .await
    }

    async fn delete(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.prepare_cached(FORGET_USER_MEMBERSHIPS)?
                .execute(params![tenant, id])?;
            tx.prepare_cached("DELETE FROM users WHERE tenant = ?1 AND id = ?2")?
                .execute(params![tenant, id])?;
            tx.commit()
        })
        .await
    }

    async fn is_managed(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.read(move |conn| conn.prepare_cached(IS_MANAGED)?.exists(params![tenant, id]))
            .await
    }

    async fn is_managed_ignoring_case(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.read(move |conn| {
            conn.prepare_cached(IS_MANAGED_FOLDED)?
                .exists(params![tenant, id])
        })
        .await
    }

    async fn put_pending_create(
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
            .execute(params![tenant, user_name, shadow, created])
            .map(drop)
        })
        .await
    }

    async fn pending_create(
        &self,
        tenant: &str,
        user_name: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let (tenant, user_name) = (tenant.to_string(), user_name.to_lowercase());
        self.read(move |conn| {
            conn.prepare_cached(SELECT_PENDING)?
                .query_row(params![tenant, user_name], |row| {
                    let created: String = row.get(1)?;
                    Ok(UserRecord {
                        shadow: json_at(row, 0)?,
                        managed: true,
                        last_modified: created.clone(),
                        created,
                    })
                })
                .optional()
        })
        .await
    }

    async fn clear_pending_create(&self, tenant: &str, user_name: &str) -> Result<(), StoreError> {
        let (tenant, user_name) = (tenant.to_string(), user_name.to_lowercase());
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM pending_creates WHERE tenant = ?1 AND user_name = ?2")?
                .execute(params![tenant, user_name])
                .map(drop)
        })
        .await
    }

    async fn get_group(&self, tenant: &str, id: &str) -> Result<Option<GroupRecord>, StoreError> {
        self.group(tenant, id).await
    }

    async fn get_groups(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> Result<HashMap<String, GroupRecord>, StoreError> {
        self.groups(tenant, ids).await
    }

    async fn find_groups_by_external_id(
        &self,
        tenant: &str,
        external_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.group_ids_by_external_id(tenant, external_id).await
    }

    async fn put_group(&self, tenant: &str, id: &str, rec: &GroupRecord) -> Result<(), StoreError> {
        self.record_group(tenant, id, rec).await
    }

    async fn delete_group(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        self.forget_group(tenant, id).await
    }

    async fn put_pending_group_create(
        &self,
        tenant: &str,
        display_name: &str,
        rec: &GroupRecord,
    ) -> Result<(), StoreError> {
        self.note_group_create(tenant, display_name, rec).await
    }

    async fn pending_group_create(
        &self,
        tenant: &str,
        display_name: &str,
    ) -> Result<Option<GroupRecord>, StoreError> {
        self.noted_group_create(tenant, display_name).await
    }

    async fn clear_pending_group_create(
        &self,
        tenant: &str,
        display_name: &str,
    ) -> Result<(), StoreError> {
        self.forget_group_create(tenant, display_name).await
    }

    async fn add_memberships(
        &self,
        tenant: &str,
        group: &str,
        users: &[String],
    ) -> Result<(), StoreError> {
        self.add_members(tenant, group, users).await
    }

    async fn remove_memberships(
        &self,
        tenant: &str,
        group: &str,
        users: &[String],
    ) -> Result<(), StoreError> {
        self.remove_members(tenant, group, users).await
    }

    async fn managed_members(&self, tenant: &str, group: &str) -> Result<Vec<String>, StoreError> {
        self.members_of(tenant, group).await
    }

    async fn is_managed_membership(
        &self,
        tenant: &str,
        group: &str,
        user: &str,
    ) -> Result<bool, StoreError> {
        self.membership_is_managed(tenant, group, user).await
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos().to_string())
            .unwrap_or_default();
        self.write(move |conn| {
            conn.prepare_cached("INSERT OR REPLACE INTO write_probe (id, at) VALUES (1, ?1)")?
                .execute(params![now])
                .map(drop)
        })
        .await
    }

    async fn enable_tenant(&self, name: &str, by: &str, now: &str) -> Result<bool, StoreError> {
        self.enable(name, by, now).await
    }

    async fn disable_tenant(&self, name: &str, now: &str) -> Result<usize, StoreError> {
        self.disable(name, now).await
    }

    async fn add_key(&self, key: &StoreKey) -> Result<KeyAdded, StoreError> {
        self.insert_key(key).await
    }

    async fn tenant(&self, name: &str) -> Result<Option<StoreTenant>, StoreError> {
        self.tenant_named(name).await
    }

    async fn tenant_keys(&self, tenant: &str) -> Result<Vec<StoreKey>, StoreError> {
        self.keys_of(Some(tenant)).await
    }

    async fn all_keys(&self) -> Result<Vec<StoreKey>, StoreError> {
        self.keys_of(None).await
    }

    async fn revoke_key(
        &self,
        id: &str,
        tenant: Option<&str>,
        now: &str,
    ) -> Result<Revocation, StoreError> {
        self.revoke(id, tenant, now).await
    }

    async fn live_key(&self, sha256: &str) -> Result<Option<LiveKey>, StoreError> {
        self.live(sha256).await
    }

    async fn touch_key(&self, id: &str, at: &str) -> Result<(), StoreError> {
        self.touch(id, at).await
    }

    async fn change_brake(
        &self,
        tenant: &str,
        change: BrakeChange,
        now: i64,
    ) -> Result<BrakeOutcome, StoreError> {
        self.change(tenant, change, now).await
    }

    async fn brakes(&self, tenant: Option<&str>) -> Result<Vec<(String, BrakeState)>, StoreError> {
        self.brake_rows(tenant).await
    }

    async fn serialise(&self, tenant: &str, key: ResourceKey<'_>) -> Result<Held, StoreError> {
        let held = self.holds.lock((tenant.to_string(), key.folded())).await;
        Ok(Held::new(held))
    }
}

/// Whether the file has the table `name`.
fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
        .exists(params![name])
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

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
        .map_err(|e| StoreError::Unavailable(format!("cannot start the store writer: {e}")))?;
    Ok(tx)
}

fn writer_stopped() -> StoreError {
    StoreError::Unavailable("the store writer has stopped".into())
}

/// A SQLite failure by what failed; the text stays SQLite's own ("database is locked").
fn classify(e: rusqlite::Error) -> StoreError {
    let detail = e.to_string();
    match e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Busy(detail),
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreError::Corrupt(detail),
            _ => StoreError::Unavailable(detail),
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(detail),
        _ => StoreError::Unavailable(detail),
    }
}

/// The record of one user, read on `conn`.
fn record_of(conn: &Connection, tenant: &str, id: &str) -> rusqlite::Result<Option<UserRecord>> {
    conn.prepare_cached(SELECT_RECORD)?
        .query_row(params![tenant, id], |row| record_at(row, 0))
        .optional()
}

/// The record in the columns from `at` on: shadow, managed, created, last_modified.
fn record_at(row: &Row<'_>, at: usize) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        shadow: json_at(row, at)?,
        managed: row.get(at + 1)?,
        created: row.get(at + 2)?,
        last_modified: row.get(at + 3)?,
    })
}

/// A JSON column; text that is not JSON is a conversion failure (a corrupt record).
fn json_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Value> {
    let text: String = row.get(at)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(at, Type::Text, Box::new(e)))
}

/// The engine's own tests; what every engine promises is tested on both in `tests/store`.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    /// Long enough for a free hold to be taken at once, short enough to wait out a held one.
    const WAIT: Duration = Duration::from_millis(100);

    fn record(ext: &str, managed: bool) -> UserRecord {
        UserRecord {
            shadow: json!({"externalId": ext, "userName": "a@b.c"}),
            managed,
            created: "2026-01-01T00:00:00Z".into(),
            last_modified: "2026-01-02T00:00:00Z".into(),
        }
    }

    fn group(ext: &str) -> GroupRecord {
        GroupRecord {
            shadow: json!({"externalId": ext, "displayName": "Admins"}),
            managed: true,
            created: "2026-01-01T00:00:00Z".into(),
            last_modified: "2026-01-02T00:00:00Z".into(),
        }
    }

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.sqlite")).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn rows_are_every_row_as_held() {
        let (_dir, store) = open();
        store.put("b", "2", &record("ext-2", false)).await.unwrap();
        store.put("a", "1", &record("ext-1", true)).await.unwrap();
        store
            .put_pending_create("a", "X@Y.z", &record("ext-3", true))
            .await
            .unwrap();
        store.put_group("a", "g1", &group("ext-g")).await.unwrap();
        store
            .put_pending_group_create("b", "Staff", &group("ext-s"))
            .await
            .unwrap();
        let users = ["2".to_string(), "1".into()];
        store.add_memberships("a", "g1", &users).await.unwrap();
        let rows = store.rows().await.unwrap();
        assert_eq!(rows.groups.len(), 1);
        assert_eq!(
            (
                rows.groups[0].id.as_str(),
                rows.groups[0].external_id.as_deref()
            ),
            ("g1", Some("ext-g"))
        );
        assert_eq!(rows.groups[0].shadow, group("ext-g").shadow.to_string());
        assert_eq!(rows.pending_groups[0].name, "staff");
        assert_eq!(
            rows.memberships
                .iter()
                .map(|m| (m.tenant.as_str(), m.group_id.as_str(), m.user_id.as_str()))
                .collect::<Vec<_>>(),
            [("a", "g1", "1"), ("a", "g1", "2")]
        );
        assert_eq!(
            rows.users
                .iter()
                .map(|u| (
                    u.tenant.as_str(),
                    u.id.as_str(),
                    u.external_id.as_deref(),
                    u.managed
                ))
                .collect::<Vec<_>>(),
            [
                ("a", "1", Some("ext-1"), true),
                ("b", "2", Some("ext-2"), false)
            ]
        );
        assert_eq!(
            rows.users[0].shadow,
            record("ext-1", true).shadow.to_string()
        );
        assert_eq!(rows.users[0].last_modified, "2026-01-02T00:00:00Z");
        assert_eq!(rows.pending.len(), 1);
        assert_eq!(rows.pending[0].name, "x@y.z");
    }

    #[tokio::test]
    async fn a_row_that_is_not_a_record_is_corrupt() {
        let (dir, store) = open();
        store
            .put("acme", "7", &record("ext-1", true))
            .await
            .unwrap();
        let conn = Connection::open(dir.path().join("s.sqlite")).unwrap();
        conn.execute("UPDATE users SET shadow = '{not json' WHERE id = '7'", [])
            .unwrap();
        let err = store.get("acme", "7").await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        assert!(matches!(
            store.all("acme").await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(
            store.is_managed("acme", "7").await.unwrap(),
            "the flag still reads"
        );
    }

    /// SQLite's plan for `sql`, one line per step.
    fn plan_of(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // A page of a walk takes its size too; a membership, a user id.
        let args: &[&dyn rusqlite::ToSql] = if sql.contains("LIMIT ?3") {
            &[&"acme", &"x", &100]
        } else if sql.contains("?3") {
            &[&"acme", &"x", &"y"]
        } else {
            &[&"acme", &"x"]
        };
        let steps = stmt.query_map(args, |r| r.get::<_, String>(3)).unwrap();
        steps.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    /// Every lookup by key is one search of its index: no scan, no sort of what it found.
    fn assert_lookups_search_their_index(conn: &Connection) {
        for (sql, index) in LOOKUPS {
            let plan = plan_of(conn, sql);
            assert!(
                plan.starts_with("SEARCH") && plan.contains(&format!("{index} (tenant=? AND")),
                "{sql}: {plan}"
            );
            assert!(
                !plan.contains("SCAN") && !plan.contains("TEMP B-TREE"),
                "{sql}: {plan}"
            );
        }
    }

    #[tokio::test]
    async fn every_lookup_by_key_is_one_index_search() {
        let (dir, store) = open();
        for n in 0..200 {
            let id = format!("u{n:03}");
            store
                .put("acme", &id, &record(&format!("ext-{n}"), true))
                .await
                .unwrap();
            let group_id = format!("g{n:03}");
            store
                .put_group("acme", &group_id, &group(&format!("ext-{n}")))
                .await
                .unwrap();
            store
                .add_memberships("acme", &format!("g{:03}", n % 10), &[id])
                .await
                .unwrap();
        }
        let conn = Connection::open(dir.path().join("s.sqlite")).unwrap();
        assert_lookups_search_their_index(&conn);
        conn.execute_batch("ANALYZE").unwrap();
        assert_lookups_search_their_index(&conn);
    }

    #[tokio::test]
    async fn a_file_made_before_the_lookup_indexes_gains_them_on_open_and_they_are_filled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE users (tenant TEXT NOT NULL, id TEXT NOT NULL, external_id TEXT,
                 shadow TEXT NOT NULL, managed INTEGER NOT NULL DEFAULT 0, created TEXT NOT NULL,
                 last_modified TEXT NOT NULL, PRIMARY KEY (tenant, id));
             CREATE INDEX users_external_id ON users (tenant, external_id);
             INSERT INTO users VALUES ('acme', 'u1', 'ext-1',
                 '{\"emails\": [{\"type\": \"work\", \"value\": \"U1@acme.test\"}]}', 1, 'c', 'm');
             INSERT INTO users VALUES ('acme', 'u2', NULL, '{not json', 1, 'c', 'm');",
        )
        .unwrap();
        drop(old);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.find_by_external_id("acme", "ext-1").await.unwrap(),
            ["u1"]
        );
        let conn = Connection::open(&path).unwrap();
        assert_lookups_search_their_index(&conn);
        let old_index: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'users_external_id'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(old_index, 0, "the index it replaces is dropped");
    }

    #[test]
    fn failures_are_classified_by_what_failed() {
        let sqlite = |code, text: &str| {
            classify(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                Some(text.into()),
            ))
        };
        let busy = sqlite(rusqlite::ffi::SQLITE_BUSY, "database is locked");
        assert_eq!(busy, StoreError::Busy("database is locked".into()));
        assert_eq!(busy.detail(), "database is locked", "SQLite's own words");
        assert!(matches!(
            sqlite(rusqlite::ffi::SQLITE_FULL, "database or disk is full"),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            sqlite(
                rusqlite::ffi::SQLITE_CANTOPEN,
                "unable to open database file"
            ),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            sqlite(rusqlite::ffi::SQLITE_NOTADB, "file is not a database"),
            StoreError::Corrupt(_)
        ));
    }

    #[tokio::test]
    async fn a_read_waiting_for_a_connection_leaves_the_async_worker_free() {
        let (_dir, store) = open();
        let store = Arc::new(store);
        let taken: Vec<_> = store.readers.0.iter().map(|c| c.lock().unwrap()).collect();
        let reader = store.clone();
        let read = tokio::spawn(async move { reader.get("acme", "7").await });
        // The test's runtime has one thread: this sleep ends only if the read does not block it.
        tokio::time::sleep(WAIT).await;
        assert!(!read.is_finished(), "no connection was free");
        drop(taken);
        assert_eq!(read.await.unwrap().unwrap(), None);
    }

    /// Whether `key` can be held within [`WAIT`].
    async fn holds_at_once(store: &SqliteStore, tenant: &str, key: ResourceKey<'_>) -> bool {
        tokio::time::timeout(WAIT, store.serialise(tenant, key))
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn serialise_excludes_holders_of_one_key_only() {
        let (_dir, store) = open();
        let store = Arc::new(store);
        let held = store
            .serialise("acme", ResourceKey::User("usr_bob"))
            .await
            .unwrap();
        assert!(!holds_at_once(&store, "acme", ResourceKey::User("usr_bob")).await);
        assert!(
            !holds_at_once(&store, "acme", ResourceKey::User("USR_BOB")).await,
            "ids are compared ignoring case"
        );
        assert!(holds_at_once(&store, "acme", ResourceKey::User("usr_ann")).await);
        let second = store.clone();
        let waiting = tokio::spawn(async move {
            let _second = second.serialise("acme", ResourceKey::User("usr_bob")).await;
        });
        tokio::time::sleep(WAIT).await;
        assert!(!waiting.is_finished(), "waits while the first holds");
        drop(held);
        tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_user_name_is_reserved_ignoring_case() {
        let (_dir, store) = open();
        let _held = store
            .serialise("acme", ResourceKey::UserName("Alice@Acme.test"))
            .await
            .unwrap();
        assert!(!holds_at_once(&store, "acme", ResourceKey::UserName("alice@acme.TEST")).await);
        let key = ResourceKey::UserName("alice@acme.test");
        assert!(holds_at_once(&store, "umbrella", key).await);
        assert!(holds_at_once(&store, "acme", ResourceKey::UserName("bob@acme.test")).await);
        assert_ne!(
            ResourceKey::UserName("x").folded(),
            ResourceKey::User("x").folded(),
            "a userName and a user id are different keys"
        );
    }
}
