//! A [`MetricsSnapshot`] as OpenMetrics text, written by `prometheus-client`
//! (a collector of constant metrics: the run's figures are kept in
//! [`Metrics`](super::Metrics), one definition each, and read at scrape
//! time). Counters get the `_total` suffix from the library, so the names
//! are those README "What the figures mean" lists.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::MetricsSnapshot;

/// The content type of the metrics text (OpenMetrics 1.0.0, which
/// Prometheus asks for and parses).
pub const PROMETHEUS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The text of one scrape.
pub(super) fn render(s: MetricsSnapshot) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(s)));
    let mut out = String::new();
    // Writing into a String cannot fail; a collector error would be ours.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        tracing::warn!(error = %e, "rendering the metrics failed");
    }
    out
}

#[derive(Debug)]
struct Snapshot(MetricsSnapshot);

/// A counter's value: charges are never negative; a negative sum shows as 0.
fn count(v: i64) -> ConstCounter<u64> {
    ConstCounter::new(u64::try_from(v).unwrap_or(0))
}

/// One unlabelled metric.
fn one(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let m = e.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(m)
}

/// One counter with a value per label set.
fn family<L: EncodeLabelSet>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (labels, v) in rows {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        let c = ConstCounter::new;
        one(
            &mut e,
            "keepa_harvest_deals_stored",
            "Deals stored by this run (passed the whole pipeline).",
            c(s.deals_stored),
        )?;
        one(
            &mut e,
            "keepa_harvest_deals_updated",
            "Stored deals updated by this run.",
            c(s.deals_updated),
        )?;
        one(
            &mut e,
            "keepa_harvest_products_fetched",
            "Products fetched from Keepa by this run.",
            c(s.products_fetched),
        )?;
        family(
            &mut e,
            "keepa_harvest_rejected",
            "Deals rejected, by pipeline stage.",
            s.rejected
                .iter()
                .map(|(k, v)| ([("stage", k.as_str())], *v)),
        )?;
        family(
            &mut e,
            "keepa_harvest_tokens_spent",
            "Tokens Keepa charged, by job and stage.",
            s.tokens.iter().map(|((j, st), v)| {
                (
                    [("job", j.as_str()), ("stage", st.as_str())],
                    u64::try_from(*v).unwrap_or(0),
                )
            }),
        )?;
        family(
            &mut e,
            "keepa_harvest_requests",
            "Requests sent to Keepa, by outcome.",
            s.requests
                .iter()
                .map(|(k, v)| ([("status", k.as_str())], *v)),
        )?;
        one(
            &mut e,
            "keepa_harvest_retries",
            "Retries after server errors, broken connections and undecodable bodies.",
            c(s.retries),
        )?;
        one(
            &mut e,
            "keepa_harvest_in_body_errors",
            "2xx answers with an error in the body or without their payload (failed calls).",
            c(s.in_body_errors),
        )?;
        one(
            &mut e,
            "keepa_harvest_charges_estimated",
            "2xx answers without tokensConsumed, charged at the cost prediction.",
            c(s.charges_estimated),
        )?;
        one(
            &mut e,
            "keepa_harvest_own_429",
            "HTTP 429 answers to this run's requests.",
            c(s.own_429),
        )?;
        family(
            &mut e,
            "keepa_harvest_alerts",
            "Alerts by outcome: queued with their deals, deduplicated, delivered, retried, sent twice after a crash.",
            [
                ("queued", s.alerts.queued),
                ("deduplicated", s.alerts.deduplicated),
                ("delivered", s.alerts.delivered),
                ("retried", s.alerts.retried),
                ("duplicates", s.alerts.duplicates),
            ]
            .into_iter()
            .map(|(k, v)| ([("outcome", k)], v)),
        )?;
        if let Some(b) = s.balance {
            one(
                &mut e,
                "keepa_harvest_tokens_left",
                "Balance in the newest envelope.",
                ConstGauge::new(b),
            )?;
        }
        if let Some(r) = s.refill_rate {
            one(
                &mut e,
                "keepa_harvest_refill_rate",
                "Tokens per minute in the newest envelope.",
                ConstGauge::new(r),
            )?;
        }
        one(
            &mut e,
            "keepa_harvest_backfill_pages",
            "Deal-feed pages the backfill has finished.",
            c(s.backfill_pages),
        )?;
        one(
            &mut e,
            "keepa_harvest_refresh_runs",
            "Refresh periods that began (due), whether or not a run started.",
            c(s.refresh_due),
        )?;
        one(
            &mut e,
            "keepa_harvest_refresh_runs_late",
            "Refresh periods with no run started within max_delay (skipped or overrun).",
            c(s.refresh_late),
        )?;
        if let Some(b) = &s.token_breakdown {
            one(
                &mut e,
                "keepa_harvest_tokens_available",
                "Balance at the run's first /token plus the refill that arrived since.",
                count(b.available),
            )?;
            one(
                &mut e,
                "keepa_harvest_tokens_lost_at_cap",
                "Refill the bucket cap threw away during the run.",
                count(b.lost_at_cap),
            )?;
            one(
                &mut e,
                "keepa_harvest_tokens_spent_by_others",
                "Tokens the balance lost beyond this run's charges (another client of the key).",
                ConstGauge::new(b.spent_by_others),
            )?;
            one(
                &mut e,
                "keepa_harvest_utilization_ratio",
                "Tokens this run spent / tokens available over the run.",
                ConstGauge::new(b.utilization()),
            )?;
        }
        if let Some(l) = s.refresh_lag_ms {
            one(
                &mut e,
                "keepa_harvest_refresh_lag_seconds",
                "Age of the newest deal the refresh has handled (server time).",
                ConstGauge::new(l as f64 / 1000.0),
            )?;
        }
        Ok(())
    }
}
