//! `run --sandbox`: the fake Keepa server in-process, on a fast clock.
//!
//! Defaults are chosen so that the README's first command shows the whole
//! system in about a minute: 20 tokens a minute (bucket 1 200, full at
//! start), time ×600 (a real second is ten Keepa minutes, so ten hours of
//! Keepa time take a minute), a backlog of 8 000 deals over the last 12 h
//! and 300 new deals an hour.
//!
//! **The feed is pinned, the clock persists with the database**: the
//! catalog and feed are anchored at [`SANDBOX_EPOCH_MS`] plus `seed` days
//! (the origin), every time, so the same seed gives the same catalog and
//! feed. A run on a database without requests starts the server's clock at
//! the origin with a full bucket. A run on a database that holds requests
//! continues where they stop: the server's clock starts at the newest
//! request's time and the bucket at the balance the newest answer left
//! (nothing is credited for the time the process was down, and the refill
//! steps count from the new start, so at most one partial step is lost). A
//! resumed run thus sees the feed an uninterrupted run would see at the same
//! instant and is never behind its own refresh watermark.
//!
//! The sandbox's seed and plan (not the time scale, which may change) are
//! recorded in the database as the checkpoint of job `sandbox`. When the
//! flags differ from the recorded ones, the run warns and the flags win
//! (and are recorded): its catalog and feed then differ from the deals
//! already stored.

use std::sync::Arc;

use anyhow::Context as _;
use fake_keepa::{FakeKeepa, RunningServer};
use harvest::run::{TokenPoint, TokenTruth};
use harvest::store::{Batch, Store};
use keepa::clock::ScaledClock;
use keepa::record::Recorder;
use keepa::{ApiKey, Client};

/// 2026-01-01T00:00:00Z: the sandbox's day zero.
pub(crate) const SANDBOX_EPOCH_MS: i64 = 1_767_225_600_000;

/// The sandbox's plan and feed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SandboxSettings {
    /// Catalog, feed and fault seed.
    pub(crate) seed: u64,
    /// Tokens per minute (the bucket holds 60 minutes of refill).
    pub(crate) refill_per_minute: i64,
    /// Keepa time per real time.
    pub(crate) time_scale: f64,
    /// Deals in the feed at start (spread over the 12 h before it).
    pub(crate) initial_deals: u32,
    /// New deals per hour of Keepa time.
    pub(crate) deals_per_hour: f64,
    /// Hours before the start over which the initial deals are spread
    /// (at most 12, Keepa's freshness window).
    pub(crate) backlog_hours: f64,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            seed: 7,
            refill_per_minute: 20,
            time_scale: 600.0,
            initial_deals: 8_000,
            deals_per_hour: 300.0,
            backlog_hours: 12.0,
        }
    }
}

/// The highest `--sandbox-time-scale` measured to keep up (BENCHMARKS.md:
/// at 500 deals on 2 shared cores, ×600 and ×1000 gave the same late
/// refresh periods, from the refresh's own cost; from ×2000 the harvest's
/// own latency, counted in Keepa minutes, added more).
pub(crate) const TIME_SCALE_KEPT_UP: f64 = 1_000.0;

/// The checkpoint job under which a sandbox database records its settings.
const SETTINGS_JOB: &str = "sandbox";

impl SandboxSettings {
    /// The pinned origin of this seed's catalog and feed (and the server's
    /// start on a new database).
    pub(crate) fn start_unix_ms(&self) -> i64 {
        SANDBOX_EPOCH_MS + (self.seed % 3_650) as i64 * 86_400_000
    }

    /// What a database records: everything that shapes the catalog, the
    /// feed and the plan (not the time scale).
    fn recorded(&self) -> serde_json::Value {
        serde_json::json!({
            "seed": self.seed,
            "refill_per_minute": self.refill_per_minute,
            "initial_deals": self.initial_deals,
            "deals_per_hour": self.deals_per_hour,
            "backlog_hours": self.backlog_hours,
        })
    }

    /// A warning when the time scale is above [`TIME_SCALE_KEPT_UP`]: a run
    /// may fall behind the fake clock (late refresh runs, idle tokens).
    /// A warning, not a refusal: the limit depends on the machine.
    pub(crate) fn time_scale_warning(&self) -> Option<String> {
        (self.time_scale > TIME_SCALE_KEPT_UP).then(|| {
            format!(
                "--sandbox-time-scale {} is above {TIME_SCALE_KEPT_UP}, the highest scale measured to keep up \
                 (README): the harvest may fall behind the fake clock; watch the summary's \
                 utilization and late refresh runs",
                self.time_scale
            )
        })
    }

    /// The bucket's capacity: 60 minutes of refill.
    fn bucket_max(&self) -> i64 {
        self.refill_per_minute.saturating_mul(60)
    }
}

/// Where a resumed sandbox's server starts: the newest request's time and
/// the balance the newest answer left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resume {
    /// Server time at start, Unix ms.
    pub(crate) at_ms: i64,
    /// Balance at start; `None`: a full bucket.
    pub(crate) balance: Option<i64>,
}

impl Resume {
    /// From the database's newest request (see [`Store::last_request`]):
    /// none when there is none or it predates the origin (a database of
    /// another seed), the balance capped at the bucket's size.
    pub(crate) fn from_last_request(
        settings: &SandboxSettings,
        last: Option<(i64, Option<i64>)>,
    ) -> Option<Resume> {
        let (at_ms, left) = last?;
        (at_ms > settings.start_unix_ms()).then(|| Resume {
            at_ms,
            balance: left.map(|b| b.min(settings.bucket_max())),
        })
    }
}

/// A running sandbox server.
#[derive(Debug)]
pub(crate) struct Sandbox {
    server: Arc<RunningServer>,
    key: ApiKey,
    key_text: String,
    settings: SandboxSettings,
}

impl Sandbox {
    /// Starts the sandbox for the database `store`: records its settings
    /// (warning when they differ from the recorded ones), then starts the
    /// server where the database's requests stop (see the module docs).
    pub(crate) async fn start_for(
        settings: SandboxSettings,
        store: &Store,
    ) -> anyhow::Result<Sandbox> {
        record_settings(&settings, store).await?;
        let last = store
            .last_request()
            .await
            .context("reading where the sandbox stopped")?;
        let resume = Resume::from_last_request(&settings, last);
        if let Some(r) = &resume {
            tracing::info!(
                keepa_hours_since_origin = (r.at_ms - settings.start_unix_ms()) as f64 / 3.6e6,
                balance = r.balance,
                "sandbox: resuming the server's clock where the database stops"
            );
        }
        Sandbox::start(settings, resume).await
    }

    /// Starts the fake server on `127.0.0.1:0` with a fresh key, at the
    /// origin with a full bucket, or at `resume`.
    pub(crate) async fn start(
        settings: SandboxSettings,
        resume: Option<Resume>,
    ) -> anyhow::Result<Sandbox> {
        let key_text = fresh_key();
        let key = ApiKey::new(key_text.clone()).map_err(|e| anyhow::anyhow!(e.0))?;
        let origin = settings.start_unix_ms();
        let mut builder = FakeKeepa::builder()
            .keys([key_text.clone()])
            .refill_per_minute(settings.refill_per_minute)
            .time_scale(settings.time_scale)
            .start_unix_ms(resume.map_or(origin, |r| r.at_ms))
            .feed_origin_ms(origin);
        if let Some(balance) = resume.and_then(|r| r.balance) {
            builder = builder.start_tokens(balance);
        }
        let server = builder
            .seed(settings.seed)
            .initial_deals(settings.initial_deals)
            .deals_per_hour(settings.deals_per_hour)
            .backlog_window_ms((settings.backlog_hours * 3_600_000.0) as i64)
            .start()
            .await
            .context("cannot start the sandbox server")?;
        Ok(Sandbox {
            server: Arc::new(server),
            key,
            key_text,
            settings,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The key the server accepts.
    pub(crate) fn key(&self) -> &ApiKey {
        &self.key
    }

    /// The settings in use.
    pub(crate) fn settings(&self) -> &SandboxSettings {
        &self.settings
    }

    /// A client for the sandbox, recording its answers with `recorder`.
    pub(crate) fn client(&self, recorder: Option<&Recorder>) -> anyhow::Result<Client> {
        let mut builder = Client::builder(self.key.clone()).base_url(self.base_url());
        if let Some(r) = recorder {
            builder = builder.record(r.clone());
        }
        builder.build().context("cannot start the sandbox server")
    }

    /// The budget's clock, on the server's scale from the server's time now.
    pub(crate) fn clock(&self) -> ScaledClock {
        ScaledClock::new(self.server.now_ms(), self.settings.time_scale)
    }

    /// The server's own token counts, for the summary.
    pub(crate) fn truth(&self) -> Arc<dyn TokenTruth> {
        Arc::new(ServerTruth {
            server: self.server.clone(),
            key: self.key_text.clone(),
        })
    }

    /// Stops the server.
    pub(crate) async fn shutdown(self) {
        if let Ok(server) = Arc::try_unwrap(self.server) {
            server.shutdown().await;
        }
    }
}

/// Records the sandbox's settings in the database, warning first when the
/// database recorded others: the flags win.
async fn record_settings(settings: &SandboxSettings, store: &Store) -> anyhow::Result<()> {
    let now = settings.recorded();
    let before = store
        .checkpoint(SETTINGS_JOB)
        .await
        .context("reading the sandbox settings the database recorded")?;
    match before {
        Some(before) if before == now => return Ok(()),
        Some(before) => tracing::warn!(
            recorded = %before,
            flags = %now,
            "sandbox: this database was harvested with other sandbox settings; the flags win, so \
             the catalog and feed differ from the deals already stored (use a new --db to compare runs)"
        ),
        None => {}
    }
    store
        .commit(Batch {
            checkpoints: vec![(SETTINGS_JOB.to_string(), now)],
            ..Batch::default()
        })
        .await
        .context("recording the sandbox settings")?;
    Ok(())
}

struct ServerTruth {
    server: Arc<RunningServer>,
    key: String,
}

impl std::fmt::Debug for ServerTruth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTruth").finish_non_exhaustive()
    }
}

impl TokenTruth for ServerTruth {
    fn point(&self) -> Option<TokenPoint> {
        let stats = self.server.stats();
        let k = stats.key(&self.key)?;
        Some(TokenPoint {
            at_ms: stats.now_ms,
            refilled: k.refill_steps_total as i64 * k.refill_rate,
            balance: k.balance,
            min_balance: k.min_balance,
        })
    }
}

fn fresh_key() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!(
        "sandbox{:016x}{:016x}",
        h.finish(),
        h.finish().rotate_left(17) ^ 0x5bd1_e995
    )
}
