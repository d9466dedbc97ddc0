//! The queue behind every batch a shared connection sends ([`super::lock_batch`],
//! [`super::write_batch`]): while one batch is in flight, the next requests queue, and go
//! together when it is answered. Alone, a request goes at once; under load, one statement answers
//! many, as a group commit does.

use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The requests of one kind waiting for a connection's next batch.
pub(super) struct BatchQueue<T> {
    state: Mutex<Queued<T>>,
}

struct Queued<T> {
    requests: Vec<T>,
    /// A batch is in flight: its sender takes the queued requests next.
    sending: bool,
}

impl<T> Default for BatchQueue<T> {
    fn default() -> Self {
        BatchQueue {
            state: Mutex::new(Queued {
                requests: Vec::new(),
                sending: false,
            }),
        }
    }
}

impl<T> BatchQueue<T> {
    /// Queues a request; true when no batch is in flight, so the caller must start sending.
    pub(super) fn push(&self, request: T) -> bool {
        let mut queued = self.state();
        queued.requests.push(request);
        !std::mem::replace(&mut queued.sending, true)
    }

    /// The next batch, of at most `most` requests; empty when none is queued, which ends the
    /// sending.
    fn take(&self, most: usize) -> Vec<T> {
        let mut queued = self.state();
        let n = queued.requests.len().min(most);
        if n == 0 {
            queued.sending = false;
        }
        queued.requests.drain(..n).collect()
    }

    /// Sends batch after batch of at most `most` requests with `send`, until none is left; the
    /// caller is the one [`BatchQueue::push`] told to send.
    pub(super) async fn drain<F, Sent>(&self, most: usize, mut send: F)
    where
        F: FnMut(Vec<T>) -> Sent,
        Sent: Future<Output = ()>,
    {
        loop {
            let batch = self.take(most);
            if batch.is_empty() {
                return;
            }
            send(batch).await;
        }
    }

    /// The queue, also after a panic elsewhere poisoned it (each change is one step).
    fn state(&self) -> MutexGuard<'_, Queued<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_request_sends_and_the_rest_join_the_next_batch() {
        let queue = BatchQueue::default();
        assert!(queue.push(1), "nothing in flight: the caller sends");
        assert!(
            !queue.push(2),
            "a batch in flight: the request waits for it"
        );
        assert_eq!(queue.take(8), [1, 2]);
        assert!(queue.take(8).is_empty(), "drained: the sending ends");
        assert!(queue.push(3), "the next request sends again");
    }

    #[test]
    fn a_batch_holds_at_most_its_limit() {
        let queue = BatchQueue::default();
        for n in 0..11 {
            queue.push(n);
        }
        assert_eq!(queue.take(8).len(), 8);
        assert_eq!(queue.take(8), [8, 9, 10]);
        assert!(queue.take(8).is_empty());
    }
}
