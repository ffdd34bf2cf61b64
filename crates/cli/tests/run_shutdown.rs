//! `keepa-harvest run --sandbox` stopped by a signal: SIGINT and SIGTERM
//! exit 130 after writing the summary and committing, and the next start
//! resumes; and the Prometheus endpoint answers over HTTP during a run
//! without the API key in it.
//!
//! Bounded: the child is signalled once its own "committed" log lines show
//! work was stored, every wait has a deadline, and a child that outlives
//! its deadline is killed. No test sleeps.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use harvest::store::{ExportFormat, Store};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keepa-harvest"))
}

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

/// A running child whose stderr lines arrive on a channel (a thread drains
/// the pipe, so the child never blocks on it).
struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(args: &[String]) -> Running {
        let mut child = Command::new(bin())
            .args(args)
            .env("RUST_LOG", "harvest=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) until "committed" log lines report at least `n` new deals.
    fn wait_deals(&mut self, n: u64, within: Duration) {
        let deadline = Instant::now() + within;
        let mut deals = 0;
        while deals < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if line.contains("committed") {
                        deals += new_deals(&line);
                    }
                    self.seen.push(line);
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("not {n} deals within {within:?}:\n{}", self.seen.join("\n"));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child.wait();
                    panic!(
                        "the run ended after {deals} deals:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} failed");
    }

    /// Waits (bounded) for the exit; the child is killed past the deadline.
    fn wait_exit(mut self, within: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader thread ends at EOF; collect what it still holds.
                let rest = Instant::now() + Duration::from_secs(5);
                while let Ok(l) = self
                    .lines
                    .recv_timeout(rest.saturating_duration_since(Instant::now()))
                {
                    self.seen.push(l);
                }
                return (status, self.seen.join("\n"));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the run did not exit within {within:?}");
            }
            // Keep the log for the failure message while waiting.
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(l) => self.seen.push(l),
                Err(_) => std::thread::park_timeout(Duration::from_millis(20)),
            }
        }
    }
}

/// `new_deals=N` of a pipeline "committed" debug line.
fn new_deals(line: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("new_deals="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
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
    let (status, log) = run.wait_exit(Duration::from_secs(45));
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
    let (status, log) = run.wait_exit(Duration::from_secs(120));
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

/// `GET path` over HTTP/1.0; the whole response (head and body).
fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
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
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    for name in [
        "# TYPE keepa_harvest_deals_stored_total counter",
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
    let (status, log) = run.wait_exit(Duration::from_secs(45));
    assert_eq!(status.code(), Some(130), "{status:?}\n{log}");
    // The endpoint is gone once the run has ended.
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
