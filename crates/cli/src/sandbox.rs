//! `run --sandbox`: the fake Keepa server in-process, on a fast clock.
//!
//! Defaults are chosen so that the README's first command shows the whole
//! system in about a minute: 20 tokens a minute (bucket 1 200, full at
//! start), time ×600 (a real second is ten Keepa minutes, so ten hours of
//! Keepa time take a minute), a backlog of 8 000 deals over the last 12 h
//! and 300 new deals an hour.
//!
//! **The start is pinned**: the server's clock starts at
//! [`SANDBOX_EPOCH_MS`] plus `seed` days, every time. The same seed thus
//! gives the same catalog, the same feed and the same product data at the
//! same offset from the start, whether the run is fresh or resumed after a
//! crash; a resumed run sees the feed from its start again and skips what
//! the store already holds. (Continuing the server clock where the last run
//! stopped would need a start recorded in the database and would make a
//! resumed feed differ from an uninterrupted one.)

use std::sync::Arc;

use anyhow::Context as _;
use fake_keepa::{FakeKeepa, RunningServer};
use harvest::run::{TokenPoint, TokenTruth};
use keepa::clock::ScaledClock;
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

impl SandboxSettings {
    /// The pinned server start for this seed.
    pub(crate) fn start_unix_ms(&self) -> i64 {
        SANDBOX_EPOCH_MS + (self.seed % 3_650) as i64 * 86_400_000
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
    /// Starts the fake server on `127.0.0.1:0` with a fresh key.
    pub(crate) async fn start(settings: SandboxSettings) -> anyhow::Result<Sandbox> {
        let key_text = fresh_key();
        let key = ApiKey::new(key_text.clone()).map_err(|e| anyhow::anyhow!(e.0))?;
        let server = FakeKeepa::builder()
            .keys([key_text.clone()])
            .refill_per_minute(settings.refill_per_minute)
            .time_scale(settings.time_scale)
            .start_unix_ms(settings.start_unix_ms())
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

    /// A client for the sandbox.
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        Client::builder(self.key.clone())
            .base_url(self.base_url())
            .build()
            .context("cannot start the sandbox server")
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
