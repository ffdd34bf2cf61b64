//! Keepa's token rules, end to end over HTTP, with a manual clock.

mod common;
use common::*;
use keepa::clock::{Clock, ManualClock};

#[tokio::test]
async fn refill_adds_exactly_r_per_minute_and_caps() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock)
        .refill_per_minute(20)
        .start_tokens(0)
        .start()
        .await
        .unwrap();
    let c = client();
    let url = format!("{}/token?key={KEY}", server.base_url());
    let a = get(&c, &url).await;
    assert_eq!(a.status, 200);
    assert!(a.gzip);
    assert_eq!(tokens_left(&a), 0);
    assert_eq!(a.json["refillIn"], 60_000);
    assert_eq!(a.json["refillRate"], 20);
    assert_eq!(a.json["timestamp"], START_MS);
    clock.advance_ms(59_999);
    let a = get(&c, &url).await;
    assert_eq!(tokens_left(&a), 0);
    assert_eq!(a.json["refillIn"], 1);
    clock.advance_ms(1);
    let a = get(&c, &url).await;
    assert_eq!(tokens_left(&a), 20);
    assert_eq!(a.json["refillIn"], 60_000);
    clock.advance_minutes(10);
    assert_eq!(tokens_left(&get(&c, &url).await), 220);
    // The cap is 60 × R.
    clock.advance_minutes(1000);
    assert_eq!(tokens_left(&get(&c, &url).await), 1200);
    let stats = server.stats();
    let k = stats.key(KEY).unwrap();
    assert_eq!(k.balance, 1200);
    assert_eq!(k.refill_steps_total, 1011);
    assert!(k.wasted_refill > 0);
    assert_eq!(k.refill_steps.last().unwrap().balance_after, 1200);
    server.shutdown().await;
}

#[tokio::test]
async fn fixed_bucket_max_caps_the_balance() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock)
        .refill_per_minute(5)
        .bucket_max(12)
        .start_tokens(0)
        .start()
        .await
        .unwrap();
    let c = client();
    let url = format!("{}/token/?key={KEY}", server.base_url());
    clock.advance_minutes(2);
    assert_eq!(tokens_left(&get(&c, &url).await), 10);
    clock.advance_minutes(1);
    assert_eq!(tokens_left(&get(&c, &url).await), 12);
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_at_balance_one_costing_90_runs_then_the_next_is_429_free() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock)
        .refill_per_minute(20)
        .start_tokens(1)
        .start()
        .await
        .unwrap();
    let c = client();
    let asins = server.book_asins(15).join(",");
    let url = format!(
        "{}/product?key={KEY}&domain=1&asin={asins}&offers=20&stats=1",
        server.base_url()
    );
    let a = get(&c, &url).await;
    assert_eq!(a.status, 200);
    let cost = consumed(&a);
    let products = a.json["products"].as_array().unwrap();
    assert_eq!(products.len(), 15);
    // 6 per page of 10 offers collected; offers=20 gives one or two pages
    // per product; offers Keepa collected within the hour (the default
    // `update`) are not collected again and cost a flat 5.
    let now_min = keepa::KeepaMinutes::from_unix_ms(START_MS).0;
    let expected: i64 = products
        .iter()
        .map(|p| {
            if p["stats"]["lastOffersUpdate"].as_i64().unwrap() < now_min {
                5
            } else {
                6 * (p["offers"].as_array().unwrap().len().div_ceil(10).max(1) as i64)
            }
        })
        .sum();
    assert_eq!(cost, expected);
    assert!(cost >= 75, "15 products × at least 5 tokens: {cost}");
    assert_eq!(tokens_left(&a), 1 - cost);

    let a = get(&c, &url).await;
    assert_eq!(a.status, 429);
    assert_eq!(consumed(&a), 0);
    assert_eq!(tokens_left(&a), 1 - cost);
    // The 429 body is the bare envelope.
    let keys: Vec<&str> = a
        .json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys.len(),
        7,
        "timestamp, tokensLeft, refillIn, refillRate, tokenFlowReduction, tokensConsumed, processingTimeInMs: {keys:?}"
    );
    // /token is answered at a negative balance, free.
    let t = get(&c, &format!("{}/token?key={KEY}", server.base_url())).await;
    assert_eq!(
        (t.status, consumed(&t), tokens_left(&t)),
        (200, 0, 1 - cost)
    );
    let s = server.stats();
    let k = s.key(KEY).unwrap();
    assert_eq!(k.tokens_charged, cost);
    assert_eq!(k.refused_429, 1);
    assert_eq!(k.min_balance, 1 - cost);
    server.shutdown().await;
}

#[tokio::test]
async fn exactly_ninety_tokens_leaves_minus_89() {
    // Fifteen products, each with at most ten offers, collected: 15 × 6 = 90.
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock).start_tokens(1).start().await.unwrap();
    let c = client();
    let probe = client();
    let mut collected = Vec::new();
    server.set_balance(KEY, 1_000_000);
    let at = |asin: &str, update: i64| {
        format!(
            "{}/product?key={KEY}&domain=1&asin={asin}&offers=20&stats=1&update={update}",
            server.base_url()
        )
    };
    for asin in server.book_asins(400) {
        // Collected now (6: one page), not served from Keepa's cache (5).
        if consumed(&get(&probe, &at(&asin, 1)).await) == 6 {
            collected.push(asin);
        }
        if collected.len() == 30 {
            break;
        }
    }
    // An hour later, those nobody else collected since are due again;
    // `update=-1` looks without collecting (a flat 5).
    let then = keepa::KeepaMinutes::from_unix_ms(clock.now_ms()).0;
    clock.advance_minutes(61);
    let mut small = Vec::new();
    for asin in collected {
        let a = get(&probe, &at(&asin, -1)).await;
        assert_eq!(consumed(&a), 5, "update=-1 never collects");
        let stats = &a.json["products"][0]["stats"];
        // At most ten offers now (COUNT_NEW + COUNT_USED): one page.
        let count = |i: usize| stats["current"][i].as_i64().unwrap().max(0);
        if stats["lastOffersUpdate"] == then && count(11) + count(12) <= 10 && small.len() < 15 {
            small.push(asin);
        }
    }
    assert_eq!(small.len(), 15);
    server.set_balance(KEY, 1);
    let url = format!(
        "{}/product?key={KEY}&domain=1&asin={}&offers=20",
        server.base_url(),
        small.join(",")
    );
    let a = get(&c, &url).await;
    assert_eq!((a.status, consumed(&a), tokens_left(&a)), (200, 90, -89));
    let a = get(&c, &url).await;
    assert_eq!((a.status, consumed(&a), tokens_left(&a)), (429, 0, -89));
    // Refill alone: five steps later the balance is 11 and requests run
    // again (the steps count from the server start, 61 minutes ago).
    clock.advance_minutes(5);
    let t = get(&c, &format!("{}/token?key={KEY}", server.base_url())).await;
    assert_eq!(tokens_left(&t), 11);
    assert!(server.now_ms() == clock.now_ms());
    server.shutdown().await;
}

#[tokio::test]
async fn rate_schedule_changes_the_step() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock)
        .refill_schedule(vec![(0, 5), (3, 25)])
        .start_tokens(0)
        .start()
        .await
        .unwrap();
    let c = client();
    let url = format!("{}/token?key={KEY}", server.base_url());
    clock.advance_minutes(2);
    let a = get(&c, &url).await;
    assert_eq!(
        (tokens_left(&a), a.json["refillRate"].as_i64().unwrap()),
        (10, 5)
    );
    clock.advance_minutes(1);
    let a = get(&c, &url).await;
    assert_eq!(
        (tokens_left(&a), a.json["refillRate"].as_i64().unwrap()),
        (35, 25)
    );
    // The admin hook replaces it.
    let r = c
        .post(format!("{}/_fake/schedule?key={KEY}", server.base_url()))
        .body("[[0, 1]]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    clock.advance_minutes(1);
    assert_eq!(tokens_left(&get(&c, &url).await), 36);
    server.shutdown().await;
}

#[tokio::test]
async fn keys_have_separate_buckets() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock).start_tokens(100).start().await.unwrap();
    let c = client();
    let asin = server.book_asins(1).remove(0);
    let a = get(
        &c,
        &format!(
            "{}/product?key={KEY}&domain=1&asin={asin}",
            server.base_url()
        ),
    )
    .await;
    assert_eq!((consumed(&a), tokens_left(&a)), (1, 99));
    let b = get(&c, &format!("{}/token?key=k2", server.base_url())).await;
    assert_eq!(tokens_left(&b), 100);
    server.shutdown().await;
}
