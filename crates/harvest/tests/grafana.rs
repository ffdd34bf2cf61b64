//! The Grafana dashboard in `docs/grafana/` queries only metrics a run
//! exposes: every `keepa_harvest_…` name in it appears in a scrape of a
//! run that has seen every kind of event.

use std::collections::BTreeSet;
use std::path::Path;

use harvest::metrics::Metrics;

fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("keepa_harvest_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[test]
fn the_grafana_dashboard_queries_only_exposed_metrics() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/grafana/keepa-harvest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(json["panels"].as_array().is_some_and(|p| !p.is_empty()));

    let m = Metrics::new();
    m.envelope(keepa::TokenSnapshot {
        timestamp_ms: 0,
        tokens_left: 1200,
        refill_in_ms: 60_000,
        refill_rate: 20,
    });
    m.request("backfill", "stats", "200", 12);
    m.retry();
    m.in_body_error();
    m.committed(1, 1, 1, 3);
    m.rejected("stats", 2);
    m.refresh_schedule(0, 300_000, 60_000);
    m.refresh_run(0, false);
    m.refresh_lag(5_000);
    m.observe_time(600_000);
    let scrape = names(&m.render_prometheus());

    let wanted = names(&text);
    assert!(wanted.len() >= 10, "{wanted:?}");
    let missing: Vec<&String> = wanted.difference(&scrape).collect();
    assert!(
        missing.is_empty(),
        "not exposed: {missing:?}\nexposed: {scrape:?}"
    );
}
