//! Policies: who may spend, how much, and when.
//!
//! Every policy is a pure function of `(now, state, demands)`:
//! [`Policy::decide`]. Three are provided:
//!
//! - [`WaitForMax`]: the seed's first strategy: start a bulk chunk only when
//!   the balance is at `wait_for_max_fraction` of the bucket maximum.
//! - [`ControlledDeficit`]: the seed's fix: start whenever the balance is
//!   above `deficit_threshold`, spending into the negative; once at or below
//!   it, wait until `deficit_resume`.
//! - [`Flow`]: ours, the default; see its docs.
//!
//! The seed's two policies keep the seed's refresher rule: a periodic run
//! spends only when the balance is at least `refresh_min_balance`, and a
//! run that cannot is skipped (lost).

use std::collections::BTreeMap;
use std::fmt;

use keepa::tokens::REFILL_INTERVAL_MS;
use serde::{Deserialize, Serialize};

use crate::demand::{Bulk, Decision, Demand, Grant, JobId, Millis, Need, Periodic};
use crate::ledger::View;

/// What a policy remembers between decisions, kept by the
/// [`Scheduler`](crate::Scheduler) and updated only by it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Memory {
    /// Tokens granted to each bulk job, divided by its weight (virtual time
    /// of a weighted fair queue). A job joining late starts at the minimum.
    pub bulk_vtime: BTreeMap<JobId, f64>,
    /// The lowest projected balance seen by a decision since the last bulk
    /// grant (`i64::MAX` if none). The seed's hysteresis reads it.
    pub low_water_since_bulk: i64,
}

impl Memory {
    /// A fresh memory.
    pub fn new() -> Self {
        Memory {
            bulk_vtime: BTreeMap::new(),
            low_water_since_bulk: i64::MAX,
        }
    }
}

/// Everything a policy may look at besides the demands.
#[derive(Debug, Clone)]
pub struct State<'a> {
    /// The ledger's view.
    pub view: View,
    /// The scheduler's memory.
    pub memory: &'a Memory,
}

/// A token policy. Implementations must be pure: no IO, no clock, the same
/// answer for the same arguments.
pub trait Policy: fmt::Debug + Send + Sync {
    /// Its name on the command line.
    fn name(&self) -> &'static str;
    /// The decision at `now`. See [`Decision`].
    fn decide(&self, now: Millis, state: &State<'_>, demands: &[Demand]) -> Decision;
}

/// The seed's parameters (`[seed_rules]` of `seed.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedRules {
    /// A periodic run spends only at or above this balance; otherwise it is lost.
    pub refresh_min_balance: i64,
    /// Wait-for-max starts a chunk at this fraction of the bucket maximum.
    pub wait_for_max_fraction: f64,
    /// Controlled deficit starts a chunk while the balance is above this.
    pub deficit_threshold: i64,
    /// … and once at or below it, waits until this.
    pub deficit_resume: i64,
}

impl Default for SeedRules {
    fn default() -> Self {
        SeedRules {
            refresh_min_balance: 20,
            wait_for_max_fraction: 0.99,
            deficit_threshold: 50,
            deficit_resume: 55,
        }
    }
}

/// The seed's chunk size when a workload leaves batch size to the policy.
pub const SEED_CHUNK: u32 = 20;

pub(crate) fn periodic_due(now: Millis, demands: &[Demand]) -> Option<(JobId, Periodic)> {
    demands
        .iter()
        .filter_map(|d| match d.need {
            Need::Periodic(p) if p.next_due <= now => Some((d.job, p)),
            _ => None,
        })
        .min_by_key(|(j, p)| (p.deadline(), *j))
}

pub(crate) fn next_periodic_due(now: Millis, demands: &[Demand]) -> Option<Millis> {
    demands
        .iter()
        .filter_map(|d| match d.need {
            Need::Periodic(p) if p.next_due > now => Some(p.next_due),
            _ => None,
        })
        .min()
}

fn bulk_has_work(b: &Bulk) -> bool {
    b.max_batch > 0
}

/// The bulk job whose turn it is (least weighted service; ties by id)
/// among those allowed to send at `now`, and the earliest `not_before` of
/// those that are not.
pub(crate) fn bulk_head(
    now: Millis,
    state: &State<'_>,
    demands: &[Demand],
) -> (Option<(JobId, Bulk)>, Option<Millis>) {
    let (order, later) = bulk_order(now, state, demands);
    (order.first().copied(), later)
}

/// Every bulk job allowed to send at `now`, in fair-share order (least
/// weighted service first, ties by id), and the earliest `not_before` of
/// those that are not.
pub(crate) fn bulk_order(
    now: Millis,
    state: &State<'_>,
    demands: &[Demand],
) -> (Vec<(JobId, Bulk)>, Option<Millis>) {
    let floor = demands
        .iter()
        .filter_map(|d| state.memory.bulk_vtime.get(&d.job))
        .copied()
        .fold(f64::INFINITY, f64::min);
    let floor = if floor.is_finite() { floor } else { 0.0 };
    let mut order: Vec<(f64, JobId, Bulk)> = Vec::new();
    let mut later: Option<Millis> = None;
    for d in demands {
        let Need::Bulk(b) = d.need else { continue };
        if !bulk_has_work(&b) {
            continue;
        }
        if b.not_before > now {
            later = Some(later.map_or(b.not_before, |l: Millis| l.min(b.not_before)));
            continue;
        }
        let v = state
            .memory
            .bulk_vtime
            .get(&d.job)
            .copied()
            .unwrap_or(floor);
        order.push((v, d.job, b));
    }
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    (order.into_iter().map(|(_, j, b)| (j, b)).collect(), later)
}

/// The earlier of two optional instants.
pub fn min_opt(a: Option<Millis>, b: Option<Millis>) -> Option<Millis> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// The seed's refresher rule, shared by both seed policies.
fn seed_periodic(
    now: Millis,
    state: &State<'_>,
    demands: &[Demand],
    rules: &SeedRules,
) -> Option<Decision> {
    let (job, p) = periodic_due(now, demands)?;
    if state.view.balance_at(now) >= rules.refresh_min_balance {
        Some(Decision::Go(Grant {
            job,
            items: 1,
            cost: p.cost,
        }))
    } else {
        Some(Decision::Skip(job))
    }
}

fn seed_items(b: &Bulk) -> u32 {
    if b.min_batch >= b.max_batch {
        b.max_batch
    } else {
        b.max_batch.min(SEED_CHUNK).max(b.min_batch)
    }
}

fn seed_bulk(
    now: Millis,
    state: &State<'_>,
    demands: &[Demand],
    go: impl Fn(i64) -> bool,
    level: i64,
) -> Decision {
    let (head, later) = bulk_head(now, state, demands);
    let wake_periodic = next_periodic_due(now, demands);
    let Some((job, b)) = head else {
        return Decision::Wait {
            until: min_opt(later, wake_periodic),
        };
    };
    let balance = state.view.balance_at(now);
    if go(balance) {
        let items = seed_items(&b);
        return Decision::Go(Grant {
            job,
            items,
            cost: b.per_request.plus_items(b.per_item, items),
        });
    }
    let wake = state
        .view
        .bucket
        .when_balance_reaches(level)
        .map(|t| t.max(now + 1));
    Decision::Wait {
        until: min_opt(min_opt(wake, later), wake_periodic),
    }
}

/// The seed's first strategy. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WaitForMax {
    /// The seed's parameters.
    pub rules: SeedRules,
}

impl Policy for WaitForMax {
    fn name(&self) -> &'static str {
        "wait-for-max"
    }

    fn decide(&self, now: Millis, state: &State<'_>, demands: &[Demand]) -> Decision {
        if let Some(d) = seed_periodic(now, state, demands, &self.rules) {
            return d;
        }
        let cap = state.view.bucket.cap_at(now);
        let level = (self.rules.wait_for_max_fraction * cap as f64).ceil() as i64;
        seed_bulk(now, state, demands, |b| b >= level, level)
    }
}

/// The seed's "controlled deficit". See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ControlledDeficit {
    /// The seed's parameters.
    pub rules: SeedRules,
}

impl Policy for ControlledDeficit {
    fn name(&self) -> &'static str {
        "controlled-deficit"
    }

    fn decide(&self, now: Millis, state: &State<'_>, demands: &[Demand]) -> Decision {
        if let Some(d) = seed_periodic(now, state, demands, &self.rules) {
            return d;
        }
        let r = self.rules;
        // Waiting once the balance has been at or below the threshold since
        // the last chunk; then only the resume level lets a chunk go.
        let waiting = state.memory.low_water_since_bulk <= r.deficit_threshold;
        let level = if waiting {
            r.deficit_resume
        } else {
            r.deficit_threshold + 1
        };
        seed_bulk(
            now,
            state,
            demands,
            |b| b >= r.deficit_resume || (!waiting && b > r.deficit_threshold),
            level,
        )
    }
}

pub use crate::flow::Flow;

/// A policy chosen by name (`flow`, `controlled-deficit`, `wait-for-max`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PolicyKind {
    /// [`Flow`].
    Flow(Flow),
    /// [`ControlledDeficit`].
    ControlledDeficit(ControlledDeficit),
    /// [`WaitForMax`].
    WaitForMax(WaitForMax),
}

/// An unknown policy name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy {0:?}; known: flow, controlled-deficit, wait-for-max")]
pub struct UnknownPolicy(pub String);

impl PolicyKind {
    /// Every policy name, the default first.
    pub const NAMES: [&'static str; 3] = ["flow", "controlled-deficit", "wait-for-max"];

    /// The policy named `name`, with the seed's parameters from `rules`.
    pub fn by_name(name: &str, rules: SeedRules) -> Result<Self, UnknownPolicy> {
        match name {
            "flow" => Ok(PolicyKind::Flow(Flow::default())),
            "controlled-deficit" => Ok(PolicyKind::ControlledDeficit(ControlledDeficit { rules })),
            "wait-for-max" => Ok(PolicyKind::WaitForMax(WaitForMax { rules })),
            other => Err(UnknownPolicy(other.to_string())),
        }
    }
}

impl Policy for PolicyKind {
    fn name(&self) -> &'static str {
        match self {
            PolicyKind::Flow(p) => p.name(),
            PolicyKind::ControlledDeficit(p) => p.name(),
            PolicyKind::WaitForMax(p) => p.name(),
        }
    }

    fn decide(&self, now: Millis, state: &State<'_>, demands: &[Demand]) -> Decision {
        match self {
            PolicyKind::Flow(p) => p.decide(now, state, demands),
            PolicyKind::ControlledDeficit(p) => p.decide(now, state, demands),
            PolicyKind::WaitForMax(p) => p.decide(now, state, demands),
        }
    }
}

/// Milliseconds per refill step, re-exported for policies.
pub(crate) const STEP: i64 = REFILL_INTERVAL_MS;
