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
//!      A run counts whole: its first request and the tail its job
//!      declared ([`Periodic::tail`](crate::Periodic::tail): what a refresh
//!      run's product calls cost), charged at its due; on top, the reserve
//!      holds the tails of runs in progress
//!      ([`Periodic::open_tail`](crate::Periodic::open_tail)) and the
//!      largest excess of a recent tail over its mean, as it holds the
//!      foreign burst. Tails count only up to the share that keeps the
//!      periodic jobs a token a minute below the refill rate: a reserve
//!      refill cannot pay would stop the bulk work and keep no run on time.
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
//!    A request marked [`Bulk::finishing`] (the tail of a periodic run)
//!    goes before any of them (when the finish line is enabled): a refresh
//!    run that waited behind the backfill's fair share would overrun its
//!    period and leave the next run late.
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

mod lookahead;

use keepa::tokens::BucketCap;

use crate::demand::{Bulk, Decision, Demand, Grant, JobId, Millis, Refusal};
use crate::ledger::View;
use crate::policy::{bulk_order, min_opt, next_periodic_due, periodic_due, Policy, State, STEP};

pub use lookahead::Lookahead;
use lookahead::Window;

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
        let (mut order, later) = bulk_order(now, state, demands);
        if self.finish_line {
            // The tail of a periodic run goes before any fair share (a
            // stable sort keeps the fair-share order among the rest).
            order.sort_by_key(|(_, b)| !b.finishing);
        }
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
