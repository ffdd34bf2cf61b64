//! `keepa-harvest status`: what is stored, where each job stands, tokens
//! used, and an ETA when the run's target is known. Reads only.

use std::io::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;
use harvest::store::{StatusReport, Store, StoreError};

use crate::context::{CommandFlags, Context};
use crate::exit::usage;

/// Flags of `status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// Database: a SQLite path or a postgres:// URL [default: keepa-harvest.db]
    #[arg(long, value_name = "PATH-or-URL")]
    db: Option<String>,
    /// The run's target, for the ETA [default: the config's backfill.target_deals]
    #[arg(long, value_name = "N")]
    target_deals: Option<u64>,
}

impl StatusArgs {
    pub(crate) async fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let plan = ctx.plan(CommandFlags {
            db: self.db.clone(),
            target_deals: self.target_deals,
            ..CommandFlags::default()
        })?;
        let store = open_existing(&plan.db).await?;
        let wall = keepa::clock::wall_unix_ms();
        let mut report = store.status(wall).await.context("reading the status")?;
        // The ledger's times are the harvest's clock (a sandbox's is not the
        // wall clock): windows end at the newest request, so "last hour"
        // means the last hour of work, for live and stopped runs alike.
        if let Some(latest) = report.latest_request_ms.filter(|&l| l != wall) {
            report = store.status(latest).await.context("reading the status")?;
        }
        if let Some(target) = plan.target_deals {
            report.set_target(target);
        }
        store.close().await;
        let mut out = std::io::stdout().lock();
        let written = if ctx.json {
            serde_json::to_writer_pretty(&mut out, &report)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
        } else {
            out.write_all(render(store.display_name(), &report, wall).as_bytes())
        };
        match written.and_then(|()| out.flush()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(anyhow::Error::new(e).context("writing to stdout"))
            }
            _ => Ok(()),
        }
    }
}

/// The human-readable report.
fn render(db: &str, r: &StatusReport, wall_ms: i64) -> String {
    let mut s = String::new();
    let mut line = |text: String| {
        s.push_str(&text);
        s.push('\n');
    };
    line(format!("database        {db}"));
    line(format!(
        "stored          {} deals, {} products, {} active rejections",
        r.deals, r.products, r.rejections_active
    ));
    line(format!(
        "new deals       {} in the last hour, {} in the last day",
        r.deals_last_hour, r.deals_last_day
    ));
    if r.checkpoints.is_empty() {
        line("jobs            no checkpoint yet".into());
    }
    for (i, (job, value, at)) in r.checkpoints.iter().enumerate() {
        let label = if i == 0 { "jobs" } else { "" };
        line(format!("{label:<15} {job}: {value} (at {})", time(*at)));
    }
    let by_job: Vec<String> = r
        .tokens_by_job
        .iter()
        .map(|(job, n)| format!("{job} {n}"))
        .collect();
    line(format!(
        "tokens          {} in the last hour, {} in the last day, {} in total{}",
        r.tokens_last_hour,
        r.tokens_last_day,
        r.tokens_total,
        if by_job.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_job.join(", "))
        }
    ));
    line(match r.tokens_per_stored_deal {
        Some(t) => format!("per stored deal {t:.2} tokens"),
        None => "per stored deal - (no deal stored yet)".into(),
    });
    let statuses: Vec<String> = r
        .requests_by_status
        .iter()
        .map(|(st, n)| format!("{st} {n}"))
        .collect();
    line(format!(
        "requests        {}",
        if statuses.is_empty() {
            "none yet".to_string()
        } else {
            statuses.join(", ")
        }
    ));
    if let Some(latest) = r.latest_request_ms {
        let apart = wall_ms.saturating_sub(latest) / 1000;
        let how = match apart {
            a if a.unsigned_abs() < 60 => "now".to_string(),
            a if a > 0 => format!("{} before this machine's clock", rough(a)),
            a => format!(
                "{} after this machine's clock (a sandbox's fast clock)",
                rough(a)
            ),
        };
        line(format!(
            "newest request  {} ({how}); \"last hour/day\" end there",
            time(latest)
        ));
    }
    line(match (r.target_deals, r.eta_ms) {
        (None, _) => {
            "eta             unknown: the run's target is not known (pass --target-deals N)".into()
        }
        (Some(t), Some(0)) => format!("eta             target of {t} deals reached"),
        (Some(t), Some(ms)) => format!(
            "eta             {} to {t} deals at the recent rate (the harvest's clock)",
            rough((ms / 1000).max(1))
        ),
        (Some(t), None) => {
            format!("eta             unknown: no deal stored in the last day (target {t})")
        }
    });
    s
}

/// A Unix-ms time as RFC 3339 (seconds); as plain milliseconds outside
/// what RFC 3339 can write (before 1970, after 9999: a sandbox's clock may
/// be anywhere, and humantime's `Display` fails past 9999, which made
/// `to_string` panic).
fn time(ms: i64) -> String {
    const YEAR_10000_MS: u64 = 253_402_300_800_000;
    match u64::try_from(ms) {
        Ok(t) if t < YEAR_10000_MS => {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(t)).to_string()
        }
        _ => ms.to_string(),
    }
}

/// Opens an existing database, never creating one (a typo must not yield
/// a silently empty database). Missing, corrupt, too new or unreachable is
/// bad input (exit 2), the message naming the database (password removed).
pub(crate) async fn open_existing(db: &str) -> anyhow::Result<Store> {
    match Store::open_existing(db).await {
        Ok(store) => Ok(store),
        Err(
            e @ (StoreError::Missing { .. }
            | StoreError::Corrupt { .. }
            | StoreError::TooNew { .. }
            | StoreError::Connect { .. }
            | StoreError::Create { .. }),
        ) => Err(usage(e.to_string())),
        Err(e) => Err(e).with_context(|| format!("opening {}", harvest::store::redact(db))),
    }
}

/// A duration to the nearest minute (day past two days), e.g. `3h 12m`.
fn rough(secs: i64) -> String {
    let secs = secs.unsigned_abs();
    if secs >= 2 * 86_400 {
        return format!("{} days", (secs + 43_200) / 86_400);
    }
    let rounded = if secs < 60 {
        secs
    } else {
        (secs + 30) / 60 * 60
    };
    humantime::format_duration(Duration::from_secs(rounded)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a stored time past the year 9999 (a sandbox run with a
    /// huge --sandbox-time-scale) panicked `status` in `to_string`.
    #[test]
    fn time_past_year_9999_is_shown_as_ms_not_a_panic() {
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(time(253_402_300_799_000), "9999-12-31T23:59:59Z");
        assert_eq!(time(253_402_300_800_000), "253402300800000");
        assert_eq!(time(i64::MAX), i64::MAX.to_string());
        assert_eq!(time(-5), "-5");
        let r = StatusReport {
            checkpoints: vec![("backfill".into(), serde_json::json!({"page": 3}), i64::MAX)],
            latest_request_ms: Some(i64::MAX),
            target_deals: Some(10),
            eta_ms: Some(i64::MAX),
            ..StatusReport::default()
        };
        let text = render("h.db", &r, i64::MIN);
        assert!(text.contains(&format!("(at {})", i64::MAX)), "{text}");
        assert!(text.contains("after this machine's clock"), "{text}");
    }
}
