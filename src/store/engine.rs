//! Which engine keeps the store, as the config names it (`[store] path` or `[store] url`), and
//! opening it behind the seam.

use super::postgres::{PgSettings, PostgresStore};
use super::sqlite::SqliteStore;
use super::{OpenError, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which engine keeps the store, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSettings {
    /// One SQLite file (`[store] path`), for one gateway.
    Sqlite(PathBuf),
    /// A PostgreSQL database (`[store] url`), shared by a fleet of gateways.
    Postgres(PgSettings),
}

impl StoreSettings {
    /// The SQLite file, when the store is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            StoreSettings::Sqlite(path) => Some(path),
            StoreSettings::Postgres(_) => None,
        }
    }

    /// Where the store is, for messages: the file, or the URL (which never holds a password).
    pub fn describe(&self) -> String {
        match self {
            StoreSettings::Sqlite(path) => path.display().to_string(),
            StoreSettings::Postgres(pg) => pg.url.clone(),
        }
    }
}

/// Opens the engine `settings` names (a PostgreSQL store is migrated or checked first). Blocks
/// the calling thread until the store is ready: call it from synchronous code.
pub fn open(settings: &StoreSettings) -> Result<Arc<dyn Store>, OpenError> {
    Ok(match settings {
        StoreSettings::Sqlite(path) => Arc::new(SqliteStore::open(path)?),
        StoreSettings::Postgres(pg) => Arc::new(PostgresStore::open_blocking(pg)?),
    })
}
