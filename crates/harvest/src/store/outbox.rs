//! The alert outbox (`alert_outbox`, migration 4): which stored deal
//! becomes which alert ([`event_for`], decided inside the deal's commit),
//! and the reads and writes of the delivery worker.
//!
//! Guarantees:
//! - An outbox row commits in the same transaction as its deal, so a
//!   stored match always has its alert and a rolled-back one has none.
//! - `UNIQUE (alert, domain, asin, kind, version)`: a `new` alert is queued
//!   once per deal (version: its `first_seen_ms`), a `price_drop` once per
//!   new price; a match queued again is counted, not stored.
//! - A row is claimed before it is sent and released with its outcome; a
//!   claim whose outcome never came (a crash mid-send) is taken over and
//!   counted as a possible duplicate ([`Store::alerts_claim`],
//!   [`Store::alerts_release_abandoned`]).

use sqlx::{AssertSqlSafe, Row};

use super::{classify, sql, Pool, Store, StoreError};
use super::{AlertMatch, DealRow};
use crate::config::AlertKind;

/// What the deals table held for a deal before this commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PreviousDeal {
    pub(crate) last_seen_ms: i64,
    /// The price of the deal's feed price type, when known.
    pub(crate) price: Option<i64>,
}

/// The alert a commit of `row` raises, if any: `(kind, version, previous
/// price)`. A deal not stored before is `new` (version: its first-seen
/// stamp); one stored before, seen now (no older than its last sighting)
/// at a lower price of its feed's price type is a `price_drop` (version:
/// the new price).
pub(crate) fn event_for(
    prev: Option<PreviousDeal>,
    row: &DealRow,
) -> Option<(AlertKind, String, Option<i64>)> {
    match prev {
        None => Some((AlertKind::New, row.seen_at_ms.to_string(), None)),
        Some(p) if row.seen_at_ms >= p.last_seen_ms => {
            let (old, new) = (p.price?, feed_price(row)?);
            (new < old).then(|| (AlertKind::PriceDrop, new.to_string(), Some(old)))
        }
        Some(_) => None,
    }
}

/// The price a deal row shows for its feed's price type (0 Amazon, 1 New,
/// 2 Used, 18 Buy Box); `None` for other types or no value.
pub fn feed_price(row: &DealRow) -> Option<i64> {
    price_of(
        row.price_type,
        [
            row.current_amazon,
            row.current_new,
            row.current_used,
            row.current_buy_box,
        ],
    )
}

/// The price of `price_type` among `[amazon, new, used, buy_box]`.
pub(crate) fn price_of(price_type: u8, prices: [Option<i64>; 4]) -> Option<i64> {
    match price_type {
        0 => prices[0],
        1 => prices[1],
        2 => prices[2],
        18 => prices[3],
        _ => None,
    }
}

/// The payload stored for a match: its own object with `kind`, `version`,
/// the dedup `key` and, for a drop, `previous_price` added.
pub(crate) fn payload_for(
    m: &AlertMatch,
    kind: AlertKind,
    version: &str,
    previous: Option<i64>,
) -> String {
    let mut p = m.payload.clone();
    if let Some(obj) = p.as_object_mut() {
        obj.insert("kind".into(), kind.as_str().into());
        obj.insert("version".into(), version.into());
        obj.insert(
            "key".into(),
            format!(
                "{}:{}:{}:{}:{}",
                m.alert,
                m.domain,
                m.asin,
                kind.as_str(),
                version
            )
            .into(),
        );
        if let Some(old) = previous {
            obj.insert("previous_price".into(), old.into());
        }
    }
    p.to_string()
}

/// A pending outbox row, claimed for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Its id.
    pub id: i64,
    /// The alert's name.
    pub alert: String,
    /// `new` or `price_drop`.
    pub kind: String,
    /// The payload (JSON text) as committed.
    pub payload: String,
    /// When it was committed (Unix ms, wall clock).
    pub created_ms: i64,
    /// Finished attempts so far (all failed).
    pub attempts: i64,
    /// It was claimed before by a sender whose outcome never came: the
    /// receiver may have it already.
    pub taken_over: bool,
}

/// Outbox counts (see the README's alerts section).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutboxCounts {
    /// Not delivered yet (`delivered_ms IS NULL`).
    pub pending: u64,
    /// Delivered.
    pub delivered: u64,
    /// Pending with at least one failed attempt.
    pub failing: u64,
}

const SELECT_DUE: &str = "SELECT id, alert, kind, payload, created_ms, attempts, claimed_ms \
     FROM alert_outbox WHERE delivered_ms IS NULL AND next_attempt_ms <= $1 \
     AND (claimed_ms IS NULL OR claimed_ms <= $2)";
const CLAIM: &str = "UPDATE alert_outbox SET claimed_ms = $1 WHERE id = $2 \
     AND delivered_ms IS NULL AND (claimed_ms IS NULL OR claimed_ms <= $3)";
const DELIVERED: &str = "UPDATE alert_outbox SET delivered_ms = $2, attempts = attempts + 1, \
     claimed_ms = NULL WHERE id = $1";
const FAILED: &str = "UPDATE alert_outbox SET attempts = attempts + 1, last_error = $2, \
     next_attempt_ms = $3, claimed_ms = NULL WHERE id = $1 AND delivered_ms IS NULL";
const RELEASE: &str = "UPDATE alert_outbox SET claimed_ms = NULL \
     WHERE delivered_ms IS NULL AND claimed_ms IS NOT NULL AND claimed_ms <= $1";
const COUNTS: &str = "SELECT \
     CAST(COALESCE(SUM(CASE WHEN delivered_ms IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN delivered_ms IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN delivered_ms IS NULL AND attempts > 0 THEN 1 ELSE 0 END), 0) AS BIGINT) \
     FROM alert_outbox";

impl Store {
    /// Claims up to `limit` rows of the alerts named in `alerts` that are
    /// due at `now_ms` (unclaimed, or claimed at or before `stale_ms`: a
    /// sender that never reported), oldest first.
    pub async fn alerts_claim(
        &self,
        alerts: &[String],
        now_ms: i64,
        stale_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        if alerts.is_empty() {
            return Ok(Vec::new());
        }
        let db = &self.db;
        let q = |what: &'static str| move |e: sqlx::Error| classify(db, what, &e);
        let select = format!(
            "{SELECT_DUE} AND alert IN ({}) ORDER BY id LIMIT {}",
            sql::in_list(3, alerts.len()),
            limit.max(1)
        );
        let mut out = Vec::new();
        with_pool!(self, p => {
            let mut query = sqlx::query(AssertSqlSafe(select)).bind(now_ms).bind(stale_ms);
            for a in alerts {
                query = query.bind(a.as_str());
            }
            for row in query.fetch_all(p).await.map_err(q("read pending alerts"))? {
                let id: i64 = row.try_get(0).map_err(q("read pending alerts"))?;
                let claimed: Option<i64> = row.try_get(6).map_err(q("read pending alerts"))?;
                let took = sqlx::query(CLAIM)
                    .bind(now_ms)
                    .bind(id)
                    .bind(stale_ms)
                    .execute(p)
                    .await
                    .map_err(q("claim alert"))?
                    .rows_affected();
                if took == 1 {
                    out.push(OutboxRow {
                        id,
                        alert: row.try_get(1).map_err(q("read pending alerts"))?,
                        kind: row.try_get(2).map_err(q("read pending alerts"))?,
                        payload: row.try_get(3).map_err(q("read pending alerts"))?,
                        created_ms: row.try_get(4).map_err(q("read pending alerts"))?,
                        attempts: i64::from(row.try_get::<i32, _>(5).map_err(q("read pending alerts"))?),
                        taken_over: claimed.is_some(),
                    });
                }
            }
        });
        Ok(out)
    }

    /// Marks row `id` delivered at `now_ms`.
    pub async fn alerts_delivered(&self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        let db = &self.db;
        with_pool!(self, p => sqlx::query(DELIVERED).bind(id).bind(now_ms).execute(p).await.map(|_| ()))
            .map_err(|e| classify(db, "mark alert delivered", &e))?;
        Ok(())
    }

    /// Records a failed attempt of row `id`: its error (which must hold no
    /// URL) and when to try again.
    pub async fn alerts_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_ms: i64,
    ) -> Result<(), StoreError> {
        let db = &self.db;
        with_pool!(self, p => sqlx::query(FAILED).bind(id).bind(error).bind(next_attempt_ms).execute(p).await.map(|_| ()))
            .map_err(|e| classify(db, "record alert failure", &e))?;
        Ok(())
    }

    /// Releases claims made at or before `stale_ms` whose outcome never
    /// came; returns how many (each may already have reached its receiver).
    pub async fn alerts_release_abandoned(&self, stale_ms: i64) -> Result<u64, StoreError> {
        let db = &self.db;
        let n = with_pool!(self, p => sqlx::query(RELEASE).bind(stale_ms).execute(p).await.map(|r| r.rows_affected()))
            .map_err(|e| classify(db, "release abandoned alerts", &e))?;
        Ok(n)
    }

    /// Rows of the alerts named in `alerts` not delivered yet.
    pub async fn alerts_pending(&self, alerts: &[String]) -> Result<u64, StoreError> {
        if alerts.is_empty() {
            return Ok(0);
        }
        let db = &self.db;
        let count = format!(
            "SELECT COUNT(*) FROM alert_outbox WHERE delivered_ms IS NULL AND alert IN ({})",
            sql::in_list(1, alerts.len())
        );
        let n: i64 = with_pool!(self, p => {
            let mut query = sqlx::query_scalar(AssertSqlSafe(count));
            for a in alerts {
                query = query.bind(a.as_str());
            }
            query.fetch_one(p).await
        })
        .map_err(|e| classify(db, "count pending alerts", &e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The newest recorded delivery error, if any row has one.
    pub async fn alerts_last_error(&self) -> Result<Option<String>, StoreError> {
        let db = &self.db;
        let e: Option<String> = with_pool!(self, p => {
            sqlx::query_scalar(
                "SELECT last_error FROM alert_outbox WHERE last_error IS NOT NULL ORDER BY id DESC LIMIT 1",
            )
            .fetch_optional(p)
            .await
        })
        .map_err(|e| classify(db, "read alert errors", &e))?;
        Ok(e)
    }

    /// Pending, delivered and failing outbox rows.
    pub async fn alerts_counts(&self) -> Result<OutboxCounts, StoreError> {
        let db = &self.db;
        let (pending, delivered, failing): (i64, i64, i64) =
            with_pool!(self, p => sqlx::query_as(COUNTS).fetch_one(p).await)
                .map_err(|e| classify(db, "count alerts", &e))?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(OutboxCounts {
            pending: n(pending),
            delivered: n(delivered),
            failing: n(failing),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seen: i64, used: Option<i64>) -> DealRow {
        DealRow {
            asin: "B0".into(),
            domain: 1,
            price_type: 2,
            current_used: used,
            seen_at_ms: seen,
            ..Default::default()
        }
    }

    #[test]
    fn a_deal_not_stored_before_is_new_with_its_first_seen_stamp() {
        let e = event_for(None, &row(42, Some(100)));
        assert_eq!(e, Some((AlertKind::New, "42".into(), None)));
    }

    #[test]
    fn only_a_newer_lower_price_of_the_feed_type_is_a_drop() {
        let prev = PreviousDeal {
            last_seen_ms: 10,
            price: Some(1000),
        };
        assert_eq!(
            event_for(Some(prev), &row(11, Some(900))),
            Some((AlertKind::PriceDrop, "900".into(), Some(1000)))
        );
        assert_eq!(event_for(Some(prev), &row(11, Some(1000))), None);
        assert_eq!(event_for(Some(prev), &row(11, Some(1100))), None);
        assert_eq!(
            event_for(Some(prev), &row(9, Some(500))),
            None,
            "older sighting"
        );
        assert_eq!(event_for(Some(prev), &row(11, None)), None);
        let mut other = row(11, Some(1));
        other.price_type = 5;
        assert_eq!(event_for(Some(prev), &other), None, "no price for type 5");
    }

    #[test]
    fn the_payload_gains_kind_version_and_a_stable_key() {
        let m = AlertMatch {
            alert: "a".into(),
            domain: 1,
            asin: "B0".into(),
            on: vec![AlertKind::PriceDrop],
            payload: serde_json::json!({ "asin": "B0" }),
        };
        let p: serde_json::Value =
            serde_json::from_str(&payload_for(&m, AlertKind::PriceDrop, "900", Some(1000)))
                .unwrap();
        assert_eq!(p["key"], "a:1:B0:price_drop:900");
        assert_eq!(p["kind"], "price_drop");
        assert_eq!(p["previous_price"], 1000);
        assert_eq!(p["asin"], "B0");
    }
}
