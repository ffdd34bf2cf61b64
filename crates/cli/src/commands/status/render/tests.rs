use serde_json::json;

use super::*;

/// 2026-12-03 09:14:00 UTC.
const T: i64 = 1_796_289_240_000;
const MIN: i64 = 60_000;

fn report(checkpoints: Vec<(&str, Value, i64)>, tokens: &[(&str, i64)]) -> StatusReport {
    StatusReport {
        checkpoints: checkpoints
            .into_iter()
            .map(|(j, v, at)| (j.to_string(), v, at))
            .collect(),
        tokens_by_job: tokens.iter().map(|(j, n)| (j.to_string(), *n)).collect(),
        now_ms: T + 6 * MIN,
        ..StatusReport::default()
    }
}

/// The job lines, with this machine's clock at the report's time.
fn jobs(r: &StatusReport) -> Vec<String> {
    job_lines(r, r.now_ms)
}

/// Regression: a stored time past the year 9999 (a sandbox run with a
/// huge --sandbox-time-scale) panicked `status` in `to_string`.
#[test]
fn time_past_year_9999_is_shown_as_ms_not_a_panic() {
    assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(time(253_402_300_799_000), "9999-12-31 23:59:59 UTC");
    assert_eq!(time(253_402_300_800_000), "253402300800000");
    assert_eq!(time(i64::MAX), i64::MAX.to_string());
    assert_eq!(time(-5), "-5");
    let r = StatusReport {
        checkpoints: vec![("backfill".into(), json!({"page": 3}), i64::MAX)],
        latest_request_ms: Some(i64::MAX),
        target_deals: Some(10),
        eta_ms: Some(i64::MAX),
        now_ms: i64::MIN,
        ..StatusReport::default()
    };
    let text = render("h.db", &r, i64::MIN);
    assert!(text.contains(&format!("saved {} (in ", i64::MAX)), "{text}");
    assert!(text.contains("after this machine's clock"), "{text}");
}

#[test]
fn backfill_checkpoints_in_words() {
    let r = report(
        vec![("backfill", json!({"page": 4, "done": false}), T + 4 * MIN)],
        &[],
    );
    assert_eq!(
        jobs(&r),
        ["backfill: page 4 of at most 67 (600 of at most 10,000 deals read); saved 2026-12-03 09:18:00 UTC (2m ago)"]
    );
    // A database from before `done`: the page alone.
    let r = report(vec![("backfill", json!({"page": 0}), T + 6 * MIN)], &[]);
    assert_eq!(
        jobs(&r),
        ["backfill: page 0 of at most 67 (0 of at most 10,000 deals read); saved 2026-12-03 09:20:00 UTC (just now)"]
    );
    let done = |page: u64| {
        let r = report(
            vec![("backfill", json!({"page": page, "done": true}), T)],
            &[],
        );
        jobs(&r).remove(0)
    };
    assert!(
        done(12).starts_with(
            "backfill: done after 12 pages (the feed, or backfill.max_pages, ended there); saved 2026-12-03 09:14:00 UTC (6m ago)"
        ),
        "{}",
        done(12)
    );
    assert!(done(1).contains("done after 1 page "), "{}", done(1));
    // A later walk of the feed is named.
    let r = report(
        vec![("backfill", json!({"page": 2, "done": false, "walk": 3}), T)],
        &[],
    );
    assert!(
        jobs(&r)[0].starts_with("backfill: walk 3: page 2 of at most 67"),
        "{}",
        jobs(&r)[0]
    );
    assert!(
        done(67).starts_with("backfill: done (read to Keepa's paging cap: 67 pages, 10,000 deals)"),
        "{}",
        done(67)
    );
}

#[test]
fn the_saved_time_is_aged_on_this_machines_clock_the_watermark_on_the_harvests() {
    // A sandbox's clock is far behind the wall clock.
    let r = report(
        vec![("refresh", json!({"watermark_ms": T}), T + 400 * 86_400_000)],
        &[],
    );
    let wall = T + 400 * 86_400_000 + 2 * MIN;
    assert_eq!(
        job_lines(&r, wall),
        ["refresh: watermark 2026-12-03 09:14:00 UTC (6m ago); saved 2028-01-07 09:14:00 UTC (2m ago)"]
    );
}

#[test]
fn the_refresh_watermark_is_a_utc_time_with_its_age() {
    let r = report(
        vec![("refresh", json!({"watermark_ms": T}), T + 5 * MIN)],
        &[],
    );
    assert_eq!(
        jobs(&r),
        ["refresh: watermark 2026-12-03 09:14:00 UTC (6m ago); saved 2026-12-03 09:19:00 UTC (1m ago)"]
    );
    let r = report(
        vec![("refresh", json!({"watermark_ms": T + 7 * MIN}), T + 6 * MIN)],
        &[],
    );
    assert!(
        jobs(&r)[0].starts_with("refresh: watermark 2026-12-03 09:21:00 UTC (in 1m); saved"),
        "{:?}",
        jobs(&r)
    );
    let r = report(vec![("refresh", json!({"watermark_ms": null}), T)], &[]);
    assert!(jobs(&r)[0].starts_with("refresh: no watermark yet; saved"));
}

#[test]
fn jobs_without_a_checkpoint_show_their_tokens_in_pipeline_order() {
    let r = report(
        vec![
            ("backfill", json!({"page": 2, "done": false}), T),
            ("refresh", json!({"watermark_ms": T}), T),
        ],
        &[
            ("backfill", 40),
            ("recheck", 12),
            ("refresh", 5),
            ("zeta", 1),
        ],
    );
    let lines = jobs(&r);
    let names: Vec<&str> = lines.iter().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(names, ["backfill", "refresh", "recheck", "zeta"]);
    assert_eq!(
        lines[2],
        "recheck: keeps no position (re-fetches stored products as they age); 12 tokens spent"
    );
    assert_eq!(lines[3], "zeta: no checkpoint; 1 tokens spent");
    let r = report(vec![], &[("refresh", 0)]);
    assert_eq!(jobs(&r), ["refresh: no watermark yet; 0 tokens spent"]);
    let text = render("h.db", &report(vec![], &[]), T);
    assert!(text.contains("jobs            no checkpoint yet"), "{text}");
}

#[test]
fn an_unknown_shape_is_shown_as_stored() {
    for (job, value) in [
        ("backfill", json!({"cursor": "x"})),
        ("backfill", json!({"page": -1})),
        ("backfill", json!({"page": 3, "done": "yes"})),
        ("backfill", json!({"page": 3, "extra": 1})),
        ("backfill", json!({"page": 3, "walk": "two"})),
        ("refresh", json!({"watermark_ms": "soon"})),
        ("refresh", json!({"watermark_ms": 1, "page": 2})),
        ("refresh", json!([1, 2])),
        ("sellers", json!({"page": 3})),
    ] {
        let r = report(vec![(job, value.clone(), T)], &[]);
        let line = jobs(&r).remove(0);
        assert!(
            line.starts_with(&format!(
                "{job}: checkpoint {value} (a shape this version does not read); saved"
            )),
            "{line}"
        );
    }
}

#[test]
fn the_sandbox_settings_read_in_words() {
    let value = json!({"backlog_hours": 12.0, "deals_per_hour": 300.0, "initial_deals": 8000,
        "refill_per_minute": 20, "seed": 7});
    let r = report(vec![("sandbox", value, T)], &[]);
    let line = jobs(&r).remove(0);
    assert!(
        line.starts_with(
            "sandbox: settings of the fake server: seed 7, 20 tokens/min, a backlog of 8,000 deals \
             over 12 h, 300 new deals an hour; saved"
        ),
        "{line}"
    );
}

/// The figures the database cannot give are named, with where to read them.
#[test]
fn utilization_and_refresh_punctuality_say_where_they_are() {
    let text = render("h.db", &report(vec![], &[]), T);
    let last: Vec<&str> = text.lines().rev().take(2).collect();
    assert!(
        last[1].starts_with("utilization     not in the database"),
        "{text}"
    );
    assert!(
        last[0].starts_with("refresh due     not in the database"),
        "{text}"
    );
    assert!(last.iter().all(|l| l.contains("/metrics")), "{text}");
}
