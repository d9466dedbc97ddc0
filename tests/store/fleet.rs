//! Several gateways over one PostgreSQL database: each test opens two engines on one database,
//! as two gateways of a fleet would, and shows that a hold taken through one excludes the other.

use crate::contract::{notified, until_notified};
use crate::cutter::Cutter;
use crate::{gateway_on, pg, record};
use scimgate::store::{ResourceKey, Store, StoreError, UserRecord};
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
async fn holds_asked_at_once_each_get_their_own_answer() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let a = gateway_on(&db, |s| s.lock_wait = Duration::from_millis(300)).await;
    let b = gateway_on(&db, |_| {}).await;
    let name = |n: usize| format!("usr_{n}");
    // b holds every third key; a then asks for every key at once, so that its lock statements
    // go in batches that mix keys it gets with keys it cannot.
    let names: Vec<String> = (0..64).map(name).collect();
    let mut b_holds = Vec::new();
    for n in names.iter().step_by(3) {
        b_holds.push(b.serialise("acme", ResourceKey::User(n)).await.unwrap());
    }
    let asks = names
        .iter()
        .map(|n| a.serialise("acme", ResourceKey::User(n)));
    let answers = futures::future::join_all(asks).await;
    for (n, answer) in answers.iter().enumerate() {
        match answer {
            Ok(_) => assert!(n % 3 != 0, "{} is b's, yet a got it", name(n)),
            Err(e) => {
                assert!(n % 3 == 0, "{} was free, yet: {e}", name(n));
                assert!(matches!(e, StoreError::Busy(_)), "{e:?}");
            }
        }
    }
    let advisory = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
    assert_eq!(
        db.rows(advisory),
        [[Some("64".to_string())]],
        "42 of a's, 22 of b's"
    );
    drop(answers);
    drop(b_holds);
    // Every release goes out: the other gateway gets each key at once.
    tokio::time::timeout(Duration::from_secs(5), async {
        for n in &names {
            drop(b.serialise("acme", ResourceKey::User(n)).await.unwrap());
        }
    })
    .await
    .unwrap();
}

/// Adds one to the counter in usr_bob's record through `g`: a write's read under its hold.
async fn count_up(g: &dyn Store) {
    let (held, read) = g.serialise_user_and_get("acme", "usr_bob").await.unwrap();
    let mut rec = read.expect("usr_bob has a record");
    let n = rec.shadow["count"].as_u64().unwrap();
    rec.shadow["count"] = json!(n + 1);
    g.put("acme", "usr_bob", &rec).await.unwrap();
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_for_writes_through_two_gateways_lose_no_update() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let a = gateway_on(&db, |_| {}).await;
    let b = gateway_on(&db, |_| {}).await;
    let mut rec = record("ext-bob", true);
    rec.shadow["count"] = json!(0);
    a.put("acme", "usr_bob", &rec).await.unwrap();
    // Each gateway counts up at once from several tasks: one at a time gets the key free (its
    // read goes behind its lock statement), the rest wait for the other gateway in the database
    // or queue in their own; every read must follow the write before it.
    let ups = (0..40).map(|n| count_up(if n % 2 == 0 { &a } else { &b }));
    tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(ups))
        .await
        .unwrap();
    let (held, read) = b.serialise_user_and_get("acme", "usr_bob").await.unwrap();
    assert_eq!(read.unwrap().shadow["count"], json!(40), "no update lost");
    drop(held);
    let (held, read) = a.serialise_user_and_get("acme", "usr_ann").await.unwrap();
    assert!(read.is_none(), "a user with no record is held all the same");
    let other = tokio::time::timeout(
        Duration::from_millis(300),
        b.serialise("acme", ResourceKey::User("USR_ANN")),
    )
    .await;
    assert!(other.is_err(), "usr_ann is held");
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writes_read_runs_after_its_lock_was_taken() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let a = gateway_on(&db, |_| {}).await;
    for _ in 0..3 {
        // The first time, every statement is prepared before the batch goes out.
        assert!(a
            .follow_up_sees_its_lock("acme", "user:usr_bob")
            .await
            .unwrap());
    }
    // Many at once: reads behind a batch of locks, each after its own lock.
    let keys: Vec<String> = (0..32).map(|n| format!("user:usr_{n}")).collect();
    let probes = keys.iter().map(|k| a.follow_up_sees_its_lock("acme", k));
    for seen in futures::future::join_all(probes).await {
        assert!(seen.unwrap());
    }
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

/// The record `id` of tenant `acme` as gateway `g` shows it.
async fn shown(g: &dyn Store, id: &str) -> Option<UserRecord> {
    g.get_many_to_show("acme", &[id.to_string()])
        .await
        .unwrap()
        .remove(id)
}

/// Asks `g` for `id` until it shows `want`, at most `bound`; answers how long that took.
async fn shows_within(
    g: &dyn Store,
    id: &str,
    want: Option<&UserRecord>,
    bound: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let now = shown(g, id).await;
        if now.as_ref() == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < bound,
            "{id} still shows {now:?} after {bound:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Gateways cache the records they show; a change through another gateway reaches that cache
/// by the database's notification, well within the documented bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_another_gateway_changed_shows_once_its_notification_arrives() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let a = gateway_on(&db, |_| {}).await;
    let b = gateway_on(&db, |_| {}).await;
    until_notified(&b).await;
    let (first, second) = (record("ext-1", true), record("ext-2", true));
    a.put("acme", "usr_dee", &first).await.unwrap();
    let bound = Duration::from_secs(2);
    shows_within(&b, "usr_dee", Some(&first), bound).await;
    assert_eq!(shown(&b, "usr_eve").await, None, "known to have no record");
    // b answers from its cache: a change no notification announces does not show there.
    db.execute("ALTER TABLE users DISABLE TRIGGER users_changed");
    a.put("acme", "usr_dee", &second).await.unwrap();
    assert_eq!(shown(&b, "usr_dee").await, Some(first.clone()));
    assert_eq!(
        a.get("acme", "usr_dee").await.unwrap(),
        Some(second.clone())
    );
    db.execute("ALTER TABLE users ENABLE TRIGGER users_changed");
    // Announced changes, deletions and a user new to the store show on b.
    let third = record("ext-3", false);
    a.put("acme", "usr_dee", &third).await.unwrap();
    shows_within(&b, "usr_dee", Some(&third), bound).await;
    a.put("acme", "usr_eve", &second).await.unwrap();
    shows_within(&b, "usr_eve", Some(&second), bound).await;
    a.delete("acme", "usr_dee").await.unwrap();
    shows_within(&b, "usr_dee", None, bound).await;
    // Off by configuration: no notifications connection, every read asks the database.
    let c = gateway_on(&db, |s| s.record_cache = false).await;
    let notifications = c.pools().into_iter().find(|p| p.pool == "notifications");
    assert_eq!(notifications.map(|p| (p.max, p.open)), Some((0, 0)));
    assert_eq!(shown(&c, "usr_eve").await, Some(second));
}

/// A gateway that stops receiving notifications stops using its cache at once, and starts it
/// again, empty, once it listens again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_notifications_a_gateway_reads_the_database() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let a = gateway_on(&db, |s| s.record_cache = false).await;
    let b = gateway_on(&db, |_| {}).await;
    until_notified(&b).await;
    let (first, second) = (record("ext-1", true), record("ext-2", true));
    a.put("acme", "usr_dee", &first).await.unwrap();
    shows_within(&b, "usr_dee", Some(&first), Duration::from_secs(2)).await;
    db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'scimgate notifications' AND datname = current_database()",
    );
    let started = Instant::now();
    while notified(&b) {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "b did not see its listener end"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Not notified of this change: b must read it from the database.
    db.execute("ALTER TABLE users DISABLE TRIGGER users_changed");
    a.put("acme", "usr_dee", &second).await.unwrap();
    assert_eq!(shown(&b, "usr_dee").await, Some(second.clone()));
    db.execute("ALTER TABLE users ENABLE TRIGGER users_changed");
    // It listens again by itself, and its cache follows changes again.
    until_notified(&b).await;
    assert_eq!(shown(&b, "usr_dee").await, Some(second));
    a.put("acme", "usr_dee", &first).await.unwrap();
    shows_within(&b, "usr_dee", Some(&first), Duration::from_secs(2)).await;
}

/// Notifications that stop arriving on a connection that stays open (a path that stopped
/// delivering) stop the cache within the documented bound, by the unanswered heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_stalled_on_an_open_connection_stop_the_cache_within_the_bound() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let cutter = Cutter::start(db.address());
    let b = gateway_on(&db, |s| {
        s.url = s
            .url
            .replacen(&db.address().to_string(), &cutter.addr.to_string(), 1);
    })
    .await;
    until_notified(&b).await;
    cutter.freeze();
    let started = Instant::now();
    while notified(&b) {
        // 1.5 s after the last answered heartbeat, sent at most 0.5 s before the freeze.
        assert!(
            started.elapsed() < Duration::from_millis(2_500),
            "the cache is still used {:?} after notifications stalled",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cutter.heal();
    until_notified(&b).await;
}
