//! Rows copied into a PostgreSQL store (`scimgate store copy`): one transaction under an
//! advisory lock (two copies never interleave), rows written in batches, and every source row
//! read back and compared before the commit.

use super::super::rows::{
    differences, plan, verify, CopyError, CopyReport, PendingRow, Rows, TableCount, UserRow,
};
use super::super::StoreError;
use super::errors::classify;
use super::{column, PostgresStore};
use std::collections::BTreeSet;
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

const UPSERT_PENDING: &str = "INSERT INTO pending_creates (tenant, user_name, shadow, created)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
    ON CONFLICT (tenant, user_name) DO UPDATE SET shadow = EXCLUDED.shadow,
        created = EXCLUDED.created";

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
            let tenants: Vec<String> = source
                .users
                .iter()
                .map(|u| u.tenant.clone())
                .chain(source.pending.iter().map(|p| p.tenant.clone()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let target = rows_of(&*tx, &tenants).await?;
            let users = plan(&source.users, &target.users);
            let pending = plan(&source.pending, &target.pending);
            if !overwrite {
                if let Some(e) = differences(&users, &pending) {
                    return Err(e);
                }
            }
            let write_users: Vec<&UserRow> = users.missing.iter().chain(&users.differing).collect();
            let write_pending: Vec<&PendingRow> =
                pending.missing.iter().chain(&pending.differing).collect();
            for batch in write_users.chunks(BATCH) {
                upsert_users(&*tx, batch).await?;
            }
            for batch in write_pending.chunks(BATCH) {
                upsert_pending(&*tx, batch).await?;
            }
            verify(&source, &rows_of(&*tx, &tenants).await?).map_err(CopyError::Verify)?;
            tx.commit().await.map_err(failed)?;
            Ok(CopyReport {
                users: TableCount::of(&users, overwrite),
                pending: TableCount::of(&pending, overwrite),
            })
        })
        .await
    }
}

/// Every row of `tenants`.
async fn rows_of(client: &impl GenericClient, tenants: &[String]) -> Result<Rows, CopyError> {
    let users = client
        .query(
            "SELECT tenant, id, external_id, shadow, managed, created, last_modified
             FROM users WHERE tenant = ANY($1)",
            &[&tenants],
        )
        .await
        .map_err(failed)?;
    let pending = client
        .query(
            "SELECT tenant, user_name, shadow, created FROM pending_creates
             WHERE tenant = ANY($1)",
            &[&tenants],
        )
        .await
        .map_err(failed)?;
    Ok(Rows {
        users: users.iter().map(user_row).collect::<Result<_, _>>()?,
        pending: pending.iter().map(pending_row).collect::<Result<_, _>>()?,
    })
}

fn user_row(r: &Row) -> Result<UserRow, StoreError> {
    Ok(UserRow {
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
        user_name: column(r, 1)?,
        shadow: column(r, 2)?,
        created: column(r, 3)?,
    })
}

async fn upsert_users(client: &impl GenericClient, rows: &[&UserRow]) -> Result<(), CopyError> {
    let text = |f: fn(&UserRow) -> &String| rows.iter().map(|r| f(r).clone()).collect::<Vec<_>>();
    let external_ids: Vec<Option<String>> = rows.iter().map(|r| r.external_id.clone()).collect();
    let managed: Vec<bool> = rows.iter().map(|r| r.managed).collect();
    client
        .execute(
            UPSERT_USERS,
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

async fn upsert_pending(
    client: &impl GenericClient,
    rows: &[&PendingRow],
) -> Result<(), CopyError> {
    let text =
        |f: fn(&PendingRow) -> &String| rows.iter().map(|r| f(r).clone()).collect::<Vec<_>>();
    client
        .execute(
            UPSERT_PENDING,
            &[
                &text(|r| &r.tenant),
                &text(|r| &r.user_name),
                &text(|r| &r.shadow),
                &text(|r| &r.created),
            ],
        )
        .await
        .map(drop)
        .map_err(failed)
}

fn failed(e: tokio_postgres::Error) -> CopyError {
    CopyError::Store(classify(&e))
}
