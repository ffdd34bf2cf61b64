//! The dashboard end to end: `run --sandbox --ui` serves the page, its
//! JSON and /metrics while the run stores deals, and a real headless
//! Chromium (Debian's package) renders the page and shows the numbers the
//! database holds; `serve` shows the same database after the run, exactly.
//!
//! Without Chromium the browser half says that it did NOT run (and fails
//! under `CI=true`: `.ci/run` installs it). Bounded: every child has a
//! deadline; nothing sleeps (waits are on the run's own log lines and on
//! children's exits). Loopback only.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use harvest::store::Store;

mod common;
use common::{finish_within, temp_dir, Running};

/// How long Chromium may take to load and render one page.
const BROWSER_DEADLINE: Duration = Duration::from_secs(90);

/// Chromium from `KEEPA_HARVEST_CHROMIUM` or the `PATH` (`chromium`,
/// `chromium-browser`), or `None` with a note that the test did not run;
/// under `CI=true` a missing browser fails the test instead.
fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("KEEPA_HARVEST_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true but no chromium on the PATH: .ci/run should have installed it"
    );
    eprintln!(
        "chromium not found: the dashboard's browser test did NOT run (apt-get install chromium)"
    );
    None
}

/// The page's DOM after its script ran, as headless Chromium dumps it.
fn dump_dom(browser: &Path, url: &str, profile: &Path) -> String {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        // Virtual time waits for the page's fetch, then runs its timers.
        "--virtual-time-budget=5000",
        "--dump-dom",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(url)
    .stdin(Stdio::null());
    let out = finish_within(cmd, BROWSER_DEADLINE);
    assert_eq!(out.code(), Some(0), "chromium failed:\n{}", out.stderr);
    out.stdout
}

/// The number shown in the element with `id` (its text).
fn shown(dom: &str, id: &str) -> i64 {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the DOM:\n{dom}"));
    let rest = &dom[at..];
    let text = &rest[rest.find('>').unwrap() + 1..];
    let text = &text[..text.find('<').unwrap()];
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("#{id} shows {text:?}, not a number"))
}

/// One GET over HTTP/1.1: `(status line, head, body)`.
fn get(addr: SocketAddr, path: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_string();
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// `GET /api/state` as JSON.
fn state(addr: SocketAddr) -> serde_json::Value {
    let (status, head, body) = get(addr, "/api/state");
    assert!(status.contains("200"), "{status}: {body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    serde_json::from_str(&body).unwrap()
}

fn deals_and_tokens(s: &serde_json::Value) -> (i64, i64) {
    (
        s["status"]["deals"].as_i64().unwrap(),
        s["status"]["tokens_total"].as_i64().unwrap(),
    )
}

/// The address in a `listening on http://ADDR` line.
fn address_in(line: &str) -> SocketAddr {
    let url = &line[line.find("http://").expect("an URL") + 7..];
    url.trim().trim_end_matches('/').parse().unwrap()
}

/// What the database holds, read by the store directly.
fn in_database(db: &str) -> (i64, i64) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open_existing(db).await.unwrap();
        let s = store.status(0).await.unwrap();
        store.close().await;
        (s.deals as i64, s.tokens_total)
    })
}

/// A sandbox run with the dashboard on a free loopback port.
fn start_run(db: &Path) -> (Running, SocketAddr) {
    let args: Vec<String> = [
        "run",
        "--sandbox",
        "--db",
        db.to_str().unwrap(),
        "--target-deals",
        "2000",
        "--ui",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut run = Running::start(&args);
    let line = run.wait_line(Duration::from_secs(60), |l| {
        l.contains("dashboard: listening on http://")
    });
    (run, address_in(&line))
}

#[test]
fn the_dashboard_shows_what_the_database_holds_during_and_after_a_run() {
    let dir = temp_dir("dashboard", "browser");
    let db = dir.join("harvest.db");
    let (mut run, addr) = start_run(&db);
    run.wait_deals(20, Duration::from_secs(90));

    // HTTP: the page, the state, the metrics, 404 elsewhere.
    let (status, head, page) = get(addr, "/");
    assert!(
        status.contains("200") && head.contains("text/html"),
        "{status}"
    );
    assert!(page.contains("/api/state") && page.contains("id=\"deals-stored\""));
    let (status, head, metrics) = get(addr, "/metrics");
    assert!(status.contains("200"), "{status}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(
        metrics.contains("keepa_harvest_deals_stored_total "),
        "{metrics}"
    );
    assert!(metrics.trim_end().ends_with("# EOF"), "{metrics}");
    assert!(get(addr, "/nope").0.contains("404"));
    let before = state(addr);
    assert!(
        before["status"]["deals"].as_i64().unwrap() >= 20,
        "{before}"
    );
    assert!(before["alerts"].is_null(), "no alert queued: none shown");
    let deal = &before["deals"][0];
    assert!(deal["amazon_url"]
        .as_str()
        .unwrap()
        .starts_with("https://www.amazon.com/dp/"));

    // The browser, while the run goes on: between the state before and after.
    let browser = chromium();
    if let Some(browser) = &browser {
        let dom = dump_dom(
            browser,
            &format!("http://{addr}/"),
            &dir.join("profile-run"),
        );
        let after = state(addr);
        let (d0, t0) = deals_and_tokens(&before);
        let (d1, t1) = deals_and_tokens(&after);
        let (d, t) = (shown(&dom, "deals-stored"), shown(&dom, "tokens-spent"));
        assert!(d0 <= d && d <= d1, "deals shown {d}, database {d0}..{d1}");
        assert!(
            t0 <= t && t <= t1 && t > 0,
            "tokens shown {t}, database {t0}..{t1}"
        );
        assert!(dom.contains("no alerts queued"), "{dom}");
        assert!(dom.contains("https://keepa.com/#!product/1-"), "{dom}");
    }

    run.signal("-INT");
    let out = run.wait(Duration::from_secs(60));
    assert_eq!(out.code(), Some(130), "{}", out.stderr);
    assert!(
        TcpStream::connect(addr).is_err(),
        "the dashboard stops with the run"
    );
    let (deals, tokens) = in_database(db.to_str().unwrap());
    assert!(deals >= 20 && tokens > 0);

    // `serve` over the stopped run's database: exactly its numbers.
    let (serve, addr) = start_serve(db.to_str().unwrap());
    let s = state(addr);
    assert_eq!(deals_and_tokens(&s), (deals, tokens));
    assert!(
        !s["samples"].as_array().unwrap().is_empty(),
        "the run sampled its budget"
    );
    assert!(
        s["jobs"][0].as_str().unwrap().starts_with("backfill: "),
        "{s}"
    );
    assert!(
        get(addr, "/metrics").0.contains("404"),
        "serve has no run metrics"
    );
    if let Some(browser) = &browser {
        let dom = dump_dom(
            browser,
            &format!("http://{addr}/"),
            &dir.join("profile-serve"),
        );
        assert_eq!(shown(&dom, "deals-stored"), deals);
        assert_eq!(shown(&dom, "tokens-spent"), tokens);
    }
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `serve --db DB` on a free loopback port, and the address it printed.
fn start_serve(db: &str) -> (ServeGuard, SocketAddr) {
    let mut child = Command::new(common::bin())
        .args(["serve", "--db", db, "--target-deals", "2000"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(60));
    let guard = ServeGuard(child);
    let line = line.expect("serve printed its address");
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    (guard, address_in(&line))
}

/// Kills `serve` when the test ends, passed or not.
struct ServeGuard(std::process::Child);

impl Drop for ServeGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_refuses_a_missing_database_and_a_busy_address() {
    let dir = temp_dir("dashboard", "errors");
    let missing = dir.join("nope.db");
    let out = common::run(&["serve", "--db", missing.to_str().unwrap()], None);
    out.expect(2, "nope.db");
    assert!(!missing.exists(), "serve never creates a database");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let db = dir.join("empty.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        Store::open(db.to_str().unwrap())
            .await
            .unwrap()
            .close()
            .await
    });
    let out = common::run(
        &["serve", "--db", db.to_str().unwrap(), "--addr", &addr],
        None,
    );
    out.expect(2, &addr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_shows_a_postgres_database() {
    let Ok(url) = std::env::var("KEEPA_HARVEST_TEST_PG") else {
        eprintln!("KEEPA_HARVEST_TEST_PG is unset: the PostgreSQL dashboard test did NOT run");
        return;
    };
    let dir = temp_dir("dashboard", "pg");
    let schema = format!("dash_{}", std::process::id());
    let sep = if url.contains('?') { '&' } else { '?' };
    let db = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = |sql: String| {
        rt.block_on(async {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        })
    };
    admin(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    admin(format!("CREATE SCHEMA {schema}"));
    let run = common::run(
        &[
            "run",
            "--sandbox",
            "--quiet",
            "--db",
            &db,
            "--target-deals",
            "10",
        ],
        None,
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    let (deals, tokens) = in_database(&db);
    assert!(deals >= 10 && tokens > 0);
    let (serve, addr) = start_serve(&db);
    let s = state(addr);
    assert_eq!(deals_and_tokens(&s), (deals, tokens));
    assert!(!s["samples"].as_array().unwrap().is_empty(), "{s}");
    assert!(s["spend"].as_array().is_some_and(|b| !b.is_empty()), "{s}");
    assert_eq!(s["deals"].as_array().unwrap().len() as i64, deals.min(20));
    if let Some(browser) = chromium() {
        let dom = dump_dom(&browser, &format!("http://{addr}/"), &dir.join("profile"));
        assert_eq!(shown(&dom, "deals-stored"), deals);
        assert_eq!(shown(&dom, "tokens-spent"), tokens);
    }
    drop(serve);
    admin(format!("DROP SCHEMA {schema} CASCADE"));
    let _ = std::fs::remove_dir_all(&dir);
}
