//! What every store engine promises, as functions of a store (main.rs runs each on every engine).

use crate::record;
use scimgate::store::{GroupRecord, ResourceKey, Store, UserRecord};
use serde_json::{json, Value};
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
    for id in ["usr_ann", "usr_cy", "usr_dee", "usr_eli"] {
        assert!(
            holds_at_once(store, "acme", ResourceKey::User(id)).await,
            "{id} is another key"
        );
    }
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

/// Whether every connection of the engine's notifications pool is open: a PostgreSQL store's
/// record cache is then in use. True on engines without one.
pub fn notified(store: &dyn Store) -> bool {
    store
        .pools()
        .iter()
        .filter(|p| p.pool == "notifications")
        .all(|p| p.open == p.max)
}

/// Waits (at most 10 s) until [`notified`].
pub async fn until_notified(store: &dyn Store) {
    let started = std::time::Instant::now();
    while !notified(store) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no notifications: {:?}",
            store.pools()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What reads that show users get follows the store's own writes at once, cached or not.
pub async fn records_to_show_follow_this_stores_writes_at_once(store: &dyn Store) {
    until_notified(store).await;
    let ids = ["usr_a".to_string(), "usr_b".to_string()];
    store
        .put("acme", "usr_a", &record("ext-1", true))
        .await
        .unwrap();
    for _ in 0..2 {
        let shown = store.get_many_to_show("acme", &ids).await.unwrap();
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert_eq!(shown["usr_a"], record("ext-1", true));
    }
    store
        .put("acme", "usr_a", &record("ext-2", false))
        .await
        .unwrap();
    store
        .put("acme", "usr_b", &record("ext-3", true))
        .await
        .unwrap();
    let shown = store.get_many_to_show("acme", &ids).await.unwrap();
    assert_eq!(shown["usr_a"], record("ext-2", false));
    assert_eq!(shown["usr_b"], record("ext-3", true));
    assert_eq!(
        store
            .get_many_to_show("umbrella", &ids)
            .await
            .unwrap()
            .len(),
        0,
        "another tenant's users are others"
    );
    store.delete("acme", "usr_a").await.unwrap();
    let shown = store.get_many_to_show("acme", &ids).await.unwrap();
    assert_eq!(shown.keys().collect::<Vec<_>>(), ["usr_b"]);
    assert_eq!(shown, store.get_many("acme", &ids).await.unwrap());
}

/// A group rename holds the group and its new name: no two different keys may wait on each
/// other, however many one request holds.
pub async fn one_request_holds_many_different_keys_at_once(store: &dyn Store) {
    // More keys than a table of 256 shared lock stripes has: two of them would share one.
    let ids: Vec<String> = (0..300).map(|n| format!("grp_{n:03}")).collect();
    let mut held = Vec::new();
    for id in &ids {
        let group = tokio::time::timeout(WAIT, store.serialise("acme", ResourceKey::Group(id)))
            .await
            .unwrap_or_else(|_| panic!("{id} waited on a key held by the same request"))
            .unwrap();
        let name = tokio::time::timeout(WAIT, store.serialise("acme", ResourceKey::GroupName(id)))
            .await
            .unwrap_or_else(|_| panic!("the name {id} waited on a key held by the same request"))
            .unwrap();
        held.push((group, name));
    }
    assert!(!holds_at_once(store, "acme", ResourceKey::Group("GRP_042")).await);
    drop(held);
    assert!(holds_at_once(store, "acme", ResourceKey::Group("grp_042")).await);
}

pub async fn a_user_name_is_reserved_ignoring_case(store: &dyn Store) {
    let held = store
        .serialise("acme", ResourceKey::UserName("Alice@Acme.test"))
        .await
        .unwrap();
    assert!(!holds_at_once(store, "acme", ResourceKey::UserName("alice@acme.TEST")).await);
    for tenant in ["t1", "t2", "t3", "t4"] {
        assert!(
            holds_at_once(store, tenant, ResourceKey::UserName("alice@acme.test")).await,
            "another tenant's name is another key"
        );
    }
    drop(held);
    assert!(holds_at_once(store, "acme", ResourceKey::UserName("alice@acme.test")).await);
}

pub async fn a_users_hold_comes_with_its_record(store: &dyn Store) {
    store
        .put("acme", "usr_bob", &record("ext-bob", true))
        .await
        .unwrap();
    let (held, read) = store
        .serialise_user_and_get("acme", "usr_bob")
        .await
        .unwrap();
    assert_eq!(read.unwrap().shadow["externalId"], "ext-bob");
    assert!(!holds_at_once(store, "acme", ResourceKey::User("USR_BOB")).await);
    drop(held);
    let (held, read) = store
        .serialise_user_and_get("acme", "usr_ann")
        .await
        .unwrap();
    assert!(read.is_none(), "no record, held all the same");
    assert!(!holds_at_once(store, "acme", ResourceKey::User("usr_ann")).await);
    drop(held);
    assert!(holds_at_once(store, "acme", ResourceKey::User("usr_ann")).await);
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

/// A group record with this externalId and flag, for displayName `Admins`.
pub fn group(ext: &str, managed: bool) -> GroupRecord {
    GroupRecord {
        shadow: json!({"displayName": "Admins", "externalId": ext}),
        managed,
        created: "2026-02-01T00:00:00Z".into(),
        last_modified: "2026-02-02T00:00:00Z".into(),
    }
}

/// `n` user ids.
fn user_ids(n: usize) -> Vec<String> {
    (0..n).map(|n| format!("usr_{n:04}")).collect()
}

pub async fn group_records_round_trip(store: &dyn Store) {
    store
        .put_group("acme", "g7", &group("ext-1", true))
        .await
        .unwrap();
    store
        .put_group("acme", "g8", &group("ext-8", false))
        .await
        .unwrap();
    assert_eq!(
        store.get_group("acme", "g7").await.unwrap(),
        Some(group("ext-1", true))
    );
    assert_eq!(store.get_group("other", "g7").await.unwrap(), None);
    assert_eq!(
        store.get("acme", "g7").await.unwrap(),
        None,
        "a group is no user"
    );
    store
        .put("acme", "u1", &record("ext-u", true))
        .await
        .unwrap();
    assert_eq!(
        store.get_group("acme", "u1").await.unwrap(),
        None,
        "a user is no group"
    );
    let ids = ["g7".to_string(), "g8".into(), "g9".into(), "g7".into()];
    let many = store.get_groups("acme", &ids).await.unwrap();
    assert_eq!(many.len(), 2);
    assert_eq!(many["g8"], group("ext-8", false));
    assert!(store.get_groups("acme", &[]).await.unwrap().is_empty());
    assert!(store.get_groups("other", &ids).await.unwrap().is_empty());
    let mut renamed = group("ext-2", false);
    renamed.shadow = json!({"displayName": "Admins 2", "externalId": "ext-2", "x": [1, 2.5]});
    renamed.last_modified = "2026-02-03T00:00:00Z".into();
    store.put_group("acme", "g7", &renamed).await.unwrap();
    let back = store.get_group("acme", "g7").await.unwrap().unwrap();
    assert_eq!(back, renamed, "overwritten");
    assert_eq!(back.shadow.to_string(), renamed.shadow.to_string());
    store.delete_group("acme", "g7").await.unwrap();
    assert_eq!(store.get_group("acme", "g7").await.unwrap(), None);
    store.delete_group("acme", "g7").await.unwrap();
    assert_eq!(
        store.get_group("acme", "g8").await.unwrap(),
        Some(group("ext-8", false))
    );
    assert_eq!(store.all("acme").await.unwrap().len(), 1, "users untouched");
}

pub async fn group_external_ids_are_found_case_exactly_and_follow_replacements(store: &dyn Store) {
    let find = |ext: &'static str| store.find_groups_by_external_id("acme", ext);
    store
        .put_group("acme", "g7", &group("ext-1", true))
        .await
        .unwrap();
    store
        .put("acme", "u1", &record("ext-1", true))
        .await
        .unwrap();
    assert_eq!(find("ext-1").await.unwrap(), ["g7"], "groups only");
    assert!(find("EXT-1").await.unwrap().is_empty(), "case-exact");
    store
        .put_group("acme", "g7", &group("ext-2", true))
        .await
        .unwrap();
    assert!(find("ext-1").await.unwrap().is_empty());
    store
        .put_group("acme", "g3", &group("ext-2", false))
        .await
        .unwrap();
    store
        .put_group("acme", "G5", &group("ext-2", false))
        .await
        .unwrap();
    assert_eq!(
        find("ext-2").await.unwrap(),
        ["G5", "g3", "g7"],
        "every holder, in byte order"
    );
    assert!(store
        .find_groups_by_external_id("other", "ext-2")
        .await
        .unwrap()
        .is_empty());
    let mut without = group("x", true);
    without.shadow = json!({"displayName": "No ext"});
    assert_eq!(without.external_id(), None);
    store.put_group("acme", "g3", &without).await.unwrap();
    assert_eq!(find("ext-2").await.unwrap(), ["G5", "g7"]);
    store.delete_group("acme", "g7").await.unwrap();
    assert_eq!(find("ext-2").await.unwrap(), ["G5"], "a deleted group");
}

pub async fn pending_group_creates_are_kept_until_recorded_or_cleared(store: &dyn Store) {
    store
        .put_pending_group_create("acme", "ADMINS", &group("ext-1", true))
        .await
        .unwrap();
    let pending = store
        .pending_group_create("acme", "admins")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.shadow, group("ext-1", true).shadow);
    assert!(pending.managed);
    assert_eq!(pending.created, group("ext-1", true).created);
    assert_eq!(pending.last_modified, pending.created);
    assert!(store
        .pending_group_create("other", "admins")
        .await
        .unwrap()
        .is_none());
    assert!(
        store
            .pending_create("acme", "admins")
            .await
            .unwrap()
            .is_none(),
        "a group's note is no user's"
    );
    store
        .put_pending_group_create("acme", "Admins", &group("ext-again", true))
        .await
        .unwrap();
    let again = store.pending_group_create("acme", "aDmInS").await.unwrap();
    assert_eq!(
        again.unwrap().shadow["externalId"],
        "ext-again",
        "a note again replaces the first"
    );
    store
        .put_group("acme", "g1", &group("ext-1", true))
        .await
        .unwrap();
    assert!(
        store
            .pending_group_create("acme", "admins")
            .await
            .unwrap()
            .is_none(),
        "recording the group (displayName Admins) clears it"
    );
    store
        .put_pending_group_create("acme", "Staff", &group("ext-9", true))
        .await
        .unwrap();
    store
        .clear_pending_group_create("acme", "STAFF")
        .await
        .unwrap();
    assert!(store
        .pending_group_create("acme", "staff")
        .await
        .unwrap()
        .is_none());
    store
        .clear_pending_group_create("acme", "staff")
        .await
        .unwrap();
}

pub async fn memberships_are_added_and_removed_idempotently(store: &dyn Store) {
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    store
        .add_memberships("acme", "g1", &ids(&["u2", "u1", "U3"]))
        .await
        .unwrap();
    store
        .add_memberships("acme", "g1", &ids(&["u1", "u4", "u4"]))
        .await
        .unwrap();
    assert_eq!(
        store.managed_members("acme", "g1").await.unwrap(),
        ["U3", "u1", "u2", "u4"],
        "each once, ordered"
    );
    store.add_memberships("acme", "g1", &[]).await.unwrap();
    store
        .remove_memberships("acme", "g1", &ids(&["u1", "u9", "u1"]))
        .await
        .unwrap();
    store
        .remove_memberships("acme", "g1", &ids(&["u1"]))
        .await
        .unwrap();
    store.remove_memberships("acme", "g1", &[]).await.unwrap();
    assert_eq!(
        store.managed_members("acme", "g1").await.unwrap(),
        ["U3", "u2", "u4"]
    );
    store
        .remove_memberships("acme", "g1", &ids(&["u3"]))
        .await
        .unwrap();
    assert_eq!(
        store.managed_members("acme", "g1").await.unwrap().len(),
        3,
        "removal compares ids exactly"
    );
    assert!(store
        .managed_members("acme", "g2")
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .managed_members("other", "g1")
        .await
        .unwrap()
        .is_empty());
}

pub async fn a_thousand_memberships_change_at_once(store: &dyn Store) {
    let users = user_ids(1000);
    let started = std::time::Instant::now();
    store.add_memberships("acme", "g1", &users).await.unwrap();
    store.add_memberships("acme", "g1", &users).await.unwrap();
    assert_eq!(store.managed_members("acme", "g1").await.unwrap(), users);
    for user in [&users[0], &users[999]] {
        assert!(store
            .is_managed_membership("acme", "g1", user)
            .await
            .unwrap());
    }
    store
        .remove_memberships("acme", "g1", &users[..600])
        .await
        .unwrap();
    assert_eq!(
        store.managed_members("acme", "g1").await.unwrap(),
        users[600..]
    );
    store
        .remove_memberships("acme", "g1", &users)
        .await
        .unwrap();
    assert!(store
        .managed_members("acme", "g1")
        .await
        .unwrap()
        .is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a few statements, not thousands: {:?}",
        started.elapsed()
    );
}

pub async fn deleting_a_group_or_a_user_forgets_their_memberships(store: &dyn Store) {
    let users = user_ids(3);
    store
        .put_group("acme", "g1", &group("e1", true))
        .await
        .unwrap();
    store
        .put_group("acme", "g2", &group("e2", true))
        .await
        .unwrap();
    for user in &users {
        store.put("acme", user, &record(user, true)).await.unwrap();
    }
    store.add_memberships("acme", "g1", &users).await.unwrap();
    store.add_memberships("acme", "g2", &users).await.unwrap();
    store.add_memberships("other", "g1", &users).await.unwrap();
    store.delete_group("acme", "g1").await.unwrap();
    assert!(store
        .managed_members("acme", "g1")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.managed_members("acme", "g2").await.unwrap(), users);
    assert_eq!(
        store.managed_members("other", "g1").await.unwrap(),
        users,
        "another tenant's group of that id"
    );
    store
        .put_group("acme", "g1", &group("e1", true))
        .await
        .unwrap();
    assert!(
        store
            .managed_members("acme", "g1")
            .await
            .unwrap()
            .is_empty(),
        "a group made again with that id starts with no members"
    );
    store
        .add_memberships("acme", "g1", &users[..1])
        .await
        .unwrap();
    store.delete("acme", &users[0]).await.unwrap();
    assert!(store
        .managed_members("acme", "g1")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.managed_members("acme", "g2").await.unwrap(),
        users[1..]
    );
    assert_eq!(
        store.managed_members("other", "g1").await.unwrap(),
        users,
        "another tenant's user of that id"
    );
    store.delete("acme", "USR_0001").await.unwrap();
    assert_eq!(
        store.managed_members("acme", "g2").await.unwrap(),
        users[1..],
        "a delete compares the id exactly"
    );
    store.delete("acme", "never-recorded").await.unwrap();
}

pub async fn managed_memberships_are_found_ignoring_ascii_case_per_tenant(store: &dyn Store) {
    let users = ["usr_Bob".to_string(), "usr_Émile".into()];
    store
        .add_memberships("acme", "Grp_Admins", &users)
        .await
        .unwrap();
    let managed = |tenant: &'static str, group: &'static str, user: &'static str| {
        store.is_managed_membership(tenant, group, user)
    };
    assert!(managed("acme", "Grp_Admins", "usr_Bob").await.unwrap());
    assert!(managed("acme", "grp_admins", "USR_BOB").await.unwrap());
    assert!(managed("acme", "GRP_ADMINS", "USR_Émile").await.unwrap());
    assert!(
        !managed("acme", "grp_admins", "usr_émile").await.unwrap(),
        "ASCII letters only, as a case-insensitive backend compares ids"
    );
    assert!(!managed("acme", "grp_admins", "usr_eve").await.unwrap());
    assert!(!managed("acme", "grp_staff", "usr_bob").await.unwrap());
    assert!(!managed("acme", "usr_bob", "grp_admins").await.unwrap());
    assert!(
        !managed("other", "grp_admins", "usr_bob").await.unwrap(),
        "other tenant"
    );
    assert!(!managed("acme", "grp_admins", "usr_b\0ob").await.unwrap());
    store
        .remove_memberships("acme", "Grp_Admins", &users[..1])
        .await
        .unwrap();
    assert!(!managed("acme", "grp_admins", "usr_bob").await.unwrap());
    assert!(managed("acme", "grp_admins", "usr_Émile").await.unwrap());
}

pub async fn group_keys_exclude_each_other_only(store: &dyn Store) {
    assert_eq!(ResourceKey::Group("Grp_X").folded(), "group:grp_x");
    assert_eq!(
        ResourceKey::GroupName("Admins").folded(),
        "groupName:admins"
    );
    let held = store
        .serialise("acme", ResourceKey::Group("grp_admins"))
        .await
        .unwrap();
    assert!(!holds_at_once(store, "acme", ResourceKey::Group("grp_admins")).await);
    assert!(
        !holds_at_once(store, "acme", ResourceKey::Group("GRP_ADMINS")).await,
        "ids are compared ignoring case"
    );
    for other in [
        ResourceKey::User("grp_admins"),
        ResourceKey::UserName("grp_admins"),
        ResourceKey::GroupName("grp_admins"),
    ] {
        assert!(holds_at_once(store, "acme", other).await, "{other:?}");
    }
    let name = store
        .serialise("acme", ResourceKey::GroupName("Admins"))
        .await
        .unwrap();
    assert!(!holds_at_once(store, "acme", ResourceKey::GroupName("ADMINS")).await);
    for other in [
        ResourceKey::Group("admins"),
        ResourceKey::User("admins"),
        ResourceKey::UserName("admins"),
    ] {
        assert!(holds_at_once(store, "acme", other).await, "{other:?}");
    }
    for tenant in ["t1", "t2", "t3", "t4"] {
        assert!(
            holds_at_once(store, tenant, ResourceKey::GroupName("admins")).await,
            "another tenant's name is another key"
        );
    }
    drop((held, name));
    assert!(holds_at_once(store, "acme", ResourceKey::Group("grp_admins")).await);
    assert!(holds_at_once(store, "acme", ResourceKey::GroupName("admins")).await);
}

/// Many creates at once, as a busy gateway makes them (PostgreSQL sends them in batches): each
/// note, record and work address lands as written, and each record clears its own note.
pub async fn concurrent_creates_each_land_whole(store: &dyn Store) {
    const N: usize = 40;
    let user = |n: usize| UserRecord {
        shadow: json!({
            "userName": format!("U{n}@x.test"),
            "externalId": if n.is_multiple_of(3) { Value::Null } else { json!(format!("ext-{n}")) },
            "emails": [
                {"type": "work", "value": format!("u{n}@x.test")},
                {"type": "work", "value": format!(r#"q"u\o,{{t}}e {n}@x.test"#)},
            ],
        }),
        managed: n.is_multiple_of(2),
        created: format!("c{n}"),
        last_modified: format!("m{n}"),
    };
    // Two tenants with the same user names, each recording a different half, so that a batch
    // mixes them and a note cleared in the wrong tenant shows.
    let tenants = ["acme", "globex"];
    let recorded = |tenant: &str, n: usize| match tenant {
        "acme" => n < N / 2,
        _ => (N / 4..3 * N / 4).contains(&n),
    };
    let notes = tenants.iter().flat_map(|&t| {
        (0..N).map(move |n| async move {
            store
                .put_pending_create(t, &format!("U{n}@x.test"), &user(n))
                .await
        })
    });
    for noted in futures::future::join_all(notes).await {
        noted.unwrap();
    }
    for (t, n) in tenants.iter().flat_map(|&t| (0..N).map(move |n| (t, n))) {
        let note = store.pending_create(t, &format!("u{n}@x.test")).await;
        assert_eq!(
            note.unwrap().unwrap().shadow,
            user(n).shadow,
            "{t} note {n}"
        );
    }
    let records = (0..N)
        .flat_map(|n| tenants.map(|t| (t, n)))
        .filter(|&(t, n)| recorded(t, n));
    let records = records.map(|(t, n)| async move {
        let (id, rec) = (format!("{t}-{n}"), user(n));
        store.put(t, &id, &rec).await
    });
    for put in futures::future::join_all(records).await {
        put.unwrap();
    }
    for (t, n) in tenants.iter().flat_map(|&t| (0..N).map(move |n| (t, n))) {
        let pending = store.pending_create(t, &format!("u{n}@x.test")).await;
        assert_eq!(pending.unwrap().is_some(), !recorded(t, n), "{t} note {n}");
        let id = format!("{t}-{n}");
        if !recorded(t, n) {
            assert_eq!(store.get(t, &id).await.unwrap(), None, "{t} {id}");
            continue;
        }
        assert_eq!(store.get(t, &id).await.unwrap(), Some(user(n)), "{t} {id}");
        let odd = format!(r#"Q"U\O,{{T}}E {n}@x.test"#);
        assert_eq!(
            store.find_by_work_email(t, &odd).await.unwrap(),
            std::slice::from_ref(&id)
        );
        let ext = store.find_by_external_id(t, &format!("ext-{n}")).await;
        let expected: &[String] = if n.is_multiple_of(3) {
            &[]
        } else {
            std::slice::from_ref(&id)
        };
        assert_eq!(ext.unwrap(), expected, "{t} {id}");
    }
}
