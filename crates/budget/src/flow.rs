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
//!      `balance − cost + ρ·steps(now, D_j] − Q_j − foreign(now, D_j] ≥ 1`,
//!      where `Q_j` is what may be charged before run `j` (the runs due
//!      before it, and those due by `D_j` that earliest-deadline-first
//!      serves first): the server still admits run `j` at its deadline.
//!      Refill is counted at the **robust rate**
//!      `ρ = min(R, Σ_j cost_j·⌈60 s / period_j⌉ + foreign per minute)`,
//!      what the periodic jobs (and others on the key) can take within one
//!      refill interval, not at the rate `R` of the newest envelope: a plan
//!      change is announced only by the next envelope, and a reserve
//!      counted at `R` is refill an unannounced drop takes away. Counted at
//!      `ρ` it holds under any later plan of at least `ρ` per step;
//!    - the **soft reserve**: the balance stays positive after the
//!      request (plus the foreign spending expected before the next refill
//!      step), so other consumers of the key, which we cannot see, are
//!      never locked out by us and our own next request is not refused.
//!
//!    Both are derived from the refill, its phase, the periodic targets and
//!    the foreign spending the ledger measured (its mean rate over the
//!    window, plus the largest gap seen between two snapshots: a burst);
//!    there is no tuned threshold. Digging below zero is never needed for
//!    throughput (refill arrives at the same rate either way); it is used
//!    for requests larger than the reserve leaves room for (rule 6) and at
//!    the finish (rule 7).
//! 3. **Batch size**: the most items (up to `max_batch`) that keep the
//!    balance at the reserve.
//! 4. **Fair share**: among bulk jobs, the one with the least tokens granted
//!    per unit of weight goes first (weighted fair queueing); it waits at
//!    the head until it fits, so large items are not starved by small ones.
//! 5. **Waits look again at every refill step.** Otherwise the answer is the
//!    first refill step at which refill alone (net of the periodic runs due
//!    meanwhile) lets the head go, found by walking refill steps on the
//!    projected bucket (jumping over those that cannot reach it), but never
//!    later than the next step: while bulk work waits, `flow` re-reads the
//!    bucket ([`Decision::Sync`], a free `/token` call) once per step that
//!    no envelope has confirmed, and sizes every bulk request on a
//!    confirmed step. A plan change shows only in an envelope; waiting on an
//!    old rate would leave the refill of a larger plan idle, or let a
//!    smaller bucket overflow.
//! 6. **No refill lost while a request waits.** A request too large for the
//!    reserve (rule 2) may dig to the *cap reserve*, the hard reserve of
//!    the periodic jobs alone with refill at the envelope's rate: at the
//!    step after which the bucket would overflow, or, if the periodic runs
//!    forbid it then, at the latest earlier step at which they allow it.
//!    If the head cannot go either way, another bulk job whose request fits
//!    uses the full bucket. When one item (`min_batch`) cannot go even from
//!    a full bucket over a whole cycle of the periodic runs, the job is
//!    refused with [`Refusal::NeverFits`].
//! 7. **Finish line** (when enabled). A request marked [`Bulk::finishing`]
//!    goes as soon as the balance is positive, taking everything that
//!    remains. When the size of all remaining bulk work is known
//!    ([`Bulk::remaining`]), the job whose last request is the most
//!    expensive keeps that request for the very end, and as soon as all
//!    that remains can be sent at once, every request admitted at a
//!    positive balance and that one last, it is sent. Periodic runs right
//!    after the finish may be late while its deficit refills.
//!
//! # Guarantees
//!
//! Without foreign spending (which is unseen until it lands), with `R_min`
//! the lowest rate the plan takes and `ρ` as in rule 2:
//!
//! - **Periodic runs are on time**, announced plan changes or not, when
//!   every run may wait one refill step (`max_delay ≥ 60 s`), `ρ ≤ R_min`,
//!   and every bulk request fits in the smallest bucket with the periodic
//!   reserve to spare (`cost ≤ 60·R_min − 2ρ`) and needs no digging above
//!   it (`cost + ρ + 1 ≤ 59·R` at every other rate `R`). A request that
//!   must dig relies on the current rate, which only `R_min` guarantees:
//!   an unannounced drop right after it leaves runs late, while not digging
//!   would lose refill; no policy can promise both.
//! - **No refill is lost to the cap** while bulk work waits on a constant
//!   plan when the periodic jobs meet the first two conditions and every
//!   request costs at most `60·R − 2ρ` (a full bucket leaves it room above
//!   the periodic runs' cap reserve, at most `1 + 2ρ − R`); on a changing
//!   plan, when also every request costs at most `59·R_min − ρ`: sending
//!   one without borrowing refill means holding it plus the reserve, and a
//!   drop that lands while more than the new bucket minus one step is held
//!   loses that step's refill before any envelope can tell.
//! - **The finish is the frontier's** (the earliest any policy could
//!   finish, `sim::frontier`) when no refill is lost and every bulk job
//!   says what remains and sends fixed batches: nothing is wasted before,
//!   and rule 7 sends the rest at the first step at which the tokens
//!   suffice. (A job that sizes its own batches may end with a smaller last
//!   request than the full one the frontier lets dig.)
//!
//! These are checked over generated workloads in
//! `crates/sim/tests/prop_flow.rs`.

use std::collections::VecDeque;

use keepa::tokens::BucketCap;

use crate::demand::{Bulk, Decision, Demand, Grant, JobId, Millis, Need, Periodic, Refusal};
use crate::ledger::View;
use crate::policy::{bulk_order, min_opt, next_periodic_due, periodic_due, Policy, State, STEP};

/// Our policy. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flow {
    /// Let the last bulk work go as soon as the balance is positive: a
    /// request marked [`Bulk::finishing`], and the finish of work whose size
    /// is known ([`Bulk::remaining`], rule 7).
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
    /// Hard reserve: refill counted only at the robust rate, with measured
    /// foreign spending (`i64::MIN` without periodic jobs).
    pub hard: i64,
    /// The deepest a request may dig at the cap: periodic jobs alone,
    /// refill at the rate of the newest envelope (`i64::MIN` if none).
    pub dig: i64,
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
    robust_rate: i64,
    cap: i64,
    periodic: Vec<(JobId, Periodic)>,
    foreign_per_min: f64,
    foreign_burst: i64,
    horizon: i64,
}

impl Lookahead {
    /// From a ledger view and the periodic demands.
    pub fn new(now: Millis, view: &View, demands: &[Demand]) -> Self {
        let periodic: Vec<(JobId, Periodic)> = demands
            .iter()
            .filter_map(|d| match d.need {
                Need::Periodic(p) if p.period_ms > 0 => Some((d.job, p)),
                _ => None,
            })
            .collect();
        let span = periodic
            .iter()
            .map(|(_, p)| p.period_ms + p.max_delay_ms)
            .max()
            .unwrap_or(0);
        let f = view.foreign;
        let rate = view.bucket.rate_at(now);
        let foreign_per_min = f.per_minute();
        // The most the periodic jobs can charge within one refill interval.
        let per_step: i64 = periodic
            .iter()
            .map(|(_, p)| p.cost.expected.max(0) * ((STEP + p.period_ms - 1) / p.period_ms))
            .sum();
        let robust_rate = rate.min(per_step.saturating_add(foreign_per_min.ceil() as i64));
        Lookahead {
            anchor: view.bucket.next_refill_at(),
            rate,
            robust_rate,
            cap: view.bucket.cap_at(now),
            periodic,
            foreign_per_min,
            foreign_burst: if f.total > 0 { f.largest_gap } else { 0 },
            horizon: 2 * span + 2 * STEP,
        }
    }

    /// The shortest `period + max_delay` of the periodic jobs: the nearest
    /// periodic deadline is never further away.
    fn nearest_span(&self) -> Option<i64> {
        self.periodic
            .iter()
            .map(|(_, p)| p.period_ms + p.max_delay_ms)
            .min()
    }

    /// The refill rate the hard reserve counts on (see the module docs).
    pub fn robust_rate(&self) -> i64 {
        self.robust_rate
    }

    /// The first refill step after `t`.
    pub fn next_step_after(&self, t: Millis) -> Millis {
        keepa::tokens::step_after(self.anchor, t)
    }

    /// Refill steps in `(anchor − STEP, t]`, minus one: `S(t)`.
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
            .map(|(_, p)| p.cost.expected as f64 * STEP as f64 / p.period_ms as f64)
            .sum()
    }

    /// The reserve at `t >= now`, counting periodic runs due after `t` as unpaid.
    pub fn reserve_at(&self, now: Millis, t: Millis) -> Reserve {
        let mut w = Window::new(self, now);
        w.advance(t.max(now));
        w.reserve()
    }

    /// Cost of the periodic runs due in `(now, s]`, in closed form.
    fn cost_due_in(&self, now: Millis, s: Millis) -> i64 {
        self.periodic
            .iter()
            .map(|(_, p)| {
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
            .map(|(_, p)| p.cost.expected as f64 / p.period_ms as f64)
            .sum();
        let offset: f64 = self
            .periodic
            .iter()
            .map(|(_, p)| {
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
}

/// The first due of `p` strictly after `now`.
fn first_due_after(p: &Periodic, now: Millis) -> Millis {
    if p.next_due > now {
        p.next_due
    } else {
        p.next_due + ((now - p.next_due) / p.period_ms + 1) * p.period_ms
    }
}

/// The lookahead's runs seen from an instant `t` that only moves forward.
///
/// Run `i` (due `d`, deadline `D`) is admitted by `D` if the balance then is
/// positive with every run that may be charged before it paid: the runs due
/// before `d`, and those due in `[d, D]` that earliest-deadline-first serves
/// first (deadline before `D`, ties by job): `Q_i` in all. So a request may
/// leave `b` at `t` when `b + r·(S(D) − S(t)) − (Q_i − A(t)) ≥ 1` for every
/// run due in `(t, t + horizon]`, where `S` counts refill steps and `A(t)`
/// is the cost of the runs due by `t`: the reserve is
/// `1 + r·S(t) − A(t) − min key_i` with `key_i = r·S(D_i) − Q_i`, which does
/// not depend on `t`. `A` and `Q` are sums over arithmetic sequences (closed
/// form, `O(jobs)`), and monotone deques keep the minima as runs enter and
/// leave, so a walk over `k` steps costs `O((k + runs)·jobs)`.
#[derive(Debug)]
struct Window<'a> {
    look: &'a Lookahead,
    t: Millis,
    /// First due of each periodic job after the origin.
    first: Vec<Millis>,
    /// Next due of each job not yet entered into the window.
    next: Vec<Millis>,
    /// `A(t)`: cost of the runs due in `(origin, t]`.
    paid: i64,
    /// Cost of the runs entered so far, and of those due before the last
    /// one entered (its `A(d⁻)`), with that due.
    entered_cost: i64,
    before_last: (Millis, i64),
    /// Increasing `key` at the robust rate: `(due, key)`.
    min_hard: VecDeque<(Millis, i64)>,
    /// Increasing `key` at the envelope's rate.
    min_dig: VecDeque<(Millis, i64)>,
    /// Decreasing `fpm·D/STEP − key` (robust rate), with foreign spending.
    max_foreign: VecDeque<(Millis, f64)>,
}

impl<'a> Window<'a> {
    fn new(look: &'a Lookahead, origin: Millis) -> Self {
        let first: Vec<Millis> = look
            .periodic
            .iter()
            .map(|(_, p)| first_due_after(p, origin))
            .collect();
        let mut w = Window {
            look,
            t: origin,
            next: first.clone(),
            first,
            paid: 0,
            entered_cost: 0,
            before_last: (Millis::MIN, 0),
            min_hard: VecDeque::new(),
            min_dig: VecDeque::new(),
            max_foreign: VecDeque::new(),
        };
        w.fill();
        w
    }

    /// Runs of job `j` due in `[lo, hi]`.
    fn count(&self, j: usize, lo: Millis, hi: Millis) -> i64 {
        let p = &self.look.periodic[j].1;
        let upto = |tau: Millis| {
            if tau < self.first[j] {
                0
            } else {
                (tau - self.first[j]) / p.period_ms + 1
            }
        };
        if hi < lo {
            0
        } else {
            upto(hi) - upto(lo - 1)
        }
    }

    /// Cost of the runs due in `(origin, tau]`.
    fn cost_due_by(&self, tau: Millis) -> i64 {
        (0..self.first.len())
            .map(|j| self.look.periodic[j].1.cost.expected * self.count(j, Millis::MIN / 4, tau))
            .sum()
    }

    /// `Q` of job `i`'s run due at `due` (see the type docs), given the
    /// cost of the runs due before it.
    fn charged_before(&self, i: usize, due: Millis, before: i64) -> i64 {
        let (job_i, p_i) = self.look.periodic[i];
        let mut q = before;
        for (k, (job_k, p_k)) in self.look.periodic.iter().enumerate() {
            if k == i || p_k.max_delay_ms > p_i.max_delay_ms {
                continue;
            }
            // Due in [d, D_i − M_k]: deadline before D_i, or equal with a
            // smaller job id.
            let gap = p_i.max_delay_ms - p_k.max_delay_ms;
            let hi = if *job_k < job_i {
                due + gap
            } else {
                due + gap - 1
            };
            q += p_k.cost.expected * self.count(k, due, hi);
        }
        q
    }

    /// Brings runs due in `(t, t + horizon]` into the window.
    fn fill(&mut self) {
        let look = self.look;
        let limit = self.t + look.horizon;
        let fpm = look.foreign_per_min;
        loop {
            // The next run by due, ties by job id.
            let mut best: Option<usize> = None;
            for (j, d) in self.next.iter().enumerate() {
                if *d <= limit
                    && best.is_none_or(|b| {
                        (*d, look.periodic[j].0) < (self.next[b], look.periodic[b].0)
                    })
                {
                    best = Some(j);
                }
            }
            let Some(j) = best else { break };
            let p = look.periodic[j].1;
            let due = self.next[j];
            self.next[j] = due + p.period_ms;
            // Runs enter by due: those due before this one are all in.
            if due != self.before_last.0 {
                self.before_last = (due, self.entered_cost);
            }
            self.entered_cost += p.cost.expected;
            let q = self.charged_before(j, due, self.before_last.1);
            let steps = look.step_index(due + p.max_delay_ms);
            let hard = look.robust_rate * steps - q;
            let dig = look.rate * steps - q;
            push_min(&mut self.min_hard, due, hard);
            push_min(&mut self.min_dig, due, dig);
            if fpm > 0.0 {
                let v = fpm * (due + p.max_delay_ms) as f64 / STEP as f64 - hard as f64;
                while self.max_foreign.back().is_some_and(|b| b.1 <= v) {
                    self.max_foreign.pop_back();
                }
                self.max_foreign.push_back((due, v));
            }
        }
    }

    /// Moves to `t2 >= t`; returns the cost of the runs due in `(t, t2)`
    /// and at `t2`.
    fn advance(&mut self, t2: Millis) -> (i64, i64) {
        if t2 <= self.t {
            return (0, 0);
        }
        let before = self.cost_due_by(t2 - 1) - self.paid;
        let paid = self.cost_due_by(t2);
        let at = paid - self.paid - before;
        self.paid = paid;
        self.t = t2;
        self.fill();
        while self.min_hard.front().is_some_and(|f| f.0 <= t2) {
            self.min_hard.pop_front();
        }
        while self.min_dig.front().is_some_and(|f| f.0 <= t2) {
            self.min_dig.pop_front();
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
        let (Some(&(_, hard_key)), Some(&(_, dig_key))) =
            (self.min_hard.front(), self.min_dig.front())
        else {
            return Reserve {
                hard: i64::MIN,
                dig: i64::MIN,
                soft,
            };
        };
        let steps = look.step_index(t);
        let dig = 1 + look.rate * steps - self.paid - dig_key;
        let base = look.robust_rate * steps - self.paid;
        let hard = match self.max_foreign.front() {
            Some(&(_, v)) if look.foreign_per_min > 0.0 => {
                1 + look.foreign_burst
                    + (v - look.foreign_per_min * t as f64 / STEP as f64 + base as f64).ceil()
                        as i64
            }
            _ => 1 + base - hard_key + look.foreign_burst,
        };
        Reserve { hard, dig, soft }
    }
}

fn push_min(q: &mut VecDeque<(Millis, i64)>, due: Millis, key: i64) {
    while q.back().is_some_and(|b| b.1 >= key) {
        q.pop_back();
    }
    q.push_back((due, key));
}

/// Why a bulk request cannot go now.
enum Stall {
    /// The first instant at which it may go (`i64::MAX`: not in sight).
    At(Millis),
    /// It never can while every periodic job stays on time.
    Never(Refusal),
    /// Refill can never pay for it.
    NoRefill,
}

/// One bulk job's remaining work, when its size is known.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Upper bound of everything it still needs.
    total: i64,
    /// Upper bound of its last request.
    last: i64,
    /// Items of its last request.
    last_items: u32,
    /// Items left.
    remaining: u64,
}

fn plan_of(b: &Bulk) -> Option<Plan> {
    let remaining = b.remaining?;
    let max = u64::from(b.max_batch.max(1));
    if remaining == 0 || b.max_batch == 0 {
        return None;
    }
    let requests = remaining.div_ceil(max);
    // A fixed batch ends with what is left over; a free one can end full.
    let last_items = if b.min_batch >= b.max_batch {
        remaining - (requests - 1) * max
    } else {
        remaining.min(max)
    } as u32;
    let r = b.per_request.upper_bound;
    let u = b.per_item.upper_bound;
    Some(Plan {
        total: r
            .saturating_mul(requests as i64)
            .saturating_add(u.saturating_mul(remaining as i64)),
        last: r + u * i64::from(last_items),
        last_items,
        remaining,
    })
}

impl Flow {
    /// Items of `b` that may go at balance `balance` under `r`, if at least
    /// `min_batch`; `at_cap` allows digging to the cap reserve.
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
        if at_cap && fits(m, r.dig) {
            return Some(m);
        }
        None
    }

    /// The items `b` may send now, or why it cannot.
    fn fit(&self, now: Millis, view: &View, look: &Lookahead, b: &Bulk) -> Result<u32, Stall> {
        let balance = view.balance_at(now);
        let cap_now = look.cap;
        // Waiting past the step that would overflow the cap only wastes refill.
        let full = |bal: i64| bal + look.rate > cap_now;
        let mut w = Window::new(look, now);
        let r0 = w.reserve();
        if let Some(n) = self.items(b, balance, &r0, full(balance)) {
            return Ok(n);
        }
        let m = b.min_batch.max(1).min(b.max_batch);
        // The latest instant, before the bucket first fills, at which the
        // request could dig to the cap reserve.
        let mut last_dig = self.items(b, balance, &r0, true).map(|_| now);
        if look.rate <= 0 || look.periodic_per_min() >= look.rate as f64 {
            return Err(Stall::NoRefill);
        }
        // Walk refill steps on the periodic-only projection.
        let cycle_steps = 2 + look.horizon / STEP;
        let mut bal = balance;
        let mut t = now;
        // Nothing fits below this balance (a request leaves at least the
        // soft reserve, or goes at the cap, or finishes at a positive
        // balance, or digs to a cap reserve, which is at least one minus the
        // refill until the nearest periodic deadline): jump over the steps
        // that cannot reach it.
        let cost_m = b.per_request.upper_bound + b.per_item.upper_bound * m as i64;
        let mut threshold = (cost_m + w.soft_at_step()).min(cap_now - look.rate + 1);
        if let Some(span) = look.nearest_span() {
            threshold = threshold.min((cost_m + 1 - look.rate * (span / STEP + 2)).max(1));
        }
        if self.finish_line && b.finishing {
            threshold = threshold.min(1);
        }
        if let Some((k, s_k)) = look.steps_below(now, balance, threshold) {
            bal = balance + look.rate * k - look.cost_due_in(now, s_k);
            t = s_k;
            w = Window::new(look, t);
        }
        let mut at_cap_steps = 0;
        let mut first_full = None;
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
            if at_cap && first_full.is_none() {
                first_full = Some(t);
            }
            let r = w.reserve();
            if self.items(b, bal, &r, at_cap).is_some() {
                return Err(Stall::At(t));
            }
            if first_full == Some(t) {
                // Full, and the request cannot go: the next step loses
                // refill. Dig at the latest instant before that, if any.
                match last_dig {
                    Some(d) if d == now => return Ok(m),
                    Some(d) => return Err(Stall::At(d)),
                    None => {}
                }
            } else if first_full.is_none() && self.items(b, bal, &r, true).is_some() {
                last_dig = Some(t);
            }
            if at_cap {
                at_cap_steps += 1;
                worst_allowed =
                    worst_allowed.max(cap_now - r.dig.max(self.deficit_floor.unwrap_or(i64::MIN)));
                if at_cap_steps > cycle_steps {
                    return Err(Stall::Never(Refusal::NeverFits {
                        job: JobId(0),
                        min_items: m,
                        cost: cost_m,
                        allowed: worst_allowed,
                        cap: cap_now,
                    }));
                }
            }
        }
        Err(Stall::At(i64::MAX))
    }

    /// Rule 7 with known sizes: when all the remaining bulk work can go at
    /// once, every request admitted at a positive balance and the most
    /// expensive last request last, it goes now.
    fn finish_burst(&self, balance: i64, order: &[(JobId, Bulk)], blocked: bool) -> Option<Grant> {
        if !self.finish_line || blocked || order.is_empty() || balance < 1 {
            return None;
        }
        let plans: Vec<Plan> = order
            .iter()
            .map(|(_, b)| plan_of(b))
            .collect::<Option<_>>()?;
        let total = plans.iter().fold(0i64, |a, p| a.saturating_add(p.total));
        let (last_job, last) = plans
            .iter()
            .enumerate()
            .max_by_key(|(i, p)| (p.last, std::cmp::Reverse(*i)))?;
        if total.saturating_sub(last.last) > balance - 1 {
            return None;
        }
        if let Some(floor) = self.deficit_floor {
            if balance.saturating_sub(total) < floor {
                return None;
            }
        }
        // Everything else first, in fair-share order; then the last job,
        // its final request at the very end.
        let (i, items) = match order.iter().enumerate().find(|(i, _)| *i != last_job) {
            Some((i, (_, b))) => (i, b.max_batch),
            None => {
                let p = last;
                let items = if p.remaining > u64::from(p.last_items) {
                    (p.remaining - u64::from(p.last_items))
                        .min(u64::from(order[last_job].1.max_batch)) as u32
                } else {
                    p.last_items
                };
                (last_job, items)
            }
        };
        let (job, b) = order[i];
        let items = items.clamp(b.min_batch.min(b.max_batch).max(1), b.max_batch);
        Some(Grant {
            job,
            items,
            cost: b.per_request.plus_items(b.per_item, items),
        })
    }

    /// The job whose last request digs deepest at the finish keeps that
    /// request for the end while the others still have work (sizes known).
    fn deferred(order: &[(JobId, Bulk)]) -> Option<JobId> {
        if order.len() < 2 {
            return None;
        }
        let plans: Vec<Plan> = order
            .iter()
            .map(|(_, b)| plan_of(b))
            .collect::<Option<_>>()?;
        let (i, p) = plans
            .iter()
            .enumerate()
            .max_by_key(|(i, p)| (p.last, std::cmp::Reverse(*i)))?;
        (p.remaining <= u64::from(order[i].1.max_batch)).then_some(order[i].0)
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
        let (order, later) = bulk_order(now, state, demands);
        let wake_periodic = next_periodic_due(now, demands);
        if order.is_empty() {
            return Decision::Wait {
                until: min_opt(later, wake_periodic),
            };
        }
        // A refill step landed since the newest envelope: the plan may have
        // changed (that shows only in an envelope) and others may have
        // spent. Bulk work is sized and its wait computed on the bucket as
        // the server has it: re-read it once per step.
        if let Some(step) = unconfirmed_step(view, now) {
            if view.last_sync.is_none_or(|s| s < step) {
                return Decision::Sync;
            }
        }
        if let Some(g) = self.finish_burst(balance, &order, later.is_some()) {
            return Decision::Go(g);
        }
        let deferred = Self::deferred(&order);
        let eligible: Vec<(JobId, Bulk)> = order
            .iter()
            .copied()
            .filter(|(j, _)| Some(*j) != deferred)
            .collect();
        let (job, b) = eligible[0];
        let look = Lookahead::new(now, view, demands);
        let stall = match self.fit(now, view, &look, &b) {
            Ok(items) => {
                return Decision::Go(Grant {
                    job,
                    items,
                    cost: b.per_request.plus_items(b.per_item, items),
                })
            }
            Err(stall) => stall,
        };
        // The head cannot go: rather than let the bucket overflow, another
        // bulk job that fits may use the refill.
        if balance + look.rate > look.cap {
            let r = look.reserve_at(now, now);
            for (j, o) in &eligible[1..] {
                if let Some(items) = self.items(o, balance, &r, true) {
                    return Decision::Go(Grant {
                        job: *j,
                        items,
                        cost: o.per_request.plus_items(o.per_item, items),
                    });
                }
            }
        }
        match stall {
            Stall::At(t) => {
                // Look again at the next step at the latest: a plan change
                // only the next envelope shows must not be slept through
                // (refill lost to a smaller bucket, or left idle by a
                // larger plan), and other bulk work may use a full bucket.
                let t = Some(t.min(look.next_step_after(now)));
                Decision::Wait {
                    until: min_opt(min_opt(t, later), wake_periodic),
                }
            }
            Stall::Never(mut r) => {
                if let Refusal::NeverFits { job: j, .. } = &mut r {
                    *j = job;
                }
                Decision::Refuse(r)
            }
            Stall::NoRefill => Decision::Refuse(Refusal::NoRefill {
                job,
                rate: look.rate,
                periodic_per_min: look.periodic_per_min(),
            }),
        }
    }
}

/// The latest refill step at or before `now` if the newest envelope
/// predates it.
fn unconfirmed_step(view: &View, now: Millis) -> Option<Millis> {
    let first = view.snapshot.next_refill_at_ms();
    (now >= first).then(|| first + (now - first) / STEP * STEP)
}

/// Keepa's cap for a plan, for callers building views by hand.
pub fn keepa_cap(rate: i64) -> i64 {
    BucketCap::default().at_rate(rate)
}
