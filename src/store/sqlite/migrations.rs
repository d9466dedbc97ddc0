//! Versioned steps of the SQLite file's schema, recorded in `PRAGMA user_version`. The tables a
//! file held before versions were kept (version 0) come from the engine's `SCHEMA`, applied on
//! every open as before; each step here brings a file one version further, once, in one
//! transaction with the version it records, so two processes opening one file apply it once.
//! A file at a version newer than this build knows is refused before anything is written.

use rusqlite::{Connection, TransactionBehavior};

/// One step of the schema.
struct Migration {
    version: i32,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        // Store tenants and their SCIM API keys (the hash, never the secret). `api_keys_tenant`
        // answers a tenant's keys in id order; the unique index on `sha256` answers the lookup of
        // every request's key.
        sql: "
CREATE TABLE IF NOT EXISTS tenants (
    name       TEXT PRIMARY KEY,
    enabled    INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id           TEXT PRIMARY KEY,
    sha256       TEXT NOT NULL UNIQUE,
    tenant       TEXT NOT NULL,
    label        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant, id);
",
    },
    Migration {
        version: 2,
        // Each tenant's brake on mass deprovisioning (see `store::brake`); times are Unix
        // seconds.
        sql: "
CREATE TABLE IF NOT EXISTS brakes (
    tenant        TEXT PRIMARY KEY,
    window_start  INTEGER NOT NULL,
    count         INTEGER NOT NULL,
    allowance     INTEGER NOT NULL,
    held_since    INTEGER,
    held_requests INTEGER NOT NULL,
    trips         INTEGER NOT NULL,
    released_at   INTEGER
);
",
    },
];

/// The newest schema version this build knows.
pub(super) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The version of a file migrated by a newer scimgate, if it is one (checked before anything
/// is written).
pub(super) fn newer(conn: &Connection) -> rusqlite::Result<Option<i32>> {
    let found = version(conn)?;
    Ok((found > latest()).then_some(found))
}

/// Applies every step the file lacks, in one transaction that holds the file's write lock;
/// answers the version of a file found newer than this build, which is left alone.
pub(super) fn migrate(conn: &mut Connection) -> rusqlite::Result<Option<i32>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = version(&tx)?;
    if found > latest() {
        return Ok(Some(found));
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        tx.execute_batch(m.sql)?;
        tx.pragma_update(None, "user_version", m.version)?;
    }
    tx.commit().map(|()| None)
}

fn version(conn: &Connection) -> rusqlite::Result<i32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;
    use super::*;
    use crate::store::OpenError;

    #[test]
    fn a_file_is_brought_to_the_latest_version_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        drop(SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        assert_eq!(version(&conn).unwrap(), latest());
        drop(SqliteStore::open(&path).unwrap());
        assert_eq!(version(&conn).unwrap(), latest());
    }

    #[test]
    fn a_file_made_before_versions_gains_the_key_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(super::super::SCHEMA).unwrap();
        assert_eq!(version(&old).unwrap(), 0);
        drop(SqliteStore::open(&path).unwrap());
        assert_eq!(version(&old).unwrap(), latest());
        let tables: i64 = old
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('tenants', 'api_keys')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 2);
    }

    #[test]
    fn a_file_newer_than_the_build_is_refused_naming_both_versions_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
        let err = SqliteStore::open(&path).err().expect("refused");
        assert!(
            matches!(err, OpenError::SchemaTooNew { found: 999, known } if known == latest()),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("version 999") && text.contains(&format!("version {}", latest())),
            "{text}"
        );
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0, "nothing was written");
    }
}
