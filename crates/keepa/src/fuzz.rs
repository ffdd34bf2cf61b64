//! Entry points for fuzzing, and for the no-panic tests that run in every
//! `cargo test`.
//!
//! Each function takes arbitrary bytes along the path production takes
//! (the client's decoding of an HTTP answer, serde into the model, the
//! envelope into a token snapshot and a bucket) and then calls every
//! accessor on whatever parsed, so that a panic anywhere in reading a
//! server's answer shows up. They return nothing and never panic; the
//! cargo-fuzz targets in `fuzz/` at the repository root run them under
//! libFuzzer, and `tests/no_panic.rs` runs them on proptest-generated and
//! corpus inputs.
//!
//! ```
//! keepa::fuzz::answer(b"\x00{\"tokensLeft\":-5,\"products\":[{\"asin\":\"X\",\"csv\":[[1,2,3]]}]}");
//! keepa::fuzz::selection(br#"{"domainId":1,"priceTypes":[2],"sortType":-9223372036854775808}"#);
//! ```

use std::hint::black_box;

/// Hands `v` to the optimiser as used, so no accessor call is dropped.
fn keep<T>(v: T) {
    let _ = black_box(v);
}

use crate::answer::{decode_answer, ApiKey};
use crate::envelope::{Envelope, TokenSnapshot};
use crate::model::{
    BestsellersResponse, CategoryResponse, ConditionFilter, CsvType, DateRange, Deal, DealResponse,
    History, KeepaValue, Offer, OfferCondition, Product, ProductResponse, QueryResponse,
    SellerResponse, Stats,
};
use crate::request::DealSelection;
use crate::time::KeepaMinutes;
use crate::tokens::TokenBucket;

/// The statuses [`answer`] picks from with its first byte.
const STATUSES: [u16; 12] = [200, 200, 400, 402, 404, 405, 429, 500, 503, 302, 201, 418];

/// When the fuzzed answers "arrived" (2023-11-14, Unix ms).
const RECEIVED_AT_MS: i64 = 1_700_000_000_000;

/// A whole HTTP answer: the first byte picks the status (mostly 2xx), the
/// rest is the body. Decoded by [`decode_answer`], as `Client::send` does,
/// then parsed as every response type, its envelope turned into a snapshot
/// and a bucket, and its error (if any) displayed.
pub fn answer(data: &[u8]) {
    let (status, body) = match data.split_first() {
        Some((b, rest)) => (STATUSES[usize::from(*b) % STATUSES.len()], rest),
        None => (200, data),
    };
    let Ok(key) = ApiKey::new("FUZZKEY0123") else {
        return;
    };
    match decode_answer(&key, status, body.to_vec(), RECEIVED_AT_MS) {
        Ok(resp) => {
            keep(format!("{resp:?}"));
            envelope(&resp.envelope);
            if let Some(s) = resp.snapshot() {
                snapshot(&s);
            }
            keep(resp.json().is_ok());
            if let Ok(r) = resp.parse::<ProductResponse>() {
                products(&r);
            }
            if let Ok(r) = resp.parse::<DealResponse>() {
                deals(&r);
            }
            keep(resp.parse::<SellerResponse>().map(|r| {
                for s in r.sellers.values() {
                    keep((
                        s.storefront_asin_count(),
                        s.rating_history(),
                        s.rating_count_history(),
                    ));
                }
            }));
            keep(resp.parse::<QueryResponse>().is_ok());
            keep(resp.parse::<BestsellersResponse>().is_ok());
            keep(resp.parse::<CategoryResponse>().is_ok());
        }
        Err(e) => {
            keep(e.to_string());
            keep(format!("{e:?}"));
            keep((
                e.status(),
                e.keepa_error().map(ToString::to_string),
                e.received_at_ms(),
                e.is_refusal(),
                e.may_have_been_charged(),
            ));
            if let Some(env) = e.envelope() {
                envelope(env);
            }
        }
    }
}

/// A `/deal` body, parsed straight into [`DealResponse`], every deal read
/// through every accessor.
pub fn deal_body(data: &[u8]) {
    if let Ok(r) = serde_json::from_slice::<DealResponse>(data) {
        deals(&r);
    }
}

/// A `/product` body, parsed straight into [`ProductResponse`], every
/// product (its histories, stats and offers) read through every accessor.
pub fn product_body(data: &[u8]) {
    if let Ok(r) = serde_json::from_slice::<ProductResponse>(data) {
        products(&r);
    }
}

/// A deal selection as a user writes it (`api deals --selection`): JSON
/// into [`DealSelection`], validated and built both ways.
pub fn selection(data: &[u8]) {
    let Ok(sel) = serde_json::from_slice::<DealSelection>(data) else {
        return;
    };
    keep(sel.validate().map_err(|e| e.to_string()));
    if let Ok(req) = sel.build() {
        keep((req.describe(), req.shape(), req.items()));
    }
    keep(sel.build_get().map(|r| r.describe()));
    keep(sel.clone().with_page(u32::MAX).validate().is_err());
}

/// Every derived value of an envelope.
pub fn envelope(env: &Envelope) {
    keep((env.is_empty(), env.is_newer_than(&Envelope::default())));
    if let Some(s) = env.snapshot() {
        snapshot(&s);
    }
    if let Some(s) = env.snapshot_or_received_at(RECEIVED_AT_MS) {
        snapshot(&s);
    }
}

/// A token snapshot projected forward the way the budget does.
pub fn snapshot(s: &TokenSnapshot) {
    let t = s.timestamp_ms;
    let mut b = TokenBucket::from_snapshot(s);
    keep((
        s.next_refill_at_ms(),
        b.refill_in(t),
        b.cap_at(t),
        b.projected_balance(t.saturating_add(6 * 3_600_000)),
        b.when_balance_reaches(1),
        b.when_balance_reaches(b.cap_at(t)),
        b.when_balance_reaches(b.cap_at(t).saturating_add(1)),
        b.when_balance_reaches(b.balance().saturating_add(100)),
    ));
    keep(b.try_spend(t.saturating_add(60_000), 12));
    keep(b.spend(t.saturating_add(120_000), -3));
    keep(b.advance(t.saturating_add(24 * 3_600_000)));
}

fn deals(r: &DealResponse) {
    envelope(&r.envelope);
    keep(r.deals.category_summary().count());
    for d in &r.deals.dr {
        deal(d);
    }
    keep(serde_json::to_string(r).map(|s| serde_json::from_str::<DealResponse>(&s)));
}

/// Every accessor of one deal.
pub fn deal(d: &Deal) {
    for ty in CsvType::ALL {
        keep((d.current(ty), d.current_since(ty), d.delta_last(ty)));
        for range in DateRange::ALL {
            keep((
                d.avg(ty, range),
                d.delta(ty, range),
                d.delta_percent(ty, range),
            ));
        }
    }
    keep((d.lightning_ends(), d.image_name(), d.image_url()));
    for m in [d.creation_date, d.last_update, d.lightning_end]
        .into_iter()
        .flatten()
    {
        minutes(m);
    }
}

fn products(r: &ProductResponse) {
    envelope(&r.envelope);
    for p in &r.products {
        product(p);
    }
    keep(serde_json::to_string(r).map(|s| serde_json::from_str::<ProductResponse>(&s)));
}

/// Every accessor of one product, its stats and its offers.
pub fn product(p: &Product) {
    keep((p.domain(), p.rating(), p.coupons(), p.variation_asins()));
    for ty in CsvType::ALL {
        if let Ok(Some(h)) = p.history(ty) {
            history(&h);
        }
        keep(p.last_value(ty));
    }
    for cat in p.sales_ranks.keys() {
        keep((p.sales_rank_history(*cat), p.sales_rank(*cat)));
    }
    keep((
        p.monthly_sold_history(),
        p.buy_box_seller_history(),
        p.coupon_history(),
        p.sales_rank_reference_history(),
        p.parent_asin_history(),
    ));
    keep(p.live_offers().len());
    for filter in [
        ConditionFilter::Any,
        ConditionFilter::New,
        ConditionFilter::Used,
        ConditionFilter::Collectible,
        ConditionFilter::Refurbished,
        ConditionFilter::Exactly(OfferCondition::UsedGood),
    ] {
        keep(p.lowest_offer(filter));
    }
    keep(p.lowest_offer_by(|o| o.is_fba));
    if let Some(s) = &p.stats {
        stats(s);
    }
    for o in p.offers.iter().flatten() {
        offer(o);
    }
    for m in [p.last_update, p.last_price_change, p.tracking_since]
        .into_iter()
        .flatten()
    {
        minutes(m);
    }
}

fn history(h: &History) {
    keep((h.len(), h.is_empty(), h.last(), h.points().len()));
    keep((h.as_plain().is_some(), h.as_shipping().is_some()));
    for t in [i64::MIN, -1, 0, 4_000_000, i64::MAX] {
        keep(h.value_at(KeepaMinutes(t)));
    }
    if let Some((t, _)) = h.last() {
        keep(h.value_at(t));
        minutes(t);
    }
}

fn stats(s: &Stats) {
    for ty in CsvType::ALL {
        keep((
            s.current(ty),
            s.avg(ty),
            s.avg30(ty),
            s.avg90(ty),
            s.avg180(ty),
            s.avg365(ty),
            s.at_interval_start(ty),
        ));
        keep((
            s.min(ty),
            s.max(ty),
            s.min_in_interval(ty),
            s.max_in_interval(ty),
            s.is_lowest(ty),
            s.is_lowest90(ty),
        ));
        keep((
            s.out_of_stock_percentage30(ty),
            s.out_of_stock_percentage90(ty),
            s.out_of_stock_percentage180(ty),
            s.out_of_stock_percentage365(ty),
            s.out_of_stock_percentage_in_interval(ty),
        ));
    }
    keep((s.lightning_deal(), s.buy_box_landed()));
}

fn offer(o: &Offer) {
    keep((o.history(), o.current(), o.stock_history(), o.stock()));
    keep((o.condition.code(), o.condition.csv_type()));
    keep(OfferCondition::from_code(o.condition.code()));
    if let Some(c) = o.current() {
        keep(c.landed());
    }
}

fn minutes(m: KeepaMinutes) {
    keep((m.to_unix_ms(), m.to_unix_secs(), m.to_string()));
    keep(KeepaValue::from_raw(m.0).known());
}
