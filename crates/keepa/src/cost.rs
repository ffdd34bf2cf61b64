//! Cost prediction: what a request will cost, learned online from `tokensConsumed`.
//!
//! The rules (`docs/KEEPA_API.md` §4), per request:
//!
//! | endpoint | cost |
//! |---|---|
//! | `/token` | 0 |
//! | `/deal` | 5 |
//! | `/product` | 1 per product found; with `offers`, 6 per page of 10 offers found instead of the 1, or a flat 5 when the offers come from Keepa's cache (below); `update=0` +1; `rating` up to +1; `buybox` +2 (not with offers); `stock` +2 |
//! | `/seller` | 1 per seller; `storefront` +9 per seller |
//! | `/query` | 10 + 1 per 100 ASINs |
//! | `/bestsellers` | 50 |
//! | `/category` | 1 |
//!
//! Offers and `update` (`docs/KEEPA_API.md` §7): with `update=N` (absent:
//! 1), a product whose offers Keepa collected within the last N hours is not
//! collected again and its offers cost a flat [`CACHED_OFFERS_COST`],
//! whatever the pages; `update=-1` never collects, so the offers always cost
//! the flat 5; `update=0` always collects (+1 when Keepa's data is under an
//! hour old). So the offers part of a product costs between
//! [`offers_part_bounds`]: 5 (or 6 with `update=0`) and 6 per page asked
//! for (or exactly 5 with `update=-1`).
//!
//! Only offers make the cost uncertain: how many pages of offers a product
//! really has, and whether Keepa's offers were fresh, is known after the
//! call. [`CostModel`] keeps, per domain and [`RequestShape`] (`update`
//! included), an estimate of the offers part per product, in pages of 6
//! tokens (a cached product counts 5/6 of a page), starts from a prior and
//! moves it towards what [`CostModel::observe`] reports, weighting each
//! call by the products it found. Early on it is the running mean of
//! everything seen; after a window of products it becomes an exponentially
//! weighted mean, so it follows an account whose catalogue changes.
//!
//! Guarantees: `expected <= upper_bound` always; `upper_bound` is what the
//! rules allow at most if every requested item is found; the estimate of
//! pages per product stays within [`offers_part_bounds`] ÷ 6: `[1,
//! ceil(offers / 10)]` with `update=0`, from 5/6 otherwise, exactly 5/6
//! with `update=-1`.
//!
//! ```
//! use keepa::cost::CostModel;
//! use keepa::request::ProductRequest;
//! use keepa::Domain;
//!
//! let mut model = CostModel::new();
//! let req = ProductRequest::asins(Domain::Com, ["B0D8W1YVBX"]).offers(40).build().unwrap();
//! assert_eq!(model.predict(&req).upper_bound, 24); // 4 pages × 6
//! // The product had 18 offers: 2 pages, 12 tokens.
//! model.observe(&req, 1, 12);
//! assert!(model.predict(&req).expected <= 13);
//! ```

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::domain::Domain;
use crate::request::{Endpoint, Request, RequestShape};

/// Tokens per page of 10 offers, per product.
pub const TOKENS_PER_OFFER_PAGE: u32 = 6;
/// The offers part of a product whose offers Keepa serves without
/// collecting them (fresher than `update` hours, or `update=-1`).
pub const CACHED_OFFERS_COST: u32 = 5;
/// A `/deal` page.
pub const DEAL_COST: u32 = 5;
/// A `/query` call's fixed part.
pub const QUERY_BASE_COST: u32 = 10;
/// A `/bestsellers` call (0 if there is no list).
pub const BESTSELLERS_COST: u32 = 50;
/// A `/category` call.
pub const CATEGORY_COST: u32 = 1;
/// Extra per seller for `storefront=1`.
pub const STOREFRONT_COST: u32 = 9;

/// What a request is predicted to cost, in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostPrediction {
    /// Best estimate (rounded up).
    pub expected: u32,
    /// The most the rules allow if every requested item is found.
    pub upper_bound: u32,
}

/// How fast [`CostModel`] learns.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CostModelConfig {
    /// Offer pages per product assumed before any observation (clamped to
    /// the pages requested). Field reports range from 1 (a 15-ASIN
    /// `offers=20` call cost 90) to 2 (books at ~12 tokens each).
    pub prior_pages: f64,
    /// How many products' worth of evidence the prior counts as.
    pub prior_weight: f64,
    /// Products of evidence after which older observations fade
    /// (the exponential window).
    pub window: f64,
}

impl Default for CostModelConfig {
    fn default() -> Self {
        CostModelConfig {
            prior_pages: 1.5,
            prior_weight: 3.0,
            window: 400.0,
        }
    }
}

/// The learned estimate for one `(domain, shape)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PageEstimate {
    /// The offers part per product found, in pages of 6 tokens (a product
    /// served from Keepa's cache counts 5/6 of a page).
    pub pages: f64,
    /// Evidence behind it, in products (prior included, capped at the window).
    pub weight: f64,
    /// Calls observed.
    pub observations: u64,
}

/// Predicts request costs and learns offer pages per product from what
/// Keepa charged. Not synchronised: wrap it in a lock to share it.
#[derive(Debug, Clone, Default)]
pub struct CostModel {
    config: CostModelConfig,
    learned: HashMap<(Option<Domain>, RequestShape), PageEstimate>,
}

/// Extra tokens per product for the flags other than offers.
fn product_extras(shape: &RequestShape) -> u32 {
    let mut extra = 0;
    if shape.force_update {
        extra += 1;
    }
    if shape.rating {
        extra += 1;
    }
    if shape.buybox && shape.offer_pages == 0 {
        extra += 2;
    }
    if shape.stock {
        extra += 2;
    }
    extra
}

/// What one product found costs by the rules, given how many offers it
/// really has. A product with offers requested is charged at least one page.
///
/// ```
/// use keepa::cost::product_cost;
/// use keepa::request::ProductRequest;
/// use keepa::Domain;
/// let shape = ProductRequest::asins(Domain::Com, ["B0D8W1YVBX"]).offers(40).build().unwrap().shape();
/// assert_eq!(product_cost(&shape, 18), 12);
/// ```
pub fn product_cost(shape: &RequestShape, offers_found: u32) -> u32 {
    let base = if shape.offer_pages == 0 {
        1
    } else {
        offers_found
            .div_ceil(10)
            .clamp(1, shape.offer_pages)
            .saturating_mul(TOKENS_PER_OFFER_PAGE)
    };
    base + product_extras(shape)
}

/// The least and the most the offers part of one product found can cost
/// for this shape, in tokens: `(5, 6 × pages)`, `(6, 6 × pages)` with
/// `update=0`, `(5, 5)` with `update=-1`; `(0, 0)` without offers.
///
/// ```
/// use keepa::cost::offers_part_bounds;
/// use keepa::request::ProductRequest;
/// use keepa::Domain;
/// let shape = |u: i64| ProductRequest::asins(Domain::Com, ["B0D8W1YVBX"]).offers(40).update(u).build().unwrap().shape();
/// assert_eq!(offers_part_bounds(&shape(24)), (5, 24));
/// assert_eq!(offers_part_bounds(&shape(0)), (6, 24));
/// assert_eq!(offers_part_bounds(&shape(-1)), (5, 5));
/// ```
pub fn offers_part_bounds(shape: &RequestShape) -> (u32, u32) {
    if shape.offer_pages == 0 {
        return (0, 0);
    }
    let collected = shape.offer_pages.saturating_mul(TOKENS_PER_OFFER_PAGE);
    match shape.update {
        Some(0) => (TOKENS_PER_OFFER_PAGE, collected),
        Some(u) if u < 0 => (CACHED_OFFERS_COST, CACHED_OFFERS_COST),
        _ => (CACHED_OFFERS_COST, collected.max(CACHED_OFFERS_COST)),
    }
}

/// What one product found costs when Keepa serves its offers from its
/// cache: the flat [`CACHED_OFFERS_COST`] plus the other flags (1 plus
/// the flags without offers).
///
/// ```
/// use keepa::cost::cached_product_cost;
/// use keepa::request::ProductRequest;
/// use keepa::Domain;
/// let shape = ProductRequest::asins(Domain::Com, ["B0D8W1YVBX"]).offers(40).update(24).build().unwrap().shape();
/// assert_eq!(cached_product_cost(&shape), 5);
/// ```
pub fn cached_product_cost(shape: &RequestShape) -> u32 {
    let base = if shape.offer_pages == 0 {
        1
    } else {
        CACHED_OFFERS_COST
    };
    base + product_extras(shape)
}

impl CostModel {
    /// A model with the default prior and window.
    pub fn new() -> Self {
        CostModel::default()
    }

    /// A model with another prior or window.
    pub fn with_config(config: CostModelConfig) -> Self {
        CostModel {
            config,
            learned: HashMap::new(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> CostModelConfig {
        self.config
    }

    /// Expected and maximal cost of `request`.
    pub fn predict(&self, request: &Request) -> CostPrediction {
        self.predict_shape(request.domain(), request.shape(), request.items())
    }

    /// Expected and maximal cost of a request of this shape asking for
    /// `items` items (products, sellers, category ids, query page size).
    pub fn predict_shape(
        &self,
        domain: Option<Domain>,
        shape: RequestShape,
        items: u32,
    ) -> CostPrediction {
        let fixed = |c: u32| CostPrediction {
            expected: c,
            upper_bound: c,
        };
        match shape.endpoint {
            Endpoint::Token => fixed(0),
            Endpoint::Deal => fixed(DEAL_COST),
            Endpoint::Bestsellers => fixed(BESTSELLERS_COST),
            Endpoint::Category => fixed(CATEGORY_COST),
            Endpoint::Query => fixed(QUERY_BASE_COST.saturating_add(items.div_ceil(100))),
            Endpoint::Seller => {
                let per = 1 + if shape.storefront { STOREFRONT_COST } else { 0 };
                fixed(items.saturating_mul(per))
            }
            Endpoint::Product => {
                let extras = product_extras(&shape);
                if shape.offer_pages == 0 {
                    return fixed(items.saturating_mul(1 + extras));
                }
                let upper_per = offers_part_bounds(&shape).1 + extras;
                let pages = self.expected_offer_pages(domain, shape);
                let expected_per = pages * f64::from(TOKENS_PER_OFFER_PAGE) + f64::from(extras);
                let upper_bound = items.saturating_mul(upper_per);
                // Round to 1e-6 first so 15 × 6.000000001 is 90, not 91.
                let raw = (f64::from(items) * expected_per * 1e6).round() / 1e6;
                let expected = (raw.ceil() as u32).min(upper_bound);
                CostPrediction {
                    expected,
                    upper_bound,
                }
            }
        }
    }

    /// The current estimate of the offers part per product found, in pages
    /// of 6 tokens, within [`offers_part_bounds`] ÷ 6; 0 for shapes without
    /// offers.
    pub fn expected_offer_pages(&self, domain: Option<Domain>, shape: RequestShape) -> f64 {
        if shape.offer_pages == 0 {
            return 0.0;
        }
        let (min, max) = page_bounds(&shape);
        self.learned
            .get(&(domain, shape))
            .map_or(self.config.prior_pages, |e| e.pages)
            .clamp(min, max)
    }

    /// What has been learned for `(domain, shape)`, if anything.
    pub fn estimate(&self, domain: Option<Domain>, shape: RequestShape) -> Option<PageEstimate> {
        self.learned.get(&(domain, shape)).copied()
    }

    /// Feeds back what Keepa charged (`tokensConsumed`) for `request`, which
    /// found `items_found` items. Only product calls with offers carry
    /// anything to learn; other calls, calls that found nothing and negative
    /// charges are ignored.
    pub fn observe(&mut self, request: &Request, items_found: u32, tokens_consumed: i64) {
        let shape = request.shape();
        if shape.endpoint != Endpoint::Product
            || shape.offer_pages == 0
            || items_found == 0
            || tokens_consumed < 0
        {
            return;
        }
        let (min, max) = page_bounds(&shape);
        let per_product = tokens_consumed as f64 / f64::from(items_found);
        let observed = ((per_product - f64::from(product_extras(&shape)))
            / f64::from(TOKENS_PER_OFFER_PAGE))
        .clamp(min, max);
        let config = self.config;
        let entry = self
            .learned
            .entry((request.domain(), shape))
            .or_insert(PageEstimate {
                pages: config.prior_pages.clamp(min, max),
                weight: config.prior_weight.max(0.0),
                observations: 0,
            });
        let k = f64::from(items_found);
        let weight = (entry.weight + k).min(config.window.max(k));
        entry.pages = (entry.pages + (k / weight) * (observed - entry.pages)).clamp(min, max);
        entry.weight = weight;
        entry.observations += 1;
    }
}

/// [`offers_part_bounds`] in pages of 6 tokens.
fn page_bounds(shape: &RequestShape) -> (f64, f64) {
    let (min, max) = offers_part_bounds(shape);
    let page = f64::from(TOKENS_PER_OFFER_PAGE);
    (f64::from(min) / page, f64::from(max) / page)
}
