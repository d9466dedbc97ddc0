//! The store seam's tests. [`contract`] is what every engine promises (user and group records,
//! the external id indexes, the managed flag, pending creates, managed memberships, holds), and
//! [`keys`] of store tenants and their SCIM API keys, run against SQLite and against PostgreSQL;
//! the brakes on mass deprovisioning ([`brakes`]); the rest is PostgreSQL's own: [`migrations`],
//! holds across gateways ([`fleet`]), failures ([`faults`]), the copy from SQLite ([`copy`]), the
//! lookups' query [`plans`] and the index of [`work_emails`]. PostgreSQL tests each get a database of
//! their own (tests/support/pg.rs) and are skipped, saying so, where no server is configured.

// Test code: a failed unwrap, expect or panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod brakes;
mod contract;
mod copy;
#[path = "../support/cutter.rs"]
mod cutter;
mod faults;
mod fleet;
mod keys;
mod migrations;
#[path = "../support/pg.rs"]
mod pg;
mod plans;
mod work_emails;

use scimgate::store::postgres::{PgSettings, PostgresStore};
use scimgate::store::sqlite::SqliteStore;
use scimgate::store::{Store, UserRecord};
use serde_json::json;
use std::any::Any;
use std::sync::Arc;

/// An engine under test and what it lives in (dropped after it).
pub struct Engine {
    /// The store.
    pub store: Arc<dyn Store>,
    _home: Box<dyn Any + Send>,
}

/// A SQLite store in a fresh folder.
pub async fn sqlite() -> Option<Engine> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.sqlite")).unwrap();
    Some(Engine {
        store: Arc::new(store),
        _home: Box::new(dir),
    })
}

/// A PostgreSQL store in a fresh database, or `None` where PostgreSQL tests are skipped.
pub async fn postgres() -> Option<Engine> {
    let db = pg::TestDb::create()?;
    let store = PostgresStore::open(&db.settings()).await.unwrap();
    Some(Engine {
        store: Arc::new(store),
        _home: Box::new(db),
    })
}

/// Opens another engine (another gateway) on `db`, with `adjust`ed settings.
pub async fn gateway_on(db: &pg::TestDb, adjust: impl FnOnce(&mut PgSettings)) -> PostgresStore {
    let mut settings = db.settings();
    adjust(&mut settings);
    PostgresStore::open(&settings).await.unwrap()
}

/// A record with this externalId and flag, for userName `a@b.c`.
pub fn record(ext: &str, managed: bool) -> UserRecord {
    UserRecord {
        shadow: json!({"externalId": ext, "userName": "a@b.c"}),
        managed,
        created: "2026-01-01T00:00:00Z".into(),
        last_modified: "2026-01-02T00:00:00Z".into(),
    }
}

/// One test of `module` ([`contract`], [`keys`] or [`brakes`]) per engine: `name::sqlite` and
/// `name::postgres`.
macro_rules! on_every_engine {
    ($module:ident: $($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let engine = crate::sqlite().await.unwrap();
                crate::$module::$name(&*engine.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(engine) = crate::postgres().await {
                    crate::$module::$name(&*engine.store).await;
                }
            }
        }
    )*};
}

on_every_engine!(contract:
    records_round_trip,
    records_to_show_follow_this_stores_writes_at_once,
    external_ids_are_found_case_exactly_and_follow_replacements,
    work_emails_are_found_ignoring_case_and_follow_writes,
    managed_flag_exactly_and_ignoring_case,
    pending_creates_are_kept_until_recorded_or_cleared,
    resources_keep_their_attribute_order_and_numbers,
    ids_are_listed_in_byte_order,
    a_walk_reads_every_record_once_a_page_at_a_time,
    serialise_excludes_holders_of_one_key_only,
    one_request_holds_many_different_keys_at_once,
    a_user_name_is_reserved_ignoring_case,
    a_users_hold_comes_with_its_record,
    concurrent_creates_each_land_whole,
    group_records_round_trip,
    group_external_ids_are_found_case_exactly_and_follow_replacements,
    pending_group_creates_are_kept_until_recorded_or_cleared,
    memberships_are_added_and_removed_idempotently,
    a_thousand_memberships_change_at_once,
    deleting_a_group_or_a_user_forgets_their_memberships,
    managed_memberships_are_found_ignoring_ascii_case_per_tenant,
    group_keys_exclude_each_other_only,
);

on_every_engine!(keys:
    tenants_are_enabled_once_and_disabling_revokes_their_keys,
    keys_are_listed_and_found_by_hash_only_while_live,
    revocation_is_scoped_by_tenant_and_said_once,
    last_use_only_moves_forward,
);

on_every_engine!(brakes:
    a_burst_lets_exactly_the_threshold_through_and_the_tenant_stays_held,
    a_release_opens_a_fresh_window_with_its_allowance,
    the_share_counts_the_tenants_managed_users,
    brakes_are_per_tenant_and_listed_by_name,
);
