//! The PostgreSQL schema's versions: applied once at start (also by gateways starting
//! together), a no-op when current, checked without changes in manual mode, and a database
//! newer than the build refused with both versions named.

use crate::pg;
use scimgate::store::postgres::{schema_version, Migrate, PostgresStore};
use scimgate::store::{OpenError, Store};

/// The schema versions recorded in `db`, in order.
pub async fn versions(db: &pg::TestDb) -> Vec<i32> {
    db.client()
        .await
        .query(
            "SELECT version FROM scimgate_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_database_is_migrated_once_and_again_is_a_no_op() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let store = PostgresStore::open(&db.settings()).await.unwrap();
    store.check_writable().await.unwrap();
    let all: Vec<i32> = (1..=schema_version()).collect();
    assert_eq!(versions(&db).await, all);
    let settings = db.settings();
    let again = tokio::task::spawn_blocking(move || PostgresStore::migrate_blocking(&settings))
        .await
        .unwrap()
        .unwrap();
    assert!(again.applied.is_empty(), "{again:?}");
    assert_eq!(
        again.to_string(),
        format!(
            "the schema is at version {}: nothing to do",
            schema_version()
        )
    );
    PostgresStore::open(&db.settings()).await.unwrap();
    assert_eq!(versions(&db).await, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_starting_together_apply_each_migration_once() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let opens = (0..4).map(|_| {
        let settings = db.settings();
        tokio::spawn(async move { PostgresStore::open(&settings).await.map(drop) })
    });
    for open in opens.collect::<Vec<_>>() {
        open.await.unwrap().unwrap();
    }
    assert_eq!(
        versions(&db).await,
        (1..=schema_version()).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_mode_checks_and_the_migrate_command_migrates() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let mut manual = db.settings();
    manual.migrate = Migrate::Manual;
    let err = PostgresStore::open(&manual).await.err().expect("behind");
    assert!(
        matches!(err, OpenError::SchemaBehind { found: 0, known } if known == schema_version()),
        "{err:?}"
    );
    assert!(err.to_string().contains("scimgate store migrate"), "{err}");
    let settings = manual.clone();
    let report = tokio::task::spawn_blocking(move || PostgresStore::migrate_blocking(&settings))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((report.from, report.to), (0, schema_version()));
    assert_eq!(report.applied.len(), schema_version() as usize);
    assert!(
        report
            .to_string()
            .starts_with("migrated the schema from version 0"),
        "{report}"
    );
    PostgresStore::open(&manual).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_the_build_is_refused_naming_both_versions() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    PostgresStore::open(&db.settings()).await.unwrap();
    db.execute("INSERT INTO scimgate_migrations (version, name) VALUES (999, 'from the future')");
    for migrate in [Migrate::Auto, Migrate::Manual] {
        let mut settings = db.settings();
        settings.migrate = migrate;
        let err = PostgresStore::open(&settings).await.err().expect("refused");
        assert!(
            matches!(err, OpenError::SchemaTooNew { found: 999, known } if known == schema_version()),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("version 999") && text.contains(&format!("version {}", schema_version())),
            "{text}"
        );
    }
    let settings = db.settings();
    let err = tokio::task::spawn_blocking(move || PostgresStore::migrate_blocking(&settings))
        .await
        .unwrap()
        .expect_err("refused");
    assert!(matches!(err, OpenError::SchemaTooNew { .. }), "{err:?}");
    assert_eq!(
        versions(&db).await.last(),
        Some(&999),
        "nothing was changed"
    );
}
