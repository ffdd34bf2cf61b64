//! The human-readable `status` report: counts, where each job stands in
//! words (read from the checkpoint shapes `harvest::jobs` writes), tokens,
//! requests and the ETA. Times are UTC, with their age relative to the
//! report's `now_ms`.

use std::time::{Duration, UNIX_EPOCH};

use harvest::store::StatusReport;
use keepa::request::{DEALS_PER_PAGE, MAX_DEAL_PAGE};
use serde_json::Value;
use sim::estimate::thousands;

/// Pages the deal feed can be read to: Keepa pages through at most
/// [`FEED_CAP_DEALS`] deals.
const FEED_CAP_PAGES: u64 = MAX_DEAL_PAGE as u64 + 1;
/// Most deals paging reaches.
const FEED_CAP_DEALS: u64 = 10_000;

/// The report as text, one labelled line per fact; `wall_ms` is this
/// machine's clock (the newest request is placed relative to it).
pub(super) fn render(db: &str, r: &StatusReport, wall_ms: i64) -> String {
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
    let jobs = job_lines(r, wall_ms);
    if jobs.is_empty() {
        line("jobs            no checkpoint yet".into());
    }
    for (i, text) in jobs.into_iter().enumerate() {
        let label = if i == 0 { "jobs" } else { "" };
        line(format!("{label:<15} {text}"));
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
    line(eta(r));
    for text in NOT_IN_THE_DATABASE {
        line(text.into());
    }
    s
}

/// What `status` cannot tell, and where to read it instead (README "What
/// the figures mean"): the database keeps each request's charge and the
/// balance after it, not the plan's refill rate or the refresh's schedule.
pub(super) const NOT_IN_THE_DATABASE: [&str; 2] = [
    "utilization     not in the database (it keeps charges and balances, not the \
     refill): see run's summary or /metrics",
    "refresh due     not in the database (it keeps no refresh schedule): see run's \
     summary (refresh_runs_due, refresh_runs_late) or /metrics",
];

/// The ETA line.
fn eta(r: &StatusReport) -> String {
    match (r.target_deals, r.eta_ms) {
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
    }
}

/// One line per job: each checkpoint in words (and when it was saved,
/// which the store records on this machine's clock, `wall_ms`), then the
/// jobs that spent tokens but keep no checkpoint. The harvest's jobs
/// first, in pipeline order, then any other name.
pub(crate) fn job_lines(r: &StatusReport, wall_ms: i64) -> Vec<String> {
    let mut jobs: Vec<(&str, String)> = r
        .checkpoints
        .iter()
        .map(|(job, value, at)| {
            let saved = format!("saved {}", when(*at, wall_ms));
            (
                job.as_str(),
                format!("{}; {saved}", position(job, value, r.now_ms)),
            )
        })
        .collect();
    for (job, tokens) in &r.tokens_by_job {
        if !jobs.iter().any(|(j, _)| j == job) {
            jobs.push((job.as_str(), no_checkpoint(job, *tokens)));
        }
    }
    let rank = |job: &str| {
        ["backfill", "refresh", "recheck"]
            .iter()
            .position(|k| *k == job)
            .unwrap_or(usize::MAX)
    };
    jobs.sort_by(|a, b| rank(a.0).cmp(&rank(b.0)).then(a.0.cmp(b.0)));
    jobs.into_iter()
        .map(|(job, text)| format!("{job}: {text}"))
        .collect()
}

/// Where `job` stands according to its checkpoint `value`; a shape this
/// version does not know is shown as it is stored.
fn position(job: &str, value: &Value, now_ms: i64) -> String {
    let known = match job {
        "backfill" => backfill_position(value),
        "refresh" => refresh_position(value, now_ms),
        "sandbox" => sandbox_settings(value),
        _ => None,
    };
    known.unwrap_or_else(|| format!("checkpoint {value} (a shape this version does not read)"))
}

/// `{"page": n, "done": bool, "walk": w}` (`done` absent in older
/// databases, `walk` on the first walk): the lowest page not read yet, or
/// the feed finished `n` pages in; walks after the first are named.
fn backfill_position(value: &Value) -> Option<String> {
    let fields = value.as_object()?;
    if fields
        .keys()
        .any(|k| k != "page" && k != "done" && k != "walk")
    {
        return None;
    }
    let text = backfill_page_position(fields)?;
    Some(match fields.get("walk") {
        None => text,
        Some(w) => format!("walk {}: {text}", w.as_u64()?),
    })
}

fn backfill_page_position(fields: &serde_json::Map<String, Value>) -> Option<String> {
    let page = fields.get("page")?.as_u64()?;
    let done = match fields.get("done") {
        None => false,
        Some(d) => d.as_bool()?,
    };
    let deals = page
        .saturating_mul(u64::from(DEALS_PER_PAGE))
        .min(FEED_CAP_DEALS);
    Some(if !done {
        format!(
            "page {page} of at most {FEED_CAP_PAGES} ({} of at most {} deals read)",
            thousands(deals),
            thousands(FEED_CAP_DEALS)
        )
    } else if page >= FEED_CAP_PAGES {
        format!(
            "done (read to Keepa's paging cap: {FEED_CAP_PAGES} pages, {} deals)",
            thousands(FEED_CAP_DEALS)
        )
    } else {
        format!(
            "done after {page} {} (the feed, or backfill.max_pages, ended there)",
            if page == 1 { "page" } else { "pages" }
        )
    })
}

/// `{"watermark_ms": t}`: the newest deal time the refresh has handled
/// (the harvest's clock, like the report's `now_ms`).
fn refresh_position(value: &Value, now_ms: i64) -> Option<String> {
    let fields = value.as_object()?;
    if fields.len() != 1 {
        return None;
    }
    match fields.get("watermark_ms")? {
        Value::Null => Some("no watermark yet".into()),
        w => Some(format!("watermark {}", when(w.as_i64()?, now_ms))),
    }
}

/// `run --sandbox`'s recorded settings (not a job: the fake server's seed,
/// plan and feed, which a resumed sandbox run reuses).
fn sandbox_settings(value: &Value) -> Option<String> {
    let f = value.as_object()?;
    let seed = f.get("seed")?.as_u64()?;
    let rate = f.get("refill_per_minute")?.as_i64()?;
    let backlog = f.get("initial_deals")?.as_u64()?;
    let per_hour = f.get("deals_per_hour")?.as_f64()?;
    let hours = f.get("backlog_hours")?.as_f64()?;
    if f.len() != 5 {
        return None;
    }
    Some(format!(
        "settings of the fake server: seed {seed}, {rate} tokens/min, a backlog of {} deals \
         over {hours} h, {per_hour} new deals an hour",
        thousands(backlog)
    ))
}

/// A job with requests in the ledger but no checkpoint.
fn no_checkpoint(job: &str, tokens: i64) -> String {
    let what = match job {
        "recheck" => "keeps no position (re-fetches stored products as they age)",
        "refresh" => "no watermark yet",
        "backfill" => "no page finished yet",
        _ => "no checkpoint",
    };
    format!("{what}; {tokens} tokens spent")
}

/// A time and its age relative to `now_ms`: `2026-12-03 09:14:00 UTC (6m ago)`,
/// or `(in 6m)` for a time after it.
fn when(ms: i64, now_ms: i64) -> String {
    let age = now_ms.saturating_sub(ms) / 1000;
    let rel = match age {
        0 => "just now".to_string(),
        a if a > 0 => format!("{} ago", rough(a)),
        a => format!("in {}", rough(a)),
    };
    format!("{} ({rel})", time(ms))
}

/// A Unix-ms time as `YYYY-MM-DD HH:MM:SS UTC`; as plain milliseconds
/// outside what RFC 3339 can write (before 1970, after 9999: a sandbox's
/// clock may be anywhere, and humantime's `Display` fails past 9999, which
/// made `to_string` panic).
fn time(ms: i64) -> String {
    const YEAR_10000_MS: u64 = 253_402_300_800_000;
    match u64::try_from(ms) {
        Ok(t) if t < YEAR_10000_MS => {
            // `YYYY-MM-DDTHH:MM:SSZ`
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(t))
                .to_string()
                .replacen('T', " ", 1)
                .replacen('Z', " UTC", 1)
        }
        _ => ms.to_string(),
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
mod tests;
