//! `keepa-harvest run --sandbox` end to end: a fresh run, a second run that
//! stores nothing twice, and a crash soak: SIGKILLs at 20 seeded points,
//! each followed by a restart, ending with the same deals as an
//! uninterrupted run.
//!
//! Bounded: every child is killed if it outlives its deadline; no test
//! sleeps (kills are triggered by the child's own "committed" log lines).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harvest::store::{ExportFormat, Store};

mod common;
use common::{command_owned, finish_within, temp_dir, Outcome, Running};

fn tmp(name: &str) -> PathBuf {
    temp_dir("run", name)
}

/// The default selection and deal filter, both product stages, no refresh
/// or re-check: the run ends when the backfill has walked the (static)
/// feed, so the final set is well defined. The product stages keep every
/// product: the fake server's offers and stats windows move with its clock,
/// so a rule on them could decide a deal differently for a run that
/// fetched it at another instant (restarts lose the time between the last
/// stored request and the kill). The free deal filter reads the feed,
/// which does not move.
fn backfill_only_config(dir: &Path) -> PathBuf {
    let text = r#"
domain = "com"
[selection]
priceTypes = [2]
dateRange = 1
includeCategories = [283155]
[pipeline.deal_filter]
rules = [
    "current.used between $4 $80",
    "delta_percent.used.month >= 20",
    "sales_rank <= 2_000_000",
]
[pipeline.product_stats]
stats_days = 180
rules = []
[pipeline.product_offers]
offers = 20
rules = []
[refresh]
enabled = false
[recheck]
enabled = false
"#;
    let path = dir.join("backfill-only.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn sandbox_args(config: &Path, db: &Path) -> Vec<String> {
    [
        "run",
        "--sandbox",
        "--quiet",
        "--seed",
        "11",
        "--sandbox-backlog",
        "5000",
        "--sandbox-deals-per-hour",
        "0",
        // The whole backlog stays in Keepa's 12 h window for the run: a
        // restarted run (whose clock continues from its database) and an
        // uninterrupted one then see the same feed, however fast they go.
        "--sandbox-backlog-hours",
        "2",
        "--sandbox-refill-per-minute",
        "100",
        "--config",
        config.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs to the end with the default log filter (`RUST_LOG` removed).
fn run_to_end(args: &[String]) -> Outcome {
    finish_within(command_owned(args), Duration::from_secs(170))
}

/// Starts a run and SIGKILLs it after its `n`-th commit; false when it
/// ended before that.
fn run_and_kill_after(args: &[String], n: usize) -> bool {
    let (_, ended) = Running::start(args).count_commits(Some(n), Duration::from_secs(170));
    ended.is_none()
}

/// The sandbox runs on a clock 600 times faster than real time, so a run
/// starved of CPU sees its own work take more Keepa time. The tests of this
/// file run one at a time, each with the machine's cores to itself.
/// An async-aware lock: the guard is held across the awaits of a test.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

async fn deals(db: &Path) -> (Vec<String>, i64) {
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    let mut out = Vec::new();
    store.export(ExportFormat::Jsonl, &mut out).await.unwrap();
    let asins = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["asin"].as_str().unwrap().to_string()
        })
        .collect();
    let tokens = store.status(i64::MAX / 2).await.unwrap().tokens_total;
    (asins, tokens)
}

/// Kills of the crash soak.
const KILLS: usize = 20;

#[tokio::test(flavor = "multi_thread")]
async fn crash_soak_twenty_sigkills_then_resume_ends_with_the_uninterrupted_set() {
    let _serial = one_at_a_time().await;
    let dir = tmp("crash");
    let config = backfill_only_config(&dir);
    let a = dir.join("a.db");
    let out = run_to_end(&sandbox_args(&config, &a));
    assert!(out.status.success(), "{}", out.stderr);
    let (want, tokens_a) = deals(&a).await;
    assert!(
        want.len() > 20,
        "too few deals to be a test: {}",
        want.len()
    );

    let b = dir.join("b.db");
    let args = sandbox_args(&config, &b);
    // 20 kill points, seeded: after the 1st to 3rd commit of each restart,
    // so all of them land before the walk ends (it commits about 90 times).
    let mut seed: u64 = 0x5eed_cafe;
    let mut kills = 0;
    for _ in 0..KILLS {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let n = 1 + (seed >> 33) as usize % 3;
        if run_and_kill_after(&args, n) {
            kills += 1;
        }
    }
    assert_eq!(kills, KILLS as i64, "the run finished before every kill");
    let out = run_to_end(&args);
    assert!(out.status.success(), "{}", out.stderr);
    let (got, tokens_b) = deals(&b).await;

    let want_set: BTreeSet<_> = want.iter().cloned().collect();
    let got_set: BTreeSet<_> = got.iter().cloned().collect();
    assert_eq!(got.len(), got_set.len(), "duplicate deals");
    assert_eq!(
        want_set, got_set,
        "final set differs from the uninterrupted run"
    );
    // Each kill may lose the request in flight (not in the ledger) and
    // re-read one feed page; nothing stored is paid again.
    let one_batch = 100 * 12 + 5;
    assert!(
        tokens_b <= tokens_a + kills * one_batch,
        "extra tokens: {tokens_a} uninterrupted vs {tokens_b} with {kills} kills"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_stores_nothing_twice_and_spends_only_on_refresh() {
    let _serial = one_at_a_time().await;
    let dir = tmp("twice");
    let db = dir.join("s.db");
    let summary = dir.join("s.json");
    let args: Vec<String> = [
        "run",
        "--sandbox",
        "--quiet",
        "--target-deals",
        "60",
        "--db",
        db.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run_to_end(&args);
    assert!(out.status.success(), "{}", out.stderr);
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    for key in [
        "deals_stored",
        "products_fetched",
        "tokens_spent",
        "tokens_per_stored_deal",
        "tokens_refilled",
        "utilization",
        "tokens_available",
        "tokens_lost_at_cap",
        "tokens_left",
        "tokens_spent_by_others",
        "start_balance",
        "refill_per_minute",
        "bucket_max",
        "limited_by",
        "requests_by_status",
        "own_429",
        "in_body_errors",
        "charges_estimated",
        "refresh_runs_due",
        "refresh_runs_late",
        "refresh_delay_p99_s",
        "refresh_tokens_per_min",
        "alerts",
        "min_balance",
        "keepa_elapsed_s",
        "wall_elapsed_s",
    ] {
        assert!(s.get(key).is_some(), "summary lacks {key}");
    }
    assert_eq!(
        s.as_object().unwrap().len(),
        26,
        "summary has extra keys: {s}"
    );
    assert!(s["deals_stored"].as_u64().unwrap() >= 60);
    assert_eq!(s["own_429"], 0);
    assert_eq!(s["in_body_errors"], 0);
    assert_eq!(s["charges_estimated"], 0);
    // --quiet: the final summary on stdout, and no info logs on stderr.
    let stdout = &out.stdout;
    assert!(stdout.starts_with("stored "), "{stdout}");
    let stderr = &out.stderr;
    assert!(
        !stderr.contains(" INFO "),
        "--quiet printed info logs:\n{stderr}"
    );
    let (first, _) = deals(&db).await;

    let out = run_to_end(&args);
    assert!(out.status.success(), "{}", out.stderr);
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let spent = s["tokens_spent"].as_object().unwrap();
    assert!(spent.keys().all(|k| k == "refresh"), "{s}");
    // Nothing left to backfill: the refresh's spend over what was available.
    // The sandbox bucket continues where the first run left it, so the
    // second run starts below a full bucket, not with a fresh one.
    assert!(s["utilization"].as_f64().unwrap() > 0.0, "{s}");
    let start = s["start_balance"].as_i64().unwrap();
    assert!(start < s["bucket_max"].as_i64().unwrap(), "{s}");
    assert_eq!(
        s["tokens_available"].as_i64().unwrap(),
        start + s["tokens_refilled"].as_i64().unwrap(),
        "{s}"
    );
    assert_eq!(s["limited_by"], "tokens");
    let (asins, _) = deals(&db).await;
    let set: BTreeSet<_> = asins.iter().collect();
    assert_eq!(set.len(), asins.len(), "a deal stored twice");
    // Nothing stored again: what the second run stored (its one refresh
    // run may catch a deal the live feed made since) is new, and counted.
    let first: BTreeSet<_> = first.iter().collect();
    assert!(first.is_subset(&set));
    assert_eq!(
        s["deals_stored"].as_u64().unwrap() as usize,
        set.len() - first.len(),
        "{s}"
    );
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(!text.contains("sandbox"), "no key in the summary");
    let _ = std::fs::remove_dir_all(&dir);
}
