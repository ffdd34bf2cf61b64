//! The one place that reads Keepa's deal and product objects: it maps them
//! to the store's rows and to the rule [`Fields`] of each stage.
//!
//! Guarantees: every field name written is one of the canonical names in
//! [`crate::config`]'s tables; a value Keepa does not have (`-1`, `-2`,
//! missing) is left out of [`Fields`] and is `None` in a row; nothing here
//! panics on what a server sends.

use keepa::model::{ConditionFilter, CsvType, DateRange, Deal, KeepaValue, Product};

use crate::config::{FieldValue, Fields};
use crate::store::{DealRow, ProductRow};

/// The price types rules name, with Keepa's csv index.
const TYPES: [(&str, CsvType); 5] = [
    ("amazon", CsvType::Amazon),
    ("new", CsvType::New),
    ("used", CsvType::Used),
    ("buy_box", CsvType::BuyBoxShipping),
    ("sales_rank", CsvType::Sales),
];

const RANGES: [(&str, DateRange); 4] = [
    ("day", DateRange::Day),
    ("week", DateRange::Week),
    ("month", DateRange::Month),
    ("quarter", DateRange::Quarter),
];

/// Interns `prefix.a.b` as a `&'static str`: the set of names is finite
/// (the canonical tables), so each is leaked at most once.
fn name(parts: &[&str]) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let joined = parts.join(".");
    let mut set = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(s) = set.get(joined.as_str()) {
        return s;
    }
    let leaked: &'static str = Box::leak(joined.into_boxed_str());
    set.insert(leaked);
    leaked
}

fn put(fields: &mut Fields, name: &'static str, v: Option<i64>) {
    if let Some(v) = v {
        fields.insert(name, FieldValue::Int(v));
    }
}

fn known(v: KeepaValue) -> Option<i64> {
    v.known()
}

/// Only real values (Keepa's `-1`/`-2` are sentinels).
fn real(v: Option<i64>) -> Option<i64> {
    v.filter(|&x| x >= 0)
}

/// A deal, read once: what the pipeline needs.
#[derive(Debug, Clone)]
pub struct DealItem {
    /// The ASIN.
    pub asin: String,
    /// The deal's time for watermarks: `lastUpdate`, else `creationDate`
    /// (Unix ms; 0 if neither).
    pub time_ms: i64,
    /// The deal-stage rule fields.
    pub fields: Fields,
    /// The row stored if the deal passes the whole pipeline.
    pub row: DealRow,
}

/// Reads one deal; `None` if it has no usable ASIN.
pub fn deal(d: &Deal, domain: u8, price_type: u8, seen_at_ms: i64) -> Option<DealItem> {
    let asin = d.asin.trim().to_string();
    if asin.is_empty() || asin.len() > 20 {
        return None;
    }
    let mut f = Fields::default();
    if let Some(t) = &d.title {
        f.insert("title", FieldValue::Text(t.clone()));
    }
    put(&mut f, "root_category", d.root_cat);
    let rank = known(d.current(CsvType::Sales));
    put(&mut f, "sales_rank", rank);
    for (t, ty) in TYPES {
        if ty != CsvType::Sales {
            put(&mut f, name(&["current", t]), known(d.current(ty)));
        }
        for (r, range) in RANGES {
            put(
                &mut f,
                name(&["delta_percent", t, r]),
                d.delta_percent(ty, range),
            );
            put(&mut f, name(&["delta", t, r]), d.delta(ty, range));
            put(&mut f, name(&["avg", t, r]), known(d.avg(ty, range)));
        }
    }
    let feed_ty = csv_of(price_type);
    let creation = d.creation_date.map(|m| m.to_unix_ms());
    let update = d.last_update.map(|m| m.to_unix_ms());
    let row = DealRow {
        asin: asin.clone(),
        domain,
        title: d.title.clone(),
        root_category: d.root_cat,
        price_type,
        current_amazon: known(d.current(CsvType::Amazon)),
        current_new: known(d.current(CsvType::New)),
        current_used: known(d.current(CsvType::Used)),
        current_buy_box: known(d.current(CsvType::BuyBoxShipping)),
        sales_rank: rank,
        delta_percent_day: feed_ty.and_then(|t| d.delta_percent(t, DateRange::Day)),
        delta_percent_week: feed_ty.and_then(|t| d.delta_percent(t, DateRange::Week)),
        delta_percent_month: feed_ty.and_then(|t| d.delta_percent(t, DateRange::Month)),
        delta_percent_quarter: feed_ty.and_then(|t| d.delta_percent(t, DateRange::Quarter)),
        delta_day: feed_ty.and_then(|t| d.delta(t, DateRange::Day)),
        delta_week: feed_ty.and_then(|t| d.delta(t, DateRange::Week)),
        delta_month: feed_ty.and_then(|t| d.delta(t, DateRange::Month)),
        delta_quarter: feed_ty.and_then(|t| d.delta(t, DateRange::Quarter)),
        creation_date_ms: creation,
        last_update_ms: update,
        seen_at_ms,
        raw_json: None,
    };
    Some(DealItem {
        asin,
        time_ms: update.or(creation).unwrap_or(0),
        fields: f,
        row,
    })
}

fn csv_of(price_type: u8) -> Option<CsvType> {
    CsvType::ALL.get(usize::from(price_type)).copied()
}

/// A product, read once.
#[derive(Debug, Clone)]
pub struct ProductItem {
    /// The ASIN.
    pub asin: String,
    /// Stats-stage fields (and offers-stage fields if offers were fetched).
    pub fields: Fields,
    /// The row to store.
    pub row: ProductRow,
}

/// Reads a product fetched at `stage` (`"stats"` or `"offers"`); offers
/// fields are filled only when the product carries offers.
pub fn product(
    p: &Product,
    domain: u8,
    stage: &str,
    fetched_at_ms: i64,
    tokens_share: i64,
) -> ProductItem {
    let mut f = Fields::default();
    let stats = p.stats.as_ref();
    let cur = |ty| stats.and_then(|s| known(s.current(ty)));
    let a30 = |ty| stats.and_then(|s| known(s.avg30(ty)));
    let a90 = |ty| stats.and_then(|s| known(s.avg90(ty)));
    let a180 = |ty| stats.and_then(|s| known(s.avg180(ty)));
    for (t, ty) in TYPES {
        put(&mut f, name(&["stats.current", t]), cur(ty));
        put(&mut f, name(&["stats.avg30", t]), a30(ty));
        put(&mut f, name(&["stats.avg90", t]), a90(ty));
        put(&mut f, name(&["stats.avg180", t]), a180(ty));
    }
    let drops = |v: fn(&keepa::Stats) -> KeepaValue| stats.and_then(|s| known(v(s)));
    let d30 = drops(|s| s.sales_rank_drops30);
    let d90 = drops(|s| s.sales_rank_drops90);
    let d180 = drops(|s| s.sales_rank_drops180);
    let d365 = drops(|s| s.sales_rank_drops365);
    put(&mut f, "stats.sales_rank_drops30", d30);
    put(&mut f, "stats.sales_rank_drops90", d90);
    put(&mut f, "stats.sales_rank_drops180", d180);
    put(&mut f, "stats.sales_rank_drops365", d365);
    let count_new = cur(CsvType::CountNew);
    let count_used = cur(CsvType::CountUsed);
    let fba = drops(|s| s.offer_count_fba);
    let fbm = drops(|s| s.offer_count_fbm);
    put(&mut f, "stats.offer_count.new", count_new);
    put(&mut f, "stats.offer_count.used", count_used);
    put(&mut f, "stats.offer_count.fba", fba);
    put(&mut f, "stats.offer_count.fbm", fbm);
    let monthly = real(p.monthly_sold);
    put(&mut f, "stats.monthly_sold", monthly);

    let mut row = ProductRow {
        asin: p.asin.clone(),
        domain,
        title: p.title.clone(),
        current_amazon: cur(CsvType::Amazon),
        current_new: cur(CsvType::New),
        current_used: cur(CsvType::Used),
        current_buy_box: cur(CsvType::BuyBoxShipping),
        avg30_amazon: a30(CsvType::Amazon),
        avg30_new: a30(CsvType::New),
        avg30_used: a30(CsvType::Used),
        avg30_buy_box: a30(CsvType::BuyBoxShipping),
        avg90_amazon: a90(CsvType::Amazon),
        avg90_new: a90(CsvType::New),
        avg90_used: a90(CsvType::Used),
        avg90_buy_box: a90(CsvType::BuyBoxShipping),
        avg180_amazon: a180(CsvType::Amazon),
        avg180_new: a180(CsvType::New),
        avg180_used: a180(CsvType::Used),
        avg180_buy_box: a180(CsvType::BuyBoxShipping),
        sales_rank: cur(CsvType::Sales),
        sales_rank_avg90: a90(CsvType::Sales),
        sales_rank_drops30: d30,
        sales_rank_drops90: d90,
        sales_rank_drops180: d180,
        sales_rank_drops365: d365,
        offer_count_new: count_new,
        offer_count_used: count_used,
        offer_count_fba: fba,
        offer_count_fbm: fbm,
        monthly_sold: monthly,
        keepa_last_update_ms: p.last_update.map(|m| m.to_unix_ms()),
        fetched_at_ms,
        stage: stage.to_string(),
        tokens_charged: tokens_share,
        ..ProductRow::default()
    };

    if p.offers.is_some() {
        let live = p.live_offers();
        let used = live.iter().filter(|(_, o)| o.condition.is_used()).count() as i64;
        let new = live.iter().filter(|(_, o)| o.condition.is_new()).count() as i64;
        f.insert("offers.count_used", FieldValue::Int(used));
        f.insert("offers.count_new", FieldValue::Int(new));
        if let Some(lu) = p.lowest_offer(ConditionFilter::Used) {
            f.insert("offers.lowest_used", FieldValue::Int(lu.total));
            f.insert(
                "offers.lowest_used_condition",
                FieldValue::Int(lu.condition.code()),
            );
            row.lowest_used_price = Some(lu.total);
            row.lowest_used_seller = lu.seller_id.clone();
            row.lowest_used_condition = Some(lu.condition.code());
        }
        if let Some(ln) = p.lowest_offer(ConditionFilter::New) {
            f.insert("offers.lowest_new", FieldValue::Int(ln.total));
            row.lowest_new_price = Some(ln.total);
        }
        row.offer_count_used = row.offer_count_used.or(Some(used));
        row.offer_count_new = row.offer_count_new.or(Some(new));
    }
    ProductItem {
        asin: p.asin.clone(),
        fields: f,
        row,
    }
}
