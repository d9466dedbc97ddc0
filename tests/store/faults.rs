//! PostgreSQL failures as store error kinds, each within its deadline: a server that cannot be
//! reached, a statement that does not end, a pool with no free connection, a server that takes
//! no writes, damaged rows and missing tables.

use crate::{gateway_on, pg, record};
use scimgate::store::postgres::{Migrate, PgSettings, PostgresStore};
use scimgate::store::{OpenError, Store, StoreError};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_there_is_unavailable() {
    // A port nothing listens on (bound, then freed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut settings = PgSettings::new(&format!("postgres://scimgate@127.0.0.1:{port}/scimgate"));
    settings.connect_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = PostgresStore::open(&settings)
        .await
        .err()
        .expect("no server");
    assert!(
        matches!(err, OpenError::Store(StoreError::Unavailable(_))),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unset_password_variable_is_named() {
    let mut settings = PgSettings::new("postgres://scimgate@127.0.0.1:5432/scimgate");
    settings.password_env = Some("SCIMGATE_TEST_NO_SUCH_PASSWORD".into());
    let err = PostgresStore::open(&settings)
        .await
        .err()
        .expect("no password");
    assert!(
        err.to_string().contains("SCIMGATE_TEST_NO_SUCH_PASSWORD"),
        "{err}"
    );
}

/// Locks `table` until the returned client is dropped.
async fn lock_table(db: &pg::TestDb, table: &str) -> tokio_postgres::Client {
    let client = db.client().await;
    client
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .unwrap();
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_that_does_not_end_is_unavailable_within_the_statement_timeout() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let limit = Duration::from_millis(400);
    let store = gateway_on(&db, |s| s.statement_timeout = limit).await;
    store.put("acme", "7", &record("e", true)).await.unwrap();
    let locker = lock_table(&db, "users").await;
    let started = Instant::now();
    let err = store.get("acme", "7").await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(took >= limit && took < limit * 4, "{took:?}");
    drop(locker);
    assert!(
        store.get("acme", "7").await.unwrap().is_some(),
        "recovers by itself"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_free_connection_within_the_pool_wait_is_busy_and_holds_up_no_read() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let wait = Duration::from_millis(200);
    let store = std::sync::Arc::new(
        gateway_on(&db, |s| {
            s.pool_size = 1;
            s.pool_wait = wait;
            s.statement_timeout = Duration::from_secs(3);
        })
        .await,
    );
    // Tenant changes are transactions: each takes a connection of the pool to itself.
    let locker = lock_table(&db, "tenants").await;
    let stuck = {
        let store = store.clone();
        tokio::spawn(async move { store.enable_tenant("acme", "alice", "t0").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let err = store.enable_tenant("beta", "bob", "t0").await.unwrap_err();
    assert!(matches!(err, StoreError::Busy(_)), "{err:?}");
    assert!(err.detail().contains("pool_wait_ms"), "{err}");
    assert!(started.elapsed() < wait * 5, "{:?}", started.elapsed());
    // Single statements share connections of their own: nothing queues them behind the pool.
    assert!(!store.is_managed("acme", "7").await.unwrap());
    store.put("acme", "7", &record("e", true)).await.unwrap();
    drop(locker);
    assert!(
        stuck.await.unwrap().unwrap(),
        "enabled once the table is free"
    );
    assert!(store.is_managed("acme", "7").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_takes_no_writes_is_unwritable_before_any_write() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let writable = gateway_on(&db, |_| {}).await;
    writable.check_writable().await.unwrap();
    db.execute(&format!(
        "ALTER DATABASE {} SET default_transaction_read_only = on",
        db.name
    ));
    // Sessions opened from now on are read-only, as on a standby.
    let read_only = gateway_on(&db, |s| s.migrate = Migrate::Manual).await;
    let err = read_only.check_writable().await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable(d) if d.contains("takes no writes")),
        "{err:?}"
    );
    assert!(
        read_only.get("acme", "7").await.unwrap().is_none(),
        "reads go on"
    );
    assert!(matches!(
        read_only.put("acme", "7", &record("ext-1", true)).await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_that_is_not_a_record_is_corrupt() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let store = gateway_on(&db, |_| {}).await;
    store
        .put("acme", "7", &record("ext-1", true))
        .await
        .unwrap();
    // The work email trigger refuses to index text that is not JSON, so the damage is done
    // past it, as a disk or a hand edit would.
    db.execute(
        "ALTER TABLE users DISABLE TRIGGER USER; \
         UPDATE users SET shadow = '{not json' WHERE id = '7'; \
         ALTER TABLE users ENABLE TRIGGER USER",
    );
    let err = store.get("acme", "7").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(matches!(
        store.all("acme").await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(
        store.is_managed("acme", "7").await.unwrap(),
        "the flag still reads"
    );
    store
        .put_pending_create("acme", "x@y.z", &record("e", true))
        .await
        .unwrap();
    db.execute("UPDATE pending_creates SET shadow = '[1,' WHERE user_name = 'x@y.z'");
    assert!(matches!(
        store.pending_create("acme", "x@y.z").await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_corrupt() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let store = gateway_on(&db, |_| {}).await;
    db.execute("DROP TABLE pending_creates");
    let err = store.pending_create("acme", "x@y.z").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(err.detail().contains("pending_creates"), "{err}");
}

/// Writes sent together, one of which the server refuses (PostgreSQL takes no NUL in text): every
/// other write lands, and only that one fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_server_refuses_fails_alone_among_those_sent_with_it() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let store = PostgresStore::open(&db.settings()).await.unwrap();
    let ids: Vec<String> = (0..24)
        .map(|n| match n {
            12 => "refused\0".to_string(),
            n => format!("id-{n}"),
        })
        .collect();
    let rec = record("ext", true);
    let writes = ids.iter().map(|id| store.put("acme", id, &rec));
    let written = futures::future::join_all(writes).await;
    for (id, written) in ids.iter().zip(written) {
        if id.contains('\0') {
            assert!(
                matches!(written, Err(StoreError::Unavailable(_))),
                "{written:?}"
            );
        } else {
            written.unwrap();
            assert!(store.get("acme", id).await.unwrap().is_some(), "{id}");
        }
    }
}
