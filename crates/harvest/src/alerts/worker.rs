//! The delivery worker: claims due outbox rows, sends them, records the
//! outcome. Time through [`keepa::clock::Clock`] (wall time in a run), so
//! tests move it by hand.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use keepa::clock::Clock;
use serde_json::Value;
use tokio::sync::{watch, Notify};

use super::payload::{body, sample};
use crate::config::{AlertConfig, WebhookUrl};
use crate::metrics::Metrics;
use crate::store::{Backend, Store, StoreError};

/// First retry delay; doubled per failed attempt up to [`MAX_BACKOFF_MS`].
pub const FIRST_BACKOFF_MS: i64 = 2_000;
/// The longest wait between two attempts.
pub const MAX_BACKOFF_MS: i64 = 3_600_000;

/// The wait after the `attempts`-th failed attempt (1-based): 2 s, 4 s, …,
/// at most an hour.
pub fn backoff_ms(attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(20);
    FIRST_BACKOFF_MS
        .saturating_mul(1_i64 << doublings)
        .min(MAX_BACKOFF_MS)
}

/// Why a send failed. Holds no URL (reqwest's errors are stripped of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The receiver answered with a non-2xx status.
    #[error("HTTP {status}{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Status {
        /// The status code.
        status: u16,
        /// The start of the answer's body.
        detail: String,
        /// `Retry-After` in seconds, when the receiver sent one.
        retry_after_s: Option<u64>,
    },
    /// No answer: connection, TLS or timeout.
    #[error("{0}")]
    Transport(String),
}

/// A boxed future of one send.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// How a body reaches a webhook (HTTP in a run; a recorder in tests).
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// POSTs `body` as JSON to `url`.
    fn post<'a>(&'a self, url: &'a WebhookUrl, body: &'a Value) -> SendFuture<'a>;
}

/// POSTs with reqwest (rustls), a 10 s timeout, no redirects.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    http: reqwest::Client,
}

impl HttpTransport {
    /// A client with a 10 s timeout and no redirects.
    ///
    /// # Errors
    /// When the TLS stack cannot be set up (the message holds no URL).
    pub fn new() -> Result<HttpTransport, SendError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "keepa-harvest/",
                env!("CARGO_PKG_VERSION"),
                " alerts"
            ))
            .build()
            .map_err(|e| SendError::Transport(chain(&e.without_url())))?;
        Ok(HttpTransport { http })
    }
}

/// An error and its sources, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

impl Transport for HttpTransport {
    fn post<'a>(&'a self, url: &'a WebhookUrl, body: &'a Value) -> SendFuture<'a> {
        Box::pin(async move {
            let resp = self
                .http
                .post(url.expose().clone())
                .json(body)
                .send()
                .await
                .map_err(|e| SendError::Transport(chain(&e.without_url())))?;
            let status = resp.status();
            if status.is_success() {
                return Ok(());
            }
            let retry_after_s = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            let text = resp.text().await.unwrap_or_default();
            Err(SendError::Status {
                status: status.as_u16(),
                detail: text.chars().filter(|c| !c.is_control()).take(200).collect(),
                retry_after_s,
            })
        })
    }
}

/// What a [`Worker`] needs besides its store.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The configured alerts (rows of other names wait untouched).
    pub alerts: Vec<AlertConfig>,
    /// How long a claim without an outcome holds before another worker
    /// takes the row over (PostgreSQL; on SQLite one run owns the file and
    /// takes over every claim at start). Longer than a send's timeout.
    pub lease_ms: i64,
    /// Rows claimed per round.
    pub batch: u32,
    /// How often pending rows are looked for without a wake-up.
    pub poll: Duration,
}

impl WorkerSettings {
    /// A 60 s lease, 50 rows a round, a look every 250 ms.
    pub fn new(alerts: Vec<AlertConfig>) -> Self {
        WorkerSettings {
            alerts,
            lease_ms: 60_000,
            batch: 50,
            poll: Duration::from_millis(250),
        }
    }
}

/// What one [`Worker::round`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Rows claimed.
    pub claimed: u64,
    /// Delivered.
    pub delivered: u64,
    /// Failed, retried later.
    pub failed: u64,
}

/// Sends the outbox's pending rows of the configured alerts.
#[derive(Debug, Clone)]
pub struct Worker {
    store: Store,
    settings: Arc<WorkerSettings>,
    names: Arc<Vec<String>>,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
}

impl Worker {
    /// A worker on `store`, sending through `transport`, timed by `clock`.
    pub fn new(
        store: Store,
        settings: WorkerSettings,
        transport: Arc<dyn Transport>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Worker {
        let names = settings.alerts.iter().map(|a| a.name.clone()).collect();
        Worker {
            store,
            settings: Arc::new(settings),
            names: Arc::new(names),
            transport,
            clock,
            metrics,
        }
    }

    /// Releases the claims a crashed sender left (SQLite: all of them,
    /// this run owns the file; PostgreSQL: those older than the lease) and
    /// counts them as possible duplicates.
    pub async fn recover(&self) -> Result<u64, StoreError> {
        let now = self.clock.now_ms();
        let stale = match self.store.backend() {
            Backend::Sqlite => now,
            Backend::Postgres => now.saturating_sub(self.settings.lease_ms),
        };
        let n = self.store.alerts_release_abandoned(stale).await?;
        if n > 0 {
            tracing::warn!(n, "alerts whose send outcome was lost are sent again");
            self.metrics.alert_duplicates(n);
        }
        Ok(n)
    }

    /// Claims the due rows (up to the batch) and sends each once.
    pub async fn round(&self) -> Result<Round, StoreError> {
        let now = self.clock.now_ms();
        let stale = now.saturating_sub(self.settings.lease_ms);
        let rows = self
            .store
            .alerts_claim(&self.names, now, stale, self.settings.batch)
            .await?;
        let mut r = Round {
            claimed: rows.len() as u64,
            ..Round::default()
        };
        if !rows.is_empty() {
            let oldest_ms = now.saturating_sub(rows[0].created_ms);
            tracing::debug!(claimed = rows.len(), oldest_ms, "alerts claimed");
        }
        for row in rows {
            if row.taken_over {
                self.metrics.alert_duplicates(1);
            }
            let Some(alert) = self.settings.alerts.iter().find(|a| a.name == row.alert) else {
                continue;
            };
            let payload: Value = serde_json::from_str(&row.payload).unwrap_or(Value::Null);
            let outcome = self
                .transport
                .post(&alert.url, &body(alert.format, &payload))
                .await;
            let now = self.clock.now_ms();
            match outcome {
                Ok(()) => {
                    self.store.alerts_delivered(row.id, now).await?;
                    self.metrics.alert_delivered();
                    r.delivered += 1;
                }
                Err(e) => {
                    let attempts =
                        u32::try_from(row.attempts.saturating_add(1)).unwrap_or(u32::MAX);
                    let mut wait = backoff_ms(attempts);
                    if let SendError::Status {
                        retry_after_s: Some(s),
                        ..
                    } = &e
                    {
                        let asked = i64::try_from(*s).unwrap_or(i64::MAX).saturating_mul(1000);
                        wait = wait.max(asked.min(MAX_BACKOFF_MS));
                    }
                    tracing::warn!(alert = %row.alert, kind = %row.kind, attempts, error = %e, retry_in_ms = wait, "alert not delivered");
                    self.store
                        .alerts_failed(row.id, &e.to_string(), now.saturating_add(wait))
                        .await?;
                    self.metrics.alert_retried();
                    r.failed += 1;
                }
            }
        }
        Ok(r)
    }

    /// Runs until `stop` turns true, then delivers what is pending for at
    /// most `drain` more (real time). Woken by `wake` when a commit queues
    /// alerts, else every `poll`. Store errors are logged and retried.
    pub async fn run(self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>, drain: Duration) {
        if let Err(e) = self.recover().await {
            tracing::warn!(error = %e, "alert outbox: could not release abandoned claims");
        }
        let mut drain_until: Option<tokio::time::Instant> = None;
        loop {
            match self.round().await {
                Ok(r) if r.claimed >= u64::from(self.settings.batch) => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "alert outbox: round failed"),
            }
            if drain_until.is_none() && *stop.borrow() {
                drain_until = Some(tokio::time::Instant::now() + drain);
            }
            if let Some(until) = drain_until {
                let pending = self.store.alerts_pending(&self.names).await.unwrap_or(1);
                if pending == 0 || tokio::time::Instant::now() >= until {
                    if pending > 0 {
                        tracing::warn!(
                            pending,
                            "alerts left pending at the end of the run; the next run sends them"
                        );
                    }
                    return;
                }
            }
            let poll = tokio::time::sleep(self.settings.poll);
            tokio::select! {
                _ = wake.notified() => {}
                _ = poll => {}
                _ = stop.wait_for(|s| *s), if drain_until.is_none() => {}
            }
        }
    }
}

/// Sends a sample alert to each of `alerts`; one result per alert, in order.
pub async fn send_test(
    alerts: &[AlertConfig],
    transport: &dyn Transport,
) -> Vec<(String, Result<(), SendError>)> {
    let mut out = Vec::new();
    for a in alerts {
        let r = transport.post(&a.url, &body(a.format, &sample(a))).await;
        out.push((a.name.clone(), r));
    }
    out
}

#[cfg(test)]
mod tests;
