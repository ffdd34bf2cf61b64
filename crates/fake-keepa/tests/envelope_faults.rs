//! The envelope faults: a skewed server clock (`skew`, `skew_from`), a
//! `refillRate` of 0 in one answer (`zero_refill_at`), and the bad-key
//! envelope (`bad_key`). On a manual clock; nothing sleeps.

mod common;

use common::{builder, client, get, tokens_left, KEY, START_MS};
use fake_keepa::faults::FaultSpec;
use keepa::clock::ManualClock;

fn field(a: &common::Answer, name: &str) -> i64 {
    a.json[name].as_i64().unwrap()
}

#[tokio::test]
async fn a_skew_step_moves_the_timestamp_and_nothing_else() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock)
        .faults("skew=-30s,skew_from=2m".parse::<FaultSpec>().unwrap())
        .start()
        .await
        .unwrap();
    let c = client();
    let url = format!("{}/token?key={KEY}", server.base_url());
    clock.advance_ms(20_000);
    let a = get(&c, &url).await;
    assert_eq!(field(&a, "timestamp"), START_MS + 20_000);
    assert_eq!(field(&a, "refillIn"), 40_000);
    clock.set_ms(START_MS + 130_000);
    let a = get(&c, &url).await;
    // The server's clock now reads 30 s behind; the next step is still
    // 50 s away.
    assert_eq!(field(&a, "timestamp"), START_MS + 100_000);
    assert_eq!(field(&a, "refillIn"), 50_000);
    server.shutdown().await;
}

#[tokio::test]
async fn zero_refill_at_touches_one_answer_and_not_the_bucket() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock)
        .faults("zero_refill_at=2".parse::<FaultSpec>().unwrap())
        .start()
        .await
        .unwrap();
    let c = client();
    let url = format!("{}/token?key={KEY}", server.base_url());
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(field(&get(&c, &url).await, "refillRate"));
    }
    assert_eq!(seen, vec![20, 0, 20]);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_key_answers_200_with_every_token_field_0_and_charges_nothing() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock)
        .faults("bad_key=true".parse::<FaultSpec>().unwrap())
        .start()
        .await
        .unwrap();
    let c = client();
    let asin = server.book_asins(1).remove(0);
    let token = get(&c, &format!("{}/token?key={KEY}", server.base_url())).await;
    let product = get(
        &c,
        &format!(
            "{}/product?key={KEY}&domain=1&asin={asin}",
            server.base_url()
        ),
    )
    .await;
    for a in [&token, &product] {
        assert_eq!(a.status, 200);
        assert_eq!(field(a, "timestamp"), START_MS);
        for f in ["refillIn", "refillRate", "tokensConsumed"] {
            assert_eq!(field(a, f), 0, "{f}");
        }
        assert_eq!(tokens_left(a), 0);
        assert!(a.json["products"].is_null());
    }
    assert!(token.json["error"].is_null());
    assert_eq!(product.json["error"]["type"], "invalidParameter");
    let stats = server.stats();
    assert_eq!(stats.keys[0].tokens_charged, 0);
    server.shutdown().await;
}
