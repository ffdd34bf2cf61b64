//! Gates in several "processes" (one Redis connection and gate each) on one
//! shared ledger, and the one-off surface (`KEEPA_HARVEST_TEST_REDIS`).
#![cfg(feature = "redis")]

mod redis_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use budget::gate::Gate;
use budget::policy::{ControlledDeficit, Flow};
use budget::redis_ledger::{RedisLedger, RedisOptions};
use budget::shared::{JobClass, SharedBudget, SharedError, SharedOptions};
use budget::store::Published;
use budget::{
    Bulk, JobId, Ledger, LedgerStore, Need, Outcome, Periodic, PolicyKind, Prediction, SeedRules,
};
use keepa::clock::ManualClock;
use redis_common::*;

const T0: i64 = 1_700_000_000_000;

fn chunk(weight: u32, per_item: i64, max: u32) -> Need {
    Need::Bulk(Bulk {
        per_request: Prediction::exact(0),
        per_item: Prediction::exact(per_item),
        min_batch: 1,
        max_batch: max,
        weight,
        not_before: i64::MIN,
        finishing: false,
        remaining: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lesson_3_four_workers_each_seeing_5_available_never_drive_the_key_to_minus_150() {
    let Some(url) =
        redis_url("lesson_3_four_workers_each_seeing_5_available_never_drive_the_key_to_minus_150")
    else {
        return;
    };
    let name = unique_name("lesson3");
    // The seed's controlled deficit with threshold 0: one 40-token chunk may
    // start at a balance of 5 and dig to -35; then everyone waits for refill.
    let policy = ControlledDeficit {
        rules: SeedRules {
            deficit_threshold: 0,
            deficit_resume: 5,
            ..Default::default()
        },
    };
    let first = connect(&url, &name).await;
    let mut seed = connect(&url, &name).await;
    LedgerStore::observe(&mut seed, snap(T0, 5, 5))
        .await
        .unwrap();
    let granted = Arc::new(AtomicUsize::new(0));
    let mut workers = vec![];
    for w in 0..4 {
        let ledger = if w == 0 {
            None
        } else {
            Some(connect(&url, &name).await)
        };
        let url = url.clone();
        let name = name.clone();
        let granted = granted.clone();
        workers.push(tokio::spawn(async move {
            let ledger = match ledger {
                Some(l) => l,
                None => connect(&url, &name).await,
            };
            let gate = Gate::new(policy, ledger, ManualClock::new(T0), None);
            // Each worker sees "5 available" and wants one 40-token chunk.
            let got = tokio::time::timeout(
                Duration::from_millis(600),
                gate.acquire(JobId(1), chunk(1, 40, 1)),
            )
            .await;
            if let Ok(Ok(p)) = got {
                granted.fetch_add(1, Ordering::SeqCst);
                // Keep it in flight: the request is being sent.
                std::mem::forget(p);
            }
            gate
        }));
    }
    let mut gates = vec![];
    for w in workers {
        gates.push(w.await.unwrap());
    }
    let v = first.peek().await.unwrap().view.unwrap();
    assert_eq!(
        granted.load(Ordering::SeqCst),
        1,
        "exactly one chunk fits the policy"
    );
    assert_eq!(v.reserved, 40);
    assert_eq!(v.balance_at(T0), -35, "never -155 (the seed's -150)");
    cleanup(&url, &first).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_fair_share_holds_across_processes() {
    let Some(url) = redis_url("bulk_fair_share_holds_across_processes") else {
        return;
    };
    let name = unique_name("fair");
    let mut seed = connect(&url, &name).await;
    // Empty bucket, 20 tokens a minute, 10-token requests: two fit per step,
    // and both processes are waiting whenever a step lands.
    LedgerStore::observe(&mut seed, snap(T0, 0, 20))
        .await
        .unwrap();
    let clock = ManualClock::new(T0);
    let order = Arc::new(Mutex::new(Vec::<char>::new()));
    let mut procs = vec![];
    for (tag, weight) in [('A', 3u32), ('B', 1u32)] {
        let gate = Gate::new(
            Flow::default(),
            connect(&url, &name).await,
            clock.clone(),
            None,
        );
        let order = order.clone();
        procs.push(tokio::spawn(async move {
            loop {
                let p = gate.acquire(JobId(1), chunk(weight, 10, 1)).await.unwrap();
                order.lock().unwrap().push(tag);
                // In flight for the rest of the test: the tokens are spent.
                std::mem::forget(p);
            }
        }));
    }
    let steps = 12;
    for k in 1..=steps {
        wait_ms(80).await;
        clock.set_ms(T0 + k * 60_000);
    }
    wait_ms(150).await;
    for p in &procs {
        p.abort();
    }
    let order: String = order.lock().unwrap().iter().collect();
    assert!(
        order.len() as i64 <= 2 * steps,
        "never more than refill pays for: {order}"
    );
    assert!(
        order.len() as i64 >= 2 * steps - 2,
        "refill is used: {order}"
    );
    let a = order.chars().filter(|c| *c == 'A').count() as f64 / order.len() as f64;
    // Weights 3:1: A gets about 3/4; alternating would give 1/2.
    assert!((0.65..=0.85).contains(&a), "A's share {a:.2}: {order}");
    cleanup(&url, &seed).await;
}

#[tokio::test]
async fn another_process_s_periodic_job_keeps_its_reserve() {
    let Some(url) = redis_url("another_process_s_periodic_job_keeps_its_reserve") else {
        return;
    };
    let name = unique_name("reserve");
    let s = snap(T0, 300, 5);
    let refresh = Periodic {
        next_due: T0 + 30_000,
        period_ms: 60_000,
        max_delay_ms: 5_000,
        cost: Prediction::exact(100),
        ..Default::default()
    };
    // In one process: the reference grants with and without the refresher.
    let items_in_process = |with_refresh: bool| async move {
        let g = Gate::new(
            Flow::default(),
            Ledger::default(),
            ManualClock::new(T0),
            None,
        );
        g.observe(s);
        if with_refresh {
            g.register_periodic(JobId(0), refresh.next_due, 60_000, 5_000, refresh.cost);
        }
        g.acquire(JobId(1), chunk(1, 10, 100))
            .await
            .unwrap()
            .items()
    };
    let free = items_in_process(false).await;
    let reserved = items_in_process(true).await;
    assert!(
        reserved < free,
        "the refresher's reserve matters here ({reserved} vs {free})"
    );
    // Across processes: A registers the refresher, B runs the bulk job.
    let mut a = connect(&url, &name).await;
    LedgerStore::observe(&mut a, s).await.unwrap();
    LedgerStore::publish(
        &mut a,
        &Published {
            waiting: vec![],
            periodic: vec![(JobId(0), refresh)],
        },
    )
    .await
    .unwrap();
    let b = Gate::new(
        Flow::default(),
        connect(&url, &name).await,
        ManualClock::new(T0),
        None,
    );
    let p = b.acquire(JobId(1), chunk(1, 10, 100)).await.unwrap();
    assert_eq!(p.items(), reserved, "B leaves A's refresher its reserve");
    p.settle_confirmed(Outcome::Unsent).await.unwrap();
    cleanup(&url, &a).await;
}

async fn shared(url: &str, name: &budget::redis_ledger::LedgerName) -> SharedBudget {
    SharedBudget::connect(url, name.clone()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_off_permit_comes_from_the_shared_budget() {
    let Some(url) = redis_url("a_one_off_permit_comes_from_the_shared_budget") else {
        return;
    };
    let name = unique_name("oneoff");
    let dashboard = shared(&url, &name).await;
    let harvester = connect(&url, &name).await;
    let now = keepa::clock::Clock::now_ms(dashboard.gate().clock());
    assert!(dashboard.observe(snap(now, 100, 5)).await.unwrap());
    let permit = dashboard
        .acquire_one(
            JobClass::Interactive {
                max_delay: Duration::from_secs(2),
            },
            Prediction::new(6, 12),
        )
        .await
        .unwrap();
    // The harvest processes see the reservation at once.
    assert_eq!(harvester.peek().await.unwrap().view.unwrap().reserved, 12);
    permit
        .settle_confirmed(Outcome::Charged {
            consumed: 6,
            snapshot: Some(snap(now + 5, 94, 5)),
        })
        .await
        .unwrap();
    let v = harvester.peek().await.unwrap().view.unwrap();
    assert_eq!((v.reserved, v.snapshot.tokens_left), (0, 94));
    // A permit dropped unsent returns its tokens.
    let p = dashboard
        .acquire_one(JobClass::Background { weight: 1 }, Prediction::exact(5))
        .await
        .unwrap();
    drop(p);
    let mut reserved = -1;
    for _ in 0..20 {
        reserved = harvester.peek().await.unwrap().view.unwrap().reserved;
        if reserved == 0 {
            break;
        }
        wait_ms(10).await;
    }
    assert_eq!(reserved, 0);
    // Balance 0 and the next step 59 s away: a person is not kept waiting.
    dashboard.observe(snap(now + 1_000, 0, 5)).await.unwrap();
    let late = dashboard
        .acquire_one(
            JobClass::Interactive {
                max_delay: Duration::from_millis(200),
            },
            Prediction::exact(1),
        )
        .await
        .unwrap_err();
    assert_eq!(late, SharedError::Late(Duration::from_millis(200)));
    // The policy is the ledger's: a dashboard requiring another is refused.
    let other = budget::redis_ledger::PolicySpec::of(
        &PolicyKind::WaitForMax(Default::default()),
        Default::default(),
    );
    let err = SharedBudget::connect_with(
        &url,
        name.clone(),
        SharedOptions {
            policy: Some(other),
            redis: RedisOptions::default(),
            clock: None,
        },
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(
        err,
        SharedError::Ledger(budget::LedgerError::PolicyConflict { .. })
    ));
    let cleanup_handle: RedisLedger = connect(&url, &name).await;
    cleanup(&url, &cleanup_handle).await;
}
