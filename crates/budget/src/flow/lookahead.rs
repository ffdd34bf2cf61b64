//! The look-ahead: the projected bucket with only periodic work running,
//! and the reserve it implies at any instant (see the [module docs](super)).

use std::collections::VecDeque;

use super::Reserve;
use crate::demand::{Demand, JobId, Millis, Need, Periodic};
use crate::ledger::View;
use crate::policy::STEP;

/// Looks ahead on the projected bucket with only periodic work running.
#[derive(Debug, Clone)]
pub struct Lookahead {
    anchor: Millis,
    pub(super) rate: i64,
    robust_rate: i64,
    pub(super) cap: i64,
    periodic: Vec<(JobId, Periodic)>,
    foreign_per_min: f64,
    foreign_burst: i64,
    /// Held back beyond the runs' mean cost: the tails of runs in progress
    /// and the largest excess of a recent tail over the mean.
    tail_hold: i64,
    /// The tails of runs in progress alone.
    open_tails: i64,
    pub(super) horizon: i64,
}

impl Lookahead {
    /// From a ledger view and the periodic demands.
    pub fn new(now: Millis, view: &View, demands: &[Demand]) -> Self {
        let declared: Vec<(JobId, Periodic)> = demands
            .iter()
            .filter_map(|d| match d.need {
                Need::Periodic(p) if p.period_ms > 0 => Some((d.job, p)),
                _ => None,
            })
            .collect();
        let rate = view.bucket.rate_at(now);
        let share = tail_share(&declared, rate);
        // From here on a run's `cost.expected` is its whole run: the first
        // request and its share of the tail, charged at its due.
        let periodic: Vec<(JobId, Periodic)> = declared
            .iter()
            .map(|&(j, mut p)| {
                p.cost.expected =
                    p.cost.expected.max(0) + (p.tail.expected.max(0) as f64 * share).ceil() as i64;
                (j, p)
            })
            .collect();
        let open_tails: i64 = declared.iter().map(|(_, p)| p.open_tail.max(0)).sum();
        let excess = declared
            .iter()
            .map(|(_, p)| (p.tail.upper_bound - p.tail.expected).max(0))
            .max()
            .unwrap_or(0);
        let span = periodic
            .iter()
            .map(|(_, p)| p.period_ms + p.max_delay_ms)
            .max()
            .unwrap_or(0);
        let f = view.foreign;
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
            tail_hold: open_tails.saturating_add(excess),
            open_tails,
            horizon: 2 * span + 2 * STEP,
        }
    }

    /// The shortest `period + max_delay` of the periodic jobs: the nearest
    /// periodic deadline is never further away.
    pub(super) fn nearest_span(&self) -> Option<i64> {
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
    pub(super) fn cost_due_in(&self, now: Millis, s: Millis) -> i64 {
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
    pub(super) fn steps_below(
        &self,
        now: Millis,
        balance: i64,
        level: i64,
    ) -> Option<(i64, Millis)> {
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

/// The share of the declared tails the look-ahead counts: all of them,
/// unless the periodic runs would then cost at least the refill rate; then
/// the largest share that keeps them one token a minute below it (none if
/// their first requests alone reach it). A reserve refill cannot pay would
/// only stop the bulk work without keeping any run on time.
fn tail_share(periodic: &[(JobId, Periodic)], rate: i64) -> f64 {
    let per_min = |f: fn(&Periodic) -> i64| -> f64 {
        periodic
            .iter()
            .map(|(_, p)| f(p).max(0) as f64 * STEP as f64 / p.period_ms as f64)
            .sum()
    };
    let first = per_min(|p| p.cost.expected);
    let tails = per_min(|p| p.tail.expected);
    let room = rate as f64 - 1.0 - first;
    if tails <= 0.0 || tails <= room {
        1.0
    } else {
        (room / tails).clamp(0.0, 1.0)
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
pub(super) struct Window<'a> {
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
    pub(super) fn new(look: &'a Lookahead, origin: Millis) -> Self {
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
    pub(super) fn advance(&mut self, t2: Millis) -> (i64, i64) {
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
    pub(super) fn soft_at_step(&self) -> i64 {
        1 + self.look.foreign(STEP)
    }

    /// The reserve at the current instant.
    pub(super) fn reserve(&self) -> Reserve {
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
        let dig = 1 + look.rate * steps - self.paid - dig_key + look.open_tails;
        let base = look.robust_rate * steps - self.paid;
        let held = look.foreign_burst + look.tail_hold;
        let hard = match self.max_foreign.front() {
            Some(&(_, v)) if look.foreign_per_min > 0.0 => {
                1 + held
                    + (v - look.foreign_per_min * t as f64 / STEP as f64 + base as f64).ceil()
                        as i64
            }
            _ => 1 + base - hard_key + held,
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
