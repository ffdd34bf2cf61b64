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
use crate::pipeline::{Claims, RetryPolicy, Shared};
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

/// Where the summary's token figures come from: the fake server's own
/// counts in the sandbox, the envelopes otherwise.
pub trait TokenTruth: Send + Sync + std::fmt::Debug {
    /// The counts now.
    fn point(&self) -> Option<TokenPoint>;
    /// The counts at the start, if they could not be read then (envelopes).
    fn start(&self) -> Option<TokenPoint> {
        None
    }
}

/// Token counts and metrics when the bulk work ran out.
type WindowEnd = (Option<TokenPoint>, MetricsSnapshot);

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
    /// Ground truth for the summary (`None`: from envelopes).
    pub truth: Option<Arc<dyn TokenTruth>>,
    /// Metrics (shared with progress and the Prometheus endpoint).
    pub metrics: Arc<Metrics>,
    /// Bound on waiting for in-flight requests after a stop, real time.
    pub drain_timeout: std::time::Duration,
}

/// What `run --summary-json` writes: the keys the README documents.
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
    /// Tokens the server refilled while work was pending.
    pub tokens_refilled: i64,
    /// Spent ÷ available while work was pending, where available = balance
    /// at start + refilled − balance at the end of that window (refill lost
    /// at the bucket cap lowers it).
    pub utilization: f64,
    /// Data requests (deal feed, products) by outcome (`200`, `429`, `5xx`,
    /// `timeout`, …); the free `/token` calls are not counted.
    pub requests_by_status: BTreeMap<String, u64>,
    /// 429 answers to this run's requests.
    pub own_429: u64,
    /// Refresh runs that came due.
    pub refresh_runs_due: u64,
    /// Refresh runs that started later than `max_delay` or were skipped.
    pub refresh_runs_late: u64,
    /// 99th percentile of refresh start delays, seconds of server time.
    pub refresh_delay_p99_s: f64,
    /// Lowest balance seen.
    pub min_balance: i64,
    /// Server time elapsed, seconds.
    pub keepa_elapsed_s: f64,
    /// Wall time elapsed, seconds.
    pub wall_elapsed_s: f64,
}

impl Summary {
    /// A few human lines.
    pub fn human(&self) -> String {
        let by_job: Vec<String> = self
            .tokens_spent
            .iter()
            .map(|(j, st)| format!("{j} {}", st.values().sum::<i64>()))
            .collect();
        format!(
            "stored {} deals ({} products fetched) in {:.0}s ({:.1} h of Keepa time)\n\
             tokens: {} spent ({}), {} per stored deal, {} refilled, utilization {:.1}%\n\
             requests: {}; own 429s: {}; lowest balance {}\n\
             refresh: {} runs, {} late, p99 delay {:.0}s",
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
            self.requests_by_status
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.own_429,
            self.min_balance,
            self.refresh_runs_due,
            self.refresh_runs_late,
            self.refresh_delay_p99_s,
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
    let first = truth.as_ref().and_then(|t| t.point());

    // The window "while work was pending" ends when the bulk work runs out.
    let window_end: Arc<Mutex<Option<WindowEnd>>> = Arc::default();

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
    let mut tasks = JoinSet::new();
    if error.is_none() {
        spawn_jobs(&mut tasks, &shared, target_met, &window_end, &truth);
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

    let end_ms = clock.now_ms();
    let m = opts.metrics.snapshot();
    let last = truth.as_ref().and_then(|t| t.point());
    let (w_point, w_metrics) = window_end
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or((last, m.clone()));
    let first = first.or_else(|| truth.as_ref().and_then(|t| t.start()));
    let summary = summarize(
        &m,
        &w_metrics,
        first,
        w_point,
        start_ms,
        end_ms,
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
    })
}

/// The jobs the configuration turns on. A met target skips the backfill
/// and the re-check and stops after one refresh run. The backfill records
/// the token counts when it runs out of work (`window_end`).
fn spawn_jobs(
    tasks: &mut JoinSet<(&'static str, Result<(), HarvestError>)>,
    shared: &Shared,
    target_met: bool,
    window_end: &Arc<Mutex<Option<WindowEnd>>>,
    truth: &Option<Arc<dyn TokenTruth>>,
) {
    let cfg = &shared.cfg;
    if cfg.backfill.enabled && !target_met {
        let sh = shared.clone();
        let we = window_end.clone();
        let tr = truth.clone();
        tasks.spawn(async move {
            let r = jobs::backfill(sh.clone()).await;
            if r.is_ok() && !sh.stopping() {
                let mut w = we.lock().unwrap_or_else(|e| e.into_inner());
                *w = Some((tr.as_ref().and_then(|t| t.point()), sh.metrics.snapshot()));
            }
            ("backfill", r)
        });
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
                if sh.metrics.snapshot().refresh_due > 0 || !sh.cfg.refresh.enabled {
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

fn summarize(
    m: &MetricsSnapshot,
    window: &MetricsSnapshot,
    first: Option<TokenPoint>,
    last: Option<TokenPoint>,
    start_ms: i64,
    end_ms: i64,
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
    let (refilled, utilization, min_balance) = match (first, last) {
        (Some(a), Some(b)) => {
            let refilled = b.refilled - a.refilled;
            let available = a.balance + refilled - b.balance;
            let spent_w = window.tokens_total();
            let u = if available > 0 {
                spent_w as f64 / available as f64
            } else {
                0.0
            };
            (
                refilled,
                u,
                b.min_balance.min(m.min_balance.unwrap_or(i64::MAX)),
            )
        }
        _ => (0, 0.0, m.min_balance.unwrap_or(0)),
    };
    Summary {
        deals_stored: m.deals_stored,
        products_fetched: m.products_fetched,
        tokens_spent,
        tokens_per_stored_deal: (m.deals_stored > 0).then(|| spent as f64 / m.deals_stored as f64),
        tokens_refilled: refilled,
        utilization: (utilization * 10_000.0).round() / 10_000.0,
        requests_by_status: m.requests.clone(),
        own_429: m.own_429,
        refresh_runs_due: m.refresh_due,
        refresh_runs_late: m.refresh_late,
        refresh_delay_p99_s: m.refresh_delay_p99_s(),
        min_balance,
        keepa_elapsed_s: (end_ms - start_ms) as f64 / 1000.0,
        wall_elapsed_s: (wall_s * 1000.0).round() / 1000.0,
    }
}

/// Token figures from the envelopes (real Keepa): refill projected from
/// the first and the newest envelope of the run.
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
        let (first, last) = self.metrics.envelopes();
        let (first, last) = (first?, last?);
        let steps = if last.timestamp_ms >= first.next_refill_at_ms() {
            (last.timestamp_ms - first.next_refill_at_ms()) / 60_000 + 1
        } else {
            0
        };
        Some(TokenPoint {
            at_ms: last.timestamp_ms,
            refilled: steps * last.refill_rate,
            balance: last.tokens_left,
            min_balance: self
                .metrics
                .snapshot()
                .min_balance
                .unwrap_or(last.tokens_left),
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
