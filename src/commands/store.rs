//! The store's subcommands, for a PostgreSQL store: `store migrate` (apply the schema
//! migrations this build knows, for operators who set `[store] migrate = "manual"`) and
//! `store copy` (move a SQLite store into the PostgreSQL store of a config).

use super::CommandError;
use crate::config;
use crate::store::copy;
use crate::store::engine::StoreSettings;
use crate::store::postgres::{PgSettings, PostgresStore};
use std::path::Path;

/// The PostgreSQL settings of the config at `path`, or why this command does not apply.
fn postgres_of(path: &Path) -> Result<PgSettings, CommandError> {
    match config::load(path)?.store {
        StoreSettings::Postgres(pg) => Ok(pg),
        StoreSettings::Sqlite(_) => Err(CommandError::NotPostgres(path.to_path_buf())),
    }
}

/// `scimgate store migrate --config FILE`: applies every schema migration the database lacks
/// (one run at a time across the fleet) and says what it did.
pub fn migrate(path: &Path) -> Result<String, CommandError> {
    let settings = postgres_of(path)?;
    let report = PostgresStore::migrate_blocking(&settings).map_err(CommandError::Store)?;
    Ok(format!("{}: {report}", settings.url))
}

/// `scimgate store copy --from SQLITE_FILE --config FILE [--overwrite]`: copies the SQLite store
/// into the config's PostgreSQL store, in one transaction, verified before the commit; tenants
/// the deprovisioning brake holds stay held.
pub fn copy(from: &Path, path: &Path, overwrite: bool) -> Result<String, CommandError> {
    let settings = postgres_of(path)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Runtime)?;
    let copied = rt.block_on(async {
        let to = PostgresStore::open(&settings)
            .await
            .map_err(CommandError::Store)?;
        copy::sqlite_to_postgres(from, &to, overwrite)
            .await
            .map_err(CommandError::Copy)
    })?;
    let held = match copied.held.as_slice() {
        [] => String::new(),
        held => format!(
            "\nkept held by the deprovisioning brake (scimgate brake status): {}",
            held.join(", ")
        ),
    };
    Ok(format!(
        "{} → {}: {}{held}",
        from.display(),
        settings.url,
        copied.report
    ))
}
