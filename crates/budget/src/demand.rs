//! What jobs ask for ([`Demand`]) and what the core answers ([`Decision`]).

use serde::{Deserialize, Serialize};

/// Server time in Unix milliseconds (Keepa's `timestamp`), or simulated
/// milliseconds from the start of a simulation.
pub type Millis = i64;

/// Identifies one job (one periodic task or one bulk stream) to the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobId(pub u32);

/// A predicted token cost: the expected charge and a bound the charge will
/// not exceed in all but pathological cases.
///
/// (`keepa::cost` will produce these from request shapes; the budget only
/// needs the two numbers.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Prediction {
    /// The most likely charge.
    pub expected: i64,
    /// The largest plausible charge; `>= expected`.
    pub upper_bound: i64,
}

impl Prediction {
    /// A cost known exactly.
    pub const fn exact(tokens: i64) -> Self {
        Prediction {
            expected: tokens,
            upper_bound: tokens,
        }
    }

    /// A cost with an expected value and an upper bound (raised to the
    /// expected value if below it).
    pub fn new(expected: i64, upper_bound: i64) -> Self {
        Prediction {
            expected,
            upper_bound: upper_bound.max(expected),
        }
    }

    /// `self + n × per_item`.
    pub fn plus_items(self, per_item: Prediction, n: u32) -> Self {
        Prediction {
            expected: self.expected + per_item.expected * n as i64,
            upper_bound: self.upper_bound + per_item.upper_bound * n as i64,
        }
    }
}

/// A job that runs on a schedule and must start on time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Periodic {
    /// When the oldest run not yet served is (or was) due.
    pub next_due: Millis,
    /// Time between runs.
    pub period_ms: i64,
    /// A run that starts later than `due + max_delay_ms` is late.
    pub max_delay_ms: i64,
    /// What a run's first request costs (the one the budget grants as
    /// the periodic run: a refresh's feed page).
    pub cost: Prediction,
    /// What a run charges after its first request (the work it finds: a
    /// refresh's product calls), as the job measured it: the mean and the
    /// largest recent one. The budget holds it back for the runs to come,
    /// so that one run's tail does not leave the next run late.
    #[serde(default)]
    pub tail: Prediction,
    /// What the run in progress may still charge (0 between runs): held
    /// back until the job says it is charged.
    #[serde(default)]
    pub open_tail: i64,
}

impl Periodic {
    /// The latest on-time start of the next run.
    pub fn deadline(&self) -> Millis {
        self.next_due + self.max_delay_ms
    }

    /// What a whole run is expected to cost: its first request and its tail.
    pub fn run_cost(&self) -> i64 {
        self.cost.expected.max(0) + self.tail.expected.max(0)
    }
}

/// A job with a backlog of items, sent in batches the budget sizes.
///
/// One request of `n` items costs `per_request + n × per_item`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bulk {
    /// Fixed cost of a request, whatever its size (a deal-feed page: 5).
    pub per_request: Prediction,
    /// Cost of each item in the request (a product with offers: ~12).
    pub per_item: Prediction,
    /// Fewest items worth a request (1 unless the caller prefers batches).
    pub min_batch: u32,
    /// Most items one request may carry (Keepa: 100 ASINs), already
    /// limited to what remains.
    pub max_batch: u32,
    /// Share of the bulk budget relative to other bulk jobs (`>= 1`).
    pub weight: u32,
    /// Not before this instant (a minimum spacing between requests).
    pub not_before: Millis,
    /// The caller says: this job's remaining work fits in `max_batch` and
    /// no other bulk work will follow. Policies with a finish line may let
    /// this last request dig deeper (see [`crate::policy::Flow`]).
    pub finishing: bool,
    /// Items the job still has to send, this request's included, if the
    /// caller knows (`None`: an open-ended stream). Lets a policy plan the
    /// finish: which request goes last (see [`crate::policy::Flow`]).
    #[serde(default)]
    pub remaining: Option<u64>,
}

/// What a job needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Need {
    /// A run on a schedule.
    Periodic(Periodic),
    /// Items from a backlog.
    Bulk(Bulk),
}

/// One job's standing request to the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demand {
    /// Which job.
    pub job: JobId,
    /// What it needs.
    pub need: Need,
}

/// A permission to send one request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The job that may send.
    pub job: JobId,
    /// Items in the request (1 for a periodic run).
    pub items: u32,
    /// Predicted cost of the request; `upper_bound` is reserved until settled.
    pub cost: Prediction,
}

/// Why the budget refuses a job outright.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum Refusal {
    /// One item never fits while periodic jobs stay on time.
    #[error(
        "job {job:?}: one request of {min_items} item(s) costs up to {cost} tokens, but at most \
         {allowed} can be spent at once while every periodic job stays on time \
         (bucket max {cap}); it would wait for ever"
    )]
    NeverFits {
        /// The job.
        job: JobId,
        /// Fewest items it asked for.
        min_items: u32,
        /// Their cost (upper bound).
        cost: i64,
        /// The most one request may cost.
        allowed: i64,
        /// The bucket maximum used.
        cap: i64,
    },
    /// Refill is zero for ever, or periodic spending alone exceeds it.
    #[error("job {job:?}: refill can never pay for it (rate {rate}/min, periodic spend {periodic_per_min:.2}/min)")]
    NoRefill {
        /// The job.
        job: JobId,
        /// Refill rate known.
        rate: i64,
        /// Periodic spend per minute.
        periodic_per_min: f64,
    },
}

/// The core's answer at one instant. The caller acts on it and asks again:
/// one grant per call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Decision {
    /// Send this request now.
    Go(Grant),
    /// A periodic run is dropped (the seed's refresher rule); advance it.
    Skip(JobId),
    /// The local view is stale and work is waiting: call `/token` (free)
    /// first, then ask again.
    Sync,
    /// Nothing may go now; ask again at `until` (`None`: nothing will ever
    /// become possible by refill alone, or nothing is asked).
    Wait {
        /// The earliest instant at which refill alone makes a request possible.
        until: Option<Millis>,
    },
    /// This job can never be served; drop it and report the error.
    Refuse(Refusal),
}
