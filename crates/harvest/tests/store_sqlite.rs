//! The store suite on SQLite, plus what only a file can get wrong:
//! corrupt files, unwritable places, a missing file for read-only commands.

mod store_common;

use harvest::store::{Backend, Store, StoreError};

store_common::backend_suite!(store_common::sqlite);

#[tokio::test]
async fn open_creates_parent_dirs_and_uses_wal() {
    let dir = store_common::temp_dir();
    let path = dir.join("a").join("b").join("h.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    assert!(path.exists());
    store.commit(Default::default()).await.unwrap();
    store
        .commit(harvest::store::Batch {
            deals: vec![store_common::deal("B000000001", 1)],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(dir.join("a/b/h.db-wal").exists(), "WAL journal in use");
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn corrupt_file_is_a_typed_error_and_left_untouched() {
    let dir = store_common::temp_dir();
    let path = dir.join("not-a-db.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = Store::open(path.to_str().unwrap()).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(path.to_str().unwrap()), "{msg}");
    assert!(msg.contains("not a database or is corrupt"), "{msg}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "never rewritten");
    let err = Store::open_existing(path.to_str().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn unwritable_place_is_a_cannot_create_error() {
    let dir = store_common::temp_dir();
    let file = dir.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    // A parent that is a file: no one, not even root, can create under it.
    let path = file.join("sub").join("h.db");
    let err = Store::open(path.to_str().unwrap()).await.unwrap_err();
    assert!(matches!(err, StoreError::Create { .. }), "{err:?}");
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
    let err = Store::open(dir.to_str().unwrap()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Create { .. }),
        "a directory: {err:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(unix)]
#[tokio::test]
async fn read_only_directory_is_a_typed_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = store_common::temp_dir();
    let ro = dir.join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    let path = ro.join("h.db");
    Store::open(path.to_str().unwrap())
        .await
        .unwrap()
        .close()
        .await;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(ro.join("probe"), b"x").is_ok() {
        eprintln!("running as root: permissions are not enforced, read-only test did NOT run");
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
        let _ = std::fs::remove_dir_all(dir);
        return;
    }
    let result = Store::open(path.to_str().unwrap()).await;
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = result.unwrap_err();
    assert!(
        matches!(err, StoreError::ReadOnly { .. } | StoreError::Create { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn open_existing_refuses_a_missing_file_and_creates_nothing() {
    let dir = store_common::temp_dir();
    let path = dir.join("missing").join("h.db");
    let err = Store::open_existing(path.to_str().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("database {} does not exist", path.display())
    );
    assert!(!path.exists() && !dir.join("missing").exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = store_common::temp_dir();
    let path = dir.join("h.db");
    let db = path.to_str().unwrap();
    Store::open(db).await.unwrap().close().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{db}"))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (999, 'future', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let err = Store::open(db).await.unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 999, .. }),
        "{err:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(unix)]
#[tokio::test]
async fn an_up_to_date_read_only_copy_still_opens_for_reading() {
    use std::os::unix::fs::PermissionsExt;
    let dir = store_common::temp_dir();
    let path = dir.join("h.db");
    let db = path.to_str().unwrap();
    let store = Store::open(db).await.unwrap();
    store
        .commit(harvest::store::Batch {
            deals: vec![store_common::deal("B000000001", 1)],
            ..Default::default()
        })
        .await
        .unwrap();
    store.close().await;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    if std::fs::OpenOptions::new().write(true).open(&path).is_ok() {
        eprintln!(
            "running as root: the file is still writable, so this only checks that reopening works"
        );
    }
    // Reopening runs no migration transaction: nothing to write.
    let store = Store::open_existing(db).await.unwrap();
    assert_eq!(store.count_deals().await.unwrap(), 1);
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A database written by version 1 of the schema (before the absolute
/// deltas and the raw deal JSON) opens, keeps its rows, and takes the new
/// columns.
#[tokio::test]
async fn a_version_1_database_is_upgraded_in_place() {
    let dir = store_common::temp_dir();
    let path = dir.join("v1.db");
    let db = path.to_str().unwrap();
    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    sqlx::raw_sql(include_str!("../src/store/migrations/0001_init.sqlite.sql"))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL);
         INSERT INTO schema_migrations VALUES (1, 'init', 0);
         INSERT INTO deals (domain, asin, price_type, delta_percent_week, first_seen_ms, last_seen_ms)
             VALUES (1, 'B0OLDDEAL1', 2, -35, 10, 20);
         INSERT INTO checkpoints (job, value, updated_at_ms) VALUES ('backfill', '{\"page\":4}', 20);",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    for _ in 0..2 {
        let store = Store::open(db).await.unwrap();
        assert_eq!(store.count_deals().await.unwrap(), 1);
        assert_eq!(
            store.checkpoint("backfill").await.unwrap(),
            Some(serde_json::json!({ "page": 4 }))
        );
        assert_eq!(store.raw_deal(1, "B0OLDDEAL1").await.unwrap(), None);
        let mut out = Vec::new();
        store
            .export(harvest::store::ExportFormat::Jsonl, &mut out)
            .await
            .unwrap();
        let row: serde_json::Value =
            serde_json::from_str(String::from_utf8(out).unwrap().trim()).unwrap();
        assert_eq!(row["delta_percent_week"], -35);
        assert_eq!(row["delta_week"], serde_json::Value::Null);
        assert_eq!(row["first_seen_ms"], 10);
        store.close().await;
    }
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{db}"))
        .await
        .unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        versions,
        vec![1, 2, 3, 4, 5, 6],
        "each migration recorded once"
    );
    pool.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn last_request_is_the_newest_time_and_the_balance_it_left() {
    let dir = store_common::temp_dir();
    let store = Store::open(dir.join("h.db").to_str().unwrap())
        .await
        .unwrap();
    assert_eq!(store.last_request().await.unwrap(), None);
    let mut a = store_common::request(1_000, "backfill", Some(5), "ok");
    a.tokens_left = Some(70);
    let mut b = store_common::request(2_000, "refresh", Some(5), "ok");
    b.tokens_left = Some(65);
    // The newest has no balance (a timeout): the time is its, the balance b's.
    let mut c = store_common::request(3_000, "refresh", None, "timeout");
    c.tokens_left = None;
    store
        .commit(harvest::store::Batch {
            requests: vec![b, c, a],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(store.last_request().await.unwrap(), Some((3_000, Some(65))));
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}
