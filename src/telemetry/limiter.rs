//! Rate limiting of failed SCIM authentications per client address: past the limit a client gets
//! `429` with `Retry-After` until its window ends. A valid key is never refused by the limiter.

use dashmap::DashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Entries kept before old windows are swept.
const SWEEP_AT: usize = 10_000;

/// Failure counts per client address.
pub struct AuthLimiter {
    max: u32,
    window: Duration,
    failures: DashMap<IpAddr, (Instant, u32)>,
}

impl AuthLimiter {
    /// Allows `max` failures per `window` and address.
    pub fn new(max: u32, window: Duration) -> Self {
        AuthLimiter {
            max,
            window,
            failures: DashMap::new(),
        }
    }

    /// Records a failure at `now`; answers how long the client must wait when it is over the limit.
    pub fn failed(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        if self.failures.len() >= SWEEP_AT {
            self.failures
                .retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let mut entry = self.failures.entry(client).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        (entry.1 > self.max).then(|| self.window.saturating_sub(now.duration_since(entry.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address_and_window() {
        let l = AuthLimiter::new(2, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        assert_eq!(l.failed(a, t0), None);
        assert_eq!(l.failed(a, t0), None);
        let wait = l.failed(a, t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(wait, Duration::from_secs(50));
        assert_eq!(l.failed(b, t0), None, "other addresses are not affected");
        assert_eq!(
            l.failed(a, t0 + Duration::from_secs(61)),
            None,
            "a new window starts"
        );
    }
}
