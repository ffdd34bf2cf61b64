//! The deal feed: backlog at start, 150 per page, the last page is short,
//! the 10 000-deal cap, the 12 h window, filters and sorting, determinism.

mod common;
use common::*;
use keepa::clock::ManualClock;
use serde_json::{json, Value};

async fn deal_page(c: &reqwest::Client, base: &str, sel: &Value) -> Answer {
    let enc: String = form_urlencode(&sel.to_string());
    get(c, &format!("{base}/deal?key={KEY}&selection={enc}")).await
}

fn form_urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every match of the query (all pages), from the category summary.
fn matches(a: &Answer) -> i64 {
    a.json["deals"]["categoryCount"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .sum()
}

fn deals(a: &Answer) -> &Vec<Value> {
    a.json["deals"]["dr"].as_array().unwrap()
}

#[tokio::test]
async fn backlog_pages_and_the_last_short_page() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock).start().await.unwrap();
    let c = client();
    let base = server.base_url();
    let mut total = 0;
    let mut last_update = i64::MAX;
    let mut asins = std::collections::HashSet::new();
    for page in 0.. {
        let a = deal_page(
            &c,
            &base,
            &json!({"domainId": 1, "priceTypes": [2], "page": page, "sortType": 1}),
        )
        .await;
        assert_eq!(a.status, 200);
        assert_eq!(consumed(&a), 5);
        let dr = deals(&a);
        for d in dr {
            let lu = d["lastUpdate"].as_i64().unwrap();
            assert!(lu <= last_update, "newest first");
            last_update = lu;
            assert!(d["current"][2].as_i64().unwrap() > 0);
            assert!(d["delta"][0][2].is_i64());
            asins.insert(d["asin"].as_str().unwrap().to_string());
        }
        total += dr.len();
        if dr.len() < 150 {
            break;
        }
        assert_eq!(dr.len(), 150);
    }
    // 600 backlog deals, most of them on used prices.
    assert!(total > 200 && total < 600, "{total}");
    let start_min = keepa::KeepaMinutes::from_unix_ms(START_MS).0;
    assert!(last_update > start_min - 12 * 60);
    // Every deal's drop is in the product's own history.
    let asin = asins.iter().next().unwrap();
    let p = get(
        &c,
        &format!("{base}/product?key={KEY}&domain=1&asin={asin}&stats=90"),
    )
    .await;
    let csv = &p.json["products"][0]["csv"];
    assert!(csv[2].as_array().unwrap().len() >= 2);

    // Twelve hours later the backlog has aged out; the live rate (120/h) refills it.
    clock.advance_minutes(12 * 60 + 5);
    let a = deal_page(
        &c,
        &base,
        &json!({"domainId": 1, "priceTypes": [2], "page": 0}),
    )
    .await;
    let newest = deals(&a)[0]["creationDate"].as_i64().unwrap();
    assert!(newest > start_min);
    let oldest = deals(&a).last().unwrap()["creationDate"].as_i64().unwrap();
    assert!(
        oldest > start_min,
        "no backlog deal survives the 12 h window"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn paging_stops_at_ten_thousand_deals() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock)
        .initial_deals(18_000)
        .catalog(fake_keepa::CatalogParams {
            products: 50_000,
            book_share: 1.0,
            sellers: 100,
        })
        .start()
        .await
        .unwrap();
    let c = client();
    let base = server.base_url();
    let sel = |page: i64| json!({"domainId": 1, "priceTypes": [2], "page": page});
    let p65 = deal_page(&c, &base, &sel(65)).await;
    assert_eq!(deals(&p65).len(), 150);
    let p66 = deal_page(&c, &base, &sel(66)).await;
    assert_eq!(deals(&p66).len(), 100, "deals 9900..10000");
    let p67 = deal_page(&c, &base, &sel(67)).await;
    assert_eq!((p67.status, deals(&p67).len()), (200, 0));
    let total: i64 = p65.json["deals"]["categoryCount"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert!(
        total > 10_000,
        "the category summary counts every match: {total}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn filters_and_sorts_behave_as_documented() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock).initial_deals(1500).start().await.unwrap();
    let c = client();
    let base = server.base_url();
    let all = deal_page(&c, &base, &json!({"domainId": 1, "priceTypes": [1]})).await;
    let n_all = matches(&all);
    assert!(n_all > 150);

    // Percent delta, sorted high to low, within the range when enabled.
    let sel = json!({"domainId": 1, "priceTypes": [1], "sortType": 4, "dateRange": 1,
        "isRangeEnabled": true, "deltaPercentRange": [30, 100]});
    let a = deal_page(&c, &base, &sel).await;
    let pct: Vec<i64> = deals(&a)
        .iter()
        .map(|d| d["deltaPercent"][1][1].as_i64().unwrap())
        .collect();
    assert!(!pct.is_empty() && matches(&a) < n_all, "{pct:?} of {n_all}");
    assert!(pct.iter().all(|&p| (30..=100).contains(&p)), "{pct:?}");
    assert!(pct.windows(2).all(|w| w[0] >= w[1]));
    // The same range is ignored without isRangeEnabled.
    let a = deal_page(
        &c,
        &base,
        &json!({"domainId": 1, "priceTypes": [1], "deltaPercentRange": [30, 100]}),
    )
    .await;
    assert_eq!(matches(&a), n_all);
    // Inverted: low to high.
    let a = deal_page(
        &c,
        &base,
        &json!({"domainId": 1, "priceTypes": [1], "sortType": -4}),
    )
    .await;
    let pct: Vec<i64> = deals(&a)
        .iter()
        .map(|d| d["deltaPercent"][0][1].as_i64().unwrap())
        .collect();
    assert!(pct.windows(2).all(|w| w[0] <= w[1]));
    // Sales rank ascending, and salesRankRange.
    let a = deal_page(
        &c,
        &base,
        &json!({"domainId": 1, "priceTypes": [1], "sortType": 3, "salesRankRange": [0, 500000]}),
    )
    .await;
    let ranks: Vec<i64> = deals(&a)
        .iter()
        .map(|d| d["current"][3].as_i64().unwrap())
        .collect();
    assert!(ranks.iter().all(|&r| (0..=500_000).contains(&r)));
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]));
    // currentRange.
    let a = deal_page(&c, &base, &json!({"domainId": 1, "priceTypes": [1], "isRangeEnabled": true, "currentRange": [0, 1500]})).await;
    assert!(deals(&a)
        .iter()
        .all(|d| d["current"][1].as_i64().unwrap() <= 1500));
    // Categories: books only, then books excluded.
    let books = deal_page(
        &c,
        &base,
        &json!({"domainId": 1, "priceTypes": [1], "includeCategories": [283155]}),
    )
    .await;
    assert!(deals(&books).iter().all(|d| d["rootCat"] == 283155));
    let rest = deal_page(
        &c,
        &base,
        &json!({"domainId": 1, "priceTypes": [1], "excludeCategories": [283155]}),
    )
    .await;
    assert!(deals(&rest).iter().all(|d| d["rootCat"] != 283155));
    assert!(matches(&books) > 0 && matches(&rest) > 0);
    assert_eq!(matches(&books) + matches(&rest), n_all);
    // A string where a number belongs is ignored ("4" is not 4).
    let a = deal_page(
        &c,
        &base,
        &json!({"domainId": 1, "priceTypes": [1], "sortType": "4"}),
    )
    .await;
    assert_eq!(deals(&a), deals(&all));
    // POST gives the same as GET.
    let p = post(
        &c,
        &format!("{base}/deal?key={KEY}"),
        &json!({"domainId": 1, "priceTypes": [1]}).to_string(),
    )
    .await;
    assert_eq!(deals(&p), deals(&all));
    // A price type with no generated deals is an empty, valid feed.
    let a = deal_page(&c, &base, &json!({"domainId": 1, "priceTypes": [3]})).await;
    assert_eq!((a.status, deals(&a).len()), (200, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn deltas_agree_with_the_product_history() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock).start().await.unwrap();
    let c = client();
    let base = server.base_url();
    let a = deal_page(&c, &base, &json!({"domainId": 1, "priceTypes": [2]})).await;
    for d in deals(&a).iter().take(10) {
        let asin = d["asin"].as_str().unwrap();
        let created = d["creationDate"].as_i64().unwrap();
        let current = d["current"][2].as_i64().unwrap();
        let p = get(
            &c,
            &format!("{base}/product?key={KEY}&domain=1&asin={asin}"),
        )
        .await;
        let used = p.json["products"][0]["csv"][2].as_array().unwrap().clone();
        let points: Vec<(i64, i64)> = used
            .chunks(2)
            .map(|w| (w[0].as_i64().unwrap(), w[1].as_i64().unwrap()))
            .collect();
        let at = points
            .iter()
            .position(|&(t, _)| t == created)
            .expect("the drop is a history point");
        assert_eq!(points[at].1, current);
        assert!(at > 0 && points[at - 1].1 > current, "it is a drop");
        assert_eq!(
            d["deltaLast"][2].as_i64().unwrap(),
            points[at - 1].1 - current
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn same_seed_same_catalog_and_feed() {
    let run = |seed: u64| async move {
        let clock = ManualClock::new(START_MS);
        let server = builder(&clock).seed(seed).start().await.unwrap();
        let c = client();
        let base = server.base_url();
        let feed = deal_page(
            &c,
            &base,
            &json!({"domainId": 1, "priceTypes": [2], "page": 1}),
        )
        .await;
        let asins = server.book_asins(5).join(",");
        let products = get(
            &c,
            &format!("{base}/product?key={KEY}&domain=1&asin={asins}&stats=180&offers=20"),
        )
        .await;
        server.shutdown().await;
        (
            feed.json["deals"].clone(),
            products.json["products"].clone(),
        )
    };
    let (f1, p1) = run(11).await;
    let (f2, p2) = run(11).await;
    let (f3, p3) = run(12).await;
    assert_eq!(f1, f2);
    assert_eq!(p1, p2);
    assert_ne!(f1, f3);
    assert_ne!(p1, p3);
}

/// A server started later with the first one's feed origin (a resumed
/// sandbox) serves the same feed as the first at the same instant, and its
/// bucket counts from its own start.
#[tokio::test]
async fn feed_origin_keeps_the_feed_of_an_earlier_start() {
    let later = START_MS + 3 * 3_600_000 + 17_000;
    let first_clock = ManualClock::new(START_MS);
    let first = builder(&first_clock).start().await.unwrap();
    first_clock.advance_ms(later - START_MS);
    let resumed_clock = ManualClock::new(later);
    let resumed = builder(&resumed_clock)
        .feed_origin_ms(START_MS)
        .start_tokens(20)
        .start()
        .await
        .unwrap();
    let c = client();
    for page in 0..3 {
        let sel = json!({"domainId": 1, "priceTypes": [2], "page": page, "sortType": 1});
        let a = deal_page(&c, &first.base_url(), &sel).await;
        let b = deal_page(&c, &resumed.base_url(), &sel).await;
        assert_eq!(deals(&a), deals(&b), "page {page}");
    }
    // 20 at start, minus the three pages; one refill step 60 s after its start.
    assert_eq!(resumed.stats().key(KEY).unwrap().balance, 20 - 15);
    resumed_clock.advance_ms(60_000);
    assert_eq!(resumed.stats().key(KEY).unwrap().balance, 20 - 15 + 20);
    first.shutdown().await;
    resumed.shutdown().await;
}
