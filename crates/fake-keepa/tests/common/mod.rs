//! Helpers shared by the integration tests: a manual clock at a fixed
//! start, a plain reqwest client, and JSON decoding that checks gzip.
#![allow(dead_code, unreachable_pub)]

use std::io::Read;

use fake_keepa::{FakeKeepa, FakeKeepaBuilder};
use keepa::clock::ManualClock;
use serde_json::Value;

/// A fixed start: 2025-06-15T15:06:40Z.
pub const START_MS: i64 = 1_750_000_000_000;
pub const KEY: &str = "k1";

pub fn builder(clock: &ManualClock) -> FakeKeepaBuilder {
    FakeKeepa::builder()
        .clock(clock.clone())
        .keys([KEY, "k2"])
        .seed(7)
        .initial_deals(600)
        .deals_per_hour(120.0)
}

pub fn client() -> reqwest::Client {
    // reqwest is built without a crypto provider; plain HTTP needs none,
    // but building a client requires one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // No automatic gzip decoding: the tests check the encoding themselves.
    reqwest::Client::builder()
        .no_gzip()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A decoded answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub gzip: bool,
    pub json: Value,
}

pub async fn get(c: &reqwest::Client, url: &str) -> Answer {
    let r = c.get(url).send().await.unwrap();
    decode(r).await
}

pub async fn post(c: &reqwest::Client, url: &str, body: &str) -> Answer {
    let r = c.post(url).body(body.to_string()).send().await.unwrap();
    decode(r).await
}

pub async fn decode(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let gzip = r
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v == "gzip");
    let bytes = r.bytes().await.unwrap();
    let raw = if gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        bytes.to_vec()
    };
    Answer {
        status,
        gzip,
        json: serde_json::from_slice(&raw).unwrap_or(Value::Null),
    }
}

pub fn tokens_left(a: &Answer) -> i64 {
    a.json["tokensLeft"].as_i64().unwrap()
}

pub fn consumed(a: &Answer) -> i64 {
    a.json["tokensConsumed"].as_i64().unwrap()
}
