//! PostgreSQL's index of work email addresses (migration 8): the gateway computes each user's
//! addresses as the database would, the trigger runs on an update only when they change, and
//! rows written without them (a gateway of an older build, `store copy`) are still indexed
//! from the resource.

use crate::pg;
use scimgate::store::postgres::{work_email_set, PostgresStore};
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
    // An update that keeps the addresses (no trigger run) keeps them found.
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

    // A gateway of an older build writes the resource alone: the database parses it.
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
