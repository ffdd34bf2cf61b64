//! Alerts end to end: a sandbox run with a local webhook receiver gets
//! exactly one `new` alert per stored deal; SIGKILLed mid-run and
//! restarted, no deal is left without its alert, and every duplicate the
//! receiver sees is one the runs counted. `alert test` reports each target.
//!
//! Loopback only; bounded: every child is killed past its deadline, and
//! the kill is triggered by the child's own "committed" log lines (no sleeps).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

mod common;
use common::{command, command_owned, finish, finish_within, serve_stub, temp_dir, Running};

/// What the receiver got: each body's `key`, in order of arrival.
#[derive(Clone, Default)]
struct Received {
    keys: Arc<Mutex<Vec<String>>>,
}

impl Received {
    fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }

    /// How many times each key arrived.
    fn counts(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for k in self.keys() {
            *m.entry(k).or_default() += 1;
        }
        m
    }
}

/// A webhook receiver on 127.0.0.1: `/hook` accepts JSON, `/down` answers 503.
fn receiver() -> (SocketAddr, Received) {
    let got = Received::default();
    let router = Router::new()
        .route(
            "/hook",
            post(
                |State(got): State<Received>, Json(body): Json<serde_json::Value>| async move {
                    let key = body["key"].as_str().unwrap_or("").to_string();
                    got.keys.lock().unwrap().push(key);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route("/down", post(|| async { StatusCode::SERVICE_UNAVAILABLE }))
        .with_state(got.clone());
    (serve_stub(router), got)
}

fn config(dir: &Path, addr: SocketAddr) -> PathBuf {
    let text = format!(
        r#"
[[alert]]
name = "every-new-deal"
url = "http://{addr}/hook"
format = "json"
on = ["new"]
"#
    );
    let path = dir.join("alerts.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run_args(config: &Path, db: &Path, summary: &Path, target: u32) -> Vec<String> {
    [
        "run",
        "--sandbox",
        "--quiet",
        "--seed",
        "5",
        "--target-deals",
        &target.to_string(),
        "--config",
        config.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `(asins in deals, (asin, delivered?) of 'new' outbox rows)`.
async fn database(db: &Path) -> (Vec<String>, Vec<(String, bool)>) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let deals: Vec<String> = sqlx::query_scalar("SELECT asin FROM deals ORDER BY asin")
        .fetch_all(&pool)
        .await
        .unwrap();
    let outbox: Vec<(String, bool)> = sqlx::query_as(
        "SELECT asin, delivered_ms IS NOT NULL FROM alert_outbox WHERE kind = 'new' ORDER BY asin",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    (deals, outbox)
}

fn summary(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The sandbox's fast clock wants the machine's cores: one test at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_run_sends_exactly_one_new_alert_per_stored_deal() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = temp_dir("alerts", "once");
    let (addr, got) = receiver();
    let cfg = config(&dir, addr);
    let (db, sum) = (dir.join("a.db"), dir.join("s.json"));
    let out = finish_within(
        command_owned(&run_args(&cfg, &db, &sum, 150)),
        Duration::from_secs(170),
    );
    assert!(out.status.success(), "{}", out.stderr);
    let (deals, outbox) = database(&db).await;
    assert!(deals.len() >= 150, "{}", deals.len());
    let asins: Vec<String> = outbox.iter().map(|(a, _)| a.clone()).collect();
    assert_eq!(asins, deals, "one 'new' outbox row per deal");
    assert!(
        outbox.iter().all(|(_, d)| *d),
        "every alert delivered by the end"
    );
    let counts = got.counts();
    assert_eq!(
        counts.len(),
        deals.len(),
        "one key per deal at the receiver"
    );
    assert!(
        counts.values().all(|&n| n == 1),
        "no duplicate in a clean run"
    );
    assert!(got
        .keys()
        .iter()
        .all(|k| k.starts_with("every-new-deal:1:") && k.contains(":new:")));
    let s = summary(&sum);
    assert_eq!(s["alerts"]["queued"], deals.len());
    assert_eq!(s["alerts"]["delivered"], deals.len());
    assert_eq!(s["alerts"]["duplicates"], 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_mid_run_and_restarted_no_alert_is_lost_and_duplicates_are_counted() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = temp_dir("alerts", "kill");
    let (addr, got) = receiver();
    let cfg = config(&dir, addr);
    let (db, sum) = (dir.join("k.db"), dir.join("s.json"));
    let args = run_args(&cfg, &db, &sum, 200);
    let (_, ended) = Running::start(&args).count_commits(Some(6), Duration::from_secs(170));
    assert!(ended.is_none(), "the run ended before its 6th commit");
    let (deals_killed, outbox_killed) = database(&db).await;
    assert!(
        !deals_killed.is_empty() && deals_killed.len() < 200,
        "{}",
        deals_killed.len()
    );
    let queued: Vec<String> = outbox_killed.iter().map(|(a, _)| a.clone()).collect();
    assert_eq!(
        queued, deals_killed,
        "killed: every stored deal has its alert row"
    );

    let out = finish_within(command_owned(&args), Duration::from_secs(170));
    assert!(out.status.success(), "{}", out.stderr);
    let (deals, outbox) = database(&db).await;
    assert!(deals.len() >= 200, "{}", deals.len());
    let asins: Vec<String> = outbox.iter().map(|(a, _)| a.clone()).collect();
    assert_eq!(
        asins, deals,
        "one 'new' outbox row per deal, across the kill"
    );
    assert!(
        outbox.iter().all(|(_, d)| *d),
        "every alert delivered by the end"
    );
    let counts = got.counts();
    assert_eq!(
        counts.len(),
        deals.len(),
        "every deal's alert reached the receiver"
    );
    let extra: usize = counts.values().map(|n| n - 1).sum();
    let counted = summary(&sum)["alerts"]["duplicates"].as_u64().unwrap() as usize;
    assert!(
        extra <= counted,
        "{extra} duplicates at the receiver, {counted} counted by the restarted run"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn alert_test_reports_each_target_and_fails_when_one_fails() {
    let dir = temp_dir("alerts", "test");
    let (addr, got) = receiver();
    let cfg = dir.join("t.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[alert]]\nname = \"ok\"\nurl = \"http://{addr}/hook\"\nformat = \"slack\"\n\
             [[alert]]\nname = \"down\"\nurl = \"http://{addr}/down\"\n"
        ),
    )
    .unwrap();
    let out = finish(command(&[
        "alert",
        "test",
        "--config",
        cfg.to_str().unwrap(),
    ]));
    out.expect(5, "1 of 2 alert targets failed");
    let ok = format!("ok (slack, http://{addr}/…): delivered");
    let down = format!("down (json, http://{addr}/…): FAILED: HTTP 503");
    assert!(out.stdout.contains(&ok), "{}", out.stdout);
    assert!(out.stdout.contains(&down), "{}", out.stdout);
    assert!(
        !out.stdout.contains("/hook") && !out.stderr.contains("/down"),
        "a URL path leaked"
    );
    assert_eq!(
        got.keys(),
        vec![String::new()],
        "one slack body (it has no key)"
    );

    let empty = dir.join("none.toml");
    std::fs::write(&empty, "").unwrap();
    let out = finish(command(&[
        "alert",
        "test",
        "--config",
        empty.to_str().unwrap(),
    ]));
    out.expect(2, "no [[alert]]");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same on PostgreSQL (`KEEPA_HARVEST_TEST_PG`), in a schema of its own.
#[tokio::test(flavor = "multi_thread")]
async fn on_postgres_a_sandbox_run_sends_one_new_alert_per_stored_deal() {
    let Ok(url) = std::env::var("KEEPA_HARVEST_TEST_PG") else {
        eprintln!("KEEPA_HARVEST_TEST_PG is unset: the PostgreSQL alerts test did NOT run");
        return;
    };
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = temp_dir("alerts", "pg");
    let schema = format!("kh_alerts_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let db = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let (addr, got) = receiver();
    let cfg = config(&dir, addr);
    let sum = dir.join("s.json");
    let mut args = run_args(&cfg, Path::new("unused"), &sum, 60);
    let at = args.iter().position(|a| a == "--db").unwrap() + 1;
    args[at] = db.clone();
    let out = finish_within(command_owned(&args), Duration::from_secs(170));
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let deals: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deals")
        .fetch_one(&pool)
        .await
        .unwrap();
    let delivered: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT asin) FROM alert_outbox WHERE kind = 'new' AND delivered_ms IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    assert!(out.status.success(), "{}", out.stderr);
    assert!(deals >= 60, "{deals}");
    assert_eq!(delivered, deals, "one delivered 'new' alert per deal");
    let counts = got.counts();
    assert_eq!(counts.len() as i64, deals);
    assert!(counts.values().all(|&n| n == 1));
    let _ = std::fs::remove_dir_all(&dir);
}
