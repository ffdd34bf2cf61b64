//! The plain rows a [`Batch`](super::Batch) carries and the answers the
//! store gives. The store never parses Keepa JSON: jobs fill these structs.
//!
//! Times are Unix milliseconds. Prices are Keepa's integer cents (or the
//! marketplace's smallest unit); `None` means "Keepa had no value".

use std::collections::BTreeMap;

use serde::Serialize;

/// Everything one job step writes, committed in one transaction by
/// [`Store::commit`](super::Store::commit): all of it or none of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Batch {
    /// Deals that passed the whole pipeline (upserted by `(domain, asin)`).
    pub deals: Vec<DealRow>,
    /// Product details (upserted by `(domain, asin)`; every column replaced).
    pub products: Vec<ProductRow>,
    /// Deliberate rejections (upserted by `(domain, asin)`).
    pub rejections: Vec<RejectionRow>,
    /// The request ledger: one row per Keepa call (a replayed row is stored once).
    pub requests: Vec<RequestRow>,
    /// Job checkpoints `(job, value)`, replacing the job's previous value.
    pub checkpoints: Vec<(String, serde_json::Value)>,
    /// Feed pages finished with this batch (a page already recorded stays as it was).
    pub pages: Vec<FeedPage>,
    /// Deals of this batch that matched an `[[alert]]`: the commit turns
    /// each into an outbox row when the deal is new or its price dropped.
    pub alerts: Vec<AlertMatch>,
}

/// A deal of the batch that matched an alert's rules. Whether it becomes
/// an alert (and of which kind) is decided in the commit, against what the
/// deals table held before ([`Store::commit`](super::Store::commit)).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AlertMatch {
    /// The alert's name.
    pub alert: String,
    /// Keepa domain id of the deal.
    pub domain: u8,
    /// The deal's ASIN (a deal of the same batch).
    pub asin: String,
    /// The events the alert fires on.
    pub on: Vec<crate::config::AlertKind>,
    /// The alert object (a JSON object; the commit adds `kind`, `version`,
    /// `key` and, for a drop, `previous_price`). Never the key.
    pub payload: serde_json::Value,
}

/// What a [`Store::commit`](super::Store::commit) did beyond its rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Committed {
    /// Outbox rows written.
    pub alerts_queued: u64,
    /// Alerts already in the outbox for the same deal and version, not
    /// written again.
    pub alerts_deduplicated: u64,
}

/// A feed page a job finished: every deal on it stored, updated or rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FeedPage {
    /// The job walking the feed (`backfill`).
    pub job: String,
    /// The page number (0-based).
    pub page: u32,
    /// Deals the page held (fewer than a full page: the feed ends there).
    pub deals: u32,
}

impl Batch {
    /// True when the batch holds nothing to write.
    pub fn is_empty(&self) -> bool {
        self.deals.is_empty()
            && self.products.is_empty()
            && self.rejections.is_empty()
            && self.requests.is_empty()
            && self.checkpoints.is_empty()
            && self.pages.is_empty()
            && self.alerts.is_empty()
    }
}

/// A deal from the feed that passed the whole pipeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DealRow {
    /// The ASIN (must not be empty).
    pub asin: String,
    /// Keepa domain id (1 = .com, …).
    pub domain: u8,
    /// Product title as the feed gave it.
    pub title: Option<String>,
    /// Root category id.
    pub root_category: Option<i64>,
    /// The price type the feed was queried for (0 Amazon, 1 New, 2 Used, …).
    pub price_type: u8,
    /// Current Amazon price.
    pub current_amazon: Option<i64>,
    /// Current lowest New price.
    pub current_new: Option<i64>,
    /// Current lowest Used price.
    pub current_used: Option<i64>,
    /// Current Buy Box price.
    pub current_buy_box: Option<i64>,
    /// Current sales rank.
    pub sales_rank: Option<i64>,
    /// Percent change over a day, for the feed's price type.
    pub delta_percent_day: Option<i64>,
    /// Percent change over a week, for the feed's price type.
    pub delta_percent_week: Option<i64>,
    /// Percent change over a month, for the feed's price type.
    pub delta_percent_month: Option<i64>,
    /// Percent change over 90 days, for the feed's price type.
    pub delta_percent_quarter: Option<i64>,
    /// Absolute drop over a day (average − current, cents), for the feed's
    /// price type: positive means the price fell.
    pub delta_day: Option<i64>,
    /// Absolute drop over a week, for the feed's price type.
    pub delta_week: Option<i64>,
    /// Absolute drop over a month, for the feed's price type.
    pub delta_month: Option<i64>,
    /// Absolute drop over 90 days, for the feed's price type.
    pub delta_quarter: Option<i64>,
    /// When Keepa created the deal.
    pub creation_date_ms: Option<i64>,
    /// When Keepa last updated the deal.
    pub last_update_ms: Option<i64>,
    /// When we saw it: `first_seen_ms` keeps the first value on upsert,
    /// `last_seen_ms` takes the newest.
    pub seen_at_ms: i64,
    /// The deal object exactly as Keepa sent it (JSON text), when the run
    /// keeps it (`keep_raw_deals`); the store keeps it opaque and does not
    /// export it. Replaced, like every field, by a newer sighting.
    pub raw_json: Option<String>,
}

/// A product's details, as fetched at `stage`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProductRow {
    /// The ASIN (must not be empty).
    pub asin: String,
    /// Keepa domain id.
    pub domain: u8,
    /// Product title.
    pub title: Option<String>,
    /// Current Amazon price.
    pub current_amazon: Option<i64>,
    /// Current lowest New price.
    pub current_new: Option<i64>,
    /// Current lowest Used price.
    pub current_used: Option<i64>,
    /// Current Buy Box price.
    pub current_buy_box: Option<i64>,
    /// 30-day average Amazon price.
    pub avg30_amazon: Option<i64>,
    /// 30-day average New price.
    pub avg30_new: Option<i64>,
    /// 30-day average Used price.
    pub avg30_used: Option<i64>,
    /// 30-day average Buy Box price.
    pub avg30_buy_box: Option<i64>,
    /// 90-day average Amazon price.
    pub avg90_amazon: Option<i64>,
    /// 90-day average New price.
    pub avg90_new: Option<i64>,
    /// 90-day average Used price.
    pub avg90_used: Option<i64>,
    /// 90-day average Buy Box price.
    pub avg90_buy_box: Option<i64>,
    /// 180-day average Amazon price.
    pub avg180_amazon: Option<i64>,
    /// 180-day average New price.
    pub avg180_new: Option<i64>,
    /// 180-day average Used price.
    pub avg180_used: Option<i64>,
    /// 180-day average Buy Box price.
    pub avg180_buy_box: Option<i64>,
    /// Current sales rank.
    pub sales_rank: Option<i64>,
    /// 90-day average sales rank.
    pub sales_rank_avg90: Option<i64>,
    /// Sales-rank drops in the last 30 days.
    pub sales_rank_drops30: Option<i64>,
    /// Sales-rank drops in the last 90 days.
    pub sales_rank_drops90: Option<i64>,
    /// Sales-rank drops in the last 180 days.
    pub sales_rank_drops180: Option<i64>,
    /// Sales-rank drops in the last 365 days.
    pub sales_rank_drops365: Option<i64>,
    /// Number of New offers.
    pub offer_count_new: Option<i64>,
    /// Number of Used offers.
    pub offer_count_used: Option<i64>,
    /// Number of FBA offers (offers stage).
    pub offer_count_fba: Option<i64>,
    /// Number of FBM offers (offers stage).
    pub offer_count_fbm: Option<i64>,
    /// Lowest live Used offer price (offers stage).
    pub lowest_used_price: Option<i64>,
    /// Seller id of the lowest Used offer (offers stage).
    pub lowest_used_seller: Option<String>,
    /// Keepa condition code of the lowest Used offer (offers stage).
    pub lowest_used_condition: Option<i64>,
    /// Lowest live New offer price (offers stage).
    pub lowest_new_price: Option<i64>,
    /// Keepa's "bought in past month" estimate.
    pub monthly_sold: Option<i64>,
    /// Keepa's `lastUpdate` of the product.
    pub keepa_last_update_ms: Option<i64>,
    /// When we fetched it.
    pub fetched_at_ms: i64,
    /// The stage that fetched it: `"stats"` or `"offers"`.
    pub stage: String,
    /// Tokens the fetch cost (this product's share).
    pub tokens_charged: i64,
    /// The product's `csv` histories as Keepa sent them (the JSON array),
    /// when the run keeps them (`keep_history`): stored opaque in
    /// `product_histories`, replaced by a fetch at least as new, decoded
    /// only by `export --history`. `None` leaves a stored one as it was.
    pub history_csv: Option<String>,
}

/// A product deliberately rejected by a pipeline stage, remembered until
/// `expires_at_ms` so it is not paid for again.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RejectionRow {
    /// The ASIN (must not be empty).
    pub asin: String,
    /// Keepa domain id.
    pub domain: u8,
    /// The stage that rejected it (`"deal"`, `"stats"`, `"offers"`, …).
    pub stage: String,
    /// Why, for humans (e.g. the rule that failed).
    pub reason: String,
    /// When it was rejected.
    pub rejected_at_ms: i64,
    /// When the rejection stops counting.
    pub expires_at_ms: i64,
}

/// One Keepa call in the request ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestRow {
    /// When the answer (or failure) arrived.
    pub at_ms: i64,
    /// The job that sent it (`"backfill"`, `"refresh"`, …).
    pub job: String,
    /// The pipeline stage (`"feed"`, `"stats"`, `"offers"`, …).
    pub stage: String,
    /// The endpoint (`"deal"`, `"product"`, `"token"`, …).
    pub endpoint: String,
    /// Items asked for (ASINs, or 1 for a feed page).
    pub items: u32,
    /// Tokens predicted before sending.
    pub predicted: i64,
    /// Tokens the server says it charged (`tokensConsumed`), if known.
    pub charged: Option<i64>,
    /// `tokensLeft` after the call, if known.
    pub tokens_left: Option<i64>,
    /// `"ok"`, `"429"`, `"400"`, `"5xx"`, `"timeout"`, `"transport"`, `"undecodable"`.
    pub status: String,
}

/// What the store knows about an ASIN (see [`Store::known`](super::Store::known)).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Known {
    /// Stored: a product row (its fetch time and stage), or, for a deal
    /// stored without product details, the deal's `last_seen_ms` and stage `"deal"`.
    Stored {
        /// When the product was fetched.
        fetched_at_ms: i64,
        /// The stage that fetched it.
        stage: String,
        /// Whether a deal row exists (a product fetched by an earlier stage
        /// of a pipeline that was interrupted has none yet).
        deal: bool,
    },
    /// Rejected, and the rejection has not expired.
    Rejected {
        /// The stage that rejected it.
        stage: String,
        /// Why.
        reason: String,
        /// When the rejection expires.
        expires_at_ms: i64,
    },
}

/// What `keepa-harvest status` shows: counts, checkpoints and token use,
/// all read in one go from the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatusReport {
    /// Stored deals.
    pub deals: u64,
    /// Stored products.
    pub products: u64,
    /// Rejections not expired at `now_ms`.
    pub rejections_active: u64,
    /// `(job, checkpoint, updated_at_ms)`, by job name.
    pub checkpoints: Vec<(String, serde_json::Value, i64)>,
    /// Tokens charged by requests in the hour before `now_ms`.
    pub tokens_last_hour: i64,
    /// Tokens charged by requests in the day before `now_ms`.
    pub tokens_last_day: i64,
    /// Tokens charged by every request in the ledger.
    pub tokens_total: i64,
    /// Tokens charged, by job.
    pub tokens_by_job: BTreeMap<String, i64>,
    /// `tokens_total / deals`, when there is a deal.
    pub tokens_per_stored_deal: Option<f64>,
    /// Requests in the ledger, by status.
    pub requests_by_status: BTreeMap<String, u64>,
    /// The time the report was taken for (`now_ms` of [`Store::status`](super::Store::status)).
    pub now_ms: i64,
    /// Deals first seen in the hour before `now_ms`.
    pub deals_last_hour: u64,
    /// Deals first seen in the day before `now_ms`.
    pub deals_last_day: u64,
    /// The newest request's `at_ms` (a sandbox's fast clock runs ahead of the wall clock).
    pub latest_request_ms: Option<i64>,
    /// The run's target, when the caller knows it (see [`StatusReport::set_target`]).
    pub target_deals: Option<u64>,
    /// Time until `target_deals` at the rate of the last hour (else of the
    /// last day); `Some(0)` once reached; `None` without a target or a rate.
    pub eta_ms: Option<i64>,
}

impl StatusReport {
    /// Sets the target and estimates `eta_ms` from the deals stored in the
    /// last hour (or, if none, the last day).
    pub fn set_target(&mut self, target_deals: u64) {
        self.target_deals = Some(target_deals);
        let remaining = target_deals.saturating_sub(self.deals);
        self.eta_ms = if remaining == 0 {
            Some(0)
        } else if self.deals_last_hour > 0 {
            Some((remaining as f64 * 3_600_000.0 / self.deals_last_hour as f64).round() as i64)
        } else if self.deals_last_day > 0 {
            Some((remaining as f64 * 86_400_000.0 / self.deals_last_day as f64).round() as i64)
        } else {
            None
        };
    }
}
