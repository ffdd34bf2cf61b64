//! Offers billed by Keepa's data age (`docs/KEEPA_API.md` §7), over HTTP:
//! cached offers cost a flat 5 and carry their collection time; what a
//! request collects is recorded and ages with the server's clock.

mod common;
use common::*;
use keepa::clock::{Clock, ManualClock};
use keepa::KeepaMinutes;
use serde_json::Value;

fn minute(ms: i64) -> i64 {
    KeepaMinutes::from_unix_ms(ms).0
}

/// The product's offers pages as collected: 6 per page, at least one.
fn collected_cost(p: &Value) -> i64 {
    6 * (p["offers"].as_array().unwrap().len().div_ceil(10).max(1) as i64)
}

#[tokio::test]
async fn update_sets_what_is_collected_and_what_it_costs() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock).start().await.unwrap();
    server.set_balance(KEY, 1_000_000);
    let c = client();
    let asins = server.book_asins(40).join(",");
    let url = |update: &str| {
        format!(
            "{}/product?key={KEY}&domain=1&asin={asins}&offers=40&stats=1{update}",
            server.base_url()
        )
    };
    // update=24: offers collected within the day cost 5 and are dated.
    let a = get(&c, &url("&update=24")).await;
    let now = minute(clock.now_ms());
    let products = a.json["products"].as_array().unwrap();
    let mut expected = 0;
    let mut cached = 0;
    for p in products {
        let at = p["stats"]["lastOffersUpdate"].as_i64().unwrap();
        if at < now {
            assert!(now - at < 24 * 60, "older than a day yet not collected");
            for o in p["offers"].as_array().unwrap() {
                assert_eq!(o["lastSeen"].as_i64(), Some(at));
            }
            expected += 5;
            cached += 1;
        } else {
            expected += collected_cost(p);
        }
    }
    assert_eq!(consumed(&a), expected);
    assert!(
        cached >= 10,
        "about 60 % are fresh within the day: {cached}"
    );
    // Asked again: what the first call collected is fresh now, 5 each.
    clock.advance_minutes(60);
    let a = get(&c, &url("&update=24")).await;
    assert_eq!(consumed(&a), 40 * 5);
    // A day later what nobody collected since is collected again.
    clock.advance_minutes(24 * 60);
    let a = get(&c, &url("&update=24")).await;
    assert!(consumed(&a) > 40 * 5, "{}", consumed(&a));
    // With the default (1 h), what nobody collected within the hour is
    // collected again, and recorded: asked again at once, 5 each.
    let a = get(&c, &url("")).await;
    assert!(consumed(&a) > 40 * 5);
    let a = get(&c, &url("")).await;
    assert_eq!(consumed(&a), 40 * 5);
    // update=0 always collects, +1 on data under an hour old (all of it).
    let a = get(&c, &url("&update=0")).await;
    let pages: i64 = a.json["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(collected_cost)
        .sum();
    assert_eq!(consumed(&a), pages + 40);
    server.shutdown().await;
}

#[tokio::test]
async fn update_minus_one_never_collects_and_strangers_cost_nothing() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock).start().await.unwrap();
    let c = client();
    let known = server.book_asins(3);
    let url = format!(
        "{}/product?key={KEY}&domain=1&asin={},B0D8W1YVBX&offers=100&stats=1&update=-1",
        server.base_url(),
        known.join(",")
    );
    let a = get(&c, &url).await;
    assert_eq!(a.status, 200);
    let products = a.json["products"].as_array().unwrap();
    assert_eq!(products.len(), 3, "the unknown ASIN is left out");
    assert_eq!(
        consumed(&a),
        3 * 5,
        "5 per known product, 0 for the stranger"
    );
    let now = minute(clock.now_ms());
    for p in products {
        assert!(p["stats"]["lastOffersUpdate"].as_i64().unwrap() < now);
    }
    server.shutdown().await;
}
