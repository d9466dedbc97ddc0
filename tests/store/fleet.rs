//! Several gateways over one PostgreSQL database: each test opens two engines on one database,
//! as two gateways of a fleet would, and shows that a hold taken through one excludes the other.

use crate::{gateway_on, pg, record};
use scimgate::store::{ResourceKey, Store, StoreError};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_through_one_gateway_makes_the_other_wait_until_it_is_dropped() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let a = gateway_on(&db, |_| {}).await;
    let b = gateway_on(&db, |_| {}).await;
    let held = a
        .serialise("acme", ResourceKey::User("usr_bob"))
        .await
        .unwrap();
    let pause = Duration::from_millis(400);
    let waiting = async {
        let started = Instant::now();
        let hold = b
            .serialise("acme", ResourceKey::User("USR_BOB"))
            .await
            .unwrap();
        (started.elapsed(), hold)
    };
    let release = async {
        tokio::time::sleep(pause).await;
        drop(held);
    };
    let ((waited, second), ()) = tokio::join!(waiting, release);
    assert!(waited >= pause, "b waited for a's hold: {waited:?}");
    assert!(
        waited < pause * 5,
        "and went soon after a dropped it: {waited:?}"
    );
    // Other keys, and the same id in another tenant, are not held.
    tokio::time::timeout(Duration::from_secs(2), async {
        drop(
            a.serialise("acme", ResourceKey::User("usr_ann"))
                .await
                .unwrap(),
        );
        drop(
            a.serialise("umbrella", ResourceKey::User("usr_bob"))
                .await
                .unwrap(),
        );
    })
    .await
    .unwrap();
    drop(second);
    let again = tokio::time::timeout(
        Duration::from_secs(2),
        a.serialise("acme", ResourceKey::User("usr_bob")),
    )
    .await
    .unwrap()
    .unwrap();
    drop(again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_another_gateways_hold_is_bounded_and_busy() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let a = gateway_on(&db, |_| {}).await;
    let wait = Duration::from_millis(300);
    let b = gateway_on(&db, |s| s.lock_wait = wait).await;
    let _held = a
        .serialise("acme", ResourceKey::UserName("alice@acme.test"))
        .await
        .unwrap();
    let started = Instant::now();
    let err = b
        .serialise("acme", ResourceKey::UserName("Alice@Acme.test"))
        .await
        .err()
        .expect("busy");
    let waited = started.elapsed();
    assert!(matches!(err, StoreError::Busy(_)), "{err:?}");
    assert!(err.detail().contains("another gateway"), "{err}");
    assert!(err.detail().contains("lock_wait_ms"), "{err}");
    // Bounded: the hold's wait, plus opening a connection on a loaded CI machine at most.
    assert!(
        waited >= wait && waited < wait + Duration::from_secs(3),
        "{waited:?}"
    );
    // A hold lost by its gateway (its connection ended) is released by the server.
    db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_locks \
         WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    );
    let freed = tokio::time::timeout(
        Duration::from_secs(10),
        b.serialise("acme", ResourceKey::UserName("alice@acme.test")),
    )
    .await
    .unwrap()
    .unwrap();
    drop(freed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_whose_connection_died_is_dropped_quietly_and_holds_go_on() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let a = gateway_on(&db, |s| s.pool_size = 1).await;
    let held = a
        .serialise("acme", ResourceKey::User("usr_bob"))
        .await
        .unwrap();
    db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    );
    // The unlock cannot be sent: the connection is discarded, not returned to the pool holding
    // a lock, and the only connection slot opens a fresh one.
    drop(held);
    for _ in 0..3 {
        let again = tokio::time::timeout(
            Duration::from_secs(3),
            a.serialise("acme", ResourceKey::User("usr_bob")),
        )
        .await
        .unwrap()
        .unwrap();
        drop(again);
    }
}

/// Creates of one userName through two gateways: each create holds the name, checks it is
/// free, and records a user; exactly one finds it free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_user_name_reservations_through_two_gateways_give_one_user() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let gateways: [Arc<dyn Store>; 2] = [
        Arc::new(gateway_on(&db, |_| {}).await),
        Arc::new(gateway_on(&db, |_| {}).await),
    ];
    let creates = (0..12).map(|n| {
        let store = gateways[n % 2].clone();
        tokio::spawn(async move {
            let name = if n % 3 == 0 {
                "Alice@Acme.test"
            } else {
                "alice@acme.test"
            };
            let _reserved = store
                .serialise("acme", ResourceKey::UserName(name))
                .await
                .unwrap();
            let taken = store.all("acme").await.unwrap().iter().any(|(_, r)| {
                r.shadow["userName"]
                    .as_str()
                    .map(str::to_lowercase)
                    .as_deref()
                    == Some("alice@acme.test")
            });
            if taken {
                return false;
            }
            // The backend call of a real create happens here, under the reservation.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let mut rec = record(&format!("ext-{n}"), true);
            rec.shadow = json!({"userName": name, "externalId": format!("ext-{n}")});
            store.put("acme", &format!("u{n}"), &rec).await.unwrap();
            true
        })
    });
    let mut created = 0;
    for c in creates.collect::<Vec<_>>() {
        created += usize::from(c.await.unwrap());
    }
    assert_eq!(created, 1);
    assert_eq!(gateways[0].all("acme").await.unwrap().len(), 1);
    assert_eq!(gateways[1].all("acme").await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_gateway_writes_the_other_reads_at_once() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let a = gateway_on(&db, |_| {}).await;
    let b = gateway_on(&db, |_| {}).await;
    a.put_pending_create("acme", "Carol@Acme.test", &record("ext-c", true))
        .await
        .unwrap();
    assert!(
        b.pending_create("acme", "carol@acme.test")
            .await
            .unwrap()
            .is_some(),
        "a crash of a is repaired by b"
    );
    a.put("acme", "usr_carol", &record("ext-c", true))
        .await
        .unwrap();
    assert!(b.is_managed("acme", "usr_carol").await.unwrap());
    assert_eq!(
        b.find_by_external_id("acme", "ext-c").await.unwrap(),
        ["usr_carol"]
    );
    b.delete("acme", "usr_carol").await.unwrap();
    assert_eq!(a.get("acme", "usr_carol").await.unwrap(), None);
}
