//! `keepa-harvest run`: the harvest (backfill, refresh, re-check under one
//! budget), against Keepa or, with `--sandbox`, an in-process fake Keepa.
//!
//! Ctrl-C or SIGTERM stops admitting work, lets the requests in flight
//! finish (bounded), commits, prints the summary and exits 130; a second
//! Ctrl-C exits at once. The next start resumes from the checkpoints.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use harvest::config::RunConfig;
use harvest::metrics::Metrics;
use harvest::run::{EnvelopeTruth, RunOptions};
use harvest::store::Store;
use harvest::{Sandbox, SandboxSettings};
use tokio::sync::watch;

use crate::context::Context;
use crate::exit::{usage, Interrupted};

/// Default database file.
const DEFAULT_DB: &str = "keepa-harvest.db";

/// Keepa time a sandbox run lasts when neither `--target-deals` nor `--until` is given.
const SANDBOX_DEFAULT_UNTIL: Duration = Duration::from_secs(10 * 3600);

/// Flags of `run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// Harvest from an in-process fake Keepa on a fast clock (no key needed).
    #[arg(long)]
    sandbox: bool,
    /// Database: a SQLite path or a postgres:// URL [default: keepa-harvest.db]
    #[arg(long, value_name = "URL-or-PATH")]
    db: Option<String>,
    /// Stop once this many deals are stored (in the database, in total).
    #[arg(long, value_name = "N")]
    target_deals: Option<u64>,
    /// Stop after this much Keepa (server) time, e.g. `10h`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    until: Option<Duration>,
    /// Write the run's summary (keys: CLI.md) to this file as JSON.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics; a bare port (`9100`) binds loopback only.
    #[arg(long, value_name = "ADDR|PORT", value_parser = harvest::metrics::parse_addr)]
    metrics_addr: Option<SocketAddr>,
    /// Budget policy: flow (default), controlled-deficit, wait-for-max.
    #[arg(long, value_name = "NAME")]
    policy: Option<String>,
    /// Sandbox: catalog and feed seed (same seed, same feed).
    #[arg(long, default_value_t = SandboxSettings::default().seed)]
    seed: u64,
    /// Sandbox: the plan's tokens per minute.
    #[arg(long, value_name = "R", default_value_t = SandboxSettings::default().refill_per_minute)]
    sandbox_refill_per_minute: i64,
    /// Sandbox: Keepa time per real time.
    #[arg(long, value_name = "X", default_value_t = SandboxSettings::default().time_scale)]
    sandbox_time_scale: f64,
    /// Sandbox: deals in the feed at start.
    #[arg(long, value_name = "N", default_value_t = SandboxSettings::default().initial_deals)]
    sandbox_backlog: u32,
    /// Sandbox: new deals per hour of Keepa time.
    #[arg(long, value_name = "N", default_value_t = SandboxSettings::default().deals_per_hour)]
    sandbox_deals_per_hour: f64,
    /// Sandbox: hours before the start over which the backlog is spread (at most 12).
    #[arg(long, value_name = "H", default_value_t = SandboxSettings::default().backlog_hours)]
    sandbox_backlog_hours: f64,
    /// No progress bars, progress lines or info logs: warnings, errors and
    /// the final summary only (`RUST_LOG` still overrides the log filter).
    #[arg(long)]
    pub(crate) quiet: bool,
}

impl RunArgs {
    pub(crate) async fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let mut cfg = match ctx.config_path() {
            Some(p) => RunConfig::load(p).map_err(|e| usage(format!("{e}")))?,
            None => RunConfig::default_config(),
        };
        if let Some(name) = &self.policy {
            cfg.budget.policy = budget::PolicyKind::by_name(name, budget::SeedRules::default())
                .map_err(|e| usage(e.to_string()))?;
        }
        let ledger = ctx
            .ledger()
            .map(str::to_string)
            .or(cfg.ledger.clone())
            .unwrap_or_else(|| "memory".to_string());
        if self.target_deals == Some(0) {
            return Err(usage("--target-deals must be at least 1"));
        }
        let target = self.target_deals.or(cfg.backfill.target_deals);
        let db = self
            .db
            .clone()
            .or(cfg.db.clone())
            .unwrap_or_else(|| DEFAULT_DB.to_string());
        let metrics_addr = self.metrics_addr.or(cfg.metrics_addr);

        let sandbox = if self.sandbox {
            let settings = SandboxSettings {
                seed: self.seed,
                refill_per_minute: self.sandbox_refill_per_minute,
                time_scale: self.sandbox_time_scale,
                initial_deals: self.sandbox_backlog,
                deals_per_hour: self.sandbox_deals_per_hour,
                backlog_hours: self.sandbox_backlog_hours,
            };
            if !(settings.refill_per_minute > 0
                && settings.time_scale.is_finite()
                && settings.time_scale > 0.0)
            {
                return Err(usage(
                    "--sandbox-refill-per-minute and --sandbox-time-scale must be positive",
                ));
            }
            Some(
                Sandbox::start(settings)
                    .await
                    .context("starting the sandbox")?,
            )
        } else {
            None
        };
        let (client, clock, key) = match &sandbox {
            Some(s) => (s.client()?, s.clock(), s.key().clone()),
            None => {
                let key = match (ctx.api_key(), cfg.key.clone()) {
                    (Ok(k), _) => k,
                    (Err(_), Some(k)) => k,
                    (Err(e), None) => return Err(e),
                };
                let client = ctx.client_with(key.clone())?;
                let clock = ctx.server_clock(&client).await?;
                (client, clock, key)
            }
        };
        if sandbox.is_some() && ledger != "memory" {
            return Err(usage(
                "--ledger: a shared ledger needs a shared server; --sandbox runs its own (start `keepa-harvest fake-keepa` and point --base-url at it)",
            ));
        }
        let ledger = budget::AnyLedger::open(&ledger, &key, &cfg.budget.policy)
            .await
            .map_err(|e| match e {
                budget::LedgerError::InvalidName(_)
                | budget::LedgerError::PolicyConflict { .. } => usage(format!("--ledger: {e}")),
                other => anyhow::Error::new(other).context("connecting to the shared ledger"),
            })?;
        if let budget::AnyLedger::Redis(r) = &ledger {
            tracing::info!(
                owner = r.owner(),
                lease_s = r.lease().as_secs_f64(),
                "budget: sharing the key's ledger in Redis"
            );
        }
        let until = self.until.or(match (&sandbox, target) {
            (Some(_), None) => Some(SANDBOX_DEFAULT_UNTIL),
            _ => None,
        });
        let store = Store::open(&db)
            .await
            .with_context(|| format!("opening the database {}", harvest::store::redact(&db)))?;
        let metrics = Metrics::new();
        let truth = match &sandbox {
            Some(s) => s.truth(),
            None => Arc::new(EnvelopeTruth::new(metrics.clone())),
        };

        // Signals: the first stops admitting work, the second exits at once.
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        tokio::spawn(async move {
            let mut count = 0;
            loop {
                wait_signal().await;
                count += 1;
                if count == 1 {
                    crate::logging::eprintln_above_bars(
                        "stopping: finishing the requests in flight (Ctrl-C again to quit at once)",
                    );
                    let _ = shutdown_tx.send(true);
                } else {
                    std::process::exit(130);
                }
            }
        });

        let (stop_metrics_tx, stop_metrics_rx) = watch::channel(false);
        if let Some(addr) = metrics_addr {
            crate::metrics_http::start(addr, metrics.clone(), stop_metrics_rx.clone()).await?;
        }
        if let Some(s) = &sandbox {
            let st = s.settings();
            if !ctx.json && !self.quiet {
                eprintln!(
                    "sandbox: fake Keepa at {} ({} tokens/min, time x{}, seed {}, {} deals in the feed); database {}",
                    s.base_url(),
                    st.refill_per_minute,
                    st.time_scale,
                    st.seed,
                    st.initial_deals,
                    harvest::store::redact(&db),
                );
            }
        }
        // After the lines above: bars start below everything printed directly.
        let progress = if self.quiet || ctx.json {
            None
        } else {
            Some(tokio::spawn(crate::progress::progress_loop(
                metrics.clone(),
                target,
                stop_metrics_rx.clone(),
            )))
        };
        let report = harvest::run(
            cfg,
            RunOptions {
                client,
                clock,
                store,
                ledger,
                target_deals: target,
                until_ms: until.map(|u| u.as_millis().min(i64::MAX as u128) as i64),
                shutdown: shutdown_rx,
                truth: Some(truth),
                metrics: metrics.clone(),
                drain_timeout: Duration::from_secs(30),
            },
        )
        .await;
        let _ = stop_metrics_tx.send(true);
        if let Some(p) = progress {
            let _ = p.await;
        }
        if let Some(s) = sandbox {
            s.shutdown().await;
        }

        let summary = &report.summary;
        let json = serde_json::to_string_pretty(summary).context("serialising the summary")?;
        if let Some(path) = &self.summary_json {
            std::fs::write(path, format!("{json}\n"))
                .with_context(|| format!("writing --summary-json {}", path.display()))?;
        }
        if ctx.json {
            println!("{json}");
        } else {
            println!("{}", summary.human());
        }
        if let Some(err) = report.error {
            return Err(anyhow::Error::new(err).context("the harvest stopped"));
        }
        if report.interrupted {
            return Err(Interrupted.into());
        }
        Ok(())
    }
}

/// Ctrl-C, or SIGTERM on Unix.
async fn wait_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
