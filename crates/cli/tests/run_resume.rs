//! A resumed `run --sandbox` continues the server's clock where its
//! database stops: killed (SIGKILL) at about half its target and resumed, a
//! run spends at most 2 % more tokens than an uninterrupted one of the same
//! seed and target, and replays no Keepa time.
//!
//! Bounded: every child is killed if it outlives its deadline; no test
//! sleeps (the kill is triggered by the child's own "committed" log lines).

use std::path::Path;
use std::time::Duration;

use sqlx::Row;

mod common;
use common::{command_owned, finish_within, temp_dir, Running};

fn tmp(name: &str) -> std::path::PathBuf {
    temp_dir("resume", name)
}

/// The default pipeline (refresh included: a resumed run behind its own
/// refresh watermark is what this guards against) to a target of 300 deals.
fn args(db: &Path) -> Vec<String> {
    [
        "run",
        "--sandbox",
        "--quiet",
        "--seed",
        "7",
        "--target-deals",
        "300",
        "--db",
        db.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs to the end, or SIGKILLs the run after its `kill_after`-th commit.
/// Returns the commits seen and whether it ended by itself with success.
fn run(args: &[String], kill_after: Option<usize>) -> (usize, bool) {
    let (commits, ended) = Running::start(args).count_commits(kill_after, Duration::from_secs(170));
    (commits, ended.is_some_and(|o| o.status.success()))
}

/// `(requests, newest request time, tokens charged, deals)` of a database.
async fn ledger(db: &Path) -> (i64, i64, i64, i64) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let row = sqlx::query(
        "SELECT COUNT(*), COALESCE(MAX(at_ms), 0), COALESCE(SUM(charged), 0), \
         (SELECT COUNT(*) FROM deals) FROM requests",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

/// The earliest time among the requests after the first `n` (by id).
async fn first_request_after(db: &Path, n: i64) -> i64 {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let t: i64 = sqlx::query_scalar("SELECT MIN(at_ms) FROM requests WHERE id > ?")
        .bind(n)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    t
}

/// The sandbox's clock runs 600 times faster than real time: the tests of
/// this file run one at a time, each with the machine's cores to itself.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread")]
async fn killed_at_half_and_resumed_spends_at_most_two_percent_more_and_replays_no_time() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tmp("half");
    let a = dir.join("a.db");
    let (commits, ok) = run(&args(&a), None);
    assert!(ok, "the uninterrupted run failed");
    let (_, _, tokens_a, deals_a) = ledger(&a).await;
    assert!(deals_a >= 300, "{deals_a}");

    let b = dir.join("b.db");
    let (_, ok) = run(&args(&b), Some(commits / 2));
    assert!(!ok);
    let (requests_killed, last_killed, _, deals_killed) = ledger(&b).await;
    assert!(
        deals_killed > 0 && deals_killed < 300,
        "killed at {deals_killed} deals, not about half"
    );
    let (_, ok) = run(&args(&b), None);
    assert!(ok, "the resumed run failed");
    let (_, _, tokens_b, deals_b) = ledger(&b).await;
    assert!(deals_b >= 300, "{deals_b}");
    let first_resumed = first_request_after(&b, requests_killed).await;
    assert!(
        first_resumed >= last_killed,
        "Keepa time replayed: the resumed run's first request at {first_resumed}, \
         the killed run's last at {last_killed}"
    );
    assert!(
        tokens_b as f64 <= tokens_a as f64 * 1.02,
        "killed and resumed: {tokens_b} tokens, uninterrupted: {tokens_a}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A database recorded with another seed: the run warns, the flags win.
/// A time scale above the measured limit warns too, naming the limit.
#[tokio::test(flavor = "multi_thread")]
async fn other_sandbox_settings_warn_and_the_flags_win() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tmp("other");
    let db = dir.join("o.db");
    let mut first = args(&db);
    first[6] = "5".into(); // --target-deals 5
    let (_, ok) = run(&first, None);
    assert!(ok);
    let mut second = first.clone();
    second[4] = "8".into(); // --seed 8
    second.extend(["--sandbox-time-scale".to_string(), "3000".to_string()]);
    let out = finish_within(command_owned(&second), Duration::from_secs(170));
    assert!(out.status.success(), "{}", out.stderr);
    let stderr = &out.stderr;
    assert!(
        stderr.contains("other sandbox settings") && stderr.contains("the flags win"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--sandbox-time-scale 3000 is above 1000"),
        "{stderr}"
    );
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let recorded: String =
        sqlx::query_scalar("SELECT value FROM checkpoints WHERE job = 'sandbox'")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    let recorded: serde_json::Value = serde_json::from_str(&recorded).unwrap();
    assert_eq!(recorded["seed"], 8);
    let _ = std::fs::remove_dir_all(&dir);
}
