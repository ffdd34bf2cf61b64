//! The three jobs: backfill, refresh and re-check. Each is a loop over the
//! [`Shared`] pipeline; none does token arithmetic.
//!
//! Checkpoints (committed with the rows of the step that earned them):
//! - `backfill`: `{"page": next page, "done": bool}`. The page cursor moves
//!   only after every deal of the page is stored, updated or rejected; a
//!   restart re-reads the page and skips what the store knows. The feed is
//!   walked with the configured selection; a page of fewer than 150 deals,
//!   the 10 000-deal paging cap or `max_pages` ends it.
//! - `refresh`: `{"watermark_ms": t}`, the newest `lastUpdate` (else
//!   `creationDate`) among deals handled. Each run reads the feed newest
//!   first (`sortType` 1) from page 0 down to the watermark (inclusive: deals
//!   sharing the watermark's minute are looked at again, for free), and
//!   moves it only after all of them are handled.

use std::time::Duration;

use budget::gate::{Clock, GateError};
use budget::{Need, Prediction};
use keepa::request::MAX_DEAL_PAGE;
use serde_json::json;

use crate::error::{Halt, HarvestError};
use crate::extract::DealItem;
use crate::pipeline::{Shared, BACKFILL, RECHECK, REFRESH, REFRESH_PERIODIC};
use crate::store::Batch;

/// Deals per feed page.
pub const PAGE_SIZE: usize = 150;

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128 / 4) as i64
}

/// Ends `Ok` when the job is finished or the run stops; `Err` on a run-ending failure.
fn finish(r: Result<(), Halt>) -> Result<(), HarvestError> {
    match r {
        Ok(()) | Err(Halt::Stopped) => Ok(()),
        Err(Halt::Failed(e)) => Err(e),
    }
}

/// The backfill: walks the configured feed page by page.
pub(crate) async fn backfill(sh: Shared) -> Result<(), HarvestError> {
    let r = backfill_loop(&sh).await;
    if r.is_ok() {
        sh.metrics.backfill_finished();
    }
    finish(r)
}

async fn backfill_loop(sh: &Shared) -> Result<(), Halt> {
    let cp = sh.store.checkpoint("backfill").await?;
    let mut page = cp
        .as_ref()
        .and_then(|v| v.get("page"))
        .and_then(|v| v.as_u64())
        .unwrap_or(0) as u32;
    if cp
        .as_ref()
        .and_then(|v| v.get("done"))
        .and_then(|v| v.as_bool())
        == Some(true)
    {
        tracing::info!("backfill: already complete");
        return Ok(());
    }
    let max_pages = sh
        .cfg
        .backfill
        .max_pages
        .map_or(MAX_DEAL_PAGE + 1, |m| m)
        .min(MAX_DEAL_PAGE + 1);
    let mut pending = Batch::default();
    loop {
        if page >= max_pages {
            pending
                .checkpoints
                .push(("backfill".into(), json!({ "page": page, "done": true })));
            sh.commit(&mut pending, 0, 0, 0).await?;
            return Ok(());
        }
        let sel = sh.cfg.selection.clone().with_page(page);
        let req = sel.build().map_err(|source| HarvestError::Invalid {
            job: "backfill",
            stage: "feed",
            source,
        })?;
        let permit = sh.acquire_page(&BACKFILL).await?;
        let deals = sh.feed_page(&BACKFILL, permit, &req, &mut pending).await?;
        let n = deals.len();
        sh.process(&BACKFILL, deals, &mut pending).await?;
        page += 1;
        let done = n < PAGE_SIZE || (page as usize) * PAGE_SIZE >= 10_000 || page >= max_pages;
        pending
            .checkpoints
            .push(("backfill".into(), json!({ "page": page, "done": done })));
        sh.commit(&mut pending, 0, 0, 0).await?;
        sh.metrics.backfill_page(done);
        tracing::info!(page, deals = n, done, "backfill: page done");
        if done {
            return Ok(());
        }
    }
}

/// The refresh: a periodic run reading the newest deals down to the watermark.
pub(crate) async fn refresh(sh: Shared) -> Result<(), HarvestError> {
    finish(refresh_loop(&sh).await)
}

async fn refresh_loop(sh: &Shared) -> Result<(), Halt> {
    let period = ms(sh.cfg.refresh.period).max(1_000);
    let max_delay = ms(sh.cfg.refresh.max_delay);
    let mut next_due = sh.now();
    sh.gate.register_periodic(
        REFRESH_PERIODIC,
        next_due,
        period,
        max_delay,
        Prediction::exact(5),
    );
    let cp = sh.store.checkpoint("refresh").await?;
    let mut watermark = cp
        .as_ref()
        .and_then(|v| v.get("watermark_ms"))
        .and_then(|v| v.as_i64());
    // Without a watermark, a backfill still to come covers today's feed:
    // the first run only notes where the newest deal is.
    let backfill_pending = sh.cfg.backfill.enabled
        && sh
            .store
            .checkpoint("backfill")
            .await?
            .and_then(|v| v.get("done").and_then(|d| d.as_bool()))
            != Some(true);
    let mut pending = Batch::default();
    loop {
        let mut stop = sh.stop.clone();
        if *stop.borrow() {
            return Err(Halt::Stopped);
        }
        let got = tokio::select! {
            p = sh.gate.acquire_periodic(REFRESH_PERIODIC) => p,
            _ = stop.wait_for(|s| *s) => return Err(Halt::Stopped),
        };
        let now = sh.now();
        let delay = now - next_due;
        next_due += period;
        let permit = match got {
            Ok(p) => p,
            Err(GateError::Skipped(_)) => {
                sh.metrics.refresh_run(delay, true);
                continue;
            }
            Err(source) => {
                return Err(Halt::Failed(HarvestError::Budget {
                    job: "refresh",
                    source,
                }))
            }
        };
        sh.metrics.refresh_run(delay, delay > max_delay);
        tracing::debug!(
            delay_s = delay / 1000,
            late = delay > max_delay,
            "refresh: run starts"
        );
        let mut permit = Some(permit);
        let mut page = 0u32;
        let mut newest = watermark;
        loop {
            let mut sel = sh.cfg.selection.clone().with_page(page);
            sel.sort_type = Some(1);
            let req = sel.build().map_err(|source| HarvestError::Invalid {
                job: "refresh",
                stage: "feed",
                source,
            })?;
            let p = match permit.take() {
                Some(p) => p,
                None => sh.acquire_page(&REFRESH).await?,
            };
            let deals = sh.feed_page(&REFRESH, p, &req, &mut pending).await?;
            let n = deals.len();
            let fresh: Vec<DealItem> = deals
                .into_iter()
                .filter(|d| watermark.is_none_or(|w| d.time_ms >= w))
                .collect();
            let all_new = fresh.len() == n;
            newest = fresh.iter().map(|d| d.time_ms).max().max(newest);
            if watermark.is_none() && backfill_pending {
                break;
            }
            sh.process(&REFRESH, fresh, &mut pending).await?;
            page += 1;
            // Read on while a full page was all newer than the watermark.
            if watermark.is_none() || !all_new || n < PAGE_SIZE || page > MAX_DEAL_PAGE {
                break;
            }
        }
        if newest != watermark {
            watermark = newest;
            pending
                .checkpoints
                .push(("refresh".into(), json!({ "watermark_ms": watermark })));
        }
        sh.commit(&mut pending, 0, 0, 0).await?;
        if let Some(w) = watermark {
            sh.metrics.refresh_lag(sh.now() - w);
        }
    }
}

/// The re-check: re-fetches stored products older than `older_than`, at the
/// lowest weight.
pub(crate) async fn recheck(sh: Shared) -> Result<(), HarvestError> {
    finish(recheck_loop(&sh).await)
}

async fn recheck_loop(sh: &Shared) -> Result<(), Halt> {
    let older = ms(sh.cfg.recheck.older_than).max(60_000);
    let mut pending = Batch::default();
    loop {
        if sh.stopping() {
            return Err(Halt::Stopped);
        }
        let now = sh.now();
        let stale = sh.store.stale_products(sh.domain, now - older, 100).await?;
        if stale.is_empty() {
            // Nothing is stale: look again after a tenth of the age (server time).
            let at = now + (older / 10).max(60_000);
            let mut stop = sh.stop.clone();
            tokio::select! {
                _ = sh.gate.clock().sleep_until(at) => {}
                _ = stop.wait_for(|s| *s) => return Err(Halt::Stopped),
            }
            continue;
        }
        let n = sh.refetch(&RECHECK, &stale, &mut pending).await?;
        sh.commit(&mut pending, 0, 0, n).await?;
    }
}

impl Shared {
    /// Re-fetches `asins` with the pipeline's deepest product shape (so the
    /// stored row stays complete); returns the products fetched.
    async fn refetch(
        &self,
        job: &crate::pipeline::JobSpec,
        asins: &[String],
        pending: &mut Batch,
    ) -> Result<u64, Halt> {
        let pipe = &self.cfg.pipeline;
        let days = pipe.product_stats.as_ref().map_or(180, |s| s.stats_days);
        let offers = pipe.product_offers.as_ref().map(|o| u32::from(o.offers));
        let stage = if offers.is_some() { "offers" } else { "stats" };
        let build = |list: &[String]| {
            let mut r =
                keepa::ProductRequest::asins(self.cfg.domain, list.iter().map(String::as_str))
                    .stats(days);
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
        let probe = build(&asins[..1])?;
        let per_item = {
            let p = self
                .cost_lock()
                .predict_shape(probe.domain(), probe.shape(), 1);
            Prediction::new(i64::from(p.expected), i64::from(p.upper_bound))
        };
        let need = Need::Bulk(budget::Bulk {
            per_request: Prediction::exact(0),
            per_item,
            min_batch: 1,
            max_batch: (asins.len() as u32).clamp(1, crate::pipeline::MAX_ASINS),
            weight: job.weight,
            not_before: i64::MIN,
            finishing: false,
            remaining: None,
        });
        let permit = self.acquire(job.id, job.name, need).await?;
        let n = (permit.items() as usize).clamp(1, asins.len());
        let req = build(&asins[..n])?;
        let resp = self.send(job, "recheck", permit, &req, pending).await?;
        let Ok(parsed) = resp.parse::<keepa::ProductResponse>() else {
            self.metrics.retry();
            return Ok(0);
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
        for p in &parsed.products {
            pending
                .products
                .push(crate::extract::product(p, self.domain, stage, now, share).row);
        }
        Ok(u64::from(found))
    }
}
