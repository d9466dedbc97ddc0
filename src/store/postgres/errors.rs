//! Driver and pool failures as [`StoreError`] kinds. The text stays the driver's or the server's
//! own, with its SQLSTATE.
//!
//! - **Unavailable**: the server cannot be reached or refuses (connection refused or closed,
//!   authentication failed, shutting down, disk full, read-only), or it did not answer in time
//!   (connect timeout, statement timeout, a statement cancelled): nothing the gateway can fix by
//!   waiting a moment.
//! - **Busy**: the database works but the gateway waited its deadline for something others hold:
//!   a free connection of its own pool (every one in use for `pool_wait_ms`), another gateway's
//!   hold on a resource (`lock_wait_ms`), a serialization failure or deadlock, or the server's
//!   connection limit. Busy, not Unavailable, because the same request may pass a moment later
//!   and the database needs no operator.
//! - **Corrupt**: a row cannot be decoded, the server reports damaged data, or the tables are
//!   not the ones this scimgate's migrations made.

use super::super::StoreError;
use deadpool_postgres::{PoolError, TimeoutType};
use std::error::Error as _;
use std::time::Duration;
use tokio_postgres::error::SqlState;

/// A driver failure by what failed.
pub(super) fn classify(e: &tokio_postgres::Error) -> StoreError {
    let detail = describe(e);
    let Some(db) = e.as_db_error() else {
        return StoreError::Unavailable(detail);
    };
    let code = db.code();
    if [
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::TOO_MANY_CONNECTIONS,
    ]
    .contains(code)
    {
        StoreError::Busy(detail)
    } else if [
        SqlState::DATA_CORRUPTED,
        SqlState::INDEX_CORRUPTED,
        SqlState::UNDEFINED_TABLE,
        SqlState::UNDEFINED_COLUMN,
    ]
    .contains(code)
    {
        StoreError::Corrupt(detail)
    } else {
        StoreError::Unavailable(detail)
    }
}

/// A pool failure: waiting for a free connection past `wait` is Busy, the rest is the driver's.
pub(super) fn pool_failure(e: PoolError, wait: Duration) -> StoreError {
    match e {
        PoolError::Timeout(TimeoutType::Wait) => StoreError::Busy(format!(
            "every connection to PostgreSQL stayed in use for {} ms (store.pool_size, \
             store.pool_wait_ms)",
            wait.as_millis()
        )),
        PoolError::Timeout(TimeoutType::Create) => {
            StoreError::Unavailable("PostgreSQL did not accept a connection in time".into())
        }
        PoolError::Timeout(TimeoutType::Recycle) => {
            StoreError::Unavailable("a connection to PostgreSQL did not answer in time".into())
        }
        PoolError::Backend(e) => classify(&e),
        other => StoreError::Unavailable(format!("PostgreSQL connection pool: {other}")),
    }
}

/// No answer within `limit`.
pub(super) fn no_answer(limit: Duration) -> StoreError {
    StoreError::Unavailable(format!(
        "PostgreSQL did not answer within {} ms (store.statement_timeout_ms)",
        limit.as_millis()
    ))
}

/// A column that does not decode as what this engine wrote.
pub(super) fn undecodable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what} cannot be decoded: {e}"))
}

/// The one boolean `sql` answers in its first row; no row, or no boolean, is a corrupt answer.
pub(super) fn bool_answer(rows: &[tokio_postgres::Row], sql: &str) -> Result<bool, StoreError> {
    match rows.first() {
        Some(row) => row
            .try_get(0)
            .map_err(|e| undecodable(&format!("the answer to {sql}"), e)),
        None => Err(StoreError::Corrupt(format!("no answer to {sql}"))),
    }
}

/// The driver's message with its causes (`error connecting to server: Connection refused`).
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}
