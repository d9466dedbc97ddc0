//! What every store engine promises of store tenants and their SCIM API keys (main.rs runs each
//! on every engine): enabling is idempotent, disabling revokes every key of the tenant, a key is
//! found by its hash only while it is live, revocation is scoped by tenant and said once, and a
//! key's last use only moves forward.

use scimgate::auth::{hash_key, key_id};
use scimgate::store::keys::{KeyAdded, LiveKey, Revocation, StoreKey};
use scimgate::store::Store;

const T0: &str = "2026-05-01T10:00:00Z";
const T1: &str = "2026-05-01T11:00:00Z";
const T2: &str = "2026-05-01T12:00:00Z";

/// The key whose secret is `secret`, for `tenant`, as the admin API will add it.
fn key(secret: &str, tenant: &str, label: &str) -> StoreKey {
    let hash = hash_key(secret.as_bytes());
    StoreKey::new(
        &key_id(&hash),
        &hex::encode(hash),
        tenant,
        label,
        "admin@acme.test",
        T0,
    )
}

fn live(k: &StoreKey) -> Option<LiveKey> {
    Some(LiveKey {
        id: k.id.clone(),
        tenant: k.tenant.clone(),
    })
}

pub async fn tenants_are_enabled_once_and_disabling_revokes_their_keys(store: &dyn Store) {
    let (a, b) = (
        key("secret-a", "acme", "Entra"),
        key("secret-b", "acme", "Okta"),
    );
    assert_eq!(store.add_key(&a).await.unwrap(), KeyAdded::TenantNotEnabled);
    assert!(store.all_keys().await.unwrap().is_empty(), "nothing stored");
    assert!(store
        .enable_tenant("acme", "admin@acme.test", T0)
        .await
        .unwrap());
    assert!(
        !store.enable_tenant("acme", "someone", T1).await.unwrap(),
        "idempotent"
    );
    let acme = store.tenant("acme").await.unwrap().expect("acme");
    assert!(acme.enabled);
    assert_eq!(
        (acme.created_at.as_str(), acme.created_by.as_str()),
        (T0, "admin@acme.test")
    );
    assert_eq!(store.tenant("nobody").await.unwrap(), None);
    assert_eq!(store.add_key(&a).await.unwrap(), KeyAdded::Added);
    assert_eq!(store.add_key(&b).await.unwrap(), KeyAdded::Added);
    assert_eq!(store.live_key(&a.sha256).await.unwrap(), live(&a));

    assert_eq!(store.disable_tenant("acme", T1).await.unwrap(), 2);
    assert!(!store.tenant("acme").await.unwrap().expect("kept").enabled);
    assert_eq!(store.live_key(&a.sha256).await.unwrap(), None);
    assert_eq!(store.live_key(&b.sha256).await.unwrap(), None);
    let keys = store.tenant_keys("acme").await.unwrap();
    assert!(
        keys.iter().all(|k| k.revoked_at.as_deref() == Some(T1)),
        "{keys:?}"
    );
    let c = key("secret-c", "acme", "new");
    assert_eq!(store.add_key(&c).await.unwrap(), KeyAdded::TenantNotEnabled);
    assert_eq!(store.disable_tenant("acme", T2).await.unwrap(), 0);
    assert_eq!(store.disable_tenant("nobody", T2).await.unwrap(), 0);

    // Enabled again, the revoked keys stay revoked; new keys act.
    assert!(store
        .enable_tenant("acme", "admin@acme.test", T2)
        .await
        .unwrap());
    assert_eq!(store.live_key(&a.sha256).await.unwrap(), None);
    assert_eq!(store.add_key(&c).await.unwrap(), KeyAdded::Added);
    assert_eq!(store.live_key(&c.sha256).await.unwrap(), live(&c));
}

pub async fn keys_are_listed_and_found_by_hash_only_while_live(store: &dyn Store) {
    for tenant in ["globex", "acme"] {
        store.enable_tenant(tenant, "admin", T0).await.unwrap();
    }
    let a = key("secret-a", "acme", "Entra");
    let g = key("secret-g", "globex", "Okta");
    for k in [&g, &a] {
        assert_eq!(store.add_key(k).await.unwrap(), KeyAdded::Added);
    }
    let same_id = StoreKey {
        sha256: hex::encode(hash_key(b"other")),
        ..a.clone()
    };
    assert_eq!(store.add_key(&same_id).await.unwrap(), KeyAdded::Taken);
    let same_hash = StoreKey {
        id: "another-id".into(),
        tenant: "globex".into(),
        ..a.clone()
    };
    assert_eq!(store.add_key(&same_hash).await.unwrap(), KeyAdded::Taken);

    assert_eq!(
        store.tenant_keys("acme").await.unwrap(),
        std::slice::from_ref(&a)
    );
    assert_eq!(store.tenant_keys("nobody").await.unwrap(), []);
    assert_eq!(store.all_keys().await.unwrap(), [a.clone(), g.clone()]);
    assert_eq!(store.live_key(&a.sha256).await.unwrap(), live(&a));
    assert_eq!(store.live_key(&g.sha256).await.unwrap(), live(&g));
    let unknown = hex::encode(hash_key(b"never added"));
    assert_eq!(store.live_key(&unknown).await.unwrap(), None);
    assert_eq!(
        store.live_key(&a.sha256.to_uppercase()).await.unwrap(),
        None
    );
}

pub async fn revocation_is_scoped_by_tenant_and_said_once(store: &dyn Store) {
    for tenant in ["acme", "globex"] {
        store.enable_tenant(tenant, "admin", T0).await.unwrap();
    }
    let (a, g) = (
        key("secret-a", "acme", "Entra"),
        key("secret-g", "globex", "Okta"),
    );
    for k in [&a, &g] {
        store.add_key(k).await.unwrap();
    }
    assert_eq!(
        store.revoke_key(&a.id, Some("globex"), T1).await.unwrap(),
        Revocation::Unknown,
        "another tenant's key is not found"
    );
    assert_eq!(store.live_key(&a.sha256).await.unwrap(), live(&a));
    let revoked = StoreKey {
        revoked_at: Some(T1.into()),
        ..a.clone()
    };
    assert_eq!(
        store.revoke_key(&a.id, Some("acme"), T1).await.unwrap(),
        Revocation::Revoked(revoked.clone())
    );
    assert_eq!(store.live_key(&a.sha256).await.unwrap(), None);
    assert_eq!(
        store.revoke_key(&a.id, None, T2).await.unwrap(),
        Revocation::AlreadyRevoked(revoked.clone()),
        "the first revocation's time stays"
    );
    assert_eq!(
        store.revoke_key("no-such-id", None, T2).await.unwrap(),
        Revocation::Unknown
    );
    assert_eq!(
        store.revoke_key("a\0b", None, T2).await.unwrap(),
        Revocation::Unknown
    );
    assert!(matches!(
        store.revoke_key(&g.id, None, T2).await.unwrap(),
        Revocation::Revoked(_)
    ));
    assert_eq!(store.tenant_keys("acme").await.unwrap(), [revoked]);
}

pub async fn last_use_only_moves_forward(store: &dyn Store) {
    store.enable_tenant("acme", "admin", T0).await.unwrap();
    let a = key("secret-a", "acme", "Entra");
    store.add_key(&a).await.unwrap();
    store.touch_key(&a.id, T1).await.unwrap();
    store.touch_key(&a.id, T0).await.unwrap();
    let used = |keys: Vec<StoreKey>| keys[0].last_used_at.clone();
    assert_eq!(used(store.all_keys().await.unwrap()).as_deref(), Some(T1));
    store.touch_key(&a.id, T2).await.unwrap();
    assert_eq!(used(store.all_keys().await.unwrap()).as_deref(), Some(T2));
    store.touch_key("no-such-id", T2).await.unwrap();
}
