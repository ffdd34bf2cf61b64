//! A whole run: the jobs under one budget, until a target, a deadline or a
//! stop signal, and the summary at the end.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use budget::gate::Gate;
use budget::AnyLedger;
use keepa::clock::Clock;
use keepa::request::Request;
use keepa::{Client, CostModel};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::RunConfig;
use crate::error::HarvestError;
use crate::jobs;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::pipeline::{Claims, Job, RetryPolicy, Shared};
use crate::store::Store;
use keepa::clock::ScaledClock;

/// The server's token counts at one instant, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TokenPoint {
    /// Server time, ms.
    pub at_ms: i64,
    /// Tokens refilled since the key's start (gross, including refill lost at the cap).
    pub refilled: i64,
    /// Balance.
    pub balance: i64,
    /// Lowest balance so far.
    pub min_balance: i64,
}

/// The server's own token counts where it can tell them (the sandbox's fake
/// server): the summary takes the lowest balance from it, which envelopes
/// only sample. The token breakdown always comes from the envelopes
/// ([`crate::figures`]), on real Keepa and in the sandbox alike.
pub trait TokenTruth: Send + Sync + std::fmt::Debug {
    /// The counts now.
    fn point(&self) -> Option<TokenPoint>;
    /// The counts at the start, if they could not be read then (envelopes).
    fn start(&self) -> Option<TokenPoint> {
        None
    }
}

/// Everything a run needs besides its configuration.
#[derive(Debug)]
pub struct RunOptions {
    /// The Keepa client (real or sandbox).
    pub client: Client,
    /// Server time.
    pub clock: ScaledClock,
    /// The store.
    pub store: Store,
    /// The budget's ledger: in this process (default) or shared through Redis.
    pub ledger: AnyLedger,
    /// Stop once this many deals are stored in total.
    pub target_deals: Option<u64>,
    /// Stop after this much server time.
    pub until_ms: Option<i64>,
    /// Turns `true` to stop (Ctrl-C).
    pub shutdown: watch::Receiver<bool>,
    /// The server's own counts, for the lowest balance (`None`: from envelopes).
    pub truth: Option<Arc<dyn TokenTruth>>,
    /// Metrics (shared with progress and the Prometheus endpoint).
    pub metrics: Arc<Metrics>,
    /// Bound on waiting for in-flight requests after a stop, real time.
    pub drain_timeout: std::time::Duration,
}

/// What `run --summary-json` writes: the keys README "What the figures
/// mean" defines. The token figures cover the whole run, from its first
/// `/token` to its end, and add up: `tokens_spent` (all jobs) +
/// `tokens_lost_at_cap` + `tokens_left` + `tokens_spent_by_others` =
/// `tokens_available`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    /// Deals this run stored (passed the whole pipeline), distinct ASINs.
    pub deals_stored: u64,
    /// Products this run fetched from Keepa.
    pub products_fetched: u64,
    /// Tokens charged, by job then stage.
    pub tokens_spent: BTreeMap<String, BTreeMap<String, i64>>,
    /// All tokens spent ÷ deals stored (`null` without a deal).
    pub tokens_per_stored_deal: Option<f64>,
    /// Refill that arrived during the run (before the cap).
    pub tokens_refilled: i64,
    /// Tokens this run spent ÷ `tokens_available`.
    pub utilization: f64,
    /// `start_balance` + `tokens_refilled`: what the plan made available.
    pub tokens_available: i64,
    /// Refill the bucket cap threw away.
    pub tokens_lost_at_cap: i64,
    /// Balance at the end of the run.
    pub tokens_left: i64,
    /// What the balance lost beyond this run's charges (another client).
    pub tokens_spent_by_others: i64,
    /// Balance of the run's first `/token`.
    pub start_balance: i64,
    /// The plan's refill rate at the end, tokens per minute.
    pub refill_per_minute: i64,
    /// The bucket's cap at that rate.
    pub bucket_max: i64,
    /// `"feed"`: the backfill ran out of feed before the target;
    /// `"tokens"`: it was waiting for tokens, or the target was reached.
    pub limited_by: String,
    /// Data requests (deal feed, products) by outcome (`200`, `429`, `5xx`,
    /// `timeout`, …); the free `/token` calls are not counted.
    pub requests_by_status: BTreeMap<String, u64>,
    /// 429 answers to this run's requests.
    pub own_429: u64,
    /// 2xx answers with an error in the body or without their payload:
    /// failed calls, waited for or retried (README "What the harvest does
    /// with bad answers").
    pub in_body_errors: u64,
    /// 2xx answers without `tokensConsumed`, charged at the prediction and
    /// not taught to the cost model.
    pub charges_estimated: u64,
    /// Refresh periods that began during the run (until the refresh stops
    /// with it), whether or not a run started.
    pub refresh_runs_due: u64,
    /// Of those, periods with no run started within `max_delay` (skipped,
    /// or the previous run overran); never more than `refresh_runs_due`.
    pub refresh_runs_late: u64,
    /// 99th percentile of refresh start delays (per period), seconds of server time.
    pub refresh_delay_p99_s: f64,
    /// What the refresh spent per minute of server time, to set beside
    /// `refill_per_minute`: a refresh that needs most of the plan has late
    /// periods whenever a run finds more than a period refills (README "Why
    /// a refresh period can be late").
    pub refresh_tokens_per_min: f64,
    /// Lowest balance seen.
    pub min_balance: i64,
    /// Server time elapsed, seconds.
    pub keepa_elapsed_s: f64,
    /// Wall time elapsed, seconds.
    pub wall_elapsed_s: f64,
    /// Alerts: queued with their deals, deduplicated, delivered, retried,
    /// possible duplicates (README "Alerts").
    pub alerts: crate::metrics::AlertCounts,
}

impl Summary {
    /// A few human lines.
    pub fn human(&self) -> String {
        let mut text = self.human_tokens();
        let a = &self.alerts;
        if a.queued + a.delivered + a.retried + a.duplicates > 0 {
            text.push_str(&format!(
                "\nalerts: {} queued, {} delivered, {} failed attempts retried, {} sent again after a crash",
                a.queued, a.delivered, a.retried, a.duplicates
            ));
        }
        text
    }

    fn human_tokens(&self) -> String {
        let by_job: Vec<String> = self
            .tokens_spent
            .iter()
            .map(|(j, st)| format!("{j} {}", st.values().sum::<i64>()))
            .collect();
        format!(
            "stored {} deals ({} products fetched) in {:.0}s ({:.1} h of Keepa time)\n\
             tokens: {} spent ({}), {} per stored deal, {} refilled, utilization {:.1}%\n\
             of {} available ({} at start + refill at {}/min): {} lost at the cap, {} left, \
             {} spent by others; limited by {}\n\
             requests: {}; own 429s: {}; in-body errors: {}; estimated charges: {}; lowest balance {}\n\
             refresh: {} periods due, {} late, p99 delay {:.0}s; it spent {:.1} tokens/min of the plan's {}",
            self.deals_stored,
            self.products_fetched,
            self.wall_elapsed_s,
            self.keepa_elapsed_s / 3600.0,
            self.tokens_spent
                .values()
                .flat_map(|s| s.values())
                .sum::<i64>(),
            by_job.join(", "),
            self.tokens_per_stored_deal
                .map_or("-".to_string(), |t| format!("{t:.1}")),
            self.tokens_refilled,
            self.utilization * 100.0,
            self.tokens_available,
            self.start_balance,
            self.refill_per_minute,
            self.tokens_lost_at_cap,
            self.tokens_left,
            self.tokens_spent_by_others,
            self.limited_by,
            self.requests_by_status
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.own_429,
            self.in_body_errors,
            self.charges_estimated,
            self.min_balance,
            self.refresh_runs_due,
            self.refresh_runs_late,
            self.refresh_delay_p99_s,
            self.refresh_tokens_per_min,
            self.refill_per_minute,
        )
    }
}

/// How a run ended.
#[derive(Debug)]
pub struct RunReport {
    /// The summary.
    pub summary: Summary,
    /// Whether it ended because of the shutdown signal.
    pub interrupted: bool,
    /// A run-ending failure, if any (the summary is still valid).
    pub error: Option<HarvestError>,
}

/// Asks `/token` once before any job starts and hands the answer to the
/// budget. The gate's own syncs treat a failed `/token` as "no news", so
/// without this a key Keepa refuses (400, 402) or a server that cannot be
/// reached would leave every job waiting for a first envelope that never
/// comes: the run would hang instead of failing. A refusal ends the run at
/// once ([`HarvestError::Refused`]); a network or server failure is retried
/// like any request ([`RetryPolicy`]) before it ends the run
/// ([`HarvestError::Network`]). A shutdown signal ends the wait early.
async fn first_token_state(
    sh: &Shared,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), HarvestError> {
    use crate::pipeline::{Attempts, Job, Retry, Stage};
    let mut attempts = Attempts::new(sh.retry, Job::Run, Stage::Token);
    loop {
        let snapshot = match sh.client.send(&Request::token()).await {
            Ok(resp) => resp.snapshot(),
            // /token is always answered; a 429 still carries the state.
            Err(e @ keepa::ApiError::NotEnoughTokens(_)) => e.snapshot(),
            Err(e) => {
                let clock = sh.gate.clock();
                if attempts.failed(e, clock, &sh.metrics, shutdown).await? == Retry::Stopped {
                    return Ok(());
                }
                continue;
            }
        };
        if let Some(s) = snapshot {
            sh.metrics.envelope(s);
            sh.gate
                .observe_confirmed(s)
                .await
                .map_err(|source| HarvestError::Budget {
                    job: Job::Run,
                    source,
                })?;
        }
        return Ok(());
    }
}

/// Runs the harvest until the target, the deadline, the shutdown signal, a
/// run-ending failure, or (with refresh and re-check off) the end of the backfill.
pub async fn run(cfg: RunConfig, mut opts: RunOptions) -> RunReport {
    let wall = Instant::now();
    let clock = opts.clock.clone();
    let start_ms = clock.now_ms();
    let shared = match shared_state(cfg, &mut opts).await {
        Ok(s) => s,
        Err(e) => {
            return RunReport {
                summary: Summary::default(),
                interrupted: false,
                error: Some(e),
            }
        }
    };
    let truth = opts.truth.clone();

    let mut shutdown = opts.shutdown.clone();
    let error: Option<HarvestError> = first_token_state(&shared, &mut shutdown).await.err();
    let target_met = match opts.target_deals {
        Some(t) => opts
            .store
            .count_deals()
            .await
            .map(|n| n >= t)
            .unwrap_or(false),
        None => false,
    };
    let (alerts_stop, alerts_stopping) = watch::channel(false);
    let (alerts, error) = match error {
        None => match spawn_alerts(&shared, alerts_stopping, opts.drain_timeout) {
            Ok(a) => (a, None),
            Err(e) => (None, Some(e)),
        },
        e => (None, e),
    };
    let mut tasks = JoinSet::new();
    if error.is_none() {
        spawn_jobs(&mut tasks, &shared, target_met);
    }
    let deadline = opts.until_ms.map(|u| start_ms.saturating_add(u));
    let (interrupted, error) = supervise(
        tasks,
        &shared,
        Supervision {
            deadline,
            shutdown,
            drain_timeout: opts.drain_timeout,
            error,
        },
    )
    .await;
    // Jobs without a stop left (only refresh, say) end here too.
    shared.request_stop();
    // The alert worker delivers what the jobs queued, then stops.
    let _ = alerts_stop.send(true);
    if let Some(a) = alerts {
        if let Err(e) = a.await {
            tracing::warn!(error = %e, "the alert worker ended abnormally");
        }
    }

    let end_ms = clock.now_ms();
    // The figures run to the end: refill and refresh periods after the
    // last request count too.
    opts.metrics.observe_time(end_ms);
    let m = opts.metrics.snapshot();
    let target_reached = match opts.target_deals {
        Some(t) => opts.store.count_deals().await.is_ok_and(|n| n >= t),
        None => false,
    };
    let server_min = truth
        .as_ref()
        .and_then(|t| t.point())
        .map(|p| p.min_balance);
    let summary = summarize(
        &m,
        server_min,
        Limits {
            backfill_done: m.backfill_done,
            target_reached,
        },
        (start_ms, end_ms),
        wall.elapsed().as_secs_f64(),
    );
    RunReport {
        summary,
        interrupted,
        error,
    }
}

/// What the jobs share: the gate on `opts.clock`, the client, the store,
/// this run's claims in it (on SQLite the database itself, one run per
/// file; on PostgreSQL a connection for advisory locks), and the stop.
/// Takes the ledger out of `opts`.
async fn shared_state(cfg: RunConfig, opts: &mut RunOptions) -> Result<Shared, HarvestError> {
    let locks = opts.store.locks().await?;
    let gate = Gate::new(
        cfg.budget.policy,
        std::mem::take(&mut opts.ledger),
        opts.clock.clone(),
        Some(Box::new(opts.client.clone())),
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let domain = cfg.domain.id();
    Ok(Shared {
        gate,
        client: opts.client.clone(),
        cost: Arc::new(Mutex::new(CostModel::new())),
        store: opts.store.clone(),
        cfg: Arc::new(cfg),
        metrics: opts.metrics.clone(),
        stop: stop_rx,
        stop_tx: Arc::new(stop_tx),
        claims: Arc::new(Claims::new(locks)),
        retry: RetryPolicy::default(),
        domain,
        target_deals: opts.target_deals,
        alert_wake: Default::default(),
    })
}

/// Starts the alert worker beside the jobs when the config has alerts; it
/// stops when `stop` turns true, after delivering what is pending (at
/// most `drain` more).
fn spawn_alerts(
    shared: &Shared,
    stop: watch::Receiver<bool>,
    drain: std::time::Duration,
) -> Result<Option<tokio::task::JoinHandle<()>>, HarvestError> {
    use crate::alerts::{HttpTransport, Worker, WorkerSettings};
    if shared.cfg.alerts.is_empty() {
        return Ok(None);
    }
    let transport = HttpTransport::new().map_err(|e| HarvestError::Alerts(e.to_string()))?;
    let worker = Worker::new(
        shared.store.clone(),
        WorkerSettings::new(shared.cfg.alerts.clone()),
        Arc::new(transport),
        Arc::new(ScaledClock::wall()),
        shared.metrics.clone(),
    );
    let wake = shared.alert_wake.clone();
    Ok(Some(tokio::spawn(worker.run(wake, stop, drain))))
}

/// The jobs the configuration turns on. A met target skips the backfill
/// and the re-check and stops after one refresh run.
fn spawn_jobs(
    tasks: &mut JoinSet<(&'static str, Result<(), HarvestError>)>,
    shared: &Shared,
    target_met: bool,
) {
    let cfg = &shared.cfg;
    if cfg.backfill.enabled && !target_met {
        let sh = shared.clone();
        tasks.spawn(async move { ("backfill", jobs::backfill(sh).await) });
    }
    if cfg.refresh.enabled {
        let sh = shared.clone();
        tasks.spawn(async move { ("refresh", jobs::refresh(sh).await) });
    }
    if cfg.recheck.enabled && !target_met {
        let sh = shared.clone();
        tasks.spawn(async move { ("recheck", jobs::recheck(sh).await) });
    }
    if target_met {
        // Nothing to backfill: one refresh run, then stop.
        let sh = shared.clone();
        tasks.spawn(async move {
            loop {
                if sh.metrics.snapshot().refresh_runs > 0 || !sh.cfg.refresh.enabled {
                    sh.request_stop();
                    return ("target", Ok(()));
                }
                let mut stop = sh.stop.clone();
                tokio::select! {
                    _ = sh.gate.clock().sleep_until(sh.now() + 10_000) => {}
                    _ = stop.wait_for(|s| *s) => return ("target", Ok(())),
                }
            }
        });
    }
}

/// What [`supervise`] watches besides the jobs.
struct Supervision {
    /// `--until`, in server time.
    deadline: Option<i64>,
    /// The caller's stop signal.
    shutdown: watch::Receiver<bool>,
    /// Bound on the drain after a stop, real time.
    drain_timeout: std::time::Duration,
    /// A failure before the jobs started.
    error: Option<HarvestError>,
}

/// Waits for the jobs: the first failure stops the run, `--until` and the
/// shutdown signal stop it, and once stopping, requests still in flight
/// get `drain_timeout` before they are abandoned. Returns whether the
/// signal stopped it and the first failure.
async fn supervise(
    mut tasks: JoinSet<(&'static str, Result<(), HarvestError>)>,
    shared: &Shared,
    sv: Supervision,
) -> (bool, Option<HarvestError>) {
    let Supervision {
        deadline,
        mut shutdown,
        drain_timeout,
        mut error,
    } = sv;
    let clock = shared.gate.clock().clone();
    let mut interrupted = false;
    let mut stop_seen = shared.stop.clone();
    let mut draining = false;
    let mut until_fired = false;
    let drain_deadline = std::cell::Cell::new(None::<tokio::time::Instant>);
    loop {
        if tasks.is_empty() {
            break;
        }
        // `--until` fires once; after that (or once draining) it never wakes.
        let until_at = if draining || until_fired {
            None
        } else {
            deadline
        };
        let until = async {
            match until_at {
                Some(d) => clock.sleep_until(d).await,
                None => std::future::pending::<()>().await,
            }
        };
        let drain_timer = async {
            match drain_deadline.get() {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            joined = tasks.join_next() => {
                match joined {
                    Some(Ok((name, Err(e)))) => {
                        tracing::error!(job = name, error = %e, "job failed; stopping the run");
                        if error.is_none() { error = Some(e); }
                        shared.request_stop();
                    }
                    Some(Ok((name, Ok(())))) => tracing::info!(job = name, "job finished"),
                    Some(Err(e)) => {
                        if error.is_none() { error = Some(HarvestError::Task(e.to_string())); }
                        shared.request_stop();
                    }
                    None => break,
                }
            }
            _ = until => {
                until_fired = true;
                tracing::info!("--until reached; stopping");
                shared.request_stop();
            }
            r = shutdown.wait_for(|s| *s), if !interrupted => {
                if r.is_ok() {
                    interrupted = true;
                    tracing::warn!("interrupted: finishing the requests in flight");
                    shared.request_stop();
                }
            }
            _ = stop_seen.wait_for(|s| *s), if !draining => {
                draining = true;
                drain_deadline.set(Some(tokio::time::Instant::now() + drain_timeout));
            }
            _ = drain_timer => {
                tracing::warn!("in-flight requests did not finish in time; abandoning them");
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
    (interrupted, error)
}

/// What limited the backfill, for [`Summary::limited_by`].
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// The backfill walked the whole feed (this run or before).
    backfill_done: bool,
    /// The store held `--target-deals` deals at the end.
    target_reached: bool,
}

/// The summary from the final metrics (whose token breakdown and refresh
/// figures run to `end_ms`); `server_min`: the server's own lowest balance.
fn summarize(
    m: &MetricsSnapshot,
    server_min: Option<i64>,
    limits: Limits,
    (start_ms, end_ms): (i64, i64),
    wall_s: f64,
) -> Summary {
    let mut tokens_spent: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for ((job, stage), v) in &m.tokens {
        *tokens_spent
            .entry(job.clone())
            .or_default()
            .entry(stage.clone())
            .or_default() += v;
    }
    let spent = m.tokens_total();
    let b = m.token_breakdown.unwrap_or_default();
    let min_balance = match (server_min, m.min_balance) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(0),
    };
    let limited_by = if limits.backfill_done && !limits.target_reached {
        "feed"
    } else {
        "tokens"
    };
    Summary {
        deals_stored: m.deals_stored,
        products_fetched: m.products_fetched,
        tokens_spent,
        tokens_per_stored_deal: (m.deals_stored > 0).then(|| spent as f64 / m.deals_stored as f64),
        tokens_refilled: b.refilled,
        utilization: b.utilization(),
        tokens_available: b.available,
        tokens_lost_at_cap: b.lost_at_cap,
        tokens_left: b.left,
        tokens_spent_by_others: b.spent_by_others,
        start_balance: b.start_balance,
        refill_per_minute: b.refill_per_minute,
        bucket_max: b.bucket_max,
        limited_by: limited_by.into(),
        requests_by_status: m.requests.clone(),
        own_429: m.own_429,
        in_body_errors: m.in_body_errors,
        charges_estimated: m.charges_estimated,
        refresh_runs_due: m.refresh_due,
        refresh_runs_late: m.refresh_late,
        refresh_delay_p99_s: m.refresh_delay_p99_s(),
        refresh_tokens_per_min: per_minute(
            tokens_spent_by(&m.tokens, Job::Refresh.as_str()),
            end_ms - start_ms,
        ),
        min_balance,
        keepa_elapsed_s: (end_ms - start_ms) as f64 / 1000.0,
        wall_elapsed_s: (wall_s * 1000.0).round() / 1000.0,
        alerts: m.alerts,
    }
}

/// Tokens charged to `job`, all stages.
pub(crate) fn tokens_spent_by(tokens: &BTreeMap<(String, String), i64>, job: &str) -> i64 {
    tokens
        .iter()
        .filter(|((j, _), _)| j == job)
        .map(|(_, t)| *t)
        .sum()
}

/// `tokens` per minute of `elapsed_ms`, to two decimals (0 over no time).
fn per_minute(tokens: i64, elapsed_ms: i64) -> f64 {
    if elapsed_ms <= 0 {
        return 0.0;
    }
    (tokens as f64 * 60_000.0 / elapsed_ms as f64 * 100.0).round() / 100.0
}

/// Token counts from the envelopes (real Keepa): [`crate::figures`] as of
/// the newest server time the metrics saw.
#[derive(Debug)]
pub struct EnvelopeTruth {
    metrics: Arc<Metrics>,
}

impl EnvelopeTruth {
    /// Reads the envelopes `metrics` has seen.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        EnvelopeTruth { metrics }
    }
}

impl TokenTruth for EnvelopeTruth {
    fn point(&self) -> Option<TokenPoint> {
        let m = self.metrics.snapshot();
        let b = m.token_breakdown?;
        Some(TokenPoint {
            at_ms: m.now_ms?,
            refilled: b.refilled,
            balance: b.left,
            min_balance: m.min_balance.unwrap_or(b.left),
        })
    }

    fn start(&self) -> Option<TokenPoint> {
        let (first, _) = self.metrics.envelopes();
        let first = first?;
        Some(TokenPoint {
            at_ms: first.timestamp_ms,
            refilled: 0,
            balance: first.tokens_left,
            min_balance: first.tokens_left,
        })
    }
}
