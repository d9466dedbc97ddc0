//! The brake on mass deprovisioning as every engine keeps it: a burst of concurrent admissions
//! lets exactly the threshold through, a held tenant stays held until released, a release opens
//! a fresh window with its allowance, the share counts the tenant's managed users, and brakes
//! are per tenant. Then what only a file or a shared database shows: a brake survives a
//! restart, and two gateways on one PostgreSQL database count together.

use crate::{gateway_on, pg, record};
use futures::future::join_all;
use scimgate::store::brake::{BrakeChange, Thresholds, Verdict};
use scimgate::store::sqlite::SqliteStore;
use scimgate::store::Store;

const TEN: Thresholds = Thresholds {
    max_count: 10,
    max_percent: None,
    min_count: 0,
    window_secs: 3600,
};

fn admit(thresholds: Thresholds) -> BrakeChange {
    BrakeChange::Admit {
        thresholds,
        managed: 0,
    }
}

/// `n` admissions of `tenant` at once through `stores` (round robin): their verdicts.
async fn burst(stores: &[&dyn Store], tenant: &str, n: usize, now: i64) -> Vec<Verdict> {
    let calls = (0..n).map(|i| stores[i % stores.len()].change_brake(tenant, admit(TEN), now));
    join_all(calls)
        .await
        .into_iter()
        .map(|o| o.unwrap().verdict)
        .collect()
}

fn tally(verdicts: &[Verdict]) -> (usize, usize, usize) {
    let n = |v: Verdict| verdicts.iter().filter(|&&x| x == v).count();
    (
        n(Verdict::Admitted),
        n(Verdict::Held { tripped: true }),
        n(Verdict::Held { tripped: false }),
    )
}

pub async fn a_burst_lets_exactly_the_threshold_through_and_the_tenant_stays_held(
    store: &dyn Store,
) {
    let verdicts = burst(&[store], "acme", 40, 1_000).await;
    assert_eq!(tally(&verdicts), (10, 1, 29), "{verdicts:?}");
    let brakes = store.brakes(Some("acme")).await.unwrap();
    let (_, s) = &brakes[0];
    assert_eq!((s.count, s.held_requests, s.trips), (10, 30, 1));
    assert_eq!(s.held_since.map(|t| t == 1_000), Some(true));
    let later = store
        .change_brake("acme", admit(TEN), 1_000 + 7_200)
        .await
        .unwrap();
    assert_eq!(
        later.verdict,
        Verdict::Held { tripped: false },
        "held past the window's end, until released"
    );
}

pub async fn a_release_opens_a_fresh_window_with_its_allowance(store: &dyn Store) {
    burst(&[store], "acme", 11, 1_000).await;
    let released = store
        .change_brake("acme", BrakeChange::Release { allow: 5 }, 2_000)
        .await
        .unwrap();
    assert_eq!(released.state.held_since, None);
    assert_eq!(released.state.released_at, Some(2_000));
    let verdicts = burst(&[store], "acme", 16, 2_001).await;
    assert_eq!(tally(&verdicts), (15, 1, 0), "10 + an allowance of 5");
    let held = store
        .change_brake("umbrella", BrakeChange::Hold, 3_000)
        .await
        .unwrap();
    assert_eq!(held.state.held_since, Some(3_000));
    let refused = store
        .change_brake("umbrella", admit(TEN), 3_001)
        .await
        .unwrap();
    assert_eq!(refused.verdict, Verdict::Held { tripped: false });
    assert_eq!(refused.state.trips, 0, "a hold by hand is not a trip");
}

pub async fn the_share_counts_the_tenants_managed_users(store: &dyn Store) {
    for i in 0..50 {
        store
            .put("acme", &format!("u{i:02}"), &record(&format!("e{i}"), true))
            .await
            .unwrap();
    }
    for i in 0..500 {
        let id = format!("u{i:03}");
        store.put("big", &id, &record(&id, true)).await.unwrap();
    }
    let share = Thresholds {
        max_count: 1_000,
        max_percent: Some(10),
        min_count: 1,
        window_secs: 3600,
    };
    let first = store.change_brake("acme", admit(share), 1).await.unwrap();
    assert_eq!(
        first.limit, 5,
        "10 % of acme's 50, not of every tenant's 550"
    );
    for _ in 0..4 {
        store.change_brake("acme", admit(share), 1).await.unwrap();
    }
    let sixth = store.change_brake("acme", admit(share), 1).await.unwrap();
    assert_eq!(sixth.verdict, Verdict::Held { tripped: true });
}

pub async fn brakes_are_per_tenant_and_listed_by_name(store: &dyn Store) {
    assert!(store.brakes(None).await.unwrap().is_empty());
    burst(&[store], "umbrella", 11, 1).await;
    burst(&[store], "acme", 3, 1).await;
    let all = store.brakes(None).await.unwrap();
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["acme", "umbrella"]);
    assert_eq!(all[0].1.held_since, None);
    assert_eq!(all[0].1.count, 3);
    assert!(all[1].1.held_since.is_some());
    assert!(store.brakes(Some("initech")).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_brake_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    {
        let store = SqliteStore::open(&path).unwrap();
        burst(&[&store], "acme", 12, 1_000).await;
    }
    let store = SqliteStore::open(&path).unwrap();
    let (_, s) = store.brakes(Some("acme")).await.unwrap().remove(0);
    assert_eq!(
        (s.count, s.held_requests, s.held_since),
        (10, 2, Some(1_000))
    );
    let next = store.change_brake("acme", admit(TEN), 1_001).await.unwrap();
    assert_eq!(next.verdict, Verdict::Held { tripped: false });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_database_count_together_and_survive_a_restart() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let a = gateway_on(&db, |_| {}).await;
    let b = gateway_on(&db, |_| {}).await;
    let verdicts = burst(&[&a, &b], "acme", 30, 1_000).await;
    assert_eq!(tally(&verdicts), (10, 1, 19), "{verdicts:?}");
    drop((a, b));
    let restarted = gateway_on(&db, |_| {}).await;
    let (_, s) = restarted.brakes(Some("acme")).await.unwrap().remove(0);
    assert_eq!((s.count, s.held_requests, s.trips), (10, 20, 1));
    assert!(s.held_since.is_some());
}
