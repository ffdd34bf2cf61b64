//! The frontier: the earliest day any policy could reach the target while
//! serving every periodic run on time.
//!
//! Counting in refill steps `k` (minutes), the target is reachable at step
//! `k` when
//!
//! ```text
//! start + refill(1..=k) − periodic(≤ k) − foreign(≤ k) ≥ total − (largest last request − 1)
//! ```
//!
//! `refill` sums the rate in force at each step; `periodic` counts every run
//! due by then (runs at 0, period, 2·period, …); `foreign` sums the foreign
//! consumer's requests issued by then; `total` is the bulk work's cost
//! (a pipeline's expected cost from its pass fractions); the last request
//! is admitted at a balance of 1 and may be charged into the negative, so
//! at most `largest last request − 1` of it can be owed at the finish. The
//! last request is some job's last: with a fixed batch that is what is left
//! over (`(target − 1) mod batch + 1` items), with a free batch up to a full
//! one. The bucket cap is ignored (a policy that never lets the bucket fill loses
//! nothing to it), so the frontier is a bound no policy can beat.

use crate::engine::{ForeignGen, MAX_BATCH};
use crate::workload::{JobSpec, Stage, Workload};
use crate::SimError;

/// Tokens a pipeline spends per feed deal, and the fraction of feed deals stored.
pub fn pipeline_rates(stages: &[Stage]) -> (f64, f64) {
    let mut reach = 1.0;
    let mut per_deal = 0.0;
    for (i, s) in stages.iter().enumerate() {
        if i == 0 {
            per_deal += s.tokens_per_request.unwrap_or(0) as f64
                / s.items_per_request.unwrap_or(1).max(1) as f64;
        } else {
            per_deal += reach * s.expected_per_item();
        }
        reach *= s.pass.unwrap_or(1.0);
    }
    (per_deal, reach)
}

/// Total bulk cost and the largest request that can be a job's last one
/// (the finish digs at most that deep, see the module docs).
pub fn bulk_cost(w: &Workload) -> (f64, i64) {
    let mut total = 0.0;
    let mut largest = 0i64;
    for j in &w.jobs {
        match j {
            JobSpec::Backfill {
                target_deals,
                tokens_per_deal,
                batch_deals,
                ..
            } => {
                total += *target_deals as f64 * *tokens_per_deal;
                // A fixed batch ends with what is left over; a free one can
                // end with a full request.
                let last = match batch_deals {
                    Some(b) if *target_deals > 0 => (*target_deals - 1) % u64::from(*b) + 1,
                    _ => (MAX_BATCH as u64).min(*target_deals),
                };
                // Whole tokens: a fractional cost charges at most this much.
                largest = largest.max((last as f64 * *tokens_per_deal).ceil() as i64);
            }
            JobSpec::Pipeline {
                target_stored,
                stages,
                ..
            } => {
                let (per_deal, stored) = pipeline_rates(stages);
                if stored > 0.0 {
                    total += *target_stored as f64 / stored * per_deal;
                } else {
                    total = f64::INFINITY;
                }
                for (i, s) in stages.iter().enumerate() {
                    let c = if i == 0 {
                        s.tokens_per_request.unwrap_or(0)
                    } else {
                        s.tokens_per_item.unwrap_or(0)
                            * s.max_items_per_request.unwrap_or(MAX_BATCH) as i64
                    };
                    largest = largest.max(c);
                }
            }
            _ => {}
        }
    }
    (total, largest)
}

/// The frontier in days, or `None` if the horizon comes first.
pub fn frontier_days(w: &Workload) -> Result<Option<f64>, SimError> {
    let schedule = w.schedule()?;
    let (total, largest) = bulk_cost(w);
    if !total.is_finite() {
        return Ok(None);
    }
    let need = total - (largest.max(1) - 1) as f64;
    let start = w
        .plan
        .start_tokens
        .unwrap_or_else(|| w.cap().at_rate(schedule.rate_at(0)));
    let mut periodic: Vec<(i64, i64)> = Vec::new();
    let mut foreign: Vec<ForeignGen> = Vec::new();
    for j in &w.jobs {
        match j {
            JobSpec::Refresh {
                period_s,
                tokens_per_run,
                ..
            } => periodic.push(((period_s * 1000.0).round() as i64, *tokens_per_run)),
            JobSpec::Foreign {
                tokens_per_minute,
                max_cost,
                seed,
                ..
            } => foreign.push(ForeignGen::new(*tokens_per_minute, *max_cost, *seed)),
            _ => {}
        }
    }
    let horizon_steps = w.horizon_ms() / 60_000;
    let mut have = start as f64;
    let mut foreign_spent = 0i64;
    for k in 0..=horizon_steps {
        let t = k * 60_000;
        if k > 0 {
            have += schedule.rate_at(t) as f64;
        }
        for g in foreign.iter_mut() {
            while let Some((at, cost)) = g.next {
                if at > t {
                    break;
                }
                foreign_spent += cost;
                g.next = g.draw(at);
            }
        }
        let per: i64 = periodic.iter().map(|(p, c)| (t / p + 1) * c).sum();
        if have - per as f64 - foreign_spent as f64 >= need {
            return Ok(Some(t as f64 / 86_400_000.0));
        }
    }
    Ok(None)
}
