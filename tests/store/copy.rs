//! `scimgate store copy`: a SQLite store copied into the PostgreSQL store of a config, through
//! the command's own function (config file, runtime, report).

use crate::{pg, record};
use scimgate::commands::{self, CommandError};
use scimgate::store::brake::BrakeChange;
use scimgate::store::keys::{KeyAdded, StoreKey};
use scimgate::store::postgres::PostgresStore;
use scimgate::store::rows::CopyError;
use scimgate::store::sqlite::SqliteStore;
use scimgate::store::{GroupRecord, Store, UserRecord};
use serde_json::json;
use std::path::{Path, PathBuf};

const DEMO: &str = include_str!("../../conf/demo.toml");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A config file whose store is `db`.
fn config_for(db: &pg::TestDb, dir: &Path) -> PathBuf {
    let settings = db.settings();
    let mut store = format!("[store]\nurl = \"{}\"\n", settings.url);
    if let Some(var) = settings.password_env {
        store.push_str(&format!("password_env = \"{var}\"\n"));
    }
    let text = DEMO.replacen("[store]\npath = \"scimgate.sqlite\"\n", &store, 1);
    let path = dir.join("gw.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn user(user_name: &str, ext: &str, managed: bool) -> UserRecord {
    UserRecord {
        shadow: json!({"userName": user_name, "externalId": ext, "name": {"givenName": "Ä"}}),
        managed,
        created: "2026-03-01T10:00:00Z".into(),
        last_modified: "2026-03-02T11:00:00.123Z".into(),
    }
}

fn group(display_name: &str, ext: &str, managed: bool) -> GroupRecord {
    GroupRecord {
        shadow: json!({"displayName": display_name, "externalId": ext, "x-note": "Ö"}),
        managed,
        created: "2026-03-03T10:00:00Z".into(),
        last_modified: "2026-03-04T11:00:00.5Z".into(),
    }
}

/// A SQLite store with users and groups in two tenants, a pending create of each, and managed
/// memberships.
fn sqlite_store(path: &Path) {
    runtime().block_on(async {
        let s = SqliteStore::open(path).unwrap();
        s.put("acme", "1", &user("ann@acme.test", "e-1", true))
            .await
            .unwrap();
        s.put("acme", "2", &user("bob@acme.test", "e-2", false))
            .await
            .unwrap();
        s.put("umbrella", "1", &user("cy@u.test", "e-3", true))
            .await
            .unwrap();
        s.put_pending_create("acme", "Dee@Acme.test", &record("e-4", true))
            .await
            .unwrap();
        s.put_group("acme", "g1", &group("Admins", "ge-1", true))
            .await
            .unwrap();
        s.put_group("umbrella", "g1", &group("Staff", "ge-2", false))
            .await
            .unwrap();
        s.put_pending_group_create("acme", "Ops", &group("Ops", "ge-3", true))
            .await
            .unwrap();
        let both = ["1".to_string(), "2".into()];
        s.add_memberships("acme", "g1", &both).await.unwrap();
        s.add_memberships("umbrella", "g1", &both[..1])
            .await
            .unwrap();
        for tenant in ["acme", "globex"] {
            s.enable_tenant(tenant, "admin@x.test", "2026-03-05T10:00:00Z")
                .await
                .unwrap();
        }
        for (id, tenant) in [("k-acme", "acme"), ("k-globex", "globex")] {
            let sha256 = hex::encode(scimgate::auth::hash_key(id.as_bytes()));
            let key = StoreKey::new(id, &sha256, tenant, "Entra", "ops", "2026-03-05T10:01:00Z");
            assert_eq!(s.add_key(&key).await.unwrap(), KeyAdded::Added);
        }
        s.touch_key("k-acme", "2026-03-06T09:00:00Z").await.unwrap();
        s.revoke_key("k-globex", None, "2026-03-07T09:00:00Z")
            .await
            .unwrap();
    });
}

fn copy(from: &Path, config: &Path, overwrite: bool) -> Result<String, CommandError> {
    commands::store::copy(from, config, overwrite)
}

#[test]
fn a_copy_carries_every_row_and_a_second_has_nothing_to_do() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (from, config) = (dir.path().join("old.sqlite"), config_for(&db, dir.path()));
    sqlite_store(&from);
    let report = copy(&from, &config, false).unwrap();
    assert!(
        report.contains("users: 3 copied, 0 overwritten, 0 already there"),
        "{report}"
    );
    assert!(report.contains("; pending creates: 1 copied"), "{report}");
    assert!(
        report.contains("groups: 2 copied, 0 overwritten, 0 already there"),
        "{report}"
    );
    assert!(
        report.contains("pending group creates: 1 copied"),
        "{report}"
    );
    assert!(report.contains("memberships: 3 copied"), "{report}");
    assert!(report.contains("tenants: 2 copied"), "{report}");
    assert!(report.contains("keys: 2 copied"), "{report}");
    assert!(
        report.contains(
            "verified: PostgreSQL holds all 3 users, 1 pending creates, 2 groups, 1 pending \
             group creates, 3 memberships, 2 tenants, 2 keys of the SQLite store"
        ),
        "{report}"
    );
    let again = copy(&from, &config, false).unwrap();
    assert!(again.contains("nothing to do"), "{again}");
    assert!(
        again.contains(
            "3 users, 1 pending creates, 2 groups, 1 pending group creates, 3 memberships, \
             2 tenants, 2 keys"
        ),
        "{again}"
    );

    // What the gateway reads through either engine is the same.
    runtime().block_on(async {
        let sqlite = SqliteStore::open(&from).unwrap();
        let pg = PostgresStore::open(&db.settings()).await.unwrap();
        for tenant in ["acme", "umbrella"] {
            assert_eq!(
                pg.all(tenant).await.unwrap(),
                sqlite.all(tenant).await.unwrap()
            );
        }
        assert_eq!(pg.find_by_external_id("acme", "e-2").await.unwrap(), ["2"]);
        assert!(pg.is_managed("umbrella", "1").await.unwrap());
        assert!(!pg.is_managed("acme", "2").await.unwrap());
        assert_eq!(
            pg.pending_create("acme", "dee@acme.test").await.unwrap(),
            sqlite
                .pending_create("acme", "dee@acme.test")
                .await
                .unwrap()
        );
        let g1 = ["g1".to_string()];
        for tenant in ["acme", "umbrella"] {
            assert_eq!(
                pg.get_groups(tenant, &g1).await.unwrap(),
                sqlite.get_groups(tenant, &g1).await.unwrap()
            );
            assert_eq!(
                pg.managed_members(tenant, "g1").await.unwrap(),
                sqlite.managed_members(tenant, "g1").await.unwrap()
            );
        }
        assert_eq!(pg.managed_members("acme", "g1").await.unwrap(), ["1", "2"]);
        assert_eq!(
            pg.find_groups_by_external_id("umbrella", "ge-2")
                .await
                .unwrap(),
            ["g1"]
        );
        assert!(pg.is_managed_membership("acme", "G1", "2").await.unwrap());
        let ops = pg.pending_group_create("acme", "ops").await.unwrap();
        assert_eq!(ops.unwrap().shadow["externalId"], "ge-3");
        let keys = pg.all_keys().await.unwrap();
        assert_eq!(keys, sqlite.all_keys().await.unwrap());
        assert_eq!(
            keys[0].last_used_at.as_deref(),
            Some("2026-03-06T09:00:00Z")
        );
        assert_eq!(keys[1].revoked_at.as_deref(), Some("2026-03-07T09:00:00Z"));
        let live = pg.live_key(&keys[0].sha256).await.unwrap().unwrap();
        assert_eq!((live.id.as_str(), live.tenant.as_str()), ("k-acme", "acme"));
        assert_eq!(pg.live_key(&keys[1].sha256).await.unwrap(), None);
    });
}

#[test]
fn rows_with_other_data_stop_the_copy_unless_it_may_overwrite() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (from, config) = (dir.path().join("old.sqlite"), config_for(&db, dir.path()));
    sqlite_store(&from);
    copy(&from, &config, false).unwrap();
    db.execute("UPDATE users SET managed = false WHERE tenant = 'acme' AND id = '1'");
    db.execute("DELETE FROM users WHERE tenant = 'umbrella'");
    db.execute("UPDATE groups SET shadow = '{}' WHERE tenant = 'umbrella' AND id = 'g1'");
    db.execute("DELETE FROM memberships WHERE tenant = 'acme' AND user_id = '2'");
    let err = copy(&from, &config, false).unwrap_err();
    assert!(
        matches!(err, CommandError::Copy(CopyError::Differs { count: 2, .. })),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("user acme/1")
            && text.contains("group umbrella/g1")
            && text.contains("--overwrite"),
        "{text}"
    );
    let still = runtime().block_on(async {
        let pg = PostgresStore::open(&db.settings()).await.unwrap();
        (
            pg.is_managed("acme", "1").await.unwrap(),
            pg.all("umbrella").await.unwrap().len(),
        )
    });
    assert_eq!(still, (false, 0), "nothing was copied");
    let report = copy(&from, &config, true).unwrap();
    assert!(
        report.contains("users: 1 copied, 1 overwritten, 1 already there"),
        "{report}"
    );
    assert!(
        report.contains("groups: 0 copied, 1 overwritten, 1 already there"),
        "{report}"
    );
    assert!(
        report.contains("memberships: 1 copied, 0 overwritten, 2 already there"),
        "{report}"
    );
    assert!(copy(&from, &config, false)
        .unwrap()
        .contains("nothing to do"));
}

#[test]
fn a_missing_source_or_a_sqlite_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_config = dir.path().join("gw.toml");
    std::fs::write(&sqlite_config, DEMO).unwrap();
    let err = copy(&dir.path().join("none.sqlite"), &sqlite_config, false).unwrap_err();
    assert!(matches!(err, CommandError::NotPostgres(_)), "{err:?}");
    assert!(commands::store::migrate(&sqlite_config)
        .unwrap_err()
        .to_string()
        .contains("[store] has no url"));
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let config = config_for(&db, dir.path());
    let missing = dir.path().join("none.sqlite");
    let err = copy(&missing, &config, false).unwrap_err();
    assert!(
        matches!(err, CommandError::Copy(CopyError::NoSource(_))),
        "{err:?}"
    );
    assert!(!missing.exists(), "no empty store was made");
    let migrated = commands::store::migrate(&config).unwrap();
    assert!(migrated.contains("nothing to do"), "{migrated}");
}

#[test]
fn a_tenant_the_brake_holds_stays_held_after_the_copy() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (from, config) = (dir.path().join("old.sqlite"), config_for(&db, dir.path()));
    sqlite_store(&from);
    runtime().block_on(async {
        let s = SqliteStore::open(&from).unwrap();
        s.change_brake("acme", BrakeChange::Hold, 1_000)
            .await
            .unwrap();
        s.change_brake("umbrella", BrakeChange::Release { allow: 0 }, 1_000)
            .await
            .unwrap();
    });
    let report = copy(&from, &config, false).unwrap();
    assert!(
        report.ends_with("kept held by the deprovisioning brake (scimgate brake status): acme"),
        "{report}"
    );
    let again = copy(&from, &config, false).unwrap();
    assert!(again.contains("nothing to do"), "{again}");
    runtime().block_on(async {
        let pg = PostgresStore::open(&db.settings()).await.unwrap();
        let brakes = pg.brakes(None).await.unwrap();
        assert_eq!(brakes.len(), 1, "only the hold is carried: {brakes:?}");
        let (tenant, state) = &brakes[0];
        assert_eq!(
            (tenant.as_str(), state.held_since),
            ("acme", Some(1_000)),
            "held since the same time"
        );
    });
}
