//! Scaling out: several `keepa-harvest run` processes (and one-off `api`
//! calls) on one key of one fake Keepa, sharing the budget through Redis
//! (`--ledger`) and the work through PostgreSQL (`--db`).
//!
//! Needs `KEEPA_HARVEST_TEST_PG` and `KEEPA_HARVEST_TEST_REDIS` (`.ci/run`
//! sets both); without them each test says on stderr that it did not run.
//! Bounded: every child has a deadline and is killed past it; the fake
//! server runs 120 times faster than real time; nothing sleeps.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{bin, FakeServer, Outcome, Running};
use serde_json::Value;
use sqlx::Connection as _;

/// Keepa time per real time: fast enough for minutes of refill in seconds,
/// slow enough that a debug build on a busy machine keeps every deadline.
const SCALE: &str = "120";
const PROCESSES: usize = 3;
const TARGET: u64 = 240;
const RUN_DEADLINE: Duration = Duration::from_secs(300);

fn services(test: &str) -> Option<(String, String)> {
    let pg = std::env::var("KEEPA_HARVEST_TEST_PG")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let redis = std::env::var("KEEPA_HARVEST_TEST_REDIS")
        .ok()
        .filter(|s| !s.trim().is_empty());
    match (pg, redis) {
        (Some(p), Some(r)) => Some((p, r)),
        _ => {
            eprintln!(
                "{test}: NOT RUN: set KEEPA_HARVEST_TEST_PG and KEEPA_HARVEST_TEST_REDIS (.ci/run does)"
            );
            None
        }
    }
}

/// The tests of this file share the machine's two cores one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A key of its own per test run, so no earlier run's shared ledger (named
/// after the key) is in the way.
fn unique_key(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("scale-{tag}-{}-{nanos}", std::process::id())
}

/// A fresh PostgreSQL database, dropped on `cleanup`.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    async fn create(admin: &str) -> Database {
        let name = format!("kh_{}", unique_key("db").replace('-', "_"));
        let mut con = sqlx::PgConnection::connect(admin).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut con)
            .await
            .unwrap();
        let _ = con.close().await;
        let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
        Database {
            admin: admin.to_string(),
            url: format!("{base}/{name}"),
            name,
        }
    }

    async fn scalar(&self, query: &str) -> i64 {
        let mut con = sqlx::PgConnection::connect(&self.url).await.unwrap();
        let v: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_string()))
            .fetch_one(&mut con)
            .await
            .unwrap();
        let _ = con.close().await;
        v
    }

    async fn cleanup(self) {
        let mut con = sqlx::PgConnection::connect(&self.admin).await.unwrap();
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut con)
        .await;
    }
}

struct Setup {
    key: String,
    server: FakeServer,
    db: Database,
    redis: String,
    dir: std::path::PathBuf,
}

impl Setup {
    async fn new(tag: &str, pg: &str, redis: &str) -> Setup {
        let key = unique_key(tag);
        let dir = std::env::temp_dir().join(&key);
        std::fs::create_dir_all(&dir).unwrap();
        Setup {
            server: FakeServer::start(
                &key,
                &[
                    "--refill-per-minute",
                    "60",
                    "--start-tokens",
                    "600",
                    "--time-scale",
                    SCALE,
                    "--seed",
                    "5",
                    "--initial-deals",
                    "3000",
                    "--deals-per-hour",
                    "30",
                ],
            ),
            db: Database::create(pg).await,
            redis: redis.to_string(),
            key,
            dir,
        }
    }

    fn common_args(&self) -> Vec<String> {
        [
            "--base-url",
            &self.server.url,
            "--server-time-scale",
            SCALE,
            "--ledger",
            &self.redis,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn run_args(&self, i: usize) -> Vec<String> {
        let mut a = vec!["run".to_string(), "--quiet".to_string()];
        a.extend(self.common_args());
        a.extend(
            [
                "--db",
                &self.db.url,
                "--target-deals",
                &TARGET.to_string(),
                "--summary-json",
                self.summary(i).to_str().unwrap(),
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        a
    }

    fn summary(&self, i: usize) -> std::path::PathBuf {
        self.dir.join(format!("summary-{i}.json"))
    }

    fn start(&self, i: usize, log: &str) -> Running {
        Running::start_with(
            &self.run_args(i),
            &[("KEEPA_API_KEY", self.key.as_str()), ("RUST_LOG", log)],
        )
    }

    /// One `api` call through the shared budget; its stdout.
    fn api(&self, args: &[&str]) -> String {
        let mut a: Vec<String> = vec!["api".into()];
        a.extend(args.iter().map(|s| s.to_string()));
        a.extend(self.common_args());
        let out = Command::new(bin())
            .args(&a)
            .env("KEEPA_API_KEY", &self.key)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "api {args:?}: {stderr}");
        assert!(!stderr.contains(&self.key), "key on stderr: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    }

    async fn finish(self) {
        self.db.cleanup().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn read_summary(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn total_requests(stats: &Value) -> u64 {
    stats["requests"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|by_status| by_status.as_object().unwrap().values())
        .map(|n| n.as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_share_one_key_reach_the_target_and_fetch_nothing_twice() {
    let test = "three_processes_share_one_key_reach_the_target_and_fetch_nothing_twice";
    let Some((pg, redis)) = services(test) else {
        return;
    };
    let _serial = ONE_AT_A_TIME.lock().await;
    let s = Setup::new("three", &pg, &redis).await;
    let mut runs: Vec<Running> = (0..PROCESSES).map(|i| s.start(i, "warn")).collect();

    // A person's one-off calls on the same key, through the same budget:
    // a feed page, then two of its products in a shape of their own.
    let page = s.api(&[
        "deals",
        "--selection",
        r#"{"domainId":1,"priceTypes":[2],"page":2}"#,
    ]);
    let page: Value = serde_json::from_str(&page).unwrap();
    let asins: Vec<String> = page["deals"]["dr"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|d| d["asin"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(asins.len(), 2);
    let products = s.api(&["product", "--asin", &asins.join(","), "--stats", "30"]);
    let products: Value = serde_json::from_str(&products).unwrap();
    assert_eq!(products["products"].as_array().unwrap().len(), 2);

    for (i, r) in runs.drain(..).enumerate() {
        let Outcome {
            status,
            stderr: log,
            ..
        } = r.wait(RUN_DEADLINE);
        assert!(status.success(), "process {i}: {status}\n{log}");
    }
    let stats = s.server.stats();

    // Together they reached the target; every deal stored once.
    let deals = s.db.scalar("SELECT COUNT(*) FROM deals").await;
    assert!(deals >= TARGET as i64, "{deals} deals stored");
    let distinct = s.db.scalar("SELECT COUNT(DISTINCT asin) FROM deals").await;
    assert_eq!(deals, distinct);

    // No product fetched twice, and the request ledger agrees with what the
    // server served (every harvested ASIN is in the fake catalog).
    assert_eq!(stats["productsServedAgain"], 0, "{stats}");
    let ledger_items = s
        .db
        .scalar("SELECT CAST(COALESCE(SUM(items), 0) AS BIGINT) FROM requests WHERE endpoint = 'product' AND status = 'ok'")
        .await;
    let served = stats["productsServed"].as_i64().unwrap();
    assert_eq!(
        ledger_items + 2,
        served,
        "ledger {ledger_items} + api 2 vs served {served}"
    );
    let ledger_tokens =
        s.db.scalar("SELECT CAST(COALESCE(SUM(charged), 0) AS BIGINT) FROM requests")
            .await;
    let charged = stats["tokensCharged"].as_i64().unwrap();
    assert!(
        charged - ledger_tokens <= 20,
        "server charged {charged}, ledger {ledger_tokens} (the api calls: a page and two products)"
    );

    // Own 429s: at most one per process per refill step, under 1 % in all.
    let requests = total_requests(&stats);
    let refused = stats["refused429"].as_u64().unwrap();
    let steps = stats["refillStepsTotal"].as_u64().unwrap();
    assert!(
        refused * 100 < requests.max(1),
        "{refused} 429s of {requests}"
    );
    assert!(refused <= PROCESSES as u64 * steps);

    // Refresh on time (one process runs it; the others stand by).
    let summaries: Vec<Value> = (0..PROCESSES)
        .map(|i| read_summary(&s.summary(i)))
        .collect();
    let due: u64 = summaries
        .iter()
        .map(|v| v["refresh_runs_due"].as_u64().unwrap())
        .sum();
    let late: u64 = summaries
        .iter()
        .map(|v| v["refresh_runs_late"].as_u64().unwrap())
        .sum();
    assert!(due > 0, "no refresh ran: {summaries:?}");
    // Fair shares across processes: each backfill got a fair part.
    let backfill: Vec<i64> = summaries
        .iter()
        .map(|v| {
            v["tokens_spent"]["backfill"]
                .as_object()
                .map_or(0, |st| st.values().map(|t| t.as_i64().unwrap()).sum())
        })
        .collect();
    let mean = backfill.iter().sum::<i64>() as f64 / PROCESSES as f64;
    assert!(
        backfill.iter().all(|b| *b as f64 >= 0.4 * mean),
        "backfill tokens by process {backfill:?}"
    );
    assert_eq!(late, 0, "{late} of {due} refresh runs late: {summaries:?}");

    // Utilization of the key: spent ÷ (start + refilled − left).
    let refilled = steps as i64 * stats["refillRate"].as_i64().unwrap();
    let left = stats["balance"].as_i64().unwrap();
    let available = 600 + refilled - left;
    let utilization = charged as f64 / available as f64;
    eprintln!(
        "{test}: {deals} deals, {requests} requests, {refused} 429s, {charged} tokens charged of {available} available (utilization {utilization:.3}), wasted {}, refresh {due} runs, backfill tokens by process {backfill:?}",
        stats["wastedRefill"]
    );
    assert!(utilization >= 0.95, "utilization {utilization:.3}: {stats}");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_blocks_nothing_and_restarts_without_help() {
    let test = "a_killed_process_blocks_nothing_and_restarts_without_help";
    let Some((pg, redis_url)) = services(test) else {
        return;
    };
    let _serial = ONE_AT_A_TIME.lock().await;
    let s = Setup::new("kill", &pg, &redis_url).await;
    let mut victim = s.start(0, "harvest=debug,keepa_harvest=info");
    let others: Vec<Running> = (1..PROCESSES).map(|i| s.start(i, "warn")).collect();

    let joined = victim.wait_line(Duration::from_secs(60), |l| {
        l.contains("sharing the key's ledger in Redis")
    });
    let owner = joined
        .split_whitespace()
        .find_map(|w| w.strip_prefix("owner="))
        .unwrap()
        .trim_matches('"')
        .to_string();
    // Mid-run: after a few of its commits.
    for _ in 0..4 {
        victim.wait_line(RUN_DEADLINE, |l| l.contains("committed"));
    }
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    victim.child.kill().unwrap();
    let _ = victim.child.wait();
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut con).await.unwrap();
    let killed_at = secs * 1000 + micros / 1000;

    // What it held in the shared ledger lapses within its lease (15 s),
    // whatever it was doing; the others never wait for it.
    let name =
        budget::redis_ledger::LedgerName::for_key(&keepa::ApiKey::new(s.key.as_str()).unwrap());
    for part in ["res", "jobs"] {
        let key = format!("keepa-harvest:ledger:{{{name}}}:{part}");
        let entries: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut con)
            .await
            .unwrap();
        for (_, raw) in entries {
            let rec: Value = serde_json::from_str(&raw).unwrap();
            if rec["o"] == owner.as_str() {
                let ends: i64 = rec["e"].as_str().unwrap().parse().unwrap();
                assert!(
                    ends <= killed_at + 15_000 + 1_000,
                    "{part} entry of the killed process lives on: {raw}"
                );
            }
        }
    }

    for (i, r) in others.into_iter().enumerate() {
        let Outcome {
            status,
            stderr: log,
            ..
        } = r.wait(RUN_DEADLINE);
        assert!(status.success(), "process {}: {status}\n{log}", i + 1);
    }
    let deals = s.db.scalar("SELECT COUNT(*) FROM deals").await;
    assert!(deals >= TARGET as i64, "{deals} deals stored");

    // Restarted with the same command, it needs nothing from anyone.
    let Outcome {
        status,
        stderr: log,
        ..
    } = s.start(0, "warn").wait(RUN_DEADLINE);
    assert!(status.success(), "restart: {status}\n{log}");
    let stats = s.server.stats();
    // At most the request in flight at the kill was paid twice.
    assert!(
        stats["productsServedAgain"].as_u64().unwrap() <= 100,
        "{stats}"
    );
    s.finish().await;
}
