//! The workload's jobs as the engine runs them, and what they ask the
//! budget for at an instant.

use std::collections::BTreeMap;

use budget::{Bulk, Demand, JobId, Millis, Need, Periodic, Prediction};

use super::foreign::{Foreign, ForeignGen};
use super::report::PipelineReport;
use super::{DAY_MS, MAX_BATCH};
use crate::workload::{JobSpec, Stage, Workload};

#[derive(Debug)]
struct BackfillState {
    target: u64,
    done: u64,
    /// Tokens per deal; may be fractional (see [`Job::charge`]).
    per_deal: f64,
    batch: Option<u32>,
    spacing_ms: i64,
    weight: u32,
    last: Option<Millis>,
}

#[derive(Debug)]
struct RefreshState {
    period_ms: i64,
    cost: i64,
    max_delay_ms: i64,
    next_due: Millis,
}

#[derive(Debug)]
struct PipelineState {
    stages: Vec<Stage>,
    queue: Vec<u64>,
    carry: Vec<f64>,
    stored: u64,
    target: u64,
    backlog: u64,
    new_per_hour: f64,
    taken: u64,
    spent: Vec<i64>,
    /// Items each stage has been charged for.
    served: Vec<u64>,
}

impl PipelineState {
    /// What a request of `items` at the current stage costs when the stage
    /// has a `fresh_share`: whole tokens, so that the stage's charge so far
    /// is `round(served × expected per item)`; `None` otherwise.
    fn mixed_charge(&self, items: u32) -> Option<i64> {
        let i = self.stage();
        let s = self
            .stages
            .get(i)
            .filter(|s| i > 0 && s.fresh_share.is_some())?;
        let per = s.expected_per_item();
        let cumulative = |n: u64| (n as f64 * per).round() as i64;
        let done = self.served[i];
        Some(cumulative(done + u64::from(items)) - cumulative(done))
    }

    fn available(&self, t: Millis) -> u64 {
        let new = (self.new_per_hour * t as f64 / 3_600_000.0).floor() as u64;
        (self.backlog + new).saturating_sub(self.taken)
    }

    fn survivors(&mut self, i: usize, n: u64) -> u64 {
        let pass = self.stages[i].pass.unwrap_or(1.0);
        self.carry[i] += n as f64 * pass;
        let s = (self.carry[i] + 1e-9).floor();
        self.carry[i] = (self.carry[i] - s).max(0.0);
        s as u64
    }

    /// Items enter stage `i`; free filters apply at once.
    fn push(&mut self, mut i: usize, mut n: u64) {
        while i < self.stages.len() && self.stages[i].tokens_per_item == Some(0) {
            n = self.survivors(i, n);
            i += 1;
        }
        if i >= self.stages.len() {
            self.stored += n;
        } else {
            self.queue[i] += n;
        }
    }

    /// The stage to serve next: the deepest with items waiting, else the feed.
    fn stage(&self) -> usize {
        (1..self.stages.len())
            .rev()
            .find(|&i| self.queue[i] > 0)
            .unwrap_or(0)
    }

    fn demand(&self, t: Millis) -> Option<Bulk> {
        let i = self.stage();
        if i > 0 {
            let s = &self.stages[i];
            let max = s.max_items_per_request.unwrap_or(MAX_BATCH) as u64;
            return Some(Bulk {
                per_request: Prediction::exact(0),
                per_item: Prediction::new(
                    s.expected_per_item().ceil() as i64,
                    s.tokens_per_item.unwrap_or(0),
                ),
                min_batch: 1,
                max_batch: self.queue[i].min(max) as u32,
                weight: 1,
                not_before: t,
                finishing: false,
                remaining: None,
            });
        }
        let feed = &self.stages[0];
        let not_before = if self.available(t) > 0 {
            t
        } else if self.new_per_hour > 0.0 {
            let need = (self.taken + 1).saturating_sub(self.backlog) as f64;
            ((need * 3_600_000.0 / self.new_per_hour).ceil() as Millis).max(t + 1)
        } else {
            return None;
        };
        Some(Bulk {
            per_request: Prediction::exact(feed.tokens_per_request.unwrap_or(0)),
            per_item: Prediction::exact(0),
            min_batch: 1,
            max_batch: 1,
            weight: 1,
            not_before,
            finishing: false,
            remaining: None,
        })
    }

    /// A request of `items` was charged `cost` at `t`.
    fn apply(&mut self, t: Millis, items: u32, cost: i64) {
        let i = self.stage();
        self.spent[i] += cost;
        if i == 0 {
            let n = self
                .available(t)
                .min(self.stages[0].items_per_request.unwrap_or(0) as u64);
            self.taken += n;
            self.push(1, n);
        } else {
            let n = (items as u64).min(self.queue[i]);
            self.served[i] += u64::from(items);
            self.queue[i] -= n;
            let s = self.survivors(i, n);
            self.push(i + 1, s);
        }
    }
}

#[derive(Debug)]
enum Kind {
    Backfill(BackfillState),
    Refresh(RefreshState),
    Pipeline(PipelineState),
}

/// One job of the workload and its progress.
#[derive(Debug)]
pub(super) struct Job {
    /// Its name in the report (unique).
    pub(super) name: String,
    kind: Kind,
    /// Tokens charged to it.
    pub(super) spent: i64,
    /// When its target was reached (bulk jobs).
    pub(super) finished_at: Option<Millis>,
    /// Why the budget refused it, if it did.
    pub(super) refused: Option<String>,
}

impl Job {
    /// A backfill or a pipeline.
    pub(super) fn is_bulk(&self) -> bool {
        matches!(self.kind, Kind::Backfill(_) | Kind::Pipeline(_))
    }

    /// Bulk work not finished nor refused.
    pub(super) fn bulk_open(&self) -> bool {
        self.is_bulk() && self.finished_at.is_none() && self.refused.is_none()
    }

    /// Deals done: backfill deals, or stored pipeline deals.
    pub(super) fn deals(&self) -> u64 {
        match &self.kind {
            Kind::Backfill(b) => b.done,
            Kind::Pipeline(p) => p.stored,
            Kind::Refresh(_) => 0,
        }
    }

    /// What the server charges for a granted request of `items` whose
    /// predicted cost is `expected`: the prediction, except for a backfill,
    /// charged whole tokens so that its cumulative charge is
    /// `round(done × tokens_per_deal)` (exactly `items × tokens_per_deal`
    /// for a whole cost), and likewise a pipeline stage with a
    /// `fresh_share` (see [`Stage::expected_per_item`]).
    pub(super) fn charge(&self, items: u32, expected: i64) -> i64 {
        match &self.kind {
            Kind::Backfill(b) => {
                let cumulative = |n: u64| (n as f64 * b.per_deal).round() as i64;
                cumulative(b.done + u64::from(items)) - cumulative(b.done)
            }
            Kind::Pipeline(p) => p.mixed_charge(items).unwrap_or(expected),
            Kind::Refresh(_) => expected,
        }
    }

    /// A request of `items` was charged `cost` at `t`. For a periodic run:
    /// its start delay, and whether that was within its maximum.
    pub(super) fn charged(&mut self, t: Millis, items: u32, cost: i64) -> Option<(i64, bool)> {
        self.spent += cost;
        match &mut self.kind {
            Kind::Refresh(r) => {
                let delay = t - r.next_due;
                r.next_due += r.period_ms;
                return Some((delay, delay <= r.max_delay_ms));
            }
            Kind::Backfill(b) => {
                b.done += items as u64;
                b.last = Some(t);
                if b.done >= b.target {
                    self.finished_at = Some(t);
                }
            }
            Kind::Pipeline(p) => {
                p.apply(t, items, cost);
                if p.stored >= p.target {
                    self.finished_at = Some(t);
                }
            }
        }
        None
    }

    /// The policy skipped the periodic run due now.
    pub(super) fn skipped(&mut self) {
        if let Kind::Refresh(r) = &mut self.kind {
            r.next_due += r.period_ms;
        }
    }

    /// Periodic runs due in `[0, end]`.
    pub(super) fn runs_due_by(&self, end: Millis) -> u64 {
        match &self.kind {
            Kind::Refresh(r) => (end / r.period_ms + 1) as u64,
            _ => 0,
        }
    }

    /// A pipeline's report.
    pub(super) fn pipeline_report(&self) -> Option<PipelineReport> {
        let Kind::Pipeline(p) = &self.kind else {
            return None;
        };
        Some(PipelineReport {
            name: self.name.clone(),
            tokens_per_stored_deal: (p.stored > 0).then(|| self.spent as f64 / p.stored as f64),
            days_to_target: self.finished_at.map(|f| f as f64 / DAY_MS),
            stored: p.stored,
            tokens_spent: p
                .stages
                .iter()
                .zip(&p.spent)
                .map(|(s, n)| (s.name.clone(), *n))
                .collect(),
        })
    }
}

/// The jobs and the foreign consumers of `w`; job names made unique.
pub(super) fn jobs_of(w: &Workload) -> (Vec<Job>, Vec<Foreign>) {
    let mut jobs: Vec<Job> = Vec::new();
    let mut foreign: Vec<Foreign> = Vec::new();
    for spec in &w.jobs {
        match spec {
            JobSpec::Backfill {
                name,
                target_deals,
                tokens_per_deal,
                batch_deals,
                min_spacing_s,
                weight,
            } => jobs.push(Job {
                name: name.clone().unwrap_or_else(|| "backfill".into()),
                kind: Kind::Backfill(BackfillState {
                    target: *target_deals,
                    done: 0,
                    per_deal: *tokens_per_deal,
                    batch: *batch_deals,
                    spacing_ms: (min_spacing_s.unwrap_or(0.0) * 1000.0) as i64,
                    weight: weight.unwrap_or(1),
                    last: None,
                }),
                spent: 0,
                finished_at: (*target_deals == 0).then_some(0),
                refused: None,
            }),
            JobSpec::Refresh {
                name,
                period_s,
                tokens_per_run,
                max_delay_s,
            } => jobs.push(Job {
                name: name.clone().unwrap_or_else(|| "refresh".into()),
                kind: Kind::Refresh(RefreshState {
                    period_ms: (period_s * 1000.0).round() as i64,
                    cost: *tokens_per_run,
                    max_delay_ms: (max_delay_s * 1000.0).round() as i64,
                    next_due: 0,
                }),
                spent: 0,
                finished_at: None,
                refused: None,
            }),
            JobSpec::Foreign {
                name,
                tokens_per_minute,
                max_cost,
                seed,
            } => foreign.push(Foreign {
                name: name.clone().unwrap_or_else(|| "foreign".into()),
                gen: ForeignGen::new(*tokens_per_minute, *max_cost, *seed),
                spent: 0,
            }),
            JobSpec::Pipeline {
                name,
                target_stored,
                feed_backlog_deals,
                feed_new_per_hour,
                stages,
            } => jobs.push(Job {
                name: name.clone(),
                kind: Kind::Pipeline(PipelineState {
                    stages: stages.clone(),
                    queue: vec![0; stages.len()],
                    carry: vec![0.0; stages.len()],
                    stored: 0,
                    target: *target_stored,
                    backlog: *feed_backlog_deals,
                    new_per_hour: *feed_new_per_hour,
                    taken: 0,
                    spent: vec![0; stages.len()],
                    served: vec![0; stages.len()],
                }),
                spent: 0,
                finished_at: (*target_stored == 0).then_some(0),
                refused: None,
            }),
        }
    }
    // Unique names in reports.
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for j in jobs.iter_mut() {
        let n = seen.entry(j.name.clone()).or_default();
        *n += 1;
        if *n > 1 {
            j.name = format!("{}#{}", j.name, n);
        }
    }
    (jobs, foreign)
}

/// A per-deal cost as the budget sees it: whole tokens, the largest charge
/// of one deal as the upper bound (see [`Job::charge`]).
fn per_deal_prediction(c: f64) -> Prediction {
    Prediction {
        expected: c.round() as i64,
        upper_bound: c.ceil() as i64,
    }
}

/// What the open jobs ask for at `t`; job ids are indices into `jobs`.
pub(super) fn demands(jobs: &[Job], t: Millis) -> Vec<Demand> {
    let open_bulk = jobs.iter().filter(|j| j.bulk_open()).count();
    let mut out = Vec::with_capacity(jobs.len());
    for (i, j) in jobs.iter().enumerate() {
        let job = JobId(i as u32);
        if j.refused.is_some() || j.finished_at.is_some() {
            continue;
        }
        match &j.kind {
            Kind::Refresh(r) => out.push(Demand {
                job,
                need: Need::Periodic(Periodic {
                    next_due: r.next_due,
                    period_ms: r.period_ms,
                    max_delay_ms: r.max_delay_ms,
                    cost: Prediction::exact(r.cost),
                    ..Default::default()
                }),
            }),
            Kind::Backfill(b) => {
                let remaining = b.target - b.done;
                let most = b.batch.unwrap_or(MAX_BATCH);
                let max_batch = (most as u64).min(remaining) as u32;
                out.push(Demand {
                    job,
                    need: Need::Bulk(Bulk {
                        per_request: Prediction::exact(0),
                        per_item: per_deal_prediction(b.per_deal),
                        min_batch: b.batch.map_or(1, |n| n.min(max_batch)),
                        max_batch,
                        weight: b.weight,
                        not_before: b.last.map_or(0, |l| l + b.spacing_ms),
                        finishing: open_bulk == 1 && remaining <= most as u64,
                        remaining: Some(remaining),
                    }),
                });
            }
            Kind::Pipeline(p) => {
                if let Some(b) = p.demand(t) {
                    out.push(Demand {
                        job,
                        need: Need::Bulk(b),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backfill(per_deal: f64) -> Job {
        Job {
            name: "backfill".into(),
            kind: Kind::Backfill(BackfillState {
                target: u64::MAX,
                done: 0,
                per_deal,
                batch: None,
                spacing_ms: 0,
                weight: 1,
                last: None,
            }),
            spent: 0,
            finished_at: None,
            refused: None,
        }
    }

    #[test]
    fn a_fractional_cost_charges_whole_tokens_tracking_deals_times_cost() {
        for c in [17.31, 17.8, 0.4, 12.5, 99.99] {
            let mut job = backfill(c);
            let mut t = 0;
            for items in [1u32, 3, 100, 7, 1, 1, 64, 99, 2, 100, 13] {
                let cost = job.charge(items, 0);
                assert!(cost >= 0 && cost <= (f64::from(items) * c).ceil() as i64);
                t += 1;
                job.charged(t, items, cost);
                let exact = job.deals() as f64 * c;
                assert!((job.spent as f64 - exact).abs() <= 1.0, "{c}: {job:?}");
            }
        }
    }

    #[test]
    fn a_whole_cost_charges_exactly_items_times_cost() {
        let mut job = backfill(12.0);
        for items in [1u32, 100, 37] {
            assert_eq!(job.charge(items, 0), 12 * i64::from(items));
            job.charged(0, items, 12 * i64::from(items));
        }
        assert_eq!(per_deal_prediction(12.0), Prediction::exact(12));
        let p = per_deal_prediction(17.31);
        assert_eq!((p.expected, p.upper_bound), (17, 18));
    }

    #[test]
    fn a_workload_file_takes_a_fractional_cost() {
        let w = crate::Workload::parse(
            "name = \"f\"\n[plan]\nrefill_per_minute = 20\nhorizon_days = 10\n\
             [[jobs]]\nkind = \"backfill\"\ntarget_deals = 1000\ntokens_per_deal = 17.31\n",
        )
        .unwrap();
        let r = crate::simulate(&w, "flow").unwrap().report;
        assert_eq!(r.deals, 1000);
        assert_eq!(r.tokens_spent["backfill"], 17_310);
    }
}
