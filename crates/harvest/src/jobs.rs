//! The three jobs: backfill, refresh and re-check. Each is a loop over the
//! [`Shared`] pipeline; none does token arithmetic.
//!
//! Checkpoints (committed with the rows of the step that earned them):
//! - `backfill`: `{"page": next page, "done": bool, "walk": n}`. The page
//!   cursor moves only after every deal of the page is stored, updated or
//!   rejected; a restart re-reads the page and skips what the store knows.
//!   The feed is walked with the configured selection; a page that held
//!   fewer than 150 deal objects (read or not: one malformed deal does not
//!   end the feed), the 10 000-deal paging cap or `max_pages` ends it. The
//!   end is not permanent: the feed moves, so a run that starts on a
//!   finished walk starts walk `n + 1` from page 0 (known deals cost only
//!   their page). Walk 1 (`walk` absent) records its pages as job
//!   `backfill`, walk `n` as `backfill.n`.
//! - `refresh`: `{"watermark_ms": t}`, the newest `lastUpdate` (else
//!   `creationDate`) among deals handled. Each run reads the feed newest
//!   first (`sortType` 1) from page 0 down to the watermark (inclusive: deals
//!   sharing the watermark's minute are looked at again, for free), and
//!   moves it only after all of them are handled.

use std::time::Duration;

use budget::gate::GateError;
use keepa::request::MAX_DEAL_PAGE;
use serde_json::json;

use crate::error::{Halt, HarvestError};
use crate::extract::DealItem;
use crate::pipeline::{
    Claims, Job, Shared, Stage, TailBook, BACKFILL, RECHECK, REFRESH, REFRESH_PERIODIC,
};
use crate::store::{Batch, FeedPage, Known};

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
    let cp = sh.store.checkpoint(Job::Backfill.as_str()).await?;
    let field = |k: &str| cp.as_ref().and_then(|v| v.get(k));
    let last_walk = field("walk")
        .and_then(|v| v.as_u64())
        .unwrap_or(1)
        .clamp(1, u64::from(u32::MAX)) as u32;
    let finished = field("done").and_then(|v| v.as_bool()) == Some(true);
    let walk = if finished {
        tracing::info!(
            walk = last_walk + 1,
            "backfill: the last walk of the feed ended; walking it again (the feed moves)"
        );
        last_walk.saturating_add(1)
    } else {
        last_walk
    };
    // Every page below the checkpoint's is done (it is the lowest page not
    // done when it was written; a database from before `feed_pages` has
    // only this).
    let below = if finished {
        0
    } else {
        field("page")
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
            .min(u64::from(MAX_DEAL_PAGE) + 1) as u32
    };
    let pages_job = walk_job(walk);
    let max_pages = sh
        .cfg
        .backfill
        .max_pages
        .map_or(MAX_DEAL_PAGE + 1, |m| m)
        .min(MAX_DEAL_PAGE + 1)
        // Keepa pages through at most 10,000 deals.
        .min(10_000_u32.div_ceil(PAGE_SIZE as u32));
    let mut pending = Batch::default();
    loop {
        let feed = FeedWalk::new(below, max_pages, &sh.store.feed_pages(&pages_job).await?);
        let Some(first_open) = feed.open().next() else {
            pending.checkpoints.push((
                Job::Backfill.as_str().into(),
                checkpoint(feed.end, true, walk),
            ));
            sh.commit(&mut pending, 0, 0, 0).await?;
            return Ok(());
        };
        // The lowest open page no other process is reading.
        let mut page = None;
        for p in feed.open() {
            let name = page_claim(&pages_job, p);
            if sh.claims.try_claim(std::slice::from_ref(&name)).await?[0] {
                page = Some((p, name));
                break;
            }
        }
        let Some((page, claim)) = page else {
            // Every open page is another process's: look again after a
            // refill step (a page it abandons, by dying, comes free).
            tracing::debug!(first_open, "backfill: every open page is taken; waiting");
            sh.pause_until(sh.now() + 60_000).await?;
            continue;
        };
        let r = backfill_page(sh, page, &feed, &pages_job, &mut pending).await;
        sh.claims.release(std::slice::from_ref(&claim)).await?;
        let n = r?;
        let done = n < PAGE_SIZE;
        sh.metrics.backfill_page(done);
        tracing::info!(page, deals = n, done, "backfill: page done");
    }
}

/// Reads feed page `page`, pushes its deals through the pipeline, and
/// commits the page as finished (recorded under `pages_job`, the walk's
/// name); returns how many deal objects it held.
async fn backfill_page(
    sh: &Shared,
    page: u32,
    feed: &FeedWalk,
    pages_job: &str,
    pending: &mut Batch,
) -> Result<usize, Halt> {
    let sel = sh.cfg.selection.clone().with_page(page);
    let req = sel.build().map_err(|source| HarvestError::Invalid {
        job: Job::Backfill,
        stage: Stage::Feed,
        source,
    })?;
    let permit = sh.acquire_page(&BACKFILL).await?;
    let (deals, n) = sh.feed_page(&BACKFILL, permit, &req, pending).await?;
    sh.process(&BACKFILL, deals, pending).await?;
    pending.pages.push(FeedPage {
        job: pages_job.into(),
        page,
        deals: n.min(u32::MAX as usize) as u32,
    });
    // The checkpoint (for `status`, and databases without `feed_pages`):
    // the lowest page open as far as this process knows, once this one is
    // done; `done` is written when no page is open.
    let next = feed.open().find(|p| *p != page).unwrap_or(feed.end);
    let walk = walk_number(pages_job);
    pending
        .checkpoints
        .push((Job::Backfill.as_str().into(), checkpoint(next, false, walk)));
    sh.commit(pending, 0, 0, 0).await?;
    Ok(n)
}

/// The backfill's checkpoint; `walk` is left out for the first walk (the
/// shape databases from before walks hold).
fn checkpoint(page: u32, done: bool, walk: u32) -> serde_json::Value {
    if walk <= 1 {
        json!({ "page": page, "done": done })
    } else {
        json!({ "page": page, "done": done, "walk": walk })
    }
}

/// The job name walk `walk` records its feed pages under.
fn walk_job(walk: u32) -> String {
    if walk <= 1 {
        Job::Backfill.as_str().to_string()
    } else {
        format!("{}.{walk}", Job::Backfill.as_str())
    }
}

/// The walk a [`walk_job`] name stands for.
fn walk_number(pages_job: &str) -> u32 {
    pages_job
        .rsplit_once('.')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(1)
}

/// The claim name of a feed page of a walk.
fn page_claim(pages_job: &str, page: u32) -> String {
    format!("page:{pages_job}:{page}")
}

/// Which pages of the feed are still to read, from the pages finished.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FeedWalk {
    /// Pages below this are done.
    below: u32,
    /// Pages finished at or above `below`.
    done: std::collections::BTreeSet<u32>,
    /// One past the last page to read: the first short page + 1 (the feed
    /// ends there), or the page limit.
    end: u32,
}

impl FeedWalk {
    fn new(below: u32, limit: u32, finished: &[(u32, u32)]) -> Self {
        let short = finished
            .iter()
            .filter(|(_, deals)| (*deals as usize) < PAGE_SIZE)
            .map(|(p, _)| p + 1)
            .min();
        let end = short.map_or(limit, |s| s.min(limit));
        FeedWalk {
            below: below.min(end),
            done: finished.iter().map(|(p, _)| *p).collect(),
            end,
        }
    }

    /// Pages still to read, lowest first.
    fn open(&self) -> impl Iterator<Item = u32> + '_ {
        (self.below..self.end).filter(|p| !self.done.contains(p))
    }
}

/// The refresh: a periodic run reading the newest deals down to the watermark.
pub(crate) async fn refresh(sh: Shared) -> Result<(), HarvestError> {
    let r = refresh_loop(&sh).await;
    // Periods that begin while the run drains are not due.
    sh.metrics.refresh_ended(sh.now());
    finish(r)
}

async fn refresh_loop(sh: &Shared) -> Result<(), Halt> {
    let period = ms(sh.cfg.refresh.period).max(1_000);
    let max_delay = ms(sh.cfg.refresh.max_delay);
    // One refresh per database: of several processes, one runs it and the
    // others stand by, taking over within a period if it ends or dies.
    let claim = vec![format!("job:{}", Job::Refresh.as_str())];
    let mut standing_by = false;
    while !sh.claims.try_claim(&claim).await?[0] {
        if !standing_by {
            tracing::info!("refresh: another process runs it; standing by");
            standing_by = true;
        }
        sh.pause_until(sh.now() + period).await?;
    }
    if standing_by {
        tracing::info!("refresh: taking over");
    }
    let mut next_due = sh.now();
    sh.register_refresh(next_due, period, max_delay);
    // Due and late are counted per period that began (metrics), not per
    // run: an overrunning run leaves periods without a run of their own.
    sh.metrics.refresh_schedule(next_due, period, max_delay);
    let cp = sh.store.checkpoint(Job::Refresh.as_str()).await?;
    let mut watermark = cp
        .as_ref()
        .and_then(|v| v.get("watermark_ms"))
        .and_then(|v| v.as_i64());
    // Without a watermark, a backfill still to come covers today's feed:
    // the first run only notes where the newest deal is.
    let backfill_pending = sh.cfg.backfill.enabled
        && sh
            .store
            .checkpoint(Job::Backfill.as_str())
            .await?
            .and_then(|v| v.get("done").and_then(|d| d.as_bool()))
            != Some(true);
    let mut pending = Batch::default();
    let mut tail = TailBook::default();
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
                sh.metrics.refresh_run(now, true);
                continue;
            }
            Err(source) => {
                return Err(Halt::Failed(HarvestError::Budget {
                    job: Job::Refresh,
                    source,
                }))
            }
        };
        sh.metrics.refresh_run(now, false);
        tail.run_started(sh);
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
                job: Job::Refresh,
                stage: Stage::Feed,
                source,
            })?;
            let p = match permit.take() {
                Some(p) => p,
                None => sh.acquire_page(&REFRESH).await?,
            };
            let (deals, n) = sh.feed_page(&REFRESH, p, &req, &mut pending).await?;
            let read = deals.len();
            let fresh: Vec<DealItem> = deals
                .into_iter()
                .filter(|d| watermark.is_none_or(|w| d.time_ms >= w))
                .collect();
            let all_new = fresh.len() == read;
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
            pending.checkpoints.push((
                Job::Refresh.as_str().into(),
                json!({ "watermark_ms": watermark }),
            ));
        }
        sh.commit(&mut pending, 0, 0, 0).await?;
        tail.run_ended(sh);
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
        // Claimed first (another job or process may be fetching one), then
        // looked at again: one refreshed since the query is not stale.
        let names: Vec<String> = stale.iter().map(|a| Claims::asin(sh.domain, a)).collect();
        let got = sh.claims.try_claim(&names).await?;
        let mine: Vec<String> = stale
            .iter()
            .zip(&got)
            .filter(|(_, g)| **g)
            .map(|(a, _)| a.clone())
            .collect();
        let held: Vec<String> = names
            .into_iter()
            .zip(&got)
            .filter(|(_, g)| **g)
            .map(|(n, _)| n)
            .collect();
        let known = sh.store.known(sh.domain, &mine, now).await;
        let stale: Vec<String> = match &known {
            Ok(k) => mine
                .into_iter()
                .filter(|a| match k.get(a) {
                    Some(Known::Stored { fetched_at_ms, .. }) => *fetched_at_ms < now - older,
                    _ => false,
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        if stale.is_empty() {
            sh.claims.release(&held).await?;
            known?;
            // Nothing is stale: look again after a tenth of the age (server time).
            sh.pause_until(now + (older / 10).max(60_000)).await?;
            continue;
        }
        let r = sh.refetch(&RECHECK, &stale, &mut pending).await;
        let r = match r {
            Ok(n) => sh.commit(&mut pending, 0, 0, n).await.map_err(Halt::from),
            Err(e) => Err(e),
        };
        sh.claims.release(&held).await?;
        r?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(w: &FeedWalk) -> Vec<u32> {
        w.open().collect()
    }

    #[test]
    fn a_fresh_walk_reads_every_page_up_to_the_limit() {
        let w = FeedWalk::new(0, 4, &[]);
        assert_eq!(open(&w), vec![0, 1, 2, 3]);
        assert_eq!(w.end, 4);
    }

    #[test]
    fn pages_finished_by_other_processes_are_skipped_out_of_order() {
        let w = FeedWalk::new(0, 6, &[(1, 150), (4, 150)]);
        assert_eq!(open(&w), vec![0, 2, 3, 5]);
    }

    #[test]
    fn a_short_page_ends_the_feed_even_when_found_out_of_order() {
        // Another process read page 3 and found 20 deals: nothing after it.
        let w = FeedWalk::new(0, 67, &[(3, 20), (5, 0)]);
        assert_eq!(open(&w), vec![0, 1, 2]);
        assert_eq!(w.end, 4);
        let done = FeedWalk::new(0, 67, &[(0, 150), (1, 150), (2, 150), (3, 20)]);
        assert_eq!(open(&done), Vec::<u32>::new());
    }

    #[test]
    fn each_walk_of_the_feed_has_its_own_pages_and_claims() {
        assert_eq!(walk_job(1), "backfill");
        assert_eq!(walk_job(3), "backfill.3");
        for w in [1, 2, 17] {
            assert_eq!(walk_number(&walk_job(w)), w);
        }
        assert_ne!(page_claim(&walk_job(1), 0), page_claim(&walk_job(2), 0));
        // The first walk keeps the checkpoint shape older databases hold.
        assert_eq!(checkpoint(4, true, 1), json!({"page": 4, "done": true}));
        assert_eq!(
            checkpoint(0, false, 2),
            json!({"page": 0, "done": false, "walk": 2})
        );
    }

    #[test]
    fn an_old_checkpoint_cursor_counts_as_pages_done() {
        // A database from before `feed_pages`: `{"page": 3}` alone.
        let w = FeedWalk::new(3, 5, &[]);
        assert_eq!(open(&w), vec![3, 4]);
        // A cursor past the end is clamped.
        let w = FeedWalk::new(9, 5, &[]);
        assert_eq!(open(&w), Vec::<u32>::new());
    }
}
