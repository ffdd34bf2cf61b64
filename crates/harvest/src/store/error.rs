//! [`StoreError`]: what went wrong, naming the database (passwords removed).

/// A store failure. Every message names the database: the SQLite path, or
/// the PostgreSQL URL with any password removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The SQLite file (or its directory) could not be created or opened.
    #[error("cannot create or open database {db}: {detail}")]
    Create {
        /// The database.
        db: String,
        /// What failed.
        detail: String,
    },
    /// [`Store::open_existing`](super::Store::open_existing) was asked for a
    /// SQLite file that does not exist.
    #[error("database {db} does not exist")]
    Missing {
        /// The database.
        db: String,
    },
    /// The file is not a SQLite database, or it is corrupt. It was left untouched.
    #[error("database {db} is not a database or is corrupt: {detail}")]
    Corrupt {
        /// The database.
        db: String,
        /// What the engine said.
        detail: String,
    },
    /// The database (or its directory, for SQLite's WAL files) is read-only.
    #[error("database {db} is read-only: {detail}")]
    ReadOnly {
        /// The database.
        db: String,
        /// What the engine said.
        detail: String,
    },
    /// The PostgreSQL server could not be reached or refused the login.
    #[error("cannot connect to database {db}: {detail}")]
    Connect {
        /// The database.
        db: String,
        /// What failed.
        detail: String,
    },
    /// A migration failed; its transaction was rolled back.
    #[error("database {db}: migration {version} ({name}) failed: {detail}")]
    Migration {
        /// The database.
        db: String,
        /// The migration's version.
        version: i64,
        /// The migration's name.
        name: &'static str,
        /// What failed.
        detail: String,
    },
    /// The database was written by a newer keepa-harvest.
    #[error("database {db} has schema version {found}, newer than this program's {known}")]
    TooNew {
        /// The database.
        db: String,
        /// The newest migration recorded in the database.
        found: i64,
        /// The newest migration this program knows.
        known: i64,
    },
    /// A query failed (for `commit`: the whole batch was rolled back).
    #[error("database {db}: {what} failed: {detail}")]
    Query {
        /// The database.
        db: String,
        /// What the store was doing.
        what: &'static str,
        /// What failed.
        detail: String,
    },
    /// A row holds a value the store cannot take (nothing was written).
    #[error("database {db}: invalid {what}: {detail}")]
    Invalid {
        /// The database.
        db: String,
        /// What was invalid.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// Another `keepa-harvest run` holds this SQLite database: one run per
    /// file (several processes need PostgreSQL).
    #[error("database {db} is in use by another `keepa-harvest run`{holder}; run one process per SQLite file, or use PostgreSQL (`--db postgres://…`) to run several")]
    InUse {
        /// The database.
        db: String,
        /// ` (process N)` when the holder wrote its id, else empty.
        holder: String,
    },
    /// Writing an export failed.
    #[error("export from database {db}: cannot write: {source}")]
    Write {
        /// The database.
        db: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// `db` as it may appear in a message: a URL loses its password (in the
/// user-info part and in a `password=` query parameter); a path is unchanged.
pub fn redact(db: &str) -> String {
    let Some(scheme_end) = db.find("://") else {
        return db.to_string();
    };
    let rest_start = scheme_end + 3;
    let rest = &db[rest_start..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let mut out = String::with_capacity(db.len());
    out.push_str(&db[..rest_start]);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &rest[auth_end..];
    match tail.find('?') {
        Some(q) => {
            out.push_str(&tail[..=q]);
            let query = &tail[q + 1..];
            let (query, fragment) = match query.find('#') {
                Some(h) => (&query[..h], &query[h..]),
                None => (query, ""),
            };
            let parts: Vec<String> = query
                .split('&')
                .map(|kv| {
                    let key = kv.split('=').next().unwrap_or("");
                    if key.eq_ignore_ascii_case("password") {
                        format!("{key}=***")
                    } else {
                        kv.to_string()
                    }
                })
                .collect();
            out.push_str(&parts.join("&"));
            out.push_str(fragment);
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_removes_passwords_and_keeps_the_rest() {
        assert_eq!(
            redact("postgres://u:s3cret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact("postgresql://u@h/db?sslmode=disable&password=s3cret"),
            "postgresql://u@h/db?sslmode=disable&password=***"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact("data/keepa.db"), "data/keepa.db");
        assert_eq!(redact("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
    }
}
