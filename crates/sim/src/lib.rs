//! Discrete-event simulation of one Keepa key: the server's bucket
//! ([`keepa::tokens::TokenBucket`], the model the fake server enforces),
//! the jobs of a workload, and the **real** [`budget`] policies deciding.
//!
//! - [`workload`]: the TOML files of `workloads/` (schema in its README).
//! - [`engine`]: the event loop and the [`Report`].
//! - [`frontier`]: the best any policy can do.
//! - [`chart`]: balance and deals over time, per policy, as SVG.
//!
//! ```
//! let w = sim::Workload::parse(r#"
//!     name = "tiny"
//!     [plan]
//!     refill_per_minute = 5
//!     horizon_days = 10
//!     [[jobs]]
//!     kind = "backfill"
//!     target_deals = 100
//!     tokens_per_deal = 12
//!     [[jobs]]
//!     kind = "refresh"
//!     period_s = 60
//!     tokens_per_run = 1
//!     max_delay_s = 60
//! "#).unwrap();
//! let run = sim::simulate(&w, "flow").unwrap();
//! assert!(run.report.finished);
//! assert_eq!(run.report.refresh_runs_served, run.report.refresh_runs_on_time);
//! assert!(run.report.efficiency.unwrap() > 0.99);
//! ```
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod chart;
pub mod engine;
pub mod estimate;
pub mod frontier;
pub mod workload;

pub use engine::{simulate, simulate_with, PipelineReport, Report, Run, Sample};
pub use workload::Workload;

/// What can go wrong reading or running a workload.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown field, or a wrong type (the message names the field).
    #[error("invalid workload: {0}")]
    Parse(String),
    /// A value out of range.
    #[error("invalid workload field `{field}`: {why}")]
    Invalid {
        /// The field, as a path (`jobs[1].period_s`).
        field: String,
        /// Why.
        why: String,
    },
    /// An unknown policy name.
    #[error("{0}")]
    Policy(String),
    /// The policy kept deciding at one instant without letting time move.
    #[error("livelock: the policy made no progress at t = {at_ms} ms")]
    Livelock {
        /// When.
        at_ms: i64,
    },
    /// Writing a chart failed.
    #[error("chart: {0}")]
    Chart(String),
}
