//! In-process exclusive locks on exact keys, for the engines' holds ([`super::Store::serialise`]).
//! Holders of one key take turns; holders of different keys never wait for each other, so one
//! task may hold several keys at once (a group rename holds the group and its new name) without
//! waiting on itself. A key has an entry only while it is held or awaited.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// The locks of one store, by key.
pub(crate) struct KeyLocks<K: Hash + Eq + Clone + Send + 'static> {
    table: Arc<Mutex<HashMap<K, Slot>>>,
}

/// One key's lock and how many holders and waiters use it.
struct Slot {
    lock: Arc<AsyncMutex<()>>,
    users: usize,
}

/// One key held: released when dropped.
pub(crate) struct KeyGuard<K: Hash + Eq + Clone + Send + 'static> {
    // Fields drop in order: the lock is released before the entry may be removed.
    _held: OwnedMutexGuard<()>,
    _user: User<K>,
}

/// A holder's or waiter's share of a key's entry: the entry goes when the last share does, even
/// when a waiter is cancelled before it holds.
struct User<K: Hash + Eq + Clone + Send + 'static> {
    key: K,
    table: Arc<Mutex<HashMap<K, Slot>>>,
}

impl<K: Hash + Eq + Clone + Send + 'static> KeyLocks<K> {
    /// No key held.
    pub(crate) fn new() -> Self {
        KeyLocks {
            table: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Waits until no other holder of `key` remains, then holds it until the guard is dropped.
    pub(crate) async fn lock(&self, key: K) -> KeyGuard<K> {
        let (user, lock) = self.join(key);
        KeyGuard {
            _held: lock.lock_owned().await,
            _user: user,
        }
    }

    /// Counts a new user of `key`'s entry (made if missing) and answers its lock.
    fn join(&self, key: K) -> (User<K>, Arc<AsyncMutex<()>>) {
        let mut table = entries(&self.table);
        let slot = table.entry(key.clone()).or_insert_with(|| Slot {
            lock: Arc::new(AsyncMutex::new(())),
            users: 0,
        });
        slot.users += 1;
        let lock = slot.lock.clone();
        drop(table);
        let user = User {
            key,
            table: self.table.clone(),
        };
        (user, lock)
    }

    /// How many keys are held or awaited now.
    #[cfg(test)]
    fn len(&self) -> usize {
        entries(&self.table).len()
    }
}

impl<K: Hash + Eq + Clone + Send + 'static> Drop for User<K> {
    fn drop(&mut self) {
        let mut table = entries(&self.table);
        if let Some(slot) = table.get_mut(&self.key) {
            slot.users -= 1;
            if slot.users == 0 {
                table.remove(&self.key);
            }
        }
    }
}

/// The table, also after a panic elsewhere poisoned it (its counts are changed in single steps).
fn entries<K>(table: &Mutex<HashMap<K, Slot>>) -> MutexGuard<'_, HashMap<K, Slot>> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::timeout;

    const WAIT: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn one_key_is_held_by_one_holder_at_a_time() {
        let locks = Arc::new(KeyLocks::new());
        let held = locks.lock("a".to_string()).await;
        assert!(timeout(WAIT, locks.lock("a".to_string())).await.is_err());
        let next = locks.clone();
        let waiting = tokio::spawn(async move {
            let _held = next.lock("a".to_string()).await;
        });
        tokio::time::sleep(WAIT).await;
        assert!(!waiting.is_finished(), "waits while the first holds");
        drop(held);
        timeout(WAIT, waiting).await.unwrap().unwrap();
        assert_eq!(
            locks.len(),
            0,
            "no entry is left once nobody holds or waits"
        );
    }

    #[tokio::test]
    async fn one_task_holds_any_number_of_different_keys_at_once() {
        let locks = KeyLocks::new();
        let mut held = Vec::new();
        for n in 0..10_000 {
            held.push(timeout(WAIT, locks.lock(n)).await.expect("a free key"));
        }
        assert_eq!(locks.len(), 10_000);
        drop(held);
        assert_eq!(locks.len(), 0);
    }

    #[tokio::test]
    async fn a_waiter_given_up_leaves_no_entry_behind() {
        let locks = KeyLocks::new();
        let held = locks.lock(7).await;
        assert!(timeout(WAIT, locks.lock(7)).await.is_err());
        assert_eq!(locks.len(), 1, "only the holder's entry");
        drop(held);
        assert_eq!(locks.len(), 0);
        let _again = timeout(WAIT, locks.lock(7)).await.expect("free again");
    }
}
