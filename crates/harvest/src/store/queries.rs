//! Reads the jobs make: checkpoints, finished feed pages, raw deals, what
//! the store knows of a list of ASINs, stale products, the deal count.

use std::collections::{HashMap, HashSet};

use sqlx::{AssertSqlSafe, Row};

use super::{classify, sql, Known, Pool, Store, StoreError};

/// ASINs per `IN (…)` query of [`Store::known`].
const KNOWN_CHUNK: usize = 500;

/// [`Store::last_request`]: the newest request's time, and the
/// `tokensLeft` of the newest request that reported one.
const LAST_REQUEST: &str = "SELECT (SELECT MAX(at_ms) FROM requests), \
     (SELECT tokens_left FROM requests WHERE tokens_left IS NOT NULL ORDER BY at_ms DESC, id DESC LIMIT 1)";

impl Store {
    /// The job's last committed checkpoint.
    pub async fn checkpoint(&self, job: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let db = &self.db;
        let text: Option<String> = with_pool!(self, p => {
            sqlx::query_scalar(sql::SELECT_CHECKPOINT)
                .bind(job)
                .fetch_optional(p)
                .await
                .map_err(|e| classify(db, "read checkpoint", &e))?
        });
        text.map(|t| {
            serde_json::from_str(&t).map_err(|e| StoreError::Invalid {
                db: db.clone(),
                what: "stored checkpoint",
                detail: format!("job {job}: {e}"),
            })
        })
        .transpose()
    }

    /// The feed pages `job` finished, as `(page, deals on it)`, by page.
    pub async fn feed_pages(&self, job: &str) -> Result<Vec<(u32, u32)>, StoreError> {
        let db = &self.db;
        let rows: Vec<(i64, i64)> = with_pool!(self, p => {
            sqlx::query_as(sql::SELECT_FEED_PAGES)
                .bind(job)
                .fetch_all(p)
                .await
                .map_err(|e| classify(db, "read feed pages", &e))?
        });
        Ok(rows
            .into_iter()
            .map(|(p, d)| {
                (
                    p.clamp(0, i64::from(u32::MAX)) as u32,
                    d.clamp(0, i64::from(u32::MAX)) as u32,
                )
            })
            .collect())
    }

    /// The deal's JSON as Keepa sent it, if the deal is stored and its
    /// newest sighting kept it (see [`DealRow::raw_json`](super::DealRow::raw_json)). Opaque text:
    /// the store does not parse it.
    pub async fn raw_deal(&self, domain: u8, asin: &str) -> Result<Option<String>, StoreError> {
        let db = &self.db;
        let raw: Option<Option<String>> = with_pool!(self, p => {
            sqlx::query_scalar(sql::SELECT_RAW_DEAL)
                .bind(i64::from(domain))
                .bind(asin)
                .fetch_optional(p)
                .await
                .map_err(|e| classify(db, "read raw deal", &e))?
        });
        Ok(raw.flatten())
    }

    /// For each of `asins` that is stored or has a rejection unexpired at
    /// `now_ms`: what we know. A product row counts as stored; so does a
    /// deal stored without product details (stage `"deal"`, its
    /// `last_seen_ms`). When an ASIN is both stored and rejected, the newer
    /// of the fetch and the rejection wins. ASINs we know nothing of are absent.
    pub async fn known(
        &self,
        domain: u8,
        asins: &[String],
        now_ms: i64,
    ) -> Result<HashMap<String, Known>, StoreError> {
        let mut stored: HashMap<String, (i64, String)> = HashMap::new();
        let mut deals: HashSet<String> = HashSet::new();
        let mut rejected: HashMap<String, (String, String, i64, i64)> = HashMap::new();
        let db = &self.db;
        let q = |what: &'static str| move |e: sqlx::Error| classify(db, what, &e);
        let domain = i64::from(domain);
        for chunk in asins.chunks(KNOWN_CHUNK) {
            let list = sql::in_list(2, chunk.len());
            let deals_sql = format!(
                "SELECT asin, last_seen_ms FROM deals WHERE domain = $1 AND asin IN ({list})"
            );
            let products_sql = format!(
                "SELECT asin, fetched_at_ms, stage FROM products WHERE domain = $1 AND asin IN ({list})"
            );
            let list = sql::in_list(3, chunk.len());
            let rejections_sql = format!(
                "SELECT asin, stage, reason, rejected_at_ms, expires_at_ms FROM rejections \
                 WHERE domain = $1 AND expires_at_ms > $2 AND asin IN ({list})"
            );
            with_pool!(self, p => {
                let mut query = sqlx::query(AssertSqlSafe(deals_sql)).bind(domain);
                for a in chunk {
                    query = query.bind(a.as_str());
                }
                for row in query.fetch_all(p).await.map_err(q("read deals"))? {
                    let asin: String = row.try_get(0).map_err(q("read deals"))?;
                    let seen: i64 = row.try_get(1).map_err(q("read deals"))?;
                    stored.insert(asin.clone(), (seen, "deal".to_string()));
                    deals.insert(asin);
                }
                let mut query = sqlx::query(AssertSqlSafe(products_sql)).bind(domain);
                for a in chunk {
                    query = query.bind(a.as_str());
                }
                for row in query.fetch_all(p).await.map_err(q("read products"))? {
                    let asin: String = row.try_get(0).map_err(q("read products"))?;
                    let at: i64 = row.try_get(1).map_err(q("read products"))?;
                    let stage: String = row.try_get(2).map_err(q("read products"))?;
                    stored.insert(asin, (at, stage));
                }
                let mut query = sqlx::query(AssertSqlSafe(rejections_sql))
                    .bind(domain)
                    .bind(now_ms);
                for a in chunk {
                    query = query.bind(a.as_str());
                }
                for row in query.fetch_all(p).await.map_err(q("read rejections"))? {
                    let asin: String = row.try_get(0).map_err(q("read rejections"))?;
                    let stage: String = row.try_get(1).map_err(q("read rejections"))?;
                    let reason: String = row.try_get(2).map_err(q("read rejections"))?;
                    let at: i64 = row.try_get(3).map_err(q("read rejections"))?;
                    let expires: i64 = row.try_get(4).map_err(q("read rejections"))?;
                    rejected.insert(asin, (stage, reason, at, expires));
                }
            });
        }
        let mut out: HashMap<String, Known> = stored
            .into_iter()
            .map(|(asin, (fetched_at_ms, stage))| {
                let deal = deals.contains(&asin);
                (
                    asin,
                    Known::Stored {
                        fetched_at_ms,
                        stage,
                        deal,
                    },
                )
            })
            .collect();
        for (asin, (stage, reason, at, expires_at_ms)) in rejected {
            let newer = match out.get(&asin) {
                Some(Known::Stored { fetched_at_ms, .. }) => at >= *fetched_at_ms,
                _ => true,
            };
            if newer {
                out.insert(
                    asin,
                    Known::Rejected {
                        stage,
                        reason,
                        expires_at_ms,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Stored products whose `fetched_at_ms` < `older_than_ms`, oldest first
    /// (ties by ASIN), at most `limit`.
    pub async fn stale_products(
        &self,
        domain: u8,
        older_than_ms: i64,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let db = &self.db;
        let rows: Vec<String> = with_pool!(self, p => {
            sqlx::query_scalar(sql::STALE_PRODUCTS)
                .bind(i64::from(domain))
                .bind(older_than_ms)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
                .map_err(|e| classify(db, "read stale products", &e))?
        });
        Ok(rows)
    }

    /// Stored deals.
    pub async fn count_deals(&self) -> Result<u64, StoreError> {
        let db = &self.db;
        let n: i64 = with_pool!(self, p => {
            sqlx::query_scalar(sql::COUNT_DEALS)
                .fetch_one(p)
                .await
                .map_err(|e| classify(db, "count deals", &e))?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Where the request ledger stops: the newest request's time (Unix ms)
    /// and the balance the newest answer with a `tokensLeft` left, if any
    /// answer had one. `None` when no request is stored. A resumed sandbox
    /// continues its server's clock and bucket from here.
    pub async fn last_request(&self) -> Result<Option<(i64, Option<i64>)>, StoreError> {
        let db = &self.db;
        let (at, left): (Option<i64>, Option<i64>) = with_pool!(self, p => {
            sqlx::query_as(LAST_REQUEST)
                .fetch_one(p)
                .await
                .map_err(|e| classify(db, "read the newest request", &e))?
        });
        Ok(at.map(|at| (at, left)))
    }
}
