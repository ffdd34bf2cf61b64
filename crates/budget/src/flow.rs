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

    /// Refill steps in `(t, d]`.
    fn steps_in(&self, t: Millis, d: Millis) -> i64 {
        if d <= t {
            return 0;
        }
        (d - self.anchor).div_euclid(STEP) - (t - self.anchor).div_euclid(STEP)
    }

    /// The first refill step after `t`.
    pub fn next_step_after(&self, t: Millis) -> Millis {
        self.anchor + ((t - self.anchor).div_euclid(STEP) + 1) * STEP
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

    /// `(due, cost, max_delay)` of runs due in `(t, until]`, sorted by due.
    fn runs(&self, t: Millis, until: Millis) -> Vec<(Millis, i64, i64)> {
        let mut out = Vec::new();
        for p in &self.periodic {
            let mut d = if p.next_due > t {
                p.next_due
            } else {
                p.next_due + ((t - p.next_due) / p.period_ms + 1) * p.period_ms
            };
            while d <= until {
                out.push((d, p.cost.expected, p.max_delay_ms));
                d += p.period_ms;
            }
        }
        out.sort_unstable();
        out
    }

    /// The reserve at `t`, counting periodic runs due after `t` as unpaid.
    pub fn reserve_at(&self, t: Millis) -> Reserve {
        let next = self.next_step_after(t);
        let soft = 1 + self.foreign(next - t);
        if self.periodic.is_empty() {
            return Reserve {
                hard_base: i64::MIN,
                hard: i64::MIN,
                soft,
            };
        }
        let runs = self.runs(t, t + self.horizon + self.max_delay);
        let mut prefix = Vec::with_capacity(runs.len() + 1);
        prefix.push(0i64);
        for r in &runs {
            prefix.push(prefix.last().copied().unwrap_or(0) + r.1);
        }
        let mut min_base = i64::MAX;
        let mut min_foreign = i64::MAX;
        for &(d, c, max_delay) in runs.iter().take_while(|r| r.0 <= t + self.horizon) {
            let deadline = d + max_delay;
            let due_by = runs.partition_point(|r| r.0 <= deadline);
            let others = prefix[due_by] - c;
            let margin = self.rate * self.steps_in(t, deadline) - others;
            min_base = min_base.min(margin);
            min_foreign = min_foreign.min(margin - self.foreign(deadline - t));
        }
        if min_base == i64::MAX {
            return Reserve {
                hard_base: i64::MIN,
                hard: i64::MIN,
                soft,
            };
        }
        Reserve {
            hard_base: 1 - min_base,
            hard: 1 - min_foreign,
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
        if let Some(n) = self.items(b, balance, &look.reserve_at(now), full(balance)) {
            return Fit::Go(n);
        }
        if look.rate <= 0 || look.periodic_per_min() >= look.rate as f64 {
            return Fit::NoRefill;
        }
        // Walk refill steps on the periodic-only projection.
        let cycle_steps = 2 + look.horizon / STEP;
        let mut bal = balance;
        let mut t = now;
        let mut at_cap_steps = 0;
        let mut worst_allowed = i64::MIN;
        for _ in 0..2_000_000 {
            let s = look.next_step_after(t);
            // Runs due before the step are charged before it, at the step after it.
            let runs = look.runs(t, s);
            let before: i64 = runs.iter().filter(|r| r.0 < s).map(|r| r.1).sum();
            let at: i64 = runs.iter().filter(|r| r.0 == s).map(|r| r.1).sum();
            bal -= before;
            bal = if bal >= cap_now {
                cap_now
            } else {
                (bal + look.rate).min(cap_now)
            };
            bal -= at;
            let at_cap = full(bal);
            t = s;
            let r = look.reserve_at(t);
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
