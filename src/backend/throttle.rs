//! Backend throttling: recognising a backend that asks its callers to slow down (`429`, or `503`
//! with `Retry-After`), the wait it asks for, and token buckets that pace the gateway's own calls
//! to the backend, overall and per tenant, so a provisioning burst queues instead of tripping the
//! backend's limiter.

use super::spec::Rate;
use http::HeaderMap;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

/// The wait assumed when a `429` names none.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// True when an answer asks the caller to come back later.
pub fn is_throttled(status: u16, headers: &HeaderMap) -> bool {
    status == 429 || (status == 503 && headers.contains_key(http::header::RETRY_AFTER))
}

/// The wait `Retry-After` asks for (delta-seconds or an HTTP date, RFC 9110 §10.2.3), measured
/// from `now`; [`DEFAULT_RETRY_AFTER`] when absent or unreadable.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Duration {
    let Some(text) = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    else {
        return DEFAULT_RETRY_AFTER;
    };
    if let Ok(secs) = text.parse::<u64>() {
        return Duration::from_secs(secs);
    }
    match OffsetDateTime::parse(text, &Rfc2822) {
        Ok(at) => SystemTime::from(at)
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
        Err(_) => DEFAULT_RETRY_AFTER,
    }
}

/// Whole seconds for a `Retry-After` header, rounded up, at least one.
pub fn whole_seconds(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

/// A token bucket that may go into debt: a reserved call waits until its token has accrued.
#[derive(Debug, Clone)]
struct Bucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: Rate, now: Instant) -> Self {
        Bucket {
            rate,
            tokens: f64::from(rate.burst),
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens =
            (self.tokens + elapsed * self.rate.per_second).min(f64::from(self.rate.burst));
        self.at = self.at.max(now);
    }

    /// How long a call reserved now waits for its token.
    fn wait(&self) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.rate.per_second)
        }
    }
}

/// Paces calls to the backend with an overall bucket and one bucket per tenant.
#[derive(Debug)]
pub struct Pacer {
    overall: Option<Rate>,
    tenant: Option<Rate>,
    buckets: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    overall: Option<Bucket>,
    tenants: HashMap<String, Bucket>,
}

impl Pacer {
    /// A pacer for the configured rates (no pacing when both are `None`).
    pub fn new(overall: Option<Rate>, tenant: Option<Rate>) -> Self {
        Pacer {
            overall,
            tenant,
            buckets: Mutex::new(Buckets::default()),
        }
    }

    /// Reserves one call for `tenant` at `now`. `Ok(wait)`: the call may go after `wait` (at most
    /// `max_wait`). `Err(wait)`: it would have to wait longer than `max_wait`; nothing is reserved.
    pub fn reserve(
        &self,
        tenant: &str,
        now: Instant,
        max_wait: Duration,
    ) -> Result<Duration, Duration> {
        if self.overall.is_none() && self.tenant.is_none() {
            return Ok(Duration::ZERO);
        }
        let mut guard = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = &mut *guard;
        let overall = self
            .overall
            .map(|r| b.overall.get_or_insert_with(|| Bucket::new(r, now)));
        let tenant = match self.tenant {
            Some(r) => Some(
                b.tenants
                    .entry(tenant.to_string())
                    .or_insert_with(|| Bucket::new(r, now)),
            ),
            None => None,
        };
        let mut chosen: Vec<&mut Bucket> = overall.into_iter().chain(tenant).collect();
        let mut wait = Duration::ZERO;
        for bucket in chosen.iter_mut() {
            bucket.refill(now);
            wait = wait.max(bucket.wait());
        }
        if wait > max_wait {
            return Err(wait);
        }
        for bucket in chosen {
            bucket.tokens -= 1.0;
        }
        Ok(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_str(retry_after).unwrap(),
        );
        h
    }

    #[test]
    fn recognises_throttling_answers() {
        assert!(is_throttled(429, &HeaderMap::new()));
        assert!(is_throttled(503, &headers("2")));
        assert!(
            !is_throttled(503, &HeaderMap::new()),
            "a 503 without Retry-After is an outage"
        );
        assert!(!is_throttled(500, &headers("2")));
    }

    #[test]
    fn parses_retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(retry_after(&headers("3"), now), Duration::from_secs(3));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:40 GMT"), now),
            Duration::from_secs(3)
        );
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:30 GMT"), now),
            Duration::ZERO,
            "a date in the past means now"
        );
        assert_eq!(retry_after(&headers("soon"), now), DEFAULT_RETRY_AFTER);
        assert_eq!(retry_after(&HeaderMap::new(), now), DEFAULT_RETRY_AFTER);
    }

    #[test]
    fn whole_seconds_round_up() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1_200)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(3)), 3);
    }

    #[test]
    fn paces_bursts_then_queues_then_refuses() {
        let rate = Rate {
            per_second: 10.0,
            burst: 2,
        };
        let pacer = Pacer::new(Some(rate), None);
        let t0 = Instant::now();
        let max = Duration::from_millis(250);
        assert_eq!(pacer.reserve("a", t0, max), Ok(Duration::ZERO));
        assert_eq!(pacer.reserve("a", t0, max), Ok(Duration::ZERO));
        let third = pacer.reserve("a", t0, max).unwrap();
        assert!((third.as_secs_f64() - 0.1).abs() < 1e-6, "{third:?}");
        let fourth = pacer.reserve("b", t0, max).unwrap();
        assert!(
            (fourth.as_secs_f64() - 0.2).abs() < 1e-6,
            "queued behind the third: {fourth:?}"
        );
        let refused = pacer.reserve("a", t0, max).unwrap_err();
        assert!((refused.as_secs_f64() - 0.3).abs() < 1e-6, "{refused:?}");
        // The refusal reserved nothing: 300 ms later the debt is paid and one token is back.
        let later = t0 + Duration::from_millis(300);
        assert_eq!(pacer.reserve("a", later, max), Ok(Duration::ZERO));
    }

    #[test]
    fn tenants_have_their_own_buckets_under_the_overall_one() {
        let pacer = Pacer::new(
            Some(Rate {
                per_second: 100.0,
                burst: 100,
            }),
            Some(Rate {
                per_second: 1.0,
                burst: 1,
            }),
        );
        let t0 = Instant::now();
        let max = Duration::from_millis(10);
        assert_eq!(pacer.reserve("a", t0, max), Ok(Duration::ZERO));
        assert!(
            pacer.reserve("a", t0, max).is_err(),
            "tenant a is out of tokens"
        );
        assert_eq!(
            pacer.reserve("b", t0, max),
            Ok(Duration::ZERO),
            "b is not slowed by a"
        );
        assert_eq!(
            Pacer::new(None, None).reserve("a", t0, Duration::ZERO),
            Ok(Duration::ZERO)
        );
    }
}
