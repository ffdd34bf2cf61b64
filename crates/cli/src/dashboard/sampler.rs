//! `run` records the budget over time for the dashboard: one
//! `budget_samples` row per [`SAMPLE_EVERY`] of wall time at most (so the
//! table grows by at most 17,280 rows a day, whatever the server's clock
//! speed), from the newest envelope its [`Metrics`] hold, and a last one
//! when the run stops. A failed write is a warning: the harvest goes on.

use std::sync::Arc;
use std::time::Duration;

use harvest::metrics::{Metrics, MetricsSnapshot};
use harvest::store::{BudgetSample, Store};
use tokio::sync::watch;

/// The shortest wall time between two samples.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// The sample a snapshot gives: none before the first envelope.
pub(crate) fn sample_of(s: &MetricsSnapshot) -> Option<BudgetSample> {
    Some(BudgetSample {
        at_ms: s.now_ms?,
        tokens_left: s.balance?,
        refill_rate: s.refill_rate?,
        tokens_spent: s.tokens_total(),
    })
}

/// Writes samples until `stop` turns true (or its sender is dropped), then
/// one last sample; a sample is written only when the server time moved.
pub(crate) async fn sample_loop(
    store: Store,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_at = None;
    let mut warned = false;
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        if let Some(sample) = sample_of(&metrics.snapshot()).filter(|s| Some(s.at_ms) != last_at) {
            match store.record_budget_sample(sample).await {
                Ok(()) => last_at = Some(sample.at_ms),
                Err(e) if !warned => {
                    warned = true;
                    tracing::warn!(error = %e, "dashboard: recording a budget sample failed (the harvest goes on)");
                }
                Err(_) => {}
            }
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_sample_before_an_envelope_then_the_newest_one() {
        let m = Metrics::new();
        assert_eq!(sample_of(&m.snapshot()), None);
        m.envelope(keepa::TokenSnapshot {
            timestamp_ms: 60_000,
            tokens_left: 300,
            refill_in_ms: 1_000,
            refill_rate: 20,
        });
        m.request("backfill", "feed", "200", 7);
        assert_eq!(
            sample_of(&m.snapshot()),
            Some(BudgetSample {
                at_ms: 60_000,
                tokens_left: 300,
                refill_rate: 20,
                tokens_spent: 7
            })
        );
    }
}
