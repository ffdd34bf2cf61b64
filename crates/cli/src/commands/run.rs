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
use harvest::metrics::Metrics;
use harvest::run::{EnvelopeTruth, RunOptions, RunReport, TokenTruth};
use harvest::store::Store;
use keepa::clock::ScaledClock;
use keepa::{ApiKey, Client};
use tokio::sync::watch;

use crate::context::{CommandFlags, Context, Plan};
use crate::exit::{usage, Interrupted};
use crate::sandbox::{Sandbox, SandboxSettings};

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
    /// Serve the web dashboard (and /metrics) at http://ADDR/ while the run
    /// lasts; a bare port binds loopback only. The stderr line
    /// `dashboard: listening on http://ADDR` names the address bound.
    #[arg(long, value_name = "ADDR|PORT", value_parser = harvest::metrics::parse_addr)]
    ui: Option<SocketAddr>,
    /// Budget policy: flow (default), controlled-deficit, wait-for-max.
    #[arg(long, value_name = "NAME")]
    policy: Option<String>,
    /// Write every answer of the server into DIR, one numbered JSON file
    /// each (status, headers, body; never the key).
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
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

/// The server a run talks to: the in-process sandbox, or Keepa (or a fake
/// one) at the configured URL.
struct Server {
    client: Client,
    clock: ScaledClock,
    key: ApiKey,
    sandbox: Option<Sandbox>,
}

impl Server {
    /// Starts the sandbox (where the database `store` stops), or reads the
    /// server's clock (its first `/token`).
    async fn connect(plan: &Plan, store: Option<&Store>) -> anyhow::Result<Server> {
        if let (Some(settings), Some(store)) = (&plan.sandbox, store) {
            let s = Sandbox::start_for(settings.clone(), store)
                .await
                .context("starting the sandbox")?;
            return Ok(Server {
                client: s.client(plan.client.recorder())?,
                clock: s.clock(),
                key: s.key().clone(),
                sandbox: Some(s),
            });
        }
        let key = plan.key()?;
        let client = plan.client.build(key.clone())?;
        let clock = crate::clock::server_clock(&client, plan.server_time_scale).await?;
        Ok(Server {
            client,
            clock,
            key,
            sandbox: None,
        })
    }

    /// The summary's token figures: the sandbox's own counts, else the envelopes'.
    fn truth(&self, metrics: &Arc<Metrics>) -> Arc<dyn TokenTruth> {
        match &self.sandbox {
            Some(s) => s.truth(),
            None => Arc::new(EnvelopeTruth::new(metrics.clone())),
        }
    }
}

impl RunArgs {
    pub(crate) async fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let plan = ctx.plan(self.flags())?;
        if let Some(warning) = plan.sandbox.as_ref().and_then(|s| s.time_scale_warning()) {
            tracing::warn!("{warning}");
        }
        // The sandbox's server continues where its database stops: the
        // database first. Against Keepa, the server first, as before.
        let sandbox_store = match plan.sandbox {
            Some(_) => Some(open_store(&plan).await?),
            None => None,
        };
        let server = Server::connect(&plan, sandbox_store.as_ref()).await?;
        let ledger = open_ledger(&plan, &server.key).await?;
        let until = self.until.or(match (&plan.sandbox, plan.target_deals) {
            (Some(_), None) => Some(SANDBOX_DEFAULT_UNTIL),
            _ => None,
        });
        let store = match sandbox_store {
            Some(store) => store,
            None => open_store(&plan).await?,
        };
        let metrics = Metrics::new();
        let truth = server.truth(&metrics);
        let shutdown = spawn_signal_handler();
        let (stop_tx, stop_rx) = watch::channel(false);
        if let Some(addr) = plan.metrics_addr {
            crate::metrics_http::start(addr, metrics.clone(), stop_rx.clone()).await?;
        }
        let sampler = tokio::spawn(crate::dashboard::sampler::sample_loop(
            store.clone(),
            metrics.clone(),
            stop_rx.clone(),
        ));
        if let Some(addr) = self.ui {
            let source = crate::dashboard::Source {
                store: store.clone(),
                target_deals: plan.target_deals,
            };
            let bound = crate::dashboard::start(
                addr,
                "--ui",
                source,
                Some(metrics.clone()),
                stop_rx.clone(),
            )
            .await?;
            crate::logging::eprintln_above_bars(format!("dashboard: listening on http://{bound}"));
        }
        if let Some(s) = &server.sandbox {
            if !ctx.json && !self.quiet {
                eprintln!("{}", sandbox_banner(s, &plan.db));
            }
        }
        // After the lines above: bars start below everything printed directly.
        let progress = (!self.quiet && !ctx.json).then(|| {
            tokio::spawn(crate::progress::progress_loop(
                metrics.clone(),
                plan.target_deals,
                stop_rx.clone(),
            ))
        });
        let report = harvest::run(
            plan.run,
            RunOptions {
                client: server.client,
                clock: server.clock,
                store,
                ledger,
                target_deals: plan.target_deals,
                until_ms: until.map(|u| u.as_millis().min(i64::MAX as u128) as i64),
                shutdown,
                truth: Some(truth),
                metrics: metrics.clone(),
                drain_timeout: Duration::from_secs(30),
            },
        )
        .await;
        let _ = stop_tx.send(true);
        if let Some(p) = progress {
            let _ = p.await;
        }
        let _ = sampler.await;
        if let Some(s) = server.sandbox {
            s.shutdown().await;
        }
        self.report(ctx, report)
    }

    /// The flags that override shared settings.
    fn flags(&self) -> CommandFlags {
        CommandFlags {
            db: self.db.clone(),
            target_deals: self.target_deals,
            metrics_addr: self.metrics_addr,
            policy: self.policy.clone(),
            sandbox: self.sandbox.then_some(SandboxSettings {
                seed: self.seed,
                refill_per_minute: self.sandbox_refill_per_minute,
                time_scale: self.sandbox_time_scale,
                initial_deals: self.sandbox_backlog,
                deals_per_hour: self.sandbox_deals_per_hour,
                backlog_hours: self.sandbox_backlog_hours,
            }),
            needs_key: true,
            record: self.record.clone(),
        }
    }

    /// Prints the summary (and writes `--summary-json`); the run's failure
    /// or interruption becomes the command's.
    fn report(&self, ctx: &Context, report: RunReport) -> anyhow::Result<()> {
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

/// The run's database.
async fn open_store(plan: &Plan) -> anyhow::Result<Store> {
    Store::open(&plan.db)
        .await
        .with_context(|| format!("opening the database {}", harvest::store::redact(&plan.db)))
}

/// The budget's ledger: in this process, or the key's shared one in Redis.
async fn open_ledger(plan: &Plan, key: &ApiKey) -> anyhow::Result<budget::AnyLedger> {
    let ledger = budget::AnyLedger::open(&plan.ledger, key, &plan.run.budget.policy)
        .await
        .map_err(|e| match e {
            budget::LedgerError::InvalidName(_) | budget::LedgerError::PolicyConflict { .. } => {
                usage(format!("--ledger: {e}"))
            }
            other => anyhow::Error::new(other).context("connecting to the shared ledger"),
        })?;
    if let budget::AnyLedger::Redis(r) = &ledger {
        tracing::info!(
            owner = r.owner(),
            lease_s = r.lease().as_secs_f64(),
            "budget: sharing the key's ledger in Redis"
        );
    }
    Ok(ledger)
}

/// Signals: the first stops admitting work (the receiver turns `true`),
/// the second exits at once.
fn spawn_signal_handler() -> watch::Receiver<bool> {
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
    shutdown_rx
}

/// The line saying where the sandbox is and what it serves.
fn sandbox_banner(s: &Sandbox, db: &str) -> String {
    let st = s.settings();
    format!(
        "sandbox: fake Keepa at {} ({} tokens/min, time x{}, seed {}, {} deals in the feed); database {}",
        s.base_url(),
        st.refill_per_minute,
        st.time_scale,
        st.seed,
        st.initial_deals,
        harvest::store::redact(db),
    )
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
