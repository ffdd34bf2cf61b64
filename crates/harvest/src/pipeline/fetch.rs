//! Fetching through [`Shared::send`]: a feed page, and the one product
//! fetch the stages and the re-check share.

use budget::Prediction;
use keepa::model::{DealResponse, ProductResponse};
use keepa::request::{ProductRequest, Request};
use keepa::{Domain, Response, ValidationError};

use super::{Attempts, HarvestPermit, JobSpec, Retry, Shared, Stage, MAX_ASINS};
use crate::config::MaxAge;
use crate::error::{Halt, HarvestError};
use crate::extract::{self, DealItem, ProductItem};
use crate::store::Batch;

/// What a product request asks Keepa for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProductShape {
    /// The stage the products count as fetched at (`Stats` or `Offers`).
    pub(crate) stage: Stage,
    /// Days of stats.
    pub(crate) stats_days: u32,
    /// Offers to ask for, if any.
    pub(crate) offers: Option<u32>,
    /// Keepa's `update` (from the stage's `max_age`; `None`: not sent).
    pub(crate) update: Option<i64>,
}

impl ProductShape {
    /// The request for `asins` in `domain`.
    fn request(&self, domain: Domain, asins: &[&str]) -> Result<Request, ValidationError> {
        let mut r = ProductRequest::asins(domain, asins.iter().copied()).stats(self.stats_days);
        if let Some(n) = self.offers {
            r = r.offers(n);
        }
        if let Some(u) = self.update {
            r = r.update(u);
        }
        r.build()
    }
}

/// The products one request brought.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// How many ASINs from the front of the list the request asked for.
    pub(crate) asked: usize,
    /// The products Keepa returned, read into rows and rule fields, each
    /// charged an equal share of what the request cost.
    pub(crate) items: Vec<ProductItem>,
    /// Server time the answer was read at.
    pub(crate) at_ms: i64,
    /// ASINs Keepa returned with `offersSuccessful: false` to an offers
    /// request: a collection that failed, left out of `items` (not judged,
    /// not stored).
    pub(crate) offers_failed: Vec<String>,
}

impl Shared {
    /// The shape of the product request of `stage` (`Stats` or `Offers`)
    /// in the configured pipeline, with the stage's `max_age`; the offers
    /// stage asks for the stats stage's days too (180 without a stats
    /// stage).
    pub(crate) fn product_shape(&self, stage: Stage) -> ProductShape {
        let pipe = &self.cfg.pipeline;
        let stats_days = pipe.product_stats.as_ref().map_or(180, |s| s.stats_days);
        let (offers, max_age) = match stage {
            Stage::Offers => pipe
                .product_offers
                .as_ref()
                .map_or((None, None), |o| (Some(u32::from(o.offers)), o.max_age)),
            _ => (None, pipe.product_stats.as_ref().and_then(|s| s.max_age)),
        };
        ProductShape {
            stage,
            stats_days,
            offers,
            update: max_age.map(MaxAge::update),
        }
    }

    /// The pipeline's deepest product shape: offers if it has an offers
    /// stage, else stats.
    pub(crate) fn deepest_shape(&self) -> ProductShape {
        if self.cfg.pipeline.product_offers.is_some() {
            self.product_shape(Stage::Offers)
        } else {
            self.product_shape(Stage::Stats)
        }
    }

    /// One product request for the front of `asins`, as many as the budget
    /// grants (the permit is sized by the cost model's per-item
    /// prediction), sent as a `stage` request of `job`: the answer teaches
    /// the cost model (`tokensConsumed`; an answer without it is charged at
    /// the prediction and teaches nothing), and each product found carries
    /// an equal share of the charge. A body that does not parse, or that
    /// lacks `products`, is a failed call, retried within the retry budget
    /// like any other; so is an answer with none of the ASINs asked for,
    /// which is taken as it is only once that budget is spent. With
    /// `keep_history`, each row carries the product's `csv` histories.
    pub(crate) async fn fetch_products(
        &self,
        job: &JobSpec,
        stage: Stage,
        shape: ProductShape,
        asins: &[&str],
        pending: &mut Batch,
    ) -> Result<Fetched, Halt> {
        let Some(first) = asins.first() else {
            return Ok(Fetched {
                asked: 0,
                items: Vec::new(),
                at_ms: self.now(),
                offers_failed: Vec::new(),
            });
        };
        let build = |list: &[&str]| {
            shape.request(self.cfg.domain, list).map_err(|source| {
                Halt::Failed(HarvestError::Invalid {
                    job: job.name,
                    stage: shape.stage,
                    source,
                })
            })
        };
        let probe = build(&[first])?;
        let mut attempts = Attempts::new(self.retry, job.name, stage);
        let (asked, req, resp, parsed) = loop {
            let per_item = {
                let p = self
                    .cost_lock()
                    .predict_shape(probe.domain(), probe.shape(), 1);
                Prediction::new(i64::from(p.expected), i64::from(p.upper_bound))
            };
            let max = (asins.len() as u32).min(MAX_ASINS);
            let need = Self::bulk(job, Prediction::exact(0), per_item, max);
            let permit = self.acquire(job.id, job.name, need).await?;
            let asked = (permit.items() as usize).clamp(1, asins.len());
            let req = build(&asins[..asked])?;
            let (resp, parsed) = self
                .send(job, stage, permit, &req, "products", pending, |r| {
                    r.parse::<ProductResponse>()
                })
                .await?;
            if !parsed.products.is_empty() {
                break (asked, req, resp, parsed);
            }
            let why = format!("none of the {asked} ASINs asked for came back");
            let mut stop = self.stop.clone();
            match attempts
                .unproductive(&why, self.gate.clock(), &self.metrics, &mut stop)
                .await
            {
                Some(Retry::Again) => continue,
                Some(Retry::Stopped) => return Err(Halt::Stopped),
                None => break (asked, req, resp, parsed),
            }
        };
        let found = parsed.products.len() as u32;
        let charge = match resp.envelope.tokens_consumed {
            Some(consumed) => {
                self.cost_lock().observe(&req, found, consumed);
                consumed
            }
            // Charged at the prediction (the budget did the same).
            None => i64::from(self.cost_lock().predict(&req).expected),
        };
        let share = if found > 0 {
            charge / i64::from(found)
        } else {
            0
        };
        let at_ms = self.now();
        let (failed, whole): (Vec<_>, Vec<_>) = parsed
            .products
            .iter()
            .partition(|p| shape.offers.is_some() && p.offers_successful == Some(false));
        let items = whole
            .into_iter()
            .map(|p| {
                let mut item = extract::product(p, self.domain, shape.stage.as_str(), at_ms, share);
                if self.cfg.keep_history && !p.csv.is_empty() {
                    // The parsed integers written back: what Keepa sent.
                    item.row.history_csv = serde_json::to_string(&p.csv).ok();
                }
                item
            })
            .collect();
        Ok(Fetched {
            asked,
            items,
            at_ms,
            offers_failed: failed.into_iter().map(|p| p.asin.clone()).collect(),
        })
    }

    /// Re-fetches the front of `asins` (as many as the budget grants) with
    /// the pipeline's deepest product shape, so the stored row stays
    /// complete, and the re-check's own `max_age`; their rows go into
    /// `pending`. Returns the products fetched.
    pub(crate) async fn refetch(
        &self,
        job: &JobSpec,
        asins: &[String],
        pending: &mut Batch,
    ) -> Result<u64, Halt> {
        let list: Vec<&str> = asins.iter().map(String::as_str).collect();
        let shape = ProductShape {
            update: self.cfg.recheck.max_age.map(MaxAge::update),
            ..self.deepest_shape()
        };
        let fetched = self
            .fetch_products(job, Stage::Recheck, shape, &list, pending)
            .await?;
        let found = fetched.items.len() as u64;
        pending
            .products
            .extend(fetched.items.into_iter().map(|i| i.row));
        Ok(found)
    }

    /// Sends one feed page and reads it into deals (a body that does not
    /// parse, or that lacks `deals`, is retried like any failed call).
    /// Returns the deals read and how many deal objects the page held: a
    /// deal that cannot be read (no ASIN) is left out of the first, never
    /// of the second, which alone says where the feed ends.
    pub(crate) async fn feed_page(
        &self,
        job: &JobSpec,
        permit: HarvestPermit,
        req: &Request,
        pending: &mut Batch,
    ) -> Result<(Vec<DealItem>, usize), Halt> {
        let (resp, page) = self
            .send(job, Stage::Feed, permit, req, "deals", pending, |r| {
                r.parse::<DealResponse>()
            })
            .await?;
        let now = self.now();
        let pt = price_type(req);
        let raw = if self.cfg.keep_raw_deals {
            raw_deals(&resp)
        } else {
            Vec::new()
        };
        let deals: Vec<DealItem> = page
            .deals
            .dr
            .iter()
            .enumerate()
            .filter_map(|(i, d)| {
                let mut item = extract::deal(d, self.domain, pt, now)?;
                item.row.raw_json = raw.get(i).cloned().flatten();
                Some(item)
            })
            .collect();
        let held = page.deals.dr.len();
        if deals.len() < held {
            tracing::warn!(
                job = job.name.as_str(),
                unreadable = held - deals.len(),
                "feed page: deals without a usable ASIN left out"
            );
        }
        Ok((deals, held))
    }
}

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

/// The feed's price type, from the request body.
fn price_type(req: &Request) -> u8 {
    req.body()
        .and_then(|b| b.get("priceTypes"))
        .and_then(|v| v.get(0))
        .and_then(|v| v.as_u64())
        .and_then(|v| u8::try_from(v).ok())
        .unwrap_or(0)
}
