//! The discrete-event engine: Keepa's bucket ([`TokenBucket`]), the jobs of
//! a workload, and the real [`budget::Scheduler`] deciding.
//!
//! Time jumps from event to event: the instant the policy asked to be woken
//! at, a periodic run falling due, a foreign request. At one instant the
//! order is: refill steps, then our decisions (the policies serve periodic
//! runs before bulk work), then foreign requests. Every request is answered
//! at the instant it is sent, with the server's envelope. Before the
//! instant a policy asked to be woken at, a foreign request alone does not
//! make the engine ask again: the policy cannot see it, so the answer would
//! be the same.

use std::collections::BTreeMap;

use budget::ledger::Outcome;
use budget::{
    Bulk, Decision, Demand, JobId, Ledger, Millis, Need, Periodic, Policy, PolicyKind, Prediction,
    Scheduler,
};
use keepa::tokens::{Admission, TokenBucket, REFILL_INTERVAL_MS};
use keepa::TokenSnapshot;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::frontier::frontier_days;
use crate::workload::{JobSpec, Stage, Workload};
use crate::SimError;

/// Keepa's limit on ASINs per product request.
pub const MAX_BATCH: u32 = 100;

const DAY_MS: f64 = 86_400_000.0;

/// One pipeline's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineReport {
    /// Stage list name.
    pub name: String,
    /// Tokens spent by the pipeline per deal stored.
    pub tokens_per_stored_deal: Option<f64>,
    /// When the target was reached.
    pub days_to_target: Option<f64>,
    /// Deals stored.
    pub stored: u64,
    /// Tokens by stage.
    pub tokens_spent: BTreeMap<String, i64>,
}

/// A simulation's result. Keys as in `workloads/README.md`, plus a few.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Workload name.
    pub workload: String,
    /// Policy name.
    pub policy: String,
    /// Every bulk target reached within the horizon.
    pub finished: bool,
    /// Days until the last bulk target was reached.
    pub days_to_target: Option<f64>,
    /// The best any policy can do (see [`crate::frontier`]).
    pub frontier_days: Option<f64>,
    /// `frontier_days / days_to_target`.
    pub efficiency: Option<f64>,
    /// Deals (backfill deals and stored pipeline deals) per hour of simulated time.
    pub deals_per_hour: f64,
    /// Deals done.
    pub deals: u64,
    /// Periodic runs due before the end.
    pub refresh_runs_due: u64,
    /// Periodic runs that ran.
    pub refresh_runs_served: u64,
    /// Periodic runs that started by due + max delay.
    pub refresh_runs_on_time: u64,
    /// Median start delay of served runs, seconds.
    pub refresh_delay_p50_s: Option<f64>,
    /// 99th percentile start delay, seconds.
    pub refresh_delay_p99_s: Option<f64>,
    /// Largest start delay, seconds.
    pub refresh_delay_max_s: Option<f64>,
    /// Lowest balance the server held.
    pub min_balance: i64,
    /// Refill thrown away by the bucket cap while bulk work remained.
    pub wasted_refill_tokens: i64,
    /// Tokens above a lowered bucket maximum that expired at a rate drop
    /// while bulk work remained (the step's refill lost with them is in
    /// `wasted_refill_tokens`).
    pub expired_tokens: i64,
    /// 429s our own requests received.
    pub rejected_429: u64,
    /// 429s the foreign consumer received.
    pub rejected_429_foreign: u64,
    /// `/token` calls.
    pub token_syncs: u64,
    /// Tokens charged, by job.
    pub tokens_spent: BTreeMap<String, i64>,
    /// Jobs the budget refused, with its reason.
    pub refused: Vec<String>,
    /// Events processed (instants the engine stopped at).
    pub events: u64,
    /// Pipelines: the job's own stage list and each alternative.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipelines: Option<Vec<PipelineReport>>,
}

/// One sample for charts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Simulated ms.
    pub t: Millis,
    /// Server balance.
    pub balance: i64,
    /// Deals done.
    pub deals: u64,
}

/// A report and the samples behind its chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The report.
    pub report: Report,
    /// Balance and deals over time (thinned to a few thousand points).
    pub trace: Vec<Sample>,
}

#[derive(Debug)]
struct BackfillState {
    target: u64,
    done: u64,
    per_deal: i64,
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
}

impl PipelineState {
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
                per_item: Prediction::exact(s.tokens_per_item.unwrap_or(0)),
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

#[derive(Debug)]
struct Job {
    name: String,
    kind: Kind,
    spent: i64,
    finished_at: Option<Millis>,
    refused: Option<String>,
}

impl Job {
    fn is_bulk(&self) -> bool {
        matches!(self.kind, Kind::Backfill(_) | Kind::Pipeline(_))
    }
    fn bulk_open(&self) -> bool {
        self.is_bulk() && self.finished_at.is_none() && self.refused.is_none()
    }
    fn deals(&self) -> u64 {
        match &self.kind {
            Kind::Backfill(b) => b.done,
            Kind::Pipeline(p) => p.stored,
            Kind::Refresh(_) => 0,
        }
    }
}

/// A foreign consumer: random requests, retried at the next refill step when refused.
#[derive(Debug)]
pub(crate) struct ForeignGen {
    rng: ChaCha8Rng,
    mean_gap_ms: f64,
    max_cost: i64,
    /// Next request: when and what it costs.
    pub(crate) next: Option<(Millis, i64)>,
}

impl ForeignGen {
    pub(crate) fn new(tokens_per_minute: f64, max_cost: i64, seed: u64) -> Self {
        let mean_cost = (1 + max_cost) as f64 / 2.0;
        let mut g = ForeignGen {
            rng: ChaCha8Rng::seed_from_u64(seed),
            mean_gap_ms: if tokens_per_minute > 0.0 {
                mean_cost / tokens_per_minute * REFILL_INTERVAL_MS as f64
            } else {
                f64::INFINITY
            },
            max_cost,
            next: None,
        };
        g.next = g.draw(0);
        g
    }

    /// The request after one issued at `after`.
    pub(crate) fn draw(&mut self, after: Millis) -> Option<(Millis, i64)> {
        if !self.mean_gap_ms.is_finite() {
            return None;
        }
        let u: f64 = self.rng.random::<f64>();
        let gap = (-(1.0 - u).ln() * self.mean_gap_ms).max(1.0) as Millis;
        let cost = self.rng.random_range(1..=self.max_cost);
        Some((after + gap, cost))
    }
}

fn snapshot(server: &TokenBucket, t: Millis) -> TokenSnapshot {
    TokenSnapshot {
        timestamp_ms: t,
        tokens_left: server.balance(),
        refill_in_ms: server.refill_in(t),
        refill_rate: server.rate_at(t),
    }
}

fn percentile(sorted: &[i64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1] as f64 / 1000.0)
}

/// Runs `workload` under the policy named `policy` (and, for a pipeline
/// workload, each alternative), and reports.
pub fn simulate(workload: &Workload, policy: &str) -> Result<Run, SimError> {
    let kind = PolicyKind::by_name(policy, workload.seed_rules())
        .map_err(|e| SimError::Policy(e.to_string()))?;
    simulate_with(workload, kind)
}

/// Like [`simulate`] with a policy value.
pub fn simulate_with(workload: &Workload, policy: PolicyKind) -> Result<Run, SimError> {
    workload.validate()?;
    let mut run = simulate_one(workload, policy)?;
    let has_pipeline = workload
        .jobs
        .iter()
        .any(|j| matches!(j, JobSpec::Pipeline { .. }));
    if has_pipeline {
        let mut list = run.report.pipelines.take().unwrap_or_default();
        for alt in &workload.alternatives {
            let alt_run = simulate_one(&workload.with_alternative(alt), policy)?;
            list.extend(alt_run.report.pipelines.unwrap_or_default());
        }
        run.report.pipelines = Some(list);
    }
    Ok(run)
}

fn simulate_one(w: &Workload, policy: PolicyKind) -> Result<Run, SimError> {
    let schedule = w.schedule()?;
    let cap = w.cap();
    let mut server = TokenBucket::new(schedule, cap, w.plan.start_tokens, 0);
    let horizon = w.horizon_ms();

    let mut jobs: Vec<Job> = Vec::new();
    let mut foreign: Vec<(String, ForeignGen, i64)> = Vec::new();
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
            } => foreign.push((
                name.clone().unwrap_or_else(|| "foreign".into()),
                ForeignGen::new(*tokens_per_minute, *max_cost, *seed),
                0,
            )),
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

    let mut sched = Scheduler::new(policy, Ledger::new(cap));
    let mut due_runs = 0u64;
    let mut served = 0u64;
    let mut on_time = 0u64;
    let mut delays: Vec<i64> = Vec::new();
    let mut min_balance = server.balance();
    let mut wasted = 0i64;
    let mut expired = 0i64;
    let mut own_429 = 0u64;
    let mut foreign_429 = 0u64;
    let mut syncs = 0u64;
    let mut events = 0u64;
    let mut trace: Vec<Sample> = Vec::new();
    let mut stride = 1u64;
    let mut t: Millis = 0;
    let mut finished_at: Option<Millis> = if jobs.iter().any(Job::is_bulk) {
        None
    } else {
        Some(0)
    };

    let mut policy_wait: Option<Option<Millis>> = None;
    'outer: while finished_at.is_none() && t <= horizon {
        events += 1;
        let bulk_waiting = jobs.iter().any(Job::bulk_open);
        let mut before_step = server.balance();
        server.advance_with(t, |s| {
            if bulk_waiting {
                wasted += s.wasted;
                expired += (before_step + s.rate - s.balance_after - s.wasted).max(0);
            }
            before_step = s.balance_after;
        });
        let mut wake: Option<Millis>;
        let mut guard = 0u32;
        // The policy answered "wait until `u`" and only foreign requests
        // (which it cannot see) happened since: asking again before `u`
        // would get the same answer.
        let asleep = matches!(policy_wait, Some(u) if u.is_none_or(|u| t < u));
        loop {
            if asleep {
                wake = policy_wait.flatten();
                break;
            }
            guard += 1;
            if guard > 100_000 {
                return Err(SimError::Livelock { at_ms: t });
            }
            if !jobs.iter().any(Job::bulk_open) {
                // Done, unless a job was refused: then it never finishes.
                if jobs.iter().all(|j| j.refused.is_none()) {
                    finished_at = Some(t);
                }
                break 'outer;
            }
            let demands = demands(&jobs, t);
            match sched.decide(t, &demands) {
                Decision::Go(g) => {
                    let i = g.job.0 as usize;
                    let cost = g.cost.expected;
                    let res = sched.start(&g, &demands);
                    match server.try_spend(t, cost) {
                        Admission::Admitted { balance_after } => {
                            min_balance = min_balance.min(balance_after);
                            sched.settle(
                                res,
                                Outcome::Charged {
                                    consumed: cost,
                                    snapshot: Some(snapshot(&server, t)),
                                },
                            );
                            let job = &mut jobs[i];
                            job.spent += cost;
                            match &mut job.kind {
                                Kind::Refresh(r) => {
                                    let delay = t - r.next_due;
                                    served += 1;
                                    if delay <= r.max_delay_ms {
                                        on_time += 1;
                                    }
                                    delays.push(delay);
                                    r.next_due += r.period_ms;
                                }
                                Kind::Backfill(b) => {
                                    b.done += g.items as u64;
                                    b.last = Some(t);
                                    if b.done >= b.target {
                                        job.finished_at = Some(t);
                                    }
                                }
                                Kind::Pipeline(p) => {
                                    p.apply(t, g.items, cost);
                                    if p.stored >= p.target {
                                        job.finished_at = Some(t);
                                    }
                                }
                            }
                        }
                        Admission::Refused => {
                            own_429 += 1;
                            sched.settle(
                                res,
                                Outcome::Refused {
                                    snapshot: Some(snapshot(&server, t)),
                                },
                            );
                        }
                    }
                }
                Decision::Skip(job) => {
                    if let Kind::Refresh(r) = &mut jobs[job.0 as usize].kind {
                        r.next_due += r.period_ms;
                    }
                }
                Decision::Sync => {
                    syncs += 1;
                    sched.synced(t, snapshot(&server, t));
                }
                Decision::Refuse(r) => {
                    let job = match &r {
                        budget::Refusal::NeverFits { job, .. }
                        | budget::Refusal::NoRefill { job, .. } => *job,
                    };
                    jobs[job.0 as usize].refused = Some(r.to_string());
                }
                Decision::Wait { until } => {
                    wake = until;
                    policy_wait = Some(until);
                    break;
                }
            }
        }
        // Foreign requests at this instant, after ours.
        for (_, g, spent) in foreign.iter_mut() {
            while let Some((at, cost)) = g.next {
                if at > t {
                    break;
                }
                match server.try_spend(t, cost) {
                    Admission::Admitted { balance_after } => {
                        min_balance = min_balance.min(balance_after);
                        *spent += cost;
                        g.next = g.draw(at);
                    }
                    Admission::Refused => {
                        foreign_429 += 1;
                        g.next = Some((server.next_refill_at(), cost));
                        break;
                    }
                }
            }
            wake = budget::policy::min_opt(wake, g.next.map(|n| n.0));
        }
        // Trace, thinned by doubling the stride.
        if events.is_multiple_of(stride) {
            let deals = jobs.iter().map(Job::deals).sum();
            trace.push(Sample {
                t,
                balance: server.balance(),
                deals,
            });
            if trace.len() >= 8_000 {
                let mut k = 0;
                trace.retain(|_| {
                    k += 1;
                    k % 2 == 1
                });
                stride *= 2;
            }
        }
        let Some(next) = wake else { break };
        let next = next.max(t + 1);
        t = next;
    }

    let end = finished_at.unwrap_or(horizon.min(t));
    // Runs due by the end.
    for j in &jobs {
        if let Kind::Refresh(r) = &j.kind {
            due_runs += (end / r.period_ms + 1) as u64;
        }
    }
    let finished = finished_at.is_some();
    let days = finished_at.map(|f| f as f64 / DAY_MS);
    let frontier = frontier_days(w)?;
    let efficiency = match (frontier, days) {
        (Some(f), Some(d)) if d > 0.0 => Some(f / d),
        (Some(_), Some(_)) => Some(1.0),
        _ => None,
    };
    delays.sort_unstable();
    let deals: u64 = jobs.iter().map(Job::deals).sum();
    let hours = (end.max(1) as f64) / 3_600_000.0;
    let mut tokens_spent = BTreeMap::new();
    for j in &jobs {
        tokens_spent.insert(j.name.clone(), j.spent);
    }
    for (name, _, spent) in &foreign {
        tokens_spent.insert(name.clone(), *spent);
    }
    let pipelines: Vec<PipelineReport> = jobs
        .iter()
        .filter_map(|j| match &j.kind {
            Kind::Pipeline(p) => Some(PipelineReport {
                name: j.name.clone(),
                tokens_per_stored_deal: (p.stored > 0).then(|| j.spent as f64 / p.stored as f64),
                days_to_target: j.finished_at.map(|f| f as f64 / DAY_MS),
                stored: p.stored,
                tokens_spent: p
                    .stages
                    .iter()
                    .zip(&p.spent)
                    .map(|(s, n)| (s.name.clone(), *n))
                    .collect(),
            }),
            _ => None,
        })
        .collect();
    let deals_final = trace.last().map(|s| s.deals);
    if deals_final != Some(deals) {
        trace.push(Sample {
            t: end,
            balance: server.balance(),
            deals,
        });
    }
    Ok(Run {
        report: Report {
            workload: w.name.clone(),
            policy: sched.policy().name().to_string(),
            finished,
            days_to_target: days,
            frontier_days: frontier,
            efficiency,
            deals_per_hour: deals as f64 / hours,
            deals,
            refresh_runs_due: due_runs,
            refresh_runs_served: served,
            refresh_runs_on_time: on_time,
            refresh_delay_p50_s: percentile(&delays, 0.50),
            refresh_delay_p99_s: percentile(&delays, 0.99),
            refresh_delay_max_s: delays.last().map(|d| *d as f64 / 1000.0),
            min_balance,
            wasted_refill_tokens: wasted,
            expired_tokens: expired,
            rejected_429: own_429,
            rejected_429_foreign: foreign_429,
            token_syncs: syncs,
            tokens_spent,
            refused: jobs.iter().filter_map(|j| j.refused.clone()).collect(),
            events,
            pipelines: (!pipelines.is_empty()).then_some(pipelines),
        },
        trace,
    })
}

fn demands(jobs: &[Job], t: Millis) -> Vec<Demand> {
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
                        per_item: Prediction::exact(b.per_deal),
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
