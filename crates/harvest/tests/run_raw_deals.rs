//! `keep_raw_deals`: a run against a fake Keepa on a fast clock (the
//! settings of `run --sandbox`) stores each deal's JSON exactly as the feed
//! sent it, beside the typed row (absolute deltas included).

use harvest::config::RunConfig;
use harvest::metrics::Metrics;
use harvest::store::{ExportFormat, Store};
use harvest::{run, RunOptions};
use keepa::clock::ScaledClock;

const KEY: &str = "RAWDEALSKEY0123456789";
const TIME_SCALE: f64 = 600.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_keeps_each_deals_raw_json_when_asked() {
    let dir = std::env::temp_dir().join(format!(
        "keepa_harvest_raw_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let db = dir.join("h.db").display().to_string();
    let server = fake_keepa::FakeKeepa::builder()
        .keys([KEY.to_string()])
        .refill_per_minute(20)
        .time_scale(TIME_SCALE)
        .start_unix_ms(1_767_225_600_000 + 7 * 86_400_000)
        .seed(7)
        .initial_deals(8_000)
        .deals_per_hour(300.0)
        .backlog_window_ms(12 * 3_600_000)
        .start()
        .await
        .unwrap();
    let client = keepa::Client::builder(keepa::ApiKey::new(KEY).unwrap())
        .base_url(server.base_url())
        .build()
        .unwrap();
    let mut cfg = RunConfig::default_config();
    cfg.keep_raw_deals = true;
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let report = run(
        cfg,
        RunOptions {
            client,
            clock: ScaledClock::new(server.now_ms(), TIME_SCALE),
            store: Store::open(&db).await.unwrap(),
            ledger: Default::default(),
            target_deals: Some(5),
            until_ms: None,
            shutdown: stop,
            truth: None,
            metrics: Metrics::new(),
            drain_timeout: std::time::Duration::from_secs(30),
        },
    )
    .await;
    assert!(report.error.is_none(), "{:?}", report.error);
    assert!(report.summary.deals_stored >= 5);

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
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
