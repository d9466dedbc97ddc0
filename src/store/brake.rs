//! The brake on mass deprovisioning, as the store keeps it: one [`BrakeState`] per tenant (the
//! current window's count, whether the tenant is held) and the pure rule [`apply`] every engine
//! runs on it inside one transaction that holds the tenant's row, so gateways sharing a store
//! count together and none lets a deprovisioning past the threshold.
//!
//! Times are Unix seconds, given by the caller (`now`), never read from the clock here.

/// How many deactivations and deletes a tenant may have within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Most deprovisionings per window, whatever the tenant's size.
    pub max_count: u64,
    /// Most deprovisionings per window as a percentage of the tenant's managed users; none to
    /// count only `max_count`.
    pub max_percent: Option<u64>,
    /// The percentage never allows fewer than this many per window (small tenants).
    pub min_count: u64,
    /// The window's length in seconds, from its first deprovisioning.
    pub window_secs: u64,
}

impl Thresholds {
    /// How many deprovisionings a window allows a tenant with `managed` managed users.
    pub fn limit(&self, managed: u64) -> u64 {
        match self.max_percent {
            Some(p) => {
                let by_share = managed.saturating_mul(p) / 100;
                self.max_count.min(by_share.max(self.min_count))
            }
            None => self.max_count,
        }
    }
}

/// One tenant's brake as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BrakeState {
    /// When the current window began.
    pub window_start: i64,
    /// Deprovisionings let through in the current window.
    pub count: u64,
    /// Deprovisionings the current window allows beyond the threshold (granted by a release).
    pub allowance: u64,
    /// Since when the tenant is held; none while deprovisionings flow.
    pub held_since: Option<i64>,
    /// Deprovisionings refused since the tenant was held.
    pub held_requests: u64,
    /// How often the threshold was crossed, ever.
    pub trips: u64,
    /// When an operator last released the tenant.
    pub released_at: Option<i64>,
}

/// What to do to a tenant's brake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrakeChange {
    /// Count one deprovisioning of a tenant with `managed` managed users (ask for that number
    /// only when [`Thresholds::max_percent`] is set; otherwise pass 0).
    Admit {
        /// The tenant's thresholds.
        thresholds: Thresholds,
        /// The tenant's managed users now.
        managed: u64,
    },
    /// An operator lets deprovisionings through again: the hold ends and a fresh window opens
    /// that allows `allow` more than the threshold.
    Release {
        /// Deprovisionings allowed beyond the threshold in the fresh window.
        allow: u64,
    },
    /// An operator holds the tenant by hand.
    Hold,
}

impl BrakeChange {
    /// Whether [`apply`] needs the tenant's managed users counted.
    pub fn needs_managed_count(&self) -> bool {
        matches!(self, BrakeChange::Admit { thresholds, .. } if thresholds.max_percent.is_some())
    }

    /// This change with the tenant's managed users filled in.
    pub fn with_managed(self, n: u64) -> BrakeChange {
        match self {
            BrakeChange::Admit { thresholds, .. } => BrakeChange::Admit {
                thresholds,
                managed: n,
            },
            other => other,
        }
    }
}

/// What [`apply`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The deprovisioning may go to the backend (counted).
    Admitted,
    /// The tenant is held: the deprovisioning must not reach the backend. `tripped` is true for
    /// the one request that crossed the threshold.
    Held {
        /// This request put the tenant on hold.
        tripped: bool,
    },
    /// An operator's release or hold was applied.
    Changed,
}

/// The outcome of one change: the state as now stored, the verdict, and the limit the window
/// was measured against (0 for an operator's change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrakeOutcome {
    /// The tenant's brake after the change.
    pub state: BrakeState,
    /// What was decided.
    pub verdict: Verdict,
    /// The threshold of the window (without the allowance).
    pub limit: u64,
}

/// Applies `change` at `now` to a tenant's brake (`None` when the store has no row for it yet).
pub fn apply(state: Option<BrakeState>, change: BrakeChange, now: i64) -> BrakeOutcome {
    let mut s = state.unwrap_or(BrakeState {
        window_start: now,
        ..BrakeState::default()
    });
    let (verdict, limit) = match change {
        BrakeChange::Admit {
            thresholds,
            managed,
        } => {
            let limit = thresholds.limit(managed);
            (admit(&mut s, &thresholds, limit, now), limit)
        }
        BrakeChange::Release { allow } => {
            s.held_since = None;
            s.held_requests = 0;
            s.window_start = now;
            s.count = 0;
            s.allowance = allow;
            s.released_at = Some(now);
            (Verdict::Changed, 0)
        }
        BrakeChange::Hold => {
            if s.held_since.is_none() {
                s.held_since = Some(now);
                s.held_requests = 0;
            }
            (Verdict::Changed, 0)
        }
    };
    BrakeOutcome {
        state: s,
        verdict,
        limit,
    }
}

fn admit(s: &mut BrakeState, t: &Thresholds, limit: u64, now: i64) -> Verdict {
    if s.held_since.is_some() {
        s.held_requests += 1;
        return Verdict::Held { tripped: false };
    }
    let ends = s
        .window_start
        .saturating_add(i64::try_from(t.window_secs).unwrap_or(i64::MAX));
    // A clock that went back past the window's start opens a fresh window too.
    if now >= ends || now < s.window_start {
        s.window_start = now;
        s.count = 0;
        s.allowance = 0;
    }
    if s.count < limit.saturating_add(s.allowance) {
        s.count += 1;
        return Verdict::Admitted;
    }
    s.held_since = Some(now);
    s.held_requests = 1;
    s.trips += 1;
    Verdict::Held { tripped: true }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        max_count: 3,
        max_percent: None,
        min_count: 0,
        window_secs: 60,
    };

    fn admit_at(s: Option<BrakeState>, now: i64) -> BrakeOutcome {
        apply(
            s,
            BrakeChange::Admit {
                thresholds: T,
                managed: 0,
            },
            now,
        )
    }

    #[test]
    fn the_limit_is_the_smaller_of_count_and_share_but_never_below_the_floor() {
        let t = Thresholds {
            max_count: 100,
            max_percent: Some(10),
            min_count: 5,
            window_secs: 60,
        };
        assert_eq!(t.limit(10_000), 100, "the count caps a large tenant");
        assert_eq!(t.limit(400), 40, "10 % of 400");
        assert_eq!(t.limit(20), 5, "2 is below the floor of 5");
        assert_eq!(t.limit(0), 5, "an empty store still allows the floor");
        assert_eq!(T.limit(1_000_000), 3, "no percentage: the count alone");
    }

    #[test]
    fn deprovisionings_up_to_the_limit_pass_and_the_next_one_trips_the_brake() {
        let mut s = None;
        for n in 1..=3 {
            let o = admit_at(s, 100);
            assert_eq!(o.verdict, Verdict::Admitted);
            assert_eq!(o.state.count, n);
            s = Some(o.state);
        }
        let o = admit_at(s, 101);
        assert_eq!(o.verdict, Verdict::Held { tripped: true });
        assert_eq!(o.state.held_since, Some(101));
        assert_eq!((o.state.held_requests, o.state.trips), (1, 1));
        let o = admit_at(Some(o.state), 500);
        assert_eq!(
            o.verdict,
            Verdict::Held { tripped: false },
            "a held tenant stays held after its window ended"
        );
        assert_eq!((o.state.held_requests, o.state.trips), (2, 1));
    }

    #[test]
    fn a_new_window_starts_once_the_last_one_ended() {
        let mut s = None;
        for _ in 0..3 {
            s = Some(admit_at(s, 100).state);
        }
        let o = admit_at(s, 160);
        assert_eq!(o.verdict, Verdict::Admitted, "60 s later: a fresh window");
        assert_eq!((o.state.window_start, o.state.count), (160, 1));
        let o = admit_at(Some(o.state), 50);
        assert_eq!(
            o.verdict,
            Verdict::Admitted,
            "a clock gone back opens one too"
        );
        assert_eq!((o.state.window_start, o.state.count), (50, 1));
    }

    #[test]
    fn a_release_opens_a_fresh_window_with_its_allowance_and_a_hold_keeps_its_start() {
        let mut s = None;
        for _ in 0..4 {
            s = Some(admit_at(s, 100).state);
        }
        let released = apply(s, BrakeChange::Release { allow: 2 }, 200);
        assert_eq!(released.verdict, Verdict::Changed);
        assert_eq!(released.state.held_since, None);
        assert_eq!(released.state.released_at, Some(200));
        let mut s = Some(released.state);
        for _ in 0..5 {
            let o = admit_at(s, 210);
            assert_eq!(o.verdict, Verdict::Admitted, "3 + an allowance of 2");
            s = Some(o.state);
        }
        assert_eq!(admit_at(s, 211).verdict, Verdict::Held { tripped: true });
        let held = apply(None, BrakeChange::Hold, 300);
        assert_eq!(held.state.held_since, Some(300));
        let again = apply(Some(held.state), BrakeChange::Hold, 400);
        assert_eq!(
            again.state.held_since,
            Some(300),
            "held since the first hold"
        );
        assert_eq!(admit_at(Some(again.state), 401).state.trips, 0);
    }

    #[test]
    fn the_managed_count_is_asked_for_only_with_a_percentage() {
        let admit = BrakeChange::Admit {
            thresholds: T,
            managed: 0,
        };
        assert!(!admit.needs_managed_count());
        let share = BrakeChange::Admit {
            thresholds: Thresholds {
                max_percent: Some(5),
                ..T
            },
            managed: 0,
        };
        assert!(share.needs_managed_count());
        assert!(!BrakeChange::Hold.needs_managed_count());
        assert_eq!(
            share.with_managed(7),
            BrakeChange::Admit {
                thresholds: Thresholds {
                    max_percent: Some(5),
                    ..T
                },
                managed: 7
            }
        );
    }
}
