//! Whole runs against envelopes that are not what they seem (the fake's
//! envelope faults): a server clock that steps 30 s behind or ahead of the
//! one the client anchored on, one `/token` answer with `refillRate` 0,
//! `/token` answers that arrive a second late, and the bad-key envelope
//! (every token field 0). Each run reaches its target with at most one own
//! 429 per refill step and exit 0, except the bad key: exit 3 with a clear
//! message, no wait, nothing written.
//!
//! Bounded: the fake server runs 120 times faster than real time and each
//! child is killed past its deadline; nothing sleeps.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{FakeServer, Running};
use serde_json::Value;

const SCALE: &str = "120";
const TARGET: u64 = 40;

/// What one run left behind.
struct Ran {
    code: Option<i32>,
    stderr: String,
    summary: Value,
    /// The fake's stats for the key.
    stats: Value,
    deals: i64,
    rejections: i64,
}

/// Rows in `table` of the SQLite database at `db`.
fn count(db: &Path, table: &'static str) -> i64 {
    let sql: &'static str = match table {
        "deals" => "SELECT COUNT(*) FROM deals",
        _ => "SELECT COUNT(*) FROM rejections",
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", db.display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let n = sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    })
}

/// A run to `TARGET` deals against a fake (60/min, 100 tokens to start, so
/// the run waits on refill) with `faults`.
fn run_with(tag: &str, faults: &str) -> Ran {
    run_from(tag, faults, "100")
}

/// [`run_with`], starting with `start_tokens`.
fn run_from(tag: &str, faults: &str, start_tokens: &str) -> Ran {
    let key = format!("envelope-{tag}-{}", std::process::id());
    let dir = common::temp_dir("envelope", tag);
    let server = FakeServer::start(
        &key,
        &[
            "--refill-schedule",
            "0:60",
            "--start-tokens",
            start_tokens,
            "--time-scale",
            SCALE,
            "--seed",
            "5",
            "--initial-deals",
            "3000",
            "--deals-per-hour",
            "20",
            "--faults",
            faults,
        ],
    );
    let db = dir.join("e.db");
    let summary = dir.join("s.json");
    let args: Vec<String> = [
        "run",
        "--quiet",
        "--base-url",
        &server.url,
        "--db",
        db.to_str().unwrap(),
        "--target-deals",
        &TARGET.to_string(),
        "--summary-json",
        summary.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = Running::start_with(
        &args,
        &[("KEEPA_API_KEY", key.as_str()), ("RUST_LOG", "warn")],
    );
    let out = run.wait(Duration::from_secs(240));
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(
        !out.stderr.contains(&key),
        "the key leaked:\n{}",
        out.stderr
    );
    let ran = Ran {
        code: out.status.code(),
        summary: std::fs::read(&summary)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null),
        stats: server.stats(),
        deals: count(&db, "deals"),
        rejections: count(&db, "rejections"),
        stderr: out.stderr,
    };
    let _ = std::fs::remove_dir_all(&dir);
    ran
}

/// Target reached, exit 0, at most one own 429 per refill step.
#[track_caller]
fn assert_reached(r: &Ran) {
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.deals >= TARGET as i64, "{} deals\n{}", r.deals, r.stderr);
    let own_429 = r.summary["own_429"].as_u64().unwrap();
    let steps = r.stats["refillStepsTotal"].as_u64().unwrap();
    eprintln!("{own_429} own 429s in {steps} refill steps");
    assert!(own_429 <= steps, "{own_429} own 429s in {steps} steps");
}

/// Regression: a server clock behind the client's made a 429 storm (every
/// 429's envelope showed a step the local clock had passed already); one
/// ahead of it delayed every wait by the difference. The client anchored
/// its clock on the first `/token`; the server's clock steps at minute 3.
#[test]
fn a_server_clock_stepping_behind_or_ahead_makes_no_429_storm() {
    let behind = run_with("behind", "skew=-30s,skew_from=3m");
    assert_reached(&behind);
    let own_429 = behind.summary["own_429"].as_u64().unwrap();
    assert!(own_429 <= 3, "{own_429} own 429s after one clock step");
    let ahead = run_with("ahead", "skew=30s,skew_from=3m");
    assert_reached(&ahead);
}

/// Regression: one `/token` answer with `refillRate` 0 (the run's first,
/// the fake's second answer) at an empty bucket ended the run with exit 1,
/// "refill can never pay".
#[test]
fn one_refill_rate_of_zero_does_not_end_the_run() {
    let r = run_from("zero", "zero_refill_at=2", "0");
    assert_reached(&r);
    assert!(r.stderr.contains("refillRate 0"), "{}", r.stderr);
}

/// A `/token` answer a second late (two Keepa minutes at this scale): one
/// is in flight at a time and the jobs go on. (This run needs few syncs;
/// the gate's own test, `a_token_answer_that_never_comes_holds_up_no_job`,
/// is the regression for every job waiting on its own slow `/token`.)
#[test]
fn slow_token_answers_hold_up_no_job() {
    let r = run_with("slow", "slow_token=1s");
    assert_reached(&r);
    let tokens: u64 = r.stats["requests"]["token"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    let wall = r.summary["wall_elapsed_s"].as_f64().unwrap();
    eprintln!("{tokens} /token calls in {wall:.1} s");
    // One at a time: at most one per second of the run, plus the two
    // before the jobs start.
    assert!(
        tokens as f64 <= wall + 3.0,
        "{tokens} /token calls in {wall:.1} s"
    );
}

/// The bad-key envelope (HTTP 200, every token field 0) ends the run at
/// once with Keepa's refusal code and a message that says what it means;
/// nothing is written.
#[test]
fn the_bad_key_envelope_ends_the_run_with_a_clear_message() {
    let r = run_with("badkey", "bad_key=true");
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the API key was refused or has no plan: refillRate 0"),
        "{}",
        r.stderr
    );
    assert_eq!((r.deals, r.rejections), (0, 0));
    let data_calls: u64 = r.stats["requests"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(endpoint, _)| *endpoint != "token")
        .count() as u64;
    assert_eq!(data_calls, 0, "{}", r.stats);
}
