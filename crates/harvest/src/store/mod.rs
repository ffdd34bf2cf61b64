//! The store: deals, products, rejections, checkpoints and the request
//! ledger, in SQLite (one file, WAL) or PostgreSQL, behind one interface.
//!
//! ```no_run
//! # async fn demo() -> Result<(), harvest::store::StoreError> {
//! use harvest::store::{Batch, DealRow, Store};
//! let store = Store::open("keepa-harvest.db").await?;
//! let mut batch = Batch::default();
//! batch.deals.push(DealRow { asin: "B00TEST123".into(), domain: 1, seen_at_ms: 1, ..Default::default() });
//! batch.checkpoints.push(("backfill".into(), serde_json::json!({ "page": 3 })));
//! store.commit(batch).await?; // rows and checkpoint together, or nothing
//! assert_eq!(store.count_deals().await?, 1);
//! # Ok(()) }
//! ```
//!
//! Guarantees:
//! - [`Store::commit`] writes a whole [`Batch`] in one transaction: every
//!   row and every checkpoint, or nothing.
//! - Rows are upserts keyed by `(domain, asin)` (requests: by all their
//!   fields), so replaying a batch stores nothing twice; a deal keeps its
//!   first `first_seen_ms`.
//! - Migrations are embedded, recorded in `schema_migrations`, and safe to
//!   run again (and from several processes at once).
//! - A read-only, missing-directory or corrupt database gives a
//!   [`StoreError`]; the store never deletes or rewrites a file it cannot read.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row};

mod error;
mod locks;
mod rows;
mod sql;

pub use error::{redact, StoreError};
pub use locks::{lock_id, Locks};
pub use rows::{
    Batch, DealRow, FeedPage, Known, ProductRow, RejectionRow, RequestRow, StatusReport,
};

use sql::Kind;

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Output format of [`Store::export`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Comma-separated values (RFC 4180 quoting) with a header row; NULL is an empty field.
    Csv,
    /// One JSON object per line; NULL is `null`.
    Jsonl,
}

#[derive(Clone)]
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// A handle on the database. Cheap to clone (a connection pool inside).
/// Its `Debug` shows the backend and the database without any password.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// The database as shown in messages (password removed).
    db: String,
    /// SQLite: the file whose lock marks the one `run` on this database.
    lock_path: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

/// ASINs per `IN (…)` query of [`Store::known`].
const KNOWN_CHUNK: usize = 500;
/// Rows per page of [`Store::export`].
const EXPORT_PAGE: i64 = 1000;
/// How long a SQLite writer waits for another one.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `$body` with `$p` bound to the concrete pool of either backend.
macro_rules! with_pool {
    ($self:expr, $p:ident => $body:expr) => {
        match &$self.pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

/// True when `db` names a PostgreSQL server rather than a SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    let lower = db.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

impl Store {
    /// Opens the database, creating it if needed, and runs the embedded migrations.
    ///
    /// `db` is a path (SQLite, created with its parent directories if
    /// missing; WAL, `synchronous=NORMAL`, busy timeout, foreign keys; an
    /// optional `sqlite:` / `sqlite://` prefix is accepted) or a
    /// `postgres://` / `postgresql://` URL.
    pub async fn open(db: &str) -> Result<Store, StoreError> {
        Store::open_with(db, true).await
    }

    /// Like [`Store::open`], but a SQLite file that does not exist is
    /// [`StoreError::Missing`] instead of being created (for read-only commands).
    pub async fn open_existing(db: &str) -> Result<Store, StoreError> {
        Store::open_with(db, false).await
    }

    async fn open_with(db: &str, create: bool) -> Result<Store, StoreError> {
        let store = if is_postgres_url(db) {
            Store::connect_postgres(db).await?
        } else {
            Store::connect_sqlite(db, create).await?
        };
        store.migrate().await?;
        if create {
            store.check_writable().await?;
        }
        Ok(store)
    }

    /// A writer's open refuses a SQLite file it can read but not write (a
    /// read-only file, say): the run learns it before it spends a token on
    /// work it could not store. In WAL mode `BEGIN IMMEDIATE` succeeds on a
    /// read-only file; only a write fails, so the probe writes and rolls
    /// back, leaving the file as it was.
    async fn check_writable(&self) -> Result<(), StoreError> {
        let Pool::Sqlite(p) = &self.pool else {
            return Ok(());
        };
        let mut conn = p.acquire().await.map_err(|e| open_error(&self.db, e))?;
        let probe = sqlx::raw_sql(
            "BEGIN IMMEDIATE; CREATE TABLE keepa_harvest_write_probe (x INTEGER); ROLLBACK",
        )
        .execute(&mut *conn)
        .await;
        if probe.is_err() {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
        }
        probe.map_err(|e| open_error(&self.db, e))?;
        Ok(())
    }

    async fn connect_sqlite(db: &str, create: bool) -> Result<Store, StoreError> {
        let shown = db.to_string();
        let path_str = db
            .strip_prefix("sqlite://")
            .or_else(|| db.strip_prefix("sqlite:"))
            .unwrap_or(db);
        if path_str.is_empty() {
            return Err(StoreError::Create {
                db: shown,
                detail: "empty path".into(),
            });
        }
        let path = Path::new(path_str);
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                return Err(StoreError::Create {
                    db: shown,
                    detail: "it is a directory".into(),
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !create {
                    return Err(StoreError::Missing { db: shown });
                }
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| StoreError::Create {
                        db: shown.clone(),
                        detail: format!("cannot create directory {}: {e}", parent.display()),
                    })?;
                }
            }
            Err(e) => {
                return Err(StoreError::Create {
                    db: shown,
                    detail: e.to_string(),
                })
            }
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|e| open_error(&shown, e))?;
        let mut lock = path.as_os_str().to_owned();
        lock.push(".lock");
        Ok(Store {
            pool: Pool::Sqlite(pool),
            db: shown,
            lock_path: Some(lock.into()),
        })
    }

    async fn connect_postgres(db: &str) -> Result<Store, StoreError> {
        let shown = redact(db);
        let scrub = |detail: String| scrub_secret(db, detail);
        let opts = PgConnectOptions::from_str(db.trim()).map_err(|e| StoreError::Connect {
            db: shown.clone(),
            detail: scrub(format!("bad URL: {e}")),
        })?;
        let connect_error = |e: sqlx::Error| match e {
            sqlx::Error::Database(_) => open_error(&shown, e),
            other => StoreError::Connect {
                db: shown.clone(),
                detail: scrub(other.to_string()),
            },
        };
        // One direct connection first: the pool would retry a refused
        // connection until its acquire timeout; a user wants the error now.
        let probe = <sqlx::PgConnection as sqlx::Connection>::connect_with(&opts)
            .await
            .map_err(connect_error)?;
        let _ = sqlx::Connection::close(probe).await;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(connect_error)?;
        Ok(Store {
            pool: Pool::Postgres(pool),
            db: shown,
            lock_path: None,
        })
    }

    /// Applies the migrations the database lacks, in one transaction
    /// (serialised between processes: `BEGIN IMMEDIATE` / an advisory lock).
    async fn migrate(&self) -> Result<(), StoreError> {
        let known = sql::MIGRATIONS.last().map_or(0, |m| m.version);
        let db = &self.db;
        let fail = |version: i64, name: &'static str, e: sqlx::Error| match classify(db, "", &e) {
            c @ (StoreError::Corrupt { .. } | StoreError::ReadOnly { .. }) => c,
            _ => StoreError::Migration {
                db: db.clone(),
                version,
                name,
                detail: e.to_string(),
            },
        };
        macro_rules! run {
            ($p:expr, $begin:expr, $is_pg:expr) => {{
                let mut tx = $begin.await.map_err(|e| fail(0, "schema_migrations", e))?;
                if $is_pg {
                    sqlx::query(sql::PG_MIGRATION_LOCK)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| fail(0, "schema_migrations", e))?;
                }
                sqlx::raw_sql(sql::CREATE_SCHEMA_MIGRATIONS)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| fail(0, "schema_migrations", e))?;
                let current: i64 = sqlx::query_scalar(sql::MAX_VERSION)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| fail(0, "schema_migrations", e))?;
                if current > known {
                    return Err(StoreError::TooNew {
                        db: db.clone(),
                        found: current,
                        known,
                    });
                }
                for m in sql::MIGRATIONS.iter().filter(|m| m.version > current) {
                    let ddl = if $is_pg { m.postgres } else { m.sqlite };
                    sqlx::raw_sql(ddl)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| fail(m.version, m.name, e))?;
                    sqlx::query(sql::RECORD_MIGRATION)
                        .bind(m.version)
                        .bind(m.name)
                        .bind(now_ms())
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| fail(m.version, m.name, e))?;
                }
                tx.commit().await.map_err(|e| fail(known, "commit", e))?;
            }};
        }
        // Up to date already: nothing to write (a read-only copy still opens).
        let current: Result<i64, sqlx::Error> = with_pool!(self, p => {
            sqlx::query_scalar(sql::MAX_VERSION).fetch_one(p).await
        });
        match current {
            Ok(v) if v == known => return Ok(()),
            Ok(v) if v > known => {
                return Err(StoreError::TooNew {
                    db: db.clone(),
                    found: v,
                    known,
                })
            }
            Err(e) => {
                // No schema_migrations yet is expected; corrupt is not.
                if let c @ StoreError::Corrupt { .. } = classify(db, "", &e) {
                    return Err(c);
                }
            }
            Ok(_) => {}
        }
        match &self.pool {
            Pool::Sqlite(p) => run!(p, p.begin_with("BEGIN IMMEDIATE"), false),
            Pool::Postgres(p) => run!(p, p.begin(), true),
        }
        Ok(())
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The database as shown in messages (a URL without its password).
    pub fn display_name(&self) -> &str {
        &self.db
    }

    /// Claims shared by every process on this database (see [`Locks`]).
    ///
    /// On SQLite this also takes the database for this process: while the
    /// returned `Locks` (or a clone) lives, another process asking gets
    /// [`StoreError::InUse`]. The system drops that lock when the process
    /// ends, however it ends. On PostgreSQL it takes a connection of its own.
    pub async fn locks(&self) -> Result<Locks, StoreError> {
        match (&self.pool, &self.lock_path) {
            (Pool::Postgres(p), _) => {
                let con = p
                    .acquire()
                    .await
                    .map_err(|e| classify(&self.db, "open a claims connection", &e))?
                    .detach();
                Ok(Locks::postgres(con, self.db.clone()))
            }
            (Pool::Sqlite(_), Some(path)) => {
                use std::io::{Read as _, Seek as _, Write as _};
                let create = |e: std::io::Error| StoreError::Create {
                    db: self.db.clone(),
                    detail: format!("cannot open lock file {}: {e}", path.display()),
                };
                let mut f = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)
                    .map_err(create)?;
                match f.try_lock() {
                    Ok(()) => {}
                    Err(std::fs::TryLockError::WouldBlock) => {
                        let mut text = String::new();
                        let _ = f.read_to_string(&mut text);
                        let holder = text
                            .trim()
                            .parse::<u32>()
                            .map_or(String::new(), |pid| format!(" (process {pid})"));
                        return Err(StoreError::InUse {
                            db: self.db.clone(),
                            holder,
                        });
                    }
                    Err(std::fs::TryLockError::Error(e)) => return Err(create(e)),
                }
                let _ = f.set_len(0);
                let _ = f.rewind();
                let _ = writeln!(f, "{}", std::process::id());
                Ok(Locks::local(f))
            }
            (Pool::Sqlite(_), None) => Err(self.invalid("lock", "no database file".into())),
        }
    }

    /// Writes the batch in one transaction: every row and every checkpoint,
    /// or nothing.
    ///
    /// Upserts keyed by `(domain, asin)`: a deal, product or rejection is
    /// replaced only by one at least as new (`seen_at_ms`, `fetched_at_ms`,
    /// `rejected_at_ms`), a deal keeps its `first_seen_ms`, and a request
    /// row identical in every field is stored once; so replaying a batch
    /// stores nothing twice. A checkpoint replaces the job's previous one.
    pub async fn commit(&self, mut batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // Every writer locks rows in one global order (table, then key), so
        // concurrent commits on PostgreSQL wait for each other, never deadlock.
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
        for (job, _) in &batch.checkpoints {
            if job.is_empty() {
                return Err(self.invalid("checkpoint", "empty job name".into()));
            }
        }
        if batch.pages.iter().any(|p| p.job.is_empty()) {
            return Err(self.invalid("feed page", "empty job name".into()));
        }
        batch
            .pages
            .sort_by(|a, b| (&a.job, a.page).cmp(&(&b.job, b.page)));
        let checkpoints: Vec<(String, String)> = batch
            .checkpoints
            .iter()
            .map(|(job, v)| (job.clone(), v.to_string()))
            .collect();
        let upsert_product = sql::upsert_product();
        let updated_at = now_ms();
        let db = &self.db;
        let q = |what: &'static str| move |e: sqlx::Error| classify(db, what, &e);
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(q("begin transaction"))?;
            for d in &batch.deals {
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
                    .execute(&mut *tx)
                    .await
                    .map_err(q("upsert deal"))?;
            }
            for r in &batch.products {
                sqlx::query(AssertSqlSafe(upsert_product.as_str()))
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
                    .execute(&mut *tx)
                    .await
                    .map_err(q("upsert product"))?;
            }
            for r in &batch.rejections {
                sqlx::query(sql::UPSERT_REJECTION)
                    .bind(i64::from(r.domain))
                    .bind(r.asin.as_str())
                    .bind(r.stage.as_str())
                    .bind(r.reason.as_str())
                    .bind(r.rejected_at_ms)
                    .bind(r.expires_at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("upsert rejection"))?;
            }
            for r in &batch.requests {
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
                    .execute(&mut *tx)
                    .await
                    .map_err(q("insert request"))?;
            }
            for pg in &batch.pages {
                sqlx::query(sql::INSERT_FEED_PAGE)
                    .bind(pg.job.as_str())
                    .bind(i64::from(pg.page))
                    .bind(i64::from(pg.deals))
                    .bind(updated_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("record feed page"))?;
            }
            for (job, value) in &checkpoints {
                sqlx::query(sql::UPSERT_CHECKPOINT)
                    .bind(job.as_str())
                    .bind(value.as_str())
                    .bind(updated_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("upsert checkpoint"))?;
            }
            tx.commit().await.map_err(q("commit"))?;
        });
        Ok(())
    }

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
    /// newest sighting kept it (see [`DealRow::raw_json`]). Opaque text:
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
        let mut deals: std::collections::HashSet<String> = std::collections::HashSet::new();
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

    /// Writes every stored deal joined with its product's fields to `out`,
    /// ordered by `(domain, asin)`, a page at a time (memory stays bounded);
    /// returns the rows written. Columns: the deal's, then the product's
    /// (empty/`null` when no product is stored); a product column sharing a
    /// deal column's name is prefixed `product_`.
    pub async fn export(
        &self,
        format: ExportFormat,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<u64, StoreError> {
        let columns = sql::export_columns();
        let page_sql = sql::export_page(&columns);
        let db = &self.db;
        let q = |e: sqlx::Error| classify(db, "read deals for export", &e);
        let w = |source: std::io::Error| StoreError::Write {
            db: db.clone(),
            source,
        };
        if format == ExportFormat::Csv {
            let header: Vec<String> = columns.iter().map(|(_, n, _)| csv_field(n)).collect();
            writeln!(out, "{}", header.join(",")).map_err(w)?;
        }
        let mut written = 0u64;
        let mut after: (i64, String) = (0, String::new());
        loop {
            let mut page: Vec<Vec<Cell>> = Vec::new();
            with_pool!(self, p => {
                let rows = sqlx::query(AssertSqlSafe(page_sql.as_str()))
                    .bind(after.0)
                    .bind(after.1.as_str())
                    .bind(EXPORT_PAGE)
                    .fetch_all(p)
                    .await
                    .map_err(q)?;
                for row in rows {
                    let mut cells = Vec::with_capacity(columns.len());
                    for (i, (_, _, kind)) in columns.iter().enumerate() {
                        cells.push(match kind {
                            Kind::Int => row
                                .try_get::<Option<i64>, _>(i)
                                .map_err(q)?
                                .map_or(Cell::Null, Cell::Int),
                            Kind::Text => row
                                .try_get::<Option<String>, _>(i)
                                .map_err(q)?
                                .map_or(Cell::Null, Cell::Text),
                        });
                    }
                    page.push(cells);
                }
            });
            let full = page.len() as i64 == EXPORT_PAGE;
            if let Some(last) = page.last() {
                if let (Cell::Int(d), Cell::Text(a)) = (&last[0], &last[1]) {
                    after = (*d, a.clone());
                }
            }
            for cells in &page {
                match format {
                    ExportFormat::Csv => {
                        let fields: Vec<String> = cells
                            .iter()
                            .map(|c| match c {
                                Cell::Null => String::new(),
                                Cell::Int(n) => n.to_string(),
                                Cell::Text(s) => csv_field(s),
                            })
                            .collect();
                        writeln!(out, "{}", fields.join(",")).map_err(w)?;
                    }
                    ExportFormat::Jsonl => {
                        let mut obj = serde_json::Map::with_capacity(columns.len());
                        for ((_, name, _), c) in columns.iter().zip(cells) {
                            let v = match c {
                                Cell::Null => serde_json::Value::Null,
                                Cell::Int(n) => serde_json::Value::from(*n),
                                Cell::Text(s) => serde_json::Value::from(s.as_str()),
                            };
                            obj.insert(name.clone(), v);
                        }
                        let line = serde_json::Value::Object(obj).to_string();
                        writeln!(out, "{line}").map_err(w)?;
                    }
                }
                written += 1;
            }
            if !full {
                break;
            }
        }
        out.flush().map_err(w)?;
        Ok(written)
    }

    /// Closes the pool, waiting for connections to be returned (SQLite:
    /// checkpoints the WAL). Other clones of this store stop working.
    pub async fn close(&self) {
        with_pool!(self, p => p.close().await);
    }

    fn invalid(&self, what: &'static str, detail: String) -> StoreError {
        StoreError::Invalid {
            db: self.db.clone(),
            what,
            detail,
        }
    }
}

/// One exported value.
enum Cell {
    Null,
    Int(i64),
    Text(String),
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The wall clock in Unix ms (for `updated_at_ms` and `applied_at_ms` only).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Replaces the URL's password, if any, wherever it appears in `detail`.
fn scrub_secret(url: &str, detail: String) -> String {
    let Some(rest) = url.split_once("://").map(|(_, r)| r) else {
        return detail;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return detail;
    };
    match userinfo.split_once(':') {
        Some((_, pw)) if !pw.is_empty() => detail.replace(pw, "***"),
        _ => detail,
    }
}

/// An error while opening: a cannot-open is [`StoreError::Create`].
fn open_error(db: &str, e: sqlx::Error) -> StoreError {
    match classify(db, "open", &e) {
        StoreError::Query { db, detail, .. } => StoreError::Create { db, detail },
        other => other,
    }
}

/// Sorts an engine error into corrupt / read-only / cannot-open / query failed.
fn classify(db: &str, what: &'static str, e: &sqlx::Error) -> StoreError {
    let detail = e.to_string();
    let db = db.to_string();
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            // SQLite: numeric (extended) result codes; PostgreSQL: SQLSTATE.
            if let Ok(n) = code.parse::<i32>() {
                match n & 0xff {
                    11 | 26 => return StoreError::Corrupt { db, detail },
                    8 => return StoreError::ReadOnly { db, detail },
                    14 => return StoreError::Create { db, detail },
                    _ => {}
                }
            }
            if code == "25006" {
                return StoreError::ReadOnly { db, detail };
            }
            if code == "XX001" || code == "XX002" {
                return StoreError::Corrupt { db, detail };
            }
            StoreError::Query { db, what, detail }
        }
        sqlx::Error::Io(_) => StoreError::Create { db, detail },
        _ => StoreError::Query { db, what, detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn passwords_are_scrubbed_from_details() {
        assert_eq!(
            scrub_secret(
                "postgres://u:hunter2@h/db",
                "auth failed for hunter2".into()
            ),
            "auth failed for ***"
        );
        assert!(is_postgres_url("postgresql://h/db"));
        assert!(!is_postgres_url("data/postgres.db"));
    }
}
