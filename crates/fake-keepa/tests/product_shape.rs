//! A product from the fake has the shape of a real one: every top-level key
//! and every stats key it emits appears in a real Keepa response.

mod common;
use common::*;
use std::collections::BTreeSet;

use keepa::clock::ManualClock;
use serde_json::Value;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/keepa/product_B0D8W1YVBX.json"
);

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn product_and_stats_keys_are_a_subset_of_the_real_ones() {
    let real: Value = serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    let real_product = &real["products"][0];
    let real_keys = keys(real_product);
    let real_stats = keys(&real_product["stats"]);

    let clock = ManualClock::new(START_MS);
    let server = builder(&clock).start().await.unwrap();
    let c = client();
    let mut asins = server.book_asins(3);
    asins.extend((0..40).filter_map(|i| server.asin(i)));
    let url = format!(
        "{}/product?key={KEY}&domain=1&asin={}&stats=180&buybox=1&rating=1",
        server.base_url(),
        asins.join(",")
    );
    let a = get(&c, &url).await;
    assert_eq!(a.status, 200);
    for p in a.json["products"].as_array().unwrap() {
        let extra: Vec<_> = keys(p).difference(&real_keys).cloned().collect();
        assert!(
            extra.is_empty(),
            "product keys Keepa never sends: {extra:?}"
        );
        let extra: Vec<_> = keys(&p["stats"]).difference(&real_stats).cloned().collect();
        assert!(extra.is_empty(), "stats keys Keepa never sends: {extra:?}");
        let csv = p["csv"].as_array().unwrap();
        assert_eq!(csv.len(), real_product["csv"].as_array().unwrap().len());
        for (i, s) in csv.iter().enumerate() {
            if let Some(s) = s.as_array() {
                let width = if matches!(i, 7 | 18..=29 | 32) { 3 } else { 2 };
                assert_eq!(
                    s.len() % width,
                    0,
                    "csv[{i}] is [t, v{}…]",
                    if width == 3 { ", ship" } else { "" }
                );
            }
        }
        for f in [
            "current", "avg", "avg30", "avg90", "avg180", "avg365", "min", "max",
        ] {
            assert_eq!(p["stats"][f].as_array().unwrap().len(), 36, "{f}");
        }
        // Keepa minutes, 2011 epoch: the fake's data is from around its start.
        let start_min = keepa::KeepaMinutes::from_unix_ms(START_MS).0;
        let lu = p["lastUpdate"].as_i64().unwrap();
        assert!(lu <= start_min && lu > start_min - 2 * 1440, "{lu}");
    }
    // With offers, the only addition is Keepa's own `offers` list.
    let url = format!(
        "{}/product?key={KEY}&domain=1&asin={}&stats=30&offers=20&stock=1",
        server.base_url(),
        asins[0]
    );
    let a = get(&c, &url).await;
    let p = &a.json["products"][0];
    let extra: Vec<_> = keys(p).difference(&real_keys).cloned().collect();
    assert_eq!(extra, vec!["offers".to_string()]);
    let offers = p["offers"].as_array().unwrap();
    assert_eq!(
        p["stats"]["retrievedOfferCount"].as_u64().unwrap() as usize,
        offers.len()
    );
    for o in offers {
        assert_eq!(o["offerCSV"].as_array().unwrap().len() % 3, 0);
        assert!(o["stockCSV"].is_array());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn stats_agree_with_the_history() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock).start().await.unwrap();
    let c = client();
    let asin = server.book_asins(1).remove(0);
    let a = get(
        &c,
        &format!(
            "{}/product?key={KEY}&domain=1&asin={asin}&stats=90",
            server.base_url()
        ),
    )
    .await;
    let p = &a.json["products"][0];
    for ty in [1_usize, 2, 3] {
        let series = p["csv"][ty].as_array().unwrap();
        let last = series[series.len() - 1].as_i64().unwrap();
        assert_eq!(
            p["stats"]["current"][ty].as_i64().unwrap(),
            last,
            "type {ty}"
        );
        let min = p["stats"]["min"][ty][1].as_i64().unwrap();
        let lowest = series
            .chunks(2)
            .map(|w| w[1].as_i64().unwrap())
            .filter(|&v| v >= 0)
            .min()
            .unwrap();
        assert_eq!(min, lowest);
    }
    assert!(
        p["stats"]["salesRankDrops90"].as_i64().unwrap()
            >= p["stats"]["salesRankDrops30"].as_i64().unwrap()
    );
    server.shutdown().await;
}
