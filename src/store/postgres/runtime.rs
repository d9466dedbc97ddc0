//! The PostgreSQL engine's own tokio runtime. A driver connection is a task that owns its socket,
//! so it must live on a runtime that lives as long as the process: pingora runs each service on
//! runtimes of its own, a reload runs on a thread of its own, and tests start a runtime per test.
//! Every connection is opened, and every statement runs, here; callers on any runtime (or none)
//! wait for the answer.

use super::super::StoreError;
use std::future::Future;
use std::sync::OnceLock;
use tokio::runtime::{Builder, Handle, Runtime};

/// Worker threads of the store's runtime: one. The driver does little work per statement, and
/// with one thread a connection's socket task and the batch senders that feed it never wake each
/// other across threads: under S6's load a second thread cost more CPU than it saved.
const THREADS: usize = 1;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The store's runtime, started on first use and never stopped.
pub(super) fn handle() -> Result<Handle, StoreError> {
    let rt = RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(THREADS)
            .thread_name("scimgate-pg")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    match rt {
        Ok(rt) => Ok(rt.handle().clone()),
        Err(e) => Err(StoreError::Unavailable(format!(
            "cannot start the PostgreSQL store's threads: {e}"
        ))),
    }
}

/// Runs `work` on the store's runtime and waits for its answer from any async context. Dropping
/// the wait leaves `work` running to its end (an answer nobody takes is dropped there).
pub(super) async fn run<T, E, F>(rt: &Handle, work: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: Future<Output = Result<T, E>> + Send + 'static,
{
    rt.spawn(work).await.map_err(|e| E::from(stopped(e)))?
}

/// Runs `work` on the store's runtime and blocks the calling thread until it ends: for
/// synchronous callers (start-up, reload, commands), also on a thread that drives another runtime.
pub(super) fn block_on<T, E, F>(rt: &Handle, work: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: Future<Output = Result<T, E>> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        let _ = tx.send(work.await);
    });
    rx.recv()
        .map_err(|_| E::from(StoreError::Unavailable("a store task stopped".into())))?
}

/// A task of the store's runtime that ended without an answer (it panicked).
fn stopped(e: tokio::task::JoinError) -> StoreError {
    StoreError::Unavailable(format!("a store task stopped: {e}"))
}
