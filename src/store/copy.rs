//! Moving a deployment from SQLite to PostgreSQL: the rows of a SQLite store (users and groups
//! with their managed flags, resources and timestamps, pending creates of both, managed
//! memberships, and store tenants with their SCIM API keys) copied into a PostgreSQL store in one transaction. A row already there with the
//! same data is left alone, so a second run has nothing to do; a row already there with other
//! data stops the copy unless it may overwrite; before committing, every row of the source is
//! read back from PostgreSQL and compared.

use super::postgres::PostgresStore;
use super::rows::{CopyError, CopyReport};
use super::sqlite::SqliteStore;
use std::path::Path;

/// Copies the SQLite store at `from` into `to`; with `overwrite`, rows already in `to` with
/// other data are replaced, otherwise they stop the copy before anything is written.
pub async fn sqlite_to_postgres(
    from: &Path,
    to: &PostgresStore,
    overwrite: bool,
) -> Result<CopyReport, CopyError> {
    if !from.is_file() {
        return Err(CopyError::NoSource(from.to_path_buf()));
    }
    let source = SqliteStore::open(from)?.rows().await?;
    if let Some(key) = source.first_not_a_record() {
        return Err(CopyError::NotARecord(key));
    }
    to.import(source, overwrite).await
}
