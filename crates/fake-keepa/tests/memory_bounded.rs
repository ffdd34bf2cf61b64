//! The server's memory does not grow with server time: the deal-record
//! cache holds only what the 12 h feed window can still list.

mod common;

use common::*;
use keepa::clock::ManualClock;
use serde_json::json;

#[tokio::test]
async fn deal_cache_stays_bounded_over_days() {
    let clock = ManualClock::new(START_MS);
    let s = builder(&clock)
        .refill_per_minute(1_000)
        .initial_deals(200)
        .deals_per_hour(30.0)
        .start()
        .await
        .unwrap();
    // The backlog is built before the server accepts.
    assert!(s.cached_deal_records() >= 200);
    let c = client();
    let base = s.base_url();
    let sel = json!({"domainId": 1, "priceTypes": [2]}).to_string();
    let enc: String = form_urlencoded::byte_serialize(sel.as_bytes()).collect();
    // 30 deals an hour: the window plus its hour of margin holds about
    // 13 × 30 = 390 events; never more than that, plus slack for jitter,
    // while four days bring 2 880 events.
    let mut most = 0;
    for _ in 0..(4 * 24) {
        clock.advance_minutes(60);
        let a = get(&c, &format!("{base}/deal?key={KEY}&selection={enc}")).await;
        assert_eq!(a.status, 200);
        most = most.max(s.cached_deal_records());
    }
    assert!(most <= 13 * 30 + 10, "cache grew to {most}");
    assert!(s.cached_deal_records() >= 12 * 30 - 10);
}
