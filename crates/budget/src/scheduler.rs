//! The scheduler: a ledger, a policy and the policy's memory, driven by
//! explicit instants. Still pure: no IO, no clock.

use crate::demand::{Decision, Demand, Grant, Millis, Need};
use crate::ledger::{Ledger, Outcome, ReservationId, View};
use crate::policy::{Memory, Policy, State, STEP};
use keepa::TokenSnapshot;

/// One key's budget: call [`decide`](Self::decide), act on the answer,
/// [`start`](Self::start) a granted request, [`settle`](Self::settle) it.
///
/// ```
/// use budget::{Bulk, Decision, Demand, JobId, Need, Prediction, Scheduler};
/// use budget::policy::Flow;
/// use keepa::TokenSnapshot;
///
/// let mut s = Scheduler::new(Flow::default(), budget::Ledger::default());
/// s.synced(0, TokenSnapshot { timestamp_ms: 0, tokens_left: 100, refill_in_ms: 60_000, refill_rate: 5 });
/// let backfill = Demand { job: JobId(1), need: Need::Bulk(Bulk {
///     per_request: Prediction::exact(0), per_item: Prediction::exact(12),
///     min_batch: 1, max_batch: 100, weight: 1, not_before: 0, finishing: false, remaining: None }) };
/// let Decision::Go(grant) = s.decide(0, &[backfill]) else { panic!() };
/// // 100 tokens, and one step of refill may be dug into: 8 items, balance 4.
/// assert_eq!(grant.items, 8);
/// ```
#[derive(Debug, Clone)]
pub struct Scheduler<P, L = Ledger> {
    ledger: L,
    memory: Memory,
    policy: P,
}

impl<P: Policy, L> Scheduler<P, L> {
    /// A scheduler over `ledger` with `policy`.
    pub fn new(policy: P, ledger: L) -> Self {
        Scheduler {
            ledger,
            memory: Memory::new(),
            policy,
        }
    }

    /// The ledger.
    pub fn ledger(&self) -> &L {
        &self.ledger
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The memory.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// The policy's memory, for a shell that keeps the fair queue in a
    /// shared store (the gate over a shared ledger).
    pub fn memory_mut(&mut self) -> &mut Memory {
        &mut self.memory
    }

    /// [`decide`](Scheduler::decide) on a view read elsewhere (a shared
    /// store); `None`: no snapshot yet.
    pub fn decide_view(&mut self, now: Millis, view: Option<View>, demands: &[Demand]) -> Decision {
        let Some(view) = view else {
            return Decision::Sync;
        };
        let balance = view.balance_at(now);
        // Bulk jobs seen for the first time join the fair queue at the
        // least virtual time among those present (no credit for absence).
        let floor = self.vtime_floor(demands);
        for d in demands {
            if matches!(d.need, Need::Bulk(_)) {
                self.memory.bulk_vtime.entry(d.job).or_insert(floor);
            }
        }
        self.memory.low_water_since_bulk = self.memory.low_water_since_bulk.min(balance);
        let state = State {
            view,
            memory: &self.memory,
        };
        let d = self.policy.decide(now, &state, demands);
        if matches!(d, Decision::Go(_))
            && state.view.relies_on_unconfirmed_refill(now)
            && state.view.last_sync.is_none_or(|s| now - s >= STEP)
        {
            return Decision::Sync;
        }
        d
    }

    /// A bulk grant's new place in the fair queue, as
    /// [`record_start`](Self::record_start) will set it (`None` for a
    /// periodic grant).
    pub fn vtime_after(&self, grant: &Grant, demands: &[Demand]) -> Option<f64> {
        let b = bulk_of(grant, demands)?;
        let floor = self.vtime_floor(demands);
        let v = self
            .memory
            .bulk_vtime
            .get(&grant.job)
            .copied()
            .unwrap_or(floor);
        Some(v.max(floor) + grant.cost.expected.max(1) as f64 / b.weight.max(1) as f64)
    }

    /// Updates the fair-share memory for a grant whose reservation the
    /// store accepted.
    pub fn record_start(&mut self, grant: &Grant, demands: &[Demand]) {
        let v = self.vtime_after(grant, demands);
        self.record_start_at(grant, v);
    }

    /// [`record_start`](Self::record_start) with the fair-queue position
    /// already computed (and stored elsewhere, e.g. with a shared
    /// reservation), so that this process and the store hold the same one.
    pub fn record_start_at(&mut self, grant: &Grant, vtime: Option<f64>) {
        if let Some(v) = vtime {
            self.memory.bulk_vtime.insert(grant.job, v);
            self.memory.low_water_since_bulk = i64::MAX;
        }
    }

    fn vtime_floor(&self, demands: &[Demand]) -> f64 {
        let floor = demands
            .iter()
            .filter(|d| matches!(d.need, Need::Bulk(_)))
            .filter_map(|d| self.memory.bulk_vtime.get(&d.job))
            .copied()
            .fold(f64::INFINITY, f64::min);
        if floor.is_finite() {
            floor
        } else {
            0.0
        }
    }
}

fn bulk_of(grant: &Grant, demands: &[Demand]) -> Option<crate::demand::Bulk> {
    demands.iter().find_map(|d| match d.need {
        Need::Bulk(b) if d.job == grant.job => Some(b),
        _ => None,
    })
}

impl<P: Policy> Scheduler<P, Ledger> {
    /// What may happen at `now`. Before any snapshot, and when a grant's
    /// admission rests on refill no envelope has confirmed (at most once a
    /// minute), the answer is [`Decision::Sync`].
    pub fn decide(&mut self, now: Millis, demands: &[Demand]) -> Decision {
        let view = self.ledger.view();
        self.decide_view(now, view, demands)
    }

    /// Records the envelope of a `/token` call made at `now`.
    pub fn synced(&mut self, now: Millis, snapshot: TokenSnapshot) {
        self.ledger.note_sync(now);
        self.ledger.observe(snapshot);
    }

    /// Adopts an envelope that did not come with a settlement.
    pub fn observe(&mut self, snapshot: TokenSnapshot) -> bool {
        self.ledger.observe(snapshot)
    }

    /// A granted request is about to be sent: reserve its upper bound and
    /// update the fair-share memory.
    pub fn start(&mut self, grant: &Grant, demands: &[Demand]) -> ReservationId {
        self.record_start(grant, demands);
        self.ledger.reserve(grant.job, grant.cost.upper_bound)
    }

    /// Settles a started request.
    pub fn settle(&mut self, id: ReservationId, outcome: Outcome) {
        self.ledger.settle(id, outcome);
    }
}
