//! `keepa-harvest status` and `export` agree with what was committed to the
//! database; a missing database is an error (exit 2), never created.
//! The PostgreSQL variant runs when `KEEPA_HARVEST_TEST_PG` is set.

use std::process::{Command, Output};

use harvest::store::{Batch, DealRow, ProductRow, RequestRow, Store};
use serde_json::{json, Value};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keepa-harvest"))
        .args(args)
        .env_remove("KEEPA_API_KEY")
        .output()
        .expect("run keepa-harvest")
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "kh_status_export_{tag}_{}_{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const NOW: i64 = 1_767_830_000_000;

fn batch() -> Batch {
    let deal = |asin: &str, title: &str| DealRow {
        asin: asin.into(),
        domain: 1,
        title: Some(title.into()),
        price_type: 2,
        current_used: Some(1_299),
        delta_percent_month: Some(-40),
        seen_at_ms: NOW - 60_000,
        ..Default::default()
    };
    Batch {
        deals: vec![
            deal("B000000001", "Plain"),
            deal("B000000002", "Commas, \"quotes\" and\na newline"),
            deal("B000000003", "No product"),
        ],
        products: vec![
            ProductRow {
                asin: "B000000001".into(),
                domain: 1,
                avg90_used: Some(2_500),
                lowest_used_seller: Some("A1SELLER".into()),
                fetched_at_ms: NOW - 50_000,
                stage: "offers".into(),
                tokens_charged: 7,
                ..Default::default()
            },
            ProductRow {
                asin: "B000000002".into(),
                domain: 1,
                avg90_used: Some(3_100),
                fetched_at_ms: NOW - 50_000,
                stage: "stats".into(),
                tokens_charged: 1,
                ..Default::default()
            },
        ],
        requests: vec![
            RequestRow {
                at_ms: NOW - 120_000,
                job: "backfill".into(),
                stage: "feed".into(),
                endpoint: "deal".into(),
                items: 1,
                predicted: 5,
                charged: Some(5),
                tokens_left: Some(100),
                status: "ok".into(),
            },
            RequestRow {
                at_ms: NOW,
                job: "backfill".into(),
                stage: "offers".into(),
                endpoint: "product".into(),
                items: 2,
                predicted: 12,
                charged: Some(13),
                tokens_left: Some(87),
                status: "ok".into(),
            },
            RequestRow {
                at_ms: NOW - 7_200_000,
                job: "refresh".into(),
                stage: "feed".into(),
                endpoint: "deal".into(),
                items: 1,
                predicted: 5,
                charged: None,
                tokens_left: None,
                status: "429".into(),
            },
        ],
        checkpoints: vec![("backfill".into(), json!({ "page": 4 }))],
        ..Default::default()
    }
}

/// Runs status and export against `db` (already holding [`batch`]) and checks them.
fn check_commands(db: &str, dir: &std::path::Path) {
    let out = run(&["status", "--db", db, "--json", "--target-deals", "10"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(s["deals"], 3);
    assert_eq!(s["products"], 2);
    assert_eq!(s["tokens_total"], 18);
    // Windows end at the newest request (the harvest's clock).
    assert_eq!(s["now_ms"], NOW);
    assert_eq!(s["tokens_last_hour"], 18);
    assert_eq!(s["tokens_last_day"], 18);
    assert_eq!(s["tokens_by_job"], json!({ "backfill": 18, "refresh": 0 }));
    assert_eq!(s["tokens_per_stored_deal"], 6.0);
    assert_eq!(s["requests_by_status"], json!({ "429": 1, "ok": 2 }));
    assert_eq!(s["checkpoints"][0][0], "backfill");
    assert_eq!(s["checkpoints"][0][1], json!({ "page": 4 }));
    assert_eq!(s["target_deals"], 10);
    assert_eq!(s["eta_ms"], 7 * 3_600_000 / 3);

    let out = run(&["status", "--db", db]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("3 deals, 2 products"), "{text}");
    assert!(
        text.contains("backfill: page 4 of at most 67 (600 of at most 10,000 deals read)"),
        "{text}"
    );
    assert!(
        text.contains("refresh: no watermark yet; 0 tokens spent"),
        "{text}"
    );
    assert!(text.contains("per stored deal 6.00 tokens"), "{text}");
    assert!(text.contains("the run's target is not known"), "{text}");

    let out = run(&["export", "--db", db, "--format", "jsonl"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert!(String::from_utf8_lossy(&out.stderr).contains("exported 3 deals"));
    assert_eq!(rows[0]["asin"], "B000000001");
    assert_eq!(rows[0]["avg90_used"], 2_500);
    assert_eq!(rows[0]["lowest_used_seller"], "A1SELLER");
    assert_eq!(rows[0]["delta_percent_month"], -40);
    assert_eq!(rows[1]["title"], "Commas, \"quotes\" and\na newline");
    assert_eq!(rows[1]["product_stage"], "stats");
    assert_eq!(rows[2]["avg90_used"], Value::Null);

    let file = dir.join("deals.csv");
    let out = run(&[
        "export",
        "--db",
        db,
        "--format",
        "csv",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let csv = std::fs::read_to_string(&file).unwrap();
    assert!(!dir.join("deals.csv.partial").exists());
    assert!(csv.starts_with("domain,asin,title,"), "{csv}");
    assert!(
        csv.contains("\n1,B000000002,\"Commas, \"\"quotes\"\" and\na newline\","),
        "{csv}"
    );
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(header.len(), rows[0].as_object().unwrap().len());
    let seller = header
        .iter()
        .position(|h| *h == "lowest_used_seller")
        .unwrap();
    let first: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(first[seller], "A1SELLER");
    assert_eq!(first[1], "B000000001");
    check_parquet_and_history(db, dir);
}

/// `--format parquet` writes a whole Parquet file; `--history` on a
/// database without histories is exit 2 with what to do, and no file; with
/// one stored, it writes its points.
fn check_parquet_and_history(db: &str, dir: &std::path::Path) {
    let file = dir.join("deals.parquet");
    let path = file.to_str().unwrap();
    let out = run(&["export", "--db", db, "--format", "parquet", "--out", path]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("exported 3 deals"), "{err}");
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));

    let hist = dir.join("history.csv");
    let hpath = hist.to_str().unwrap();
    let args = [
        "export",
        "--db",
        db,
        "--history",
        "--format",
        "csv",
        "--out",
        hpath,
    ];
    let out = run(&args);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("holds no product histories") && err.contains("keep_history = true"),
        "{err}"
    );
    assert!(!hist.exists() && !dir.join("history.csv.partial").exists());

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(db).await.unwrap();
        let product = ProductRow {
            asin: "B000000001".into(),
            domain: 1,
            fetched_at_ms: NOW,
            stage: "stats".into(),
            history_csv: Some("[[7000000,1999,7000060,-1],null,[7000000,1500]]".into()),
            ..Default::default()
        };
        store
            .commit(Batch {
                products: vec![product],
                ..Default::default()
            })
            .await
            .unwrap();
        store.close().await;
    });
    let out = run(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("exported 3 history points of 1 products"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&hist).unwrap(),
        "asin,domain,series,time,value\n\
         B000000001,1,AMAZON,2024-04-23T02:40:00Z,1999\n\
         B000000001,1,AMAZON,2024-04-23T03:40:00Z,\n\
         B000000001,1,USED,2024-04-23T02:40:00Z,1500\n"
    );
}

#[test]
fn status_and_export_agree_with_the_database_sqlite() {
    let dir = temp_dir("sqlite");
    let db = dir.join("h.db").display().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        store.commit(batch()).await.unwrap();
        store.close().await;
    });
    check_commands(&db, &dir);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn status_and_export_agree_with_the_database_postgres() {
    let Ok(url) = std::env::var("KEEPA_HARVEST_TEST_PG") else {
        eprintln!("KEEPA_HARVEST_TEST_PG is unset: the PostgreSQL status/export test did NOT run");
        return;
    };
    let dir = temp_dir("pg");
    let schema = dir.file_name().unwrap().to_str().unwrap().to_string();
    let sep = if url.contains('?') { '&' } else { '?' };
    let db = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = |sql: String| {
        let url = url.clone();
        rt.block_on(async move {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        })
    };
    admin(format!("CREATE SCHEMA {schema}"));
    rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        store.commit(batch()).await.unwrap();
        store.close().await;
    });
    check_commands(&db, &dir);
    admin(format!("DROP SCHEMA {schema} CASCADE"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_missing_database_is_exit_2_and_is_not_created() {
    let dir = temp_dir("missing");
    let db = dir.join("typo.db");
    for args in [
        vec!["status", "--db", db.to_str().unwrap()],
        vec!["export", "--db", db.to_str().unwrap(), "--format", "csv"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(db.to_str().unwrap()) && err.contains("does not exist"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
        assert!(!db.exists());
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_corrupt_database_is_exit_2_and_left_alone() {
    let dir = temp_dir("corrupt");
    let db = dir.join("junk.db");
    std::fs::write(&db, vec![0x5a; 4096]).unwrap();
    let out = run(&["status", "--db", db.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a database or is corrupt"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), vec![0x5a; 4096]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_postgres_password_never_shows() {
    let out = run(&[
        "status",
        "--db",
        "postgres://harvest:hunter2secret@127.0.0.1:1/db",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("hunter2secret"), "{err}");
    assert!(
        err.contains("postgres://harvest:***@127.0.0.1:1/db"),
        "{err}"
    );
}
