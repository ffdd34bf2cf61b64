//! The ledger: the newest server snapshot plus the reservations in flight.
//!
//! Invariants (tested below and in `tests/ledger_*.rs`):
//!
//! 1. **The newest snapshot wins.** A snapshot is adopted only if it is
//!    newer by server time (`timestamp`, then `refillIn` phase, then a lower
//!    balance at the same millisecond: within one instant the server only
//!    charges). An older envelope never overwrites a newer one.
//! 2. **Reservations live apart from the snapshot.** Adopting a snapshot
//!    never erases a reservation; a reservation leaves only by its own
//!    settlement (charged, refused, unsent) or, for a timed-out request, when
//!    a snapshot newer than the timeout arrives (that snapshot includes the
//!    charge if there was one).
//! 3. **The projection is the server's bucket.** The balance at any instant
//!    is [`TokenBucket::from_snapshot`]'s projection (stepwise refill from
//!    `refillIn`, `refillRate`, capped) minus every open reservation.
//! 4. **Foreign spending is what the server took that we did not.** When a
//!    newer snapshot arrives at the same rate, the gap between the previous
//!    snapshot projected forward (minus our own charges in between) and the
//!    reported balance is attributed to other consumers of the key; a
//!    negative gap is never counted.

use std::collections::BTreeMap;

use keepa::tokens::{BucketCap, RateSchedule, TokenBucket, REFILL_INTERVAL_MS};
use keepa::TokenSnapshot;
use serde::{Deserialize, Serialize};

use crate::demand::{JobId, Millis};

/// Names one reservation in a [`Ledger`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReservationId(pub u64);

/// How a request ended, for [`Ledger::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The server answered and charged `consumed` (its `tokensConsumed`;
    /// settlement clamps it to `0..=`[`keepa::PLAUSIBLE`]`.max_abs_tokens`).
    Charged {
        /// What the request cost.
        consumed: i64,
        /// The response's token state, if it carried one.
        snapshot: Option<TokenSnapshot>,
    },
    /// HTTP 429: nothing charged; the body's envelope is the truth.
    Refused {
        /// The 429 body's token state.
        snapshot: Option<TokenSnapshot>,
    },
    /// No answer: it may have run. Counted as charged until a snapshot newer
    /// than this instant says otherwise.
    TimedOut {
        /// When the caller gave up (server time).
        at: Millis,
    },
    /// Never sent: the reservation is returned.
    Unsent,
}

/// A charge a server reports, within what any account can pay: never
/// negative, never more than [`keepa::envelope::PLAUSIBLE`] allows a
/// balance to hold, so the ledger's sums stay within `i64`.
pub(crate) fn plausible_charge(consumed: i64) -> i64 {
    consumed.clamp(0, keepa::envelope::PLAUSIBLE.max_abs_tokens)
}

impl Outcome {
    /// How a Keepa call ended, for settlement, received at server time `now`:
    ///
    /// - an answer is charged its `tokensConsumed` (`predicted` if absent);
    /// - a 429 is refused, with its envelope;
    /// - an error whose envelope says what it cost (Keepa's refusals; a 5xx
    ///   or an undecodable body that carried token fields) is charged that;
    /// - an error after which the request may have run unanswered (a
    ///   timeout once sent) is timed out at `now`;
    /// - any other failure never reached Keepa's meter: charged 0.
    pub fn of_call(
        result: &Result<keepa::Response, keepa::ApiError>,
        predicted: i64,
        now: Millis,
    ) -> Outcome {
        use keepa::ApiError;
        let err = match result {
            Ok(resp) => {
                return Outcome::Charged {
                    consumed: plausible_charge(resp.envelope.tokens_consumed.unwrap_or(predicted)),
                    snapshot: resp.snapshot(),
                }
            }
            Err(e) => e,
        };
        let snapshot = err.snapshot();
        let consumed = err
            .envelope()
            .and_then(|e| e.tokens_consumed)
            .map(plausible_charge);
        match err {
            ApiError::NotEnoughTokens(_) => Outcome::Refused { snapshot },
            _ if err.is_refusal() => Outcome::Charged {
                consumed: consumed.unwrap_or(0),
                snapshot,
            },
            ApiError::Server(_) | ApiError::Undecodable { .. } if consumed.is_some() => {
                Outcome::Charged {
                    consumed: consumed.unwrap_or(0),
                    snapshot,
                }
            }
            _ if err.may_have_been_charged() => Outcome::TimedOut { at: now },
            _ => Outcome::Charged {
                consumed: 0,
                snapshot,
            },
        }
    }

    /// What the outcome charged, if known (`None`: timed out, maybe charged).
    pub fn charged(&self) -> Option<i64> {
        match self {
            Outcome::Charged { consumed, .. } => Some(*consumed),
            Outcome::Refused { .. } | Outcome::Unsent => Some(0),
            Outcome::TimedOut { .. } => None,
        }
    }

    /// The envelope's token state the outcome carries.
    pub fn snapshot(&self) -> Option<TokenSnapshot> {
        match self {
            Outcome::Charged { snapshot, .. } | Outcome::Refused { snapshot } => *snapshot,
            Outcome::TimedOut { .. } | Outcome::Unsent => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reservation {
    job: JobId,
    amount: i64,
    /// Set when the request timed out: dropped once a snapshot newer than
    /// this arrives.
    timed_out_at: Option<Millis>,
}

/// Estimated spending by other consumers of the key.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ForeignEstimate {
    /// Tokens attributed to others so far.
    pub total: i64,
    /// Server time over which `total` was observed.
    pub observed_ms: i64,
    /// The largest gap seen between two consecutive snapshots.
    pub largest_gap: i64,
}

impl ForeignEstimate {
    /// Mean foreign spend per minute (0 before any observation).
    pub fn per_minute(&self) -> f64 {
        if self.observed_ms < REFILL_INTERVAL_MS {
            0.0
        } else {
            self.total as f64 * REFILL_INTERVAL_MS as f64 / self.observed_ms as f64
        }
    }
}

/// What the decision core sees of the ledger at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// The server's bucket from the newest snapshot, with every open
    /// reservation already taken off its balance.
    pub bucket: TokenBucket,
    /// The newest snapshot.
    pub snapshot: TokenSnapshot,
    /// Tokens held by open reservations.
    pub reserved: i64,
    /// Others' spending on this key.
    pub foreign: ForeignEstimate,
    /// When `/token` was last called.
    pub last_sync: Option<Millis>,
}

impl View {
    /// Projected balance at `at` (refill steps applied, reservations off).
    pub fn balance_at(&self, at: Millis) -> i64 {
        self.bucket.projected_balance(at)
    }

    /// Whether the server's admitting a request at `now` relies on refill
    /// steps no envelope has confirmed yet (the rate may have changed,
    /// others may have spent): the confirmed balance alone would be refused.
    pub fn relies_on_unconfirmed_refill(&self, now: Millis) -> bool {
        now >= self.snapshot.next_refill_at_ms() && self.snapshot.tokens_left - self.reserved < 1
    }
}

/// The in-process ledger of one key. See the [module docs](self).
///
/// ```
/// use budget::ledger::{Ledger, Outcome};
/// use budget::JobId;
/// use keepa::TokenSnapshot;
///
/// let mut ledger = Ledger::default();
/// ledger.observe(TokenSnapshot { timestamp_ms: 0, tokens_left: 100, refill_in_ms: 60_000, refill_rate: 5 });
/// let r = ledger.reserve(JobId(1), 40);
/// assert_eq!(ledger.view().unwrap().balance_at(0), 60);
/// // The answer: 38 charged, the server says 62 left.
/// ledger.settle(r, Outcome::Charged { consumed: 38, snapshot: Some(TokenSnapshot {
///     timestamp_ms: 10, tokens_left: 62, refill_in_ms: 59_990, refill_rate: 5 }) });
/// assert_eq!(ledger.view().unwrap().balance_at(60_000), 67);
/// ```
#[derive(Debug, Clone)]
pub struct Ledger {
    newest: Option<TokenSnapshot>,
    cap: BucketCap,
    open: BTreeMap<ReservationId, Reservation>,
    next_id: u64,
    /// Own charges with the envelope that reported them, kept until a
    /// snapshot at least as new is adopted (for the foreign estimate).
    own_since: Vec<(TokenSnapshot, i64)>,
    foreign: ForeignEstimate,
    last_sync: Option<Millis>,
    charged_by_job: BTreeMap<JobId, i64>,
    /// Bumped by every change that can lower the balance available (an
    /// adopted snapshot, a reservation): a decision taken on an older
    /// version must be taken again.
    version: u64,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new(BucketCap::default())
    }
}

impl Ledger {
    /// An empty ledger for a bucket with this cap (Keepa: 60 minutes of refill).
    pub fn new(cap: BucketCap) -> Self {
        Ledger {
            newest: None,
            cap,
            open: BTreeMap::new(),
            next_id: 0,
            own_since: Vec::new(),
            foreign: ForeignEstimate::default(),
            last_sync: None,
            charged_by_job: BTreeMap::new(),
            version: 0,
        }
    }

    /// The newest snapshot adopted.
    pub fn newest(&self) -> Option<&TokenSnapshot> {
        self.newest.as_ref()
    }

    /// Foreign spending estimated so far.
    pub fn foreign(&self) -> ForeignEstimate {
        self.foreign
    }

    /// Tokens held by open reservations.
    pub fn reserved(&self) -> i64 {
        self.open.values().map(|r| r.amount).sum()
    }

    /// Number of open reservations.
    pub fn open_reservations(&self) -> usize {
        self.open.len()
    }

    /// The bucket cap this ledger projects with.
    pub fn cap(&self) -> BucketCap {
        self.cap
    }

    /// Changes with every adopted snapshot and every reservation (see
    /// [`LedgerStore::reserve`]); releases leave it alone.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The last `/token` call noted.
    pub fn last_sync(&self) -> Option<Millis> {
        self.last_sync
    }

    /// Tokens charged per job, from settlements.
    pub fn charged_by_job(&self) -> &BTreeMap<JobId, i64> {
        &self.charged_by_job
    }

    /// Records that `/token` was called at `at` (the caller then
    /// [`observe`](Self::observe)s its envelope).
    pub fn note_sync(&mut self, at: Millis) {
        self.last_sync = Some(at);
    }

    fn bucket_of(&self, s: &TokenSnapshot) -> TokenBucket {
        TokenBucket::new(
            RateSchedule::constant(s.refill_rate),
            self.cap,
            Some(s.tokens_left),
            s.next_refill_at_ms() - REFILL_INTERVAL_MS,
        )
    }

    /// Adopts `snapshot` if it is newer than the one held; returns whether it
    /// was adopted.
    pub fn observe(&mut self, snapshot: TokenSnapshot) -> bool {
        if let Some(cur) = self.newest {
            if !is_newer(&snapshot, &cur) {
                return false;
            }
            // Foreign estimate: what we expected the server to say.
            if cur.refill_rate == snapshot.refill_rate {
                let projected = self
                    .bucket_of(&cur)
                    .projected_balance(snapshot.timestamp_ms);
                let mut own: i64 = self
                    .own_since
                    .iter()
                    .filter(|(s, _)| is_newer(s, &cur) && !is_newer(s, &snapshot))
                    .map(|(_, c)| c)
                    .sum();
                // Requests still open may already be charged in this
                // snapshot: those in flight (a concurrent answer can report
                // a charge before the request's own answer arrives) and
                // timed-out ones it resolves. Counting them as ours can hide
                // foreign spending of at most their reservation; counting
                // them as foreign would hold a phantom burst in the reserve
                // for the rest of the run.
                own += self
                    .open
                    .values()
                    .filter(|r| r.timed_out_at.is_none_or(|t| t < snapshot.timestamp_ms))
                    .map(|r| r.amount)
                    .sum::<i64>();
                let gap = projected - own - snapshot.tokens_left;
                if gap > 0 {
                    self.foreign.total += gap;
                    self.foreign.largest_gap = self.foreign.largest_gap.max(gap);
                }
            }
            self.foreign.observed_ms += snapshot.timestamp_ms - cur.timestamp_ms;
        }
        self.newest = Some(snapshot);
        self.version += 1;
        self.own_since.retain(|(s, _)| is_newer(s, &snapshot));
        self.open
            .retain(|_, r| r.timed_out_at.is_none_or(|t| t >= snapshot.timestamp_ms));
        true
    }

    /// Holds `amount` tokens for a request about to be sent.
    pub fn reserve(&mut self, job: JobId, amount: i64) -> ReservationId {
        let id = ReservationId(self.next_id);
        self.next_id += 1;
        self.version += 1;
        self.open.insert(
            id,
            Reservation {
                job,
                amount,
                timed_out_at: None,
            },
        );
        id
    }

    /// Settles a reservation. Unknown ids (already settled) are ignored, so
    /// settling twice is harmless.
    pub fn settle(&mut self, id: ReservationId, outcome: Outcome) {
        match outcome {
            Outcome::Charged { consumed, snapshot } => {
                let Some(r) = self.open.remove(&id) else {
                    return;
                };
                let consumed = plausible_charge(consumed);
                let total = self.charged_by_job.entry(r.job).or_default();
                *total = total.saturating_add(consumed);
                if let Some(s) = snapshot {
                    self.own_since.push((s, consumed));
                    self.observe(s);
                }
            }
            Outcome::Refused { snapshot } => {
                if self.open.remove(&id).is_none() {
                    return;
                }
                if let Some(s) = snapshot {
                    self.observe(s);
                }
            }
            Outcome::TimedOut { at } => {
                if let Some(r) = self.open.get_mut(&id) {
                    r.timed_out_at = Some(at);
                }
            }
            Outcome::Unsent => {
                self.open.remove(&id);
            }
        }
    }

    /// The view the decision core needs; `None` before the first snapshot.
    pub fn view(&self) -> Option<View> {
        let snapshot = self.newest?;
        Some(view_of(
            snapshot,
            self.cap,
            self.reserved(),
            self.foreign,
            self.last_sync,
        ))
    }
}

/// The view of a ledger holding `snapshot` as its newest, `reserved` tokens
/// in open reservations: one definition for every store.
pub(crate) fn view_of(
    snapshot: TokenSnapshot,
    cap: BucketCap,
    reserved: i64,
    foreign: ForeignEstimate,
    last_sync: Option<Millis>,
) -> View {
    let mut bucket = TokenBucket::new(
        RateSchedule::constant(snapshot.refill_rate),
        cap,
        Some(snapshot.tokens_left),
        snapshot.next_refill_at_ms() - REFILL_INTERVAL_MS,
    );
    bucket.spend(snapshot.timestamp_ms, reserved);
    View {
        bucket,
        snapshot,
        reserved,
        foreign,
        last_sync,
    }
}

pub use crate::store::LedgerStore;

/// Whether `a` is strictly newer than `b` by server time. At the same
/// millisecond, a later refill phase or (same phase) a lower balance is newer.
pub fn is_newer(a: &TokenSnapshot, b: &TokenSnapshot) -> bool {
    (a.timestamp_ms, a.next_refill_at_ms(), -a.tokens_left)
        > (b.timestamp_ms, b.next_refill_at_ms(), -b.tokens_left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(ts: i64, left: i64, rate: i64) -> TokenSnapshot {
        TokenSnapshot {
            timestamp_ms: ts,
            tokens_left: left,
            refill_in_ms: 60_000 - ts.rem_euclid(60_000),
            refill_rate: rate,
        }
    }

    /// Regression: `tokensConsumed: 9223372036854775807` twice overflowed
    /// the per-job sum (a panic in debug builds); a charge is now clamped
    /// wherever it enters the ledger.
    #[test]
    fn an_absurd_charge_is_clamped_not_summed_into_an_overflow() {
        let server_error = |consumed: i64| -> Result<keepa::Response, keepa::ApiError> {
            Err(keepa::ApiError::Server(Box::new(
                keepa::error::ErrorResponse {
                    status: 500,
                    envelope: Some(keepa::Envelope {
                        tokens_consumed: Some(consumed),
                        ..Default::default()
                    }),
                    error: None,
                    received_at_ms: 0,
                    excerpt: None,
                },
            )))
        };
        let big = Outcome::of_call(&server_error(i64::MAX), 5, 0);
        assert_eq!(big.charged(), Some(keepa::PLAUSIBLE.max_abs_tokens));
        assert_eq!(Outcome::of_call(&server_error(-7), 5, 0).charged(), Some(0));
        let mut l = Ledger::default();
        for _ in 0..3 {
            let r = l.reserve(JobId(1), 5);
            l.settle(
                r,
                Outcome::Charged {
                    consumed: i64::MAX,
                    snapshot: None,
                },
            );
        }
        assert_eq!(
            l.charged_by_job()[&JobId(1)],
            3 * keepa::PLAUSIBLE.max_abs_tokens
        );
    }

    #[test]
    fn an_older_envelope_never_overwrites_a_newer_one() {
        let mut l = Ledger::default();
        assert!(l.observe(snap(2_000, 50, 5)));
        assert!(!l.observe(snap(1_000, 300, 5)));
        assert_eq!(l.newest().unwrap().tokens_left, 50);
        // Same millisecond: the lower balance is later.
        assert!(l.observe(snap(2_000, 40, 5)));
        assert!(!l.observe(snap(2_000, 45, 5)));
        assert_eq!(l.view().unwrap().balance_at(2_000), 40);
    }

    #[test]
    fn reservations_survive_snapshots_and_leave_only_by_settlement() {
        let mut l = Ledger::default();
        l.observe(snap(0, 100, 5));
        let a = l.reserve(JobId(1), 30);
        let b = l.reserve(JobId(2), 20);
        // A plain SET of tokensLeft must not forget in-flight work (lesson 3).
        l.observe(snap(1_000, 100, 5));
        assert_eq!(l.view().unwrap().balance_at(1_000), 50);
        l.settle(a, Outcome::Unsent);
        assert_eq!(l.view().unwrap().balance_at(1_000), 80);
        l.settle(
            b,
            Outcome::Charged {
                consumed: 18,
                snapshot: Some(snap(2_000, 82, 5)),
            },
        );
        assert_eq!(l.open_reservations(), 0);
        assert_eq!(l.view().unwrap().balance_at(60_000), 87);
        assert_eq!(l.charged_by_job()[&JobId(2)], 18);
        // Settling twice changes nothing.
        l.settle(b, Outcome::Unsent);
        assert_eq!(l.view().unwrap().balance_at(60_000), 87);
    }

    #[test]
    fn a_timeout_counts_as_charged_until_a_newer_envelope() {
        let mut l = Ledger::default();
        l.observe(snap(0, 100, 5));
        let a = l.reserve(JobId(1), 60);
        l.settle(a, Outcome::TimedOut { at: 10_000 });
        assert_eq!(l.view().unwrap().balance_at(10_000), 40);
        // An envelope from before the timeout does not release it.
        l.observe(snap(9_000, 100, 5));
        assert_eq!(l.view().unwrap().balance_at(10_000), 40);
        // A newer one does: it shows the request was never charged.
        l.observe(snap(11_000, 100, 5));
        assert_eq!(l.view().unwrap().balance_at(11_000), 100);
        assert_eq!(l.foreign().total, 0, "an uncharged timeout is not foreign");
    }

    #[test]
    fn foreign_spending_is_the_gap_between_projection_and_report() {
        let mut l = Ledger::default();
        l.observe(snap(0, 100, 5));
        // Two minutes later: projected 110; we spent 10; the server says 70.
        let r = l.reserve(JobId(1), 10);
        l.settle(
            r,
            Outcome::Charged {
                consumed: 10,
                snapshot: Some(snap(120_000, 70, 5)),
            },
        );
        assert_eq!(l.foreign().total, 30);
        assert_eq!(l.foreign().largest_gap, 30);
        assert!((l.foreign().per_minute() - 15.0).abs() < 1e-9);
        // More than projected (a refund, a rate rise) is never foreign.
        l.observe(snap(180_000, 500, 5));
        assert_eq!(l.foreign().total, 30);
    }

    /// A concurrent answer reports a charge before the charged request's
    /// own answer arrives: the charge is ours, not a foreign burst.
    #[test]
    fn a_charge_reported_before_its_own_answer_is_not_foreign() {
        let mut l = Ledger::default();
        l.observe(snap(0, 1000, 20));
        let big = l.reserve(JobId(1), 1032);
        let small = l.reserve(JobId(3), 5);
        // The server ran the big request first; the small one's answer,
        // stamped later, already shows both charges.
        l.settle(
            small,
            Outcome::Charged {
                consumed: 5,
                snapshot: Some(snap(2_000, 1000 - 996 - 5, 20)),
            },
        );
        l.settle(
            big,
            Outcome::Charged {
                consumed: 996,
                snapshot: Some(snap(1_000, 1000 - 996, 20)),
            },
        );
        assert_eq!(l.foreign().total, 0);
        assert_eq!(l.foreign().largest_gap, 0);
        assert_eq!(l.view().unwrap().balance_at(2_000), -1);
    }

    #[test]
    fn own_charges_in_the_same_millisecond_are_not_foreign() {
        let mut l = Ledger::default();
        l.observe(snap(0, 300, 5));
        for (left, cost) in [(299, 1), (59, 240)] {
            let r = l.reserve(JobId(1), cost);
            l.settle(
                r,
                Outcome::Charged {
                    consumed: cost,
                    snapshot: Some(snap(0, left, 5)),
                },
            );
        }
        assert_eq!(l.foreign().total, 0);
        assert_eq!(l.view().unwrap().balance_at(0), 59);
    }

    #[test]
    fn projection_steps_from_refill_in() {
        let mut l = Ledger::default();
        l.observe(TokenSnapshot {
            timestamp_ms: 1_000,
            tokens_left: -10,
            refill_in_ms: 500,
            refill_rate: 20,
        });
        let v = l.view().unwrap();
        assert_eq!(v.balance_at(1_499), -10);
        assert_eq!(v.balance_at(1_500), 10);
        assert_eq!(v.bucket.when_balance_reaches(1), Some(1_500));
        assert!(v.relies_on_unconfirmed_refill(1_500));
        assert!(!v.relies_on_unconfirmed_refill(1_499));
    }
}
