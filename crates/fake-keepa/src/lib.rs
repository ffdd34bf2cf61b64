//! A Keepa-compatible fake server: Keepa's exact token rules, a seeded
//! catalog and deal feed, fault injection and a clock that can run fast.
//!
//! Nobody can develop or test a Keepa harvester without burning a paid
//! plan, and Keepa has no sandbox. This crate is one: start it in-process
//! (or as `keepa-harvest fake-keepa`), point a client at its address, and
//! every request is metered, answered and recorded the way Keepa would.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), fake_keepa::FakeError> {
//! use fake_keepa::FakeKeepa;
//! use keepa::clock::ManualClock;
//!
//! let clock = ManualClock::new(1_750_000_000_000);
//! let server = FakeKeepa::builder()
//!     .refill_per_minute(20)
//!     .start_tokens(1)
//!     .keys(["my-test-key"])
//!     .clock(clock.clone())
//!     .seed(7)
//!     .start()
//!     .await?;
//! // http://127.0.0.1:PORT/product?key=my-test-key&domain=1&asin=…
//! let base = server.base_url();
//! assert!(base.starts_with("http://127.0.0.1:"));
//! // Time moves only when the test says so: two refill steps of 20.
//! clock.advance_minutes(2);
//! let stats = server.stats();
//! assert_eq!(stats.key("my-test-key").unwrap().balance, 41);
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # What it guarantees
//!
//! - **Tokens** follow [`keepa::tokens::TokenBucket`], the one bucket model
//!   the simulator uses too: a step of `R` every 60 s of server time from
//!   the start, capped at `60 × R` (or [`FakeKeepaBuilder::bucket_max`]); a
//!   request runs when the balance is > 0 and is charged in full, even into
//!   the negative; otherwise it gets 429 with the bare envelope and
//!   `tokensConsumed: 0`. `/token` costs 0 and is answered at any balance.
//! - **Every JSON response carries the envelope** (`timestamp`,
//!   `tokensLeft`, `refillIn`, `refillRate`, `tokenFlowReduction`,
//!   `tokensConsumed`, `processingTimeInMs`), errors included; errors add
//!   Keepa's `error` object. Requests without a valid key get zeros in the
//!   token fields.
//! - **Cost** is computed from what the answer really holds: 1 per product
//!   found (unknown ASINs are left out and cost nothing); with `offers=N`,
//!   6 per page of 10 offers returned (at least one page) instead of the 1,
//!   or a flat 5 when the offers are not collected: Keepa's offers of the
//!   product are fresher than `update` hours (absent: 1), or `update=-1`
//!   (never collect); such offers are those of the last collection, which
//!   `lastOffersUpdate` and each offer's `lastSeen` date. The server keeps
//!   when each product and its offers were last collected: seeded for
//!   everyone else's requests (about 15 % of products within the hour,
//!   60 % within the day), refreshed by the requests that collect, aging
//!   with its clock. `update=0` always collects, +1 when the product's
//!   data is under an hour old;
//!   `rating=1` +1 when the rating is over a day old; `buybox=1` +2 (not
//!   with offers); `stock=1` +2 (with offers only); `/seller` 1 per seller
//!   found, 10 with `storefront=1`; `/query` 10 + 1 per 100 ASINs;
//!   `/bestsellers` 50 (0 for an unknown category); `/category` 1;
//!   `/deal` 5; `/search` 10.
//! - **Checks run before admission**: a bad parameter gets 400 (never 429)
//!   and costs nothing. Order: unknown endpoint (404), wrong method (405),
//!   expired key (402), unknown key (400), parameters (400), tokens (429).
//! - **Bodies are gzip** with `Content-Encoding: gzip`, always (Keepa does
//!   not negotiate); `/_fake/*` answers are gzip only when asked.
//! - **The time scale is announced**: on a scaled clock not running at
//!   real time ([`FakeKeepaBuilder::time_scale`] ≠ 1), every answer of a
//!   Keepa endpoint, errors included, carries the header
//!   [`keepa::TIME_SCALE_HEADER`] (`x-fake-keepa-time-scale: 600`), which
//!   `keepa::Client` reads into `Response::server_time_scale`; real time and
//!   a [`ManualClock`](keepa::clock::ManualClock) send none (see
//!   [`Clock::time_scale`]).
//! - **Deterministic**: the same seed and start time give the same
//!   catalog, feed and fault sequence (faults are drawn in arrival order);
//!   with [`FakeKeepaBuilder::feed_origin_ms`], the same seed and origin
//!   give the same catalog and feed whatever the start.
//!
//! # Endpoints
//!
//! `/token`, `/product`, `/deal` (GET `selection=` or POST body), `/seller`,
//! `/query` (GET or POST), `/bestsellers`, `/category`, `/search`; each as
//! `/x?` and `/x/?`. Loopback-only admin hooks: `GET /_fake/stats` (see
//! [`ServerStats`]), `POST /_fake/balance?key=K&value=N`,
//! `POST /_fake/schedule[?key=K]` with body `[[minute, rate], …]`
//! (minutes from the server start).
//!
//! # The deal feed
//!
//! Deal events happen at [`FakeKeepaBuilder::deals_per_hour`] after the
//! start, and [`FakeKeepaBuilder::initial_deals`] of them are spread over
//! the 12 h before it, so a backfill has a backlog at once. Each event drops
//! one price of one product (books: mostly USED, then NEW, then AMAZON) by
//! 10-60 %, written into that product's csv history, and the price recovers
//! one to five days later.
//!
//! **Startup and memory.** [`FakeKeepaBuilder::start`] builds the deal
//! records of the whole 12 h window before the server accepts and before a
//! scaled clock starts (the server reads its start time when it is ready),
//! so the first `/deal` answers as fast as later ones and no server time
//! passes while the backlog is built. Built deals are kept only while a
//! query can still list them (the 12 h window plus one hour); the refill
//! history keeps the last [`stats::REFILL_HISTORY`] steps and the
//! "served again" bookkeeping at most one entry per product and request
//! shape, so memory does not grow with server time.
//!
//! Behaviour (choices where Keepa's documentation is silent are marked):
//!
//! - Only deals whose event lies in the last 12 h of server time are listed
//!   (Keepa: "only products updated in the last 12 h").
//! - The feed is evaluated at server time rounded down to 120 s, like
//!   Keepa's ~120 s result cache: paging within one 2-minute slot is stable.
//! - A page holds 150 deals; results beyond the first 10 000 are never
//!   returned; a page past the end is empty (not an error).
//! - `avg`, `delta` and `deltaPercent` are written `[dateRange][priceType]`
//!   (4 rows: day, week, month, 90 days; 36 columns). Keepa's sources
//!   disagree on the order; this is the reading of the Java client's prose.
//!   The "day" average covers 48 h, as Keepa documents.
//! - A positive delta means the value dropped: `delta = avg − current`.
//! - Range filters (`deltaPercentRange`, `deltaRange`, `currentRange`,
//!   `deltaLastRange`) apply only with `isRangeEnabled: true`; the switches
//!   (`isLowest`, `isLowest90`, `hasReviews`, `minRating`, `titleSearch`)
//!   only with `isFilterEnabled: true`. Categories and `salesRankRange`
//!   always apply. An upper bound of −1 means "no upper bound".
//! - `sortType`: 1 newest first; 2 absolute delta, 3 sales rank (lowest
//!   first), 4 percent delta; negative inverts 2-4. Keepa documents that
//!   deal age (1) is not invertible, so −1 is served as 1. 0, absent or
//!   unknown is served as 1.
//! - Integers must be JSON numbers: a string `"4"` is ignored, as Keepa does.
//! - Only AMAZON (0), NEW (1) and USED (2) deals are generated; every other
//!   valid price type yields an empty feed.
//!
//! # Other choices where Keepa is silent
//!
//! - Unknown ASINs are left out of `products` and cost nothing.
//! - `update=0` refreshes (and adds 1 if the data was under an hour old);
//!   `update=-1` never refreshes and adds nothing.
//! - `stock=1` without `offers` is ignored; `stats` takes a number of days.
//! - 5xx answers and resets happen before the request runs (not charged);
//!   hangs and garbage bodies happen after (charged).
//! - The foreign consumer obeys the admission rule like any client; at equal
//!   instants our request goes before the foreign one.
//! - The catalog is the same for every domain; `domainId` echoes the request.
//!
//! # Modules
//!
//! - [`faults`]: the fault spec (`"5xx=0.05,latency=20ms..2s,…"`).
//! - [`stats`]: what the server counted, per key.
//! - [`replay`]: a server answering with a recording (`--record`) instead.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod catalog;
pub mod faults;
mod feed;
mod render;
pub mod replay;
mod rng;
mod server;
pub mod stats;

use std::net::SocketAddr;
use std::sync::Arc;

use keepa::tokens::BucketCap;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use catalog::CatalogParams;
pub use faults::FaultSpec;
pub use feed::{DEAL_PRICE_TYPES, PAGE_SIZE, PAGING_CAP};
use keepa::clock::{Clock, ScaledClock};
pub use stats::{KeyStats, RefillRecord, ServerStats};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    /// The refill schedule is unusable.
    #[error("bad refill schedule: {0}")]
    Schedule(#[from] keepa::tokens::ScheduleError),
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Invalid(String),
    /// A recording to replay could not be read.
    #[error("cannot replay: {0}")]
    Replay(#[from] keepa::record::RecordError),
}

/// Entry point: `FakeKeepa::builder()`.
#[derive(Debug)]
pub struct FakeKeepa;

impl FakeKeepa {
    /// A builder with the defaults listed on [`FakeKeepaBuilder`].
    pub fn builder() -> FakeKeepaBuilder {
        FakeKeepaBuilder::default()
    }
}

/// Configures a fake server. Defaults: 20 tokens/min, cap 60 × R, full
/// bucket at start, real time (`time_scale` 1), seed 0, one key
/// `"fake-keepa-key"`, no faults, 300 deals per hour with a backlog of
/// 3 000 deals over the 12 h before the start, 100 000 products (60 %
/// books), 2 000 sellers, bound to `127.0.0.1:0`.
#[derive(Debug, Clone)]
pub struct FakeKeepaBuilder {
    schedule: Vec<(i64, i64)>,
    bucket_max: Option<i64>,
    start_tokens: Option<i64>,
    time_scale: f64,
    start_unix_ms: Option<i64>,
    feed_origin_ms: Option<i64>,
    clock: Option<Arc<dyn Clock>>,
    seed: u64,
    keys: Vec<String>,
    expired_keys: Vec<String>,
    faults: FaultSpec,
    deals_per_hour: f64,
    initial_deals: u32,
    backlog_window_ms: i64,
    catalog: CatalogParams,
    bind: SocketAddr,
}

impl Default for FakeKeepaBuilder {
    fn default() -> Self {
        FakeKeepaBuilder {
            schedule: vec![(0, 20)],
            bucket_max: None,
            start_tokens: None,
            time_scale: 1.0,
            start_unix_ms: None,
            feed_origin_ms: None,
            clock: None,
            seed: 0,
            keys: vec!["fake-keepa-key".to_string()],
            expired_keys: Vec::new(),
            faults: FaultSpec::default(),
            deals_per_hour: 300.0,
            initial_deals: 3_000,
            backlog_window_ms: catalog::FRESH_WINDOW_MS,
            catalog: CatalogParams::default(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

impl FakeKeepaBuilder {
    /// A constant refill rate `R` tokens per minute.
    pub fn refill_per_minute(mut self, rate: i64) -> Self {
        self.schedule = vec![(0, rate)];
        self
    }

    /// A refill schedule `[(minute, rate), …]`, minutes counted from the
    /// server start (a change at minute `m` applies to the step landing at `m`).
    pub fn refill_schedule(mut self, entries: impl Into<Vec<(i64, i64)>>) -> Self {
        self.schedule = entries.into();
        self
    }

    /// A fixed bucket cap instead of 60 minutes of refill.
    pub fn bucket_max(mut self, max: i64) -> Self {
        self.bucket_max = Some(max);
        self
    }

    /// The balance at start (default: full).
    pub fn start_tokens(mut self, tokens: i64) -> Self {
        self.start_tokens = Some(tokens);
        self
    }

    /// Speed of the scaled clock: 1 = real time, 600 = ten minutes per real second.
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.time_scale = scale;
        self
    }

    /// The server time at start, Unix ms (default: the wall clock). With a
    /// fixed start and seed, the whole catalog and feed are reproducible.
    pub fn start_unix_ms(mut self, ms: i64) -> Self {
        self.start_unix_ms = Some(ms);
        self
    }

    /// Anchors the catalog and the deal feed at this time, Unix ms, instead
    /// of the server start (default: the start). The backlog lies in the
    /// window before the origin and live deals follow it; product histories
    /// are anchored there too. The token bucket (and a refill schedule's
    /// minutes) still count from the server start. A server restarted later
    /// with the same seed and origin serves the same catalog and feed as one
    /// that never stopped, from its own start on (a resumed sandbox).
    pub fn feed_origin_ms(mut self, ms: i64) -> Self {
        self.feed_origin_ms = Some(ms);
        self
    }

    /// Uses this clock instead of a scaled wall clock (tests: a
    /// [`ManualClock`](keepa::clock::ManualClock)). The server starts at the clock's current time.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The seed of the catalog, the feed, the faults and the foreign consumer.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The valid keys, each with its own bucket.
    pub fn keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// Keys answered with 402 (expired or unpaid).
    pub fn expired_keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.expired_keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// Faults to inject (see [`faults`]).
    pub fn faults(mut self, spec: FaultSpec) -> Self {
        self.faults = spec;
        self
    }

    /// New deals per hour of server time (default 300), at a steady rate
    /// with jitter; see the crate docs, "The deal feed".
    pub fn deals_per_hour(mut self, rate: f64) -> Self {
        self.deals_per_hour = rate;
        self
    }

    /// Deals already in the 12 h window at start (default 3 000).
    pub fn initial_deals(mut self, n: u32) -> Self {
        self.initial_deals = n;
        self
    }

    /// How far before the start the initial deals are spread (default and
    /// maximum 12 h, Keepa's freshness window; at least one minute). A
    /// shorter window keeps the whole backlog in the feed for longer, so a
    /// run's result does not depend on how fast it walks the feed.
    pub fn backlog_window_ms(mut self, ms: i64) -> Self {
        self.backlog_window_ms = ms.clamp(60_000, catalog::FRESH_WINDOW_MS);
        self
    }

    /// Size and mix of the catalog.
    pub fn catalog(mut self, params: CatalogParams) -> Self {
        self.catalog = params;
        self
    }

    /// The address to listen on (default `127.0.0.1:0`, a free port).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Builds the catalog and the feed's backlog (blocking, on up to all
    /// cores), binds the socket, then starts the clock and serves on the
    /// current tokio runtime. A built-in scaled clock reads the start time
    /// (`start_unix_ms`, or the wall time when `start` was called) at the
    /// moment the server is ready; a clock given with
    /// [`clock`](Self::clock) keeps running meanwhile.
    pub async fn start(self) -> Result<RunningServer, FakeError> {
        if self.catalog.products == 0 {
            return Err(FakeError::Invalid(
                "the catalog needs at least one product".into(),
            ));
        }
        if !(self.deals_per_hour.is_finite() && self.deals_per_hour >= 0.0) {
            return Err(FakeError::Invalid("deals_per_hour must be >= 0".into()));
        }
        // The catalog and the feed's backlog are built before the clock
        // starts: a scaled clock reads `start_ms` when the server is ready.
        let start_ms = match (&self.clock, self.start_unix_ms) {
            (Some(c), _) => c.now_ms(),
            (None, Some(ms)) => ms,
            (None, None) => keepa::clock::wall_unix_ms(),
        };
        let origin_ms = self.feed_origin_ms.unwrap_or(start_ms);
        let mut schedule = catalog::Schedule::new(
            origin_ms,
            self.initial_deals,
            self.deals_per_hour,
            self.seed,
        );
        schedule.window_ms = self.backlog_window_ms;
        let catalog = Arc::new(catalog::Catalog::new(self.seed, self.catalog, schedule));
        let feed = feed::DealFeed::new(catalog);
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        feed.warm(start_ms, threads);
        let settings = server::Settings {
            keys: self.keys,
            expired_keys: self.expired_keys,
            schedule_minutes: self.schedule,
            cap: self
                .bucket_max
                .map_or(BucketCap::default(), BucketCap::Fixed),
            start_tokens: self.start_tokens,
            faults: self.faults,
            seed: self.seed,
            start_ms,
        };
        let listener = TcpListener::bind(self.bind)
            .await
            .map_err(|source| FakeError::Bind {
                addr: self.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| FakeError::Bind {
            addr: self.bind,
            source,
        })?;
        let clock: Arc<dyn Clock> = match (self.clock, self.start_unix_ms) {
            (Some(c), _) => c,
            (None, Some(_)) => Arc::new(ScaledClock::new(start_ms, self.time_scale)),
            // On the wall clock the server's time is the wall time when it
            // is ready (the build took real, unscaled time), so a client
            // reading its own clock sees no skew.
            (None, None) => Arc::new(ScaledClock::new(
                keepa::clock::wall_unix_ms().max(start_ms),
                self.time_scale,
            )),
        };
        let (tx, rx) = watch::channel(false);
        let shared = Arc::new(server::Shared::new(clock, settings, feed, rx.clone())?);
        let task = tokio::spawn(server::serve(listener, shared.clone(), rx));
        tracing::info!(%addr, "fake Keepa listening");
        Ok(RunningServer {
            addr,
            shared,
            shutdown: tx,
            task: Some(task),
        })
    }
}

/// A running fake server. Dropping it stops it too (without waiting).
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, to use as a client's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Server time now, Unix ms.
    pub fn now_ms(&self) -> i64 {
        self.shared.clock.now_ms()
    }

    /// How many deal records the feed holds built (tests: the cache stays
    /// bounded over server time).
    #[doc(hidden)]
    pub fn cached_deal_records(&self) -> usize {
        self.shared.cached_deals()
    }

    /// What the server has counted so far (the same data as `GET /_fake/stats`,
    /// plus the keys themselves).
    pub fn stats(&self) -> ServerStats {
        self.shared.stats()
    }

    /// Sets a key's balance now. `false` if the key is unknown.
    pub fn set_balance(&self, key: &str, balance: i64) -> bool {
        self.shared.set_balance(key, balance)
    }

    /// Replaces the refill schedule of one key (or all with `None`); minutes
    /// count from the server start. Returns how many keys changed.
    pub fn set_refill_schedule(
        &self,
        key: Option<&str>,
        entries: &[(i64, i64)],
    ) -> Result<usize, FakeError> {
        Ok(self.shared.set_schedule(key, entries)?)
    }

    /// The ASIN of catalog product `index` (tests and demos need real ASINs).
    pub fn asin(&self, index: u32) -> Option<String> {
        let c = &self.shared.catalog;
        (index < c.params.products).then(|| c.asin(&c.summary(index)))
    }

    /// The first `n` book ASINs of the catalog.
    pub fn book_asins(&self, n: usize) -> Vec<String> {
        let c = &self.shared.catalog;
        (0..c.params.products)
            .map(|i| c.summary(i))
            .filter(|s| s.is_book)
            .take(n)
            .map(|s| c.asin(&s))
            .collect()
    }

    /// Stops accepting, drops open connections (hanging requests included)
    /// and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
