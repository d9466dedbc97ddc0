//! PostgreSQL's index of work email addresses (migration 11): the gateway computes each user's
//! addresses as the database would; rows written without them or with a stale hash (`store
//! copy`, a gateway of a build before migration 8, a hand edit) get them from the resource; and
//! a gateway of a build before migration 11, which looks them up in `work_emails`, still finds
//! them during a rolling upgrade.

use crate::migrations::versions;
use crate::pg;
use scimgate::store::postgres::{migrate_up_to, schema_version, work_email_set, PostgresStore};
use scimgate::store::{Store, UserRecord};
use serde_json::{json, Value};

fn user(emails: Value) -> UserRecord {
    UserRecord {
        shadow: json!({"userName": "u", "emails": emails}),
        managed: true,
        created: "c".into(),
        last_modified: "m".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_work_addresses_are_the_databases() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    PostgresStore::open(&db.settings()).await.unwrap();
    let client = db.client().await;
    for shadow in [
        json!({"emails": [{"type": "Work", "value": "Zed@X.test"}, {"type": "WORK", "value": "zed@x.TEST"}]}),
        json!({"emails": [{"type": "wor\u{212A}", "value": "\u{212A}@x.test"}, {"type": "home", "value": "h@x.test"}]}),
        json!({"emails": [{"type": "work", "value": 7}, {"value": "untyped@x.test"}, "text", [1]]}),
        json!({"emails": [{"type": true, "value": "t@x.test"}, {"type": "work", "value": "b@x.test"}, {"type": "work", "value": "a@x.test"}]}),
        json!({"emails": {"type": "work", "value": "not-a-list@x.test"}}),
        json!({"name": {"givenName": "no emails"}}),
    ] {
        let row = client
            .query_one("SELECT scimgate_work_email_set($1)", &[&shadow.to_string()])
            .await
            .unwrap();
        let database: Vec<String> = row.get(0);
        assert_eq!(work_email_set(&shadow), database, "{shadow}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_addresses_follow_every_write_also_from_an_older_gateway() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let store = PostgresStore::open(&db.settings()).await.unwrap();
    let found = |email: &'static str| {
        let store = &store;
        async move { store.find_by_work_email("acme", email).await.unwrap() }
    };
    let work = |v: &str| json!([{"type": "work", "value": v}]);
    store
        .put("acme", "u1", &user(work("a@x.test")))
        .await
        .unwrap();
    assert_eq!(found("A@x.test").await, ["u1"]);
    // An update that keeps the addresses keeps them found.
    let mut renamed = user(work("a@x.test"));
    renamed.shadow["displayName"] = json!("Ann");
    store.put("acme", "u1", &renamed).await.unwrap();
    assert_eq!(found("a@x.test").await, ["u1"]);
    store
        .put("acme", "u1", &user(work("b@x.test")))
        .await
        .unwrap();
    assert!(found("a@x.test").await.is_empty());
    assert_eq!(found("b@x.test").await, ["u1"]);

    // A writer of the resource alone (an old build, a hand edit): the database parses it.
    db.execute(
        r#"UPDATE users SET shadow = '{"emails": [{"type": "work", "value": "c@x.test"}]}'
           WHERE tenant = 'acme' AND id = 'u1'"#,
    );
    assert!(found("b@x.test").await.is_empty());
    assert_eq!(found("c@x.test").await, ["u1"]);
    // The next write of this build names the addresses the row's stale columns hold.
    store
        .put("acme", "u1", &user(work("b@x.test")))
        .await
        .unwrap();
    assert!(found("c@x.test").await.is_empty());
    assert_eq!(found("b@x.test").await, ["u1"]);

    // Rows inserted without the columns (`store copy`) are indexed from the resource.
    db.execute(
        r#"INSERT INTO users (tenant, id, shadow, managed, created, last_modified)
           VALUES ('acme', 'u2', '{"emails": [{"type": "work", "value": "d@x.test"}]}', true, 'c', 'm')"#,
    );
    assert_eq!(found("d@x.test").await, ["u2"]);
    store.delete("acme", "u2").await.unwrap();
    assert!(found("d@x.test").await.is_empty());
}

/// How a gateway of a build before migration 11 looks a work address up.
const OLDER_BUILDS_LOOKUP: &str = "SELECT id FROM work_emails WHERE tenant = $1 \
                                   AND email = lower($2::text COLLATE \"C\") ORDER BY id";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_of_an_older_build_still_finds_every_work_address() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    // The older gateway prepared its lookup, and ran it, before the database was migrated.
    let mut client = db.client().await;
    migrate_up_to(&mut client, 10).await.unwrap();
    let older = client.prepare(OLDER_BUILDS_LOOKUP).await.unwrap();
    assert!(client
        .query(&older, &[&"acme", &"kim@x.test"])
        .await
        .unwrap()
        .is_empty());
    let store = PostgresStore::open(&db.settings()).await.unwrap();
    let work =
        |v: &str| json!([{"type": "work", "value": v}, {"type": "home", "value": "h@x.test"}]);
    for (id, email) in [
        ("u2", "kim@x.test"),
        ("u1", "KIM@x.test"),
        ("u3", "lee@x.test"),
    ] {
        store.put("acme", id, &user(work(email))).await.unwrap();
    }
    store
        .put("other", "u0", &user(work("kim@x.test")))
        .await
        .unwrap();
    let ids =
        |rows: Vec<tokio_postgres::Row>| -> Vec<String> { rows.iter().map(|r| r.get(0)).collect() };
    let kim = client
        .query(&older, &[&"acme", &"Kim@X.test"])
        .await
        .unwrap();
    assert_eq!(ids(kim), ["u1", "u2"]);
    assert!(client
        .query(&older, &[&"acme", &"h@x.test"])
        .await
        .unwrap()
        .is_empty());
    store.delete("acme", "u1").await.unwrap();
    let kim = client
        .query(&older, &[&"acme", &"kim@x.test"])
        .await
        .unwrap();
    assert_eq!(ids(kim), ["u2"]);
    assert_eq!(
        store
            .find_by_work_email("acme", "KIM@X.TEST")
            .await
            .unwrap(),
        ["u2"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_schema_10_is_upgraded_with_every_address_found() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    migrate_up_to(&mut db.client().await, 10).await.unwrap();
    // A row as a gateway of schema 10 wrote it (addresses and hash), and one as `store copy`
    // wrote it (the resource alone).
    db.execute(
        r#"INSERT INTO users (tenant, id, shadow, managed, created, last_modified,
               work_email_set, work_email_of)
           SELECT 'acme', 'u1', s, true, 'c', 'm', '{a@x.test}', sha256(convert_to(s, 'UTF8'))
           FROM (VALUES ('{"emails": [{"type": "work", "value": "A@x.test"}]}')) AS v(s);
           INSERT INTO users (tenant, id, shadow, managed, created, last_modified)
           VALUES ('acme', 'u2', '{"emails": [{"type": "work", "value": "b@x.test"}]}', true, 'c', 'm')"#,
    );
    let store = PostgresStore::open(&db.settings()).await.unwrap();
    assert_eq!(versions(&db).await.last(), Some(&schema_version()));
    assert_eq!(
        store.find_by_work_email("acme", "a@x.test").await.unwrap(),
        ["u1"]
    );
    assert_eq!(
        store.find_by_work_email("acme", "B@X.test").await.unwrap(),
        ["u2"]
    );
}
