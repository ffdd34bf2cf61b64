//! The summary's figures against the fake server's own counts: whole-run
//! utilization (with a foreign consumer on the key), and the refresh's due
//! periods when every run overruns. Fast clock (600×), no sleeps.

use std::sync::Arc;
use std::time::Duration;

use fake_keepa::{FakeKeepa, FaultSpec, RunningServer};
use harvest::config::RunConfig;
use harvest::metrics::Metrics;
use harvest::store::Store;
use harvest::{run, RunOptions, RunReport};
use keepa::clock::ScaledClock;

const KEY: &str = "FIGURESKEY0123456789";
const TIME_SCALE: f64 = 600.0;

fn tmp_db(name: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!(
        "keepa_harvest_figures_{name}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let db = dir.join("h.db").display().to_string();
    (dir, db)
}

async fn fake(refill: i64, deals_per_hour: f64, faults: &str) -> RunningServer {
    FakeKeepa::builder()
        .keys([KEY.to_string()])
        .refill_per_minute(refill)
        .time_scale(TIME_SCALE)
        .start_unix_ms(1_767_225_600_000 + 7 * 86_400_000)
        .seed(7)
        .initial_deals(8_000)
        .deals_per_hour(deals_per_hour)
        .backlog_window_ms(12 * 3_600_000)
        .faults(faults.parse::<FaultSpec>().unwrap())
        .start()
        .await
        .unwrap()
}

async fn run_against(
    server: &RunningServer,
    cfg: RunConfig,
    db: &str,
    target: Option<u64>,
    until_ms: Option<i64>,
    metrics: Arc<Metrics>,
) -> RunReport {
    let client = keepa::Client::builder(keepa::ApiKey::new(KEY).unwrap())
        .base_url(server.base_url())
        .build()
        .unwrap();
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    run(
        cfg,
        RunOptions {
            client,
            clock: ScaledClock::new(server.now_ms(), TIME_SCALE),
            store: Store::open(db).await.unwrap(),
            ledger: Default::default(),
            target_deals: target,
            until_ms,
            shutdown: stop,
            truth: None,
            metrics,
            drain_timeout: Duration::from_secs(30),
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_run_utilization_matches_the_fake_servers_own_counts() {
    let (dir, db) = tmp_db("util");
    let server = fake(20, 300.0, "foreign=3/min").await;
    let before = server.stats().key(KEY).unwrap().clone();
    let before_ms = server.stats().now_ms;
    let metrics = Metrics::new();
    let report = run_against(
        &server,
        RunConfig::default_config(),
        &db,
        Some(200),
        None,
        metrics.clone(),
    )
    .await;
    assert!(report.error.is_none(), "{:?}", report.error);
    let s = &report.summary;
    let end_ms = metrics.snapshot().now_ms.unwrap();
    let after = server.stats().key(KEY).unwrap().clone();

    // The fake's truth over the same span: its balance before the run plus
    // every refill step that landed up to the run's end.
    let refilled: i64 = after
        .refill_steps
        .iter()
        .filter(|r| r.at_ms > before_ms && r.at_ms <= end_ms)
        .map(|r| r.rate)
        .sum();
    let available = before.balance + refilled;
    let charged = after.tokens_charged - before.tokens_charged;
    let truth = charged as f64 / available as f64;
    eprintln!(
        "summary: {}\nfake: charged {charged} of {available} (utilization {truth:.4}), \
         wasted {}, foreign {}, balance {}",
        s.human(),
        after.wasted_refill - before.wasted_refill,
        after.foreign_spent - before.foreign_spent,
        after.balance,
    );
    assert!(
        (s.utilization - truth).abs() <= 0.01 * truth,
        "utilization {} vs the fake's {truth:.4}",
        s.utilization
    );
    let spent: i64 = s.tokens_spent.values().flat_map(|m| m.values()).sum();
    assert_eq!(spent, charged);
    assert_eq!(
        spent + s.tokens_lost_at_cap + s.tokens_left + s.tokens_spent_by_others,
        s.tokens_available
    );
    assert_eq!(s.start_balance, before.balance);
    assert_eq!((s.refill_per_minute, s.bucket_max), (20, 1200));
    assert_eq!(s.limited_by, "tokens");
    // Others: the foreign consumer, seen only through the balance.
    let foreign = after.foreign_spent - before.foreign_spent;
    assert!(foreign > 0);
    assert!(
        (s.tokens_spent_by_others - foreign).abs() <= 60.max(foreign / 10),
        "others {} vs the fake's foreign {foreign}",
        s.tokens_spent_by_others
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overrunning_refresh_counts_every_period_due() {
    let (dir, db) = tmp_db("refresh");
    // 10 tokens a minute, 6 000 new deals an hour: a refresh run every
    // minute cannot finish its products within the minute.
    let server = fake(10, 6_000.0, "").await;
    let mut cfg = RunConfig::default_config();
    cfg.backfill.enabled = false;
    cfg.recheck.enabled = false;
    cfg.refresh.period = Duration::from_secs(60);
    cfg.refresh.max_delay = Duration::from_secs(30);
    let metrics = Metrics::new();
    let report = run_against(
        &server,
        cfg,
        &db,
        None,
        Some(2 * 3_600_000),
        metrics.clone(),
    )
    .await;
    assert!(report.error.is_none(), "{:?}", report.error);
    let s = &report.summary;
    eprintln!("{}", s.human());
    // One period per minute of the run, whether a run started or not.
    let periods = (s.keepa_elapsed_s / 60.0).floor() as u64 + 1;
    assert!(
        s.refresh_runs_due + 1 >= periods && s.refresh_runs_due <= periods + 1,
        "{} due over {:.0} s",
        s.refresh_runs_due,
        s.keepa_elapsed_s
    );
    assert!(s.refresh_runs_late <= s.refresh_runs_due);
    assert!(s.refresh_runs_late > 0, "overruns must show as late");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
