//! The gateway over a PostgreSQL store (`[store] url`): a SCIM create, read, PATCH and delete
//! through real sockets, with the store's rows checked in the database itself; and reloads.

use super::harness::{assert_scim_error, Gateway, DEMO_SERVICE_TOKEN};
use super::pg;
use super::scenarios::{create, patch, ENTERPRISE};
use scimgate::commands::DEMO_CONFIG;
use scimgate::store::engine::StoreSettings;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

#[test]
fn scim_round_trip_over_a_postgres_store() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    let gw = Gateway::demo_with(|c| c.store = StoreSettings::Postgres(db.settings()));
    let id = create(&gw, "alice@acme.test", "ext-alice");
    let row = |id: &str| {
        db.rows(&format!(
            "SELECT managed, external_id, shadow FROM users WHERE tenant = 'acme' AND id = '{id}'"
        ))
    };
    let rows = row(&id);
    assert_eq!(rows.len(), 1, "the create is recorded in PostgreSQL");
    assert_eq!(rows[0][0].as_deref(), Some("t"), "and managed");
    assert_eq!(rows[0][1].as_deref(), Some("ext-alice"));
    assert!(
        db.rows("SELECT 1 FROM pending_creates").is_empty(),
        "its pending note is gone"
    );

    let got = gw.scim("GET", &format!("/Users/{id}"), None);
    assert_eq!(got.status, 200, "{}", got.text());
    let user = got.json();
    assert_eq!(user["externalId"], "ext-alice");
    assert_eq!(
        user[ENTERPRISE]["employeeNumber"], "701984",
        "held by the store only"
    );

    let patched = patch(
        &gw,
        &id,
        json!([
            {"op": "replace", "path": "externalId", "value": "ext-alice-2"},
            {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Ops"}
        ]),
    );
    assert_eq!(patched[ENTERPRISE]["department"], "Ops");
    assert_eq!(row(&id)[0][1].as_deref(), Some("ext-alice-2"));
    let found = gw.scim(
        "GET",
        "/Users?filter=externalId%20eq%20%22ext-alice-2%22",
        None,
    );
    assert_eq!(found.json()["totalResults"], 1, "{}", found.text());

    let r = gw.scim("DELETE", &format!("/Users/{id}"), None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_scim_error(&gw.scim("GET", &format!("/Users/{id}"), None), 404, None);
    assert!(row(&id).is_empty(), "the record is gone from PostgreSQL");
}

/// A reload whose `[store]` did not change keeps the open PostgreSQL store (its pools and the
/// holds in progress); a changed `[store]` opens a new one.
#[test]
fn a_reload_keeps_an_unchanged_postgres_store() {
    let Some(db) = pg::TestDb::create() else {
        return;
    };
    std::env::set_var("SCIMGATE_DEMO_SERVICE_TOKEN", DEMO_SERVICE_TOKEN);
    let mut config =
        scimgate::config::from_str(DEMO_CONFIG, Path::new("conf/demo.toml")).expect("demo");
    config.store = StoreSettings::Postgres(db.settings());
    let gateway = scimgate::Gateway::new(config.clone(), None).expect("gateway");
    let before = gateway.parts.load().store.clone();
    gateway.swap(config.clone()).expect("reload");
    assert!(Arc::ptr_eq(&before, &gateway.parts.load().store), "kept");
    let mut changed = config;
    if let StoreSettings::Postgres(pg) = &mut changed.store {
        pg.pool_size = 2;
    }
    gateway.swap(changed).expect("reload");
    assert!(
        !Arc::ptr_eq(&before, &gateway.parts.load().store),
        "reopened"
    );
}
