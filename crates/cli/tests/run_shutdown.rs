//! `keepa-harvest run --sandbox` stopped by a signal: SIGINT and SIGTERM
//! exit 130 after writing the summary and committing, and the next start
//! resumes; and the Prometheus endpoint answers over HTTP during a run
//! without the API key in it.
//!
//! Bounded: the child is signalled once its own "committed" log lines show
//! work was stored, every wait has a deadline, and a child that outlives
//! its deadline is killed. No test sleeps.

mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{http_get, Outcome, Running};

use harvest::store::{ExportFormat, Store};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kh-stop-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn args(db: &Path, summary: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "run",
        "--sandbox",
        "--quiet",
        "--db",
        db.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

async fn stored_asins(db: &Path) -> Vec<String> {
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    let mut out = Vec::new();
    store.export(ExportFormat::Jsonl, &mut out).await.unwrap();
    let n = store.count_deals().await.unwrap();
    store.close().await;
    let asins: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["asin"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(asins.len() as u64, n, "export and count_deals disagree");
    asins
}

fn read_summary(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("summary {} not written: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Starts a run, signals it once 20 deals are stored, and checks the stop:
/// exit 130, summary written, the database holds what the summary says.
async fn stop_with(sig: &str, dir: &Path) -> (PathBuf, Vec<String>) {
    let db = dir.join("h.db");
    let summary = dir.join("s.json");
    let mut run = Running::start(&args(&db, &summary, &[]));
    run.wait_deals(20, Duration::from_secs(30));
    run.signal(sig);
    let Outcome {
        status,
        stderr: log,
        ..
    } = run.wait(Duration::from_secs(45));
    assert_eq!(status.code(), Some(130), "{sig}: {status:?}\n{log}");
    assert!(log.contains("stopping"), "{sig}: no stop notice:\n{log}");

    let s = read_summary(&summary);
    let asins = stored_asins(&db).await;
    assert!(!asins.is_empty(), "{sig}: nothing stored");
    let unique: BTreeSet<_> = asins.iter().collect();
    assert_eq!(unique.len(), asins.len(), "{sig}: duplicate deals");
    assert_eq!(
        s["deals_stored"].as_u64(),
        Some(asins.len() as u64),
        "{sig}: the summary and the database disagree: {s}"
    );
    (db, asins)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_exits_130_with_summary_and_the_next_start_resumes() {
    let dir = tmp("int");
    let (db, before) = stop_with("-INT", &dir).await;

    // Resume with a target a bit above what is stored.
    let target = before.len() + 15;
    let summary = dir.join("s2.json");
    let run = Running::start(&args(
        &db,
        &summary,
        &["--target-deals", &target.to_string()],
    ));
    let Outcome {
        status,
        stderr: log,
        ..
    } = run.wait(Duration::from_secs(120));
    assert!(status.success(), "{status:?}\n{log}");
    let after = stored_asins(&db).await;
    let unique: BTreeSet<_> = after.iter().collect();
    assert_eq!(unique.len(), after.len(), "duplicate deals after resuming");
    assert!(
        after.len() >= target,
        "resumed run stored {} of {target}",
        after.len()
    );
    let before: BTreeSet<_> = before.iter().collect();
    assert!(before.is_subset(&unique), "stored deals were lost");
    let s = read_summary(&summary);
    assert_eq!(
        s["deals_stored"].as_u64(),
        Some((after.len() - before.len()) as u64),
        "{s}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_exits_130_with_summary() {
    let dir = tmp("term");
    stop_with("-TERM", &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_endpoint_serves_prometheus_text_without_the_key() {
    let dir = tmp("metrics");
    let db = dir.join("h.db");
    let summary = dir.join("s.json");
    let addr = free_port();
    let mut run = Running::start(&args(&db, &summary, &["--metrics-addr", &addr.to_string()]));
    run.wait_deals(1, Duration::from_secs(30));

    let resp = http_get(addr, "/metrics");
    let (head, body) = resp.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    for name in [
        // OpenMetrics: the family is named without `_total`, its sample with it.
        "# TYPE keepa_harvest_deals_stored counter",
        "keepa_harvest_deals_stored_total ",
        "keepa_harvest_tokens_spent_total{job=\"backfill\"",
        "keepa_harvest_requests_total{status=\"200\"}",
        "keepa_harvest_own_429_total",
        "keepa_harvest_tokens_left",
        "keepa_harvest_refill_rate 20",
        "keepa_harvest_backfill_pages_total",
    ] {
        assert!(body.contains(name), "no {name} in:\n{body}");
    }
    let stored: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("keepa_harvest_deals_stored_total "))
        .expect("deals_stored sample")
        .parse()
        .unwrap();
    assert!(stored > 0, "{body}");
    // The sandbox key is `sandbox` and 32 hex digits, fresh each run; the
    // text must hold neither it nor the server's URL.
    assert!(!resp.contains("sandbox"), "key in the metrics:\n{resp}");
    assert!(!resp.contains("key="), "{resp}");
    assert!(!resp.contains("http://"), "{resp}");

    let other = http_get(addr, "/nope");
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");

    run.signal("-INT");
    let Outcome {
        status,
        stderr: log,
        ..
    } = run.wait(Duration::from_secs(45));
    assert_eq!(status.code(), Some(130), "{status:?}\n{log}");
    // The endpoint is gone once the run has ended.
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
