//! `keep_raw_deals`: a run against a fake Keepa on a fast clock (the
//! settings of `run --sandbox`) stores each deal's JSON exactly as the feed
//! sent it, beside the typed row (absolute deltas included).

mod fake_run;

use fake_run::FakeRun;
use harvest::config::RunConfig;
use harvest::store::{ExportFormat, Store};

const KEY: &str = "RAWDEALSKEY0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_keeps_each_deals_raw_json_when_asked() {
    let mut cfg = RunConfig::default_config();
    cfg.keep_raw_deals = true;
    let run = FakeRun::start(KEY, "raw", cfg, 5).await;
    let db = run.db.clone();

    let store = Store::open_existing(&db).await.unwrap();
    let mut out = Vec::new();
    store.export(ExportFormat::Jsonl, &mut out).await.unwrap();
    let rows: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows.len() >= 5);
    for row in &rows {
        let asin = row["asin"].as_str().unwrap();
        let raw = store
            .raw_deal(1, asin)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{asin}: no raw JSON"));
        let raw: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(raw["asin"], asin);
        assert!(raw.get("deltaPercent").is_some(), "{raw}");
        assert!(row["delta_month"].is_i64(), "{row}");
    }
    assert_eq!(
        store.count_histories().await.unwrap(),
        0,
        "keep_history is off by default"
    );
    store.close().await;
    run.cleanup().await;
}
