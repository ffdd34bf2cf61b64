//! The harvest: backfill, refresh and re-check jobs under one token budget,
//! the staged pipeline (free deal filter → product stats → offers → store),
//! the run configuration and the store.
//!
//! - [`run()`]: one run until a target, a deadline or a stop signal, with a
//!   [`Summary`] (the keys of `run --summary-json`).
//! - [`jobs`]: the backfill (durable page cursor), the refresh (periodic,
//!   newest first down to a watermark) and the re-check (lowest weight).
//! - [`pipeline`]: the only code that calls Keepa, always through a budget
//!   permit; never pays twice for a product the store knows.
//! - [`extract`]: the one module reading Keepa's deal and product objects.
//! - [`history`]: stored `csv` histories (`keep_history`) decoded into
//!   long rows for `export --history`.
//! - [`config`], [`store`]: the TOML configuration and the database.
//! - [`alerts`]: `[[alert]]` matches queued with their deals (the store's
//!   outbox) and delivered to webhooks by a worker beside the jobs.
//! - [`fuzz`]: the parse entry points the fuzz targets and the no-panic
//!   tests drive with arbitrary bytes.
//!
//! Guarantees: rows and checkpoints commit in one transaction after every
//! request, so a crash loses at most the request in flight; a cursor or
//! watermark moves only past deals stored or deliberately rejected; jobs do
//! no token arithmetic.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use keepa::clock::ScaledClock;
//! use harvest::{config::RunConfig, metrics::Metrics, run, store::Store, RunOptions};
//! use harvest::run::EnvelopeTruth;
//! use keepa::{ApiKey, Client};
//! let key = ApiKey::new(std::env::var("KEEPA_API_KEY")?)?;
//! let metrics = Metrics::new();
//! let (_stop_tx, stop) = tokio::sync::watch::channel(false);
//! let report = run(RunConfig::load("harvest.toml".as_ref())?, RunOptions {
//!     client: Client::builder(key).build()?,
//!     clock: ScaledClock::wall(), // Keepa's time is wall time
//!     store: Store::open("harvest.db").await?,
//!     ledger: Default::default(), // in this process; or a shared Redis ledger
//!     target_deals: Some(100),
//!     until_ms: None,
//!     shutdown: stop,
//!     truth: Some(std::sync::Arc::new(EnvelopeTruth::new(metrics.clone()))), // token figures from the envelopes
//!     metrics,
//!     drain_timeout: std::time::Duration::from_secs(30),
//! }).await;
//! println!("{}", report.summary.human());
//! # Ok(()) }
//! ```

#![warn(missing_docs, missing_debug_implementations)]

pub mod alerts;
pub mod config;
pub mod error;
pub mod extract;
pub mod figures;
pub mod fuzz;
pub mod history;
pub mod jobs;
pub mod metrics;
pub mod pipeline;
pub mod run;
pub mod store;

pub use error::HarvestError;
pub use run::{run, RunOptions, RunReport, Summary};
