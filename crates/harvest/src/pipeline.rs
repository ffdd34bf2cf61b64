//! The staged pipeline and the one way jobs talk to Keepa.
//!
//! [`Shared`] holds what every job shares: the budget's gate, the client,
//! the cost model, the store, the configuration, the metrics and the stop
//! signal. `Shared::send` is the only function that calls Keepa: it asks
//! the gate first, settles the permit with what the server said, records a
//! [`RequestRow`], and retries (429: after the gate's exact wait; 5xx,
//! broken connections, undecodable bodies: a bounded number of times with
//! backoff in server time). `Shared::process` pushes a list of deals
//! through the stages: free deal filter → product stats → offers → store.
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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use budget::gate::{Clock, Gate, Permit};
use budget::{AnyLedger, Bulk, JobId, Need, Outcome, PolicyKind, Prediction};
use keepa::model::{DealResponse, ProductResponse};
use keepa::request::{Endpoint, ProductRequest, Request};
use keepa::{ApiError, Client, CostModel, Response};
use tokio::sync::watch;

use crate::clock::ScaledClock;
use crate::config::{RunConfig, StageRules};
use crate::error::{Halt, HarvestError};
use crate::extract::{self, DealItem};
use crate::metrics::Metrics;
use crate::store::{Batch, Known, Locks, RejectionRow, RequestRow, Store, StoreError};

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
    pub name: &'static str,
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
    name: "backfill",
    id: JobId(1),
    weight: 10,
    urgent: false,
};
/// The refresh's periodic run (one feed page, newest first).
pub const REFRESH_PERIODIC: JobId = JobId(2);
/// The refresh's follow-up requests (more pages, products).
pub const REFRESH: JobSpec = JobSpec {
    name: "refresh",
    id: JobId(3),
    weight: 100,
    urgent: true,
};
/// The re-check of stale products: lowest priority.
pub const RECHECK: JobSpec = JobSpec {
    name: "recheck",
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
}

/// What is being worked on right now, by any job of this process or of
/// another process on the same database: feed pages, ASINs, singleton jobs.
///
/// A claim is taken in process first (jobs of one process exclude each
/// other), then in the store ([`Locks`]: across processes; released by the
/// server if this process dies). Claims are never waited on: what another
/// job holds is left to it.
#[derive(Debug)]
pub(crate) struct Claims {
    set: Mutex<HashSet<String>>,
    locks: Locks,
}

impl Claims {
    /// Claims over `locks` (the store's).
    pub(crate) fn new(locks: Locks) -> Self {
        Claims {
            set: Mutex::new(HashSet::new()),
            locks,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<String>> {
        self.set.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes what is free of `names`; returns, in order, whether each was taken.
    pub(crate) async fn try_claim(&self, names: &[String]) -> Result<Vec<bool>, StoreError> {
        let local: Vec<bool> = {
            let mut set = self.lock();
            names.iter().map(|n| set.insert(n.clone())).collect()
        };
        let fresh: Vec<String> = names
            .iter()
            .zip(&local)
            .filter(|(_, l)| **l)
            .map(|(n, _)| n.clone())
            .collect();
        let shared = match self.locks.try_claim(&fresh).await {
            Ok(s) => s,
            Err(e) => {
                self.forget(&fresh);
                return Err(e);
            }
        };
        let lost: Vec<String> = fresh
            .iter()
            .zip(&shared)
            .filter(|(_, got)| !**got)
            .map(|(n, _)| n.clone())
            .collect();
        self.forget(&lost);
        let mut shared = shared.into_iter();
        Ok(local
            .into_iter()
            .map(|l| l && shared.next().unwrap_or(false))
            .collect())
    }

    /// Releases claims this process took.
    pub(crate) async fn release(&self, names: &[String]) -> Result<(), StoreError> {
        if names.is_empty() {
            return Ok(());
        }
        let r = self.locks.release(names).await;
        self.forget(names);
        r
    }

    fn forget(&self, names: &[String]) {
        let mut set = self.lock();
        for n in names {
            set.remove(n);
        }
    }

    /// The claim name of an ASIN.
    pub(crate) fn asin(domain: u8, asin: &str) -> String {
        format!("asin:{domain}:{asin}")
    }

    /// Claims the deals of `items` that are free; returns (claimed, held elsewhere).
    async fn claim_deals(
        &self,
        domain: u8,
        items: Vec<DealItem>,
    ) -> Result<(Vec<DealItem>, Vec<DealItem>), StoreError> {
        let names: Vec<String> = items.iter().map(|d| Self::asin(domain, &d.asin)).collect();
        let got = self.try_claim(&names).await?;
        let mut mine = Vec::new();
        let mut busy = Vec::new();
        for (d, g) in items.into_iter().zip(got) {
            if g {
                mine.push(d);
            } else {
                busy.push(d);
            }
        }
        Ok((mine, busy))
    }
}

/// A deal on its way through the stages.
#[derive(Debug, Clone)]
struct Work {
    deal: DealItem,
    /// Already stored before this run step (an update, not a new deal).
    was_stored: bool,
}

impl Shared {
    /// Server time now.
    pub(crate) fn now(&self) -> i64 {
        self.gate.clock().now()
    }

    /// Whether the run is stopping.
    pub(crate) fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Asks every job to stop.
    pub(crate) fn request_stop(&self) {
        let _ = self.stop_tx.send(true);
    }

    /// Waits for `need` for `job`, or for the stop signal (`Halt::Stopped`).
    pub(crate) async fn acquire(
        &self,
        job: JobId,
        name: &'static str,
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

    /// Acquires a permit for one feed page (5 tokens) for `job`.
    pub(crate) async fn acquire_page(&self, job: &JobSpec) -> Result<HarvestPermit, Halt> {
        let need = Self::bulk(job, Prediction::exact(5), Prediction::exact(0), 1);
        self.acquire(job.id, job.name, need).await
    }

    /// Sends `req` under `permit`: settles it, records the request, retries
    /// 429s (the gate waits for refill) and transient failures (bounded).
    /// The request rows go into `pending`, to be committed by the caller.
    pub(crate) async fn send(
        &self,
        job: &JobSpec,
        stage: &'static str,
        mut permit: HarvestPermit,
        req: &Request,
        pending: &mut Batch,
    ) -> Result<Response, Halt> {
        let predicted = {
            let p = self.cost_lock().predict(req);
            i64::from(p.expected)
        };
        let upper = i64::from(self.cost_lock().predict(req).upper_bound);
        let endpoint = endpoint_name(req.endpoint());
        let mut failures = 0u32;
        loop {
            let result = self.client.send(req).await;
            let now = self.now();
            let mut row = RequestRow {
                at_ms: now,
                job: job.name.to_string(),
                stage: stage.to_string(),
                endpoint: endpoint.to_string(),
                items: req.items(),
                predicted,
                ..RequestRow::default()
            };
            let outcome = Outcome::of_call(&result, predicted, now);
            let snap = outcome.snapshot();
            row.charged = outcome.charged();
            permit.settle(outcome);
            let answer = match result {
                Ok(resp) => {
                    row.tokens_left = resp.envelope.tokens_left;
                    row.status = "ok".into();
                    self.note(job, stage, &row, snap);
                    pending.requests.push(row);
                    Some(resp)
                }
                Err(err) => {
                    row.tokens_left = err.envelope().and_then(|e| e.tokens_left);
                    row.status = status_name(&err);
                    self.note(job, stage, &row, snap);
                    pending.requests.push(row);
                    if err.is_refusal() {
                        return Err(Halt::Failed(HarvestError::Refused {
                            job: job.name,
                            stage,
                            source: err,
                        }));
                    }
                    if !matches!(err, ApiError::NotEnoughTokens(_)) {
                        failures += 1;
                        if failures >= self.retry.max_attempts {
                            return Err(Halt::Failed(HarvestError::Network {
                                job: job.name,
                                stage,
                                attempts: failures,
                                source: err,
                            }));
                        }
                        self.metrics.retry();
                        tracing::warn!(job = job.name, stage, attempt = failures, error = %err, "request failed; retrying");
                        let at = self
                            .now()
                            .saturating_add(self.retry.backoff_after(failures));
                        let mut stop = self.stop.clone();
                        tokio::select! {
                            _ = self.gate.clock().sleep_until(at) => {}
                            _ = stop.wait_for(|s| *s) => return Err(Halt::Stopped),
                        }
                    } else {
                        tracing::debug!(job = job.name, stage, "429: waiting for refill");
                    }
                    None
                }
            };
            if let Some(resp) = answer {
                return Ok(resp);
            }
            // Ask again for the same request (exact size).
            let need = Self::bulk(
                job,
                Prediction::new(predicted, upper),
                Prediction::exact(0),
                1,
            );
            permit = self.acquire(job.id, job.name, need).await?;
        }
    }

    fn note(
        &self,
        job: &JobSpec,
        stage: &str,
        row: &RequestRow,
        snap: Option<keepa::TokenSnapshot>,
    ) {
        let status = if row.status == "ok" {
            "200"
        } else {
            row.status.as_str()
        };
        self.metrics
            .request(job.name, stage, status, row.charged.unwrap_or(0));
        if let Some(s) = snap {
            self.metrics.envelope(s);
        }
    }

    pub(crate) fn cost_lock(&self) -> MutexGuard<'_, CostModel> {
        self.cost.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends one feed page and parses it into deals (a body that does not
    /// parse is retried like any undecodable answer).
    pub(crate) async fn feed_page(
        &self,
        job: &JobSpec,
        permit: HarvestPermit,
        req: &Request,
        pending: &mut Batch,
    ) -> Result<Vec<DealItem>, Halt> {
        let mut permit = Some(permit);
        let mut failures = 0;
        loop {
            let p = match permit.take() {
                Some(p) => p,
                None => self.acquire_page(job).await?,
            };
            let resp = self.send(job, "feed", p, req, pending).await?;
            match resp.parse::<DealResponse>() {
                Ok(page) => {
                    let now = self.now();
                    let pt = price_type(req);
                    let raw = if self.cfg.keep_raw_deals {
                        raw_deals(&resp)
                    } else {
                        Vec::new()
                    };
                    return Ok(page
                        .deals
                        .dr
                        .iter()
                        .enumerate()
                        .filter_map(|(i, d)| {
                            let mut item = extract::deal(d, self.domain, pt, now)?;
                            item.row.raw_json = raw.get(i).cloned().flatten();
                            Some(item)
                        })
                        .collect());
                }
                Err(err) => {
                    failures += 1;
                    self.metrics.retry();
                    if failures >= self.retry.max_attempts {
                        return Err(Halt::Failed(HarvestError::Network {
                            job: job.name,
                            stage: "feed",
                            attempts: failures,
                            source: err,
                        }));
                    }
                }
            }
        }
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
        self.store.commit(batch).await?;
        self.metrics.committed(new_deals, updated, products, rows);
        tracing::debug!(rows, new_deals, "committed");
        if let Some(target) = self.target_deals {
            if new_deals > 0 && self.store.count_deals().await? >= target {
                tracing::info!(target, "target reached; stopping");
                self.request_stop();
            }
        }
        Ok(())
    }

    /// Pushes `deals` through the pipeline for `job`. See the module docs.
    pub(crate) async fn process(
        &self,
        job: &JobSpec,
        deals: Vec<DealItem>,
        pending: &mut Batch,
    ) -> Result<(), Halt> {
        let mut seen = HashSet::new();
        let todo: Vec<DealItem> = deals
            .into_iter()
            .filter(|d| seen.insert(d.asin.clone()))
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        // Claimed before the store is asked what it knows, so a product
        // another job (or process) is storing right now is never fetched
        // again; a deal held elsewhere is left to that job, whose own
        // cursor or watermark covers it until it is stored.
        let (mine, busy) = self.claims.claim_deals(self.domain, todo).await?;
        if !busy.is_empty() {
            tracing::debug!(
                job = job.name,
                n = busy.len(),
                "deals in flight in another job"
            );
        }
        let names: Vec<String> = mine
            .iter()
            .map(|d| Claims::asin(self.domain, &d.asin))
            .collect();
        let result = self.process_claimed(job, mine, pending).await;
        let released = self.claims.release(&names).await;
        result?;
        released?;
        Ok(())
    }

    /// Runs the stages for deals this job has claimed.
    async fn process_claimed(
        &self,
        job: &JobSpec,
        deals: Vec<DealItem>,
        pending: &mut Batch,
    ) -> Result<(), Halt> {
        if deals.is_empty() {
            return Ok(());
        }
        let cfg = &self.cfg.pipeline;
        let now = self.now();
        let asins: Vec<String> = deals.iter().map(|d| d.asin.clone()).collect();
        let known = self.store.known(self.domain, &asins, now).await?;
        let final_fresh = cfg
            .product_offers
            .as_ref()
            .map(|o| o.fresh_for)
            .or(cfg.product_stats.as_ref().map(|s| s.fresh_for));
        let mut need_stats = Vec::new();
        let mut need_offers = Vec::new();
        let mut updated = 0u64;
        let mut direct_new = 0u64;
        let mut rejected_deal = 0u64;
        for d in deals {
            let passes_filter = match &cfg.deal_filter {
                Some(rules) => rules.check(&d.fields),
                None => Ok(()),
            };
            match known.get(&d.asin) {
                Some(Known::Rejected { .. }) => continue,
                Some(Known::Stored {
                    fetched_at_ms,
                    stage,
                    deal,
                }) => {
                    let age = now.saturating_sub(*fetched_at_ms);
                    let fresh = |f: Option<Duration>| f.is_none_or(|f| age < f.as_millis() as i64);
                    let is_final = match stage.as_str() {
                        "offers" => true,
                        "stats" => cfg.product_offers.is_none(),
                        _ => cfg.product_offers.is_none() && cfg.product_stats.is_none(),
                    };
                    if is_final && fresh(final_fresh) {
                        // Known and fresh: a changed deal costs nothing.
                        if passes_filter.is_ok() {
                            pending.deals.push(d.row.clone());
                            if *deal {
                                updated += 1;
                            } else {
                                direct_new += 1;
                            }
                        }
                        continue;
                    }
                    if passes_filter.is_err() {
                        continue;
                    }
                    let stats_fresh =
                        stage == "stats" && fresh(cfg.product_stats.as_ref().map(|s| s.fresh_for));
                    // A product fetched by an earlier stage of an
                    // interrupted run has no deal row yet: storing it is new.
                    let w = Work {
                        deal: d,
                        was_stored: *deal,
                    };
                    if stats_fresh || cfg.product_stats.is_none() {
                        need_offers.push(w);
                    } else {
                        need_stats.push(w);
                    }
                }
                None => {
                    if let Err(fail) = passes_filter {
                        let ttl = cfg
                            .deal_filter
                            .as_ref()
                            .map_or(Duration::ZERO, |r| r.rejection_ttl);
                        pending.rejections.push(rejection(
                            &d.asin,
                            self.domain,
                            "deal",
                            &fail.to_string(),
                            now,
                            ttl,
                        ));
                        rejected_deal += 1;
                        continue;
                    }
                    let w = Work {
                        deal: d,
                        was_stored: false,
                    };
                    if cfg.product_stats.is_some() {
                        need_stats.push(w);
                    } else if cfg.product_offers.is_some() {
                        need_offers.push(w);
                    } else {
                        // No product stage: the deal is the whole record.
                        pending.deals.push(w.deal.row.clone());
                        direct_new += 1;
                    }
                }
            }
        }
        self.metrics.rejected("deal", rejected_deal);
        self.commit(pending, direct_new, updated, 0).await?;

        self.run_stages(job, need_stats, need_offers, pending).await
    }

    async fn run_stages(
        &self,
        job: &JobSpec,
        stats: Vec<Work>,
        mut offers: Vec<Work>,
        pending: &mut Batch,
    ) -> Result<(), Halt> {
        if let Some(st) = &self.cfg.pipeline.product_stats {
            let mut queue = stats;
            while !queue.is_empty() {
                let survivors = self
                    .fetch_stage(
                        job,
                        "stats",
                        &mut queue,
                        st.stats_days,
                        None,
                        &st.rules,
                        pending,
                    )
                    .await?;
                offers.extend(survivors);
            }
        }
        if let Some(of) = &self.cfg.pipeline.product_offers {
            let days = self
                .cfg
                .pipeline
                .product_stats
                .as_ref()
                .map_or(180, |s| s.stats_days);
            let mut queue = offers;
            while !queue.is_empty() {
                self.fetch_stage(
                    job,
                    "offers",
                    &mut queue,
                    days,
                    Some(u32::from(of.offers)),
                    &of.rules,
                    pending,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// One product request of the stage for the front of `queue` (sized by
    /// the budget). Returns the survivors (for the next stage), after
    /// committing the rest (stored or rejected).
    #[allow(clippy::too_many_arguments)]
    async fn fetch_stage(
        &self,
        job: &JobSpec,
        stage: &'static str,
        queue: &mut Vec<Work>,
        stats_days: u32,
        offers: Option<u32>,
        rules: &StageRules,
        pending: &mut Batch,
    ) -> Result<Vec<Work>, Halt> {
        let build = |asins: &[&str]| {
            let mut r =
                ProductRequest::asins(self.cfg.domain, asins.iter().copied()).stats(stats_days);
            if let Some(n) = offers {
                r = r.offers(n);
            }
            r.build().map_err(|source| {
                Halt::Failed(HarvestError::Invalid {
                    job: job.name,
                    stage,
                    source,
                })
            })
        };
        let probe = build(&[queue[0].deal.asin.as_str()])?;
        let per_item = {
            let p = self
                .cost_lock()
                .predict_shape(probe.domain(), probe.shape(), 1);
            Prediction::new(i64::from(p.expected), i64::from(p.upper_bound))
        };
        let max = (queue.len() as u32).min(MAX_ASINS);
        let need = Self::bulk(job, Prediction::exact(0), per_item, max);
        let permit = self.acquire(job.id, job.name, need).await?;
        let n = (permit.items() as usize).clamp(1, queue.len());
        let batch: Vec<Work> = queue.drain(..n).collect();
        let asins: Vec<&str> = batch.iter().map(|w| w.deal.asin.as_str()).collect();
        let req = build(&asins)?;
        let mut permit = Some(permit);
        let mut bad = 0u32;
        let (resp, parsed) = loop {
            let p = match permit.take() {
                Some(p) => p,
                None => self.acquire_exact(job, &req).await?,
            };
            let resp = self.send(job, stage, p, &req, pending).await?;
            match resp.parse::<ProductResponse>() {
                Ok(parsed) => break (resp, parsed),
                Err(source) => {
                    bad += 1;
                    self.metrics.retry();
                    if bad >= self.retry.max_attempts {
                        return Err(Halt::Failed(HarvestError::Network {
                            job: job.name,
                            stage,
                            attempts: bad,
                            source,
                        }));
                    }
                }
            }
        };
        let consumed = resp.envelope.tokens_consumed.unwrap_or(0);
        let found = parsed.products.len() as u32;
        self.cost_lock().observe(&req, found, consumed);
        let share = if found > 0 {
            consumed / i64::from(found)
        } else {
            0
        };
        let now = self.now();
        let mut by_asin: HashMap<&str, &keepa::Product> = HashMap::new();
        for p in &parsed.products {
            by_asin.insert(p.asin.as_str(), p);
        }
        let mut survivors = Vec::new();
        let (mut new_deals, mut updated, mut rejected) = (0u64, 0u64, 0u64);
        for w in batch {
            let Some(p) = by_asin.get(w.deal.asin.as_str()) else {
                pending.rejections.push(rejection(
                    &w.deal.asin,
                    self.domain,
                    stage,
                    "Keepa returned no product for this ASIN",
                    now,
                    rules.rejection_ttl,
                ));
                rejected += 1;
                continue;
            };
            let item = extract::product(p, self.domain, stage, now, share);
            let mut fields = w.deal.fields.clone();
            fields.merge(item.fields);
            match rules.check(&fields) {
                Err(fail) => {
                    pending.rejections.push(rejection(
                        &w.deal.asin,
                        self.domain,
                        stage,
                        &fail.to_string(),
                        now,
                        rules.rejection_ttl,
                    ));
                    rejected += 1;
                }
                Ok(()) => {
                    pending.products.push(item.row);
                    let last = stage == "offers" || self.cfg.pipeline.product_offers.is_none();
                    if last {
                        pending.deals.push(w.deal.row.clone());
                        if w.was_stored {
                            updated += 1
                        } else {
                            new_deals += 1
                        }
                    } else {
                        survivors.push(w);
                    }
                }
            }
        }
        self.metrics.rejected(stage, rejected);
        self.commit(pending, new_deals, updated, u64::from(found))
            .await?;
        Ok(survivors)
    }
}

impl Shared {
    /// A permit for exactly `req` (a retry of a request already sized).
    async fn acquire_exact(&self, job: &JobSpec, req: &Request) -> Result<HarvestPermit, Halt> {
        let p = self.cost_lock().predict(req);
        let need = Self::bulk(
            job,
            Prediction::new(i64::from(p.expected), i64::from(p.upper_bound)),
            Prediction::exact(0),
            1,
        );
        self.acquire(job.id, job.name, need).await
    }
}

fn rejection(
    asin: &str,
    domain: u8,
    stage: &str,
    reason: &str,
    now: i64,
    ttl: Duration,
) -> RejectionRow {
    RejectionRow {
        asin: asin.to_string(),
        domain,
        stage: stage.to_string(),
        reason: reason.to_string(),
        rejected_at_ms: now,
        expires_at_ms: now.saturating_add(ttl.as_millis().min(i64::MAX as u128 / 2) as i64),
    }
}

fn endpoint_name(e: Endpoint) -> &'static str {
    match e {
        Endpoint::Deal => "deal",
        Endpoint::Product => "product",
        Endpoint::Token => "token",
        _ => "other",
    }
}

/// The ledger's status for a failure: `429`, `400`, `5xx`, `timeout`, …
fn status_name(err: &ApiError) -> String {
    match err {
        ApiError::Timeout { .. } => "timeout".into(),
        ApiError::Transport { .. } => "transport".into(),
        ApiError::Undecodable { .. } => "undecodable".into(),
        ApiError::Server(_) => "5xx".into(),
        other => other
            .status()
            .map_or_else(|| "error".into(), |s| s.to_string()),
    }
}

/// The feed's price type, from the request body.
/// Each deal object of a feed page as Keepa sent it (JSON text), by
/// position; empty when the body has no `deals.dr` array.
fn raw_deals(resp: &Response) -> Vec<Option<String>> {
    let Ok(body) = resp.json() else {
        return Vec::new();
    };
    match body.pointer("/deals/dr") {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|d| serde_json::to_string(d).ok())
            .collect(),
        _ => Vec::new(),
    }
}

fn price_type(req: &Request) -> u8 {
    req.body()
        .and_then(|b| b.get("priceTypes"))
        .and_then(|v| v.get(0))
        .and_then(|v| v.as_u64())
        .and_then(|v| u8::try_from(v).ok())
        .unwrap_or(0)
}
