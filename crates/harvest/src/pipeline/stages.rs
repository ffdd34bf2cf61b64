//! The stages: free deal filter → product stats → offers → store.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::fetch::ProductShape;
use super::{Claims, JobSpec, Shared, Stage};
use crate::config::StageRules;
use crate::error::Halt;
use crate::extract::DealItem;
use crate::store::{Batch, Known, RejectionRow};

/// How long a deal stays rejected when the server, not the deal, was the
/// cause (an ASIN left out of an answer, an offers collection that failed):
/// short, so a later look at the feed fetches it again.
pub(crate) const SERVER_RETRY_TTL: Duration = Duration::from_secs(3_600);

/// The rejection reason of an ASIN Keepa left out of a `/product` answer.
pub(crate) const REASON_MISSING: &str = "left out of Keepa's answer (retried after an hour)";

/// The rejection reason of a product whose offers Keepa failed to collect.
pub(crate) const REASON_OFFERS_FAILED: &str =
    "Keepa's offers collection failed (offersSuccessful false; retried after an hour)";

/// A deal on its way through the stages.
#[derive(Debug, Clone)]
struct Work {
    deal: DealItem,
    /// Already stored before this run step (an update, not a new deal).
    was_stored: bool,
    /// The server already failed it once at this stage (left it out, or
    /// failed its offers): the next time it is rejected for
    /// [`SERVER_RETRY_TTL`] instead of queued again.
    server_failed: bool,
}

impl Shared {
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
                job = job.name.as_str(),
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
                    let stage = Stage::from_stored(stage);
                    let is_final = match stage {
                        Some(Stage::Offers) => true,
                        Some(Stage::Stats) => cfg.product_offers.is_none(),
                        _ => cfg.product_offers.is_none() && cfg.product_stats.is_none(),
                    };
                    if is_final && fresh(final_fresh) {
                        // Known and fresh: a changed deal costs nothing.
                        if passes_filter.is_ok() {
                            self.push_deal(pending, &d.row, &d.fields);
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
                    let stats_fresh = stage == Some(Stage::Stats)
                        && fresh(cfg.product_stats.as_ref().map(|s| s.fresh_for));
                    // A product fetched by an earlier stage of an
                    // interrupted run has no deal row yet: storing it is new.
                    let w = Work {
                        deal: d,
                        was_stored: *deal,
                        server_failed: false,
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
                            Stage::Deal,
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
                        server_failed: false,
                    };
                    if cfg.product_stats.is_some() {
                        need_stats.push(w);
                    } else if cfg.product_offers.is_some() {
                        need_offers.push(w);
                    } else {
                        // No product stage: the deal is the whole record.
                        self.push_deal(pending, &w.deal.row, &w.deal.fields);
                        direct_new += 1;
                    }
                }
            }
        }
        self.metrics.rejected(Stage::Deal.as_str(), rejected_deal);
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
            let shape = self.product_shape(Stage::Stats);
            let mut queue = stats;
            while !queue.is_empty() {
                let survivors = self
                    .fetch_stage(job, shape, &mut queue, &st.rules, pending)
                    .await?;
                offers.extend(survivors);
            }
        }
        if let Some(of) = &self.cfg.pipeline.product_offers {
            let shape = self.product_shape(Stage::Offers);
            let mut queue = offers;
            while !queue.is_empty() {
                self.fetch_stage(job, shape, &mut queue, &of.rules, pending)
                    .await?;
            }
        }
        Ok(())
    }

    /// One product request of the stage for the front of `queue` (sized by
    /// the budget). Returns the survivors (for the next stage), after
    /// committing the rest (stored or rejected). A product the server
    /// failed (left out of the answer, or its offers collection failed) is
    /// not judged: it goes back to the end of `queue` once, and the second
    /// time it is rejected for [`SERVER_RETRY_TTL`] with its own reason.
    async fn fetch_stage(
        &self,
        job: &JobSpec,
        shape: ProductShape,
        queue: &mut Vec<Work>,
        rules: &StageRules,
        pending: &mut Batch,
    ) -> Result<Vec<Work>, Halt> {
        let stage = shape.stage;
        let asins: Vec<&str> = queue.iter().map(|w| w.deal.asin.as_str()).collect();
        let fetched = self
            .fetch_products(job, stage, shape, &asins, pending)
            .await?;
        let batch: Vec<Work> = queue.drain(..fetched.asked).collect();
        let found = fetched.items.len() as u64;
        let now = fetched.at_ms;
        let offers_failed: HashSet<String> = fetched.offers_failed.into_iter().collect();
        let mut by_asin: HashMap<String, _> = fetched
            .items
            .into_iter()
            .map(|item| (item.asin.clone(), item))
            .collect();
        let last = stage == Stage::Offers || self.cfg.pipeline.product_offers.is_none();
        let mut survivors = Vec::new();
        let (mut new_deals, mut updated, mut rejected) = (0u64, 0u64, 0u64);
        for mut w in batch {
            let verdict = match by_asin.remove(&w.deal.asin) {
                None => {
                    let reason = if offers_failed.contains(&w.deal.asin) {
                        REASON_OFFERS_FAILED
                    } else {
                        REASON_MISSING
                    };
                    if !w.server_failed {
                        tracing::debug!(asin = %w.deal.asin, stage = stage.as_str(), reason, "queued again");
                        w.server_failed = true;
                        queue.push(w);
                        continue;
                    }
                    Err((reason.to_string(), SERVER_RETRY_TTL))
                }
                Some(item) => {
                    let mut fields = w.deal.fields.clone();
                    fields.merge(item.fields);
                    rules
                        .check(&fields)
                        .map(|()| (item.row, fields))
                        .map_err(|f| (f.to_string(), rules.rejection_ttl))
                }
            };
            match verdict {
                Err((reason, ttl)) => {
                    pending.rejections.push(rejection(
                        &w.deal.asin,
                        self.domain,
                        stage,
                        &reason,
                        now,
                        ttl,
                    ));
                    rejected += 1;
                }
                Ok((row, fields)) => {
                    pending.products.push(row);
                    if !last {
                        // A fresh chance at the next stage.
                        w.server_failed = false;
                        survivors.push(w);
                        continue;
                    }
                    self.push_deal(pending, &w.deal.row, &fields);
                    if w.was_stored {
                        updated += 1
                    } else {
                        new_deals += 1
                    }
                }
            }
        }
        self.metrics.rejected(stage.as_str(), rejected);
        self.commit(pending, new_deals, updated, found).await?;
        Ok(survivors)
    }
}

fn rejection(
    asin: &str,
    domain: u8,
    stage: Stage,
    reason: &str,
    now: i64,
    ttl: Duration,
) -> RejectionRow {
    RejectionRow {
        asin: asin.to_string(),
        domain,
        stage: stage.as_str().to_string(),
        reason: reason.to_string(),
        rejected_at_ms: now,
        expires_at_ms: now.saturating_add(ttl.as_millis().min(i64::MAX as u128 / 2) as i64),
    }
}
