//! The figures a user chooses a plan by: where the tokens of a run went,
//! and how punctual the refresh was. README "What the figures mean" is the
//! one place they are defined; the summary, the metrics and `status` all
//! read them from here.
//!
//! **Tokens** ([`TokenAccount`]): over the whole run, from its first
//! `/token` answer to its end,
//!
//! ```text
//! available = start balance + refill that arrived
//!           = spent (ours) + lost at the cap + left at the end + spent by others
//! ```
//!
//! Everything is read from the envelopes the run sees: between two
//! envelopes (in server-time order) the bucket is projected from the
//! earlier one with [`keepa::tokens::TokenBucket`], which tells which refill
//! steps landed and what the cap threw away; after the last envelope it is
//! projected to the end of the run. Spending by others is what remains: the
//! balance fell by more than our own charges. Answers to concurrent
//! requests arrive out of order: envelopes are put in server-time order
//! over a window of [`REORDER_MS`] before they are used; one older than
//! that still counts its charge but is not used for the projection.
//!
//! **Refresh** ([`RefreshBook`]): a refresh period begins every `period`
//! from the first due time; each one that began is *due*, whether or not a
//! run started. It is *late* when no run started within `max_delay` of its
//! beginning (skipped, or the previous run overran). A run serves every
//! period that began before it and was not yet served.

use std::collections::VecDeque;

use keepa::tokens::{RefillStep, TokenBucket, REFILL_INTERVAL_MS};
use keepa::TokenSnapshot;

/// Where the tokens of a run went. Adds up: `spent + lost_at_cap + left +
/// spent_by_others == available`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TokenBreakdown {
    /// Balance in the run's first envelope (its first `/token`).
    pub start_balance: i64,
    /// Refill that arrived during the run, before the cap.
    pub refilled: i64,
    /// `start_balance + refilled`.
    pub available: i64,
    /// Tokens charged to this run's requests.
    pub spent: i64,
    /// Refill the bucket cap threw away.
    pub lost_at_cap: i64,
    /// Balance at the end of the run (projected from the last envelope).
    pub left: i64,
    /// The rest: the balance fell by more than this run's charges.
    pub spent_by_others: i64,
    /// Refill rate in the last envelope, tokens per minute.
    pub refill_per_minute: i64,
    /// Bucket cap at that rate.
    pub bucket_max: i64,
}

impl TokenBreakdown {
    /// `spent ÷ available` (0 when nothing was available), 4 decimals.
    pub fn utilization(&self) -> f64 {
        if self.available <= 0 {
            return 0.0;
        }
        (self.spent as f64 / self.available as f64 * 10_000.0).round() / 10_000.0
    }
}

/// How long (server time) envelopes wait to be put in order.
pub const REORDER_MS: i64 = 2 * REFILL_INTERVAL_MS;

/// Folds envelopes and charges into a [`TokenBreakdown`] as they come.
#[derive(Debug, Clone, Default)]
pub struct TokenAccount {
    start: Option<TokenSnapshot>,
    last: Option<TokenSnapshot>,
    /// Envelopes not folded yet, in server-time order.
    pending: VecDeque<TokenSnapshot>,
    refilled: i64,
    lost_at_cap: i64,
    spent: i64,
}

impl TokenAccount {
    /// An empty account: the first envelope starts it.
    pub fn new() -> Self {
        Self::default()
    }

    /// This run was charged `tokens` (may be 0).
    pub fn charged(&mut self, tokens: i64) {
        self.spent = self.spent.saturating_add(tokens);
    }

    /// An envelope arrived. Older than the last one folded: ignored.
    pub fn envelope(&mut self, s: TokenSnapshot) {
        if self.last.is_some_and(|l| s.timestamp_ms < l.timestamp_ms) {
            return;
        }
        let i = self
            .pending
            .partition_point(|p| p.timestamp_ms <= s.timestamp_ms);
        self.pending.insert(i, s);
        let newest = self.pending.back().map_or(i64::MIN, |p| p.timestamp_ms);
        while let Some(p) = self
            .pending
            .front()
            .copied()
            .filter(|p| p.timestamp_ms < newest.saturating_sub(REORDER_MS))
        {
            self.pending.pop_front();
            self.fold(p);
        }
    }

    /// Uses `s`, the next envelope in server-time order.
    fn fold(&mut self, s: TokenSnapshot) {
        match self.last {
            None => {
                self.start = Some(s);
                self.last = Some(s);
            }
            Some(prev) if prev.timestamp_ms <= s.timestamp_ms => {
                let (refilled, lost, _) = project(&prev, s.timestamp_ms);
                self.refilled = self.refilled.saturating_add(refilled);
                self.lost_at_cap = self.lost_at_cap.saturating_add(lost);
                self.last = Some(s);
            }
            Some(_) => {}
        }
    }

    /// The first envelope, if any.
    pub fn start(&self) -> Option<TokenSnapshot> {
        self.start.or_else(|| self.pending.front().copied())
    }

    /// The newest envelope, if any.
    pub fn last(&self) -> Option<TokenSnapshot> {
        self.pending.back().copied().or(self.last)
    }

    /// The breakdown with the run ending at `end_ms` (server time): the
    /// bucket is projected from the last envelope to then. `None` before
    /// any envelope.
    pub fn breakdown(&self, end_ms: i64) -> Option<TokenBreakdown> {
        if !self.pending.is_empty() {
            let mut all = self.clone();
            while let Some(p) = all.pending.pop_front() {
                all.fold(p);
            }
            return all.breakdown(end_ms);
        }
        let (start, last) = (self.start?, self.last?);
        let (tail_refill, tail_lost, left) = project(&last, end_ms);
        let refilled = self.refilled.saturating_add(tail_refill);
        let lost_at_cap = self.lost_at_cap.saturating_add(tail_lost);
        let available = start.tokens_left.saturating_add(refilled);
        let bucket = TokenBucket::from_snapshot(&last);
        Some(TokenBreakdown {
            start_balance: start.tokens_left,
            refilled,
            available,
            spent: self.spent,
            lost_at_cap,
            left,
            spent_by_others: available - self.spent - lost_at_cap - left,
            refill_per_minute: last.refill_rate,
            bucket_max: bucket.cap_at(last.timestamp_ms),
        })
    }
}

/// Refill arrived, refill lost at the cap, and balance at `to_ms`, with
/// nothing spent after `from`.
fn project(from: &TokenSnapshot, to_ms: i64) -> (i64, i64, i64) {
    let mut bucket = TokenBucket::from_snapshot(from);
    let (mut refilled, mut lost) = (0i64, 0i64);
    bucket.advance_with(to_ms, |step: RefillStep| {
        refilled = refilled.saturating_add(step.rate);
        lost = lost.saturating_add(step.wasted);
    });
    (refilled, lost, bucket.balance())
}

/// One step of a run, for [`account`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// An envelope.
    Envelope(TokenSnapshot),
    /// A charge to this run.
    Charged(i64),
}

/// The breakdown of a whole run from its events, ending at `end_ms`.
pub fn account(events: impl IntoIterator<Item = Event>, end_ms: i64) -> Option<TokenBreakdown> {
    let mut a = TokenAccount::new();
    for e in events {
        match e {
            Event::Envelope(s) => a.envelope(s),
            Event::Charged(t) => a.charged(t),
        }
    }
    a.breakdown(end_ms)
}

/// Refresh periods due, late, and the start delay of each one served.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RefreshBook {
    schedule: Option<(i64, i64, i64)>,
    /// Periods accounted for (served or skipped).
    settled: u64,
    late: u64,
    runs: u64,
    ended_at: Option<i64>,
    delays_ms: Vec<i64>,
}

/// Refresh punctuality at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshFigures {
    /// Refresh periods that began so far.
    pub due: u64,
    /// Of those, periods with no run started within `max_delay`.
    pub late: u64,
}

impl RefreshBook {
    /// The first period begins at `first_due`, the next every `period_ms`.
    pub fn schedule(&mut self, first_due: i64, period_ms: i64, max_delay_ms: i64) {
        self.schedule = Some((first_due, period_ms.max(1), max_delay_ms.max(0)));
    }

    /// Periods that began by `now` (0 before the first due time).
    fn begun(&self, now: i64) -> u64 {
        match self.schedule {
            Some((first, period, _)) if now >= first => ((now - first) / period) as u64 + 1,
            _ => 0,
        }
    }

    /// A run started at `now` (`skipped`: the policy dropped it): it serves
    /// every period that began by then and was not served yet.
    pub fn run_started(&mut self, now: i64, skipped: bool) {
        let Some((first, period, max_delay)) = self.schedule else {
            return;
        };
        self.runs += 1;
        let begun = self.begun(now);
        for k in self.settled..begun {
            let delay = now - (first + k as i64 * period);
            self.late += u64::from(skipped || delay > max_delay);
            self.delays_ms.push(delay.max(0));
        }
        self.settled = self.settled.max(begun);
    }

    /// The refresh stopped at `now` (the run is stopping): periods that
    /// begin later are not due.
    pub fn end(&mut self, now: i64) {
        self.ended_at.get_or_insert(now);
    }

    /// Due and late as of `now` (or the end, if earlier): periods not
    /// served yet count as due, and as late once `max_delay` has passed
    /// without a run.
    pub fn at(&self, now: i64) -> RefreshFigures {
        let Some((_, _, max_delay)) = self.schedule else {
            return RefreshFigures::default();
        };
        let now = self.ended_at.map_or(now, |e| e.min(now));
        let due = self.begun(now).max(self.settled);
        let overdue = self
            .begun(now.saturating_sub(max_delay).saturating_sub(1))
            .max(self.settled);
        RefreshFigures {
            due,
            late: self.late + (overdue - self.settled),
        }
    }

    /// Runs started or skipped so far (not periods).
    pub fn runs(&self) -> u64 {
        self.runs
    }

    /// Start delay of each period served or skipped, ms.
    pub fn delays_ms(&self) -> &[i64] {
        &self.delays_ms
    }
}

#[cfg(test)]
mod tests;
