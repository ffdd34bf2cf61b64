//! The async gate on tokio's paused clock: no test sleeps in real time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use budget::gate::{Gate, TokenSync};
use budget::policy::Flow;
use budget::{JobId, Ledger, Outcome, Prediction};
use keepa::clock::{Clock, ScaledClock};
use keepa::TokenSnapshot;

fn snap(ts: i64, left: i64, refill_in: i64, rate: i64) -> TokenSnapshot {
    TokenSnapshot {
        timestamp_ms: ts,
        tokens_left: left,
        refill_in_ms: refill_in,
        refill_rate: rate,
    }
}

type G = Gate<Flow, ScaledClock>;

fn gate(token: Option<Box<dyn TokenSync>>) -> G {
    Gate::new(
        Flow::default(),
        Ledger::default(),
        ScaledClock::new(0, 1.0),
        token,
    )
}

/// A /token endpoint returning a fixed bucket state at the gate's time.
struct FakeToken {
    calls: Arc<AtomicU64>,
    clock: ScaledClock,
    left_at: fn(i64) -> i64,
}

impl TokenSync for FakeToken {
    fn sync(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<TokenSnapshot>> + Send + '_>>
    {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.clock.now_ms();
        let left = (self.left_at)(now);
        // Steps land at 30 s + k minutes.
        let refill_in = 60_000 - (now - 30_000).rem_euclid(60_000);
        Box::pin(async move { Some(snap(now, left, refill_in, 5)) })
    }
}

#[tokio::test(start_paused = true)]
async fn gate_bulk_waits_exactly_until_the_refill_step_that_fits() {
    let g = gate(None);
    g.observe(snap(0, 10, 60_000, 5));
    // A fixed 20-item chunk of 12 tokens needs 241: 47 steps at 5/min.
    let p = g
        .acquire_batch(
            JobId(1),
            Prediction::exact(0),
            Prediction::exact(12),
            20,
            20,
        )
        .await
        .unwrap();
    assert_eq!(g.clock().now_ms(), 47 * 60_000);
    assert_eq!(p.items(), 20);
    p.settle(Outcome::Charged {
        consumed: 240,
        snapshot: Some(snap(47 * 60_000, 5, 60_000, 5)),
    });
    assert_eq!(g.balance(), Some(5));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_permit_returns_its_reservation() {
    let g = gate(None);
    g.observe(snap(0, 100, 60_000, 5));
    let p = g
        .acquire_batch(
            JobId(1),
            Prediction::exact(0),
            Prediction::exact(12),
            1,
            100,
        )
        .await
        .unwrap();
    assert_eq!(p.items(), 8);
    assert_eq!(g.balance(), Some(4));
    drop(p);
    assert_eq!(g.balance(), Some(100));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_counts_as_charged_until_a_newer_envelope() {
    let g = gate(None);
    g.observe(snap(0, 100, 60_000, 5));
    let p = g
        .acquire_batch(JobId(1), Prediction::exact(0), Prediction::exact(10), 1, 5)
        .await
        .unwrap();
    p.settle(Outcome::TimedOut { at: 0 });
    assert_eq!(g.balance(), Some(50));
    tokio::time::advance(std::time::Duration::from_millis(10)).await;
    g.observe(snap(10, 100, 59_990, 5));
    assert_eq!(g.balance(), Some(100), "the server never charged it");
}

#[tokio::test(start_paused = true)]
async fn a_429_adopts_the_envelope_and_waits_for_the_next_step_without_a_storm() {
    let calls = Arc::new(AtomicU64::new(0));
    let clock = ScaledClock::new(0, 1.0);
    let token = FakeToken {
        calls: calls.clone(),
        clock: clock.clone(),
        // The server: 0 until the step at 30 s, then 5 more each minute.
        left_at: |t| {
            if t >= 30_000 {
                5 * ((t - 30_000) / 60_000 + 1)
            } else {
                0
            }
        },
    };
    let g: G = Gate::new(
        Flow::default(),
        Ledger::default(),
        clock,
        Some(Box::new(token)),
    );
    g.observe(snap(0, 50, 30_000, 5));
    let p = g
        .acquire_batch(JobId(1), Prediction::exact(0), Prediction::exact(1), 1, 1)
        .await
        .unwrap();
    // Someone else drained the key: 429, nothing charged, balance 0.
    p.settle(Outcome::Refused {
        snapshot: Some(snap(0, 0, 30_000, 5)),
    });
    let p = g
        .acquire_batch(JobId(1), Prediction::exact(0), Prediction::exact(1), 1, 1)
        .await
        .unwrap();
    let now = g.clock().now_ms();
    // The 429 showed 50 tokens taken by someone else: the gate now keeps a
    // buffer of that size, so it waits more than one step, but it only ever
    // wakes at refill steps, and calls /token at most once a minute.
    assert!(
        now >= 30_000 && (now - 30_000) % 60_000 == 0,
        "woke at {now}"
    );
    assert!(g.balance().unwrap() >= 1);
    drop(p);
    let calls = calls.load(Ordering::SeqCst);
    assert!(
        calls <= (now / 60_000 + 1) as u64,
        "{calls} /token calls by {now}"
    );
}

#[tokio::test(start_paused = true)]
async fn periodic_runs_start_on_time_while_bulk_takes_the_rest() {
    let g = gate(None);
    g.observe(snap(0, 300, 60_000, 5));
    g.register_periodic(JobId(0), 0, 60_000, 60_000, Prediction::exact(1));
    let refresher = {
        let g = g.clone();
        tokio::spawn(async move {
            let mut starts = vec![];
            for _ in 0..30 {
                let p = g.acquire_periodic(JobId(0)).await.unwrap();
                let now = g.clock().now_ms();
                starts.push(now);
                let left = g.balance().unwrap();
                p.settle(Outcome::Charged {
                    consumed: 1,
                    snapshot: Some(snap(now, left, 60_000 - now % 60_000, 5)),
                });
                // The refresher's own cadence: next run due a minute later.
                let next = (now / 60_000 + 1) * 60_000;
                g.clock().sleep_until(next).await;
            }
            starts
        })
    };
    let backfill = {
        let g = g.clone();
        tokio::spawn(async move {
            let mut items = 0u32;
            while g.clock().now_ms() < 30 * 60_000 {
                let p = g
                    .acquire_batch(
                        JobId(1),
                        Prediction::exact(0),
                        Prediction::exact(12),
                        1,
                        100,
                    )
                    .await
                    .unwrap();
                let now = g.clock().now_ms();
                items += p.items();
                let cost = 12 * p.items() as i64;
                let left = g.balance().unwrap();
                p.settle(Outcome::Charged {
                    consumed: cost,
                    snapshot: Some(snap(now, left, 60_000 - now % 60_000, 5)),
                });
            }
            items
        })
    };
    let starts = refresher.await.unwrap();
    for (i, s) in starts.iter().enumerate() {
        let due = i as i64 * 60_000;
        assert!(*s >= due && *s <= due + 60_000, "run {i} at {s}");
    }
    let items = backfill.await.unwrap();
    // 300 at start + 30 steps × 5 - 30 refresh runs = 420 tokens: 35 items.
    assert!(items >= 34, "{items}");
}
