//! `run`'s progress: two bars on a terminal (deals, and a token/request
//! line), drawn in [`crate::logging::bars`] so log lines print above them;
//! without a terminal, a log line every 10 s.

use std::sync::Arc;
use std::time::Duration;

use harvest::metrics::{Metrics, MetricsSnapshot};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio::sync::watch;

/// How often the bars are updated.
const BAR_EVERY: Duration = Duration::from_millis(250);
/// How often the progress line is logged without a terminal.
const LINE_EVERY: Duration = Duration::from_secs(10);

/// Shows progress until `stop` turns true; the bars are cleared and
/// removed before it returns.
pub(crate) async fn progress_loop(
    metrics: Arc<Metrics>,
    target: Option<u64>,
    stop: watch::Receiver<bool>,
) {
    let bars = crate::logging::bars();
    if bars.is_hidden() {
        log_lines(&metrics, target, stop).await;
    } else {
        draw_bars(bars, &metrics, target, stop).await;
    }
}

async fn draw_bars(
    mp: &MultiProgress,
    metrics: &Metrics,
    target: Option<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let deals = mp.add(match target {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::new_spinner(),
    });
    let style = if target.is_some() {
        "backfill {bar:30} {pos}/{len} deals  eta {eta}  {msg}"
    } else {
        "backfill {spinner} {pos} deals  {msg}"
    };
    deals.set_style(
        ProgressStyle::with_template(style).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let tokens = mp.add(ProgressBar::new_spinner());
    tokens.set_style(
        ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    loop {
        let s = metrics.snapshot();
        deals.set_position(s.deals_stored);
        deals.set_message(format!(
            "{} pages{}",
            s.backfill_pages,
            if s.backfill_done { ", feed done" } else { "" }
        ));
        tokens.set_message(line(&s));
        tokio::select! {
            _ = tokio::time::sleep(BAR_EVERY) => {}
            _ = stop.wait_for(|v| *v) => break,
        }
    }
    for bar in [deals, tokens] {
        bar.finish_and_clear();
        mp.remove(&bar);
    }
}

async fn log_lines(metrics: &Metrics, target: Option<u64>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(LINE_EVERY) => {}
            _ = stop.wait_for(|v| *v) => break,
        }
        let s = metrics.snapshot();
        tracing::info!(
            deals = s.deals_stored,
            target = target.unwrap_or(0),
            pages = s.backfill_pages,
            "{}",
            line(&s)
        );
    }
}

/// Balance, refill, tokens spent and the run's utilization so far (README
/// "What the figures mean"), requests, 429s and refresh lag.
fn line(s: &MetricsSnapshot) -> String {
    format!(
        "balance {}  refill {}/min  spent {} ({} of {} available)  requests {}  429s {}  refresh lag {}",
        s.balance.map_or("-".into(), |b| b.to_string()),
        s.refill_rate.map_or("-".into(), |b| b.to_string()),
        s.tokens_total(),
        s.token_breakdown
            .map_or("-".into(), |b| format!("{:.1}%", b.utilization() * 100.0)),
        s.token_breakdown
            .map_or("-".into(), |b| b.available.to_string()),
        s.requests_total(),
        s.own_429,
        s.refresh_lag_ms
            .map_or("-".into(), |l| format!("{:.0} min", l as f64 / 60_000.0)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_line_shows_whole_run_utilization() {
        let m = Metrics::new();
        assert!(line(&m.snapshot()).contains("spent 0 (- of - available)"));
        m.envelope(keepa::TokenSnapshot {
            timestamp_ms: 0,
            tokens_left: 1000,
            refill_in_ms: 60_000,
            refill_rate: 20,
        });
        m.request("backfill", "feed", "200", 250);
        m.observe_time(0);
        assert!(line(&m.snapshot()).contains("spent 250 (25.0% of 1000 available)"));
    }
}
