//! Execution, per endpoint: admitted work into the payload fields of the
//! answer and what they cost (see the crate docs, "Cost").

use serde_json::{json, Map, Value};

use super::collected::Plan;
use super::validate::Work;
use super::{lock, Shared};
use crate::catalog::{category, Catalog, MINUTES_PER_DAY, ROOTS};
use crate::feed::{deal_json, Selection};
use crate::render::{category_json, live_offers, product_json, seller_json, ProductOptions};

/// Payload fields of an answer.
type Payload = Map<String, Value>;

/// Runs the admitted work at server time `now_ms`: `(payload fields, cost)`.
pub(super) fn execute(shared: &Shared, work: &Work, now_ms: i64) -> (Payload, i64) {
    let catalog = &shared.catalog;
    let now = keepa::KeepaMinutes::from_unix_ms(now_ms).0;
    let mut out = Map::new();
    let cost = match work {
        Work::Token => 0,
        Work::Product {
            indices,
            opt,
            update,
        } => products(shared, indices, opt, *update, now, &mut out),
        Work::Deal(sel) => deals(shared, sel, now_ms, &mut out),
        Work::Seller {
            indices,
            domain,
            storefront,
        } => sellers(catalog, indices, *domain, *storefront, now, &mut out),
        Work::Query { body, .. } => {
            let (asins, total) = product_finder(catalog, body);
            let n = asins.len() as i64;
            out.insert("asinList".into(), json!(asins));
            out.insert("totalResults".into(), json!(total));
            10 + (n + 99) / 100
        }
        Work::Bestsellers {
            domain,
            category: cat,
        } => bestsellers(catalog, *domain, *cat, now, &mut out),
        Work::Category {
            domain,
            ids,
            parents,
        } => categories(*domain, ids, *parents, &mut out),
        Work::Search { domain, term, page } => search(catalog, *domain, term, *page, now, &mut out),
    };
    (out, cost)
}

/// `/product`: 1 per product found, or with `offers` 6 per page of 10
/// offers collected, or a flat 5 for offers served from the last
/// collection (fresher than `update` hours, or `update=-1`); plus the
/// `stock`, `buybox`, `update=0` and `rating` surcharges. What a call
/// collects is recorded, so the next call sees fresh data.
fn products(
    shared: &Shared,
    indices: &[u32],
    opt: &ProductOptions,
    update: Option<i64>,
    now: i64,
    out: &mut Payload,
) -> i64 {
    let catalog = &shared.catalog;
    let mut book = lock(&shared.collected);
    let mut cost = 0;
    let mut products = Vec::with_capacity(indices.len());
    for &i in indices {
        let mut p = catalog.product(i, now);
        p.last_update = book.product_at(i, p.last_update);
        let offers_at = book.offers_at(i, catalog.offers_collected_at(i, now));
        let plan = Plan::new(update, now - p.last_update, now - offers_at);
        let mut opt = opt.clone();
        let mut c = 1 + plan.surcharge;
        let offers = opt.offers.map(|n| {
            if plan.offers {
                live_offers(catalog, &p, n)
            } else {
                opt.offers_at = Some(offers_at);
                live_offers(catalog, &catalog.product(i, offers_at), n)
            }
        });
        if let Some(list) = &offers {
            c = plan.surcharge
                + if plan.offers {
                    6 * (list.len().div_ceil(10).max(1) as i64)
                } else {
                    5
                };
            if opt.stock {
                c += 2;
            }
        } else if opt.buybox {
            c += 2;
        }
        opt.refreshed = plan.product || (plan.offers && offers.is_some());
        if opt.rating && now - p.last_rating_update > MINUTES_PER_DAY {
            c += 1;
        }
        book.record(
            i,
            now,
            Plan {
                offers: plan.offers && offers.is_some(),
                ..plan
            },
        );
        cost += c;
        products.push(product_json(catalog, &p, &opt, offers.as_deref()));
    }
    out.insert("products".into(), Value::Array(products));
    cost
}

/// `/deal`: one page of the feed, 5 tokens.
fn deals(shared: &Shared, sel: &Selection, now_ms: i64, out: &mut Payload) -> i64 {
    let page = shared.feed.query(sel, now_ms);
    let (ids, rest): (Vec<i64>, Vec<usize>) = page.category_counts.iter().copied().unzip();
    let names: Vec<&str> = ids
        .iter()
        .map(|&id| category(id).map_or("", |c| c.name))
        .collect();
    out.insert(
        "deals".into(),
        json!({
            "dr": page.deals.iter().map(|d| deal_json(d)).collect::<Vec<_>>(),
            "categoryIds": ids,
            "categoryNames": names,
            "categoryCount": rest,
        }),
    );
    5
}

/// `/seller`: 1 per seller found, 10 with the storefront.
fn sellers(
    catalog: &Catalog,
    indices: &[u32],
    domain: i64,
    storefront: bool,
    now: i64,
    out: &mut Payload,
) -> i64 {
    let mut sellers = Map::new();
    for &i in indices {
        let s = catalog.seller(i);
        let mut v = seller_json(&s, domain, now, storefront);
        if storefront {
            if let Value::Object(m) = &mut v {
                let asins: Vec<String> = s
                    .storefront
                    .iter()
                    .map(|&p| catalog.asin(&catalog.summary(p)))
                    .collect();
                m.insert("asinList".into(), json!(asins));
                m.insert(
                    "asinListLastSeen".into(),
                    json!(vec![now; s.storefront.len()]),
                );
            }
        }
        sellers.insert(s.id.clone(), v);
    }
    out.insert("sellers".into(), Value::Object(sellers));
    indices.len() as i64 * if storefront { 10 } else { 1 }
}

/// `/bestsellers`: the category's products by rank, 50 tokens (0 for an
/// unknown category).
fn bestsellers(catalog: &Catalog, domain: i64, cat: i64, now: i64, out: &mut Payload) -> i64 {
    let Some(c) = category(cat) else {
        out.insert("bestSellersList".into(), Value::Null);
        return 0;
    };
    let mut list: Vec<(i64, u32)> = (0..catalog.params.products)
        .map(|i| catalog.summary(i))
        .filter(|s| s.root == c.id || s.leaf == c.id)
        .map(|s| (s.base_rank, s.index))
        .collect();
    list.sort_unstable();
    list.truncate(10_000);
    let asins: Vec<String> = list
        .iter()
        .map(|&(_, i)| catalog.asin(&catalog.summary(i)))
        .collect();
    out.insert(
        "bestSellersList".into(),
        json!({"domainId": domain, "lastUpdate": now, "categoryId": c.id, "asinList": asins}),
    );
    50
}

/// `/category`: the categories asked for (0: the roots), with their
/// parents if asked; 1 token.
fn categories(domain: i64, ids: &[i64], parents: bool, out: &mut Payload) -> i64 {
    let wanted: Vec<i64> = if ids.contains(&0) {
        ROOTS.iter().map(|r| r.0).collect()
    } else {
        ids.to_vec()
    };
    let mut cats = Map::new();
    let mut parent_map = Map::new();
    for id in wanted {
        if let Some(v) = category_json(id, domain, 0) {
            cats.insert(id.to_string(), v);
            if let Some(c) = category(id).filter(|c| parents && c.parent != 0) {
                if let Some(p) = category_json(c.parent, domain, 0) {
                    parent_map.insert(c.parent.to_string(), p);
                }
            }
        }
    }
    out.insert("categories".into(), Value::Object(cats));
    if parents {
        out.insert("categoryParents".into(), Value::Object(parent_map));
    }
    1
}

/// `/search`: products whose title holds every word, 10 per page; 10 tokens.
fn search(
    catalog: &Catalog,
    domain: i64,
    term: &str,
    page: i64,
    now: i64,
    out: &mut Payload,
) -> i64 {
    let words: Vec<&str> = term.split_whitespace().collect();
    let mut found = Vec::new();
    let opt = ProductOptions {
        domain_id: domain,
        history: false,
        ..Default::default()
    };
    // Titles come from the generator: scan a bounded prefix of the catalog.
    for i in 0..catalog.params.products.min(5_000) {
        let p = catalog.product(i, now);
        if words.iter().all(|w| p.title.to_lowercase().contains(w)) {
            found.push(p);
            if found.len() >= ((page + 1) * 10) as usize {
                break;
            }
        }
    }
    let products: Vec<Value> = found
        .iter()
        .skip((page * 10) as usize)
        .map(|p| product_json(catalog, p, &opt, None))
        .collect();
    out.insert("products".into(), Value::Array(products));
    10
}

/// A small product finder: `rootCategory`, `categories_include`,
/// `productType`, `page`, `perPage`. Other filters are accepted and
/// ignored. Returns (page of ASINs, total).
fn product_finder(catalog: &Catalog, sel: &Value) -> (Vec<String>, usize) {
    let as_ids = |v: Option<&Value>| -> Vec<i64> {
        match v {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_i64).collect(),
            Some(v) => v.as_i64().into_iter().collect(),
            None => Vec::new(),
        }
    };
    let roots = as_ids(sel.get("rootCategory"));
    let cats = as_ids(sel.get("categories_include"));
    let per_page = sel
        .get("perPage")
        .and_then(Value::as_i64)
        .unwrap_or(50)
        .clamp(50, 10_000) as usize;
    let page = sel
        .get("page")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .clamp(0, 10_000) as usize;
    let mut total = 0;
    let mut asins = Vec::new();
    for i in 0..catalog.params.products {
        let s = catalog.summary(i);
        if (!roots.is_empty() && !roots.contains(&s.root))
            || (!cats.is_empty() && !cats.contains(&s.leaf))
        {
            continue;
        }
        if total >= page * per_page && asins.len() < per_page {
            asins.push(catalog.asin(&s));
        }
        total += 1;
    }
    (asins, total)
}
