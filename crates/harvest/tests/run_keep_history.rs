//! `keep_history`: a run against a fake Keepa on a fast clock (the
//! settings of `run --sandbox`) stores every fetched product's csv
//! histories, and the history export of a product equals its stored csv
//! decoded by `keepa::model`.

use harvest::config::RunConfig;
use harvest::metrics::Metrics;
use harvest::store::{ExportFormat, Store};
use harvest::{run, RunOptions};
use keepa::clock::ScaledClock;
use keepa::model::{CsvType, Product};

const KEY: &str = "KEEPHISTORYKEY012345678";
const TIME_SCALE: f64 = 600.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_keeps_each_products_history_when_asked() {
    let dir = std::env::temp_dir().join(format!(
        "keepa_harvest_history_{}_{}",
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
    cfg.keep_history = true;
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
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{db}"))
        .await
        .unwrap();
    let products: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(&pool)
        .await
        .unwrap();
    let products = products as u64;
    assert!(products >= 5);
    assert_eq!(
        store.count_histories().await.unwrap(),
        products,
        "one per product"
    );
    let (asin, csv): (String, String) =
        sqlx::query_as("SELECT asin, csv FROM product_histories ORDER BY asin LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    let stored: Product = serde_json::from_str(&format!("{{\"csv\":{csv}}}")).unwrap();
    let mut expected = Vec::new();
    for ty in CsvType::ALL {
        if let Some(h) = stored.history(ty).unwrap() {
            for (t, v) in h.points() {
                expected.push(serde_json::json!({
                    "asin": asin, "domain": 1, "series": ty.keepa_name(),
                    "time": humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH + std::time::Duration::from_millis(t.to_unix_ms() as u64)
                    ).to_string(),
                    "value": v.known(),
                }));
            }
        }
    }
    assert!(
        expected.len() > 10,
        "the sandbox sends real histories: {expected:?}"
    );
    let mut out = Vec::new();
    let done = store
        .export_history(ExportFormat::Jsonl, &mut out)
        .await
        .unwrap();
    assert!(done.skipped.is_empty(), "{:?}", done.skipped);
    assert_eq!(done.products, products);
    let rows: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["asin"] == asin.as_str())
        .collect();
    assert_eq!(rows, expected);
    store.close().await;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
