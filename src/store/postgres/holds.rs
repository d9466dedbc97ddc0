//! Holds across a fleet: [`crate::store::Store::serialise`] for PostgreSQL. A hold is a
//! session-level advisory lock keyed by a hash of the tenant and
//! [`crate::store::ResourceKey::folded`], kept until the hold is dropped. Gateways of one fleet
//! exclude each other through the database; within a gateway, holders first queue on an
//! in-process lock of their key, so a burst on one key waits in memory, and no two holders of one
//! key in a gateway ever ask the database at once.
//!
//! Where the lock is taken: a key no gateway holds (the usual case) is locked with
//! `pg_try_advisory_lock` on the shared write connection ([`super::shared`]), and unlocked
//! there, each in one statement with the other lock requests queued on that connection
//! ([`super::lock_batch`]), which may carry a statement to run once the lock is had (a write's
//! read of its record). A key another gateway holds is waited for with
//! `pg_advisory_lock` on a connection of a pool kept for holds, which a waiting session blocks.
//! Advisory locks are re-entrant within a session, so a shared session must never be asked for a
//! key it still holds: the in-process lock of a key is released only after its unlock was
//! confirmed, or after the session that could not confirm it was retired (no new statement starts
//! on it; it closes, dropping its locks, once the holds still on it end).
//!
//! Waiting is bounded by `lock_wait`: the in-process lock, a free connection and the advisory
//! lock (`lock_timeout`) must all be had by then, or the answer is [`StoreError::Busy`].
//!
//! Release: dropping the hold sends `pg_advisory_unlock`; a pooled connection goes back to its
//! pool only once the server confirmed it. If the unlock cannot be sent or is not confirmed in
//! time, a pooled connection is closed instead (the server ends the session and drops its locks)
//! and a shared one is retired; a connection holding a lock never goes back to the pool. A
//! gateway that dies loses its connections, and the server releases their locks the same way.

use super::super::key_locks::{KeyGuard, KeyLocks};
use super::super::StoreError;
use super::errors::{classify, no_answer, pool_failure};
use super::lock_batch::{FollowUp, LockOp};
use super::runtime;
use super::shared::{Shared, SharedConn};
use deadpool_postgres::{Object, Pool};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::time::{timeout_at, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

/// How long a release waits for the server to confirm an unlock before closing the connection.
const UNLOCK_WAIT: Duration = Duration::from_secs(5);

/// The holds of one store.
pub(super) struct Holds {
    pool: Pool,
    shared: Arc<Shared>,
    /// This gateway's holders, by advisory lock key.
    local: KeyLocks<i64>,
    wait: Duration,
    statement_timeout: Duration,
    rt: Handle,
}

/// One hold: the key's in-process lock and the advisory lock on a connection, until dropped.
pub(super) struct Hold {
    conn: Option<Locked>,
    local: Option<KeyGuard<i64>>,
    key: i64,
    rt: Handle,
}

/// The connection an advisory lock was taken on.
enum Locked {
    /// A shared write connection (the lock was free).
    Shared(SharedConn),
    /// A connection of the pool for holds (the lock was waited for).
    Own(Box<LockedConn>),
}

/// A pooled connection holding an advisory lock: closed, not returned to its pool, unless
/// [`LockedConn::unlocked`] is called after the server confirmed the unlock.
struct LockedConn(Option<Object>);

impl LockedConn {
    fn client(&self) -> Option<&Object> {
        self.0.as_ref()
    }

    /// The lock is released: the connection may serve another hold.
    fn unlocked(mut self) {
        drop(self.0.take());
    }
}

impl Drop for LockedConn {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            // Out of the pool for good: dropping the client closes the session.
            drop(Object::take(conn));
        }
    }
}

impl Holds {
    /// Holds taken on `shared` connections when free, waited for on `pool`'s; waits at most
    /// `wait` in all.
    pub(super) fn new(
        pool: Pool,
        shared: Arc<Shared>,
        wait: Duration,
        statement_timeout: Duration,
        rt: Handle,
    ) -> Self {
        Holds {
            pool,
            shared,
            local: KeyLocks::new(),
            wait,
            statement_timeout,
            rt,
        }
    }

    /// How the pool of holds is used now.
    pub(super) fn status(&self) -> deadpool_postgres::Status {
        self.pool.status()
    }

    /// Waits (at most the configured time) until no holder of `folded` in `tenant` remains in
    /// any gateway of the fleet, then holds it.
    pub(super) async fn hold(&self, tenant: &str, folded: &str) -> Result<Hold, StoreError> {
        Ok(self.hold_then(tenant, folded, None).await?.0)
    }

    /// [`Holds::hold`], with `then` run once the lock is had, in the exchange that takes it
    /// when the key is free. Its answer is `None` when the lock had to be waited for: the
    /// caller runs it then.
    pub(super) async fn hold_then(
        &self,
        tenant: &str,
        folded: &str,
        then: Option<FollowUp>,
    ) -> Result<(Hold, Option<Result<Vec<Row>, StoreError>>), StoreError> {
        let key = lock_key(tenant, folded);
        let deadline = Instant::now() + self.wait;
        let local = timeout_at(deadline, self.local.lock(key))
            .await
            .map_err(|_| busy(folded, self.wait, "another request of this gateway"))?;
        let hold = |conn| Hold {
            conn: Some(conn),
            local: Some(local),
            key,
            rt: self.rt.clone(),
        };
        // Free in the whole fleet (the usual case): held after one batch of lock statements.
        let shared = self.shared.conn().await?;
        let unanswered = RetireIfDropped(Some(&shared));
        let answered = shared.lock_then(key, LockOp::TryLock, then).await?;
        unanswered.answered();
        if answered.done {
            return Ok((hold(Locked::Shared(shared)), answered.then));
        }
        drop(shared);
        // Another gateway holds it: wait for it in the database on a connection of its own,
        // opened (when the pool opens one) on the store's runtime.
        let (pool, folded_key) = (self.pool.clone(), folded.to_string());
        let (wait, statement_timeout) = (self.wait, self.statement_timeout);
        let conn = runtime::run(&self.rt, async move {
            wait_for(&pool, key, deadline, wait, statement_timeout, &folded_key).await
        })
        .await?;
        Ok((hold(Locked::Own(Box::new(conn))), None))
    }
}

/// Takes `key`'s advisory lock on a connection of `pool`, waiting in the database until
/// `deadline` for the gateway that holds it.
async fn wait_for(
    pool: &Pool,
    key: i64,
    deadline: Instant,
    wait: Duration,
    statement_timeout: Duration,
    folded: &str,
) -> Result<LockedConn, StoreError> {
    let conn = match timeout_at(deadline, pool.get()).await {
        Ok(conn) => LockedConn(Some(conn.map_err(|e| pool_failure(e, wait))?)),
        Err(_) => return Err(busy(folded, wait, "other requests of this gateway")),
    };
    let Some(client) = conn.client() else {
        return Err(StoreError::Unavailable("lost a store connection".into()));
    };
    let attempt = async {
        // Free by now: held after one prepared statement.
        if run_bool(client, TRY_LOCK, key).await? {
            return Ok(());
        }
        // Rounded up: the database gives up at the deadline, never before it.
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_micros()
            .div_ceil(1000)
            .max(1);
        let lock = format!("SET lock_timeout = {left}; SELECT pg_advisory_lock('{key}'::bigint)");
        client.simple_query(&lock).await.map(drop)
    };
    match timeout_at(deadline + statement_timeout, attempt).await {
        // The lock may still be granted later: the connection is closed with `conn`.
        Err(_) => Err(no_answer(wait + statement_timeout)),
        Ok(Err(e)) => {
            // The server refused the statement, so the session holds no lock.
            conn.unlocked();
            Err(if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
                busy(folded, wait, "another gateway")
            } else {
                classify(&e)
            })
        }
        Ok(Ok(())) => Ok(conn),
    }
}

/// Retires a shared connection when dropped before [`RetireIfDropped::answered`]: a caller that
/// goes away while its lock statement is in flight may leave the lock granted to the session.
struct RetireIfDropped<'a>(Option<&'a SharedConn>);

impl RetireIfDropped<'_> {
    fn answered(mut self) {
        self.0 = None;
    }
}

impl Drop for RetireIfDropped<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.0 {
            conn.retire();
        }
    }
}

/// Waiting for `folded` took longer than `wait` because `what` held it.
fn busy(folded: &str, wait: Duration, what: &str) -> StoreError {
    StoreError::Busy(format!(
        "{what} held {folded} for longer than {} ms (store.lock_wait_ms)",
        wait.as_millis()
    ))
}

impl Drop for Hold {
    fn drop(&mut self) {
        let (conn, local, key) = (self.conn.take(), self.local.take(), self.key);
        self.rt.spawn(async move {
            match conn {
                Some(Locked::Own(conn)) => {
                    if let Some(client) = conn.client() {
                        if let Ok(Ok(_)) =
                            tokio::time::timeout(UNLOCK_WAIT, run_bool(client, UNLOCK, key)).await
                        {
                            conn.unlocked();
                        }
                    }
                }
                Some(Locked::Shared(conn)) => {
                    let unlocked = conn.lock(key, LockOp::Unlock).await;
                    if !matches!(unlocked, Ok(true)) {
                        // The session may still hold the key: no statement may start on it.
                        conn.retire();
                    }
                }
                None => {}
            }
            // The next holder in this gateway goes once the lock is free in the database.
            drop(local);
        });
    }
}

/// Takes the advisory lock if no session holds it, answering whether it did.
const TRY_LOCK: &str = "SELECT pg_try_advisory_lock($1)";
/// Releases the advisory lock, answering whether this session held it.
const UNLOCK: &str = "SELECT pg_advisory_unlock($1)";

/// Runs one of the lock statements above (prepared once per connection) for `key`.
async fn run_bool(client: &Object, sql: &str, key: i64) -> Result<bool, tokio_postgres::Error> {
    let statement = client.prepare_cached(sql).await?;
    client.query_one(&statement, &[&key]).await?.try_get(0)
}

/// The advisory lock key of `folded` in `tenant`: the first 8 bytes of a SHA-256, the same in
/// every gateway and every build.
pub(super) fn lock_key(tenant: &str, folded: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(b"scimgate hold\0")
        .chain_update(tenant.as_bytes())
        .chain_update(b"\0")
        .chain_update(folded.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_separate_tenants_and_kinds() {
        let k = lock_key("acme", "user:usr_bob");
        assert_eq!(k, lock_key("acme", "user:usr_bob"));
        assert_ne!(k, lock_key("other", "user:usr_bob"));
        assert_ne!(k, lock_key("acme", "userName:usr_bob"));
        assert_ne!(
            lock_key("a", "bc"),
            lock_key("ab", "c"),
            "the tenant is delimited"
        );
    }
}
