//! Rows copied into a PostgreSQL store (`scimgate store copy`), store tenants and their keys
//! included: one transaction under an advisory lock (two copies never interleave), rows written in batches, and every source row
//! read back and compared before the commit.

use super::super::keys::{StoreKey, StoreTenant};
use super::super::rows::{
    verify, CopyError, CopyReport, MembershipRow, PendingRow, Plans, RecordRow, Rows,
};
use super::super::StoreError;
use super::errors::classify;
use super::{column, PostgresStore};
use tokio_postgres::{GenericClient, Row};

/// Advisory lock key of a copy run (a scimgate constant: "scimcopy" in ASCII).
const COPY_LOCK: i64 = 0x7363_696d_636f_7079;

/// Rows written per statement.
const BATCH: usize = 500;

const UPSERT_USERS: &str = "INSERT INTO users
        (tenant, id, external_id, shadow, managed, created, last_modified)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[],
        $6::text[], $7::text[])
    ON CONFLICT (tenant, id) DO UPDATE SET external_id = EXCLUDED.external_id,
        shadow = EXCLUDED.shadow, managed = EXCLUDED.managed, created = EXCLUDED.created,
        last_modified = EXCLUDED.last_modified";

const UPSERT_GROUPS: &str = "INSERT INTO groups
        (tenant, id, external_id, shadow, managed, created, last_modified)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[],
        $6::text[], $7::text[])
    ON CONFLICT (tenant, id) DO UPDATE SET external_id = EXCLUDED.external_id,
        shadow = EXCLUDED.shadow, managed = EXCLUDED.managed, created = EXCLUDED.created,
        last_modified = EXCLUDED.last_modified";

const UPSERT_PENDING: &str = "INSERT INTO pending_creates (tenant, user_name, shadow, created)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
    ON CONFLICT (tenant, user_name) DO UPDATE SET shadow = EXCLUDED.shadow,
        created = EXCLUDED.created";

const UPSERT_PENDING_GROUPS: &str = "INSERT INTO pending_group_creates
        (tenant, display_name, shadow, created)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
    ON CONFLICT (tenant, display_name) DO UPDATE SET shadow = EXCLUDED.shadow,
        created = EXCLUDED.created";

/// A membership is its key: one already there is the same.
const INSERT_MEMBERSHIPS: &str = "INSERT INTO memberships (tenant, group_id, user_id)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
    ON CONFLICT DO NOTHING";

const UPSERT_TENANTS: &str = "INSERT INTO tenants (name, enabled, created_at, created_by)
    SELECT * FROM unnest($1::text[], $2::bool[], $3::text[], $4::text[])
    ON CONFLICT (name) DO UPDATE SET enabled = EXCLUDED.enabled,
        created_at = EXCLUDED.created_at, created_by = EXCLUDED.created_by";

const UPSERT_KEYS: &str = "INSERT INTO api_keys
        (id, sha256, tenant, label, created_at, created_by, last_used_at, revoked_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
        $6::text[], $7::text[], $8::text[])
    ON CONFLICT (id) DO UPDATE SET sha256 = EXCLUDED.sha256, tenant = EXCLUDED.tenant,
        label = EXCLUDED.label, created_at = EXCLUDED.created_at,
        created_by = EXCLUDED.created_by, last_used_at = EXCLUDED.last_used_at,
        revoked_at = EXCLUDED.revoked_at";

impl PostgresStore {
    /// Writes the `source` rows this store lacks; rows it holds with other data stop the copy
    /// unless `overwrite`. All or nothing, verified before the commit.
    pub async fn import(&self, source: Rows, overwrite: bool) -> Result<CopyReport, CopyError> {
        self.on_db(|db| async move {
            let mut conn = db.conn().await?;
            let tx = conn.transaction().await.map_err(failed)?;
            // A large copy may take longer than one statement is allowed.
            tx.batch_execute("SET LOCAL statement_timeout = 0")
                .await
                .map_err(failed)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&COPY_LOCK])
                .await
                .map_err(failed)?;
            let tenants = source.tenants();
            let plans = Plans::of(&source, &rows_of(&*tx, &tenants).await?);
            if !overwrite {
                if let Some(e) = plans.differences() {
                    return Err(e);
                }
            }
            for batch in plans.users.to_write().chunks(BATCH) {
                upsert_records(&*tx, UPSERT_USERS, batch).await?;
            }
            for batch in plans.pending.to_write().chunks(BATCH) {
                upsert_pending(&*tx, UPSERT_PENDING, batch).await?;
            }
            for batch in plans.groups.to_write().chunks(BATCH) {
                upsert_records(&*tx, UPSERT_GROUPS, batch).await?;
            }
            for batch in plans.pending_groups.to_write().chunks(BATCH) {
                upsert_pending(&*tx, UPSERT_PENDING_GROUPS, batch).await?;
            }
            for batch in plans.memberships.to_write().chunks(BATCH) {
                insert_memberships(&*tx, batch).await?;
            }
            for batch in plans.tenants.to_write().chunks(BATCH) {
                upsert_tenants(&*tx, batch).await?;
            }
            for batch in plans.keys.to_write().chunks(BATCH) {
                upsert_keys(&*tx, batch).await?;
            }
            verify(&source, &rows_of(&*tx, &tenants).await?).map_err(CopyError::Verify)?;
            tx.commit().await.map_err(failed)?;
            Ok(plans.report(overwrite))
        })
        .await
    }
}

/// Every row of `tenants`.
async fn rows_of(client: &impl GenericClient, tenants: &[String]) -> Result<Rows, CopyError> {
    let select =
        |sql: &'static str| async move { client.query(sql, &[&tenants]).await.map_err(failed) };
    let users = select(
        "SELECT tenant, id, external_id, shadow, managed, created, last_modified
         FROM users WHERE tenant = ANY($1)",
    )
    .await?;
    let pending = select(
        "SELECT tenant, user_name, shadow, created FROM pending_creates WHERE tenant = ANY($1)",
    )
    .await?;
    let groups = select(
        "SELECT tenant, id, external_id, shadow, managed, created, last_modified
         FROM groups WHERE tenant = ANY($1)",
    )
    .await?;
    let pending_groups = select(
        "SELECT tenant, display_name, shadow, created FROM pending_group_creates
         WHERE tenant = ANY($1)",
    )
    .await?;
    let memberships =
        select("SELECT tenant, group_id, user_id FROM memberships WHERE tenant = ANY($1)").await?;
    // Few, and keyed across tenants (a key's id is unique in the store): all of them.
    let (store_tenants, keys) = super::keys::rows_of(client).await?;
    Ok(Rows {
        tenants: store_tenants,
        keys,
        users: users.iter().map(record_row).collect::<Result<_, _>>()?,
        pending: pending.iter().map(pending_row).collect::<Result<_, _>>()?,
        groups: groups.iter().map(record_row).collect::<Result<_, _>>()?,
        pending_groups: pending_groups
            .iter()
            .map(pending_row)
            .collect::<Result<_, _>>()?,
        memberships: memberships
            .iter()
            .map(membership_row)
            .collect::<Result<_, _>>()?,
    })
}

fn record_row(r: &Row) -> Result<RecordRow, StoreError> {
    Ok(RecordRow {
        tenant: column(r, 0)?,
        id: column(r, 1)?,
        external_id: column(r, 2)?,
        shadow: column(r, 3)?,
        managed: column(r, 4)?,
        created: column(r, 5)?,
        last_modified: column(r, 6)?,
    })
}

fn pending_row(r: &Row) -> Result<PendingRow, StoreError> {
    Ok(PendingRow {
        tenant: column(r, 0)?,
        name: column(r, 1)?,
        shadow: column(r, 2)?,
        created: column(r, 3)?,
    })
}

fn membership_row(r: &Row) -> Result<MembershipRow, StoreError> {
    Ok(MembershipRow {
        tenant: column(r, 0)?,
        group_id: column(r, 1)?,
        user_id: column(r, 2)?,
    })
}

/// Writes users or groups (`sql`: [`UPSERT_USERS`] or [`UPSERT_GROUPS`]).
async fn upsert_records(
    client: &impl GenericClient,
    sql: &str,
    rows: &[&RecordRow],
) -> Result<(), CopyError> {
    let text = |f: fn(&RecordRow) -> &String| rows.iter().map(|r| f(r).clone()).collect::<Vec<_>>();
    let external_ids: Vec<Option<String>> = rows.iter().map(|r| r.external_id.clone()).collect();
    let managed: Vec<bool> = rows.iter().map(|r| r.managed).collect();
    client
        .execute(
            sql,
            &[
                &text(|r| &r.tenant),
                &text(|r| &r.id),
                &external_ids,
                &text(|r| &r.shadow),
                &managed,
                &text(|r| &r.created),
                &text(|r| &r.last_modified),
            ],
        )
        .await
        .map(drop)
        .map_err(failed)
}

/// Writes pending creates of users or groups (`sql`: [`UPSERT_PENDING`] or
/// [`UPSERT_PENDING_GROUPS`]).
async fn upsert_pending(
    client: &impl GenericClient,
    sql: &str,
    rows: &[&PendingRow],
) -> Result<(), CopyError> {
    let text =
        |f: fn(&PendingRow) -> &String| rows.iter().map(|r| f(r).clone()).collect::<Vec<_>>();
    client
        .execute(
            sql,
            &[
                &text(|r| &r.tenant),
                &text(|r| &r.name),
                &text(|r| &r.shadow),
                &text(|r| &r.created),
            ],
        )
        .await
        .map(drop)
        .map_err(failed)
}

async fn insert_memberships(
    client: &impl GenericClient,
    rows: &[&MembershipRow],
) -> Result<(), CopyError> {
    let text =
        |f: fn(&MembershipRow) -> &String| rows.iter().map(|r| f(r).clone()).collect::<Vec<_>>();
    client
        .execute(
            INSERT_MEMBERSHIPS,
            &[
                &text(|r| &r.tenant),
                &text(|r| &r.group_id),
                &text(|r| &r.user_id),
            ],
        )
        .await
        .map(drop)
        .map_err(failed)
}

async fn upsert_tenants(
    client: &impl GenericClient,
    rows: &[&StoreTenant],
) -> Result<(), CopyError> {
    let text =
        |f: fn(&StoreTenant) -> &String| rows.iter().map(|r| f(r).clone()).collect::<Vec<_>>();
    let enabled: Vec<bool> = rows.iter().map(|r| r.enabled).collect();
    client
        .execute(
            UPSERT_TENANTS,
            &[
                &text(|r| &r.name),
                &enabled,
                &text(|r| &r.created_at),
                &text(|r| &r.created_by),
            ],
        )
        .await
        .map(drop)
        .map_err(failed)
}

async fn upsert_keys(client: &impl GenericClient, rows: &[&StoreKey]) -> Result<(), CopyError> {
    let text = |f: fn(&StoreKey) -> &String| rows.iter().map(|r| f(r).clone()).collect::<Vec<_>>();
    let maybe =
        |f: fn(&StoreKey) -> &Option<String>| rows.iter().map(|r| f(r).clone()).collect::<Vec<_>>();
    client
        .execute(
            UPSERT_KEYS,
            &[
                &text(|r| &r.id),
                &text(|r| &r.sha256),
                &text(|r| &r.tenant),
                &text(|r| &r.label),
                &text(|r| &r.created_at),
                &text(|r| &r.created_by),
                &maybe(|r| &r.last_used_at),
                &maybe(|r| &r.revoked_at),
            ],
        )
        .await
        .map(drop)
        .map_err(failed)
}

fn failed(e: tokio_postgres::Error) -> CopyError {
    CopyError::Store(classify(&e))
}
