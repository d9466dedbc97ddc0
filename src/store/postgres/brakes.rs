//! The brakes on mass deprovisioning of the PostgreSQL engine (schema version 7). A change is
//! one transaction: the tenant's row is created if missing, then taken `FOR UPDATE`, so changes
//! through every gateway of a fleet apply one after the other and a burst spread over the fleet
//! lets exactly the threshold through.

use super::super::brake::{self, BrakeChange, BrakeOutcome, BrakeState};
use super::super::StoreError;
use super::errors::classify;
use super::{column, PostgresStore};
use tokio_postgres::Row;

/// A fresh row: its window starts now; nothing counted, not held.
const ENSURE_BRAKE: &str = "INSERT INTO brakes (tenant, window_start, count, allowance, \
                            held_requests, trips) VALUES ($1, $2, 0, 0, 0, 0) \
                            ON CONFLICT (tenant) DO NOTHING";
const LOCK_BRAKE: &str = "SELECT tenant, window_start, count, allowance, held_since, \
                          held_requests, trips, released_at FROM brakes WHERE tenant = $1 \
                          FOR UPDATE";
const SELECT_BRAKES: &str = "SELECT tenant, window_start, count, allowance, held_since, \
                             held_requests, trips, released_at FROM brakes \
                             WHERE $1::text IS NULL OR tenant = $1 ORDER BY tenant";
const PUT_BRAKE: &str = "UPDATE brakes SET window_start = $2, count = $3, allowance = $4, \
                         held_since = $5, held_requests = $6, trips = $7, released_at = $8 \
                         WHERE tenant = $1";
const COUNT_MANAGED: &str = "SELECT count(*) FROM users WHERE tenant = $1 AND managed";

impl PostgresStore {
    /// [`Store::change_brake`](super::super::Store::change_brake).
    pub(super) async fn change(
        &self,
        tenant: &str,
        change: BrakeChange,
        now: i64,
    ) -> Result<BrakeOutcome, StoreError> {
        let tenant = tenant.to_string();
        self.on_db(|db| async move {
            let mut conn = db.conn().await?;
            let tx = conn.transaction().await.map_err(|e| classify(&e))?;
            tx.execute(ENSURE_BRAKE, &[&tenant, &now])
                .await
                .map_err(|e| classify(&e))?;
            let rows = tx
                .query(LOCK_BRAKE, &[&tenant])
                .await
                .map_err(|e| classify(&e))?;
            let state = rows.first().map(brake_row).transpose()?.map(|(_, s)| s);
            let change = if change.needs_managed_count() {
                let rows = tx
                    .query(COUNT_MANAGED, &[&tenant])
                    .await
                    .map_err(|e| classify(&e))?;
                let n: i64 = match rows.first() {
                    Some(r) => column(r, 0)?,
                    None => 0,
                };
                change.with_managed(u64::try_from(n).unwrap_or(0))
            } else {
                change
            };
            let outcome = brake::apply(state, change, now);
            let s = &outcome.state;
            tx.execute(
                PUT_BRAKE,
                &[
                    &tenant,
                    &s.window_start,
                    &as_i64(s.count),
                    &as_i64(s.allowance),
                    &s.held_since,
                    &as_i64(s.held_requests),
                    &as_i64(s.trips),
                    &s.released_at,
                ],
            )
            .await
            .map_err(|e| classify(&e))?;
            tx.commit().await.map_err(|e| classify(&e))?;
            Ok(outcome)
        })
        .await
    }

    /// [`Store::brakes`](super::super::Store::brakes).
    pub(super) async fn brake_rows(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<(String, BrakeState)>, StoreError> {
        let rows = self.db.read(SELECT_BRAKES, &[&tenant]).await?;
        rows.iter().map(brake_row).collect()
    }
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A row of `brakes` in the column order of [`LOCK_BRAKE`].
fn brake_row(r: &Row) -> Result<(String, BrakeState), StoreError> {
    let count = |at: usize| column::<i64>(r, at).map(|n| u64::try_from(n).unwrap_or(0));
    Ok((
        column(r, 0)?,
        BrakeState {
            window_start: column(r, 1)?,
            count: count(2)?,
            allowance: count(3)?,
            held_since: column(r, 4)?,
            held_requests: count(5)?,
            trips: count(6)?,
            released_at: column(r, 7)?,
        },
    ))
}
