//! What the dashboard reads beyond [`Store::status`]: the budget over
//! time (`budget_samples`, and the ledger's charges by job and stage), the
//! newest stored deals, rejections by stage and reason, and the alert
//! outbox's delivery state when that table exists. Reads only, except
//! [`Store::record_budget_sample`].

use serde::Serialize;
use sqlx::Row;

use super::{classify, Pool, Store, StoreError};

/// Most budget samples a [`DashboardData`] carries (older ones are thinned).
pub const MAX_SAMPLES: usize = 300;
/// Newest deals a [`DashboardData`] carries.
pub const NEWEST_DEALS: i64 = 20;
/// Time buckets of the spend series.
pub const SPEND_BUCKETS: i64 = 60;
/// The longest window shown: a day of the harvest's clock before its newest sample or request.
pub const WINDOW_MS: i64 = 86_400_000;

const INSERT_SAMPLE: &str =
    "INSERT INTO budget_samples (at_ms, tokens_left, refill_rate, tokens_spent)
VALUES ($1, $2, $3, $4) ON CONFLICT (at_ms) DO NOTHING";
const SAMPLES_SINCE: &str =
    "SELECT at_ms, tokens_left, refill_rate, tokens_spent FROM budget_samples
WHERE at_ms >= $1 ORDER BY at_ms DESC LIMIT 5000";
const WINDOW_END: &str = "SELECT CAST(COALESCE(MAX(t), 0) AS BIGINT) FROM (
    SELECT MAX(at_ms) AS t FROM requests UNION ALL SELECT MAX(at_ms) AS t FROM budget_samples) x";
const WINDOW_START: &str = "SELECT MIN(at_ms) FROM requests WHERE at_ms >= $1";
const SPEND_BY_BUCKET: &str = "SELECT CAST((at_ms - $1) / $2 AS BIGINT) AS b, job, stage,
    CAST(COALESCE(SUM(charged), 0) AS BIGINT)
FROM requests WHERE at_ms >= $1 GROUP BY b, job, stage ORDER BY b, job, stage";
const NEWEST: &str = "SELECT d.domain, d.asin, d.title, d.current_buy_box, d.current_amazon,
    d.current_new, d.current_used, d.sales_rank, d.delta_percent_month, d.first_seen_ms,
    p.lowest_used_price, p.offer_count_new, p.offer_count_used
FROM deals d LEFT JOIN products p ON p.domain = d.domain AND p.asin = d.asin
ORDER BY d.first_seen_ms DESC, d.domain, d.asin LIMIT $1";
const REJECTIONS: &str = "SELECT stage, reason, COUNT(*),
    CAST(SUM(CASE WHEN expires_at_ms > $1 THEN 1 ELSE 0 END) AS BIGINT)
FROM rejections GROUP BY stage, reason ORDER BY COUNT(*) DESC, stage, reason LIMIT 10000";
/// Rows of [`DashboardData::rejections`] at most.
pub const REJECTION_ROWS: usize = 50;
const OUTBOX_STATE: &str = "SELECT
    CAST(COALESCE(SUM(CASE WHEN delivered_ms IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT),
    CAST(COALESCE(SUM(CASE WHEN delivered_ms IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT),
    CAST(COALESCE(SUM(CASE WHEN attempts > 0 AND delivered_ms IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT)
FROM alert_outbox";
const OUTBOX_LAST_ERROR: &str = "SELECT last_error FROM alert_outbox
WHERE delivered_ms IS NULL AND last_error IS NOT NULL ORDER BY next_attempt_ms DESC LIMIT 1";

/// The budget as one `run` saw it at `at_ms` (its server time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BudgetSample {
    /// Server time of the newest envelope, Unix ms.
    pub at_ms: i64,
    /// Balance in that envelope.
    pub tokens_left: i64,
    /// Tokens per minute in that envelope.
    pub refill_rate: i64,
    /// Tokens charged to that run so far.
    pub tokens_spent: i64,
}

/// Tokens charged to `(job, stage)` in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpendBucket {
    /// The bucket's start, Unix ms (harvest clock).
    pub start_ms: i64,
    /// The job.
    pub job: String,
    /// The stage.
    pub stage: String,
    /// Tokens charged.
    pub tokens: i64,
}

/// A stored deal with the fields a buyer decides on (prices in cents,
/// Keepa's `-1` kept: "no offer").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DealView {
    /// Keepa domain id.
    pub domain: i64,
    /// The ASIN.
    pub asin: String,
    /// Title, if known.
    pub title: Option<String>,
    /// Buy-box price.
    pub buy_box: Option<i64>,
    /// Amazon's own price.
    pub amazon: Option<i64>,
    /// Lowest new price.
    pub new: Option<i64>,
    /// Lowest used price.
    pub used: Option<i64>,
    /// Sales rank.
    pub sales_rank: Option<i64>,
    /// Drop against the 30-day average, percent.
    pub drop_percent_month: Option<i64>,
    /// When the harvest first stored it (harvest clock).
    pub first_seen_ms: i64,
    /// Lowest used offer (offers stage).
    pub lowest_used_offer: Option<i64>,
    /// New offers.
    pub offers_new: Option<i64>,
    /// Used offers.
    pub offers_used: Option<i64>,
}

/// Rejections with one `(stage, reason)`; a failed rule's reason is
/// counted without the value it saw (`… failed (actual: 19)` and
/// `… failed (actual: 18)` are one row, `… failed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectionCount {
    /// The stage that rejected.
    pub stage: String,
    /// Why.
    pub reason: String,
    /// Rows in the table (expired or not).
    pub total: i64,
    /// Of those, not expired at the report's time.
    pub active: i64,
}

/// The alert outbox's delivery state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AlertState {
    /// Not delivered yet.
    pub pending: i64,
    /// Delivered.
    pub delivered: i64,
    /// Not delivered, tried at least once.
    pub failing: i64,
    /// The newest error of an undelivered alert.
    pub last_error: Option<String>,
}

/// Everything the dashboard reads besides the status report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DashboardData {
    /// Start of the window shown (harvest clock, Unix ms).
    pub window_start_ms: i64,
    /// End of the window: the newest request or sample.
    pub window_end_ms: i64,
    /// Budget samples in the window, oldest first, at most [`MAX_SAMPLES`].
    pub samples: Vec<BudgetSample>,
    /// Width of a spend bucket, ms.
    pub bucket_ms: i64,
    /// Charges by bucket, job and stage.
    pub spend: Vec<SpendBucket>,
    /// The newest stored deals, newest first.
    pub newest_deals: Vec<DealView>,
    /// Rejections by stage and reason, most first.
    pub rejections: Vec<RejectionCount>,
    /// `None`: no alert was ever queued (none configured, or none matched yet).
    pub alerts: Option<AlertState>,
}

impl Store {
    /// Records a budget sample (a second one at the same `at_ms` is ignored).
    pub async fn record_budget_sample(&self, s: BudgetSample) -> Result<(), StoreError> {
        let db = &self.db;
        with_pool!(self, p => {
            sqlx::query(INSERT_SAMPLE)
                .bind(s.at_ms)
                .bind(s.tokens_left)
                .bind(s.refill_rate)
                .bind(s.tokens_spent)
                .execute(p)
                .await
                .map(|_| ())
                .map_err(|e| classify(db, "record a budget sample", &e))
        })?;
        Ok(())
    }

    /// The dashboard's data; rejections count as active when they expire after `now_ms`.
    pub async fn dashboard(&self, now_ms: i64) -> Result<DashboardData, StoreError> {
        let db = &self.db;
        let q = |e: sqlx::Error| classify(db, "read the dashboard", &e);
        let mut d = DashboardData::default();
        with_pool!(self, p => {
            d.window_end_ms = sqlx::query_scalar(WINDOW_END).fetch_one(p).await.map_err(q)?;
            let earliest = d.window_end_ms.saturating_sub(WINDOW_MS);
            let first: Option<i64> = sqlx::query_scalar(WINDOW_START)
                .bind(earliest)
                .fetch_one(p)
                .await
                .map_err(q)?;
            let mut samples = Vec::new();
            for row in sqlx::query(SAMPLES_SINCE).bind(earliest).fetch_all(p).await.map_err(q)? {
                samples.push(BudgetSample {
                    at_ms: row.try_get(0).map_err(q)?,
                    tokens_left: row.try_get(1).map_err(q)?,
                    refill_rate: row.try_get(2).map_err(q)?,
                    tokens_spent: row.try_get(3).map_err(q)?,
                });
            }
            samples.reverse();
            let first_sample = samples.first().map(|s| s.at_ms);
            d.window_start_ms = match (first, first_sample) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap_or(d.window_end_ms),
            };
            d.samples = thin(samples, MAX_SAMPLES);
            let span = (d.window_end_ms - d.window_start_ms).max(1);
            d.bucket_ms = (span + SPEND_BUCKETS - 1) / SPEND_BUCKETS;
            for row in sqlx::query(SPEND_BY_BUCKET)
                .bind(d.window_start_ms)
                .bind(d.bucket_ms)
                .fetch_all(p)
                .await
                .map_err(q)?
            {
                let b: i64 = row.try_get(0).map_err(q)?;
                d.spend.push(SpendBucket {
                    start_ms: d.window_start_ms + b * d.bucket_ms,
                    job: row.try_get(1).map_err(q)?,
                    stage: row.try_get(2).map_err(q)?,
                    tokens: row.try_get(3).map_err(q)?,
                });
            }
            for row in sqlx::query(NEWEST).bind(NEWEST_DEALS).fetch_all(p).await.map_err(q)? {
                d.newest_deals.push(DealView {
                    domain: row.try_get(0).map_err(q)?,
                    asin: row.try_get(1).map_err(q)?,
                    title: row.try_get(2).map_err(q)?,
                    buy_box: row.try_get(3).map_err(q)?,
                    amazon: row.try_get(4).map_err(q)?,
                    new: row.try_get(5).map_err(q)?,
                    used: row.try_get(6).map_err(q)?,
                    sales_rank: row.try_get(7).map_err(q)?,
                    drop_percent_month: row.try_get(8).map_err(q)?,
                    first_seen_ms: row.try_get(9).map_err(q)?,
                    lowest_used_offer: row.try_get(10).map_err(q)?,
                    offers_new: row.try_get(11).map_err(q)?,
                    offers_used: row.try_get(12).map_err(q)?,
                });
            }
            let mut raw = Vec::new();
            for row in sqlx::query(REJECTIONS).bind(now_ms).fetch_all(p).await.map_err(q)? {
                raw.push(RejectionCount {
                    stage: row.try_get(0).map_err(q)?,
                    reason: row.try_get(1).map_err(q)?,
                    total: row.try_get(2).map_err(q)?,
                    active: row.try_get::<Option<i64>, _>(3).map_err(q)?.unwrap_or(0),
                });
            }
            d.rejections = by_rule(raw);
            let row = sqlx::query(OUTBOX_STATE).fetch_one(p).await.map_err(q)?;
            let state = AlertState {
                pending: row.try_get(0).map_err(q)?,
                delivered: row.try_get(1).map_err(q)?,
                failing: row.try_get(2).map_err(q)?,
                last_error: None,
            };
            if state.pending + state.delivered > 0 {
                d.alerts = Some(AlertState {
                    last_error: sqlx::query_scalar::<_, Option<String>>(OUTBOX_LAST_ERROR)
                        .fetch_optional(p)
                        .await
                        .map_err(q)?
                        .flatten(),
                    ..state
                });
            }
        });
        Ok(d)
    }
}

/// Rejections counted per rule (the value seen dropped from the reason),
/// most first, at most [`REJECTION_ROWS`].
fn by_rule(raw: Vec<RejectionCount>) -> Vec<RejectionCount> {
    let mut sum: std::collections::BTreeMap<(String, String), (i64, i64)> = Default::default();
    for r in raw {
        let reason = match r.reason.rsplit_once(" (actual: ") {
            Some((rule, _)) if r.reason.ends_with(')') => rule.to_string(),
            _ => r.reason,
        };
        let e = sum.entry((r.stage, reason)).or_default();
        e.0 += r.total;
        e.1 += r.active;
    }
    let mut out: Vec<RejectionCount> = sum
        .into_iter()
        .map(|((stage, reason), (total, active))| RejectionCount {
            stage,
            reason,
            total,
            active,
        })
        .collect();
    out.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.stage.cmp(&b.stage)));
    out.truncate(REJECTION_ROWS);
    out
}

/// At most `max` samples, evenly spaced, the newest always kept.
fn thin(samples: Vec<BudgetSample>, max: usize) -> Vec<BudgetSample> {
    if samples.len() <= max || max < 2 {
        return samples;
    }
    let n = samples.len();
    (0..max).map(|i| samples[i * (n - 1) / (max - 1)]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_counted_per_rule() {
        let r = |reason: &str, total| RejectionCount {
            stage: "deal".into(),
            reason: reason.into(),
            total,
            active: total,
        };
        let rows = by_rule(vec![
            r("f:1:1: x >= 20 failed (actual: 19)", 3),
            r("left out of Keepa's answer", 1),
            r("f:1:1: x >= 20 failed (actual: 18)", 2),
        ]);
        let got: Vec<(&str, i64)> = rows.iter().map(|x| (x.reason.as_str(), x.total)).collect();
        assert_eq!(
            got,
            [
                ("f:1:1: x >= 20 failed", 5),
                ("left out of Keepa's answer", 1)
            ]
        );
    }

    #[test]
    fn thinning_keeps_the_ends_and_the_bound() {
        let s: Vec<BudgetSample> = (0..1000)
            .map(|i| BudgetSample {
                at_ms: i,
                tokens_left: i,
                refill_rate: 20,
                tokens_spent: 0,
            })
            .collect();
        let t = thin(s.clone(), 300);
        assert_eq!(t.len(), 300);
        assert_eq!((t[0].at_ms, t[299].at_ms), (0, 999));
        assert!(t.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
        assert_eq!(thin(s[..10].to_vec(), 300).len(), 10);
    }
}
