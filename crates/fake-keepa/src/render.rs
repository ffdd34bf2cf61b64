//! Keepa's JSON, written by hand with Keepa's field names (never through
//! the client's model types, so that a mismatch between them shows).

use serde_json::{json, Map, Value};

use crate::catalog::{
    all_categories, category, csv_type::*, extremes, rank_drops, weighted_avg, Catalog, OfferData,
    ProductData, SellerData, AMAZON_SELLER_ID, CSV_LEN, MINUTES_PER_DAY,
};

/// What a `/product` request asked for, beyond the ASINs.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ProductOptions {
    pub(crate) domain_id: i64,
    pub(crate) stats_days: Option<i64>,
    pub(crate) history: bool,
    pub(crate) days: Option<i64>,
    pub(crate) offers: Option<usize>,
    pub(crate) only_live_offers: bool,
    pub(crate) buybox: bool,
    pub(crate) stock: bool,
    pub(crate) rating: bool,
    /// The product was refreshed by `update=`: `lastUpdate` is now.
    pub(crate) refreshed: bool,
    /// When Keepa collected the offers sent (`None`: now): cached offers
    /// carry their collection time in `lastOffersUpdate` and `lastSeen`.
    pub(crate) offers_at: Option<i64>,
}

/// Which csv types carry a shipping cost (`[t, price, shipping, …]`).
fn has_shipping(ty: usize) -> bool {
    matches!(ty, 7 | 18..=29 | 32)
}

fn flatten(ty: usize, series: &[(i64, i64)], from: Option<i64>) -> Value {
    let mut out: Vec<i64> = Vec::with_capacity(series.len() * 3);
    let start = match from {
        Some(f) => {
            let i = series.partition_point(|&(t, _)| t < f);
            if i > 0 {
                out.push(f);
                out.push(series[i - 1].1);
                if has_shipping(ty) {
                    out.push(0);
                }
            }
            i
        }
        None => 0,
    };
    for &(t, v) in &series[start..] {
        out.push(t);
        out.push(v);
        if has_shipping(ty) {
            out.push(if v < 0 { -1 } else { 0 });
        }
    }
    json!(out)
}

fn pair(p: Option<(i64, i64)>) -> Value {
    p.map_or(Value::Null, |(t, v)| json!([t, v]))
}

fn out_of_stock_pct(series: &[(i64, i64)], from: i64, to: i64) -> i64 {
    // Share of time with value -1, in percent.
    let mut oos = 0_i64;
    let mut cur = crate::catalog::value_at(series, from);
    let mut t = from;
    let start = series.partition_point(|&(at, _)| at <= from);
    for &(at, v) in &series[start..] {
        if at > to {
            break;
        }
        if cur < 0 {
            oos += at - t;
        }
        cur = v;
        t = at;
    }
    if cur < 0 {
        oos += to - t;
    }
    if to <= from {
        -1
    } else {
        oos * 100 / (to - from)
    }
}

/// A value computed from one csv type and its series.
type PerType<'a> = dyn Fn(usize, &[(i64, i64)]) -> Value + 'a;

fn stats_json(
    p: &ProductData,
    days: i64,
    offers: Option<&[OfferData]>,
    retrieved: usize,
    offers_at: i64,
) -> Value {
    let now = p.at_min;
    let from = now - days * MINUTES_PER_DAY;
    let per_type = |f: &PerType<'_>, empty: Value| -> Value {
        Value::Array(
            (0..CSV_LEN)
                .map(|ty| p.csv[ty].as_deref().map_or(empty.clone(), |s| f(ty, s)))
                .collect(),
        )
    };
    let current = per_type(&|ty, _| json!(p.current(ty)), json!(-1));
    let avg_over = |d: i64| {
        per_type(
            &|_, s| json!(weighted_avg(s, now - d * MINUTES_PER_DAY, now)),
            json!(-1),
        )
    };
    let lowest = |from: i64| {
        per_type(
            &|ty, s| {
                let cur = p.current(ty);
                json!(
                    ty != SALES
                        && cur >= 0
                        && extremes(s, from, now).is_some_and(|((_, m), _)| cur <= m)
                )
            },
            json!(false),
        )
    };
    let oos = |d: i64| {
        per_type(
            &|ty, s| {
                if matches!(ty, AMAZON | NEW | USED | BUY_BOX_SHIPPING) {
                    json!(out_of_stock_pct(s, now - d * MINUTES_PER_DAY, now))
                } else {
                    json!(-1)
                }
            },
            json!(-1),
        )
    };
    let rank = p.csv[SALES].as_deref().unwrap_or_default();
    let drops = |d: i64| rank_drops(rank, now - d * MINUTES_PER_DAY, now);
    let bb_price = p.current(BUY_BOX_SHIPPING);
    let amazon = p.current(AMAZON);
    let bb_is_amazon = bb_price > 0 && amazon == bb_price;
    let new_offers = offers.map(|o| {
        o.iter()
            .filter(|o| o.condition == 1 && !o.is_amazon)
            .collect::<Vec<_>>()
    });
    let bb_seller = if bb_price <= 0 {
        Value::Null
    } else if bb_is_amazon {
        json!(AMAZON_SELLER_ID)
    } else {
        match offers.and_then(|o| o.iter().find(|o| o.condition == 1 && o.price == bb_price)) {
            Some(o) => json!(o.seller_id),
            None => Value::Null,
        }
    };
    let total = match offers {
        Some(o) => o.len() as i64,
        None => p.current(COUNT_NEW).max(0) + p.current(COUNT_USED).max(0),
    };
    json!({
        "current": current,
        "avg": avg_over(days),
        "avg30": avg_over(30),
        "avg90": avg_over(90),
        "avg180": avg_over(180),
        "avg365": avg_over(365),
        "atIntervalStart": per_type(&|_, s| json!(crate::catalog::value_at(s, from)), json!(-1)),
        "min": per_type(&|_, s| pair(extremes(s, i64::MIN / 2, now).map(|(lo, _)| lo)), Value::Null),
        "max": per_type(&|_, s| pair(extremes(s, i64::MIN / 2, now).map(|(_, hi)| hi)), Value::Null),
        "minInInterval": per_type(&|_, s| pair(extremes(s, from, now).map(|(lo, _)| lo)), Value::Null),
        "maxInInterval": per_type(&|_, s| pair(extremes(s, from, now).map(|(_, hi)| hi)), Value::Null),
        "isLowest": lowest(i64::MIN / 2),
        "isLowest90": lowest(now - 90 * MINUTES_PER_DAY),
        "outOfStockPercentage30": oos(30),
        "outOfStockPercentage90": oos(90),
        "outOfStockPercentageInInterval": oos(days),
        "salesRankDrops30": drops(30),
        "salesRankDrops90": drops(90),
        "salesRankDrops180": drops(180),
        "salesRankDrops365": drops(365),
        "totalOfferCount": total,
        "offerCountFBA": new_offers.as_ref().map_or(-2, |o| o.iter().filter(|o| o.is_fba).count() as i64),
        "offerCountFBM": new_offers.as_ref().map_or(-2, |o| o.iter().filter(|o| !o.is_fba).count() as i64),
        "retrievedOfferCount": if offers.is_some() { retrieved as i64 } else { -2 },
        "lastOffersUpdate": if offers.is_some() { offers_at } else { p.last_update },
        "buyBoxPrice": bb_price,
        "buyBoxShipping": if bb_price > 0 { 0 } else { -1 },
        "buyBoxSellerId": bb_seller,
        "buyBoxIsAmazon": bb_is_amazon,
        "buyBoxIsFBA": bb_price > 0,
        "buyBoxIsUsed": false,
        "buyBoxCondition": if bb_price > 0 { 1 } else { -1 },
        "tradeInPrice": -2,
    })
}

fn offer_json(i: usize, o: &OfferData, now: i64, stock: bool) -> Value {
    let mut m = Map::new();
    m.insert("offerId".into(), json!(i));
    m.insert("lastSeen".into(), json!(now));
    m.insert("sellerId".into(), json!(o.seller_id));
    m.insert("offerCSV".into(), json!([o.since, o.price, o.shipping]));
    m.insert("condition".into(), json!(o.condition));
    m.insert("conditionComment".into(), Value::Null);
    m.insert("isPrime".into(), json!(o.is_prime));
    m.insert("isMAP".into(), json!(false));
    m.insert("isShippable".into(), json!(true));
    m.insert("isAddonItem".into(), json!(false));
    m.insert("isPreorder".into(), json!(false));
    m.insert("isWarehouseDeal".into(), json!(false));
    m.insert("isScam".into(), json!(false));
    m.insert("isAmazon".into(), json!(o.is_amazon));
    m.insert("isPrimeExcl".into(), json!(false));
    m.insert("isFBA".into(), json!(o.is_fba));
    m.insert("shipsFromChina".into(), json!(false));
    m.insert("minOrderQty".into(), json!(1));
    if stock {
        m.insert("stockCSV".into(), json!([now, o.stock]));
    }
    Value::Object(m)
}

/// The cheapest `n` live offers, in price order.
pub(crate) fn live_offers(catalog: &Catalog, p: &ProductData, n: usize) -> Vec<OfferData> {
    let mut all = catalog.offers(p);
    all.sort_by_key(|o| (o.price + o.shipping, o.condition));
    all.truncate(n);
    all
}

/// A product object with Keepa's field names. Every top-level key and
/// every stats key is one a real Keepa response carries.
pub(crate) fn product_json(
    catalog: &Catalog,
    p: &ProductData,
    opt: &ProductOptions,
    offers: Option<&[OfferData]>,
) -> Value {
    let s = &p.summary;
    let root = category(s.root);
    let leaf = category(s.leaf);
    let tree: Vec<Value> = [root, leaf]
        .into_iter()
        .flatten()
        .map(|c| json!({"catId": c.id, "name": c.name}))
        .collect();
    let now = p.at_min;
    let last_update = if opt.refreshed { now } else { p.last_update };
    let offers_at = opt.offers_at.unwrap_or(now);
    let (csv, sales_ranks) = history_json(p, opt);
    let last_price_change = [AMAZON, NEW, USED]
        .iter()
        .filter_map(|&i| p.csv[i].as_ref().and_then(|s| s.last().map(|&(t, _)| t)))
        .max()
        .unwrap_or(p.tracking_since);
    let mut m = Map::new();
    m.insert("asin".into(), json!(p.asin));
    m.insert("domainId".into(), json!(opt.domain_id));
    m.insert("title".into(), json!(p.title));
    m.insert("productType".into(), json!(0));
    m.insert("parentAsin".into(), Value::Null);
    m.insert("rootCategory".into(), json!(s.root));
    m.insert("categories".into(), json!([s.leaf]));
    m.insert("categoryTree".into(), json!(tree));
    m.insert("trackingSince".into(), json!(p.tracking_since));
    m.insert("listedSince".into(), json!(p.listed_since));
    m.insert("lastUpdate".into(), json!(last_update));
    m.insert("lastPriceChange".into(), json!(last_price_change));
    m.insert(
        "lastRatingUpdate".into(),
        json!(if opt.rating {
            now
        } else {
            p.last_rating_update
        }),
    );
    m.insert("lastSoldUpdate".into(), json!(last_update));
    m.insert("salesRankReference".into(), json!(s.root));
    m.insert("salesRanks".into(), sales_ranks);
    m.insert("csv".into(), csv);
    m.insert(
        "images".into(),
        json!([{"l": p.image, "lH": 1500, "lW": 1000, "m": p.image, "mH": 500, "mW": 333}]),
    );
    m.insert("brand".into(), json!(p.brand));
    m.insert("manufacturer".into(), json!(p.brand));
    m.insert("author".into(), json!(p.author));
    m.insert(
        "binding".into(),
        json!(if s.is_book { "Paperback" } else { "" }),
    );
    m.insert(
        "productGroup".into(),
        json!(if s.is_book { "Book" } else { "Home" }),
    );
    m.insert(
        "type".into(),
        json!(if s.is_book { "ABIS_BOOK" } else { "HOME" }),
    );
    m.insert(
        "numberOfPages".into(),
        json!(if s.is_book { p.pages } else { -1 }),
    );
    m.insert("publicationDate".into(), json!(0));
    m.insert("languages".into(), Value::Null);
    m.insert("eanList".into(), Value::Null);
    m.insert("hasReviews".into(), json!(p.current(COUNT_REVIEWS) > 0));
    m.insert("isAdultProduct".into(), json!(false));
    m.insert("monthlySold".into(), json!(p.monthly_sold));
    m.insert("variations".into(), Value::Null);
    m.insert(
        "stats".into(),
        match opt.stats_days {
            Some(d) => stats_json(p, d, offers, offers.map_or(0, <[_]>::len), offers_at),
            None => Value::Null,
        },
    );
    m.insert("offersSuccessful".into(), json!(offers.is_some()));
    insert_offers(&mut m, offers, offers_at, opt.stock);
    if opt.buybox || offers.is_some() {
        let hist = buy_box_seller_history(catalog, p);
        m.insert("buyBoxSellerIdHistory".into(), json!(hist));
    }
    Value::Object(m)
}

/// `csv` and `salesRanks`: the histories (from `days` back if asked), or
/// `null` with `history=0`.
fn history_json(p: &ProductData, opt: &ProductOptions) -> (Value, Value) {
    if !opt.history {
        return (Value::Null, Value::Null);
    }
    let from = opt.days.map(|d| p.at_min - d.max(0) * MINUTES_PER_DAY);
    let csv = p
        .csv
        .iter()
        .enumerate()
        .map(|(ty, s)| s.as_deref().map_or(Value::Null, |s| flatten(ty, s, from)))
        .collect();
    let sales_ranks = match &p.csv[SALES] {
        Some(r) => json!({ p.summary.root.to_string(): flatten(SALES, r, from) }),
        None => Value::Null,
    };
    (Value::Array(csv), sales_ranks)
}

/// `offers` and `liveOffersOrder` (`null` without `offers=`).
fn insert_offers(m: &mut Map<String, Value>, offers: Option<&[OfferData]>, now: i64, stock: bool) {
    let Some(list) = offers else {
        m.insert("liveOffersOrder".into(), Value::Null);
        return;
    };
    let arr: Vec<Value> = list
        .iter()
        .enumerate()
        .map(|(i, o)| offer_json(i, o, now, stock))
        .collect();
    m.insert("offers".into(), Value::Array(arr));
    m.insert(
        "liveOffersOrder".into(),
        json!((0..list.len()).collect::<Vec<_>>()),
    );
}

/// `buyBoxSellerIdHistory`: `[time, seller id, …]` at every buy box change,
/// Amazon's id when Amazon's price is the buy box, `-1` when there is none.
fn buy_box_seller_history(catalog: &Catalog, p: &ProductData) -> Vec<String> {
    let bb = p.csv[BUY_BOX_SHIPPING].as_deref().unwrap_or_default();
    let amazon = p.csv[AMAZON].as_deref().unwrap_or_default();
    bb.iter()
        .flat_map(|&(t, v)| {
            let who = if v < 0 {
                "-1".to_string()
            } else if crate::catalog::value_at(amazon, t) == v {
                AMAZON_SELLER_ID.to_string()
            } else {
                catalog.seller_id(
                    (crate::rng::hash(catalog.seed, 77, t as u64)
                        % u64::from(catalog.params.sellers)) as u32,
                )
            };
            [t.to_string(), who]
        })
        .collect()
}

/// A seller object, as `/seller` returns it inside `sellers`.
pub(crate) fn seller_json(s: &SellerData, domain_id: i64, now: i64, storefront: bool) -> Value {
    let mut m = Map::new();
    m.insert("sellerId".into(), json!(s.id));
    m.insert("sellerName".into(), json!(s.name));
    m.insert("domainId".into(), json!(domain_id));
    m.insert("trackedSince".into(), json!(s.tracked_since));
    m.insert("lastUpdate".into(), json!(now));
    m.insert("isScammer".into(), json!(false));
    m.insert("hasFBA".into(), json!(s.has_fba));
    m.insert("currentRating".into(), json!(s.rating));
    m.insert("currentRatingCount".into(), json!(s.rating_count));
    m.insert("ratingsLast30Days".into(), json!(s.rating_count / 100));
    m.insert(
        "totalStorefrontAsins".into(),
        json!([now, s.storefront.len()]),
    );
    if storefront {
        m.insert("lastRatingUpdate".into(), json!(now));
    }
    Value::Object(m)
}

/// A category object.
pub(crate) fn category_json(id: i64, domain_id: i64, product_count: i64) -> Option<Value> {
    let c = category(id)?;
    let children: Vec<i64> = all_categories()
        .iter()
        .filter(|x| x.parent == id)
        .map(|x| x.id)
        .collect();
    Some(json!({
        "domainId": domain_id,
        "catId": c.id,
        "name": c.name,
        "contextFreeName": c.name,
        "children": children,
        "parent": c.parent,
        "highestRank": 5_000_000,
        "productCount": product_count,
        "isBrowseNode": true,
    }))
}
