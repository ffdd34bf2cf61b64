//! The staged pipeline and the one way jobs talk to Keepa.
//!
//! [`Shared`] holds what every job shares: the budget's gate, the client,
//! the cost model, the store, the configuration, the metrics and the stop
//! signal. Its parts:
//! - `send`: `Shared::send`, the only function that calls Keepa: it asks
//!   the gate first, settles the permit with what the server said, records
//!   a [`RequestRow`](crate::store::RequestRow), reads the answer, and
//!   retries (429: after the gate's exact wait; 5xx, broken connections,
//!   undecodable bodies: a bounded number of times with backoff in server
//!   time, the one retry rule `Attempts`).
//! - `fetch`: a feed page, and the one product fetch the stages and the
//!   re-check share (permit from the cost model's per-item prediction,
//!   request, send, parse, teach the cost model, share the charge).
//! - `stages`: `Shared::process` pushes a list of deals through the stages:
//!   free deal filter → product stats → offers → store.
//! - `claims`: what this or another process is working on right now.
//! - [`Job`], [`Stage`]: the names stored in the database and shown in
//!   errors and metrics.
//!
//! Guarantees:
//! - An ASIN the store knows (stored within the stage's `fresh_for`, or
//!   rejected and unexpired) is never fetched again; two jobs never fetch
//!   the same ASIN at once (claims): a deal claimed by another job is left
//!   to it, and that job's cursor or watermark does not pass it until it is
//!   stored or rejected.
//! - After every product request, its rows and its `RequestRow` are
//!   committed in one transaction: a crash loses at most the request in flight.
//! - `process` returns `Ok` only when every deal given is stored, updated,
//!   deliberately rejected or skipped as known: only then may a cursor or
//!   watermark move past them.

use std::sync::{Arc, Mutex, MutexGuard};

use budget::gate::{Gate, Permit};
use budget::{AnyLedger, Bulk, JobId, Need, PolicyKind, Prediction};
use keepa::clock::Clock;
use keepa::{Client, CostModel};
use tokio::sync::watch;

use crate::config::RunConfig;
use crate::error::{Halt, HarvestError};
use crate::metrics::Metrics;
use crate::store::{Batch, Store};
use keepa::clock::ScaledClock;

mod claims;
mod fetch;
mod names;
mod send;
mod stages;
mod tail;

pub(crate) use claims::Claims;
pub use names::{Job, Stage};
pub(crate) use send::{Attempts, Retry};
pub(crate) use tail::TailBook;

/// The gate every job shares (its ledger in process or in Redis).
pub type HarvestGate = Gate<PolicyKind, ScaledClock, AnyLedger>;

/// A permit of the [`HarvestGate`].
pub type HarvestPermit = Permit<PolicyKind, ScaledClock, AnyLedger>;

/// Most items in one request of an urgent job (its deficit stays small).
pub const URGENT_MAX_BATCH: u32 = 20;

/// Most ASINs per product request (Keepa's limit).
pub const MAX_ASINS: u32 = 100;

/// One job as the budget and the ledger see it.
#[derive(Debug, Clone, Copy)]
pub struct JobSpec {
    /// Name in the ledger, metrics and summary.
    pub name: Job,
    /// The budget's id for its bulk requests.
    pub id: JobId,
    /// Share of the bulk budget relative to the other jobs.
    pub weight: u32,
    /// Its requests are the tail of a periodic run and go as soon as the
    /// balance is positive (the budget's "finishing" rule): a refresh run's
    /// few product calls must not wait behind the backfill's reserve.
    pub urgent: bool,
}

/// The backfill: walks the configured feed.
pub const BACKFILL: JobSpec = JobSpec {
    name: Job::Backfill,
    id: JobId(1),
    weight: 10,
    urgent: false,
};
/// The refresh's periodic run (one feed page, newest first).
pub const REFRESH_PERIODIC: JobId = JobId(2);
/// The refresh's follow-up requests (more pages, products).
pub const REFRESH: JobSpec = JobSpec {
    name: Job::Refresh,
    id: JobId(3),
    weight: 100,
    urgent: true,
};
/// The re-check of stale products: lowest priority.
pub const RECHECK: JobSpec = JobSpec {
    name: Job::Recheck,
    id: JobId(4),
    weight: 1,
    urgent: false,
};

/// Retry bounds for failures that are not Keepa's refusal.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all (first included) for 5xx, transport, timeouts, undecodable.
    pub max_attempts: u32,
    /// First backoff, server ms; doubled each time.
    pub backoff_ms: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            backoff_ms: 5_000,
        }
    }
}

impl RetryPolicy {
    /// The wait (server ms) after the `failures`-th failure (1-based).
    pub fn backoff_after(&self, failures: u32) -> i64 {
        self.backoff_ms
            .saturating_mul(1 << failures.saturating_sub(1).min(10))
    }
}

/// Everything the jobs share. Cheap to clone (`Arc`s inside).
#[derive(Debug, Clone)]
pub struct Shared {
    pub(crate) gate: HarvestGate,
    pub(crate) client: Client,
    pub(crate) cost: Arc<Mutex<CostModel>>,
    pub(crate) store: Store,
    pub(crate) cfg: Arc<RunConfig>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) stop_tx: Arc<watch::Sender<bool>>,
    pub(crate) claims: Arc<Claims>,
    pub(crate) retry: RetryPolicy,
    pub(crate) domain: u8,
    pub(crate) target_deals: Option<u64>,
    /// Woken when a commit queues alerts (the alert worker waits on it).
    pub(crate) alert_wake: Arc<tokio::sync::Notify>,
}

/// Tokens a feed page costs.
pub(crate) const FEED_PAGE_TOKENS: i64 = 5;

impl Shared {
    /// Server time now.
    pub(crate) fn now(&self) -> i64 {
        self.gate.clock().now_ms()
    }

    /// Whether the run is stopping.
    pub(crate) fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Asks every job to stop.
    pub(crate) fn request_stop(&self) {
        let _ = self.stop_tx.send(true);
    }

    /// Waits until server time `at`, or for the stop signal (`Halt::Stopped`).
    pub(crate) async fn pause_until(&self, at: i64) -> Result<(), Halt> {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = self.gate.clock().sleep_until(at) => Ok(()),
            _ = stop.wait_for(|s| *s) => Err(Halt::Stopped),
        }
    }

    /// Waits for `need` for `job`, or for the stop signal (`Halt::Stopped`).
    pub(crate) async fn acquire(
        &self,
        job: JobId,
        name: Job,
        need: Need,
    ) -> Result<HarvestPermit, Halt> {
        let mut stop = self.stop.clone();
        if *stop.borrow() {
            return Err(Halt::Stopped);
        }
        tokio::select! {
            p = self.gate.acquire(job, need) => p.map_err(|source| Halt::Failed(HarvestError::Budget { job: name, source })),
            _ = stop.wait_for(|s| *s) => Err(Halt::Stopped),
        }
    }

    fn bulk(job: &JobSpec, per_request: Prediction, per_item: Prediction, max: u32) -> Need {
        Need::Bulk(Bulk {
            per_request,
            per_item,
            min_batch: 1,
            // An urgent request may dig below zero: keep it small.
            max_batch: if job.urgent {
                max.clamp(1, URGENT_MAX_BATCH)
            } else {
                max.max(1)
            },
            weight: job.weight,
            not_before: i64::MIN,
            finishing: job.urgent,
            remaining: None,
        })
    }

    /// Acquires a permit for one feed page for `job`.
    pub(crate) async fn acquire_page(&self, job: &JobSpec) -> Result<HarvestPermit, Halt> {
        let need = Self::bulk(
            job,
            Prediction::exact(FEED_PAGE_TOKENS),
            Prediction::exact(0),
            1,
        );
        self.acquire(job.id, job.name, need).await
    }

    /// Registers the refresh's periodic run (one feed page every `period`
    /// ms from `first_due`, late after `max_delay`) with the gate.
    pub(crate) fn register_refresh(&self, first_due: i64, period: i64, max_delay: i64) {
        self.gate.register_periodic(
            REFRESH_PERIODIC,
            first_due,
            period,
            max_delay,
            Prediction::exact(FEED_PAGE_TOKENS),
        );
    }

    /// Tells the budget what the refresh's runs charge after their first
    /// page (`tail`) and what the run in progress may still charge.
    pub(crate) fn refresh_tail(&self, tail: Prediction, open: i64) {
        self.gate.set_periodic_tail(REFRESH_PERIODIC, tail, open);
    }

    /// Tokens the refresh has been charged so far, all stages.
    pub(crate) fn refresh_spent(&self) -> i64 {
        crate::run::tokens_spent_by(&self.metrics.snapshot().tokens, Job::Refresh.as_str())
    }

    pub(crate) fn cost_lock(&self) -> MutexGuard<'_, CostModel> {
        self.cost.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a deal that passed the whole pipeline to `pending`, with its
    /// matches of the `[[alert]]` tables (`fields`: every rule field this
    /// step knows of it).
    pub(crate) fn push_deal(
        &self,
        pending: &mut Batch,
        row: &crate::store::DealRow,
        fields: &crate::config::Fields,
    ) {
        if !self.cfg.alerts.is_empty() {
            pending
                .alerts
                .extend(crate::alerts::matches(&self.cfg.alerts, row, fields));
        }
        pending.deals.push(row.clone());
    }

    /// Commits `pending` (and resets it); stops the run when the target is met.
    pub(crate) async fn commit(
        &self,
        pending: &mut Batch,
        new_deals: u64,
        updated: u64,
        products: u64,
    ) -> Result<(), HarvestError> {
        if pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(pending);
        let rows = (batch.deals.len()
            + batch.products.len()
            + batch.rejections.len()
            + batch.requests.len()) as u64;
        let done = self.store.commit(batch).await?;
        self.metrics.committed(new_deals, updated, products, rows);
        if done.alerts_queued + done.alerts_deduplicated > 0 {
            self.metrics
                .alerts_committed(done.alerts_queued, done.alerts_deduplicated);
        }
        if done.alerts_queued > 0 {
            self.alert_wake.notify_one();
        }
        tracing::debug!(rows, new_deals, "committed");
        if let Some(target) = self.target_deals {
            if new_deals > 0 && self.store.count_deals().await? >= target {
                tracing::info!(target, "target reached; stopping");
                self.request_stop();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
