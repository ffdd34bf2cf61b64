//! A harvest run against an in-process fake Keepa with the settings of
//! `run --sandbox` (20 tokens/min, time ×600, seed 7, 8,000 deals), into a
//! fresh SQLite file: for the tests of what a run keeps.

use harvest::config::RunConfig;
use harvest::metrics::Metrics;
use harvest::store::Store;
use harvest::{run, RunOptions};
use keepa::clock::ScaledClock;

const TIME_SCALE: f64 = 600.0;

/// One finished run and where it stored.
pub struct FakeRun {
    /// The SQLite file.
    pub db: String,
    /// The folder holding it (removed by [`FakeRun::cleanup`]).
    pub dir: std::path::PathBuf,
    /// The fake server, still running.
    pub server: fake_keepa::RunningServer,
}

impl FakeRun {
    /// Runs `cfg` with key `key` until `target_deals` are stored.
    pub async fn start(key: &str, name: &str, cfg: RunConfig, target_deals: u64) -> FakeRun {
        let dir = std::env::temp_dir().join(format!(
            "keepa_harvest_{name}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let db = dir.join("h.db").display().to_string();
        let server = fake_keepa::FakeKeepa::builder()
            .keys([key.to_string()])
            .refill_per_minute(20)
            .time_scale(TIME_SCALE)
            .start_unix_ms(1_767_225_600_000 + 7 * 86_400_000)
            .seed(7)
            .initial_deals(8_000)
            .deals_per_hour(300.0)
            .backlog_window_ms(12 * 3_600_000)
            .start()
            .await
            .unwrap();
        let client = keepa::Client::builder(keepa::ApiKey::new(key).unwrap())
            .base_url(server.base_url())
            .build()
            .unwrap();
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let report = run(
            cfg,
            RunOptions {
                client,
                clock: ScaledClock::new(server.now_ms(), TIME_SCALE),
                store: Store::open(&db).await.unwrap(),
                ledger: Default::default(),
                target_deals: Some(target_deals),
                until_ms: None,
                shutdown: stop,
                truth: None,
                metrics: Metrics::new(),
                drain_timeout: std::time::Duration::from_secs(30),
            },
        )
        .await;
        assert!(report.error.is_none(), "{:?}", report.error);
        assert!(report.summary.deals_stored >= target_deals);
        FakeRun { db, dir, server }
    }

    /// Stops the server and removes the database.
    pub async fn cleanup(self) {
        self.server.shutdown().await;
        let _ = std::fs::remove_dir_all(self.dir);
    }
}
