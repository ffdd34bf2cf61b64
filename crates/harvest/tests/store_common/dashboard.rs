//! The dashboard's reads, budget samples, and migrations applied by
//! version (a gap filled later), on each backend.

use harvest::store::{BudgetSample, RejectionRow, Store, StoreError};

use super::{a_batch, deal, request};

/// Runs raw SQL on the test database, outside the store.
async fn raw(db: &str, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if harvest::store::is_postgres_url(db) {
        let pool = sqlx::PgPool::connect(db).await.unwrap();
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{db}"))
            .await
            .unwrap();
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

pub async fn dashboard_reads_what_was_committed(db: &str) {
    let store = Store::open(db).await.unwrap();
    let empty = store.dashboard(0).await.unwrap();
    assert!(empty.samples.is_empty() && empty.newest_deals.is_empty());
    assert_eq!(empty.alerts, None, "no alert queued: none shown");

    store.commit(a_batch(1_000)).await.unwrap();
    let mut later = a_batch(5_000);
    later.deals = vec![deal("B000000003", 5_000)];
    later.requests = vec![request(60_000, "refresh", Some(30), "ok")];
    later.rejections.push(RejectionRow {
        asin: "B000000008".into(),
        domain: 1,
        stage: "stats".into(),
        reason: "sales_rank > 500000".into(),
        rejected_at_ms: 5_000,
        expires_at_ms: 6_000,
    });
    store.commit(later).await.unwrap();
    for (at, left, spent) in [(1_000, 900, 12), (30_000, 700, 12), (60_000, 650, 42)] {
        let s = BudgetSample {
            at_ms: at,
            tokens_left: left,
            refill_rate: 20,
            tokens_spent: spent,
        };
        store.record_budget_sample(s).await.unwrap();
        // The same instant twice is one sample.
        store.record_budget_sample(s).await.unwrap();
    }

    let d = store.dashboard(7_000).await.unwrap();
    assert_eq!((d.window_start_ms, d.window_end_ms), (1_000, 60_000));
    let lefts: Vec<i64> = d.samples.iter().map(|s| s.tokens_left).collect();
    assert_eq!(lefts, [900, 700, 650]);
    // Charges by bucket: backfill's 12 in the first, refresh's 30 in the last.
    let spend: Vec<(i64, &str, i64)> = d
        .spend
        .iter()
        .map(|b| (b.start_ms, b.job.as_str(), b.tokens))
        .collect();
    let last = d.window_start_ms + (59_000 / d.bucket_ms) * d.bucket_ms;
    assert_eq!(spend, [(1_000, "backfill", 12), (last, "refresh", 30)]);
    assert_eq!(
        d.spend.iter().map(|b| b.tokens).sum::<i64>(),
        store.status(60_000).await.unwrap().tokens_total
    );
    // Newest first.
    let asins: Vec<&str> = d.newest_deals.iter().map(|x| x.asin.as_str()).collect();
    assert_eq!(asins, ["B000000003", "B000000001", "B000000002"]);
    let newest = &d.newest_deals[0];
    assert_eq!((newest.used, newest.sales_rank), (Some(1299), Some(12345)));
    // One reason, two rows, one expired at 7 000.
    assert_eq!(d.rejections.len(), 1);
    let r = &d.rejections[0];
    assert_eq!((r.stage.as_str(), r.total, r.active), ("stats", 2, 1));
}

pub async fn dashboard_shows_the_alert_outbox_once_an_alert_was_queued(db: &str) {
    let store = Store::open(db).await.unwrap();
    raw(
        db,
        "INSERT INTO alert_outbox (alert, domain, asin, kind, version, payload,
            created_ms, attempts, next_attempt_ms, delivered_ms, last_error) VALUES
            ('phone', 1, 'A1', 'new', '1', '{}', 1, 0, 1, NULL, NULL),
            ('phone', 1, 'A2', 'new', '1', '{}', 1, 3, 9, NULL, 'HTTP 500 from the receiver'),
            ('phone', 1, 'A3', 'new', '1', '{}', 1, 1, 2, 5, NULL)",
    )
    .await;
    let alerts = store.dashboard(0).await.unwrap().alerts.unwrap();
    assert_eq!(
        (alerts.pending, alerts.delivered, alerts.failing),
        (2, 1, 1)
    );
    assert_eq!(
        alerts.last_error.as_deref(),
        Some("HTTP 500 from the receiver")
    );
}

pub async fn a_missing_lower_migration_is_applied_and_an_unknown_one_refused(db: &str) {
    let store = Store::open(db).await.unwrap();
    store.close().await;
    // A database migrated past a version it lacks (a migration merged
    // with a lower number later): that version is applied on open.
    raw(
        db,
        "DROP TABLE feed_pages; DELETE FROM schema_migrations WHERE version = 3",
    )
    .await;
    let store = Store::open(db).await.unwrap();
    assert_eq!(store.feed_pages("backfill").await.unwrap(), vec![]);
    store.close().await;
    // A version this binary does not know: a newer binary migrated it.
    raw(
        db,
        "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (4000, 'future', 0)",
    )
    .await;
    let err = Store::open(db).await.unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 4000, .. }),
        "{err:?}"
    );
}
