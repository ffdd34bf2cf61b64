//! The store: deals, products (and, kept on request, their csv
//! histories), rejections, checkpoints and the request ledger, in SQLite (one file, WAL) or PostgreSQL, behind one interface.
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

/// Runs `$body` with `$p` bound to the concrete pool of either backend.
macro_rules! with_pool {
    ($self:expr, $p:ident => $body:expr) => {
        match &$self.pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

mod commit;
mod dashboard;
mod error;
mod export;
mod locks;
mod open;
mod outbox;
mod parquet;
mod queries;
mod rows;
mod sql;
mod status;

pub use dashboard::{
    AlertState, BudgetSample, DashboardData, DealView, RejectionCount, SpendBucket, MAX_SAMPLES,
};
pub use error::{redact, StoreError};
pub use export::HistoryExport;
pub use locks::{lock_id, Locks};
pub use outbox::{feed_price, OutboxCounts, OutboxRow};
pub use rows::{
    AlertMatch, Batch, Committed, DealRow, FeedPage, Known, ProductRow, RejectionRow, RequestRow,
    StatusReport,
};

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
    /// Apache Parquet (snappy): integers `INT64`, times UTC timestamps in
    /// milliseconds, text UTF-8 strings, NULL a null.
    Parquet,
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

/// True when `db` names a PostgreSQL server rather than a SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    let lower = db.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

impl Store {
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

/// The wall clock in Unix ms (for `updated_at_ms` and `applied_at_ms` only).
fn now_ms() -> i64 {
    keepa::clock::wall_unix_ms()
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
