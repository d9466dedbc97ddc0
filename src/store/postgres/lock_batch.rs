//! The advisory lock statements of many holds in one statement. Every uncontended hold locks its
//! key on a shared write connection and unlocks it there ([`super::holds`]); sent one by one,
//! that is two statements per write. Instead, each shared connection queues the lock and unlock
//! requests of its holders ([`super::batch_queue`]) and sends them as one statement at a time.
//!
//! A lock request may bring a statement to run right behind its batch, on the same connection
//! ([`FollowUp`]): the read a write starts with. Sent with the batch, without waiting for its
//! answer, it costs no exchange of its own with the server, and still runs after the lock was
//! taken, in a transaction (and so with a snapshot) of its own.
//!
//! A batch never holds one key twice: a gateway's holders of a key queue on its in-process lock
//! first, which is released only after the key's unlock was answered. Each request gets its own
//! answer; a batch that fails (or is not answered in time, which retires the connection) fails
//! every request in it, as a single statement would.

use super::super::StoreError;
use tokio::sync::oneshot;
use tokio_postgres::Row;

/// At most this many requests go in one statement; the rest go in the next.
pub(super) const MOST: usize = 256;

/// Every request of the batch, in order: a lock taken if free, or a lock released. Answers, in
/// the same order, whether the lock was taken, or whether this session held it.
const LOCK_BATCH: &str = "SELECT CASE WHEN r.take THEN pg_try_advisory_lock(r.key) \
    ELSE pg_advisory_unlock(r.key) END \
    FROM unnest($1::bigint[], $2::boolean[]) WITH ORDINALITY AS r(key, take, at) ORDER BY r.at";

/// What a request asks of its advisory lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LockOp {
    /// `pg_try_advisory_lock`: answers whether the lock was taken.
    TryLock,
    /// `pg_advisory_unlock`: answers whether the session held it.
    Unlock,
}

/// A statement of text parameters sent right behind the batch of a request, on its connection.
pub(super) struct FollowUp {
    pub(super) sql: &'static str,
    pub(super) params: Vec<String>,
}

/// A request's answer: whether the lock was taken (or released), and what its [`FollowUp`]
/// answered. A follow-up's answer means nothing when the lock was not taken.
pub(super) struct Answered {
    pub(super) done: bool,
    pub(super) then: Option<Result<Vec<Row>, StoreError>>,
}

/// One queued request and where its answer goes.
pub(super) struct Request {
    key: i64,
    op: LockOp,
    pub(super) then: Option<FollowUp>,
    answer: oneshot::Sender<Result<Answered, StoreError>>,
}

impl Request {
    /// A request for `op` on `key`, with `then` to run behind its batch, and where its answer
    /// will arrive.
    pub(super) fn new(key: i64, op: LockOp, then: Option<FollowUp>) -> (Request, Answer) {
        let (answer, answered) = oneshot::channel();
        let request = Request {
            key,
            op,
            then,
            answer,
        };
        (request, Answer(answered))
    }
}

/// Where a request's answer arrives.
pub(super) struct Answer(oneshot::Receiver<Result<Answered, StoreError>>);

impl Answer {
    /// The request's answer, once its batch (and its follow-up) was answered.
    pub(super) async fn get(self) -> Result<Answered, StoreError> {
        self.0.await.map_err(|_| {
            StoreError::Unavailable("the batch of advisory lock statements was abandoned".into())
        })?
    }
}

/// The statement of `batch` and its parameters: each request's key and whether it takes.
pub(super) fn statement(batch: &[Request]) -> (&'static str, Vec<i64>, Vec<bool>) {
    let keys = batch.iter().map(|r| r.key).collect();
    let takes = batch.iter().map(|r| r.op == LockOp::TryLock).collect();
    (LOCK_BATCH, keys, takes)
}

/// Gives each request of `batch` its answer from the statement's `rows`, with its follow-up's
/// answer from `thens` (one per request, in the batch's order); a failed statement, or one that
/// did not answer each request, fails them all.
pub(super) fn answer(
    batch: Vec<Request>,
    rows: Result<Vec<Row>, StoreError>,
    thens: Vec<Option<Result<Vec<Row>, StoreError>>>,
) {
    let answers = rows.and_then(|rows| {
        let answers = rows
            .iter()
            .map(|row| row.try_get::<_, bool>(0))
            .collect::<Result<Vec<bool>, _>>()
            .map_err(|e| StoreError::Corrupt(format!("{LOCK_BATCH}: {e}")))?;
        if answers.len() != batch.len() {
            return Err(StoreError::Corrupt(format!(
                "{} answers to {} advisory lock requests",
                answers.len(),
                batch.len()
            )));
        }
        Ok(answers)
    });
    // A holder that went away retires the connection itself ([`super::holds`]).
    match answers {
        Ok(answers) => {
            for ((request, done), then) in batch.into_iter().zip(answers).zip(thens) {
                let _ = request.answer.send(Ok(Answered { done, then }));
            }
        }
        Err(e) => {
            for request in batch {
                let _ = request.answer.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: i64) -> (Request, Answer) {
        Request::new(key, LockOp::TryLock, None)
    }

    /// What a request was answered, without its follow-up's rows.
    async fn done(answer: Answer) -> Result<bool, StoreError> {
        answer.get().await.map(|a| a.done)
    }

    #[tokio::test]
    async fn each_request_gets_its_own_answer_and_a_failure_fails_them_all() {
        let (a, ra) = request(1);
        let (b, rb) = Request::new(2, LockOp::Unlock, None);
        let (_, keys, takes) = statement(&[a, b]);
        assert_eq!((keys, takes), (vec![1, 2], vec![true, false]));
        let (a, ra2) = request(1);
        let (b, rb2) = request(2);
        let failure = StoreError::Unavailable("gone".into());
        answer(vec![a, b], Err(failure.clone()), Vec::new());
        assert_eq!(done(ra2).await, Err(failure.clone()));
        assert_eq!(done(rb2).await, Err(failure));
        drop((ra, rb));
        let (a, ra) = request(1);
        answer(vec![a], Ok(Vec::new()), Vec::new());
        assert!(
            matches!(done(ra).await, Err(StoreError::Corrupt(_))),
            "no row for the request"
        );
    }
}
