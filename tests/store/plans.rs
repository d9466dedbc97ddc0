//! Every lookup by key the identity providers' cycles make (users, groups, memberships), every
//! page of a walk over a tenant's records, and the lookup of a request's store key by its hash,
//! is one search of its index on PostgreSQL, with enough rows that the planner has a choice
//! (SQLite's plans are checked in the engine's own tests).

use crate::pg;
use scimgate::store::postgres::settings::PLANNER;
use scimgate::store::postgres::{
    PostgresStore, BATCH_LOOKUP, GROUP_LOOKUPS, LIVE_KEY, LOOKUPS, RECORD_BATCH, WORK_EMAIL_LOOKUP,
};

/// Users, groups, pending creates of both and memberships in two tenants, with statistics.
const ROWS: &str = r#"
INSERT INTO users (tenant, id, external_id, shadow, managed, created, last_modified)
    SELECT t, 'u' || lpad(n::text, 6, '0'), 'ext-' || n,
        '{"emails": [{"type": "work", "value": "u' || n || '@acme.test"}]}', n % 2 = 0, 'c', 'm'
    FROM generate_series(1, 5000) AS n, (VALUES ('acme'), ('globex')) AS tenants(t);
INSERT INTO pending_creates (tenant, user_name, shadow, created)
    SELECT 'acme', 'user' || n || '@acme.test', '{}', 'c' FROM generate_series(1, 2000) AS n;
INSERT INTO groups (tenant, id, external_id, shadow, managed, created, last_modified)
    SELECT t, 'g' || lpad(n::text, 6, '0'), 'ext-' || n, '{}', n % 2 = 0, 'c', 'm'
    FROM generate_series(1, 5000) AS n, (VALUES ('acme'), ('globex')) AS tenants(t);
INSERT INTO pending_group_creates (tenant, display_name, shadow, created)
    SELECT 'acme', 'group ' || n, '{}', 'c' FROM generate_series(1, 2000) AS n;
INSERT INTO memberships (tenant, group_id, user_id)
    SELECT t, 'u' || lpad((n % 50)::text, 6, '0'), 'u' || lpad(n::text, 6, '0')
    FROM generate_series(1, 5000) AS n, (VALUES ('acme'), ('globex')) AS tenants(t);
ANALYZE users;
ANALYZE pending_creates;
ANALYZE groups;
ANALYZE pending_group_creates;
ANALYZE memberships;
"#;

/// PostgreSQL's plan for `sql` with a tenant and a key, one line per node.
async fn plan_of(client: &tokio_postgres::Client, sql: &str) -> String {
    let explain = format!("EXPLAIN (COSTS OFF) {sql}");
    // A page of a walk takes its size too; a membership, a user id.
    let rows = if sql.contains("LIMIT $3") {
        client
            .query(&explain, &[&"acme", &"u004242", &100i64])
            .await
    } else if sql.contains("$3") {
        client
            .query(&explain, &[&"acme", &"u000042", &"u004242"])
            .await
    } else {
        client.query(&explain, &[&"acme", &"u004242"]).await
    };
    lines(&rows.unwrap())
}

/// An `EXPLAIN`'s rows, one line each.
fn lines(rows: &[tokio_postgres::Row]) -> String {
    rows.iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lookup_by_key_is_one_index_search() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    PostgresStore::open(&db.settings()).await.unwrap();
    db.execute(ROWS);
    let client = db.client().await;
    for planner in ["RESET enable_seqscan", "SET enable_seqscan = off"] {
        client.batch_execute(planner).await.unwrap();
        for (sql, index) in LOOKUPS.iter().chain(GROUP_LOOKUPS) {
            let plan = plan_of(&client, sql).await;
            assert!(
                plan.contains(&format!("Index Scan using {index} on "))
                    || plan.contains(&format!("Index Only Scan using {index} on ")),
                "{planner}: {sql}\n{plan}"
            );
            assert!(
                !plan.contains("Seq Scan") && !plan.contains("Sort"),
                "{planner}: {sql}\n{plan}"
            );
        }
    }
}

/// Store tenants and their keys: 200 tenants of 25 keys each, with statistics.
const KEY_ROWS: &str = r#"
INSERT INTO tenants (name, enabled, created_at, created_by)
    SELECT 't' || n, n % 10 <> 0, 'c', 'admin' FROM generate_series(1, 200) AS n;
INSERT INTO api_keys (id, sha256, tenant, label, created_at, created_by, revoked_at)
    SELECT 'k' || n, md5(n::text) || md5((-n)::text), 't' || (n % 200 + 1), '', 'c', 'admin',
        CASE WHEN n % 7 = 0 THEN 'r' END
    FROM generate_series(1, 5000) AS n;
ANALYZE tenants;
ANALYZE api_keys;
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requests_store_key_is_found_by_one_index_search() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    PostgresStore::open(&db.settings()).await.unwrap();
    db.execute(KEY_ROWS);
    let client = db.client().await;
    let hash = "0".repeat(64);
    for planner in ["RESET enable_seqscan", "SET enable_seqscan = off"] {
        client.batch_execute(planner).await.unwrap();
        let explain = format!("EXPLAIN (COSTS OFF) {LIVE_KEY}");
        let rows = client.query(&explain, &[&hash]).await.unwrap();
        let plan: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains("Index Scan using api_keys_sha256_key on api_keys"),
            "{planner}\n{plan}"
        );
        assert!(!plan.contains("Seq Scan on api_keys"), "{planner}\n{plan}");
    }
}

/// PostgreSQL's generic plan for `sql` (the one a connection keeps after a few runs), with the
/// arguments [`plan_of`] gives.
async fn generic_plan_of(client: &tokio_postgres::Client, sql: &str) -> String {
    let args = if sql.contains("$2::text[]") {
        "'acme', ARRAY['u004242', 'u000042']"
    } else if sql.contains("LIMIT $3") {
        "'acme', 'u004242', 100"
    } else if sql.contains("$3") {
        "'acme', 'u000042', 'u004242'"
    } else {
        "'acme', 'u004242'"
    };
    client
        .batch_execute(&format!("DEALLOCATE ALL; PREPARE lookup AS {sql}"))
        .await
        .unwrap();
    let rows = client
        .query(&format!("EXPLAIN (COSTS OFF) EXECUTE lookup({args})"), &[])
        .await
        .unwrap();
    lines(&rows)
}

/// A store's empty tables (no statistics), and a session that plans every prepared statement
/// as the store's sessions do: generically (as a connection does after a few runs), and with no
/// scan of a whole table where an index serves. `None` without a test database.
async fn generically_planned_store() -> Option<(pg::TestDb, tokio_postgres::Client)> {
    let db = pg::TestDb::create()?;
    PostgresStore::open(&db.settings()).await.unwrap();
    let client = db.client().await;
    let planner: String = PLANNER
        .iter()
        .map(|(k, v)| format!("SET {k} = {v};"))
        .collect();
    client.batch_execute(&planner).await.unwrap();
    Some((db, client))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_planned_while_the_tables_are_empty_still_searches_its_whole_key() {
    let Some((_db, client)) = generically_planned_store().await else {
        return;
    };
    for (sql, index) in LOOKUPS.iter().chain(GROUP_LOOKUPS).chain([&BATCH_LOOKUP]) {
        let plan = generic_plan_of(&client, sql).await;
        assert!(
            plan.contains(&format!("Index Scan using {index} on "))
                || plan.contains(&format!("Index Only Scan using {index} on ")),
            "{sql}\n{plan}"
        );
        // A search by a prefix of the key that filters what it finds reads the whole tenant.
        assert!(!plan.contains("Filter"), "{sql}\n{plan}");
    }
}

/// The name of each state in turn, once its rows (if any) are in the database.
fn entering<'a>(
    db: &'a pg::TestDb,
    states: [(&'a str, Option<&'a str>); 2],
) -> impl Iterator<Item = &'a str> + 'a {
    states.into_iter().map(move |(state, rows)| {
        if let Some(rows) = rows {
            db.execute(rows);
        }
        state
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_by_work_address_searches_the_addresses_whatever_the_statistics() {
    let Some((db, client)) = generically_planned_store().await else {
        return;
    };
    let (sql, index) = WORK_EMAIL_LOOKUP;
    let states = [
        ("empty, never analyzed", None),
        ("10,000 users, analyzed", Some(ROWS)),
    ];
    for state in entering(&db, states) {
        let plan = generic_plan_of(&client, sql).await;
        assert!(
            plan.contains(&format!("Bitmap Index Scan on {index}")),
            "{state}:\n{plan}"
        );
        // A search of the primary key by tenant reads every user of the tenant.
        assert!(
            !plan.contains("users_pkey") && !plan.contains("Seq Scan"),
            "{state}:\n{plan}"
        );
    }
}

/// `pending_creates` between two vacuums: its statistics count the one note that was live when
/// it was analyzed, and 5,000 creates have since left a dead note each.
const NOTES_CHURNED: &str = "
INSERT INTO pending_creates VALUES ('acme', 'pending@acme.test', '{}', 'c');
ANALYZE pending_creates;
INSERT INTO pending_creates SELECT 'acme', 'user' || n || '@acme.test', '{}', 'c'
    FROM generate_series(1, 5000) AS n;
DELETE FROM pending_creates WHERE user_name <> 'pending@acme.test';
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_records_finds_its_notes_by_key_whatever_the_statistics() {
    let Some((db, client)) = generically_planned_store().await else {
        return;
    };
    let args = r#"'acme', '{u1,u2}', '{e1,e2}', '{"{}","{}"}', '{t,t}', '{c,c}', '{m,m}',
        '{a@acme.test,b@acme.test}', '{"{}","{}"}', '{"\\x00","\\x00"}'"#;
    let states = [
        ("empty, never analyzed", None),
        ("few live notes, many dead", Some(NOTES_CHURNED)),
    ];
    for state in entering(&db, states) {
        let prepare = format!("DEALLOCATE ALL; PREPARE records AS {RECORD_BATCH}");
        client.batch_execute(&prepare).await.unwrap();
        let explain = format!("EXPLAIN (COSTS OFF) EXECUTE records({args})");
        let plan = lines(&client.query(&explain, &[]).await.unwrap());
        // A search that reads past the notes it deletes reads a dead row for every create
        // since the last vacuum.
        assert!(
            plan.contains("Index Cond: ((tenant = $1) AND (user_name = k.user_name))")
                && plan.contains("Tid Scan on pending_creates"),
            "{state}:\n{plan}"
        );
        assert!(
            !plan.contains("Seq Scan") && !plan.contains("Filter"),
            "{state}:\n{plan}"
        );
    }
}
