//! A harvest under every fault the fake Keepa can inject at once: 5 %
//! server errors, 1 % hangs past the client's timeout (charged), 1 %
//! connection resets, 1 % garbage bodies, latency up to 2 s, a foreign
//! consumer taking 40 % of the refill, and the plan's rate dropping
//! mid-run. The run must reach its target with every stored row whole,
//! retry within its budget, and never be refused more than once per
//! refill step.
//!
//! Bounded: the fake server runs 120 times faster than real time and the
//! child is killed past its deadline; nothing sleeps.

mod common;

use std::time::Duration;

use common::{FakeServer, Outcome, Running};
use serde_json::Value;

const TARGET: u64 = 200;
const SCALE: &str = "120";
const FLOOR: i64 = -400;
const FOREIGN_MAX: i64 = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_under_every_fault_reaches_its_target_with_bounded_retries() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let key = format!("faults-{}-{nanos}", std::process::id());
    let dir = std::env::temp_dir().join(&key);
    std::fs::create_dir_all(&dir).unwrap();
    let server = FakeServer::start(
        &key,
        &[
            // 60/min, down to 40/min after 45 Keepa minutes (unannounced).
            "--refill-schedule",
            "0:60,45:40",
            "--start-tokens",
            "300",
            "--time-scale",
            SCALE,
            "--seed",
            "9",
            "--initial-deals",
            "3000",
            "--deals-per-hour",
            "20",
            "--faults",
            "5xx=0.05,latency=20ms..2s,hang=0.01,hang_for=6s,reset=0.01,garbage=0.01,foreign=24/min,foreign_max=30",
        ],
    );
    let config = dir.join("harvest.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n",
            harvest::config::DEFAULT_CONFIG_TOML.replace(
                "policy = \"flow\"",
                &format!("policy = \"flow\"\ndeficit_floor = {FLOOR}")
            )
        ),
    )
    .unwrap();
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains("deficit_floor"));
    let db = dir.join("f.db");
    let summary = dir.join("s.json");
    let args: Vec<String> = [
        "run",
        "--quiet",
        "--config",
        config.to_str().unwrap(),
        "--base-url",
        &server.url,
        "--server-time-scale",
        SCALE,
        // Hangs (6 s) outlast it: the request ran and was charged, the
        // client never hears, and must count it as spent.
        "--timeout",
        "3s",
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
    let Outcome {
        status,
        stderr: log,
        ..
    } = run.wait(Duration::from_secs(420));
    assert!(status.success(), "{status}\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    let stats = server.stats();
    let s: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();

    // Target reached, every row whole: each stored deal has its product,
    // fetched through the offers stage, with what the rules read.
    let url = format!("sqlite://{}", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let count = |q: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(q)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let deals = count("SELECT COUNT(*) FROM deals").await;
    assert!(deals >= TARGET as i64, "{deals} deals");
    let orphans = count(
        "SELECT COUNT(*) FROM deals d LEFT JOIN products p ON p.domain = d.domain AND p.asin = d.asin
         WHERE p.asin IS NULL OR p.stage <> 'offers' OR p.lowest_used_price IS NULL
            OR p.title IS NOT d.title OR p.offer_count_used IS NULL",
    )
    .await;
    assert_eq!(orphans, 0, "deals without a whole product row");
    let paid_for_answers =
        count("SELECT CAST(COALESCE(SUM(charged), 0) AS BIGINT) FROM requests WHERE status = 'ok'")
            .await;
    pool.close().await;

    // Faults really happened.
    let f = &server.stats_all()["faults"];
    let injected: u64 = ["serverErrors", "hangs", "resets", "garbage"]
        .iter()
        .map(|k| f[*k].as_u64().unwrap())
        .sum();
    assert!(injected > 0, "no fault injected: {f}");
    assert!(stats["foreignSpent"].as_i64().unwrap() > 0);

    // Retries within budget: requests that did not succeed (and were sent
    // again).
    let by_status = s["requests_by_status"].as_object().unwrap();
    let total: u64 = by_status.values().map(|v| v.as_u64().unwrap()).sum();
    let ok = by_status.get("200").and_then(Value::as_u64).unwrap_or(0);
    let extra = total - ok;
    let charged = stats["tokensCharged"].as_i64().unwrap();
    eprintln!(
        "fault run: {deals} deals, {total} requests ({extra} failed and retried: {by_status:?}), faults {f}, tokens charged {charged} of which {} for answers never used, foreign spent {}, min balance {}, own 429s {}",
        charged - paid_for_answers,
        stats["foreignSpent"],
        stats["minBalance"],
        s["own_429"]
    );
    // Every failure the client saw is one the server injected (or one of
    // its own 429s): no cascade, no retry storm. And the share stays near
    // the injected rate (about 8 % here): 20 % is four standard deviations
    // above it at this request count, so the bound is not flaky.
    let own_429 = s["own_429"].as_u64().unwrap();
    assert!(
        extra <= injected + own_429,
        "{extra} failed requests but only {injected} faults injected"
    );
    assert!(extra * 5 < total, "{extra} of {total} requests retried");

    // At most one own 429 per refill step; never below the floor (the
    // foreign consumer, unseen, may take up to its largest request more).
    let steps = stats["refillStepsTotal"].as_u64().unwrap();
    assert!(own_429 <= steps);
    assert!(
        stats["minBalance"].as_i64().unwrap() >= FLOOR - FOREIGN_MAX,
        "balance fell to {}",
        stats["minBalance"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
