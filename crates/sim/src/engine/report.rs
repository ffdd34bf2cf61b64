//! What a simulation reports: the [`Report`], its pipelines, and the
//! samples behind its chart.

use std::collections::BTreeMap;

use budget::Millis;
use serde::{Deserialize, Serialize};

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

/// The `p`-quantile (nearest rank) of `sorted` milliseconds, in seconds.
pub(super) fn percentile(sorted: &[i64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1] as f64 / 1000.0)
}
