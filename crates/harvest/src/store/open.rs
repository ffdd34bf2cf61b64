//! Opening a store: SQLite files (created with their directories, or
//! required to exist), PostgreSQL servers, and the embedded migrations.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{classify, is_postgres_url, now_ms, open_error, redact, sql, Pool, Store, StoreError};

/// How long a SQLite writer waits for another one.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// "Lacks" is by version, not "above the highest applied": a migration
    /// merged with a lower number than one already applied (a gap filled
    /// later) is still applied. A database holding a version this binary
    /// does not know is [`StoreError::TooNew`].
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
                let applied: Vec<i64> = sqlx::query_scalar(sql::APPLIED_VERSIONS)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| fail(0, "schema_migrations", e))?;
                too_new(db, &applied, known)?;
                for m in sql::MIGRATIONS
                    .iter()
                    .filter(|m| !applied.contains(&m.version))
                {
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
        let applied: Result<Vec<i64>, sqlx::Error> = with_pool!(self, p => {
            sqlx::query_scalar(sql::APPLIED_VERSIONS).fetch_all(p).await
        });
        match applied {
            Ok(v) => {
                too_new(db, &v, known)?;
                if sql::MIGRATIONS.iter().all(|m| v.contains(&m.version)) {
                    return Ok(());
                }
            }
            Err(e) => {
                // No schema_migrations yet is expected; corrupt is not.
                if let c @ StoreError::Corrupt { .. } = classify(db, "", &e) {
                    return Err(c);
                }
            }
        }
        match &self.pool {
            Pool::Sqlite(p) => run!(p, p.begin_with("BEGIN IMMEDIATE"), false),
            Pool::Postgres(p) => run!(p, p.begin(), true),
        }
        Ok(())
    }
}

/// A version applied to the database that this binary does not know (a
/// newer binary migrated it) is [`StoreError::TooNew`].
fn too_new(db: &str, applied: &[i64], known: i64) -> Result<(), StoreError> {
    let unknown = applied
        .iter()
        .filter(|v| !sql::MIGRATIONS.iter().any(|m| m.version == **v))
        .max();
    match unknown {
        Some(&found) => Err(StoreError::TooNew {
            db: db.to_string(),
            found,
            known,
        }),
        None => Ok(()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
