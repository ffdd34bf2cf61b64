//! Driven by the project's own client: `/_fake/stats` agrees with what the
//! client saw, and the client classifies every fault the server injects.

mod common;
use common::*;
use std::time::Duration;

use fake_keepa::{FakeKeepa, FaultSpec};
use keepa::client::{ApiKey, Client};
use keepa::clock::ManualClock;
use keepa::error::ApiError;
use keepa::request::{DealSelection, ProductRequest, Request};
use keepa::Domain;

fn keepa_client(base: &str, timeout: Duration) -> Client {
    Client::builder(ApiKey::new(KEY).unwrap())
        .base_url(base)
        .timeout(timeout)
        .build()
        .unwrap()
}

#[tokio::test]
async fn fake_stats_agree_with_the_clients_tally() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock)
        .refill_per_minute(5)
        .start_tokens(40)
        .start()
        .await
        .unwrap();
    let client = keepa_client(&server.base_url(), Duration::from_secs(30));
    let asins = server.book_asins(30);
    let (mut charged, mut ok, mut refused) = (0_i64, 0_u64, 0_u64);
    for round in 0..40 {
        let req: Request = match round % 4 {
            0 => Request::token(),
            1 => ProductRequest::asins(Domain::Com, asins[round % 27..round % 27 + 3].to_vec())
                .stats(90)
                .build()
                .unwrap(),
            2 => DealSelection::new(Domain::Com, 2)
                .with_page((round / 8) as u32)
                .build()
                .unwrap(),
            _ => ProductRequest::asins(Domain::Com, [asins[round % 30].clone()])
                .offers(20)
                .build()
                .unwrap(),
        };
        match client.send(&req).await {
            Ok(r) => {
                ok += 1;
                charged += r.envelope.tokens_consumed.unwrap();
            }
            Err(e @ ApiError::NotEnoughTokens(_)) => {
                refused += 1;
                assert_eq!(e.envelope().unwrap().tokens_consumed, Some(0));
            }
            Err(e) => panic!("unexpected {e}"),
        }
        clock.advance_ms(7_000);
    }
    assert!(refused > 0 && ok > 0);
    // Read the stats over HTTP, as a benchmark would.
    let stats = get(
        &client_plain(),
        &format!("{}/_fake/stats", server.base_url()),
    )
    .await;
    let k = &stats.json["keys"][0];
    assert_eq!(k["label"], KEY);
    assert_eq!(k["tokensCharged"].as_i64().unwrap(), charged);
    assert_eq!(k["refused429"].as_u64().unwrap(), refused);
    let by_status: u64 = k["requests"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|m| m.as_object().unwrap().iter())
        .filter(|(s, _)| *s == "200")
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    assert_eq!(by_status, ok);
    assert_eq!(k["requests"]["token"]["200"].as_u64().unwrap(), 10);
    assert!(k["minBalance"].as_i64().unwrap() <= 0);
    // The balance is what refill and charges leave: 40 + 5 × steps − charged.
    let steps = k["refillStepsTotal"].as_i64().unwrap();
    assert_eq!(steps, 40 * 7 / 60);
    assert_eq!(k["balance"].as_i64().unwrap(), 40 + 5 * steps - charged);
    server.shutdown().await;
}

fn client_plain() -> reqwest::Client {
    client()
}

#[tokio::test]
async fn client_sees_each_injected_fault_and_hangs_are_still_charged() {
    let c = client_plain();
    // Resets: the client gets a transport error, nothing is charged.
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock)
        .faults("reset=1".parse::<FaultSpec>().unwrap())
        .start()
        .await
        .unwrap();
    let client = keepa_client(&server.base_url(), Duration::from_secs(10));
    let asin = server.book_asins(1).remove(0);
    let req = ProductRequest::asins(Domain::Com, [asin.clone()])
        .build()
        .unwrap();
    let err = client.send(&req).await.unwrap_err();
    assert!(matches!(err, ApiError::Transport { .. }), "{err:?}");
    let s = server.stats();
    assert_eq!(
        (s.faults.resets, s.key(KEY).unwrap().tokens_charged),
        (1, 0)
    );
    server.shutdown().await;

    // Hangs: the client times out, the server charged the request.
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock)
        .faults("hang=1,hang_for=30s".parse::<FaultSpec>().unwrap())
        .start()
        .await
        .unwrap();
    let client = keepa_client(&server.base_url(), Duration::from_millis(300));
    let err = client.send(&req).await.unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Timeout {
                may_have_been_charged: true,
                ..
            }
        ),
        "{err:?}"
    );
    let s = server.stats();
    assert_eq!(
        (
            s.faults.hangs,
            s.key(KEY).unwrap().tokens_charged,
            s.key(KEY).unwrap().balance
        ),
        (1, 1, 1199)
    );
    server.shutdown().await;

    // Garbage: charged, body undecodable.
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock)
        .faults("garbage=1".parse::<FaultSpec>().unwrap())
        .start()
        .await
        .unwrap();
    let client = keepa_client(&server.base_url(), Duration::from_secs(10));
    for _ in 0..6 {
        let err = client.send(&req).await.unwrap_err();
        assert!(
            matches!(
                err,
                ApiError::Undecodable { .. } | ApiError::Transport { .. }
            ),
            "{err:?}"
        );
    }
    let s = server.stats();
    assert_eq!(
        (s.faults.garbage, s.key(KEY).unwrap().tokens_charged),
        (6, 6)
    );
    server.shutdown().await;

    // Foreign consumer: drains the bucket unseen, visible in tokensLeft.
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock)
        .refill_per_minute(20)
        .faults("foreign=8/min,foreign_max=10".parse::<FaultSpec>().unwrap())
        .start()
        .await
        .unwrap();
    clock.advance_minutes(600);
    let t = get(&c, &format!("{}/token?key={KEY}", server.base_url())).await;
    let s = server.stats();
    let k = s.key(KEY).unwrap();
    let spent = k.foreign_spent;
    assert!((3_500..6_000).contains(&spent), "about 8 × 600: {spent}");
    assert_eq!(tokens_left(&t), k.balance);
    assert_eq!(k.tokens_charged, 0);
    // Same seed, same foreign spending.
    server.shutdown().await;
    let clock2 = ManualClock::new(START_MS);
    let again = builder(&clock2)
        .refill_per_minute(20)
        .faults("foreign=8/min,foreign_max=10".parse::<FaultSpec>().unwrap())
        .start()
        .await
        .unwrap();
    clock2.advance_minutes(600);
    assert_eq!(again.stats().key(KEY).unwrap().foreign_spent, spent);
    again.shutdown().await;
}

#[tokio::test]
async fn latency_delays_answers() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock)
        .faults("latency=150ms".parse::<FaultSpec>().unwrap())
        .start()
        .await
        .unwrap();
    let client = keepa_client(&server.base_url(), Duration::from_secs(10));
    let t0 = std::time::Instant::now();
    client.send(&Request::token()).await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(150));
    server.shutdown().await;
}

#[tokio::test]
async fn products_served_twice_in_the_same_shape_are_counted() {
    let clock = ManualClock::new(START_MS);
    let server = builder(&clock).start_tokens(1000).start().await.unwrap();
    let client = keepa_client(&server.base_url(), Duration::from_secs(30));
    let asins = server.book_asins(3);
    let stats = |list: &[String]| {
        ProductRequest::asins(Domain::Com, list.to_vec())
            .stats(90)
            .build()
            .unwrap()
    };
    let offers = |list: &[String]| {
        ProductRequest::asins(Domain::Com, list.to_vec())
            .offers(20)
            .build()
            .unwrap()
    };
    client.send(&stats(&asins[..2])).await.unwrap();
    // The survivor's offers: another request shape, not a repeat.
    client.send(&offers(&asins[..1])).await.unwrap();
    let k = server.stats().key(KEY).unwrap().clone();
    assert_eq!((k.products_served, k.products_served_again), (3, 0));
    // Paying twice for one product's stats is.
    client.send(&stats(&asins[1..3])).await.unwrap();
    let k = server.stats().key(KEY).unwrap().clone();
    assert_eq!((k.products_served, k.products_served_again), (5, 1));
}

/// A server on a fast clock says so in every Keepa answer, and the client
/// reads it; a hand-moved clock or real time announces nothing.
#[tokio::test]
async fn the_client_reads_the_servers_time_scale() {
    let fast = FakeKeepa::builder()
        .keys([KEY])
        .start_unix_ms(START_MS)
        .time_scale(600.0)
        .start()
        .await
        .unwrap();
    let client = keepa_client(&fast.base_url(), Duration::from_secs(30));
    let token = client.send(&Request::token()).await.unwrap();
    assert_eq!(token.server_time_scale, Some(600.0));
    let asins = fast.book_asins(1);
    let product = ProductRequest::asins(Domain::Com, asins).build().unwrap();
    let answer = client.send(&product).await.unwrap();
    assert_eq!(answer.server_time_scale, Some(600.0));
    fast.shutdown().await;

    let real = FakeKeepa::builder()
        .keys([KEY])
        .start_unix_ms(START_MS)
        .start()
        .await
        .unwrap();
    let client = keepa_client(&real.base_url(), Duration::from_secs(30));
    let token = client.send(&Request::token()).await.unwrap();
    assert_eq!(token.server_time_scale, None);
    real.shutdown().await;

    let clock = ManualClock::new(START_MS);
    let manual = builder(&clock).start().await.unwrap();
    let client = keepa_client(&manual.base_url(), Duration::from_secs(30));
    let token = client.send(&Request::token()).await.unwrap();
    assert_eq!(token.server_time_scale, None);
    manual.shutdown().await;
}
