//! The Redis ledger against a real Redis (`KEEPA_HARVEST_TEST_REDIS`): the
//! in-process ledger's semantics (its tests are the specification), shared
//! by several connections ("processes") on one key.
#![cfg(feature = "redis")]

mod redis_common;

use std::time::Duration;

use budget::ledger::is_newer;
use budget::redis_ledger::{LedgerName, PolicyMode, PolicySpec, RedisOptions};
use budget::store::Published;
use budget::{JobId, Ledger, LedgerError, LedgerStore, Outcome, Periodic, Prediction};
use keepa::TokenSnapshot;
use redis_common::*;

/// One step of a replay, applied to both ledgers.
#[derive(Debug, Clone, Copy)]
enum Op {
    Observe(TokenSnapshot),
    Reserve(u32, i64),
    /// Settle the n-th reservation made.
    Settle(usize, Outcome),
}

/// Replays `ops` on an in-process `Ledger` and on the Redis ledger and
/// compares what the decision core would see after every step.
async fn replay_matches(url: &str, tag: &str, ops: &[Op], at: &[i64]) {
    let name = unique_name(tag);
    let mut redis = connect(url, &name).await;
    let mut local = Ledger::default();
    let mut ids_local = vec![];
    let mut ids_redis = vec![];
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Observe(s) => {
                let a = local.observe(s);
                let b = LedgerStore::observe(&mut redis, s).await.unwrap();
                assert_eq!(a, b, "step {i}: adoption of {s:?}");
            }
            Op::Reserve(job, amount) => {
                ids_local.push(local.reserve(JobId(job), amount));
                let id = LedgerStore::reserve(&mut redis, JobId(job), amount, None, None)
                    .await
                    .unwrap()
                    .expect("unconditional reservation");
                ids_redis.push(id);
            }
            Op::Settle(n, outcome) => {
                local.settle(ids_local[n], outcome);
                LedgerStore::settle(&mut redis, ids_redis[n], outcome)
                    .await
                    .unwrap();
            }
        }
        let lv = local.view().unwrap();
        let rv = redis.peek().await.unwrap().view.unwrap();
        assert_eq!(lv.snapshot, rv.snapshot, "step {i} {op:?}: snapshot");
        assert_eq!(lv.reserved, rv.reserved, "step {i} {op:?}: reserved");
        assert_eq!(lv.foreign, rv.foreign, "step {i} {op:?}: foreign estimate");
        for t in at {
            assert_eq!(
                lv.balance_at(*t),
                rv.balance_at(*t),
                "step {i} {op:?}: balance at {t}"
            );
        }
    }
    cleanup(url, &redis).await;
}

#[tokio::test]
async fn settlement_follows_the_in_process_ledger() {
    let Some(url) = redis_url("settlement_follows_the_in_process_ledger") else {
        return;
    };
    // `reservations_survive_snapshots_and_leave_only_by_settlement`, then a
    // charge whose envelope is older than the one held (already contained in
    // it: only the reservation leaves) and one newer (adopted, counted ours).
    let ops = [
        Op::Observe(snap(0, 100, 5)),
        Op::Reserve(1, 30),
        Op::Reserve(2, 20),
        Op::Observe(snap(1_000, 100, 5)),
        Op::Settle(0, Outcome::Unsent),
        Op::Settle(
            1,
            Outcome::Charged {
                consumed: 18,
                snapshot: Some(snap(2_000, 82, 5)),
            },
        ),
        Op::Settle(1, Outcome::Unsent),
        Op::Reserve(3, 40),
        Op::Reserve(3, 40),
        Op::Observe(snap(5_000, 70, 5)),
        // Its envelope (4 000) is older than the one held (5 000): contained.
        Op::Settle(
            2,
            Outcome::Charged {
                consumed: 12,
                snapshot: Some(snap(4_000, 70, 5)),
            },
        ),
        // Newer: adopted; 38 ours, the rest of the gap foreign.
        Op::Settle(
            3,
            Outcome::Charged {
                consumed: 38,
                snapshot: Some(snap(6_000, 20, 5)),
            },
        ),
        // A 429 adopts its envelope and charges nothing.
        Op::Reserve(5, 10),
        Op::Settle(
            4,
            Outcome::Refused {
                snapshot: Some(snap(7_000, 0, 5)),
            },
        ),
        // Same millisecond, lower balance: newer.
        Op::Observe(snap(7_000, -3, 5)),
        Op::Observe(snap(7_000, 2, 5)),
    ];
    replay_matches(&url, "settle", &ops, &[7_000, 60_000, 600_000]).await;
}

#[tokio::test]
async fn timeouts_and_foreign_spend_follow_the_in_process_ledger() {
    let Some(url) = redis_url("timeouts_and_foreign_spend_follow_the_in_process_ledger") else {
        return;
    };
    // `a_timeout_counts_as_charged_until_a_newer_envelope` and
    // `foreign_spending_is_the_gap_between_projection_and_report`.
    let ops = [
        Op::Observe(snap(0, 100, 5)),
        Op::Reserve(1, 60),
        Op::Settle(0, Outcome::TimedOut { at: 10_000 }),
        Op::Observe(snap(9_000, 100, 5)),
        Op::Observe(snap(11_000, 100, 5)),
        Op::Reserve(1, 10),
        Op::Settle(
            1,
            Outcome::Charged {
                consumed: 10,
                snapshot: Some(snap(120_000, 70, 5)),
            },
        ),
        Op::Observe(snap(180_000, 500, 5)),
        // A rate change: no foreign estimate across it.
        Op::Observe(snap(240_000, 10, 20)),
        // Own charges in one millisecond are not foreign.
        Op::Reserve(2, 1),
        Op::Settle(
            2,
            Outcome::Charged {
                consumed: 1,
                snapshot: Some(snap(240_000, 9, 20)),
            },
        ),
        Op::Reserve(2, 240),
        Op::Settle(
            3,
            Outcome::Charged {
                consumed: 240,
                snapshot: Some(snap(240_000, -231, 20)),
            },
        ),
    ];
    replay_matches(&url, "timeout", &ops, &[10_000, 11_000, 300_000, 3_600_000]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn newest_timestamp_wins_under_concurrent_adoption() {
    let Some(url) = redis_url("newest_timestamp_wins_under_concurrent_adoption") else {
        return;
    };
    let name = unique_name("adopt");
    // Eight processes, each with its own connection, each reporting 40
    // envelopes in its own (scrambled) order.
    let mut all = vec![];
    let mut tasks = vec![];
    for p in 0..8i64 {
        let snaps: Vec<TokenSnapshot> = (0..40i64)
            .map(|i| {
                let k = (i * 7 + p * 13) % 40;
                snap(1_000 + k * 250 + p, 1_000 - k * 10 - p, 5)
            })
            .collect();
        all.extend(snaps.iter().copied());
        let mut l = connect(&url, &name).await;
        tasks.push(tokio::spawn(async move {
            for s in snaps {
                LedgerStore::observe(&mut l, s).await.unwrap();
            }
            l
        }));
    }
    let mut ledgers = vec![];
    for t in tasks {
        ledgers.push(t.await.unwrap());
    }
    let newest = all
        .iter()
        .copied()
        .reduce(|a, b| if is_newer(&b, &a) { b } else { a })
        .unwrap();
    let seen = ledgers[0].peek().await.unwrap().view.unwrap().snapshot;
    assert_eq!(seen, newest);
    // And an older one arriving last changes nothing.
    assert!(
        !LedgerStore::observe(&mut ledgers[1], snap(1_000, 5_000, 5))
            .await
            .unwrap()
    );
    assert_eq!(
        ledgers[2].peek().await.unwrap().view.unwrap().snapshot,
        newest
    );
    cleanup(&url, &ledgers[0]).await;
}

#[tokio::test]
async fn an_older_envelope_arriving_late_leaves_in_flight_reservations_intact() {
    let Some(url) =
        redis_url("an_older_envelope_arriving_late_leaves_in_flight_reservations_intact")
    else {
        return;
    };
    let name = unique_name("late");
    let mut a = connect(&url, &name).await;
    let mut b = connect(&url, &name).await;
    LedgerStore::observe(&mut a, snap(2_000, 100, 5))
        .await
        .unwrap();
    LedgerStore::reserve(&mut a, JobId(1), 30, None, None)
        .await
        .unwrap()
        .unwrap();
    LedgerStore::reserve(&mut b, JobId(1), 20, None, None)
        .await
        .unwrap()
        .unwrap();
    // The seed's bug: a worker SETs tokensLeft from an old response.
    assert!(!LedgerStore::observe(&mut b, snap(1_000, 300, 5))
        .await
        .unwrap());
    let v = a.peek().await.unwrap().view.unwrap();
    assert_eq!(
        (v.snapshot.tokens_left, v.reserved, v.balance_at(2_000)),
        (100, 50, 50)
    );
    // Even a newer envelope leaves the reservations in flight alone.
    assert!(LedgerStore::observe(&mut b, snap(3_000, 100, 5))
        .await
        .unwrap());
    let v = a.peek().await.unwrap().view.unwrap();
    assert_eq!((v.reserved, v.balance_at(3_000)), (50, 50));
    cleanup(&url, &a).await;
}

#[tokio::test]
async fn a_lease_expires_after_its_owner_vanishes_and_not_while_it_lives() {
    let Some(url) = redis_url("a_lease_expires_after_its_owner_vanishes_and_not_while_it_lives")
    else {
        return;
    };
    let name = unique_name("lease");
    let lease = Duration::from_millis(300);
    // A: a process that stops renewing (killed). C: one that lives.
    let mut a = connect_with(
        &url,
        &name,
        RedisOptions {
            renew_every: None,
            ..RedisOptions::with_lease(lease)
        },
    )
    .await;
    let mut c = connect_with(&url, &name, RedisOptions::with_lease(lease)).await;
    let observer = connect(&url, &name).await;
    LedgerStore::observe(&mut a, snap(0, 100, 5)).await.unwrap();
    LedgerStore::reserve(&mut a, JobId(1), 40, None, None)
        .await
        .unwrap()
        .unwrap();
    LedgerStore::reserve(&mut c, JobId(1), 25, None, None)
        .await
        .unwrap()
        .unwrap();
    let mine = Published {
        waiting: vec![],
        periodic: vec![(
            JobId(7),
            Periodic {
                next_due: 0,
                period_ms: 60_000,
                max_delay_ms: 10_000,
                cost: Prediction::exact(1),
                ..Default::default()
            },
        )],
    };
    LedgerStore::publish(&mut a, &mine).await.unwrap();
    let l = observer.peek().await.unwrap();
    assert_eq!(l.view.unwrap().reserved, 65);
    assert_eq!(l.others.len(), 1, "A's periodic job is visible to others");
    assert!(l.recheck_in_ms.is_some_and(|ms| ms <= 300));
    // Real time must pass for a Redis-TIME lease; bounded: 1.5 leases.
    wait_ms(450).await;
    let l = observer.peek().await.unwrap();
    assert_eq!(
        l.view.unwrap().reserved,
        25,
        "A's lease ended, C's was renewed"
    );
    assert!(
        l.others.is_empty(),
        "A's published job ended with its lease"
    );
    // Nothing of A blocks: its late settlement is a harmless no-op.
    drop(a);
    cleanup(&url, &c).await;
}

#[tokio::test]
async fn policy_parameters_are_shared_and_a_different_policy_is_refused() {
    let Some(url) = redis_url("policy_parameters_are_shared_and_a_different_policy_is_refused")
    else {
        return;
    };
    let name = unique_name("policy");
    let a = connect(&url, &name).await;
    let b = connect(&url, &name).await;
    let deficit = PolicySpec {
        name: "controlled-deficit".into(),
        rules: budget::SeedRules {
            deficit_threshold: 80,
            ..Default::default()
        },
        ..PolicySpec::default()
    };
    let got = a.agree_policy(&deficit, PolicyMode::Require).await.unwrap();
    assert_eq!(got, deficit);
    // B, configured with the default, adopts what is stored: both decide alike.
    let got = b
        .agree_policy(&PolicySpec::default(), PolicyMode::Adopt)
        .await
        .unwrap();
    assert_eq!(got, deficit);
    assert_eq!(
        budget::Policy::name(&got.policy().unwrap()),
        "controlled-deficit"
    );
    // Requiring another one is an error value naming both.
    let err = b
        .agree_policy(&PolicySpec::default(), PolicyMode::Require)
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::PolicyConflict { .. }), "{err}");
    // Replace is explicit.
    let got = b
        .agree_policy(&PolicySpec::default(), PolicyMode::Replace)
        .await
        .unwrap();
    assert_eq!(got, PolicySpec::default());
    cleanup(&url, &a).await;
}

#[tokio::test]
async fn the_api_key_appears_in_no_key_and_no_value() {
    let Some(url) = redis_url("the_api_key_appears_in_no_key_and_no_value") else {
        return;
    };
    let secret = "Zq9SECRETkeyDoNotLeak1234567890abcdefABCDEFghijklmnopqrstuvwxyz00";
    let key = keepa::ApiKey::new(secret).unwrap();
    let name = LedgerName::for_key(&key);
    assert!(!name.as_str().contains(secret) && !format!("{name:?}").contains(secret));
    assert_eq!(name, LedgerName::for_key(&key), "the same on every host");
    let mut l = connect(&url, &name).await;
    LedgerStore::observe(&mut l, snap(0, 100, 5)).await.unwrap();
    LedgerStore::reserve(&mut l, JobId(1), 5, None, None)
        .await
        .unwrap();
    l.agree_policy(&PolicySpec::default(), PolicyMode::Adopt)
        .await
        .unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    for k in l.keys() {
        assert!(!k.contains(secret));
        let dump: Option<Vec<u8>> = redis::cmd("DUMP")
            .arg(k)
            .query_async(&mut con)
            .await
            .unwrap();
        let dump = String::from_utf8_lossy(&dump.unwrap_or_default()).to_string();
        assert!(!dump.contains(secret), "{k} holds the key");
    }
    assert!(!format!("{l:?}").contains(secret));
    cleanup(&url, &l).await;
}

#[tokio::test]
async fn a_redis_failure_is_an_error_value() {
    // No Redis needed: nothing listens on this port.
    let name = LedgerName::new("unreachable").unwrap();
    let err = budget::redis_ledger::RedisLedger::connect(
        "redis://:hunter2@127.0.0.1:1/",
        &name,
        RedisOptions {
            command_timeout: Duration::from_millis(300),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, LedgerError::Unavailable(_)), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}
