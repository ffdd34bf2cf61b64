//! Commit throughput (rows per second) on SQLite and, with
//! `KEEPA_HARVEST_TEST_PG`, PostgreSQL. Ignored by default; run with
//! `cargo test -p harvest --release --test store_throughput -- --ignored --nocapture`.

mod store_common;

use std::time::Instant;

use harvest::store::{Batch, Store};

const BATCHES: usize = 40;
const PER_BATCH: usize = 250;

/// Commits `BATCHES` batches of `PER_BATCH` deals + products + requests and a
/// checkpoint each; prints rows/s, then the same again as a replay (all upserts hit).
async fn measure(label: &str, db: &str) {
    let store = Store::open(db).await.unwrap();
    let batches: Vec<Batch> = (0..BATCHES)
        .map(|b| {
            let mut batch = Batch::default();
            for i in 0..PER_BATCH {
                let asin = format!("B{:09}", b * PER_BATCH + i);
                let t = 1_000_000 + (b * PER_BATCH + i) as i64;
                batch.deals.push(store_common::deal(&asin, t));
                batch
                    .products
                    .push(store_common::product(&asin, t, "offers"));
                batch
                    .requests
                    .push(store_common::request(t, "backfill", Some(6), "ok"));
            }
            batch
                .checkpoints
                .push(("backfill".into(), serde_json::json!({ "page": b })));
            batch
        })
        .collect();
    let rows = (BATCHES * PER_BATCH * 3) as f64;
    for pass in ["insert", "replay"] {
        let start = Instant::now();
        for batch in batches.clone() {
            store.commit(batch).await.unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{label} {pass}: {} rows in {BATCHES} commits, {secs:.2} s, {:.0} rows/s, {:.1} ms/commit",
            rows,
            rows / secs,
            secs * 1000.0 / BATCHES as f64
        );
    }
    assert_eq!(
        store.count_deals().await.unwrap(),
        (BATCHES * PER_BATCH) as u64
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn commit_throughput() {
    let fx = store_common::sqlite().await.unwrap();
    measure("sqlite", &fx.db).await;
    fx.cleanup().await;
    if let Some(fx) = store_common::postgres().await {
        measure("postgres", &fx.db).await;
        fx.cleanup().await;
    }
}
