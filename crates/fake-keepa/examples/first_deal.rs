//! How long the fake server takes to start and to answer its first and
//! second `/deal`, and how much memory it holds over simulated hours.
//!
//! ```text
//! cargo run --release -p fake-keepa --example first_deal [HOURS]
//! ```
//!
//! Part 1, for backlogs of 8 000 and 20 000 deals on a 600× scaled clock:
//! the wall time of `start()`, of the first and of the second `/deal`
//! answer, and how much server time had passed by the first answer.
//!
//! Part 2, with `HOURS` > 0: a server on a manual clock with an 8 000-deal
//! backlog, its feed read every two simulated minutes for `HOURS` hours,
//! printing the process's resident memory (`VmRSS`, Linux) every two hours.

use std::time::{Duration, Instant};

use fake_keepa::FakeKeepa;
use keepa::clock::ManualClock;

const START_MS: i64 = 1_750_000_000_000;
const KEY: &str = "bench-key";
const SELECTION: &str = r#"{"domainId":1,"priceTypes":[2],"page":0}"#;

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// One `/deal` answer; returns its wall time and how many deals it held.
async fn deal(c: &reqwest::Client, base: &str) -> (Duration, usize) {
    let t = Instant::now();
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("key", KEY)
        .append_pair("selection", SELECTION)
        .finish();
    let r = c
        .get(format!("{base}/deal?{query}"))
        .send()
        .await
        .expect("request");
    let v: serde_json::Value = r.json().await.expect("json");
    let n = v["deals"]["dr"].as_array().map_or(0, Vec::len);
    (t.elapsed(), n)
}

/// The resident set size of this process, from `/proc/self/status`.
fn rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l["VmRSS:".len()..].trim().to_string())
        })
        .unwrap_or_else(|| "n/a".into())
}

async fn first_answers(c: &reqwest::Client, backlog: u32) {
    let t = Instant::now();
    let server = FakeKeepa::builder()
        .keys([KEY])
        .seed(1)
        .start_unix_ms(START_MS)
        .time_scale(600.0)
        .initial_deals(backlog)
        .start()
        .await
        .expect("start");
    let started = t.elapsed();
    let base = server.base_url();
    let (first, n) = deal(c, &base).await;
    let lag_min = (server.now_ms() - START_MS) as f64 / 60_000.0;
    let (second, _) = deal(c, &base).await;
    println!(
        "backlog {backlog:>6}: start {}, first /deal {} ({n} deals), second /deal {}; \
         server time by the first answer: +{lag_min:.1} min",
        ms(started),
        ms(first),
        ms(second),
    );
    server.shutdown().await;
}

async fn memory_over(c: &reqwest::Client, hours: i64) {
    let clock = ManualClock::new(START_MS);
    let server = FakeKeepa::builder()
        .clock(clock.clone())
        .keys([KEY])
        .seed(1)
        .refill_per_minute(1_000)
        .initial_deals(8_000)
        .start()
        .await
        .expect("start");
    let base = server.base_url();
    println!("hour   0: VmRSS {}", rss());
    for step in 1..=hours * 30 {
        clock.advance_minutes(2);
        deal(c, &base).await;
        if step % 60 == 0 {
            println!("hour {:>3}: VmRSS {}", step / 30, rss());
        }
    }
    server.shutdown().await;
}

#[tokio::main]
async fn main() {
    let hours: i64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = reqwest::Client::builder().build().expect("client");
    for backlog in [8_000, 20_000] {
        first_answers(&c, backlog).await;
    }
    if hours > 0 {
        memory_over(&c, hours).await;
    }
}
