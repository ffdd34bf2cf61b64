//! `keep_history`: a run against a fake Keepa on a fast clock (the
//! settings of `run --sandbox`) stores every fetched product's csv
//! histories, and the history export of a product equals its stored csv
//! decoded by `keepa::model`.

mod fake_run;

use fake_run::FakeRun;
use harvest::config::RunConfig;
use harvest::store::{ExportFormat, Store};
use keepa::model::{CsvType, Product};

const KEY: &str = "KEEPHISTORYKEY012345678";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_keeps_each_products_history_when_asked() {
    let mut cfg = RunConfig::default_config();
    cfg.keep_history = true;
    let run = FakeRun::start(KEY, "history", cfg, 5).await;
    let db = run.db.clone();

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
    run.cleanup().await;
}
