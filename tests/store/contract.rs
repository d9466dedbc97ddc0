//! What every store engine promises, as functions of a store (main.rs runs each on every engine).

use crate::record;
use scimgate::store::{ResourceKey, Store, UserRecord};
use serde_json::json;
use std::time::Duration;

/// Long enough for a free hold to be taken at once, short enough to wait out a held one.
const WAIT: Duration = Duration::from_millis(300);

pub async fn records_round_trip(store: &dyn Store) {
    store
        .put("acme", "7", &record("ext-1", true))
        .await
        .unwrap();
    store
        .put("acme", "8", &record("ext-8", false))
        .await
        .unwrap();
    assert_eq!(
        store.get("acme", "7").await.unwrap(),
        Some(record("ext-1", true))
    );
    assert_eq!(store.get("other", "7").await.unwrap(), None);
    let ids = ["7".to_string(), "8".into(), "9".into()];
    let many = store.get_many("acme", &ids).await.unwrap();
    assert_eq!(many.len(), 2);
    assert_eq!(many["8"], record("ext-8", false));
    assert!(store.get_many("acme", &[]).await.unwrap().is_empty());
    let all = store.all("acme").await.unwrap();
    assert_eq!(
        all.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        ["7", "8"]
    );
    assert_eq!(all[0].1, record("ext-1", true));
    assert!(store.all("other").await.unwrap().is_empty());
    store
        .put("acme", "7", &record("ext-2", true))
        .await
        .unwrap();
    assert_eq!(
        store.get("acme", "7").await.unwrap().unwrap().shadow["externalId"],
        "ext-2"
    );
    store.delete("acme", "7").await.unwrap();
    assert_eq!(store.get("acme", "7").await.unwrap(), None);
    store.delete("acme", "7").await.unwrap();
    store.check_writable().await.unwrap();
    store.check_writable().await.unwrap();
}

pub async fn external_ids_are_found_case_exactly_and_follow_replacements(store: &dyn Store) {
    store
        .put("acme", "7", &record("ext-1", true))
        .await
        .unwrap();
    assert_eq!(
        store.find_by_external_id("acme", "ext-1").await.unwrap(),
        ["7"]
    );
    assert!(store
        .find_by_external_id("acme", "EXT-1")
        .await
        .unwrap()
        .is_empty());
    store
        .put("acme", "7", &record("ext-2", true))
        .await
        .unwrap();
    assert!(store
        .find_by_external_id("acme", "ext-1")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.find_by_external_id("acme", "ext-2").await.unwrap(),
        ["7"]
    );
    store
        .put("acme", "3", &record("ext-2", false))
        .await
        .unwrap();
    assert_eq!(
        store.find_by_external_id("acme", "ext-2").await.unwrap(),
        ["3", "7"],
        "every holder, ordered"
    );
    assert!(store
        .find_by_external_id("other", "ext-2")
        .await
        .unwrap()
        .is_empty());
    let mut without = record("x", true);
    without.shadow = json!({"userName": "n@b.c"});
    store.put("acme", "9", &without).await.unwrap();
    assert_eq!(store.get("acme", "9").await.unwrap(), Some(without));
}

pub async fn managed_flag_exactly_and_ignoring_case(store: &dyn Store) {
    store
        .put("acme", "usr_Bob", &record("b", true))
        .await
        .unwrap();
    store
        .put("acme", "usr_eve", &record("e", false))
        .await
        .unwrap();
    store
        .put("acme", "usr_Émile", &record("m", true))
        .await
        .unwrap();
    assert!(store.is_managed("acme", "usr_Bob").await.unwrap());
    assert!(!store.is_managed("acme", "USR_BOB").await.unwrap(), "exact");
    assert!(store
        .is_managed_ignoring_case("acme", "USR_BOB")
        .await
        .unwrap());
    assert!(
        !store.is_managed("acme", "usr_eve").await.unwrap(),
        "unmanaged record"
    );
    assert!(!store
        .is_managed_ignoring_case("acme", "USR_EVE")
        .await
        .unwrap());
    assert!(store
        .is_managed_ignoring_case("acme", "USR_Émile")
        .await
        .unwrap());
    assert!(
        !store
            .is_managed_ignoring_case("acme", "usr_émile")
            .await
            .unwrap(),
        "ASCII letters only, as a case-insensitive backend compares ids"
    );
    assert!(
        !store.is_managed("other", "usr_Bob").await.unwrap(),
        "other tenant"
    );
    assert!(!store
        .is_managed_ignoring_case("other", "usr_bob")
        .await
        .unwrap());
    assert!(!store.is_managed("acme", "usr_nobody").await.unwrap());
    store
        .put("acme", "usr_Bob", &record("b", false))
        .await
        .unwrap();
    assert!(
        !store.is_managed("acme", "usr_Bob").await.unwrap(),
        "released"
    );
    assert!(!store
        .is_managed_ignoring_case("acme", "usr_bob")
        .await
        .unwrap());
}

pub async fn pending_creates_are_kept_until_recorded_or_cleared(store: &dyn Store) {
    store
        .put_pending_create("acme", "A@B.C", &record("ext-1", true))
        .await
        .unwrap();
    let pending = store
        .pending_create("acme", "a@b.c")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.shadow["externalId"], "ext-1");
    assert!(pending.managed);
    assert_eq!(pending.last_modified, pending.created);
    assert_eq!(pending.created, record("ext-1", true).created);
    assert!(store
        .pending_create("other", "a@b.c")
        .await
        .unwrap()
        .is_none());
    store
        .put_pending_create("acme", "a@b.c", &record("ext-again", true))
        .await
        .unwrap();
    assert_eq!(
        store
            .pending_create("acme", "A@b.c")
            .await
            .unwrap()
            .unwrap()
            .shadow["externalId"],
        "ext-again",
        "a note again replaces the first"
    );
    store
        .put("acme", "7", &record("ext-1", true))
        .await
        .unwrap();
    assert!(
        store
            .pending_create("acme", "a@b.c")
            .await
            .unwrap()
            .is_none(),
        "recording clears it"
    );
    store
        .put_pending_create("acme", "x@y.z", &record("ext-9", true))
        .await
        .unwrap();
    store.clear_pending_create("acme", "X@Y.Z").await.unwrap();
    assert!(store
        .pending_create("acme", "x@y.z")
        .await
        .unwrap()
        .is_none());
}

pub async fn resources_keep_their_attribute_order_and_numbers(store: &dyn Store) {
    let shadow = json!({
        "userName": "z@b.c",
        "name": {"givenName": "Zoë", "familyName": "Ångström"},
        "externalId": "e",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "007"},
        "x-score": 0.1,
        "big": 12345678901234567890u64,
        "emails": [{"value": "z@b.c", "primary": true}],
    });
    let rec = UserRecord {
        shadow: shadow.clone(),
        ..record("e", true)
    };
    store.put("acme", "z", &rec).await.unwrap();
    let back = store.get("acme", "z").await.unwrap().unwrap();
    assert_eq!(back.shadow.to_string(), shadow.to_string());
}

pub async fn ids_are_listed_in_byte_order(store: &dyn Store) {
    for id in ["b", "B", "a", "_x", "10", "9", "é"] {
        store.put("acme", id, &record("same", true)).await.unwrap();
    }
    let want = ["10", "9", "B", "_x", "a", "b", "é"];
    let all = store.all("acme").await.unwrap();
    assert_eq!(
        all.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        want
    );
    assert_eq!(
        store.find_by_external_id("acme", "same").await.unwrap(),
        want
    );
}

pub async fn a_walk_reads_every_record_once_a_page_at_a_time(store: &dyn Store) {
    let ids: Vec<String> = (0..25).map(|n| format!("u{n:02}")).collect();
    for id in ids.iter().rev() {
        store.put("acme", id, &record(id, true)).await.unwrap();
    }
    store.put("other", "u05", &record("x", true)).await.unwrap();
    assert_eq!(store.count("acme").await.unwrap(), 25);
    assert_eq!(store.count("other").await.unwrap(), 1);
    assert_eq!(store.count("nobody").await.unwrap(), 0);
    let (mut walked, mut after, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let page = store.page("acme", after.as_deref(), 10).await.unwrap();
        assert!(page.len() <= 10, "{page:?}");
        pages += 1;
        after = page.last().map(|(id, _)| id.clone());
        let full = page.len() == 10;
        for (id, rec) in page {
            assert_eq!(
                rec.shadow["externalId"],
                id.as_str(),
                "each id with its own record"
            );
            walked.push(id);
        }
        if !full {
            break;
        }
    }
    assert_eq!(walked, ids, "every record once, in id order");
    assert_eq!(pages, 3);
    let rest = store.page("acme", Some("u22"), 10).await.unwrap();
    assert_eq!(
        rest.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        ["u23", "u24"],
        "after a given id, not including it"
    );
    assert!(store
        .page("acme", Some("u24"), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.all("acme").await.unwrap().len(), 25);
}

/// Whether `key` can be held within [`WAIT`].
async fn holds_at_once(store: &dyn Store, tenant: &str, key: ResourceKey<'_>) -> bool {
    tokio::time::timeout(WAIT, store.serialise(tenant, key))
        .await
        .is_ok_and(|held| held.is_ok())
}

pub async fn serialise_excludes_holders_of_one_key_only(store: &dyn Store) {
    let held = store
        .serialise("acme", ResourceKey::User("usr_bob"))
        .await
        .unwrap();
    assert!(!holds_at_once(store, "acme", ResourceKey::User("usr_bob")).await);
    assert!(
        !holds_at_once(store, "acme", ResourceKey::User("USR_BOB")).await,
        "ids are compared ignoring case"
    );
    let mut others = 0;
    for id in ["usr_ann", "usr_cy", "usr_dee", "usr_eli"] {
        others += usize::from(holds_at_once(store, "acme", ResourceKey::User(id)).await);
    }
    assert!(others > 0, "unrelated keys need not wait");
    let waiting = async {
        let started = std::time::Instant::now();
        let _second = store
            .serialise("acme", ResourceKey::User("usr_bob"))
            .await
            .unwrap();
        started.elapsed()
    };
    let release = async {
        tokio::time::sleep(WAIT).await;
        drop(held);
    };
    let (waited, ()) = tokio::join!(waiting, release);
    assert!(waited >= WAIT, "waits while the first holds: {waited:?}");
    assert!(
        holds_at_once(store, "acme", ResourceKey::User("usr_bob")).await,
        "free again once both are dropped"
    );
}

pub async fn a_user_name_is_reserved_ignoring_case(store: &dyn Store) {
    let held = store
        .serialise("acme", ResourceKey::UserName("Alice@Acme.test"))
        .await
        .unwrap();
    assert!(!holds_at_once(store, "acme", ResourceKey::UserName("alice@acme.TEST")).await);
    let mut free = 0;
    for tenant in ["t1", "t2", "t3", "t4"] {
        free += usize::from(
            holds_at_once(store, tenant, ResourceKey::UserName("alice@acme.test")).await,
        );
    }
    assert!(free > 0, "another tenant's name is another key");
    drop(held);
    assert!(holds_at_once(store, "acme", ResourceKey::UserName("alice@acme.test")).await);
}

/// A record whose resource holds these emails.
fn with_emails(emails: serde_json::Value) -> UserRecord {
    UserRecord {
        shadow: json!({"userName": "a@b.c", "emails": emails}),
        ..record("ext", true)
    }
}

pub async fn work_emails_are_found_ignoring_case_and_follow_writes(store: &dyn Store) {
    let find = |email: &'static str| store.find_by_work_email("acme", email);
    let two = json!([
        {"type": "work", "value": "Ann@Acme.test"},
        {"type": "Work", "value": "ann.smith@acme.test"},
        {"type": "home", "value": "ann@home.test"},
        {"type": "work", "value": 7}
    ]);
    store.put("acme", "7", &with_emails(two)).await.unwrap();
    assert_eq!(find("ann@acme.TEST").await.unwrap(), ["7"]);
    assert_eq!(find("ANN.SMITH@acme.test").await.unwrap(), ["7"]);
    assert!(
        find("ann@home.test").await.unwrap().is_empty(),
        "home is not work"
    );
    let kelvin = json!([{"type": "wor\u{212A}", "value": "\u{212A}im@acme.test"}]);
    store.put("acme", "8", &with_emails(kelvin)).await.unwrap();
    assert_eq!(
        find("kim@acme.test").await.unwrap(),
        ["8"],
        "the Kelvin sign folds to k, as the filter folds it"
    );
    let moved = json!([{"type": "work", "value": "ann@acme.test"}]);
    store.put("acme", "3", &with_emails(moved)).await.unwrap();
    assert_eq!(
        find("ann@acme.test").await.unwrap(),
        ["3", "7"],
        "every holder, ordered"
    );
    store
        .put("acme", "7", &with_emails(json!([])))
        .await
        .unwrap();
    assert_eq!(
        find("ann@acme.test").await.unwrap(),
        ["3"],
        "a replaced record"
    );
    assert!(find("ann.smith@acme.test").await.unwrap().is_empty());
    let kept_and_new = json!([
        {"type": "work", "value": "kim@acme.test"},
        {"type": "work", "value": "KIM@acme.test"},
        {"type": "work", "value": "k.new@acme.test"}
    ]);
    for _ in 0..2 {
        store
            .put("acme", "8", &with_emails(kept_and_new.clone()))
            .await
            .unwrap();
        assert_eq!(find("kim@acme.test").await.unwrap(), ["8"], "kept");
        assert_eq!(find("k.new@acme.test").await.unwrap(), ["8"], "added");
    }
    store
        .put("acme", "8", &with_emails(json!("kim@acme.test")))
        .await
        .unwrap();
    assert!(
        find("kim@acme.test").await.unwrap().is_empty(),
        "emails that are not a list hold no address"
    );
    store.delete("acme", "3").await.unwrap();
    assert!(
        find("ann@acme.test").await.unwrap().is_empty(),
        "a deleted record"
    );
    assert!(store
        .find_by_work_email("other", "kim@acme.test")
        .await
        .unwrap()
        .is_empty());
}
