//! Ledger operations per second and their latency: the in-process ledger
//! beside the Redis ledger (loopback only, a few seconds in all).
//!
//! ```text
//! cargo run --release -p budget --example ledger_bench --features redis [-- redis://127.0.0.1:6379/]
//! ```
//! The URL defaults to `KEEPA_HARVEST_TEST_REDIS`, then `redis://127.0.0.1:6379/`.
//! It writes only under its own ledger name and deletes those keys at the end.

use std::future::Future;
use std::time::{Duration, Instant};

use budget::gate::Gate;
use budget::policy::Flow;
use budget::redis_ledger::{LedgerName, RedisLedger, RedisOptions};
use budget::store::Published;
use budget::{JobId, Ledger, LedgerStore, Outcome, Prediction};
use keepa::clock::ManualClock;
use keepa::TokenSnapshot;

const T0: i64 = 1_700_000_000_000;
const BUDGET: Duration = Duration::from_millis(600);

fn snap(ts: i64, left: i64) -> TokenSnapshot {
    TokenSnapshot {
        timestamp_ms: ts,
        tokens_left: left,
        refill_in_ms: 60_000 - ts.rem_euclid(60_000),
        refill_rate: 4_000,
    }
}

struct Stats {
    name: String,
    n: usize,
    secs: f64,
    lat: Vec<Duration>,
}

impl Stats {
    fn row(&self) -> String {
        let mut l = self.lat.clone();
        l.sort_unstable();
        let q = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
        format!(
            "| {:<44} | {:>10.0} | {:>9.1} | {:>9.1} |",
            self.name,
            self.n as f64 / self.secs,
            q(0.50).as_secs_f64() * 1e6,
            q(0.99).as_secs_f64() * 1e6
        )
    }
}

/// Runs `op` for about [`BUDGET`], timing each call.
async fn measure<F, Fut>(name: &str, mut op: F) -> Stats
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    let start = Instant::now();
    let mut lat = Vec::new();
    let mut i = 0u64;
    while start.elapsed() < BUDGET {
        let t = Instant::now();
        op(i).await;
        lat.push(t.elapsed());
        i += 1;
    }
    Stats {
        name: name.to_string(),
        n: lat.len(),
        secs: start.elapsed().as_secs_f64(),
        lat,
    }
}

async fn suite<L: LedgerStore>(tag: &str, mut make: impl FnMut() -> L) -> Vec<Stats> {
    let mut out = vec![];
    let mut l = make();
    l.observe(snap(T0, 200_000)).await.unwrap();
    let mine = Published::default();
    out.push(
        measure(&format!("{tag}: load (view to decide on)"), |_| {
            let f = l.load(&mine);
            async move {
                f.await.unwrap();
            }
        })
        .await,
    );
    out.push(
        measure(&format!("{tag}: observe (newer envelope)"), |i| {
            let f = l.observe(snap(T0 + 1 + i as i64, 200_000));
            async move {
                f.await.unwrap();
            }
        })
        .await,
    );
    let mut ts = T0 + 10_000_000;
    let begin = Instant::now();
    let mut lat = vec![];
    while begin.elapsed() < BUDGET {
        ts += 1;
        let t = Instant::now();
        let id = l.reserve(JobId(1), 12, None, None).await.unwrap().unwrap();
        l.settle(
            id,
            Outcome::Charged {
                consumed: 12,
                snapshot: Some(snap(ts, 200_000)),
            },
        )
        .await
        .unwrap();
        lat.push(t.elapsed());
    }
    out.push(Stats {
        name: format!("{tag}: reserve + settle (charged)"),
        n: lat.len(),
        secs: begin.elapsed().as_secs_f64(),
        lat,
    });
    // The whole gate: decide on a load, reserve conditionally, settle.
    let clock = ManualClock::new(T0 + 20_000_000);
    let gate = Gate::new(Flow::default(), make(), clock, None);
    gate.observe_confirmed(snap(T0 + 20_000_000, 200_000))
        .await
        .unwrap();
    out.push(
        measure(&format!("{tag}: gate acquire + settle"), |_| {
            let gate = gate.clone();
            async move {
                let p = gate
                    .acquire_batch(JobId(1), Prediction::exact(0), Prediction::exact(1), 1, 10)
                    .await
                    .unwrap();
                p.settle_confirmed(Outcome::Unsent).await.unwrap();
            }
        })
        .await,
    );
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("KEEPA_HARVEST_TEST_REDIS").ok())
        .unwrap_or_else(|| "redis://127.0.0.1:6379/".to_string());
    let mut rows = suite("in-process", Ledger::default).await;

    let name = LedgerName::new(&format!("bench-{}", std::process::id()))?;
    let mut ledgers = vec![];
    for _ in 0..6 {
        ledgers.push(RedisLedger::connect(&url, &name, RedisOptions::default()).await?);
    }
    let keys: Vec<String> = ledgers[0].keys().iter().map(|k| k.to_string()).collect();
    let mut pool = ledgers.into_iter();
    let first = pool.next().into_iter().chain(pool.next());
    let mut first = first.collect::<Vec<_>>();
    rows.extend(suite("redis", || first.pop().expect("two ledgers")).await);

    // Four processes at once, each its own connection and gate.
    let start = Instant::now();
    let mut tasks = vec![];
    for l in pool.take(4) {
        tasks.push(tokio::spawn(async move {
            let gate = Gate::new(Flow::default(), l, ManualClock::new(T0 + 30_000_000), None);
            let mut lat = vec![];
            while start.elapsed() < BUDGET {
                let t = Instant::now();
                let p = gate
                    .acquire_batch(JobId(1), Prediction::exact(0), Prediction::exact(1), 1, 10)
                    .await
                    .unwrap();
                p.settle_confirmed(Outcome::Unsent).await.unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = vec![];
    for t in tasks {
        lat.extend(t.await?);
    }
    rows.push(Stats {
        name: "redis: gate acquire + settle, 4 processes".into(),
        n: lat.len(),
        secs: start.elapsed().as_secs_f64(),
        lat,
    });

    println!("| operation | ops/s | p50 µs | p99 µs |");
    println!("|---|---:|---:|---:|");
    for r in &rows {
        println!("{}", r.row());
    }
    let client = redis::Client::open(url.as_str())?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut con).await?;
    Ok(())
}
