//! [`Store::commit`]: a whole [`Batch`] in one transaction, in named
//! steps: order and check the batch, then write each kind of row.

use sqlx::AssertSqlSafe;

use super::outbox::{event_for, payload_for, price_of, PreviousDeal};
use super::{classify, now_ms, sql, Batch, Committed, Pool, Store, StoreError};

impl Store {
    /// Writes the batch in one transaction: every row and every checkpoint,
    /// or nothing.
    ///
    /// Upserts keyed by `(domain, asin)`: a deal, product or rejection is
    /// replaced only by one at least as new (`seen_at_ms`, `fetched_at_ms`,
    /// `rejected_at_ms`), a deal keeps its `first_seen_ms`, and a request
    /// row identical in every field is stored once; so replaying a batch
    /// stores nothing twice. A checkpoint replaces the job's previous one.
    ///
    /// Each [`AlertMatch`](super::AlertMatch) whose deal is new to the
    /// table, or seen at a lower price of its feed's type, becomes an
    /// `alert_outbox` row in the same transaction (see `store::outbox`);
    /// one already there for the same version is counted, not repeated.
    pub async fn commit(&self, mut batch: Batch) -> Result<Committed, StoreError> {
        if batch.is_empty() {
            return Ok(Committed::default());
        }
        self.order_and_check(&mut batch)?;
        let updated_at = now_ms();
        match &self.pool {
            Pool::Sqlite(p) => sqlite::write(p, &batch, updated_at, &self.db).await,
            Pool::Postgres(p) => postgres::write(p, &batch, updated_at, &self.db).await,
        }
    }

    /// Puts the batch in the one global lock order (table, then key), so
    /// concurrent commits on PostgreSQL wait for each other, never
    /// deadlock; refuses a checkpoint or feed page without a job name.
    fn order_and_check(&self, batch: &mut Batch) -> Result<(), StoreError> {
        batch
            .deals
            .sort_by(|a, b| (a.domain, &a.asin).cmp(&(b.domain, &b.asin)));
        batch
            .products
            .sort_by(|a, b| (a.domain, &a.asin).cmp(&(b.domain, &b.asin)));
        batch
            .rejections
            .sort_by(|a, b| (a.domain, &a.asin).cmp(&(b.domain, &b.asin)));
        batch.checkpoints.sort_by(|a, b| a.0.cmp(&b.0));
        if batch.checkpoints.iter().any(|(job, _)| job.is_empty()) {
            return Err(self.invalid("checkpoint", "empty job name".into()));
        }
        if batch.pages.iter().any(|p| p.job.is_empty()) {
            return Err(self.invalid("feed page", "empty job name".into()));
        }
        batch
            .pages
            .sort_by(|a, b| (&a.job, a.page).cmp(&(&b.job, b.page)));
        batch
            .alerts
            .sort_by(|a, b| (a.domain, &a.asin, &a.alert).cmp(&(b.domain, &b.asin, &b.alert)));
        Ok(())
    }
}

/// The commit's steps, written once and compiled for each engine.
macro_rules! commit_steps {
    ($engine:ident, $db:ty, $begin:expr) => {
        mod $engine {
            use super::*;
            use crate::store::{
                AlertMatch, DealRow, FeedPage, ProductRow, RejectionRow, RequestRow,
            };

            type Tx = sqlx::Transaction<'static, $db>;

            /// Maps an engine error of step `what` to a [`StoreError`].
            fn q<'a>(db: &'a str, what: &'static str) -> impl Fn(sqlx::Error) -> StoreError + 'a {
                move |e| classify(db, what, &e)
            }

            /// Writes `batch` (already ordered) in one transaction.
            pub(super) async fn write(
                pool: &sqlx::Pool<$db>,
                batch: &Batch,
                updated_at: i64,
                db: &str,
            ) -> Result<Committed, StoreError> {
                // Alerts read the deals before writing them: SQLite must
                // take the write lock first, or a write by another
                // connection in between fails the upgrade (BUSY_SNAPSHOT).
                let begun = match ($begin, batch.alerts.is_empty()) {
                    (Some(statement), false) => pool.begin_with(statement).await,
                    _ => pool.begin().await,
                };
                let mut tx = begun.map_err(q(db, "begin transaction"))?;
                let before = previous(&mut tx, &batch.alerts, db).await?;
                deals(&mut tx, &batch.deals, db).await?;
                let committed = outbox(&mut tx, batch, &before, updated_at, db).await?;
                products(&mut tx, &batch.products, db).await?;
                histories(&mut tx, &batch.products, db).await?;
                rejections(&mut tx, &batch.rejections, db).await?;
                requests(&mut tx, &batch.requests, db).await?;
                pages(&mut tx, &batch.pages, updated_at, db).await?;
                checkpoints(&mut tx, &batch.checkpoints, updated_at, db).await?;
                tx.commit().await.map_err(q(db, "commit"))?;
                Ok(committed)
            }

            /// What the deals table holds for each matched deal, before
            /// this batch's upserts (`None`: not stored).
            async fn previous(
                tx: &mut Tx,
                alerts: &[AlertMatch],
                db: &str,
            ) -> Result<Vec<Option<PreviousDeal>>, StoreError> {
                let mut out = Vec::with_capacity(alerts.len());
                let mut last: Option<(u8, &str, Option<PreviousDeal>)> = None;
                for a in alerts {
                    if let Some((d, asin, prev)) = last {
                        if d == a.domain && asin == a.asin {
                            out.push(prev);
                            continue;
                        }
                    }
                    let row: Option<(
                        i64,
                        i64,
                        Option<i64>,
                        Option<i64>,
                        Option<i64>,
                        Option<i64>,
                    )> = sqlx::query_as(sql::SELECT_DEAL_BEFORE)
                        .bind(i64::from(a.domain))
                        .bind(a.asin.as_str())
                        .fetch_optional(&mut **tx)
                        .await
                        .map_err(q(db, "read deal before alert"))?;
                    let prev = row.map(|(last_seen_ms, pt, am, nw, us, bb)| PreviousDeal {
                        last_seen_ms,
                        price: price_of(u8::try_from(pt).unwrap_or(u8::MAX), [am, nw, us, bb]),
                    });
                    last = Some((a.domain, a.asin.as_str(), prev));
                    out.push(prev);
                }
                Ok(out)
            }

            /// The outbox rows of the batch's matches (`before`: one entry
            /// per match, from [`previous`]).
            async fn outbox(
                tx: &mut Tx,
                batch: &Batch,
                before: &[Option<PreviousDeal>],
                created_ms: i64,
                db: &str,
            ) -> Result<Committed, StoreError> {
                let mut c = Committed::default();
                for (m, prev) in batch.alerts.iter().zip(before) {
                    let deal = batch
                        .deals
                        .binary_search_by(|d| {
                            (d.domain, d.asin.as_str()).cmp(&(m.domain, m.asin.as_str()))
                        })
                        .ok()
                        .map(|i| &batch.deals[i]);
                    let Some((kind, version, old)) = deal.and_then(|d| event_for(*prev, d)) else {
                        continue;
                    };
                    if !m.on.contains(&kind) {
                        continue;
                    }
                    let inserted = sqlx::query(sql::INSERT_ALERT)
                        .bind(m.alert.as_str())
                        .bind(i64::from(m.domain))
                        .bind(m.asin.as_str())
                        .bind(kind.as_str())
                        .bind(version.as_str())
                        .bind(payload_for(m, kind, &version, old))
                        .bind(created_ms)
                        .execute(&mut **tx)
                        .await
                        .map_err(q(db, "queue alert"))?
                        .rows_affected();
                    if inserted == 1 {
                        c.alerts_queued += 1;
                    } else {
                        c.alerts_deduplicated += 1;
                    }
                }
                Ok(c)
            }

            async fn deals(tx: &mut Tx, rows: &[DealRow], db: &str) -> Result<(), StoreError> {
                for d in rows {
                    sqlx::query(sql::UPSERT_DEAL)
                        .bind(i64::from(d.domain))
                        .bind(d.asin.as_str())
                        .bind(d.title.as_deref())
                        .bind(d.root_category)
                        .bind(i64::from(d.price_type))
                        .bind(d.current_amazon)
                        .bind(d.current_new)
                        .bind(d.current_used)
                        .bind(d.current_buy_box)
                        .bind(d.sales_rank)
                        .bind(d.delta_percent_day)
                        .bind(d.delta_percent_week)
                        .bind(d.delta_percent_month)
                        .bind(d.delta_percent_quarter)
                        .bind(d.creation_date_ms)
                        .bind(d.last_update_ms)
                        .bind(d.seen_at_ms)
                        .bind(d.delta_day)
                        .bind(d.delta_week)
                        .bind(d.delta_month)
                        .bind(d.delta_quarter)
                        .bind(d.raw_json.as_deref())
                        .execute(&mut **tx)
                        .await
                        .map_err(q(db, "upsert deal"))?;
                }
                Ok(())
            }

            async fn products(
                tx: &mut Tx,
                rows: &[ProductRow],
                db: &str,
            ) -> Result<(), StoreError> {
                let upsert = sql::upsert_product();
                for r in rows {
                    sqlx::query(AssertSqlSafe(upsert.as_str()))
                        .bind(i64::from(r.domain))
                        .bind(r.asin.as_str())
                        .bind(r.title.as_deref())
                        .bind(r.current_amazon)
                        .bind(r.current_new)
                        .bind(r.current_used)
                        .bind(r.current_buy_box)
                        .bind(r.avg30_amazon)
                        .bind(r.avg30_new)
                        .bind(r.avg30_used)
                        .bind(r.avg30_buy_box)
                        .bind(r.avg90_amazon)
                        .bind(r.avg90_new)
                        .bind(r.avg90_used)
                        .bind(r.avg90_buy_box)
                        .bind(r.avg180_amazon)
                        .bind(r.avg180_new)
                        .bind(r.avg180_used)
                        .bind(r.avg180_buy_box)
                        .bind(r.sales_rank)
                        .bind(r.sales_rank_avg90)
                        .bind(r.sales_rank_drops30)
                        .bind(r.sales_rank_drops90)
                        .bind(r.sales_rank_drops180)
                        .bind(r.sales_rank_drops365)
                        .bind(r.offer_count_new)
                        .bind(r.offer_count_used)
                        .bind(r.offer_count_fba)
                        .bind(r.offer_count_fbm)
                        .bind(r.lowest_used_price)
                        .bind(r.lowest_used_seller.as_deref())
                        .bind(r.lowest_used_condition)
                        .bind(r.lowest_new_price)
                        .bind(r.monthly_sold)
                        .bind(r.keepa_last_update_ms)
                        .bind(r.fetched_at_ms)
                        .bind(r.stage.as_str())
                        .bind(r.tokens_charged)
                        .execute(&mut **tx)
                        .await
                        .map_err(q(db, "upsert product"))?;
                }
                Ok(())
            }

            /// The csv histories the products carry (`keep_history`).
            async fn histories(
                tx: &mut Tx,
                rows: &[ProductRow],
                db: &str,
            ) -> Result<(), StoreError> {
                for r in rows {
                    let Some(csv) = r.history_csv.as_deref() else {
                        continue;
                    };
                    sqlx::query(sql::UPSERT_HISTORY)
                        .bind(i64::from(r.domain))
                        .bind(r.asin.as_str())
                        .bind(csv)
                        .bind(r.fetched_at_ms)
                        .execute(&mut **tx)
                        .await
                        .map_err(q(db, "upsert product history"))?;
                }
                Ok(())
            }

            async fn rejections(
                tx: &mut Tx,
                rows: &[RejectionRow],
                db: &str,
            ) -> Result<(), StoreError> {
                for r in rows {
                    sqlx::query(sql::UPSERT_REJECTION)
                        .bind(i64::from(r.domain))
                        .bind(r.asin.as_str())
                        .bind(r.stage.as_str())
                        .bind(r.reason.as_str())
                        .bind(r.rejected_at_ms)
                        .bind(r.expires_at_ms)
                        .execute(&mut **tx)
                        .await
                        .map_err(q(db, "upsert rejection"))?;
                }
                Ok(())
            }

            async fn requests(
                tx: &mut Tx,
                rows: &[RequestRow],
                db: &str,
            ) -> Result<(), StoreError> {
                for r in rows {
                    sqlx::query(sql::INSERT_REQUEST)
                        .bind(r.at_ms)
                        .bind(r.job.as_str())
                        .bind(r.stage.as_str())
                        .bind(r.endpoint.as_str())
                        .bind(i64::from(r.items))
                        .bind(r.predicted)
                        .bind(r.charged)
                        .bind(r.tokens_left)
                        .bind(r.status.as_str())
                        .execute(&mut **tx)
                        .await
                        .map_err(q(db, "insert request"))?;
                }
                Ok(())
            }

            async fn pages(
                tx: &mut Tx,
                rows: &[FeedPage],
                updated_at: i64,
                db: &str,
            ) -> Result<(), StoreError> {
                for pg in rows {
                    sqlx::query(sql::INSERT_FEED_PAGE)
                        .bind(pg.job.as_str())
                        .bind(i64::from(pg.page))
                        .bind(i64::from(pg.deals))
                        .bind(updated_at)
                        .execute(&mut **tx)
                        .await
                        .map_err(q(db, "record feed page"))?;
                }
                Ok(())
            }

            async fn checkpoints(
                tx: &mut Tx,
                rows: &[(String, serde_json::Value)],
                updated_at: i64,
                db: &str,
            ) -> Result<(), StoreError> {
                for (job, value) in rows {
                    sqlx::query(sql::UPSERT_CHECKPOINT)
                        .bind(job.as_str())
                        .bind(value.to_string())
                        .bind(updated_at)
                        .execute(&mut **tx)
                        .await
                        .map_err(q(db, "upsert checkpoint"))?;
                }
                Ok(())
            }
        }
    };
}

commit_steps!(sqlite, sqlx::Sqlite, Some("BEGIN IMMEDIATE"));
commit_steps!(postgres, sqlx::Postgres, None::<&'static str>);
