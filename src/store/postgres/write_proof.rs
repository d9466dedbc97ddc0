//! The pre-write check's shortcut: a write the server committed a moment ago proves it takes
//! writes, so [`crate::store::Store::check_writable`] need not ask again within
//! [`PROOF_LIFETIME`]. Under load every write is preceded by a recent one and the check costs no
//! statement; when the server stops taking writes inside that second, the write that follows the
//! check fails instead, and the directory undoes its backend change (as when the server fails
//! mid-request). A failed write forgets the proof at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a committed write vouches for the server.
pub(super) const PROOF_LIFETIME: Duration = Duration::from_secs(1);

/// When a write last committed, if recently.
pub(super) struct WriteProof {
    base: Instant,
    /// Nanoseconds from `base` to the last committed write, plus one; zero when there is none.
    last: AtomicU64,
}

impl WriteProof {
    pub(super) fn new() -> Self {
        WriteProof {
            base: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    /// A write committed at `now`.
    pub(super) fn note(&self, now: Instant) {
        let at = now.saturating_duration_since(self.base).as_nanos();
        let at = u64::try_from(at).unwrap_or(u64::MAX - 1) + 1;
        self.last.fetch_max(at, Ordering::Relaxed);
    }

    /// A write failed: the next check asks the server.
    pub(super) fn forget(&self) {
        self.last.store(0, Ordering::Relaxed);
    }

    /// Whether a write committed within [`PROOF_LIFETIME`] before `now`.
    pub(super) fn fresh(&self, now: Instant) -> bool {
        match self.last.load(Ordering::Relaxed) {
            0 => false,
            at => {
                let committed = self.base + Duration::from_nanos(at - 1);
                now.saturating_duration_since(committed) < PROOF_LIFETIME
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_vouches_for_a_second_and_a_failure_ends_it() {
        let proof = WriteProof::new();
        let t0 = Instant::now();
        assert!(!proof.fresh(t0), "no write yet");
        proof.note(t0);
        assert!(proof.fresh(t0));
        assert!(proof.fresh(t0 + PROOF_LIFETIME - Duration::from_millis(1)));
        assert!(!proof.fresh(t0 + PROOF_LIFETIME));
        proof.note(t0 + Duration::from_millis(900));
        proof.note(t0 + Duration::from_millis(100));
        assert!(
            proof.fresh(t0 + Duration::from_millis(1800)),
            "the latest write counts, whatever order the notes come in"
        );
        proof.forget();
        assert!(!proof.fresh(t0 + Duration::from_millis(901)));
    }
}
