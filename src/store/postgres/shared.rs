//! Connections shared by every single statement of one kind (reads, or writes). The driver
//! pipelines the statements of concurrent callers on one connection: the server takes what is
//! queued in one wake-up and answers each in turn, instead of one pooled connection (and one
//! server process woken) per statement. A statement checks nothing out and costs its caller no
//! hop to another runtime: it is sent on the shared connection from wherever the caller runs;
//! only the connection's socket task lives on the store's runtime, where connections open.
//!
//! Each statement is its own transaction, as on a pooled connection. A connection that closed,
//! or that left a statement unanswered past the statement timeout, is retired: taken out of its
//! slot, so the next statement through that slot opens a new one, and closed once the last
//! statement or hold still on it is done. Waiting for a slot's connection to open is bounded by
//! `pool_wait`, opening it by `connect_timeout`.

use super::super::{OpenError, StoreError};
use super::batch_queue::BatchQueue;
use super::errors::{classify, no_answer};
use super::lock_batch::{self, Answered, FollowUp, LockOp};
use super::runtime;
use super::settings::PgSettings;
use super::write_batch::{self, Together, Write};
use futures::future::{join, join_all};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement};

/// Connections shared by reads: each is one server process, and a pipelined statement costs it
/// a few tens of microseconds, so two carry far more reads than a gateway receives.
pub(super) const READS: usize = 2;
/// Connections shared by writes and uncontended holds: one, so that the writes of concurrent
/// requests queue for one batch ([`super::write_batch`], [`super::lock_batch`]) and wake one
/// server process. Under S6's load a second connection halved the batches and cost the server
/// about a quarter more CPU per write; one still takes thousands of writes a second.
pub(super) const WRITES: usize = 1;

/// One set of shared connections.
pub(super) struct Shared {
    slots: Vec<Slot>,
    next: AtomicUsize,
    config: Config,
    pool_wait: Duration,
    connect_timeout: Duration,
    statement_timeout: Duration,
    rt: Handle,
}

/// One shared connection, or none until the next statement opens it.
#[derive(Default)]
struct Slot {
    session: Mutex<Option<Arc<Session>>>,
    /// Held while a connection opens, so that a burst of statements opens one, not one each.
    opening: tokio::sync::Mutex<()>,
}

/// An open connection and the statements prepared on it.
struct Session {
    client: Client,
    prepared: Mutex<HashMap<&'static str, Statement>>,
    /// The advisory lock requests waiting for this connection's next batch.
    locks: BatchQueue<lock_batch::Request>,
    /// The notes and records waiting for this connection's next batch of writes.
    writes: BatchQueue<write_batch::Request>,
}

/// A shared connection taken for one or more statements; holding it keeps the connection open
/// (also after it is retired).
#[derive(Clone)]
pub(super) struct SharedConn {
    shared: Arc<Shared>,
    slot: usize,
    session: Arc<Session>,
}

impl Shared {
    /// `connections` connections to the server `settings` name, opened on first use.
    pub(super) fn new(
        settings: &PgSettings,
        connections: usize,
        rt: Handle,
    ) -> Result<Arc<Shared>, OpenError> {
        Ok(Arc::new(Shared {
            slots: (0..connections).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            config: settings.driver_config(settings.statement_timeout)?,
            pool_wait: settings.pool_wait,
            connect_timeout: settings.connect_timeout,
            statement_timeout: settings.statement_timeout,
            rt,
        }))
    }

    /// How many connections the set opens at most.
    pub(super) fn size(&self) -> usize {
        self.slots.len()
    }

    /// How many of the connections are open now.
    pub(super) fn open(&self) -> usize {
        self.slots.iter().filter(|s| s.current().is_some()).count()
    }

    /// Runs one statement on the next connection.
    pub(super) async fn query(
        self: &Arc<Self>,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        self.conn().await?.query(sql, params).await
    }

    /// The next connection in turn, opening it when its slot has none.
    pub(super) async fn conn(self: &Arc<Self>) -> Result<SharedConn, StoreError> {
        let at = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let session = self.session(&self.slots[at]).await?;
        Ok(SharedConn {
            shared: self.clone(),
            slot: at,
            session,
        })
    }

    async fn session(&self, slot: &Slot) -> Result<Arc<Session>, StoreError> {
        if let Some(session) = slot.current() {
            return Ok(session);
        }
        let _opening = tokio::time::timeout(self.pool_wait, slot.opening.lock())
            .await
            .map_err(|_| {
                StoreError::Busy(format!(
                    "a connection to PostgreSQL stayed unopened for {} ms (store.pool_wait_ms)",
                    self.pool_wait.as_millis()
                ))
            })?;
        if let Some(session) = slot.current() {
            return Ok(session);
        }
        let (config, limit) = (self.config.clone(), self.connect_timeout);
        let client = runtime::run(&self.rt, async move {
            // The driver's own connect timeout covers reaching the server, not its handshake.
            let (client, connection) = tokio::time::timeout(limit, config.connect(NoTls))
                .await
                .map_err(|_| {
                    StoreError::Unavailable("PostgreSQL did not accept a connection in time".into())
                })?
                .map_err(|e| classify(&e))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "a shared PostgreSQL connection ended");
                }
            });
            Ok::<_, StoreError>(client)
        })
        .await?;
        let session = Arc::new(Session {
            client,
            prepared: Mutex::new(HashMap::new()),
            locks: BatchQueue::default(),
            writes: BatchQueue::default(),
        });
        if let Ok(mut current) = slot.session.lock() {
            *current = Some(session.clone());
        }
        Ok(session)
    }
}

impl SharedConn {
    /// Asks `op` of `key`'s advisory lock on this session, in its next batch of lock statements
    /// ([`super::lock_batch`]): sent at once when no batch is in flight, else with the requests
    /// that queued behind it.
    pub(super) async fn lock(&self, key: i64, op: LockOp) -> Result<bool, StoreError> {
        Ok(self.lock_then(key, op, None).await?.done)
    }

    /// [`SharedConn::lock`], with `then` run right behind the batch on this session.
    pub(super) async fn lock_then(
        &self,
        key: i64,
        op: LockOp,
        then: Option<FollowUp>,
    ) -> Result<Answered, StoreError> {
        let (request, answer) = lock_batch::Request::new(key, op, then);
        if self.session.locks.push(request) {
            self.shared.rt.spawn(self.clone().send_locks());
        }
        answer.get().await
    }

    /// Sends this session's queued lock requests, batch after batch, until none is left.
    async fn send_locks(self) {
        let this = &self;
        let send = move |batch| this.send_lock_batch(batch);
        self.session.locks.drain(lock_batch::MOST, send).await;
    }

    /// Sends one batch of lock requests, and the follow-ups of the batch right behind it, before
    /// its answer is awaited.
    async fn send_lock_batch(&self, batch: Vec<lock_batch::Request>) {
        let (sql, keys, takes) = lock_batch::statement(&batch);
        // The driver sends a statement when its query is first polled, unless it must be
        // prepared first: prepared beforehand, the batch goes first (`join` polls it first),
        // so every follow-up runs after its lock was taken.
        let follow_ups = batch.iter().filter_map(|r| r.then.as_ref().map(|f| f.sql));
        let (rows, thens) = match self.prepare(sql, follow_ups).await {
            Ok(()) => {
                let thens = join_all(batch.iter().map(|r| async {
                    match &r.then {
                        Some(follow_up) => Some(self.query_text(follow_up).await),
                        None => None,
                    }
                }));
                join(self.query(sql, &[&keys, &takes]), thens).await
            }
            Err(e) => (Err(e), Vec::new()),
        };
        lock_batch::answer(batch, rows, thens);
    }

    /// Makes `write` in this session's next batch of writes ([`super::write_batch`]): sent at
    /// once when no batch is in flight, else with the writes that queued behind it.
    pub(super) async fn write(&self, write: Write) -> Result<(), StoreError> {
        let (request, answer) = write_batch::Request::new(write);
        if self.session.writes.push(request) {
            self.shared.rt.spawn(self.clone().send_writes());
        }
        answer.get().await
    }

    /// Sends this session's queued writes, batch after batch, until none is left: the notes and
    /// each tenant's records of a batch, a statement for each group, back to back.
    async fn send_writes(self) {
        let this = &self;
        let send = move |batch| async move {
            let groups = write_batch::groups(batch);
            join_all(groups.into_iter().map(|g| this.write_together(g))).await;
        };
        self.session.writes.drain(write_batch::MOST, send).await;
    }

    /// Makes the writes of `group` (one of [`write_batch::groups`]) in one statement. A group
    /// the server refuses (this session still in service) goes again one by one.
    async fn write_together(&self, group: Vec<write_batch::Request>) {
        if group.len() > 1 {
            let written = {
                let together = Together::new(&group);
                let (sql, params) = together.statement();
                self.query(sql, &params).await.map(drop)
            };
            if written.is_ok() || !self.in_service() {
                for request in group {
                    request.answer(written.clone());
                }
                return;
            }
        }
        join_all(group.into_iter().map(|request| async move {
            let written = {
                let (sql, params) = request.alone();
                self.query(sql, &params).await.map(drop)
            };
            request.answer(written);
        }))
        .await;
    }

    /// Whether this connection still takes statements: open, and not retired.
    fn in_service(&self) -> bool {
        let current = self.shared.slots[self.slot].current();
        current.is_some_and(|c| Arc::ptr_eq(&c, &self.session))
    }

    /// Prepares the batch statement `sql` and the follow-ups' statements on this session.
    async fn prepare(
        &self,
        sql: &'static str,
        follow_ups: impl Iterator<Item = &'static str>,
    ) -> Result<(), StoreError> {
        for sql in std::iter::once(sql).chain(follow_ups) {
            self.timed(self.session.statement(sql)).await?;
        }
        Ok(())
    }

    /// Runs a follow-up statement, its parameters all text.
    async fn query_text(&self, follow_up: &FollowUp) -> Result<Vec<Row>, StoreError> {
        let params: Vec<&(dyn ToSql + Sync)> = follow_up
            .params
            .iter()
            .map(|p| p as &(dyn ToSql + Sync))
            .collect();
        self.query(follow_up.sql, &params).await
    }

    /// Runs one statement within the statement timeout.
    pub(super) async fn query(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        self.timed(async {
            let statement = self.session.statement(sql).await?;
            self.session.client.query(&statement, params).await
        })
        .await
    }

    /// Waits for one exchange with the server within the statement timeout. A connection that
    /// closed, or did not answer in time, is retired.
    async fn timed<T>(
        &self,
        exchange: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.shared.statement_timeout, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                if self.session.client.is_closed() {
                    self.retire();
                }
                Err(classify(&e))
            }
            Err(_) => {
                // Every statement behind the unanswered one waits on it: use a fresh connection.
                self.retire();
                Err(no_answer(self.shared.statement_timeout))
            }
        }
    }

    /// Takes this connection out of its slot (unless it was replaced already): no statement
    /// starts on it any more, and it closes when the last holder of it lets go.
    pub(super) fn retire(&self) {
        if let Ok(mut current) = self.shared.slots[self.slot].session.lock() {
            if current
                .as_ref()
                .is_some_and(|c| Arc::ptr_eq(c, &self.session))
            {
                *current = None;
            }
        }
    }
}

impl Slot {
    /// The slot's connection, if it is open.
    fn current(&self) -> Option<Arc<Session>> {
        let current = self.session.lock().ok()?;
        current.as_ref().filter(|s| !s.client.is_closed()).cloned()
    }
}

impl Session {
    /// `sql` prepared on this connection, once.
    async fn statement(&self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        let known = self.prepared.lock().ok().and_then(|p| p.get(sql).cloned());
        if let Some(statement) = known {
            return Ok(statement);
        }
        let statement = self.client.prepare(sql).await?;
        if let Ok(mut prepared) = self.prepared.lock() {
            prepared.insert(sql, statement.clone());
        }
        Ok(statement)
    }
}
