//! What a run has done so far, for progress, the summary and Prometheus.
//!
//! One [`Metrics`] per run, shared by the jobs; [`Metrics::render_prometheus`]
//! writes the text a scrape gets through `prometheus-client` (serving it is
//! the binary's business).
//! Nothing here holds the API key or any URL: labels are job, stage,
//! endpoint and status names only.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::figures::{RefreshBook, TokenAccount, TokenBreakdown};

mod prometheus;
pub use prometheus::PROMETHEUS_CONTENT_TYPE;

/// Counters and gauges of one run. Cheap to share (`Arc`).
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default, Clone)]
struct Inner {
    deals_stored: u64,
    deals_updated: u64,
    products_fetched: u64,
    rejected: BTreeMap<String, u64>,
    tokens: BTreeMap<(String, String), i64>,
    requests: BTreeMap<String, u64>,
    own_429: u64,
    retries: u64,
    in_body_errors: u64,
    charges_estimated: u64,
    balance: Option<i64>,
    min_balance: Option<i64>,
    refill_rate: Option<i64>,
    backfill_pages: u64,
    backfill_done: bool,
    refresh: RefreshBook,
    refresh_lag_ms: Option<i64>,
    store_rows: u64,
    alerts: AlertCounts,
    account: TokenAccount,
    /// Latest server time seen (envelopes, refresh starts, the run's end).
    now_ms: Option<i64>,
}

/// Alert outbox counters of one run (README "Alerts").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AlertCounts {
    /// Outbox rows written with their deals.
    pub queued: u64,
    /// Matches not queued again: the same deal and version was queued before.
    pub deduplicated: u64,
    /// Alerts the receiver accepted (2xx).
    pub delivered: u64,
    /// Failed attempts, each retried after a backoff.
    pub retried: u64,
    /// Alerts sent again after an attempt whose outcome was lost (a crash
    /// mid-send): each may reach the receiver twice, with the same `key`.
    pub duplicates: u64,
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// Deals newly stored (passed the whole pipeline).
    pub deals_stored: u64,
    /// Stored deals updated (already stored, deal changed).
    pub deals_updated: u64,
    /// Products fetched (any stage).
    pub products_fetched: u64,
    /// Rejections by stage.
    pub rejected: BTreeMap<String, u64>,
    /// Tokens charged by `(job, stage)`.
    pub tokens: BTreeMap<(String, String), i64>,
    /// Requests by status (`200`, `429`, `500`, `timeout`, …).
    pub requests: BTreeMap<String, u64>,
    /// 429 answers to our own requests.
    pub own_429: u64,
    /// Retries after 5xx, transport failures and undecodable bodies.
    pub retries: u64,
    /// 2xx answers with an error in the body or without their payload
    /// (each a failed call: waited for or retried, never "no data").
    pub in_body_errors: u64,
    /// 2xx answers without `tokensConsumed`, charged at the prediction.
    pub charges_estimated: u64,
    /// Last balance an envelope showed.
    pub balance: Option<i64>,
    /// Lowest balance an envelope showed.
    pub min_balance: Option<i64>,
    /// Last refill rate an envelope showed.
    pub refill_rate: Option<i64>,
    /// Feed pages the backfill has finished.
    pub backfill_pages: u64,
    /// Whether the backfill has walked the whole feed.
    pub backfill_done: bool,
    /// Refresh periods that began (README "What the figures mean").
    pub refresh_due: u64,
    /// Of those, periods with no run started within `max_delay`.
    pub refresh_late: u64,
    /// Refresh runs started or skipped by the budget (not periods).
    pub refresh_runs: u64,
    /// Start delay of every refresh period served or skipped, server ms.
    pub refresh_delays_ms: Vec<i64>,
    /// Age of the newest deal the refresh has stored, at its last run (server ms).
    pub refresh_lag_ms: Option<i64>,
    /// Rows written to the store (all tables).
    pub store_rows: u64,
    /// Alert outbox traffic of this run.
    pub alerts: AlertCounts,
    /// Where the tokens went so far (`None` before the first envelope).
    pub token_breakdown: Option<TokenBreakdown>,
    /// Server time the snapshot is as of.
    pub now_ms: Option<i64>,
}

impl MetricsSnapshot {
    /// Tokens charged, all jobs.
    pub fn tokens_total(&self) -> i64 {
        self.tokens.values().sum()
    }

    /// Requests sent, all statuses.
    pub fn requests_total(&self) -> u64 {
        self.requests.values().sum()
    }

    /// The 99th percentile of refresh start delays, seconds (0 if none).
    pub fn refresh_delay_p99_s(&self) -> f64 {
        if self.refresh_delays_ms.is_empty() {
            return 0.0;
        }
        let mut d = self.refresh_delays_ms.clone();
        d.sort_unstable();
        let idx = ((d.len() as f64) * 0.99).ceil() as usize;
        d[idx.clamp(1, d.len()) - 1].max(0) as f64 / 1000.0
    }
}

impl Metrics {
    /// A fresh set of counters.
    pub fn new() -> Arc<Self> {
        Arc::new(Metrics::default())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request finished with `status`, charging `tokens` to `(job, stage)`.
    pub fn request(&self, job: &str, stage: &str, status: &str, tokens: i64) {
        let mut m = self.lock();
        *m.requests.entry(status.to_string()).or_default() += 1;
        if status == "429" {
            m.own_429 += 1;
        }
        *m.tokens
            .entry((job.to_string(), stage.to_string()))
            .or_default() += tokens;
        m.account.charged(tokens);
    }

    /// A 2xx answer carried an error in its body or lacked its payload.
    pub fn in_body_error(&self) {
        self.lock().in_body_errors += 1;
    }

    /// A 2xx answer had no `tokensConsumed`: its charge is an estimate.
    pub fn charge_estimated(&self) {
        self.lock().charges_estimated += 1;
    }

    /// A failed attempt will be retried.
    pub fn retry(&self) {
        self.lock().retries += 1;
    }

    /// An envelope arrived (its charge is reported by [`Self::request`]).
    pub fn envelope(&self, s: keepa::TokenSnapshot) {
        let mut m = self.lock();
        m.account.envelope(s);
        drop(m);
        self.observe_time(s.timestamp_ms);
        self.balance(s.tokens_left, s.refill_rate);
    }

    /// The first and the newest envelope seen.
    pub fn envelopes(&self) -> (Option<keepa::TokenSnapshot>, Option<keepa::TokenSnapshot>) {
        let m = self.lock();
        (m.account.start(), m.account.last())
    }

    /// Server time is at least `now_ms`: the figures are as of then (the
    /// run calls this at its end).
    pub fn observe_time(&self, now_ms: i64) {
        let mut m = self.lock();
        m.now_ms = Some(m.now_ms.map_or(now_ms, |n| n.max(now_ms)));
    }

    /// An envelope showed this balance and refill rate.
    pub fn balance(&self, balance: i64, rate: i64) {
        let mut m = self.lock();
        m.balance = Some(balance);
        m.min_balance = Some(m.min_balance.map_or(balance, |b| b.min(balance)));
        m.refill_rate = Some(rate);
    }

    /// A batch was committed.
    pub fn committed(&self, new_deals: u64, updated: u64, products: u64, rows: u64) {
        let mut m = self.lock();
        m.deals_stored += new_deals;
        m.deals_updated += updated;
        m.products_fetched += products;
        m.store_rows += rows;
    }

    /// A commit queued `queued` alerts and found `deduplicated` already queued.
    pub fn alerts_committed(&self, queued: u64, deduplicated: u64) {
        let mut m = self.lock();
        m.alerts.queued += queued;
        m.alerts.deduplicated += deduplicated;
    }

    /// An alert reached its receiver.
    pub fn alert_delivered(&self) {
        self.lock().alerts.delivered += 1;
    }

    /// An alert's attempt failed; it will be retried.
    pub fn alert_retried(&self) {
        self.lock().alerts.retried += 1;
    }

    /// `n` alerts are sent again after an attempt whose outcome was lost.
    pub fn alert_duplicates(&self, n: u64) {
        self.lock().alerts.duplicates += n;
    }

    /// `n` deals rejected at `stage`.
    pub fn rejected(&self, stage: &str, n: u64) {
        if n > 0 {
            *self.lock().rejected.entry(stage.to_string()).or_default() += n;
        }
    }

    /// The backfill finished a page (and perhaps the feed).
    pub fn backfill_page(&self, done: bool) {
        let mut m = self.lock();
        m.backfill_pages += 1;
        m.backfill_done |= done;
    }

    /// The backfill has nothing left to do.
    pub fn backfill_finished(&self) {
        self.lock().backfill_done = true;
    }

    /// The refresh's periods begin at `first_due`, then every `period_ms`;
    /// one is late without a run started within `max_delay_ms`.
    pub fn refresh_schedule(&self, first_due: i64, period_ms: i64, max_delay_ms: i64) {
        self.lock()
            .refresh
            .schedule(first_due, period_ms, max_delay_ms);
        self.observe_time(first_due);
    }

    /// A refresh run started at `now_ms` (`skipped`: the budget dropped it).
    pub fn refresh_run(&self, now_ms: i64, skipped: bool) {
        self.lock().refresh.run_started(now_ms, skipped);
        self.observe_time(now_ms);
    }

    /// The refresh job ended at `now_ms` (the run is stopping): periods
    /// beginning later are not due.
    pub fn refresh_ended(&self, now_ms: i64) {
        self.lock().refresh.end(now_ms);
    }

    /// The refresh's newest stored deal is `lag_ms` old.
    pub fn refresh_lag(&self, lag_ms: i64) {
        self.lock().refresh_lag_ms = Some(lag_ms.max(0));
    }

    /// A copy of everything.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let m = self.lock().clone();
        let now = m.now_ms.unwrap_or(i64::MIN);
        let refresh = m.refresh.at(now);
        MetricsSnapshot {
            deals_stored: m.deals_stored,
            deals_updated: m.deals_updated,
            products_fetched: m.products_fetched,
            rejected: m.rejected,
            tokens: m.tokens,
            requests: m.requests,
            own_429: m.own_429,
            retries: m.retries,
            in_body_errors: m.in_body_errors,
            charges_estimated: m.charges_estimated,
            balance: m.balance,
            min_balance: m.min_balance,
            refill_rate: m.refill_rate,
            backfill_pages: m.backfill_pages,
            backfill_done: m.backfill_done,
            refresh_due: refresh.due,
            refresh_late: refresh.late,
            refresh_runs: m.refresh.runs(),
            refresh_delays_ms: m.refresh.delays_ms().to_vec(),
            refresh_lag_ms: m.refresh_lag_ms,
            store_rows: m.store_rows,
            alerts: m.alerts,
            token_breakdown: m.now_ms.and_then(|n| m.account.breakdown(n)),
            now_ms: m.now_ms,
        }
    }

    /// The OpenMetrics text a scrape gets (content type
    /// [`PROMETHEUS_CONTENT_TYPE`]), rendered by `prometheus-client` from
    /// one [`snapshot`](Self::snapshot).
    pub fn render_prometheus(&self) -> String {
        prometheus::render(self.snapshot())
    }
}

/// Reads a metrics address: `HOST:PORT` (`127.0.0.1:9100`, `[::1]:9100`,
/// `0.0.0.0:9100` to expose it on purpose), or a bare port (`9100`,
/// `:9100`), which binds the loopback interface only: the endpoint is
/// reachable from other machines only when an address says so.
///
/// ```
/// use harvest::metrics::parse_addr;
/// assert_eq!(parse_addr("9100").unwrap().to_string(), "127.0.0.1:9100");
/// assert_eq!(parse_addr(":0").unwrap().to_string(), "127.0.0.1:0");
/// assert_eq!(parse_addr("[::1]:9100").unwrap().to_string(), "[::1]:9100");
/// assert!(parse_addr("localhost").is_err());
/// ```
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    let port = t.strip_prefix(':').unwrap_or(t);
    if let Ok(port) = port.parse::<u16>() {
        return Ok(SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)));
    }
    t.parse::<SocketAddr>().map_err(|_| {
        format!("{text:?} is not an address like \"127.0.0.1:9100\" or a port like \"9100\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_labels_and_no_secrets() {
        let m = Metrics::new();
        m.request("backfill", "stats", "200", 12);
        m.request("refresh", "feed", "429", 0);
        m.in_body_error();
        m.charge_estimated();
        m.charge_estimated();
        let text = m.render_prometheus();
        assert!(text.contains("keepa_harvest_in_body_errors_total 1"));
        assert!(text.contains("keepa_harvest_charges_estimated_total 2"));
        assert!(
            text.contains("keepa_harvest_tokens_spent_total{job=\"backfill\",stage=\"stats\"} 12")
        );
        assert!(text.contains("keepa_harvest_own_429_total 1"));
    }

    #[test]
    fn prometheus_has_the_whole_run_figures() {
        let m = Metrics::new();
        m.envelope(keepa::TokenSnapshot {
            timestamp_ms: 0,
            tokens_left: 1200,
            refill_in_ms: 60_000,
            refill_rate: 20,
        });
        m.refresh_schedule(0, 300_000, 60_000);
        m.refresh_run(0, false);
        // An hour later, nothing spent, the refresh never ran again.
        m.observe_time(3_600_000);
        let text = m.render_prometheus();
        for line in [
            "keepa_harvest_tokens_available_total 2400",
            "keepa_harvest_tokens_lost_at_cap_total 1200",
            "keepa_harvest_tokens_spent_by_others 0",
            "keepa_harvest_utilization_ratio 0.0",
            "keepa_harvest_refresh_runs_total 13",
            "keepa_harvest_refresh_runs_late_total 11",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn p99_of_delays() {
        let m = Metrics::new();
        // One period every 1000 s; period d starts d s late.
        m.refresh_schedule(0, 1_000_000, 1_000_000);
        for d in 0..100 {
            m.refresh_run(d * 1_000_000 + d * 1000, false);
        }
        assert_eq!(m.snapshot().refresh_delay_p99_s(), 98.0);
    }
}
