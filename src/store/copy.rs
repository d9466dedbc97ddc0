//! Moving a deployment from SQLite to PostgreSQL: the rows of a SQLite store (users and groups
//! with their managed flags, resources and timestamps, pending creates of both, managed
//! memberships, and store tenants with their SCIM API keys) copied into a PostgreSQL store in one transaction. A row already there with the
//! same data is left alone, so a second run has nothing to do; a row already there with other
//! data stops the copy unless it may overwrite; before committing, every row of the source is
//! read back from PostgreSQL and compared. A tenant the deprovisioning brake holds is held in
//! PostgreSQL too, since the same time (after the rows are committed; a second run holds it
//! again, which changes nothing); the open window's count is not carried, PostgreSQL counts
//! afresh.

use super::brake::BrakeChange;
use super::postgres::PostgresStore;
use super::rows::{CopyError, CopyReport};
use super::sqlite::SqliteStore;
use super::Store;
use std::path::Path;

/// What a copy did.
#[derive(Debug)]
pub struct Copied {
    /// The rows' counts.
    pub report: CopyReport,
    /// The tenants held by the deprovisioning brake, now held in PostgreSQL too.
    pub held: Vec<String>,
}

/// Copies the SQLite store at `from` into `to`; with `overwrite`, rows already in `to` with
/// other data are replaced, otherwise they stop the copy before anything is written. Held
/// tenants are held in `to` afterwards.
pub async fn sqlite_to_postgres(
    from: &Path,
    to: &PostgresStore,
    overwrite: bool,
) -> Result<Copied, CopyError> {
    if !from.is_file() {
        return Err(CopyError::NoSource(from.to_path_buf()));
    }
    let sqlite = SqliteStore::open(from)?;
    let source = sqlite.rows().await?;
    if let Some(key) = source.first_not_a_record() {
        return Err(CopyError::NotARecord(key));
    }
    let holds: Vec<(String, i64)> = sqlite
        .brakes(None)
        .await?
        .into_iter()
        .filter_map(|(tenant, s)| s.held_since.map(|since| (tenant, since)))
        .collect();
    let report = to.import(source, overwrite).await?;
    for (tenant, since) in &holds {
        to.change_brake(tenant, BrakeChange::Hold, *since).await?;
    }
    Ok(Copied {
        report,
        held: holds.into_iter().map(|(tenant, _)| tenant).collect(),
    })
}
