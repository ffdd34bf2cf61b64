//! `flow`: spend refill as it lands, keep every periodic job on time.
//!
//! # The rule
//!
//! 1. **Periodic runs first**, earliest deadline first, as soon as they are
//!    due and the server would admit them (balance > 0).
//! 2. **A bulk request may go now with `n` items** only if, after it is
//!    charged, the balance stays at or above the *reserve*: the larger of
//!    - the **hard reserve**: for every future periodic run `j` (due `d_j`,
//!      deadline `D_j = d_j + max_delay_j`),
//!      `balance − cost + refill(now, D_j] − Σ other runs due by D_j − foreign(now, D_j] ≥ 1`,
//!      i.e. the server still admits run `j` at its deadline even if every
//!      other run due by then has been charged first;
//!    - the **soft reserve**: the balance stays positive after the
//!      request (plus the foreign spending expected before the next refill
//!      step), so other consumers of the key, which we cannot see, are
//!      never locked out by us and our own next request is not refused.
//!
//!    The hard reserve is the deficit a bulk request may dig: it is derived
//!    from the refill rate, the refill phase and the periodic targets; there
//!    is no tuned threshold. Foreign spending the ledger has measured is
//!    added: its mean rate over the window, plus the largest gap seen
//!    between two snapshots (a burst). Digging below zero is never needed
//!    for throughput (refill arrives at the same rate either way); it is
//!    used where it moves the finish earlier (rule 7) and for items larger
//!    than the bucket (rule 6).
//! 3. **Batch size**: the most items (up to `max_batch`) that keep the
//!    balance at the reserve.
//! 4. **Fair share**: among bulk jobs, the one with the least tokens granted
//!    per unit of weight goes first (weighted fair queueing); it waits at
//!    the head until it fits, so large items are not starved by small ones.
//! 5. **Exact waits**: otherwise the answer is the first refill step at
//!    which refill alone (net of the periodic runs due meanwhile) satisfies
//!    rule 2, found by walking refill steps on the projected bucket.
//! 6. **Never-fitting work is refused**: when one item (`min_batch`) cannot
//!    go even from a full bucket without making a periodic run late, the
//!    job is refused with [`Refusal::NeverFits`]. Otherwise an item too
//!    large for the reserve goes as soon as the next refill step would
//!    overflow the bucket (waiting longer would only waste refill), as long
//!    as the periodic reserve holds.
//! 7. **Finish line** (when enabled): a bulk request marked
//!    [`Bulk::finishing`] (it completes the last bulk work) goes as soon as
//!    the balance is positive, taking everything that remains: no later
//!    bulk work can be hurt by the deficit it leaves. Periodic runs right
//!    after the finish may be late while that deficit refills.
//!
//! # Why this reaches the frontier
//!
//! Bulk work never waits while the balance is above the reserve plus one
//! item, and the reserve is bounded by the periodic runs due within a few
//! periods, so the balance never approaches the bucket maximum while bulk
//! work waits (when the periodic jobs are feasible, see the crate docs): no
//! refill is wasted, and every token not owed to a periodic run is spent.
//! At the finish the last request may dig as deep as the admission rule
//! allows, exactly as the frontier assumes, so `flow` finishes within one
//! refill step or so of the frontier.

use std::collections::VecDeque;

use keepa::tokens::BucketCap;

use crate::demand::{Bulk, Decision, Demand, Grant, JobId, Millis, Need, Periodic, Refusal};
use crate::ledger::View;
use crate::policy::{bulk_head, min_opt, next_periodic_due, periodic_due, Policy, State, STEP};

/// Our policy. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flow {
    /// Let a request marked [`Bulk::finishing`] take all that remains as
    /// soon as the balance is positive.
    pub finish_line: bool,
    /// Never let a request leave the balance below this (Keepa's rumoured
    /// ban at −200 is unconfirmed; `None`: no floor).
    pub deficit_floor: Option<i64>,
}

impl Default for Flow {
    fn default() -> Self {
        Flow {
            finish_line: true,
            deficit_floor: None,
        }
    }
}

/// The reserve at one instant (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserve {
    /// Hard reserve from periodic jobs alone (`i64::MIN` if none).
    pub hard_base: i64,
    /// Hard reserve with measured foreign spending.
    pub hard: i64,
    /// Soft reserve (positive after the next step), with foreign spending.
    pub soft: i64,
}

impl Reserve {
    /// The balance a bulk request must leave behind, normally.
    pub fn level(&self) -> i64 {
        self.hard.max(self.soft)
    }
}

/// Looks ahead on the projected bucket with only periodic work running.
#[derive(Debug, Clone)]
pub struct Lookahead {
    anchor: Millis,
    rate: i64,
    cap: i64,
    periodic: Vec<Periodic>,
    foreign_per_min: f64,
    foreign_burst: i64,
    horizon: i64,
    max_delay: i64,
}

impl Lookahead {
    /// From a ledger view and the periodic demands.
    pub fn new(now: Millis, view: &View, demands: &[Demand]) -> Self {
        let periodic: Vec<Periodic> = demands
            .iter()
            .filter_map(|d| match d.need {
                Need::Periodic(p) if p.period_ms > 0 => Some(p),
                _ => None,
            })
            .collect();
        let span = periodic
            .iter()
            .map(|p| p.period_ms + p.max_delay_ms)
            .max()
            .unwrap_or(0);
        let max_delay = periodic.iter().map(|p| p.max_delay_ms).max().unwrap_or(0);
        let f = view.foreign;
        Lookahead {
            anchor: view.bucket.next_refill_at(),
            rate: view.bucket.rate_at(now),
            cap: view.bucket.cap_at(now),
            periodic,
            foreign_per_min: f.per_minute(),
            foreign_burst: if f.total > 0 { f.largest_gap } else { 0 },
            horizon: 2 * span + 2 * STEP,
            max_delay,
        }
    }

    /// The first refill step after `t`.
    pub fn next_step_after(&self, t: Millis) -> Millis {
        self.anchor + ((t - self.anchor).div_euclid(STEP) + 1) * STEP
    }

    /// Refill steps in `(anchor - STEP, t]`, counted from the anchor.
    fn step_index(&self, t: Millis) -> i64 {
        (t - self.anchor).div_euclid(STEP)
    }

    fn foreign(&self, span_ms: i64) -> i64 {
        (self.foreign_per_min * span_ms as f64 / STEP as f64).ceil() as i64 + self.foreign_burst
    }

    /// Periodic spend per minute.
    pub fn periodic_per_min(&self) -> f64 {
        self.periodic
            .iter()
            .map(|p| p.cost.expected as f64 * STEP as f64 / p.period_ms as f64)
            .sum()
    }

    /// Cost of the periodic runs due in `(now, s]`, in closed form.
    fn cost_due_in(&self, now: Millis, s: Millis) -> i64 {
        self.periodic
            .iter()
            .map(|p| {
                let first = first_due_after(p, now);
                if s < first {
                    0
                } else {
                    p.cost.expected * ((s - first) / p.period_ms + 1)
                }
            })
            .sum()
    }

    /// The last refill step `s_k` (the `k`-th after `now`, `k >= 2`) up to
    /// which the balance, from `balance` with only periodic runs charged,
    /// provably stays below `level − 1`: periodic runs cost at least their
    /// mean rate, so after `k` steps it is at most
    /// `balance + R·k − Σ cost_j·(s_k − first_due_j)/period_j`.
    fn steps_below(&self, now: Millis, balance: i64, level: i64) -> Option<(i64, Millis)> {
        let s1 = self.next_step_after(now);
        let per_ms: f64 = self
            .periodic
            .iter()
            .map(|p| p.cost.expected as f64 / p.period_ms as f64)
            .sum();
        let offset: f64 = self
            .periodic
            .iter()
            .map(|p| {
                p.cost.expected as f64 * (s1 - first_due_after(p, now)) as f64 / p.period_ms as f64
            })
            .sum();
        // bound(k) = balance + R·k − per_ms·(k − 1)·STEP − offset, rising in k.
        let slope = self.rate as f64 - per_ms * STEP as f64;
        if slope <= 0.0 {
            return None;
        }
        // Largest k with bound(k) < level − 1 (one token of margin for rounding).
        let room = (level - 1 - balance) as f64 - per_ms * STEP as f64 + offset;
        let k = (room / slope).floor();
        if !(2.0..=(1u64 << 40) as f64).contains(&k) {
            return None;
        }
        let k = k as i64;
        Some((k, s1 + (k - 1) * STEP))
    }

    /// The reserve at `t >= now`, counting periodic runs due after `t` as unpaid.
    pub fn reserve_at(&self, now: Millis, t: Millis) -> Reserve {
        let mut w = Window::new(self, now);
        w.advance(t.max(now));
        w.reserve()
    }
}

/// The first due of `p` strictly after `now`.
fn first_due_after(p: &Periodic, now: Millis) -> Millis {
    if p.next_due > now {
        p.next_due
    } else {
        p.next_due + ((now - p.next_due) / p.period_ms + 1) * p.period_ms
    }
}

/// One future periodic run.
#[derive(Debug, Clone, Copy)]
struct Run {
    due: Millis,
    deadline: Millis,
    cost: i64,
    /// Cost of every run generated so far, this one included.
    cum: i64,
}

/// The lookahead's runs seen from an instant `t` that only moves forward:
/// the hard reserve at `t` is `1 + R·S(t) − A(t) − min key` over the runs
/// due in `(t, t + horizon]`, where `S` counts refill steps, `A` the cost of
/// runs due so far, and `key = R·S(deadline) − A(deadline) + cost` does not
/// depend on `t`. A monotone deque keeps the minimum as runs enter and
/// leave, so walking `k` steps costs `O(k + runs)` instead of
/// `O(k · runs · log runs)`.
#[derive(Debug)]
struct Window<'a> {
    look: &'a Lookahead,
    t: Millis,
    /// Next due of each periodic job not generated yet.
    next: Vec<Millis>,
    /// Generated runs with `due > t`, by due.
    buf: VecDeque<Run>,
    /// Every run due at or before this has been generated.
    generated_to: Millis,
    /// Cost of every run generated.
    cum: i64,
    /// Cost of the runs due at or before `t` (dropped from `buf`): `A(t)`.
    paid: i64,
    /// Runs generated (absolute count) and entered into the window.
    seq_front: u64,
    entered: u64,
    /// Increasing keys: `(due, key)`.
    min_key: VecDeque<(Millis, i64)>,
    /// Decreasing `fpm·deadline/STEP − key`: `(due, value)`.
    max_foreign: VecDeque<(Millis, f64)>,
}

impl<'a> Window<'a> {
    fn new(look: &'a Lookahead, now: Millis) -> Self {
        let next = look
            .periodic
            .iter()
            .map(|p| first_due_after(p, now))
            .collect();
        let mut w = Window {
            look,
            t: now,
            next,
            buf: VecDeque::new(),
            generated_to: now,
            cum: 0,
            paid: 0,
            seq_front: 0,
            entered: 0,
            min_key: VecDeque::new(),
            max_foreign: VecDeque::new(),
        };
        w.fill();
        w
    }

    /// Generates every run due by `until`.
    fn generate(&mut self, until: Millis) {
        if until <= self.generated_to {
            return;
        }
        loop {
            let mut best: Option<usize> = None;
            for (j, d) in self.next.iter().enumerate() {
                if *d <= until && best.is_none_or(|b| *d < self.next[b]) {
                    best = Some(j);
                }
            }
            let Some(j) = best else { break };
            let p = &self.look.periodic[j];
            let due = self.next[j];
            self.cum += p.cost.expected;
            self.buf.push_back(Run {
                due,
                deadline: due + p.max_delay_ms,
                cost: p.cost.expected,
                cum: self.cum,
            });
            self.next[j] = due + p.period_ms;
        }
        self.generated_to = until;
    }

    /// `A(τ)`: cost of the runs due in `(now, τ]`, for `τ >= t` generated.
    fn cost_due_by(&self, tau: Millis) -> i64 {
        let i = self.buf.partition_point(|r| r.due <= tau);
        if i == 0 {
            self.paid
        } else {
            self.buf[i - 1].cum
        }
    }

    /// Brings runs due in `(t, t + horizon]` into the window.
    fn fill(&mut self) {
        let look = self.look;
        self.generate(self.t + look.horizon + look.max_delay);
        let limit = self.t + look.horizon;
        let fpm = look.foreign_per_min;
        loop {
            let idx = (self.entered - self.seq_front) as usize;
            let Some(r) = self.buf.get(idx).copied() else {
                break;
            };
            if r.due > limit {
                break;
            }
            self.entered += 1;
            let key =
                look.rate * look.step_index(r.deadline) - self.cost_due_by(r.deadline) + r.cost;
            while self.min_key.back().is_some_and(|b| b.1 >= key) {
                self.min_key.pop_back();
            }
            self.min_key.push_back((r.due, key));
            if fpm > 0.0 {
                let v = fpm * r.deadline as f64 / STEP as f64 - key as f64;
                while self.max_foreign.back().is_some_and(|b| b.1 <= v) {
                    self.max_foreign.pop_back();
                }
                self.max_foreign.push_back((r.due, v));
            }
        }
    }

    /// Moves to `t2 >= t`; returns the cost of the runs due in `(t, t2)`
    /// and at `t2`.
    fn advance(&mut self, t2: Millis) -> (i64, i64) {
        let (mut before, mut at) = (0, 0);
        if t2 <= self.t {
            return (0, 0);
        }
        self.generate(t2);
        // Enter everything due by the new horizon before dropping.
        self.t = t2;
        self.fill();
        while let Some(r) = self.buf.front().copied() {
            if r.due > t2 {
                break;
            }
            if r.due < t2 {
                before += r.cost;
            } else {
                at += r.cost;
            }
            self.paid = r.cum;
            self.buf.pop_front();
            self.seq_front += 1;
        }
        while self.min_key.front().is_some_and(|f| f.0 <= t2) {
            self.min_key.pop_front();
        }
        while self.max_foreign.front().is_some_and(|f| f.0 <= t2) {
            self.max_foreign.pop_front();
        }
        (before, at)
    }

    /// The soft reserve at a refill step instant.
    fn soft_at_step(&self) -> i64 {
        1 + self.look.foreign(STEP)
    }

    /// The reserve at the current instant.
    fn reserve(&self) -> Reserve {
        let look = self.look;
        let t = self.t;
        let soft = 1 + look.foreign(look.next_step_after(t) - t);
        let Some(&(_, min_key)) = self.min_key.front() else {
            return Reserve {
                hard_base: i64::MIN,
                hard: i64::MIN,
                soft,
            };
        };
        let base = look.rate * look.step_index(t) - self.paid;
        let hard_base = 1 + base - min_key;
        let hard = match self.max_foreign.front() {
            Some(&(_, v)) if look.foreign_per_min > 0.0 => {
                1 + look.foreign_burst
                    + (v - look.foreign_per_min * t as f64 / STEP as f64 + base as f64).ceil()
                        as i64
            }
            _ => hard_base + look.foreign_burst,
        };
        Reserve {
            hard_base,
            hard,
            soft,
        }
    }
}

/// The outcome of sizing one bulk request.
enum Fit {
    Go(u32),
    At(Millis),
    Never(Refusal),
    NoRefill,
}

impl Flow {
    /// Items of `b` that may go at balance `balance` under `r`, if at least
    /// `min_batch`; `at_cap` relaxes everything but the periodic reserve.
    fn items(&self, b: &Bulk, balance: i64, r: &Reserve, at_cap: bool) -> Option<u32> {
        if balance < 1 || b.max_batch == 0 {
            return None;
        }
        if self.finish_line && b.finishing {
            return Some(b.max_batch);
        }
        let floor = self.deficit_floor.unwrap_or(i64::MIN);
        let fits = |n: u32, level: i64| {
            balance - b.per_request.upper_bound - b.per_item.upper_bound * n as i64
                >= level.max(floor)
        };
        let m = b.min_batch.max(1).min(b.max_batch);
        let level = r.level();
        if fits(m, level) {
            // Largest n in m..=max_batch that fits (monotone).
            let u = b.per_item.upper_bound;
            let n = if u <= 0 {
                b.max_batch
            } else {
                let room = balance - b.per_request.upper_bound - level.max(floor);
                (room / u).clamp(m as i64, b.max_batch as i64) as u32
            };
            return Some(n);
        }
        if at_cap && fits(m, r.hard_base) {
            return Some(m);
        }
        None
    }

    fn fit(&self, now: Millis, view: &View, look: &Lookahead, b: &Bulk) -> Fit {
        let balance = view.balance_at(now);
        let cap_now = look.cap;
        // Waiting past the step that would overflow the cap only wastes refill.
        let full = |bal: i64| bal + look.rate > cap_now;
        let mut w = Window::new(look, now);
        if let Some(n) = self.items(b, balance, &w.reserve(), full(balance)) {
            return Fit::Go(n);
        }
        if look.rate <= 0 || look.periodic_per_min() >= look.rate as f64 {
            return Fit::NoRefill;
        }
        // Walk refill steps on the periodic-only projection.
        let cycle_steps = 2 + look.horizon / STEP;
        let mut bal = balance;
        let mut t = now;
        // Nothing fits below this balance (a request leaves at least the
        // soft reserve, or goes at the cap, or finishes at a positive
        // balance): jump over the steps that cannot reach it.
        let m = b.min_batch.max(1).min(b.max_batch);
        let mut threshold =
            (b.per_request.upper_bound + b.per_item.upper_bound * m as i64 + w.soft_at_step())
                .min(cap_now - look.rate + 1);
        if self.finish_line && b.finishing {
            threshold = threshold.min(1);
        }
        if let Some((k, s_k)) = look.steps_below(now, balance, threshold) {
            bal = balance + look.rate * k - look.cost_due_in(now, s_k);
            t = s_k;
            w = Window::new(look, t);
        }
        let mut at_cap_steps = 0;
        let mut worst_allowed = i64::MIN;
        for _ in 0..2_000_000 {
            let s = look.next_step_after(t);
            // Runs due before the step are charged before it, at the step after it.
            let (before, at) = w.advance(s);
            bal -= before;
            bal = if bal >= cap_now {
                cap_now
            } else {
                (bal + look.rate).min(cap_now)
            };
            bal -= at;
            let at_cap = full(bal);
            t = s;
            let r = w.reserve();
            if self.items(b, bal, &r, at_cap).is_some() {
                return Fit::At(t);
            }
            if at_cap {
                at_cap_steps += 1;
                worst_allowed = worst_allowed
                    .max(cap_now - r.hard_base.max(self.deficit_floor.unwrap_or(i64::MIN)));
                if at_cap_steps > cycle_steps {
                    let m = b.min_batch.max(1).min(b.max_batch);
                    return Fit::Never(Refusal::NeverFits {
                        job: JobId(0),
                        min_items: m,
                        cost: b.per_request.upper_bound + b.per_item.upper_bound * m as i64,
                        allowed: worst_allowed,
                        cap: cap_now,
                    });
                }
            }
        }
        Fit::At(i64::MAX)
    }
}

impl Policy for Flow {
    fn name(&self) -> &'static str {
        "flow"
    }

    fn decide(&self, now: Millis, state: &State<'_>, demands: &[Demand]) -> Decision {
        let view = &state.view;
        let balance = view.balance_at(now);
        if let Some((job, p)) = periodic_due(now, demands) {
            if balance >= 1 {
                return Decision::Go(Grant {
                    job,
                    items: 1,
                    cost: p.cost,
                });
            }
            return Decision::Wait {
                until: view.bucket.when_balance_reaches(1),
            };
        }
        let (head, later) = bulk_head(now, state, demands);
        let wake_periodic = next_periodic_due(now, demands);
        let Some((job, b)) = head else {
            return Decision::Wait {
                until: min_opt(later, wake_periodic),
            };
        };
        let look = Lookahead::new(now, view, demands);
        match self.fit(now, view, &look, &b) {
            Fit::Go(items) => Decision::Go(Grant {
                job,
                items,
                cost: b.per_request.plus_items(b.per_item, items),
            }),
            Fit::At(t) => Decision::Wait {
                until: min_opt(
                    min_opt(Some(t).filter(|t| *t < i64::MAX), later),
                    wake_periodic,
                ),
            },
            Fit::Never(mut r) => {
                if let Refusal::NeverFits { job: j, .. } = &mut r {
                    *j = job;
                }
                Decision::Refuse(r)
            }
            Fit::NoRefill => Decision::Refuse(Refusal::NoRefill {
                job,
                rate: look.rate,
                periodic_per_min: look.periodic_per_min(),
            }),
        }
    }
}

/// Keepa's cap for a plan, for callers building views by hand.
pub fn keepa_cap(rate: i64) -> i64 {
    BucketCap::default().at_rate(rate)
}
