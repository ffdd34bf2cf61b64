//! Every status of KEEPA_API.md §3 can be produced, each with the envelope
//! and Keepa's error object; nothing a client sends makes the server panic.

mod common;
use common::*;
use fake_keepa::FaultSpec;
use keepa::clock::ManualClock;

fn error_type(a: &Answer) -> &str {
    a.json["error"]["type"].as_str().unwrap_or("")
}

#[tokio::test]
async fn every_documented_status_is_produced() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock)
        .expired_keys(["old"])
        .start_tokens(0)
        .start()
        .await
        .unwrap();
    let c = client();
    let base = server.base_url();
    let asin = server.book_asins(1).remove(0);

    // 400: unknown key, all token fields 0.
    let a = get(&c, &format!("{base}/product?key=nope&domain=1&asin={asin}")).await;
    assert_eq!(a.status, 400);
    assert_eq!(error_type(&a), "invalidParameter");
    for f in ["tokensLeft", "refillIn", "refillRate", "tokensConsumed"] {
        assert_eq!(a.json[f], 0, "{f}");
    }
    // 400: bad domain, with Keepa's details.
    for d in ["0", "7", "13", "x", "99999999999999999999999"] {
        let a = get(
            &c,
            &format!("{base}/product?key={KEY}&domain={d}&asin={asin}"),
        )
        .await;
        assert_eq!(a.status, 400, "domain {d}");
        assert_eq!(
            a.json["error"]["details"],
            serde_json::json!([{"type": "domain", "message": "invalid"}])
        );
        assert_eq!(a.json["tokensConsumed"], 0);
        assert!(a.json["timestamp"].is_i64());
    }
    // 400: > 100 ASINs, offers outside 20..=100.
    let many = server.book_asins(101).join(",");
    assert_eq!(
        get(
            &c,
            &format!("{base}/product?key={KEY}&domain=1&asin={many}")
        )
        .await
        .status,
        400
    );
    for o in ["19", "101", "-1", "abc"] {
        let a = get(
            &c,
            &format!("{base}/product?key={KEY}&domain=1&asin={asin}&offers={o}"),
        )
        .await;
        assert_eq!(a.status, 400, "offers {o}");
    }
    // 400: malformed selection (GET and POST).
    for sel in [
        "{",
        "[]",
        "%7B%22domainId%22%3A1%7D",
        "%7B%22domainId%22%3A1%2C%22priceTypes%22%3A%5B%222%22%5D%7D",
    ] {
        let a = get(&c, &format!("{base}/deal?key={KEY}&selection={sel}")).await;
        assert_eq!(a.status, 400, "selection {sel}");
    }
    assert_eq!(
        post(&c, &format!("{base}/deal?key={KEY}"), "not json")
            .await
            .status,
        400
    );
    // 402: expired key.
    let a = get(&c, &format!("{base}/token?key=old")).await;
    assert_eq!((a.status, error_type(&a)), (402, "paymentRequired"));
    // 404: unknown endpoint, envelope of the key.
    let a = get(&c, &format!("{base}/nothing?key={KEY}")).await;
    assert_eq!(a.status, 404);
    assert!(a.json["tokensLeft"].is_i64());
    // 405: wrong method.
    assert_eq!(
        post(
            &c,
            &format!("{base}/product?key={KEY}&domain=1&asin={asin}"),
            ""
        )
        .await
        .status,
        405
    );
    // 429: balance 0.
    let a = get(
        &c,
        &format!("{base}/product?key={KEY}&domain=1&asin={asin}"),
    )
    .await;
    assert_eq!((a.status, consumed(&a)), (429, 0));
    // Every answer above was gzip.
    server.shutdown().await;

    // 500 and 503: injected server faults, uncharged, with the envelope.
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock)
        .faults("5xx=1".parse::<FaultSpec>().unwrap())
        .start()
        .await
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let a = get(
            &c,
            &format!(
                "{}/product?key={KEY}&domain=1&asin={asin}",
                server.base_url()
            ),
        )
        .await;
        assert!(a.gzip);
        assert_eq!(consumed(&a), 0);
        assert_eq!(tokens_left(&a), 1200);
        assert!(a.json["error"].is_object());
        seen.insert(a.status);
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![500, 503]);
    assert_eq!(server.stats().faults.server_errors, 40);
    server.shutdown().await;
}

#[tokio::test]
async fn hostile_input_never_panics_the_server() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock).start().await.unwrap();
    let c = client();
    let base = server.base_url();
    let nasty = [
        "/product?key=k1&domain=1&asin=%FF%FE",
        "/product?key=k1&domain=1&asin=,,,,",
        "/product?key=k1&domain=1&asin=B0XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "/product?key=k1&domain=1&asin=%C3%84%C3%84%C3%84%C3%84%C3%84",
        "/product?key=k1&domain=1&asin=0000000000&stats=99999999999999999999",
        "/product?key=k1&domain=1&asin=0000000000&days=-5",
        "/product?key=k1&domain=1&code=1&asin=2",
        "/deal?key=k1&selection=%7B%22domainId%22%3A1%2C%22priceTypes%22%3A%5B2%5D%2C%22page%22%3A99999999999999%7D",
        "/deal?key=k1&selection=%7B%22domainId%22%3A1%2C%22priceTypes%22%3A%5B2%5D%2C%22page%22%3A1e300%7D",
        "/deal?key=k1&selection=%7B%22domainId%22%3A1%2C%22priceTypes%22%3A%5B2%5D%2C%22deltaRange%22%3A5%7D",
        "/seller?key=k1&domain=1&seller=%00%00",
        "/category?key=k1&domain=1&category=-99999999999999999999",
        "/bestsellers?key=k1&domain=1&category=1&range=7",
        "/query?key=k1&domain=1&selection=%5B%5D",
        "/token?key=%%%%",
        "/?",
        "/_fake/nope",
    ];
    for path in nasty {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert!(r.status().as_u16() < 500, "{path}: {}", r.status());
    }
    // Still alive.
    assert_eq!(
        get(&c, &format!("{base}/token?key={KEY}")).await.status,
        200
    );
    server.shutdown().await;
}
