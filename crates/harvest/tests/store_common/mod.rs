//! The store suite, written once and run against each backend
//! (`store_sqlite.rs`, `store_postgres.rs`) through [`backend_suite!`].

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use harvest::store::{
    Batch, DealRow, ExportFormat, FeedPage, Known, ProductRow, RejectionRow, RequestRow, Store,
    StoreError,
};
use serde_json::json;

mod outbox;
#[allow(unused_imports)]
pub use outbox::*;

/// A database for one test, removed afterwards.
pub struct Fixture {
    /// What `Store::open` takes.
    pub db: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(std::path::PathBuf),
    Schema { url: String, schema: String },
}

mod dashboard;
#[allow(unused_imports)] // not every test file runs the suite
pub use dashboard::{
    a_missing_lower_migration_is_applied_and_an_unknown_one_refused,
    dashboard_reads_what_was_committed, dashboard_shows_the_alert_outbox_once_an_alert_was_queued,
};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// A fresh directory under the system temp dir.
pub fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique("keepa_harvest_store"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A SQLite file in a fresh directory (the file itself does not exist yet).
pub async fn sqlite() -> Option<Fixture> {
    let dir = temp_dir();
    Some(Fixture {
        db: dir.join("nested").join("harvest.db").display().to_string(),
        cleanup: Cleanup::Dir(dir),
    })
}

/// The PostgreSQL URL of `KEEPA_HARVEST_TEST_PG`, or `None` (and a note on stderr).
pub fn pg_url() -> Option<String> {
    match std::env::var("KEEPA_HARVEST_TEST_PG") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!("KEEPA_HARVEST_TEST_PG is unset: this PostgreSQL store test did NOT run");
            None
        }
    }
}

/// A fresh schema on `KEEPA_HARVEST_TEST_PG`, selected through `search_path`.
pub async fn postgres() -> Option<Fixture> {
    let url = pg_url()?;
    let schema = unique("ks");
    let pool = sqlx::PgPool::connect(&url)
        .await
        .expect("connect to KEEPA_HARVEST_TEST_PG");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .expect("create schema");
    pool.close().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(Fixture {
        db: format!("{url}{sep}options=-c%20search_path%3D{schema}"),
        cleanup: Cleanup::Schema { url, schema },
    })
}

impl Fixture {
    /// Removes the database.
    pub async fn cleanup(self) {
        match self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Schema { url, schema } => {
                if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                    let _ =
                        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                            .execute(&pool)
                            .await;
                    pool.close().await;
                }
            }
        }
    }
}

/// Generates one `#[tokio::test]` per suite function for a fixture.
#[allow(unused_macros)] // not every test file runs the suite
macro_rules! backend_suite {
    ($fixture:path) => {
        $crate::store_common::backend_suite!(@tests $fixture;
            migrations_run_twice_and_concurrently,
            commit_is_atomic,
            replaying_a_batch_duplicates_nothing_and_keeps_first_seen,
            checkpoints_move_with_rows,
            known_honours_rejection_expiry,
            stale_products_oldest_first,
            status_agrees_with_commits,
            export_csv_and_jsonl_agree_with_rows,
            export_pages_through_many_rows,
            concurrent_commits_from_separate_handles,
            deal_deltas_and_raw_json_round_trip,
            feed_pages_are_recorded_once_with_their_rows,
            claims_exclude_other_processes_until_released,
            alert_outbox_queues_once_per_version_and_claims_once,
            dashboard_reads_what_was_committed,
            dashboard_shows_the_alert_outbox_once_an_alert_was_queued,
            a_missing_lower_migration_is_applied_and_an_unknown_one_refused
        );
    };
    (@tests $fixture:path; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(fx) = $fixture().await else { return };
                crate::store_common::$name(&fx.db).await;
                fx.cleanup().await;
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use backend_suite;

pub fn deal(asin: &str, seen: i64) -> DealRow {
    DealRow {
        asin: asin.into(),
        domain: 1,
        title: Some(format!("Title of {asin}")),
        root_category: Some(283155),
        price_type: 2,
        current_used: Some(1299),
        sales_rank: Some(12345),
        delta_percent_week: Some(-35),
        creation_date_ms: Some(seen - 60_000),
        last_update_ms: Some(seen - 1_000),
        seen_at_ms: seen,
        ..Default::default()
    }
}

pub fn product(asin: &str, fetched: i64, stage: &str) -> ProductRow {
    ProductRow {
        asin: asin.into(),
        domain: 1,
        title: Some(format!("Product {asin}")),
        current_used: Some(1299),
        avg90_used: Some(2599),
        sales_rank: Some(12345),
        sales_rank_drops30: Some(7),
        offer_count_used: Some(12),
        lowest_used_price: Some(1150),
        lowest_used_seller: Some("A1SELLER".into()),
        lowest_used_condition: Some(3),
        keepa_last_update_ms: Some(fetched - 5_000),
        fetched_at_ms: fetched,
        stage: stage.into(),
        tokens_charged: 1,
        ..Default::default()
    }
}

pub fn request(at: i64, job: &str, charged: Option<i64>, status: &str) -> RequestRow {
    RequestRow {
        at_ms: at,
        job: job.into(),
        stage: "stats".into(),
        endpoint: "product".into(),
        items: 10,
        predicted: 10,
        charged,
        tokens_left: Some(1_000 - at % 1_000),
        status: status.into(),
    }
}

fn a_batch(seen: i64) -> Batch {
    Batch {
        alerts: Vec::new(),
        deals: vec![deal("B000000001", seen), deal("B000000002", seen)],
        products: vec![product("B000000001", seen, "offers")],
        rejections: vec![RejectionRow {
            asin: "B000000009".into(),
            domain: 1,
            stage: "stats".into(),
            reason: "sales_rank > 500000".into(),
            rejected_at_ms: seen,
            expires_at_ms: seen + 86_400_000,
        }],
        requests: vec![
            request(seen, "backfill", Some(12), "ok"),
            request(seen + 1, "backfill", None, "timeout"),
        ],
        checkpoints: vec![("backfill".into(), json!({ "page": 1 }))],
        pages: vec![FeedPage {
            job: "backfill".into(),
            page: 0,
            deals: 150,
        }],
    }
}

async fn export_jsonl(store: &Store) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let n = store.export(ExportFormat::Jsonl, &mut out).await.unwrap();
    let rows: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(n as usize, rows.len());
    rows
}

pub async fn migrations_run_twice_and_concurrently(db: &str) {
    let store = Store::open(db).await.unwrap();
    let empty = store.status(0).await.unwrap();
    assert_eq!((empty.deals, empty.tokens_total), (0, 0));
    assert_eq!(empty.tokens_per_stored_deal, None);
    assert_eq!(empty.latest_request_ms, None);
    store.commit(a_batch(1_000)).await.unwrap();
    store.close().await;
    let again = Store::open(db).await.unwrap();
    assert_eq!(again.count_deals().await.unwrap(), 2);
    let (a, b) = tokio::join!(Store::open(db), Store::open(db));
    assert_eq!(a.unwrap().count_deals().await.unwrap(), 2);
    assert_eq!(b.unwrap().count_deals().await.unwrap(), 2);
}

pub async fn commit_is_atomic(db: &str) {
    let store = Store::open(db).await.unwrap();
    // The bad row comes last, after every kind of good row was written.
    let mut batch = a_batch(1_000);
    batch.rejections.push(RejectionRow {
        asin: String::new(),
        domain: 1,
        stage: "stats".into(),
        reason: "x".into(),
        rejected_at_ms: 1,
        expires_at_ms: 2,
    });
    let err = store.commit(batch).await.unwrap_err();
    assert!(matches!(err, StoreError::Query { .. }), "{err:?}");
    assert!(err.to_string().contains("upsert rejection"), "{err}");
    let status = store.status(2_000).await.unwrap();
    assert_eq!(status.deals, 0);
    assert_eq!(status.products, 0);
    assert_eq!(status.rejections_active, 0);
    assert!(status.checkpoints.is_empty());
    assert!(status.requests_by_status.is_empty());
    assert_eq!(store.checkpoint("backfill").await.unwrap(), None);
    // A bad deal (domain 0) at the front: same.
    let mut batch = a_batch(1_000);
    batch.deals.insert(
        0,
        DealRow {
            domain: 0,
            ..deal("B0BADDOMAIN", 1)
        },
    );
    assert!(store.commit(batch).await.is_err());
    assert_eq!(store.count_deals().await.unwrap(), 0);
    // The store is still usable afterwards.
    store.commit(a_batch(1_000)).await.unwrap();
    assert_eq!(store.count_deals().await.unwrap(), 2);
}

pub async fn replaying_a_batch_duplicates_nothing_and_keeps_first_seen(db: &str) {
    let store = Store::open(db).await.unwrap();
    store.commit(a_batch(1_000)).await.unwrap();
    let first = store.status(10_000).await.unwrap();
    store.commit(a_batch(1_000)).await.unwrap();
    let replayed = store.status(10_000).await.unwrap();
    assert_eq!(first.deals, 2);
    assert_eq!(first.requests_by_status, replayed.requests_by_status);
    assert_eq!(first.tokens_total, replayed.tokens_total);
    assert_eq!(
        (first.deals, first.products, first.rejections_active),
        (
            replayed.deals,
            replayed.products,
            replayed.rejections_active
        )
    );

    // Seen again later with a new price: first_seen stays, the rest moves.
    let mut later = deal("B000000001", 5_000);
    later.current_used = Some(999);
    store
        .commit(Batch {
            deals: vec![later],
            ..Default::default()
        })
        .await
        .unwrap();
    // A late replay of the old batch does not roll the row back.
    store.commit(a_batch(1_000)).await.unwrap();
    let rows = export_jsonl(&store).await;
    assert_eq!(rows.len(), 2);
    let r = &rows[0];
    assert_eq!(r["asin"], "B000000001");
    assert_eq!(r["first_seen_ms"], 1_000);
    assert_eq!(r["last_seen_ms"], 5_000);
    assert_eq!(r["current_used"], 999);
    assert_eq!(rows[1]["first_seen_ms"], 1_000);
    assert_eq!(rows[1]["last_seen_ms"], 1_000);
}

pub async fn checkpoints_move_with_rows(db: &str) {
    let store = Store::open(db).await.unwrap();
    assert_eq!(store.checkpoint("backfill").await.unwrap(), None);
    store.commit(a_batch(1_000)).await.unwrap();
    assert_eq!(
        store.checkpoint("backfill").await.unwrap(),
        Some(json!({ "page": 1 }))
    );

    // Page 2 fails: neither its rows nor its checkpoint land.
    let failing = Batch {
        deals: vec![deal("B000000003", 2_000), deal("", 2_000)],
        checkpoints: vec![("backfill".into(), json!({ "page": 2 }))],
        ..Default::default()
    };
    assert!(store.commit(failing).await.is_err());
    assert_eq!(
        store.checkpoint("backfill").await.unwrap(),
        Some(json!({ "page": 1 }))
    );
    assert_eq!(store.count_deals().await.unwrap(), 2);

    // Page 2 again, with a second job's checkpoint in the same batch.
    let ok = Batch {
        deals: vec![deal("B000000003", 2_000)],
        checkpoints: vec![
            ("backfill".into(), json!({ "page": 2 })),
            ("refresh".into(), json!({ "watermark_ms": 1_999 })),
        ],
        ..Default::default()
    };
    store.commit(ok).await.unwrap();
    assert_eq!(
        store.checkpoint("backfill").await.unwrap(),
        Some(json!({ "page": 2 }))
    );
    assert_eq!(store.count_deals().await.unwrap(), 3);
    let status = store.status(3_000).await.unwrap();
    let jobs: Vec<(&str, &serde_json::Value)> = status
        .checkpoints
        .iter()
        .map(|(j, v, _)| (j.as_str(), v))
        .collect();
    assert_eq!(
        jobs,
        vec![
            ("backfill", &json!({ "page": 2 })),
            ("refresh", &json!({ "watermark_ms": 1_999 }))
        ]
    );
    assert!(status
        .checkpoints
        .iter()
        .all(|(_, _, at)| *at > 1_600_000_000_000));
    // An empty job name is refused before anything is written.
    let bad = Batch {
        deals: vec![deal("B000000004", 3_000)],
        checkpoints: vec![(String::new(), json!(1))],
        ..Default::default()
    };
    assert!(matches!(
        store.commit(bad).await,
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(store.count_deals().await.unwrap(), 3);
}

pub async fn known_honours_rejection_expiry(db: &str) {
    let store = Store::open(db).await.unwrap();
    let rejection = |asin: &str, at: i64, expires: i64| RejectionRow {
        asin: asin.into(),
        domain: 1,
        stage: "stats".into(),
        reason: "rank too high".into(),
        rejected_at_ms: at,
        expires_at_ms: expires,
    };
    let batch = Batch {
        deals: vec![deal("B0DEALONLY", 1_500)],
        products: vec![
            product("B0STORED01", 1_000, "offers"),
            product("B0STORED02", 1_000, "stats"),
            product("B0OTHERDOM", 1_000, "stats"),
        ],
        rejections: vec![
            rejection("B0REJECT01", 1_000, 5_000),
            // Rejected at the offers stage after its stats fetch: rejected wins.
            rejection("B0STORED02", 1_200, 5_000),
        ],
        ..Default::default()
    };
    let mut batch = batch;
    batch.products[2].domain = 2;
    store.commit(batch).await.unwrap();

    let mut asins: Vec<String> = [
        "B0DEALONLY",
        "B0STORED01",
        "B0STORED02",
        "B0OTHERDOM",
        "B0REJECT01",
        "B0UNKNOWN1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // More than one query's worth of ASINs.
    asins.extend((0..1_200).map(|i| format!("B1{i:08}")));
    let known = store.known(1, &asins, 4_999).await.unwrap();
    assert_eq!(known.len(), 4, "{known:?}");
    assert_eq!(
        known["B0STORED01"],
        Known::Stored {
            fetched_at_ms: 1_000,
            stage: "offers".into(),
            // A product row alone: no deal row was committed with it.
            deal: false
        }
    );
    assert_eq!(
        known["B0DEALONLY"],
        Known::Stored {
            fetched_at_ms: 1_500,
            stage: "deal".into(),
            deal: true
        }
    );
    assert_eq!(
        known["B0REJECT01"],
        Known::Rejected {
            stage: "stats".into(),
            reason: "rank too high".into(),
            expires_at_ms: 5_000
        }
    );
    assert!(matches!(known["B0STORED02"], Known::Rejected { .. }));

    // At expiry the rejection no longer counts; the product is stored again.
    let known = store.known(1, &asins, 5_000).await.unwrap();
    assert_eq!(known.len(), 3, "{known:?}");
    assert!(!known.contains_key("B0REJECT01"));
    assert_eq!(
        known["B0STORED02"],
        Known::Stored {
            fetched_at_ms: 1_000,
            stage: "stats".into(),
            deal: false
        }
    );
    // Other domains are separate.
    let known = store.known(2, &asins, 0).await.unwrap();
    assert_eq!(known.keys().collect::<Vec<_>>(), vec!["B0OTHERDOM"]);
    assert!(store.known(1, &[], 0).await.unwrap().is_empty());
}

pub async fn stale_products_oldest_first(db: &str) {
    let store = Store::open(db).await.unwrap();
    let mut other = product("B0OTHERDOM", 50, "stats");
    other.domain = 3;
    let batch = Batch {
        products: vec![
            product("B0000000AA", 300, "stats"),
            product("B0000000BB", 100, "offers"),
            product("B0000000CC", 200, "stats"),
            product("B0000000DD", 250, "stats"),
            other,
        ],
        ..Default::default()
    };
    store.commit(batch).await.unwrap();
    assert_eq!(
        store.stale_products(1, 250, 10).await.unwrap(),
        vec!["B0000000BB", "B0000000CC"]
    );
    assert_eq!(
        store.stale_products(1, 1_000, 1).await.unwrap(),
        vec!["B0000000BB"]
    );
    assert!(store.stale_products(1, 100, 10).await.unwrap().is_empty());
    assert_eq!(
        store.stale_products(3, 1_000, 10).await.unwrap(),
        vec!["B0OTHERDOM"]
    );
    // A refetch makes it fresh.
    store
        .commit(Batch {
            products: vec![product("B0000000BB", 900, "stats")],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.stale_products(1, 250, 10).await.unwrap(),
        vec!["B0000000CC"]
    );
}

pub async fn status_agrees_with_commits(db: &str) {
    let store = Store::open(db).await.unwrap();
    let now = 100_000_000;
    let hour = 3_600_000;
    let batch = Batch {
        alerts: Vec::new(),
        deals: (0..4)
            .map(|i| deal(&format!("B00000000{i}"), now - 10))
            .collect(),
        products: vec![product("B000000000", now - 10, "offers")],
        rejections: vec![
            RejectionRow {
                asin: "B0REJ00001".into(),
                domain: 1,
                stage: "deal".into(),
                reason: "r".into(),
                rejected_at_ms: 1,
                expires_at_ms: now + 1,
            },
            RejectionRow {
                asin: "B0REJ00002".into(),
                domain: 1,
                stage: "deal".into(),
                reason: "r".into(),
                rejected_at_ms: 1,
                expires_at_ms: now,
            },
        ],
        requests: vec![
            request(now - 10, "backfill", Some(40), "ok"),
            request(now - hour + 1, "refresh", Some(2), "ok"),
            request(now - hour, "backfill", Some(100), "ok"), // exactly an hour ago: day only
            request(now - 2 * hour, "backfill", Some(0), "429"),
            request(now - 23 * hour, "refresh", None, "timeout"),
            request(now - 30 * hour, "backfill", Some(1_000), "ok"),
        ],
        checkpoints: vec![("backfill".into(), json!({ "page": 7, "cursor": "x" }))],
        pages: vec![],
    };
    store.commit(batch).await.unwrap();
    let s = store.status(now).await.unwrap();
    assert_eq!(s.deals, 4);
    assert_eq!(s.products, 1);
    assert_eq!(s.rejections_active, 1);
    assert_eq!(s.tokens_last_hour, 42);
    assert_eq!(s.tokens_last_day, 142);
    assert_eq!(s.tokens_total, 1_142);
    assert_eq!(
        s.tokens_by_job,
        BTreeMap::from([("backfill".to_string(), 1_140), ("refresh".to_string(), 2)])
    );
    assert_eq!(s.tokens_per_stored_deal, Some(1_142.0 / 4.0));
    assert_eq!(
        s.requests_by_status,
        BTreeMap::from([
            ("429".to_string(), 1),
            ("ok".to_string(), 4),
            ("timeout".to_string(), 1)
        ])
    );
    assert_eq!(s.checkpoints.len(), 1);
    assert_eq!(s.checkpoints[0].1, json!({ "page": 7, "cursor": "x" }));
    assert_eq!(s.now_ms, now);
    assert_eq!((s.deals_last_hour, s.deals_last_day), (4, 4));
    assert_eq!(s.latest_request_ms, Some(now - 10));
    let mut with_target = s.clone();
    with_target.set_target(10);
    assert_eq!(
        with_target.eta_ms,
        Some(6 * hour / 4),
        "6 more at 4 an hour"
    );
    with_target.set_target(3);
    assert_eq!(with_target.eta_ms, Some(0));
    let later = store.status(now + 2 * hour).await.unwrap();
    assert_eq!((later.deals_last_hour, later.deals_last_day), (0, 4));
    assert_eq!(later.tokens_last_hour, 0);
    // It serialises as one JSON document.
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["tokens_total"], 1_142);
}

pub async fn export_csv_and_jsonl_agree_with_rows(db: &str) {
    let store = Store::open(db).await.unwrap();
    let mut tricky = deal("B0TRICKY01", 2_000);
    tricky.title = Some("Comma, \"quotes\"\nand a newline".into());
    tricky.current_used = None;
    let batch = Batch {
        deals: vec![deal("B000000001", 1_000), tricky.clone()],
        products: vec![product("B000000001", 1_100, "offers")],
        ..Default::default()
    };
    store.commit(batch).await.unwrap();

    let rows = export_jsonl(&store).await;
    assert_eq!(rows.len(), 2);
    let with_product = &rows[0];
    assert_eq!(with_product["asin"], "B000000001");
    assert_eq!(with_product["domain"], 1);
    assert_eq!(with_product["title"], "Title of B000000001");
    assert_eq!(with_product["product_title"], "Product B000000001");
    assert_eq!(with_product["delta_percent_week"], -35);
    assert_eq!(with_product["avg90_used"], 2599);
    assert_eq!(with_product["lowest_used_seller"], "A1SELLER");
    assert_eq!(with_product["lowest_used_condition"], 3);
    assert_eq!(with_product["product_stage"], "offers");
    assert_eq!(with_product["fetched_at_ms"], 1_100);
    assert_eq!(with_product["avg30_new"], serde_json::Value::Null);
    let without = &rows[1];
    assert_eq!(without["title"], tricky.title.clone().unwrap().as_str());
    assert_eq!(without["current_used"], serde_json::Value::Null);
    assert_eq!(without["avg90_used"], serde_json::Value::Null);
    assert_eq!(without["first_seen_ms"], 2_000);

    let mut out = Vec::new();
    let n = store.export(ExportFormat::Csv, &mut out).await.unwrap();
    assert_eq!(n, 2);
    let table = parse_csv(&String::from_utf8(out).unwrap());
    assert_eq!(table.len(), 3, "header + 2 rows");
    let header = &table[0];
    // Every JSONL key is a CSV column, in the same order, and the values agree.
    let keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), header.len());
    for (json_row, csv_row) in rows.iter().zip(&table[1..]) {
        for (name, field) in header.iter().zip(csv_row) {
            let expected = match &json_row[name] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(&expected, field, "column {name}");
        }
    }
}

pub async fn export_pages_through_many_rows(db: &str) {
    let store = Store::open(db).await.unwrap();
    let deals: Vec<DealRow> = (0..2_345)
        .map(|i| deal(&format!("B{i:09}"), 1_000 + i))
        .collect();
    let mut second = deal("B000000000", 7);
    second.domain = 3;
    store
        .commit(Batch {
            deals,
            ..Default::default()
        })
        .await
        .unwrap();
    store
        .commit(Batch {
            deals: vec![second],
            ..Default::default()
        })
        .await
        .unwrap();
    let rows = export_jsonl(&store).await;
    assert_eq!(rows.len(), 2_346);
    assert_eq!(store.count_deals().await.unwrap(), 2_346);
    let keys: Vec<(i64, String)> = rows
        .iter()
        .map(|r| {
            (
                r["domain"].as_i64().unwrap(),
                r["asin"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "ordered by (domain, asin), no duplicates");
}

/// A small RFC 4180 reader, enough for the export's output.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

pub async fn concurrent_commits_from_separate_handles(db: &str) {
    // Two handles (two pools, as two processes would have) write overlapping
    // rows in opposite orders at the same time: both finish, nothing doubles.
    let a = Store::open(db).await.unwrap();
    let b = Store::open(db).await.unwrap();
    let batches = |reverse: bool, job: &'static str| {
        (0..20)
            .map(move |n| {
                let mut deals: Vec<DealRow> = (0..30)
                    .map(|i| deal(&format!("B{:09}", n * 10 + i), 1_000 + n))
                    .collect();
                if reverse {
                    deals.reverse();
                }
                Batch {
                    products: deals
                        .iter()
                        .map(|d| product(&d.asin, d.seen_at_ms, "stats"))
                        .collect(),
                    deals,
                    requests: vec![request(n, job, Some(1), "ok")],
                    checkpoints: vec![(job.to_string(), json!({ "n": n }))],
                    ..Default::default()
                }
            })
            .collect::<Vec<_>>()
    };
    let (ba, bb) = (batches(false, "one"), batches(true, "two"));
    let ta = tokio::spawn(async move {
        for batch in ba {
            a.commit(batch).await.unwrap();
        }
    });
    let tb = tokio::spawn(async move {
        for batch in bb {
            b.commit(batch).await.unwrap();
        }
    });
    ta.await.unwrap();
    tb.await.unwrap();
    let store = Store::open(db).await.unwrap();
    let s = store.status(1_000_000).await.unwrap();
    assert_eq!(s.deals, 19 * 10 + 30);
    assert_eq!(s.products, 19 * 10 + 30);
    assert_eq!(
        s.tokens_by_job,
        BTreeMap::from([("one".to_string(), 20), ("two".to_string(), 20)])
    );
    assert_eq!(
        store.checkpoint("one").await.unwrap(),
        Some(json!({ "n": 19 }))
    );
    assert_eq!(
        store.checkpoint("two").await.unwrap(),
        Some(json!({ "n": 19 }))
    );
}

pub async fn deal_deltas_and_raw_json_round_trip(db: &str) {
    let store = Store::open(db).await.unwrap();
    let raw = r#"{"asin":"B000000001","delta":[[0,0,150]],"unknownField":true}"#;
    let mut d = deal("B000000001", 1_000);
    d.delta_day = Some(150);
    d.delta_week = Some(-20);
    d.delta_month = Some(0);
    d.raw_json = Some(raw.into());
    store
        .commit(Batch {
            deals: vec![d.clone(), deal("B000000002", 1_000)],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.raw_deal(1, "B000000001").await.unwrap().as_deref(),
        Some(raw)
    );
    assert_eq!(
        store.raw_deal(1, "B000000002").await.unwrap(),
        None,
        "not kept"
    );
    assert_eq!(
        store.raw_deal(1, "B0UNKNOWN0").await.unwrap(),
        None,
        "not stored"
    );
    assert_eq!(
        store.raw_deal(2, "B000000001").await.unwrap(),
        None,
        "other domain"
    );

    let rows = export_jsonl(&store).await;
    assert_eq!(rows[0]["delta_day"], 150);
    assert_eq!(rows[0]["delta_week"], -20);
    assert_eq!(rows[0]["delta_month"], 0);
    assert_eq!(rows[0]["delta_quarter"], serde_json::Value::Null);
    assert_eq!(rows[1]["delta_day"], serde_json::Value::Null);
    assert!(
        rows.iter().all(|r| r.get("raw_json").is_none()),
        "the raw JSON stays out of the export"
    );

    // An older sighting (a replay) changes nothing; a newer one without the
    // raw JSON replaces it like every other field.
    let mut older = d.clone();
    older.seen_at_ms = 500;
    older.raw_json = Some("{}".into());
    older.delta_day = Some(1);
    store
        .commit(Batch {
            deals: vec![older],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.raw_deal(1, "B000000001").await.unwrap().as_deref(),
        Some(raw)
    );
    assert_eq!(export_jsonl(&store).await[0]["delta_day"], 150);
    let mut newer = d;
    newer.seen_at_ms = 2_000;
    newer.raw_json = None;
    newer.delta_day = Some(175);
    store
        .commit(Batch {
            deals: vec![newer],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(store.raw_deal(1, "B000000001").await.unwrap(), None);
    let rows = export_jsonl(&store).await;
    assert_eq!(
        (&rows[0]["delta_day"], &rows[0]["first_seen_ms"]),
        (&json!(175), &json!(1_000))
    );
}

pub async fn feed_pages_are_recorded_once_with_their_rows(db: &str) {
    let store = Store::open(db).await.unwrap();
    assert!(store.feed_pages("backfill").await.unwrap().is_empty());
    let page = |page, deals| FeedPage {
        job: "backfill".into(),
        page,
        deals,
    };
    let mut batch = Batch::default();
    batch.deals.push(deal("B000000001", 10));
    batch.pages = vec![page(3, 150), page(0, 150)];
    store.commit(batch).await.unwrap();
    // A page done again (a restart re-read it) keeps its first record.
    let batch = Batch {
        pages: vec![page(3, 7), page(4, 12)],
        ..Batch::default()
    };
    store.commit(batch).await.unwrap();
    assert_eq!(
        store.feed_pages("backfill").await.unwrap(),
        vec![(0, 150), (3, 150), (4, 12)]
    );
    assert!(store.feed_pages("other").await.unwrap().is_empty());
    // A failing batch records no page.
    let mut bad = Batch::default();
    bad.pages.push(page(9, 1));
    bad.deals.push(DealRow {
        asin: String::new(),
        ..deal("x", 1)
    });
    assert!(store.commit(bad).await.is_err());
    assert_eq!(store.feed_pages("backfill").await.unwrap().len(), 3);
    store.close().await;
}

pub async fn claims_exclude_other_processes_until_released(db: &str) {
    let a = Store::open(db).await.unwrap();
    let b = Store::open(db).await.unwrap();
    let la = a.locks().await.unwrap();
    let names: Vec<String> = vec!["page:backfill:0".into(), "asin:1:B000000001".into()];
    if !la.shared() {
        // SQLite: one run per database file; the second is told why.
        let err = b.locks().await.unwrap_err();
        assert!(matches!(err, StoreError::InUse { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains(&format!("(process {})", std::process::id())),
            "{err}"
        );
        assert_eq!(la.try_claim(&names).await.unwrap(), vec![true, true]);
        drop(la);
        // Released with the last handle: the next run may start.
        let again = b.locks().await.unwrap();
        drop(again);
        a.close().await;
        b.close().await;
        return;
    }
    let lb = b.locks().await.unwrap();
    assert_eq!(la.try_claim(&names).await.unwrap(), vec![true, true]);
    assert_eq!(
        lb.try_claim(&[names[1].clone(), "asin:1:B000000002".into()])
            .await
            .unwrap(),
        vec![false, true]
    );
    la.release(&names[1..]).await.unwrap();
    assert_eq!(lb.try_claim(&names[1..]).await.unwrap(), vec![true]);
    assert_eq!(lb.try_claim(&names[..1]).await.unwrap(), vec![false]);
    // Everything at once (a killed process's are released by the server
    // with its connection: see the scale-out test).
    la.release_all().await;
    assert_eq!(lb.try_claim(&names[..1]).await.unwrap(), vec![true]);
    a.close().await;
    b.close().await;
}
