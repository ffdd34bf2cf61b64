//! The status report: counts, checkpoints and token use in one snapshot.

use sqlx::Row;

use super::{classify, sql, Pool, StatusReport, Store, StoreError};

impl Store {
    /// Counts, checkpoints and token use as of `now_ms`, read from one
    /// snapshot. Tokens are those the server charged (`charged`); requests
    /// whose charge is unknown count zero.
    pub async fn status(&self, now_ms: i64) -> Result<StatusReport, StoreError> {
        let db = &self.db;
        let q = |e: sqlx::Error| classify(db, "read status", &e);
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let mut report = StatusReport {
            now_ms,
            ..StatusReport::default()
        };
        let mut raw_checkpoints: Vec<(String, String, i64)> = Vec::new();
        macro_rules! read {
            ($p:expr, $begin:expr) => {{
                let mut tx = $begin.await.map_err(q)?;
                report.deals = count(
                    sqlx::query_scalar(sql::COUNT_DEALS)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(q)?,
                );
                report.products = count(
                    sqlx::query_scalar(sql::COUNT_PRODUCTS)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(q)?,
                );
                report.rejections_active = count(
                    sqlx::query_scalar(sql::COUNT_ACTIVE_REJECTIONS)
                        .bind(now_ms)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(q)?,
                );
                for row in sqlx::query(sql::ALL_CHECKPOINTS)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(q)?
                {
                    raw_checkpoints.push((
                        row.try_get(0).map_err(q)?,
                        row.try_get(1).map_err(q)?,
                        row.try_get(2).map_err(q)?,
                    ));
                }
                for (window, slot) in [
                    (3_600_000_i64, &mut report.tokens_last_hour),
                    (86_400_000_i64, &mut report.tokens_last_day),
                ] {
                    *slot = sqlx::query_scalar(sql::TOKENS_BETWEEN)
                        .bind(now_ms.saturating_sub(window))
                        .bind(now_ms)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(q)?;
                }
                for (window, slot) in [
                    (3_600_000_i64, &mut report.deals_last_hour),
                    (86_400_000_i64, &mut report.deals_last_day),
                ] {
                    *slot = count(
                        sqlx::query_scalar(sql::DEALS_FIRST_SEEN_BETWEEN)
                            .bind(now_ms.saturating_sub(window))
                            .bind(now_ms)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(q)?,
                    );
                }
                report.latest_request_ms = sqlx::query_scalar(sql::LATEST_REQUEST)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(q)?;
                report.tokens_total = sqlx::query_scalar(sql::TOKENS_TOTAL)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(q)?;
                for row in sqlx::query(sql::TOKENS_BY_JOB)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(q)?
                {
                    report
                        .tokens_by_job
                        .insert(row.try_get(0).map_err(q)?, row.try_get(1).map_err(q)?);
                }
                for row in sqlx::query(sql::REQUESTS_BY_STATUS)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(q)?
                {
                    let n: i64 = row.try_get(1).map_err(q)?;
                    report
                        .requests_by_status
                        .insert(row.try_get(0).map_err(q)?, count(n));
                }
                tx.rollback().await.map_err(q)?;
            }};
        }
        match &self.pool {
            Pool::Sqlite(p) => read!(p, p.begin()),
            Pool::Postgres(p) => {
                read!(
                    p,
                    p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                )
            }
        }
        for (job, text, updated) in raw_checkpoints {
            let value = serde_json::from_str(&text).map_err(|e| StoreError::Invalid {
                db: db.clone(),
                what: "stored checkpoint",
                detail: format!("job {job}: {e}"),
            })?;
            report.checkpoints.push((job, value, updated));
        }
        if report.deals > 0 {
            report.tokens_per_stored_deal = Some(report.tokens_total as f64 / report.deals as f64);
        }
        Ok(report)
    }
}
