//! SCIM API keys kept in the store, as the SCIM endpoint authenticates them. Each lookup by the
//! hash of a presented key is remembered in process for [`CACHE_BOUND`], found or not, so the
//! store is asked at most once per key and bound on the hot path. A revocation made elsewhere
//! (another gateway of a fleet, `scimgate token revoke`) takes effect here within that bound; one
//! made through this gateway ([`StoreKeys::revoke_key`], [`StoreKeys::disable_tenant`]) at once.
//! A key's last use is written at most once per [`TOUCH_EVERY`], in the background.
//!
//! A store tenant acts exactly as the config's tenant of the same name would (its backend name,
//! its own backend credential): where the config has a `[[tenants]]` entry named so, or whose
//! `backend` is that name, the config's entry wins; otherwise the tenant takes the defaults
//! (the backend's team is its name, the `[backend.auth]` credential).

use super::{Keyring, Principal, ResolvedKeys, Tenant};
use crate::store::keys::{self, KeyAdded, Revocation, StoreKey};
use crate::store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a lookup is remembered: the longest a key revoked on another gateway still acts here.
pub const CACHE_BOUND: Duration = Duration::from_secs(5);

/// A lookup answers authentication this much past [`CACHE_BOUND`], for a request already between
/// its lookup and its check (every request is looked up afresh once the bound has passed).
const CHECK_GRACE: Duration = Duration::from_secs(1);

/// How often a key's last use is written, at most.
pub const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Lookups remembered before the oldest are dropped (the cache stays small whatever is presented).
const MAX_ENTRIES: usize = 10_000;

/// The store's keys, with the lookups of this gateway remembered.
pub struct StoreKeys {
    store: Arc<dyn Store>,
    config_tenants: Vec<Arc<Tenant>>,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let remembered = self.cache().lookups.len();
        f.debug_struct("StoreKeys")
            .field("remembered", &remembered)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Cache {
    lookups: HashMap<[u8; 32], Lookup>,
    /// Bumped by every change made through this gateway: a lookup begun before is not kept.
    generation: u64,
    /// When this gateway last wrote each key's last use.
    touched: HashMap<String, Instant>,
}

#[derive(Debug, Clone)]
struct Lookup {
    found: Option<Principal>,
    at: Instant,
}

impl StoreKeys {
    /// The keys of `store`; `config_tenants` are the config's, which win over store tenants of
    /// the same name.
    pub fn new(store: Arc<dyn Store>, config_tenants: Vec<Arc<Tenant>>) -> Self {
        StoreKeys {
            store,
            config_tenants,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Looks up, ahead of [`Keyring::authenticate`], the request's bearer key when no configured
    /// key of `keyring` matches it. Fails only when the store must be asked and cannot answer.
    pub async fn prepare(&self, keyring: &Keyring, headers: &[&[u8]]) -> Result<(), StoreError> {
        match keyring.unconfigured_key(headers) {
            Some(hash) => self.resolve(&hash).await.map(drop),
            None => Ok(()),
        }
    }

    /// Who the key with this hash acts as, from a lookup younger than [`CACHE_BOUND`] or from
    /// the store; notes its use. Fails only when the store must be asked and cannot answer.
    pub async fn resolve(&self, hash: &[u8; 32]) -> Result<Option<Principal>, StoreError> {
        // A lookup overtaken by a change made here is not kept and is made again, once.
        for _ in 0..2 {
            let now = Instant::now();
            let (remembered, generation) = {
                let cache = self.cache();
                let fresh = cache
                    .lookups
                    .get(hash)
                    .filter(|l| now.duration_since(l.at) < CACHE_BOUND);
                (fresh.map(|l| l.found.clone()), cache.generation)
            };
            let found = match remembered {
                Some(found) => found,
                None => {
                    let live = self.store.live_key(&hex::encode(hash)).await?;
                    let found = live.map(|k| Principal {
                        tenant: self.tenant_named(&k.tenant),
                        key_id: k.id,
                    });
                    if !self.remember(*hash, found.clone(), now, generation) {
                        continue;
                    }
                    found
                }
            };
            if let Some(p) = &found {
                self.touch_when_due(&p.key_id, now);
            }
            return Ok(found);
        }
        Ok(None)
    }

    /// Enables the store tenant `name` (see [`Store::enable_tenant`]).
    pub async fn enable_tenant(&self, name: &str, by: &str) -> Result<bool, StoreError> {
        let enabled = self.store.enable_tenant(name, by, &keys::now()).await;
        self.forget_all();
        enabled
    }

    /// Disables the store tenant `name` and revokes its keys, here at once.
    pub async fn disable_tenant(&self, name: &str) -> Result<usize, StoreError> {
        let revoked = self.store.disable_tenant(name, &keys::now()).await;
        self.forget_all();
        revoked
    }

    /// Adds `key` (see [`Store::add_key`]); a lookup of it that found nothing is forgotten.
    pub async fn add_key(&self, key: &StoreKey) -> Result<KeyAdded, StoreError> {
        let added = self.store.add_key(key).await;
        self.forget_all();
        added
    }

    /// Revokes the key `id` (of `tenant` when given), here at once.
    pub async fn revoke_key(
        &self,
        id: &str,
        tenant: Option<&str>,
    ) -> Result<Revocation, StoreError> {
        let revoked = self.store.revoke_key(id, tenant, &keys::now()).await;
        self.forget_all();
        revoked
    }

    /// The config's tenant named `name` (or whose backend name it is), else a store tenant with
    /// the defaults.
    fn tenant_named(&self, name: &str) -> Arc<Tenant> {
        let by_name = self.config_tenants.iter().find(|t| t.name == name);
        let by_backend = || self.config_tenants.iter().find(|t| t.backend_name == name);
        match by_name.or_else(by_backend) {
            Some(t) => t.clone(),
            None => Arc::new(Tenant {
                name: name.to_string(),
                backend_name: name.to_string(),
            }),
        }
    }

    /// Keeps a lookup begun at `generation`, unless a change was made through this gateway
    /// since (then answers false).
    fn remember(
        &self,
        hash: [u8; 32],
        found: Option<Principal>,
        at: Instant,
        generation: u64,
    ) -> bool {
        let mut cache = self.cache();
        if cache.generation != generation {
            return false;
        }
        if cache.lookups.len() >= MAX_ENTRIES {
            cache
                .lookups
                .retain(|_, l| at.duration_since(l.at) < CACHE_BOUND);
            if cache.lookups.len() >= MAX_ENTRIES {
                cache.lookups.clear();
            }
        }
        cache.lookups.insert(hash, Lookup { found, at });
        true
    }

    /// Forgets every lookup, and every lookup in flight.
    fn forget_all(&self) {
        let mut cache = self.cache();
        cache.lookups.clear();
        cache.generation += 1;
    }

    /// Writes the key's last use in the background when this gateway has not for a while.
    fn touch_when_due(&self, id: &str, now: Instant) {
        {
            let mut cache = self.cache();
            let due = cache
                .touched
                .get(id)
                .is_none_or(|t| now.duration_since(*t) >= TOUCH_EVERY);
            if !due {
                return;
            }
            if cache.touched.len() >= MAX_ENTRIES {
                cache.touched.clear();
            }
            cache.touched.insert(id.to_string(), now);
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, id) = (self.store.clone(), id.to_string());
        rt.spawn(async move {
            if let Err(e) = store.touch_key(&id, &keys::now()).await {
                tracing::warn!(key_id = %id, error = %e, "cannot note a SCIM key's last use");
            }
        });
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ResolvedKeys for StoreKeys {
    fn principal(&self, hash: &[u8; 32]) -> Option<Principal> {
        let cache = self.cache();
        let lookup = cache.lookups.get(hash)?;
        let recent = lookup.at.elapsed() < CACHE_BOUND + CHECK_GRACE;
        recent.then(|| lookup.found.clone()).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{hash_key, key_id, ApiKey, AuthFailure};
    use crate::store::sqlite::SqliteStore;

    fn tenant(name: &str, backend: &str) -> Arc<Tenant> {
        Arc::new(Tenant {
            name: name.into(),
            backend_name: backend.into(),
        })
    }

    /// A store with the tenants `acme`, `globex` and `umbrella` enabled, and a key `key-<name>`
    /// for each.
    async fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("s")).unwrap());
        for name in ["acme", "globex", "umbrella"] {
            store.enable_tenant(name, "admin", "t0").await.unwrap();
            let secret = format!("key-{name}");
            let added = store.add_key(&stored(&secret, name)).await.unwrap();
            assert_eq!(added, KeyAdded::Added);
        }
        (dir, store)
    }

    fn stored(secret: &str, tenant: &str) -> StoreKey {
        let hash = hash_key(secret.as_bytes());
        StoreKey::new(
            &key_id(&hash),
            &hex::encode(hash),
            tenant,
            "",
            "admin",
            "t0",
        )
    }

    fn hash(secret: &str) -> [u8; 32] {
        hash_key(secret.as_bytes())
    }

    /// Makes every lookup of `keys` look `by` older.
    fn age(keys: &StoreKeys, by: Duration) {
        for l in keys.cache().lookups.values_mut() {
            l.at -= by;
        }
    }

    #[tokio::test]
    async fn a_store_key_acts_for_its_tenant_and_the_configs_tenant_of_that_name_wins() {
        let (_dir, store) = store().await;
        let (acme, umbrella) = (
            tenant("acme", "acme-ws"),
            tenant("umbrella-corp", "umbrella"),
        );
        let keys = Arc::new(StoreKeys::new(store, vec![acme.clone(), umbrella.clone()]));
        let ring = Keyring::new(vec![ApiKey::from_secret(acme.clone(), "config-key")])
            .with_resolved(keys.clone());
        let as_tenant = |p: Option<Principal>| p.map(|p| p.tenant);
        let found = as_tenant(keys.resolve(&hash("key-acme")).await.unwrap()).unwrap();
        assert!(Arc::ptr_eq(&found, &acme), "by name: {found:?}");
        let found = as_tenant(keys.resolve(&hash("key-umbrella")).await.unwrap()).unwrap();
        assert!(Arc::ptr_eq(&found, &umbrella), "by backend name: {found:?}");
        let found = as_tenant(keys.resolve(&hash("key-globex")).await.unwrap());
        assert_eq!(found.as_deref(), Some(&*tenant("globex", "globex")));

        let header = |secret: &str| format!("Bearer {secret}").into_bytes();
        let (globex, unknown) = (header("key-globex"), header("key-nobody"));
        let p = ring.authenticate(&[&globex]).unwrap();
        assert_eq!(p.key_id, key_id(&hash("key-globex")));
        assert_eq!(ring.unconfigured_key(&[&header("config-key")]), None);
        assert_eq!(ring.unconfigured_key(&[b"Basic x"]), None);
        keys.prepare(&ring, &[&unknown]).await.unwrap();
        assert_eq!(
            ring.authenticate(&[&unknown]).unwrap_err(),
            AuthFailure::Unknown
        );

        let fresh = StoreKeys::new(keys.store.clone(), Vec::new());
        let ring = Keyring::new(Vec::new()).with_resolved(Arc::new(fresh));
        assert_eq!(
            ring.authenticate(&[&globex]).unwrap_err(),
            AuthFailure::Unknown,
            "only a key looked up first"
        );
    }

    #[tokio::test]
    async fn a_revocation_here_acts_at_once_and_one_elsewhere_within_the_bound() {
        let (_dir, store) = store().await;
        let here = StoreKeys::new(store.clone(), Vec::new());
        let elsewhere = StoreKeys::new(store, Vec::new());
        let key = hash("key-acme");
        for gateway in [&here, &elsewhere] {
            assert!(gateway.resolve(&key).await.unwrap().is_some());
        }
        let id = key_id(&key);
        let revoked = elsewhere.revoke_key(&id, Some("acme")).await.unwrap();
        assert!(matches!(revoked, Revocation::Revoked(_)), "{revoked:?}");
        assert!(elsewhere.resolve(&key).await.unwrap().is_none(), "at once");
        assert!(elsewhere.principal(&key).is_none());
        assert!(here.resolve(&key).await.unwrap().is_some(), "remembered");
        age(&here, CACHE_BOUND);
        assert!(
            here.resolve(&key).await.unwrap().is_none(),
            "past the bound"
        );
        assert!(here.principal(&key).is_none());
    }

    #[tokio::test]
    async fn an_unknown_key_is_remembered_and_a_key_added_here_acts_at_once() {
        let (_dir, store) = store().await;
        let keys = StoreKeys::new(store.clone(), Vec::new());
        let new = hash("key-new");
        assert!(keys.resolve(&new).await.unwrap().is_none());
        store.add_key(&stored("key-new", "acme")).await.unwrap();
        assert!(keys.resolve(&new).await.unwrap().is_none(), "remembered");
        let other = stored("key-other", "globex");
        assert_eq!(keys.add_key(&other).await.unwrap(), KeyAdded::Added);
        assert!(keys.resolve(&new).await.unwrap().is_some(), "forgotten");
        assert!(keys.resolve(&hash("key-other")).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn tenants_enabled_and_disabled_here_act_at_once() {
        let (_dir, store) = store().await;
        let keys = StoreKeys::new(store, Vec::new());
        assert!(keys.resolve(&hash("key-acme")).await.unwrap().is_some());
        assert_eq!(keys.disable_tenant("acme").await.unwrap(), 1);
        assert!(keys.resolve(&hash("key-acme")).await.unwrap().is_none());
        assert!(keys.enable_tenant("acme", "admin").await.unwrap());
        let revoked = keys.resolve(&hash("key-acme")).await.unwrap();
        assert!(revoked.is_none(), "stays revoked");
        assert!(keys.resolve(&hash("key-globex")).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_keys_last_use_is_written_in_the_background_once_per_period() {
        let (_dir, store) = store().await;
        let keys = StoreKeys::new(store.clone(), Vec::new());
        let key = hash("key-acme");
        keys.resolve(&key).await.unwrap();
        let first = keys.cache().touched[&key_id(&key)];
        keys.resolve(&key).await.unwrap();
        assert_eq!(keys.cache().touched[&key_id(&key)], first, "not again");
        for _ in 0..100 {
            let used = store.tenant_keys("acme").await.unwrap()[0]
                .last_used_at
                .clone();
            if used.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the last use was not written");
    }
}
