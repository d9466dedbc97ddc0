//! The PostgreSQL engine of the store seam, for a fleet of gateways over one database: what one
//! gateway writes, every other reads at once; [`Store::serialise`] holds a key for the whole
//! fleet with advisory locks ([`holds`]); the schema is versioned ([`migrations`]).
//!
//! Driver and pool: `tokio-postgres` with `deadpool-postgres`. tokio-postgres (the rust-postgres
//! project) is pure Rust on tokio, the runtime pingora already runs on: no C client library,
//! SCRAM authentication, prepared statements and pipelining, and no build-time database or macros
//! (as sqlx's checked queries need), so it adds little to a build. deadpool-postgres is the small
//! pool made for it: a bounded size, a deadline for waiting for a free connection, connect and
//! recycle timeouts, and prepared statements cached per connection.
//!
//! Single statements (nearly all of them) share a few pipelined connections ([`shared`]): reads
//! on two, writes and uncontended holds on one other, sent from the caller's runtime. On a write
//! connection, the lock statements of holds ([`lock_batch`]) and the pending-create notes and user
//! records of SCIM writes ([`write_batch`]) queue and go in batches, a statement for many callers.
//! The read a write starts with goes on the hold's write connection, right behind its lock
//! statement. Pooled connections serve transactions and holds that wait for another gateway.
//! Every connection's socket task lives on the engine's own runtime ([`runtime`]), and pooled
//! work runs there, so it does not matter which runtime (or thread) calls. A statement that takes
//! longer than `statement_timeout` is cancelled by the server (the session's
//! `statement_timeout`) and abandoned by the gateway, whose connection is then closed (or retired,
//! when shared) rather than reused. Failures map to [`StoreError`] kinds as [`errors`] describes.
//! The user records that reads show are cached per gateway ([`record_cache`]) while [`listener`]
//! receives the database's notifications of changed rows; a write reads the database. Groups,
//! their pending creates and memberships are kept by [`groups`]; store tenants and SCIM API keys
//! by [`keys`]; the brakes on mass deprovisioning by [`brakes`].

mod batch_queue;
mod brakes;
mod errors;
mod groups;
mod holds;
mod import;
mod keys;
mod listener;
mod lock_batch;
mod migrations;
mod record_cache;
mod runtime;
pub mod settings;
mod shared;
mod work_emails;
mod write_batch;

#[doc(hidden)]
pub use groups::GROUP_LOOKUPS;
#[doc(hidden)]
pub use keys::LIVE_KEY;
#[doc(hidden)]
pub use migrations::migrate_up_to;
pub use migrations::{latest as schema_version, MigrationReport};
pub use settings::{check_url, Migrate, PgSettings};
#[doc(hidden)]
pub use work_emails::set as work_email_set;
#[doc(hidden)]
pub use write_batch::PUT_MANY as RECORD_BATCH;

use super::brake::{BrakeChange, BrakeOutcome, BrakeState};
use super::keys::{KeyAdded, LiveKey, Revocation, StoreKey, StoreTenant};
use super::{GroupRecord, Held, OpenError, PoolUse, ResourceKey, Store, StoreError, UserRecord};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use errors::{bool_answer, classify, no_answer, pool_failure, undecodable};
use holds::Holds;
use listener::Listener;
use lock_batch::FollowUp;
use record_cache::RecordCache;
use serde_json::Value;
use shared::Shared;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{NoTls, Row};
use write_batch::{Note, Record, Write};

/// The store in a PostgreSQL database.
pub struct PostgresStore {
    db: Arc<Db>,
    rt: Handle,
}

/// The pools and limits every statement uses.
struct Db {
    /// Connections for statements that need one to themselves (transactions, migrations).
    pool: Pool,
    /// The connections every single-statement read shares.
    reads: Arc<Shared>,
    /// The connections every single-statement write, and every uncontended hold, shares.
    writes: Arc<Shared>,
    holds: Holds,
    pool_wait: Duration,
    statement_timeout: Duration,
    /// When the server last said it takes writes: trusted for [`WRITABLE_FOR`], unless a
    /// statement failed since.
    writable_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// The user records shown lately, while change notifications keep them true.
    cache: Arc<RecordCache>,
    /// Receives those notifications (none with `record_cache = false`); stops with the store.
    listener: Option<Listener>,
}

/// How long a "takes writes" answer stands before the next write asks again. Every write
/// through every gateway checks, so asking each time would add a statement to each; a server
/// that turns read-only within this time refuses the write's own statement instead, and the
/// write is undone as after any store failure.
const WRITABLE_FOR: Duration = Duration::from_secs(1);

impl PostgresStore {
    /// The ids `sql` answers for `tenant` and one indexed `key`. A key holding NUL matches
    /// nobody: no stored value holds one, and PostgreSQL refuses NUL in text parameters.
    async fn ids_by(
        &self,
        sql: &'static str,
        tenant: &str,
        key: &str,
    ) -> Result<Vec<String>, StoreError> {
        if key.contains('\0') {
            return Ok(Vec::new());
        }
        let rows = self.db.read(sql, &[&tenant, &key]).await?;
        rows.iter().map(|r| column(r, 0)).collect()
    }

    /// Runs `sql`, a write by `tenant` and one key, for its effect.
    async fn write_by(&self, sql: &'static str, tenant: &str, key: &str) -> Result<(), StoreError> {
        self.db.write(sql, &[&tenant, &key]).await.map(drop)
    }

    /// Connects, then applies missing migrations (`migrate = "auto"`) or checks that the
    /// schema is this build's (`"manual"`). A schema newer than this build knows is refused.
    pub async fn open(settings: &PgSettings) -> Result<PostgresStore, OpenError> {
        let rt = runtime::handle()?;
        runtime::run(&rt, open_on(settings.clone(), rt.clone())).await
    }

    /// [`PostgresStore::open`] for synchronous callers: blocks the calling thread.
    pub fn open_blocking(settings: &PgSettings) -> Result<PostgresStore, OpenError> {
        let rt = runtime::handle()?;
        runtime::block_on(&rt, open_on(settings.clone(), rt.clone()))
    }

    /// Applies every migration the database lacks, whatever `settings.migrate` says
    /// (`scimgate store migrate`). Blocks the calling thread.
    pub fn migrate_blocking(settings: &PgSettings) -> Result<MigrationReport, OpenError> {
        let rt = runtime::handle()?;
        let settings = settings.clone();
        runtime::block_on(&rt, async move {
            let pool = pool(&settings, settings.statement_timeout)?;
            let mut conn = pool
                .get()
                .await
                .map_err(|e| pool_failure(e, settings.pool_wait))?;
            migrations::migrate(&mut conn).await
        })
    }

    /// Whether a statement sent behind the lock of `folded` (as a write's read is) finds the lock
    /// already held by its session: the order the store tests check.
    #[doc(hidden)]
    pub async fn follow_up_sees_its_lock(
        &self,
        tenant: &str,
        folded: &str,
    ) -> Result<bool, StoreError> {
        let probe = FollowUp {
            sql: HOLDS_LOCK,
            params: vec![holds::lock_key(tenant, folded).to_string()],
        };
        let (hold, rows) = self.db.holds.hold_then(tenant, folded, Some(probe)).await?;
        let rows = rows.ok_or_else(|| StoreError::Busy(format!("{folded} was not free")))??;
        drop(hold);
        bool_answer(&rows, HOLDS_LOCK)
    }

    /// Runs `work` with the pools on the engine's runtime and waits for its answer.
    async fn on_db<T, E, F>(&self, work: impl FnOnce(Arc<Db>) -> F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        runtime::run(&self.rt, work(self.db.clone())).await
    }
}

/// Opens the store; runs on the engine's runtime.
async fn open_on(settings: PgSettings, rt: Handle) -> Result<PostgresStore, OpenError> {
    let statements = pool(&settings, settings.statement_timeout)?;
    // A hold's statement waits for a lock as long as `lock_wait` allows (its `lock_timeout`).
    let holds = pool(&settings, Duration::ZERO)?;
    let mut conn = statements
        .get()
        .await
        .map_err(|e| pool_failure(e, settings.pool_wait))?;
    match settings.migrate {
        Migrate::Auto => migrations::migrate(&mut conn).await.map(drop)?,
        Migrate::Manual => migrations::check(&conn).await?,
    }
    drop(conn);
    let writes = Shared::new(&settings, shared::WRITES, rt.clone())?;
    let cache = Arc::new(RecordCache::new());
    let listener = if settings.record_cache {
        let config = settings.driver_config(Duration::ZERO)?;
        Some(Listener::start(
            &rt,
            config,
            settings.connect_timeout,
            cache.clone(),
        ))
    } else {
        None
    };
    let db = Db {
        holds: Holds::new(
            holds,
            writes.clone(),
            settings.lock_wait,
            settings.statement_timeout,
            rt.clone(),
        ),
        pool: statements,
        reads: Shared::new(&settings, shared::READS, rt.clone())?,
        writes,
        pool_wait: settings.pool_wait,
        statement_timeout: settings.statement_timeout,
        writable_at: std::sync::Mutex::new(None),
        cache,
        listener,
    };
    Ok(PostgresStore {
        db: Arc::new(db),
        rt,
    })
}

/// A pool of `settings.pool_size` connections whose statements may run `statement_timeout`
/// (zero: no limit).
fn pool(settings: &PgSettings, statement_timeout: Duration) -> Result<Pool, OpenError> {
    let manager = Manager::from_config(
        settings.driver_config(statement_timeout)?,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(settings.pool_size.max(1))
        .wait_timeout(Some(settings.pool_wait))
        .create_timeout(Some(settings.connect_timeout))
        .recycle_timeout(Some(settings.statement_timeout))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| {
            OpenError::Store(StoreError::Unavailable(format!(
                "cannot build the PostgreSQL connection pool: {e}"
            )))
        })
}

type Params<'a> = [&'a (dyn ToSql + Sync)];

impl Db {
    /// A pooled connection, waiting at most `pool_wait` for one.
    async fn conn(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| {
            self.forget_writable();
            pool_failure(e, self.pool_wait)
        })
    }

    /// A statement failed: the next check asks the server again.
    fn forget_writable(&self) {
        if let Ok(mut at) = self.writable_at.lock() {
            *at = None;
        }
    }

    /// Runs one statement (prepared once per connection) within the statement timeout.
    async fn query(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, StoreError> {
        let conn = self.conn().await?;
        let run = async {
            let statement = conn.prepare_cached(sql).await?;
            conn.query(&statement, params).await
        };
        let answer = tokio::time::timeout(self.statement_timeout, run).await;
        let failure = match answer {
            Ok(Ok(rows)) => return Ok(rows),
            Ok(Err(e)) => classify(&e),
            Err(_) => {
                // Still busy with the abandoned statement: never hand it to another caller.
                drop(Object::take(conn));
                no_answer(self.statement_timeout)
            }
        };
        self.forget_writable();
        Err(failure)
    }

    /// Runs one read statement on a shared connection ([`shared`]), from the caller's runtime.
    async fn read(&self, sql: &'static str, params: &Params<'_>) -> Result<Vec<Row>, StoreError> {
        self.shared(&self.reads, sql, params).await
    }

    /// Runs one write statement (its own transaction) on a shared connection.
    async fn write(&self, sql: &'static str, params: &Params<'_>) -> Result<Vec<Row>, StoreError> {
        self.shared(&self.writes, sql, params).await
    }

    /// Makes one note or record in the next batch of a shared write connection
    /// ([`write_batch`]).
    async fn batched(&self, write: Write) -> Result<(), StoreError> {
        let written = match self.writes.conn().await {
            Ok(conn) => conn.write(write).await,
            Err(e) => Err(e),
        };
        self.distrust_after(written)
    }

    async fn shared(
        &self,
        on: &Arc<Shared>,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        self.distrust_after(on.query(sql, params).await)
    }

    /// `outcome`, after forgetting, if it failed, what the server said and what is cached:
    /// whatever failed may also keep notifications from arriving.
    fn distrust_after<T>(&self, outcome: Result<T, StoreError>) -> Result<T, StoreError> {
        if outcome.is_err() {
            self.forget_writable();
            self.cache.forget_all();
        }
        outcome
    }

    /// Whether the server said it takes writes less than [`WRITABLE_FOR`] ago.
    fn writable_recently(&self) -> bool {
        self.writable_at
            .lock()
            .ok()
            .and_then(|at| *at)
            .is_some_and(|at| at.elapsed() < WRITABLE_FOR)
    }

    /// Runs one read statement that answers one boolean.
    async fn read_bool(&self, sql: &'static str, params: &Params<'_>) -> Result<bool, StoreError> {
        bool_answer(&self.read(sql, params).await?, sql)
    }
}

const SELECT_RECORD: &str =
    "SELECT shadow, managed, created, last_modified FROM users WHERE tenant = $1 AND id = $2";
/// One search of the primary key per id, whatever the statistics said when it was planned
/// (`id = ANY($2)` may be planned as a search by tenant that filters every row of it).
const SELECT_RECORDS: &str = "SELECT u.id, u.shadow, u.managed, u.created, u.last_modified \
    FROM unnest($2::text[]) AS k(id), LATERAL (SELECT id, shadow, managed, created, \
    last_modified FROM users WHERE tenant = $1 AND id = k.id LIMIT 1) AS u";
const COUNT: &str = "SELECT count(*) FROM users WHERE tenant = $1";
/// A page of a walk in id order: the primary key's order, so the index serves it.
const SELECT_PAGE: &str = "SELECT id, shadow, managed, created, last_modified FROM users \
                           WHERE tenant = $1 AND id > $2 ORDER BY id LIMIT $3";
const SELECT_BY_EXTERNAL_ID: &str =
    "SELECT id FROM users WHERE tenant = $1 AND external_id = $2 ORDER BY id";
/// The users with the address among their work addresses (migration 11), then those of the
/// tenant: with the tenant in the same search, it could be planned as a read of the tenant's
/// every user. `lower` under "C" folds ASCII letters only, as the set's own folding does; the
/// address is then compared under the set's collation, the one its index was built with.
const SELECT_BY_WORK_EMAIL: &str = "WITH holders AS MATERIALIZED (SELECT tenant, id FROM users \
    WHERE work_email_set @> ARRAY[lower($2::text COLLATE \"C\") COLLATE \"default\"]) \
    SELECT id FROM holders WHERE tenant = $1 ORDER BY id";
/// The user and its memberships in every group, atomically.
const DELETE: &str = "WITH gone AS (
    DELETE FROM memberships WHERE tenant = $1 AND user_id = $2
) DELETE FROM users WHERE tenant = $1 AND id = $2";
/// Without `managed` in the condition, which `users_managed_folded` (by tenant) would also match.
const IS_MANAGED: &str =
    "SELECT COALESCE((SELECT managed FROM users WHERE tenant = $1 AND id = $2), FALSE)";
/// `lower` under the "C" collation folds ASCII letters only (the index `users_managed_folded`).
const IS_MANAGED_FOLDED: &str = "SELECT EXISTS (SELECT 1 FROM users WHERE tenant = $1 \
                                 AND lower(id) = lower($2::text COLLATE \"C\") AND managed)";

/// The lookups of users by key and the page of a walk, each with the index it must search: what
/// the query-plan test checks (with [`GROUP_LOOKUPS`]).
#[doc(hidden)]
pub const LOOKUPS: &[(&str, &str)] = &[
    (SELECT_RECORD, "users_pkey"),
    (SELECT_PAGE, "users_pkey"),
    (SELECT_BY_EXTERNAL_ID, "users_external_id_id"),
    (IS_MANAGED, "users_pkey"),
    (IS_MANAGED_FOLDED, "users_managed_folded"),
    (SELECT_PENDING, "pending_creates_pkey"),
];
/// The lookup of users by work address, and the index it must search (for the addresses only).
#[doc(hidden)]
pub const WORK_EMAIL_LOOKUP: (&str, &str) = (SELECT_BY_WORK_EMAIL, "users_work_email_set");
/// The read of a batch of users by id, and the index each id must search.
#[doc(hidden)]
pub const BATCH_LOOKUP: (&str, &str) = (SELECT_RECORDS, "users_pkey");
const SELECT_PENDING: &str =
    "SELECT shadow, created FROM pending_creates WHERE tenant = $1 AND user_name = $2";
const CLEAR_PENDING: &str = "DELETE FROM pending_creates WHERE tenant = $1 AND user_name = $2";
/// Whether this session holds the advisory lock of a key (given as text).
const HOLDS_LOCK: &str = "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
    AND pid = pg_backend_pid() AND granted AND objsubid = 1 \
    AND (classid::bigint << 32 | objid::bigint) = $1::text::bigint)";
/// Whether the server refuses writes: a standby, or a session that is read-only by default.
const READ_ONLY: &str =
    "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::boolean";

#[async_trait]
impl Store for PostgresStore {
    async fn get(&self, tenant: &str, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let rows = self.db.read(SELECT_RECORD, &[&tenant, &id]).await?;
        first_record(&rows)
    }

    async fn get_many(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> Result<HashMap<String, UserRecord>, StoreError> {
        let rows = self.db.read(SELECT_RECORDS, &[&tenant, &ids]).await?;
        rows.iter()
            .map(|r| Ok((column(r, 0)?, record_at(r, 1)?)))
            .collect()
    }

    async fn get_many_to_show(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> Result<HashMap<String, UserRecord>, StoreError> {
        let Some((mut cached, ticket)) = self.db.cache.lookup(tenant, ids) else {
            return self.get_many(tenant, ids).await;
        };
        if !cached.missing.is_empty() {
            let read = self.get_many(tenant, &cached.missing).await?;
            self.db.cache.fill(ticket, tenant, &read);
            cached.found.extend(read);
        }
        Ok(cached.found)
    }

    async fn count(&self, tenant: &str) -> Result<usize, StoreError> {
        let rows = self.db.read(COUNT, &[&tenant]).await?;
        let n: i64 = match rows.first() {
            Some(row) => column(row, 0)?,
            None => return Err(StoreError::Corrupt(format!("no answer to {COUNT}"))),
        };
        Ok(usize::try_from(n).unwrap_or_default())
    }

    async fn page(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, UserRecord)>, StoreError> {
        let after = after.unwrap_or_default();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .db
            .read(SELECT_PAGE, &[&tenant, &after, &limit])
            .await?;
        rows.iter()
            .map(|r| Ok((column(r, 0)?, record_at(r, 1)?)))
            .collect()
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
        let shadow = rec.shadow.to_string();
        let record = Record {
            tenant: tenant.to_string(),
            id: id.to_string(),
            external_id: rec.external_id(),
            emails: work_emails::set(&rec.shadow),
            emails_of: work_emails::hash(&shadow),
            shadow,
            managed: rec.managed,
            created: rec.created.clone(),
            last_modified: rec.last_modified.clone(),
            user_name: rec.pending_key(),
        };
        let written = self.db.batched(Write::Record(record)).await;
        // Also after a failure: an unanswered write may still commit.
        self.db.cache.forget(tenant, id);
        written
    }

    async fn delete(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        let deleted = self.write_by(DELETE, tenant, id).await;
        self.db.cache.forget(tenant, id);
        deleted
    }

    async fn is_managed(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        self.db.read_bool(IS_MANAGED, &[&tenant, &id]).await
    }

    async fn is_managed_ignoring_case(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        self.db.read_bool(IS_MANAGED_FOLDED, &[&tenant, &id]).await
    }

    async fn put_pending_create(
        &self,
        tenant: &str,
        user_name: &str,
        rec: &UserRecord,
    ) -> Result<(), StoreError> {
        let note = Note {
            tenant: tenant.to_string(),
            user_name: user_name.to_lowercase(),
            shadow: rec.shadow.to_string(),
            created: rec.created.clone(),
        };
        self.db.batched(Write::Note(note)).await
    }

    async fn pending_create(
        &self,
        tenant: &str,
        user_name: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let user_name = user_name.to_lowercase();
        let rows = self.db.read(SELECT_PENDING, &[&tenant, &user_name]).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let created: String = column(row, 1)?;
        Ok(Some(UserRecord {
            shadow: json_at(row, 0)?,
            managed: true,
            last_modified: created.clone(),
            created,
        }))
    }

    async fn clear_pending_create(&self, tenant: &str, user_name: &str) -> Result<(), StoreError> {
        self.write_by(CLEAR_PENDING, tenant, &user_name.to_lowercase())
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
        if self.db.writable_recently() {
            return Ok(());
        }
        let read_only = self.db.read_bool(READ_ONLY, &[]).await?;
        if read_only {
            return Err(StoreError::Unavailable(
                "the PostgreSQL server takes no writes (a standby, or read-only by default)".into(),
            ));
        }
        if let Ok(mut at) = self.db.writable_at.lock() {
            *at = Some(std::time::Instant::now());
        }
        Ok(())
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
        self.db
            .holds
            .hold(tenant, &key.folded())
            .await
            .map(Held::new)
    }

    async fn serialise_user_and_get(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<(Held, Option<UserRecord>), StoreError> {
        let folded = ResourceKey::User(id).folded();
        let read = FollowUp {
            sql: SELECT_RECORD,
            params: vec![tenant.to_string(), id.to_string()],
        };
        let (hold, rows) = self.db.holds.hold_then(tenant, &folded, Some(read)).await?;
        let record = match rows {
            Some(rows) => first_record(&rows?)?,
            // Waited for: read now, under the hold.
            None => self.get(tenant, id).await?,
        };
        Ok((Held::new(hold), record))
    }

    fn pools(&self) -> Vec<PoolUse> {
        let use_of = |pool: &'static str, status: deadpool_postgres::Status| PoolUse {
            pool,
            max: status.max_size,
            open: status.size,
            idle: status.available,
            waiting: status.waiting,
        };
        // Shared, never checked out: every open one takes the next statement.
        let shared = |pool: &'static str, set: &Shared| {
            let open = set.open();
            PoolUse {
                pool,
                max: set.size(),
                open,
                idle: open,
                waiting: 0,
            }
        };
        vec![
            use_of("statements", self.db.pool.status()),
            use_of("holds", self.db.holds.status()),
            shared("reads", &self.db.reads),
            shared("writes", &self.db.writes),
            PoolUse {
                pool: "notifications",
                max: usize::from(self.db.listener.is_some()),
                open: usize::from(self.db.cache.is_live()),
                idle: 0,
                waiting: 0,
            },
        ]
    }
}

/// One column, decoded as this engine wrote it.
fn column<'a, T: FromSql<'a>>(row: &'a Row, at: usize) -> Result<T, StoreError> {
    row.try_get(at).map_err(|e| {
        let name = row.columns().get(at).map_or("?", |c| c.name());
        undecodable(&format!("column {name}"), e)
    })
}

/// The record [`SELECT_RECORD`] answered, if any.
fn first_record(rows: &[Row]) -> Result<Option<UserRecord>, StoreError> {
    rows.first().map(|r| record_at(r, 0)).transpose()
}

/// The record in the columns from `at` on: shadow, managed, created, last_modified.
fn record_at(row: &Row, at: usize) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        shadow: json_at(row, at)?,
        managed: column(row, at + 1)?,
        created: column(row, at + 2)?,
        last_modified: column(row, at + 3)?,
    })
}

/// A JSON text column; text that is not JSON is a corrupt record.
fn json_at(row: &Row, at: usize) -> Result<Value, StoreError> {
    let text: &str = column(row, at)?;
    serde_json::from_str(text).map_err(|e| undecodable("a stored resource", e))
}
