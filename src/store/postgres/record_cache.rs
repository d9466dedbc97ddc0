//! One gateway's cache of the user records it read, for reads that show users (GET, lists,
//! lookups) and never for the read a write starts from. It is used only while the gateway
//! receives the database's change notifications ([`super::listener`]): every update or deletion
//! of a user row, through any gateway, removes that user's entry when its notification arrives, and this
//! gateway's own writes remove theirs before they answer. The listener proves that notifications
//! flow with a heartbeat on their connection, and the cache is used only until a little after
//! the last proof ([`RecordCache::alive_until`]): notifications that stall on a connection that
//! stays open cannot keep a changed record showing for longer. Unused, the cache is empty.
//!
//! Only records found are kept: a user with no record is read from the database every time, so
//! a row being inserted needs no notification (no gateway can hold an entry for it). A read that
//! ran while any entry was removed does not fill the cache (its rows may predate the change):
//! every removal moves the *epoch*, and a fill must carry the epoch its read began in.

use super::super::UserRecord;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Entries kept at most; past it the cache starts again empty.
const CAPACITY: usize = 100_000;

/// The cache of one store.
pub(super) struct RecordCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Until when notifications are known to flow: the cache is used only before it.
    live_until: Option<Instant>,
    /// Moves with every removal.
    epoch: u64,
    /// By tenant, then id: looked up by `&str` without building a key.
    entries: HashMap<String, HashMap<String, UserRecord>>,
}

/// What a read may fill the cache with: issued before the read, valid while no entry was removed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket(u64);

/// A lookup's answer: the records found in the cache, and the ids to read from the database.
pub(super) struct Cached {
    pub(super) found: HashMap<String, UserRecord>,
    pub(super) missing: Vec<String>,
}

impl RecordCache {
    /// An empty cache, unused until [`RecordCache::go_live`].
    pub(super) fn new() -> Self {
        RecordCache {
            state: Mutex::new(State::default()),
        }
    }

    /// The cached records of `ids` in `tenant` and the ids to read, with the ticket to fill the
    /// cache with what is read; `None` while the cache is unused.
    pub(super) fn lookup(&self, tenant: &str, ids: &[String]) -> Option<(Cached, Ticket)> {
        let state = self.state();
        if !state.is_live() {
            return None;
        }
        let mut cached = Cached {
            found: HashMap::new(),
            missing: Vec::new(),
        };
        let kept = state.entries.get(tenant);
        for id in ids {
            match kept.and_then(|k| k.get(id)) {
                Some(record) => {
                    cached.found.insert(id.clone(), record.clone());
                }
                None => cached.missing.push(id.clone()),
            }
        }
        Some((cached, Ticket(state.epoch)))
    }

    /// Keeps the records a read found, unless an entry was removed since `ticket` was issued.
    pub(super) fn fill(&self, ticket: Ticket, tenant: &str, found: &HashMap<String, UserRecord>) {
        let mut state = self.state();
        if !state.is_live() || state.epoch != ticket.0 {
            return;
        }
        let kept: usize = state.entries.values().map(HashMap::len).sum();
        if kept + found.len() > CAPACITY {
            state.entries.clear();
        }
        let tenant_entries = state.entries.entry(tenant.to_string()).or_default();
        for (id, record) in found {
            tenant_entries.insert(id.clone(), record.clone());
        }
    }

    /// The user `id` of `tenant` changed.
    pub(super) fn forget(&self, tenant: &str, id: &str) {
        let mut state = self.state();
        state.epoch += 1;
        if let Some(kept) = state.entries.get_mut(tenant) {
            kept.remove(id);
        }
    }

    /// Anything may have changed (a notification that names no user, a failed statement).
    pub(super) fn forget_all(&self) {
        self.state().forget_all();
    }

    /// Notifications are received from now on, and known to flow until `until`: the cache
    /// starts, empty.
    pub(super) fn go_live(&self, until: Instant) {
        let mut state = self.state();
        state.forget_all();
        state.live_until = Some(until);
    }

    /// Notifications still flow: known until `until` now. Ignored unless live.
    pub(super) fn alive_until(&self, until: Instant) {
        let mut state = self.state();
        if state.live_until.is_some() {
            state.live_until = Some(until);
        }
    }

    /// Notifications stopped: the cache empties and is unused until they are received again.
    pub(super) fn go_dark(&self) {
        let mut state = self.state();
        state.forget_all();
        state.live_until = None;
    }

    /// Whether the cache is in use now.
    pub(super) fn is_live(&self) -> bool {
        self.state().is_live()
    }

    /// The state, also after a panic elsewhere poisoned it (each change is one step).
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn is_live(&self) -> bool {
        self.live_until.is_some_and(|t| Instant::now() < t)
    }

    fn forget_all(&mut self) {
        self.epoch += 1;
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn record(name: &str) -> UserRecord {
        UserRecord {
            shadow: json!({ "userName": name }),
            managed: true,
            created: "2026-01-01T00:00:00Z".into(),
            last_modified: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn in_a_minute() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    /// A cache live for a minute.
    fn live() -> RecordCache {
        let cache = RecordCache::new();
        cache.go_live(in_a_minute());
        cache
    }

    /// Looks `list` up and fills the cache with `found`, as a read would.
    fn read_through(cache: &RecordCache, list: &[&str], found: &[(&str, &str)]) {
        let (_, ticket) = cache.lookup("acme", &ids(list)).unwrap();
        let found = found
            .iter()
            .map(|(id, name)| (id.to_string(), record(name)))
            .collect();
        cache.fill(ticket, "acme", &found);
    }

    #[test]
    fn unused_until_live_and_emptied_when_dark() {
        let cache = RecordCache::new();
        assert!(cache.lookup("acme", &ids(&["u1"])).is_none());
        cache.alive_until(in_a_minute());
        assert!(!cache.is_live(), "a heartbeat alone starts nothing");
        cache.go_live(in_a_minute());
        read_through(&cache, &["u1"], &[("u1", "ann")]);
        assert_eq!(
            cache.lookup("acme", &ids(&["u1"])).unwrap().0.found.len(),
            1
        );
        cache.go_dark();
        assert!(cache.lookup("acme", &ids(&["u1"])).is_none());
        cache.go_live(in_a_minute());
        let (cached, _) = cache.lookup("acme", &ids(&["u1"])).unwrap();
        assert_eq!(cached.missing, ids(&["u1"]), "live again, but nothing kept");
    }

    #[test]
    fn unused_once_the_last_heartbeat_is_too_old() {
        let cache = RecordCache::new();
        cache.go_live(Instant::now() + Duration::from_millis(50));
        read_through(&cache, &["u1"], &[("u1", "ann")]);
        std::thread::sleep(Duration::from_millis(60));
        assert!(!cache.is_live());
        assert!(cache.lookup("acme", &ids(&["u1"])).is_none());
        cache.alive_until(in_a_minute());
        assert_eq!(
            cache.lookup("acme", &ids(&["u1"])).unwrap().0.found.len(),
            1
        );
    }

    #[test]
    fn hits_are_answered_and_the_rest_is_read() {
        let cache = live();
        read_through(&cache, &["u1", "u2"], &[("u1", "ann")]);
        let (cached, _) = cache.lookup("acme", &ids(&["u1", "u2", "u3"])).unwrap();
        assert_eq!(cached.found["u1"], record("ann"));
        assert_eq!(
            cached.missing,
            ids(&["u2", "u3"]),
            "no record is read again"
        );
        let (other, _) = cache.lookup("umbrella", &ids(&["u1"])).unwrap();
        assert_eq!(other.missing, ids(&["u1"]), "entries are per tenant");
    }

    #[test]
    fn a_change_removes_its_user_and_a_read_racing_it_fills_nothing() {
        let cache = live();
        read_through(&cache, &["u1", "u2"], &[("u1", "ann"), ("u2", "bob")]);
        cache.forget("acme", "u1");
        let (cached, ticket) = cache.lookup("acme", &ids(&["u1", "u2"])).unwrap();
        assert_eq!(cached.missing, ids(&["u1"]));
        assert!(cached.found.contains_key("u2"));
        // A change lands while u1 is read: the rows read may be older than it.
        cache.forget("acme", "u9");
        let stale = [("u1".to_string(), record("old"))].into_iter().collect();
        cache.fill(ticket, "acme", &stale);
        let (cached, _) = cache.lookup("acme", &ids(&["u1"])).unwrap();
        assert_eq!(cached.missing, ids(&["u1"]));
        cache.forget_all();
        let (cached, _) = cache.lookup("acme", &ids(&["u2"])).unwrap();
        assert_eq!(cached.missing, ids(&["u2"]));
    }
}
