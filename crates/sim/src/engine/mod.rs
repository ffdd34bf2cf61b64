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

mod foreign;
mod jobs;
mod report;

use std::collections::BTreeMap;

use budget::ledger::Outcome;
use budget::{Decision, Demand, Grant, Ledger, Millis, Policy, PolicyKind, Refusal, Scheduler};
use keepa::tokens::{Admission, TokenBucket};
use keepa::TokenSnapshot;

use crate::frontier::frontier_days;
use crate::workload::{JobSpec, Workload};
use crate::SimError;

use foreign::Foreign;
pub(crate) use foreign::ForeignGen;
use jobs::{demands, jobs_of, Job};
use report::percentile;
pub use report::{PipelineReport, Report, Run, Sample};

/// Keepa's limit on ASINs per product request.
pub const MAX_BATCH: u32 = 100;

const DAY_MS: f64 = 86_400_000.0;

fn snapshot(server: &TokenBucket, t: Millis) -> TokenSnapshot {
    TokenSnapshot {
        timestamp_ms: t,
        tokens_left: server.balance(),
        refill_in_ms: server.refill_in(t),
        refill_rate: server.rate_at(t),
    }
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
    let mut sim = Sim::new(w, policy)?;
    sim.run()?;
    sim.into_run(w)
}

/// How our decisions at one instant end.
enum Turn {
    /// No bulk work is open: the simulation ends.
    Done,
    /// The policy waits until this instant (`None`: for something else).
    Wake(Option<Millis>),
}

/// The counters behind the report.
#[derive(Debug, Default)]
struct Tally {
    served: u64,
    on_time: u64,
    /// Start delays of the periodic runs served.
    delays: Vec<i64>,
    min_balance: i64,
    wasted: i64,
    expired: i64,
    own_429: u64,
    foreign_429: u64,
    syncs: u64,
    events: u64,
}

/// Balance and deals over time, thinned by doubling the stride.
#[derive(Debug)]
struct Trace {
    samples: Vec<Sample>,
    stride: u64,
}

impl Trace {
    fn push(&mut self, sample: Sample) {
        self.samples.push(sample);
        if self.samples.len() >= 8_000 {
            let mut k = 0;
            self.samples.retain(|_| {
                k += 1;
                k % 2 == 1
            });
            self.stride *= 2;
        }
    }
}

/// One simulation under way: the server's bucket, the jobs, the real
/// scheduler, and what happened so far.
#[derive(Debug)]
struct Sim {
    server: TokenBucket,
    sched: Scheduler<PolicyKind, Ledger>,
    jobs: Vec<Job>,
    foreign: Vec<Foreign>,
    tally: Tally,
    trace: Trace,
    horizon: Millis,
    /// The current instant.
    t: Millis,
    /// When the last bulk target was reached.
    finished_at: Option<Millis>,
    /// The policy's last "wait until" (see [`Sim::decisions`]).
    policy_wait: Option<Option<Millis>>,
}

impl Sim {
    fn new(w: &Workload, policy: PolicyKind) -> Result<Self, SimError> {
        let schedule = w.schedule()?;
        let cap = w.cap();
        let server = TokenBucket::new(schedule, cap, w.plan.start_tokens, 0);
        let (jobs, foreign) = jobs_of(w);
        let finished_at = if jobs.iter().any(Job::is_bulk) {
            None
        } else {
            Some(0)
        };
        Ok(Sim {
            tally: Tally {
                min_balance: server.balance(),
                ..Tally::default()
            },
            server,
            sched: Scheduler::new(policy, Ledger::new(cap)),
            jobs,
            foreign,
            trace: Trace {
                samples: Vec::new(),
                stride: 1,
            },
            horizon: w.horizon_ms(),
            t: 0,
            finished_at,
            policy_wait: None,
        })
    }

    /// Jumps from event to event until the bulk work is done, the horizon
    /// is passed, or nothing is left to wake for.
    fn run(&mut self) -> Result<(), SimError> {
        while self.finished_at.is_none() && self.t <= self.horizon {
            self.tally.events += 1;
            self.refill_steps();
            let Turn::Wake(wake) = self.decisions()? else {
                break;
            };
            let wake = self.foreign_requests(wake);
            self.sample();
            let Some(next) = wake else { break };
            self.t = next.max(self.t + 1);
        }
        Ok(())
    }

    /// The server's refill steps up to now. While bulk work remains,
    /// refill lost to the cap, and tokens above a lowered maximum, count
    /// as wasted.
    fn refill_steps(&mut self) {
        let bulk_waiting = self.jobs.iter().any(Job::bulk_open);
        let tally = &mut self.tally;
        let mut before_step = self.server.balance();
        self.server.advance_with(self.t, |s| {
            if bulk_waiting {
                tally.wasted += s.wasted;
                tally.expired += (before_step + s.rate - s.balance_after - s.wasted).max(0);
            }
            before_step = s.balance_after;
        });
    }

    /// Our decisions at this instant, until the policy waits.
    ///
    /// When the policy answered "wait until `u`" and only foreign requests
    /// (which it cannot see) happened since, asking again before `u` would
    /// get the same answer: the engine does not ask.
    fn decisions(&mut self) -> Result<Turn, SimError> {
        let t = self.t;
        if matches!(self.policy_wait, Some(u) if u.is_none_or(|u| t < u)) {
            return Ok(Turn::Wake(self.policy_wait.flatten()));
        }
        let mut guard = 0u32;
        loop {
            guard += 1;
            if guard > 100_000 {
                return Err(SimError::Livelock { at_ms: t });
            }
            if !self.jobs.iter().any(Job::bulk_open) {
                // Done, unless a job was refused: then it never finishes.
                if self.jobs.iter().all(|j| j.refused.is_none()) {
                    self.finished_at = Some(t);
                }
                return Ok(Turn::Done);
            }
            let demands = demands(&self.jobs, t);
            match self.sched.decide(t, &demands) {
                Decision::Go(g) => self.send(&g, &demands),
                Decision::Skip(job) => self.jobs[job.0 as usize].skipped(),
                Decision::Sync => {
                    self.tally.syncs += 1;
                    self.sched.synced(t, snapshot(&self.server, t));
                }
                Decision::Refuse(r) => {
                    let job = match &r {
                        Refusal::NeverFits { job, .. } | Refusal::NoRefill { job, .. } => *job,
                    };
                    self.jobs[job.0 as usize].refused = Some(r.to_string());
                }
                Decision::Wait { until } => {
                    self.policy_wait = Some(until);
                    return Ok(Turn::Wake(until));
                }
            }
        }
    }

    /// Sends a granted request: the server charges it, or refuses it (429);
    /// either way the envelope settles the reservation.
    fn send(&mut self, g: &Grant, demands: &[Demand]) {
        let t = self.t;
        let cost = self.jobs[g.job.0 as usize].charge(g.items, g.cost.expected);
        let res = self.sched.start(g, demands);
        match self.server.try_spend(t, cost) {
            Admission::Admitted { balance_after } => {
                self.tally.min_balance = self.tally.min_balance.min(balance_after);
                let snapshot = Some(snapshot(&self.server, t));
                self.sched.settle(
                    res,
                    Outcome::Charged {
                        consumed: cost,
                        snapshot,
                    },
                );
                let run = self.jobs[g.job.0 as usize].charged(t, g.items, cost);
                if let Some((delay, on_time)) = run {
                    self.tally.served += 1;
                    if on_time {
                        self.tally.on_time += 1;
                    }
                    self.tally.delays.push(delay);
                }
            }
            Admission::Refused => {
                self.tally.own_429 += 1;
                let snapshot = Some(snapshot(&self.server, t));
                self.sched.settle(res, Outcome::Refused { snapshot });
            }
        }
    }

    /// Foreign requests due by now, after ours (a refused one retries at
    /// the next refill step); returns `wake` or the next foreign request,
    /// whichever is earlier.
    fn foreign_requests(&mut self, mut wake: Option<Millis>) -> Option<Millis> {
        let t = self.t;
        for f in self.foreign.iter_mut() {
            while let Some((at, cost)) = f.gen.next {
                if at > t {
                    break;
                }
                match self.server.try_spend(t, cost) {
                    Admission::Admitted { balance_after } => {
                        self.tally.min_balance = self.tally.min_balance.min(balance_after);
                        f.spent += cost;
                        f.gen.next = f.gen.draw(at);
                    }
                    Admission::Refused => {
                        self.tally.foreign_429 += 1;
                        f.gen.next = Some((self.server.next_refill_at(), cost));
                        break;
                    }
                }
            }
            wake = budget::policy::min_opt(wake, f.gen.next.map(|n| n.0));
        }
        wake
    }

    /// A trace sample at every `stride`-th event.
    fn sample(&mut self) {
        if !self.tally.events.is_multiple_of(self.trace.stride) {
            return;
        }
        let deals = self.jobs.iter().map(Job::deals).sum();
        self.trace.push(Sample {
            t: self.t,
            balance: self.server.balance(),
            deals,
        });
    }

    /// The report and its trace.
    fn into_run(mut self, w: &Workload) -> Result<Run, SimError> {
        let end = self.finished_at.unwrap_or(self.horizon.min(self.t));
        let due_runs: u64 = self.jobs.iter().map(|j| j.runs_due_by(end)).sum();
        let days = self.finished_at.map(|f| f as f64 / DAY_MS);
        let frontier = frontier_days(w)?;
        let efficiency = match (frontier, days) {
            (Some(f), Some(d)) if d > 0.0 => Some(f / d),
            (Some(_), Some(_)) => Some(1.0),
            _ => None,
        };
        let tally = &mut self.tally;
        tally.delays.sort_unstable();
        let deals: u64 = self.jobs.iter().map(Job::deals).sum();
        let hours = (end.max(1) as f64) / 3_600_000.0;
        let mut tokens_spent = BTreeMap::new();
        for j in &self.jobs {
            tokens_spent.insert(j.name.clone(), j.spent);
        }
        for f in &self.foreign {
            tokens_spent.insert(f.name.clone(), f.spent);
        }
        let pipelines: Vec<PipelineReport> =
            self.jobs.iter().filter_map(Job::pipeline_report).collect();
        let mut trace = self.trace.samples;
        if trace.last().map(|s| s.deals) != Some(deals) {
            trace.push(Sample {
                t: end,
                balance: self.server.balance(),
                deals,
            });
        }
        let report = Report {
            workload: w.name.clone(),
            policy: self.sched.policy().name().to_string(),
            finished: self.finished_at.is_some(),
            days_to_target: days,
            frontier_days: frontier,
            efficiency,
            deals_per_hour: deals as f64 / hours,
            deals,
            refresh_runs_due: due_runs,
            refresh_runs_served: tally.served,
            refresh_runs_on_time: tally.on_time,
            refresh_delay_p50_s: percentile(&tally.delays, 0.50),
            refresh_delay_p99_s: percentile(&tally.delays, 0.99),
            refresh_delay_max_s: tally.delays.last().map(|d| *d as f64 / 1000.0),
            min_balance: tally.min_balance,
            wasted_refill_tokens: tally.wasted,
            expired_tokens: tally.expired,
            rejected_429: tally.own_429,
            rejected_429_foreign: tally.foreign_429,
            token_syncs: tally.syncs,
            tokens_spent,
            refused: self.jobs.iter().filter_map(|j| j.refused.clone()).collect(),
            events: tally.events,
            pipelines: (!pipelines.is_empty()).then_some(pipelines),
        };
        Ok(Run { report, trace })
    }
}
