//! Shared helpers of the Redis tests: the URL from `KEEPA_HARVEST_TEST_REDIS`,
//! a unique ledger per test, and cleanup of that ledger's keys only.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use budget::redis_ledger::{LedgerName, RedisLedger, RedisOptions};
use keepa::TokenSnapshot;

/// The test Redis, or `None` after saying clearly that the test did not run.
pub fn redis_url(test: &str) -> Option<String> {
    match std::env::var("KEEPA_HARVEST_TEST_REDIS") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            eprintln!(
                "SKIPPED {test}: KEEPA_HARVEST_TEST_REDIS is unset; this Redis test did not run \
                 (set it to e.g. redis://127.0.0.1:6379/)"
            );
            None
        }
    }
}

/// A ledger name no other test (or run) uses.
pub fn unique_name(tag: &str) -> LedgerName {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    LedgerName::new(&format!(
        "test-{tag}-{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    ))
    .unwrap()
}

/// A ledger ("process") on `name` with default options.
pub async fn connect(url: &str, name: &LedgerName) -> RedisLedger {
    connect_with(url, name, RedisOptions::default()).await
}

/// A ledger on `name` with `options`.
pub async fn connect_with(url: &str, name: &LedgerName, options: RedisOptions) -> RedisLedger {
    RedisLedger::connect(url, name, options)
        .await
        .expect("connect to the test redis")
}

/// Deletes this test's keys (and nothing else).
pub async fn cleanup(url: &str, ledger: &RedisLedger) {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ledger.keys().iter().map(|k| k.to_string()).collect();
    let _: i64 = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut con)
        .await
        .unwrap();
}

/// A snapshot whose refill steps land on whole minutes.
pub fn snap(ts: i64, left: i64, rate: i64) -> TokenSnapshot {
    TokenSnapshot {
        timestamp_ms: ts,
        tokens_left: left,
        refill_in_ms: 60_000 - ts.rem_euclid(60_000),
        refill_rate: rate,
    }
}

/// Bounded real-time wait (lease tests only).
pub async fn wait_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
