//! [`Locks`]: claims that hold across processes, for as long as the process
//! that took them lives.
//!
//! On PostgreSQL a claim is a session-level advisory lock taken on one
//! connection kept for the purpose: `pg_try_advisory_lock` never waits, and
//! the server releases every lock of a session whose process died (its
//! connection closes), so a crash leaves nothing that blocks the next start,
//! with no lease to tune. On SQLite, one process owns the database (an
//! exclusive lock on `<file>.lock`, released by the system when the process
//! ends, however it ends) and every claim succeeds at once.
//!
//! Claims are named by strings (`"page:backfill:3"`, `"asin:1:B00…"`),
//! mapped to the 64-bit advisory-lock space by a fixed hash, the same in
//! every process. Session locks stack, so a process must not claim what it
//! already holds: the harvest's in-process claims come first.

use std::sync::Arc;

use sqlx::PgConnection;
use tokio::sync::Mutex;

use super::{classify, Pool, Store, StoreError};

/// Claims shared by every process on one database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Locks {
    inner: Option<Arc<PgLocks>>,
    /// SQLite: the locked `<file>.lock`, held while any clone lives.
    _owner: Option<Arc<std::fs::File>>,
}

#[derive(Debug)]
struct PgLocks {
    con: Mutex<PgConnection>,
    db: String,
}

/// The advisory-lock id of a claim name: FNV-1a 64 over a fixed prefix and
/// the name, so every process and host maps a name to the same lock.
pub fn lock_id(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"keepa-harvest/claim/".iter().chain(name.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

impl Locks {
    /// Claims that only this process takes (SQLite), holding `owner`.
    pub(crate) fn local(owner: std::fs::File) -> Self {
        Locks {
            inner: None,
            _owner: Some(Arc::new(owner)),
        }
    }

    /// Claims through advisory locks on `con`, a connection of its own.
    pub(crate) fn postgres(con: PgConnection, db: String) -> Self {
        Locks {
            inner: Some(Arc::new(PgLocks {
                con: Mutex::new(con),
                db,
            })),
            _owner: None,
        }
    }

    /// Whether claims hold across processes (PostgreSQL).
    pub fn shared(&self) -> bool {
        self.inner.is_some()
    }

    /// Tries each name without waiting; returns, in order, whether it was
    /// taken. A name another process holds is `false`.
    pub async fn try_claim(&self, names: &[String]) -> Result<Vec<bool>, StoreError> {
        let Some(pg) = &self.inner else {
            return Ok(vec![true; names.len()]);
        };
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = names.iter().map(|n| lock_id(n)).collect();
        let mut con = pg.con.lock().await;
        let rows: Vec<(i64, bool)> = sqlx::query_as(
            "SELECT k, pg_try_advisory_lock(k) FROM unnest($1::bigint[]) WITH ORDINALITY AS t(k, i) ORDER BY i",
        )
        .bind(&ids)
        .fetch_all(&mut *con)
        .await
        .map_err(|e| classify(&pg.db, "take claims", &e))?;
        Ok(rows.into_iter().map(|(_, got)| got).collect())
    }

    /// Releases names this process claimed (a name not held is ignored).
    pub async fn release(&self, names: &[String]) -> Result<(), StoreError> {
        let Some(pg) = &self.inner else {
            return Ok(());
        };
        if names.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = names.iter().map(|n| lock_id(n)).collect();
        let mut con = pg.con.lock().await;
        // pg_advisory_unlock warns (and answers false) for a lock not held.
        sqlx::query("SELECT pg_advisory_unlock(k) FROM unnest($1::bigint[]) AS t(k)")
            .bind(&ids)
            .execute(&mut *con)
            .await
            .map_err(|e| classify(&pg.db, "release claims", &e))?;
        Ok(())
    }

    /// Releases every claim this process holds.
    pub async fn release_all(&self) {
        if let Some(pg) = &self.inner {
            let mut con = pg.con.lock().await;
            let _ = sqlx::query("SELECT pg_advisory_unlock_all()")
                .execute(&mut *con)
                .await;
        }
    }
}

impl Store {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINNED: i64 = 7_712_446_521_282_551_188;

    #[test]
    fn lock_ids_are_stable_and_distinct() {
        // Pinned: every process and version must map a name alike.
        assert_eq!(lock_id("page:backfill:0"), PINNED);
        assert_ne!(lock_id("page:backfill:0"), lock_id("page:backfill:1"));
        assert_ne!(lock_id("asin:1:B000000001"), lock_id("asin:2:B000000001"));
        let ids: std::collections::HashSet<i64> = (0..100_000)
            .map(|i| lock_id(&format!("asin:1:{i:010}")))
            .collect();
        assert_eq!(ids.len(), 100_000);
    }
}
