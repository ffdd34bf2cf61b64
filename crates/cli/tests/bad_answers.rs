//! Whole runs against a fake Keepa that answers HTTP 200 with something
//! other than what was asked for: an error in the body, no payload, a
//! malformed deal, failed offers collections, no `tokensConsumed`, ASINs
//! left out. Each run walks the same static feed as a run of the same seed
//! without the fault (the baseline) and must end as it does: the same
//! deals stored (or the difference explained), no rejection whose cause
//! was the server (beyond the short, named ones of `missing_asin` and
//! `offers_failed`), no own 429 storm, exit 0.
//!
//! Bounded: the fake server runs 600 times faster than real time, the runs
//! are serialised, and every child is killed past its deadline.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{Fake, Outcome, Running};
use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard, OnceCell};

const KEY: &str = "bad-answers-key";
const SCALE: f64 = 600.0;
/// 2026-01-01T00:00Z: server start and feed origin of every run.
const START_MS: i64 = 1_767_225_600_000;
/// The rejection TTL of the product stages (the config below), ms.
const STAGE_TTL_MS: i64 = 3 * 86_400_000;

/// Backfill only (the run ends when it has walked the feed, so the final
/// set is well defined), both product stages keeping every product.
const CONFIG: &str = r#"
domain = "com"
[selection]
priceTypes = [2]
dateRange = 1
includeCategories = [283155]
[pipeline.deal_filter]
rules = ["current.used between $4 $80", "sales_rank <= 2_000_000"]
[pipeline.product_stats]
stats_days = 180
rules = []
rejection_ttl = "3d"
[pipeline.product_offers]
offers = 20
rules = []
rejection_ttl = "3d"
[refresh]
enabled = false
[recheck]
enabled = false
"#;

/// What one run left behind.
#[derive(Debug, Clone)]
struct Harvest {
    outcome_code: Option<i32>,
    log: String,
    deals: BTreeSet<String>,
    /// `(asin, stage, reason, ttl ms)`.
    rejections: Vec<(String, String, String, i64)>,
    summary: Value,
    /// `/_fake/stats` at the end.
    server: Value,
}

impl Harvest {
    fn rejected(&self) -> BTreeSet<String> {
        self.rejections.iter().map(|r| r.0.clone()).collect()
    }

    /// Rejections for the stage's TTL at a product stage: the deal's own
    /// verdict, never the server's (every product rule here keeps all).
    fn long_product_rejections(&self) -> Vec<&(String, String, String, i64)> {
        self.rejections
            .iter()
            .filter(|r| r.1 != "deal" && r.3 >= STAGE_TTL_MS)
            .collect()
    }

    fn faults(&self, name: &str) -> u64 {
        self.server["faults"][name].as_u64().unwrap_or(0)
    }

    #[track_caller]
    fn assert_clean_exit(&self) {
        assert_eq!(self.outcome_code, Some(0), "{}", self.log);
        assert!(!self.log.contains("panicked"), "{}", self.log);
    }

    #[track_caller]
    fn assert_no_429_storm(&self) {
        let own = self.summary["own_429"].as_u64().unwrap();
        let steps = self.server["keys"][0]["refillStepsTotal"].as_u64().unwrap();
        assert!(
            own <= steps.max(1),
            "{own} own 429s in {steps} refill steps"
        );
    }
}

/// One run at a time (each has the cores to itself).
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());
static BASELINE: OnceCell<Harvest> = OnceCell::const_new();

async fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

/// The run without faults (computed once).
async fn baseline() -> &'static Harvest {
    BASELINE
        .get_or_init(|| async {
            let h = harvest("baseline", "", None).await;
            h.assert_clean_exit();
            assert!(h.deals.len() > 40, "too few deals: {}", h.deals.len());
            h
        })
        .await
}

/// A whole `run` against a fresh fake Keepa with `faults`.
async fn harvest(tag: &str, faults: &str, target: Option<usize>) -> Harvest {
    let dir = common::temp_dir("bad-answers", tag);
    let h = harvest_in(&dir, tag, faults, target, 0, 0.0).await;
    let _ = std::fs::remove_dir_all(&dir);
    h
}

/// A whole `run` on the database in `dir`, against a fresh fake Keepa with
/// `faults` whose clock starts `later_ms` after the feed's origin and whose
/// feed gains `deals_per_hour`.
async fn harvest_in(
    dir: &Path,
    tag: &str,
    faults: &str,
    target: Option<usize>,
    later_ms: i64,
    deals_per_hour: f64,
) -> Harvest {
    let fake = Fake::start(
        fake_keepa::FakeKeepa::builder()
            .keys([KEY])
            .refill_per_minute(600)
            .time_scale(SCALE)
            .start_unix_ms(START_MS + later_ms)
            .feed_origin_ms(START_MS)
            .seed(5)
            .initial_deals(2_500)
            .deals_per_hour(deals_per_hour)
            .backlog_window_ms(2 * 3_600_000)
            .faults(faults.parse().unwrap()),
    );
    let config = dir.join("harvest.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let db = dir.join("h.db");
    let summary = dir.join("s.json");
    let mut args: Vec<String> = [
        "run",
        "--quiet",
        "--config",
        config.to_str().unwrap(),
        "--base-url",
        &fake.base_url,
        "--server-time-scale",
        &SCALE.to_string(),
        "--db",
        db.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(t) = target {
        args.extend(["--target-deals".to_string(), t.to_string()]);
    }
    let run = Running::start_with(&args, &[("KEEPA_API_KEY", KEY), ("RUST_LOG", "warn")]);
    let Outcome { status, stderr, .. } = run.wait(common::DEADLINE);
    let server: Value = {
        let addr = fake.base_url.trim_start_matches("http://").parse().unwrap();
        let response = common::http_get(addr, "/_fake/stats");
        let (_, body) = response.split_once("\r\n\r\n").unwrap();
        serde_json::from_str(body).unwrap()
    };
    drop(fake);
    let summary = std::fs::read(&summary)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let (deals, rejections) = read_db(&db).await;
    eprintln!(
        "{tag}: exit {:?}, {} deals, {} rejections, faults {}, requests {}, in-body {}, estimated {}, own 429s {}",
        status.code(),
        deals.len(),
        rejections.len(),
        server["faults"],
        summary["requests_by_status"],
        summary["in_body_errors"],
        summary["charges_estimated"],
        summary["own_429"],
    );
    Harvest {
        outcome_code: status.code(),
        log: stderr,
        deals,
        rejections,
        summary,
        server,
    }
}

async fn read_db(db: &Path) -> (BTreeSet<String>, Vec<(String, String, String, i64)>) {
    let url = format!("sqlite://{}", db.display());
    let Ok(pool) = sqlx::SqlitePool::connect(&url).await else {
        return Default::default();
    };
    let deals: Vec<String> = sqlx::query_scalar("SELECT asin FROM deals")
        .fetch_all(&pool)
        .await
        .unwrap();
    let rejections: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT asin, stage, reason, expires_at_ms - rejected_at_ms FROM rejections",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    (deals.into_iter().collect(), rejections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_of_answers_with_an_error_in_the_body_loses_nothing() {
    let _one = serial().await;
    let base = baseline().await;
    // 15 % a failed request (retried), 5 % a token limit (waited for).
    let h = harvest(
        "inbody",
        "inbody=0.15,inbody_limit=0.05",
        Some(base.deals.len()),
    )
    .await;
    h.assert_clean_exit();
    assert!(h.faults("inBody") > 0, "no fault injected: {}", h.server);
    // The target is reached, with the same deals and the same rejections
    // (the deal filter's): none whose cause was the server.
    assert_eq!(h.deals, base.deals);
    assert_eq!(h.rejected(), base.rejected());
    assert!(h.long_product_rejections().is_empty());
    // Every in-body error was seen and counted (it is not charged).
    assert_eq!(
        h.summary["in_body_errors"].as_u64(),
        Some(h.faults("inBody")),
        "{}",
        h.summary
    );
    assert_eq!(
        h.summary["requests_by_status"]["in-body"],
        h.summary["in_body_errors"]
    );
    h.assert_no_429_storm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_without_their_payload_are_retried_not_read_as_no_data() {
    let _one = serial().await;
    let base = baseline().await;
    let h = harvest("nopayload", "nopayload=0.15", None).await;
    h.assert_clean_exit();
    assert!(h.faults("noPayload") > 0, "no fault injected: {}", h.server);
    // An empty feed page would have ended the backfill early; an empty
    // product answer would have rejected its ASINs for days.
    assert_eq!(h.deals, base.deals);
    assert_eq!(h.rejected(), base.rejected());
    assert_eq!(
        h.summary["in_body_errors"].as_u64(),
        Some(h.faults("noPayload"))
    );
    h.assert_no_429_storm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_deal_does_not_end_the_feed() {
    let _one = serial().await;
    let base = baseline().await;
    let h = harvest("bad-deal", "bad_deal=0.5", None).await;
    h.assert_clean_exit();
    let broken = h.faults("badDeals");
    assert!(broken > 0, "no fault injected: {}", h.server);
    // The walk goes on to the feed's real end: only the broken deals
    // themselves (no ASIN to store them by) are missing.
    assert!(h.deals.is_subset(&base.deals));
    let lost = (base.deals.len() - h.deals.len()) as u64;
    assert!(lost <= broken, "{lost} deals lost for {broken} broken ones");
    assert!(h.rejected().is_subset(&base.rejected()));
    h.assert_no_429_storm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_offers_collections_are_fetched_again_not_judged() {
    let _one = serial().await;
    let base = baseline().await;
    let h = harvest("offers-failed", "offers_failed=0.1", None).await;
    h.assert_clean_exit();
    assert!(
        h.faults("offersFailed") > 0,
        "no fault injected: {}",
        h.server
    );
    explained_by_short_rejections(base, &h, "offers collection failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asins_left_out_of_an_answer_are_asked_again() {
    let _one = serial().await;
    let base = baseline().await;
    let h = harvest("missing-asin", "missing_asin=0.1", None).await;
    h.assert_clean_exit();
    assert!(
        h.faults("missingAsins") > 0,
        "no fault injected: {}",
        h.server
    );
    explained_by_short_rejections(base, &h, "left out of Keepa's answer");
}

/// Every deal of the baseline is stored, or (the server failed it twice)
/// rejected for an hour with `reason`; no product rejection for the
/// stage's TTL.
#[track_caller]
fn explained_by_short_rejections(base: &Harvest, h: &Harvest, reason: &str) {
    assert!(
        h.long_product_rejections().is_empty(),
        "{:?}",
        h.long_product_rejections()
    );
    let short: BTreeSet<String> = h
        .rejections
        .iter()
        .filter(|r| r.1 != "deal")
        .inspect(|r| {
            assert!(r.2.contains(reason), "{r:?}");
            assert_eq!(r.3, 3_600_000, "{r:?}");
        })
        .map(|r| r.0.clone())
        .collect();
    assert!(h.deals.is_subset(&base.deals));
    let missing: BTreeSet<String> = base.deals.difference(&h.deals).cloned().collect();
    assert_eq!(missing, short, "deals missing without a short rejection");
    // Queued again once: a second failure is needed, so few are left.
    assert!(
        short.len() * 10 <= base.deals.len(),
        "{} of {}",
        short.len(),
        base.deals.len()
    );
    h.assert_no_429_storm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_charge_is_estimated_and_flagged_never_free() {
    let _one = serial().await;
    let base = baseline().await;
    let h = harvest("no-consumed", "no_consumed=0.3", None).await;
    h.assert_clean_exit();
    let dropped = h.faults("noConsumed");
    assert!(dropped > 0, "no fault injected: {}", h.server);
    assert_eq!(h.deals, base.deals);
    assert_eq!(h.summary["charges_estimated"].as_u64(), Some(dropped));
    // The spend reported stays near what the server charged (an estimate
    // per unflagged answer, never zero): within a tenth, where counting
    // those answers as free would miss about 30 %.
    let charged = h.server["keys"][0]["tokensCharged"].as_i64().unwrap();
    let spent: i64 = h.summary["tokens_spent"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|s| s.as_object().unwrap().values())
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert!(
        (spent - charged).abs() * 10 <= charged,
        "reported {spent}, charged {charged}"
    );
    h.assert_no_429_storm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_the_feed_is_checked_again_by_a_later_run() {
    let _one = serial().await;
    let dir = common::temp_dir("bad-answers", "walks");
    // A feed that moves: 300 new deals an hour.
    let first = harvest_in(&dir, "walk-1", "", None, 0, 300.0).await;
    first.assert_clean_exit();
    // Two hours later the feed holds new deals: a run with a higher target
    // walks it again (before, the first walk's end was final: it stored
    // nothing and ended).
    let target = first.deals.len() + 20;
    let second = harvest_in(&dir, "walk-2", "", Some(target), 2 * 3_600_000, 300.0).await;
    second.assert_clean_exit();
    assert!(
        second.deals.len() >= target,
        "{} of {target}",
        second.deals.len()
    );
    assert!(first.deals.is_subset(&second.deals));
    assert!(second.long_product_rejections().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_limit_in_a_200_is_waited_for_not_retried() {
    let _one = serial().await;
    let base = baseline().await;
    let h = harvest("inbody-limit", "inbody_limit=0.2", None).await;
    h.assert_clean_exit();
    assert!(h.faults("inBody") > 0, "no fault injected: {}", h.server);
    assert_eq!(h.deals, base.deals);
    assert_eq!(h.rejected(), base.rejected());
    assert_eq!(
        h.summary["in_body_errors"].as_u64(),
        Some(h.faults("inBody"))
    );
    // Waited for through the budget (a refill step each), never counted
    // against the retry budget, never an own 429.
    assert!(!h.log.contains("retrying"), "{}", h.log);
    assert_eq!(h.summary["own_429"], 0);
}
