//! Keepa's token bucket, as one model shared by the fake server, the
//! simulator and the budget's projection.
//!
//! The rules (see `docs/KEEPA_API.md` §1 and `workloads/README.md`):
//!
//! - Refill is a **step**: every 60 s the balance grows by the refill rate
//!   `R` in force at that instant. The first step lands 60 s after the bucket
//!   starts (or at the instant a server snapshot names).
//! - The balance is **capped** after each step, at `60 × R` unless a fixed cap
//!   is set. A balance above the cap (the rate just dropped) falls to the cap
//!   at the next step: tokens older than an hour expire.
//! - **Admission**: a request is executed when the balance is **> 0** and is
//!   charged in full, even into the negative; otherwise it is refused and
//!   nothing is charged.
//!
//! Everything here is pure arithmetic on integer milliseconds; nothing reads
//! a clock. Projections jump over constant-rate stretches in closed form, so
//! asking "when will the balance reach 10 000?" costs the same as asking
//! about the next minute.
//!
//! ```
//! use keepa::tokens::{Admission, BucketCap, RateSchedule, TokenBucket};
//!
//! // A 20/min plan, bucket full at t = 0.
//! let mut bucket = TokenBucket::new(RateSchedule::constant(20), BucketCap::default(), None, 0);
//! assert_eq!(bucket.balance(), 1200);
//! // Balance 1: a 90-token request still runs, and leaves -89.
//! bucket.spend(0, 1199);
//! assert_eq!(bucket.try_spend(0, 90), Admission::Admitted { balance_after: -89 });
//! // At -89 the next request is refused, free of charge.
//! assert_eq!(bucket.try_spend(1, 5), Admission::Refused);
//! // Refill alone reaches 1 after five steps (-89 + 5 × 20 = 11).
//! assert_eq!(bucket.when_balance_reaches(1), Some(5 * 60_000));
//! ```

use serde::{Deserialize, Serialize};

use crate::envelope::TokenSnapshot;

/// Milliseconds between refill steps.
pub const REFILL_INTERVAL_MS: i64 = 60_000;

/// The first refill step strictly after `t`, for steps every
/// [`REFILL_INTERVAL_MS`] through `anchor`.
pub fn step_after(anchor: i64, t: i64) -> i64 {
    anchor + ((t - anchor).div_euclid(REFILL_INTERVAL_MS) + 1) * REFILL_INTERVAL_MS
}

/// The largest balance the bucket holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BucketCap {
    /// A fixed number of tokens, whatever the rate.
    Fixed(i64),
    /// This many minutes of refill at the rate in force (Keepa: 60).
    MinutesOfRefill(i64),
}

impl Default for BucketCap {
    fn default() -> Self {
        BucketCap::MinutesOfRefill(60)
    }
}

impl BucketCap {
    /// The cap when the refill rate is `rate`.
    pub fn at_rate(self, rate: i64) -> i64 {
        match self {
            BucketCap::Fixed(n) => n,
            BucketCap::MinutesOfRefill(m) => m.saturating_mul(rate),
        }
    }
}

/// The refill rate over time: a rate, then changes at given instants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateSchedule {
    /// `(from_ms, rate)`, sorted by time; the first entry applies to all
    /// earlier instants too.
    changes: Vec<(i64, i64)>,
}

/// A rate schedule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// No entries.
    #[error("a refill schedule needs at least one [minute, rate] entry")]
    Empty,
    /// A negative rate.
    #[error("refill rate {rate} at minute {minute} is negative")]
    NegativeRate {
        /// The minute of the entry.
        minute: i64,
        /// The rate given.
        rate: i64,
    },
    /// Minutes out of order.
    #[error("refill schedule minutes must increase: {later} comes after {earlier}")]
    Unordered {
        /// The earlier entry's minute.
        earlier: i64,
        /// The later entry's minute.
        later: i64,
    },
}

impl RateSchedule {
    /// The same rate for ever.
    pub fn constant(rate: i64) -> Self {
        RateSchedule {
            changes: vec![(i64::MIN, rate.max(0))],
        }
    }

    /// A schedule from `[minute, rate]` pairs counted from `origin_ms`, as
    /// workload files write it (`[[0, 5], [1440, 25]]`). A change at minute
    /// `m` already applies to the refill step landing at minute `m`.
    pub fn from_minutes(origin_ms: i64, entries: &[(i64, i64)]) -> Result<Self, ScheduleError> {
        let Some(&(_, first_rate)) = entries.first() else {
            return Err(ScheduleError::Empty);
        };
        let mut changes = Vec::with_capacity(entries.len());
        let mut prev: Option<i64> = None;
        for &(minute, rate) in entries {
            if rate < 0 {
                return Err(ScheduleError::NegativeRate { minute, rate });
            }
            if let Some(p) = prev {
                if minute <= p {
                    return Err(ScheduleError::Unordered {
                        earlier: p,
                        later: minute,
                    });
                }
            }
            prev = Some(minute);
            let at = if changes.is_empty() {
                i64::MIN
            } else {
                origin_ms + minute * REFILL_INTERVAL_MS
            };
            changes.push((at, rate));
        }
        debug_assert_eq!(changes[0].1, first_rate);
        Ok(RateSchedule { changes })
    }

    /// The rate in force at `t`.
    pub fn rate_at(&self, t: i64) -> i64 {
        let i = self.changes.partition_point(|&(at, _)| at <= t);
        self.changes[i.saturating_sub(1)].1
    }

    /// The first change strictly after `t`.
    pub fn next_change_after(&self, t: i64) -> Option<i64> {
        let i = self.changes.partition_point(|&(at, _)| at <= t);
        self.changes.get(i).map(|&(at, _)| at)
    }

    /// Whether the rate never changes.
    pub fn is_constant(&self) -> bool {
        self.changes.len() == 1
    }
}

/// The outcome of [`TokenBucket::try_spend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The balance was positive: the request ran and was charged in full.
    Admitted {
        /// Balance after the charge; may be negative.
        balance_after: i64,
    },
    /// The balance was zero or negative: HTTP 429, nothing charged.
    Refused,
}

/// One refill step, as reported by [`TokenBucket::advance_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefillStep {
    /// When the step landed.
    pub at_ms: i64,
    /// Tokens the step added before capping.
    pub rate: i64,
    /// Balance right after the step (and the cap).
    pub balance_after: i64,
    /// Tokens the cap threw away at this step.
    pub wasted: i64,
}

/// A Keepa token bucket. See the [module docs](self) for the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    balance: i64,
    next_refill_at: i64,
    schedule: RateSchedule,
    cap: BucketCap,
}

impl TokenBucket {
    /// A bucket started at `start_ms` with `start_balance` tokens (`None`:
    /// full). The first refill step lands at `start_ms + 60 s`.
    pub fn new(
        schedule: RateSchedule,
        cap: BucketCap,
        start_balance: Option<i64>,
        start_ms: i64,
    ) -> Self {
        let full = cap.at_rate(schedule.rate_at(start_ms));
        TokenBucket {
            balance: start_balance.unwrap_or(full),
            next_refill_at: start_ms + REFILL_INTERVAL_MS,
            schedule,
            cap,
        }
    }

    /// The bucket a server snapshot describes: its balance, its next step,
    /// its rate held constant, and Keepa's cap of 60 minutes of refill (the
    /// cap is not in the envelope; 60 × R is Keepa's documented behaviour).
    pub fn from_snapshot(snapshot: &TokenSnapshot) -> Self {
        TokenBucket {
            balance: snapshot.tokens_left,
            next_refill_at: snapshot.next_refill_at_ms(),
            schedule: RateSchedule::constant(snapshot.refill_rate),
            cap: BucketCap::default(),
        }
    }

    /// The balance as of the last [`advance`](Self::advance) or spend.
    pub fn balance(&self) -> i64 {
        self.balance
    }

    /// When the next refill step lands.
    pub fn next_refill_at(&self) -> i64 {
        self.next_refill_at
    }

    /// The first refill step strictly after `t` (on this bucket's phase;
    /// `t` may lie before or after [`Self::next_refill_at`]).
    pub fn refill_step_after(&self, t: i64) -> i64 {
        step_after(self.next_refill_at, t)
    }

    /// Milliseconds from `now` to the next refill step (after advancing to `now`).
    pub fn refill_in(&self, now: i64) -> i64 {
        (self.next_refill_at - now).max(0)
    }

    /// The refill rate in force at `t`.
    pub fn rate_at(&self, t: i64) -> i64 {
        self.schedule.rate_at(t)
    }

    /// The cap in force at `t`.
    pub fn cap_at(&self, t: i64) -> i64 {
        self.cap.at_rate(self.schedule.rate_at(t))
    }

    /// The schedule.
    pub fn schedule(&self) -> &RateSchedule {
        &self.schedule
    }

    /// Replaces the rate schedule from now on (a plan change the server announced).
    pub fn set_schedule(&mut self, schedule: RateSchedule) {
        self.schedule = schedule;
    }

    /// Applies every refill step up to and including `now`; returns how many.
    pub fn advance(&mut self, now: i64) -> u64 {
        let mut steps = 0;
        while self.next_refill_at <= now {
            let (n, b) = self.jump(self.next_refill_at, self.balance, now);
            steps += n;
            self.balance = b;
            self.next_refill_at += n as i64 * REFILL_INTERVAL_MS;
        }
        steps
    }

    /// Like [`advance`](Self::advance), reporting each step to `on_step`.
    pub fn advance_with(&mut self, now: i64, mut on_step: impl FnMut(RefillStep)) {
        while self.next_refill_at <= now {
            let at = self.next_refill_at;
            let rate = self.schedule.rate_at(at);
            let cap = self.cap.at_rate(rate);
            let raw = self.balance.saturating_add(rate);
            let after = step_balance(self.balance, rate, cap);
            self.balance = after;
            self.next_refill_at += REFILL_INTERVAL_MS;
            on_step(RefillStep {
                at_ms: at,
                rate,
                balance_after: after,
                wasted: (raw - after).clamp(0, rate),
            });
        }
    }

    /// Keepa's admission rule at `now`: charge `cost` in full if the balance
    /// is positive, otherwise refuse and charge nothing.
    pub fn try_spend(&mut self, now: i64, cost: i64) -> Admission {
        self.advance(now);
        if self.balance > 0 {
            self.balance = self.balance.saturating_sub(cost);
            Admission::Admitted {
                balance_after: self.balance,
            }
        } else {
            Admission::Refused
        }
    }

    /// Charges `cost` at `now` without the admission check (a settlement of
    /// something already charged). A negative `cost` credits tokens back.
    pub fn spend(&mut self, now: i64, cost: i64) -> i64 {
        self.advance(now);
        self.balance = self.balance.saturating_sub(cost);
        self.balance
    }

    /// The balance at `at` if nothing is spent until then.
    pub fn projected_balance(&self, at: i64) -> i64 {
        let mut b = self.balance;
        let mut next = self.next_refill_at;
        while next <= at {
            let (n, nb) = self.jump(next, b, at);
            b = nb;
            next += n as i64 * REFILL_INTERVAL_MS;
        }
        b
    }

    /// The earliest refill step at which refill alone brings the balance to
    /// at least `level`, if nothing is spent meanwhile. `None` when refill
    /// can never reach it: the level is above every cap the schedule will
    /// allow, or the rate is zero for ever. When the balance is already at
    /// `level`, the answer is the last step that has landed (in the past).
    pub fn when_balance_reaches(&self, level: i64) -> Option<i64> {
        if self.balance >= level {
            return Some(self.next_refill_at - REFILL_INTERVAL_MS);
        }
        let mut b = self.balance;
        let mut next = self.next_refill_at;
        loop {
            let rate = self.schedule.rate_at(next);
            let cap = self.cap.at_rate(rate);
            let change = self.schedule.next_change_after(next);
            if rate > 0 && level <= cap {
                let need = level - b; // > 0
                let k = (need + rate - 1) / rate; // steps needed, >= 1
                let at = next + (k - 1) * REFILL_INTERVAL_MS;
                if change.is_none_or(|c| at < c) {
                    return Some(at);
                }
            }
            // Not reachable in this constant stretch: jump to its end.
            let c = change?;
            let (n, nb) = self.jump(next, b, c - 1);
            b = nb;
            next += n as i64 * REFILL_INTERVAL_MS;
            if b >= level {
                return Some(next - REFILL_INTERVAL_MS);
            }
        }
    }

    /// Applies, from step instant `first`, all steps up to `limit` that share
    /// `first`'s rate; returns (steps applied, balance after). At least one
    /// step when `first <= limit`.
    fn jump(&self, first: i64, balance: i64, limit: i64) -> (u64, i64) {
        if first > limit {
            return (0, balance);
        }
        let rate = self.schedule.rate_at(first);
        let cap = self.cap.at_rate(rate);
        let end = match self.schedule.next_change_after(first) {
            Some(c) => limit.min(c - 1),
            None => limit,
        };
        let n = (end - first) / REFILL_INTERVAL_MS + 1;
        // A balance above the cap drops to it at the first step; otherwise
        // growth stops at the cap.
        let after = if balance >= cap {
            cap
        } else {
            balance.saturating_add(rate.saturating_mul(n)).min(cap)
        };
        (n as u64, after)
    }
}

fn step_balance(balance: i64, rate: i64, cap: i64) -> i64 {
    balance.saturating_add(rate).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(rate: i64, start: Option<i64>) -> TokenBucket {
        TokenBucket::new(RateSchedule::constant(rate), BucketCap::default(), start, 0)
    }

    #[test]
    fn the_step_after_is_strictly_later_on_the_anchor_phase() {
        let a = 90_000;
        assert_eq!(step_after(a, 0), 30_000);
        assert_eq!(step_after(a, 89_999), 90_000);
        assert_eq!(step_after(a, 90_000), 150_000);
        assert_eq!(step_after(a, 200_000), 210_000);
    }

    #[test]
    fn refills_in_whole_steps_and_caps_at_sixty_minutes_of_rate() {
        let mut b = bucket(20, Some(0));
        b.advance(59_999);
        assert_eq!(b.balance(), 0, "no refill before the step");
        b.advance(60_000);
        assert_eq!(b.balance(), 20);
        b.advance(10 * 60_000 + 5);
        assert_eq!(b.balance(), 200);
        assert_eq!(b.refill_in(10 * 60_000 + 5), 60_000 - 5);
        b.advance(1_000 * 60_000);
        assert_eq!(b.balance(), 1200, "capped at 60 × R");
    }

    #[test]
    fn admission_charges_into_the_negative_and_refuses_at_zero() {
        let mut b = bucket(5, Some(1));
        assert_eq!(
            b.try_spend(0, 90),
            Admission::Admitted { balance_after: -89 }
        );
        assert_eq!(b.try_spend(0, 1), Admission::Refused);
        assert_eq!(b.balance(), -89, "a refusal charges nothing");
        let mut z = bucket(5, Some(0));
        assert_eq!(z.try_spend(0, 1), Admission::Refused);
    }

    #[test]
    fn schedule_changes_rate_and_cap_at_the_named_minute() {
        let s = RateSchedule::from_minutes(0, &[(0, 5), (2, 25), (5, 5)]).unwrap();
        let mut b = TokenBucket::new(s, BucketCap::default(), Some(0), 0);
        let mut steps = vec![];
        b.advance_with(6 * 60_000, |s| steps.push((s.rate, s.balance_after)));
        assert_eq!(
            steps,
            vec![(5, 5), (25, 30), (25, 55), (25, 80), (5, 85), (5, 90)]
        );
        // With a huge balance, the drop to 5/min caps it at 300.
        let s = RateSchedule::from_minutes(0, &[(0, 25), (2, 5)]).unwrap();
        let mut b = TokenBucket::new(s, BucketCap::default(), None, 0);
        assert_eq!(b.balance(), 1500);
        b.advance(60_000);
        assert_eq!(b.balance(), 1500);
        b.advance(120_000);
        assert_eq!(b.balance(), 300, "tokens above the new cap expire");
    }

    #[test]
    fn when_balance_reaches_is_exact_or_none() {
        let b = bucket(5, Some(-89));
        // -89 → needs 90 → 18 steps → step 18 lands at 18 min.
        assert_eq!(b.when_balance_reaches(1), Some(18 * 60_000));
        assert_eq!(b.projected_balance(18 * 60_000), 1);
        assert_eq!(b.projected_balance(18 * 60_000 - 1), -4);
        assert_eq!(b.when_balance_reaches(300), Some(78 * 60_000));
        assert_eq!(b.when_balance_reaches(301), None, "above the cap");
        assert_eq!(bucket(0, Some(0)).when_balance_reaches(1), None);
    }

    #[test]
    fn when_balance_reaches_crosses_schedule_changes() {
        // 5/min (cap 300) for 10 min, then 25/min (cap 1500).
        let s = RateSchedule::from_minutes(0, &[(0, 5), (10, 25)]).unwrap();
        let b = TokenBucket::new(s, BucketCap::default(), Some(0), 0);
        // 400 is above the first cap: only reachable after the upgrade.
        // Steps 1..=9 at 5/min give 45; steps from minute 10 at 25/min.
        let at = b.when_balance_reaches(400).unwrap();
        assert_eq!(b.projected_balance(at), 45 + 25 * 15);
        assert!(b.projected_balance(at - REFILL_INTERVAL_MS) < 400);
    }

    #[test]
    fn projection_matches_stepwise_advance() {
        let s = RateSchedule::from_minutes(0, &[(0, 7), (13, 3), (40, 50)]).unwrap();
        for start in [-500, -1, 0, 1, 100, 420] {
            let b0 = TokenBucket::new(s.clone(), BucketCap::default(), Some(start), 0);
            let mut stepped = b0.clone();
            for t in (0..120 * 60_000).step_by(17_000) {
                stepped.advance_with(t, |_| {});
                assert_eq!(
                    b0.projected_balance(t),
                    stepped.balance(),
                    "start {start} t {t}"
                );
                let mut jumped = b0.clone();
                jumped.advance(t);
                assert_eq!(jumped.balance(), stepped.balance());
            }
        }
    }

    #[test]
    fn snapshot_projection_uses_the_servers_phase() {
        let snap = TokenSnapshot {
            timestamp_ms: 1_000_000,
            tokens_left: -10,
            refill_in_ms: 500,
            refill_rate: 20,
        };
        let b = TokenBucket::from_snapshot(&snap);
        assert_eq!(b.projected_balance(1_000_499), -10);
        assert_eq!(b.projected_balance(1_000_500), 10);
        assert_eq!(b.when_balance_reaches(1), Some(1_000_500));
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert_eq!(
            RateSchedule::from_minutes(0, &[]),
            Err(ScheduleError::Empty)
        );
        assert!(RateSchedule::from_minutes(0, &[(0, 5), (0, 6)]).is_err());
        assert!(RateSchedule::from_minutes(0, &[(0, -5)]).is_err());
    }
}
