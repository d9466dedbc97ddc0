//! The brakes on mass deprovisioning of the SQLite engine (schema version 2 of its migrations).
//! A change runs on the writer thread in one immediate transaction: it holds the file's write
//! lock from its read to its write, so neither another write of this gateway nor a command
//! working on the same file (`scimgate brake release`) comes in between.

use super::super::brake::{self, BrakeChange, BrakeOutcome, BrakeState};
use super::super::StoreError;
use super::SqliteStore;
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

const SELECT_BRAKE: &str = "SELECT tenant, window_start, count, allowance, held_since, \
                            held_requests, trips, released_at FROM brakes WHERE tenant = ?1";
const SELECT_BRAKES: &str = "SELECT tenant, window_start, count, allowance, held_since, \
                             held_requests, trips, released_at FROM brakes \
                             WHERE ?1 IS NULL OR tenant = ?1 ORDER BY tenant";
const PUT_BRAKE: &str = "INSERT OR REPLACE INTO brakes (tenant, window_start, count, allowance, \
                         held_since, held_requests, trips, released_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
const COUNT_MANAGED: &str = "SELECT count(*) FROM users WHERE tenant = ?1 AND managed = 1";

impl SqliteStore {
    /// [`Store::change_brake`](super::super::Store::change_brake).
    pub(super) async fn change(
        &self,
        tenant: &str,
        change: BrakeChange,
        now: i64,
    ) -> Result<BrakeOutcome, StoreError> {
        let tenant = tenant.to_string();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let state = tx
                .prepare_cached(SELECT_BRAKE)?
                .query_row(params![tenant], brake_row)
                .optional()?
                .map(|(_, s)| s);
            let change = if change.needs_managed_count() {
                let n: i64 = tx
                    .prepare_cached(COUNT_MANAGED)?
                    .query_row(params![tenant], |r| r.get(0))?;
                change.with_managed(u64::try_from(n).unwrap_or(0))
            } else {
                change
            };
            let outcome = brake::apply(state, change, now);
            let s = &outcome.state;
            tx.prepare_cached(PUT_BRAKE)?.execute(params![
                tenant,
                s.window_start,
                as_i64(s.count),
                as_i64(s.allowance),
                s.held_since,
                as_i64(s.held_requests),
                as_i64(s.trips),
                s.released_at,
            ])?;
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    /// [`Store::brakes`](super::super::Store::brakes).
    pub(super) async fn brake_rows(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<(String, BrakeState)>, StoreError> {
        let tenant = tenant.map(str::to_string);
        self.read(move |conn| {
            conn.prepare_cached(SELECT_BRAKES)?
                .query_map(params![tenant], brake_row)?
                .collect()
        })
        .await
    }
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A row of `brakes` in the column order of [`SELECT_BRAKE`].
fn brake_row(r: &Row<'_>) -> rusqlite::Result<(String, BrakeState)> {
    let count = |at: usize| r.get::<_, i64>(at).map(|n| u64::try_from(n).unwrap_or(0));
    Ok((
        r.get(0)?,
        BrakeState {
            window_start: r.get(1)?,
            count: count(2)?,
            allowance: count(3)?,
            held_since: r.get(4)?,
            held_requests: count(5)?,
            trips: count(6)?,
            released_at: r.get(7)?,
        },
    ))
}
