//! SCIM API keys kept in the store, through real sockets: a key added through the gateway's
//! store keys (as the admin API will add it) authenticates SCIM requests, for a config tenant of
//! the same name and for a store-only tenant; revoked through the same gateway it gets `401` at
//! once, revoked by `scimgate token revoke` (another process) within the documented bound;
//! `scimgate token list` shows every key and no secret; and a store that cannot answer a key's
//! lookup gets the SCIM client a `503`, not a `401`.

use super::cutter::Cutter;
use super::harness::{assert_scim_error, Gateway};
use super::pg::TestDb;
use scimgate::auth::store_keys::{StoreKeys, CACHE_BOUND};
use scimgate::auth::{self, hash_key, key_id};
use scimgate::store::engine::StoreSettings;
use scimgate::store::keys::{KeyAdded, Revocation, StoreKey};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEMO: &str = include_str!("../../conf/demo.toml");

fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work)
}

fn store_keys(gw: &Gateway) -> Arc<StoreKeys> {
    gw.gateway.parts.load().store_keys.clone()
}

/// Enables `tenant` in the gateway's store and adds a new key for it; answers the secret and
/// the key's id.
fn add_key(keys: &StoreKeys, tenant: &str, label: &str) -> (String, String) {
    let secret = auth::generate_key();
    let hash = hash_key(secret.as_bytes());
    let id = key_id(&hash);
    let key = StoreKey::new(
        &id,
        &hex::encode(hash),
        tenant,
        label,
        "admin@acme.test",
        "2026-12-01T10:00:00Z",
    );
    block_on(async {
        keys.enable_tenant(tenant, "admin@acme.test").await.unwrap();
        assert_eq!(keys.add_key(&key).await.unwrap(), KeyAdded::Added);
    });
    (secret, id)
}

fn user_names(gw: &Gateway, secret: &str) -> Vec<String> {
    let r = gw.scim_as(secret, "GET", "/Users", None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_store_key_authenticates_until_it_is_revoked_through_the_gateway() {
    let gw = Gateway::demo();
    let keys = store_keys(&gw);
    let (secret, id) = add_key(&keys, "acme", "Entra");
    let names = user_names(&gw, &secret);
    assert!(names.contains(&"bob@acme.test".to_string()), "{names:?}");
    assert_eq!(
        names,
        user_names(&gw, &gw.token),
        "the config's tenant acme"
    );

    // A tenant only the store knows takes the defaults: the backend's team is its name.
    let (globex, _) = add_key(&keys, "globex", "Okta");
    assert_eq!(user_names(&gw, &globex), Vec::<String>::new());

    let revoked = block_on(keys.revoke_key(&id, Some("acme"))).unwrap();
    assert!(matches!(revoked, Revocation::Revoked(_)), "{revoked:?}");
    assert_scim_error(&gw.scim_as(&secret, "GET", "/Users", None), 401, None);
    assert_eq!(user_names(&gw, &globex), Vec::<String>::new(), "others act");
    assert_eq!(
        gw.scim("GET", "/Users", None).status,
        200,
        "config keys act"
    );
}

/// Runs the scimgate binary.
fn scimgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .args(args)
        .output()
        .unwrap()
}

/// The demo config with its store at `dir/scimgate.sqlite` and the gateway's key listed.
fn config_file(dir: &Path, config_key: &str) -> String {
    let entry = auth::key_entry(config_key);
    let text = DEMO.replacen(
        "backend = \"acme\"\n",
        &format!("backend = \"acme\"\nkeys = [{entry}]\n"),
        1,
    );
    let path = dir.join("gw.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn token_list_shows_every_key_without_secrets_and_token_revoke_reaches_running_gateways() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scimgate.sqlite");
    let gw = Gateway::demo_with(|c| c.store = StoreSettings::Sqlite(file));
    let keys = store_keys(&gw);
    let (secret, id) = add_key(&keys, "acme", "Entra\tprod");
    assert_eq!(gw.scim_as(&secret, "GET", "/Users", None).status, 200);
    let config = config_file(dir.path(), &gw.token);
    let config_id = key_id(&hash_key(gw.token.as_bytes()));

    let out = scimgate(&["token", "list", "--config", &config]);
    let list = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{list}");
    let line_of = |id: &str| {
        list.lines()
            .find(|l| l.starts_with(id))
            .unwrap()
            .to_string()
    };
    assert!(line_of(&config_id).contains(" config "), "{list}");
    let store_line = line_of(&id);
    for shown in [
        "acme",
        "Entra?prod",
        " store ",
        "2026-12-01T10:00:00Z",
        "admin@acme.test",
    ] {
        assert!(store_line.contains(shown), "{shown}: {list}");
    }
    for secret in [&secret, &gw.token] {
        assert!(!list.contains(secret.as_str()), "a secret is shown: {list}");
        let hash = hex::encode(hash_key(secret.as_bytes()));
        assert!(!list.contains(&hash), "a hash is shown: {list}");
    }

    let out = scimgate(&["token", "revoke", "--config", &config, &config_id]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("[[tenants.keys]]") && said.contains("reload"),
        "{said}"
    );
    assert_eq!(
        gw.scim("GET", "/Users", None).status,
        200,
        "still configured"
    );

    let revoked_at = Instant::now();
    let out = scimgate(&["token", "revoke", "--config", &config, &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked key"));
    // Another process revoked it: this gateway refuses it once its lookup is older than the bound.
    loop {
        let status = gw.scim_as(&secret, "GET", "/Users", None).status;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked_at.elapsed() < CACHE_BOUND + Duration::from_secs(3),
            "still accepted after the bound"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let list = String::from_utf8(scimgate(&["token", "list", "--config", &config]).stdout).unwrap();
    assert!(
        !list
            .lines()
            .find(|l| l.starts_with(&id))
            .unwrap()
            .ends_with('-'),
        "{list}"
    );

    let out = scimgate(&["token", "revoke", "--config", &config, "no-such-key"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_store_that_cannot_answer_a_key_lookup_is_503_not_401() {
    let Some(db) = TestDb::create() else {
        return;
    };
    let target = db.address();
    let cutter = Cutter::start(target);
    let mut settings = db.settings();
    settings.url = settings
        .url
        .replacen(&target.to_string(), &cutter.addr.to_string(), 1);
    settings.connect_timeout = Duration::from_millis(2_000);
    settings.statement_timeout = Duration::from_millis(2_000);
    settings.pool_wait = Duration::from_millis(1_000);
    let gw = Gateway::demo_with(|c| c.store = StoreSettings::Postgres(settings));
    let keys = store_keys(&gw);
    let (looked_up, _) = add_key(&keys, "acme", "Entra");
    let (never_looked_up, _) = add_key(&keys, "acme", "Okta");
    let discovery = |secret: &str| gw.scim_as(secret, "GET", "/ServiceProviderConfig", None);
    assert_eq!(discovery(&looked_up).status, 200);

    cutter.cut();
    let r = discovery(&never_looked_up);
    assert_scim_error(&r, 503, None);
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    assert!(!r.text().contains(&never_looked_up), "{}", r.text());
    assert_eq!(discovery(&looked_up).status, 200, "a recent lookup stands");
    assert_eq!(
        discovery(&gw.token).status,
        200,
        "config keys need no store"
    );

    cutter.heal();
    let healed = Instant::now();
    while discovery(&never_looked_up).status != 200 {
        assert!(healed.elapsed() < Duration::from_secs(15), "no recovery");
        std::thread::sleep(Duration::from_millis(200));
    }
}
