//! Behaviour of the `flow` policy and the seed's policies through the
//! public scheduler.

use budget::policy::{ControlledDeficit, Flow, WaitForMax};
use budget::*;
use keepa::TokenSnapshot;

fn snap(ts: i64, left: i64, rate: i64) -> TokenSnapshot {
    TokenSnapshot {
        timestamp_ms: ts,
        tokens_left: left,
        refill_in_ms: 60_000 - ts.rem_euclid(60_000),
        refill_rate: rate,
    }
}

fn refresh(next_due: i64, period_s: i64, max_delay_s: i64, cost: i64) -> Demand {
    Demand {
        job: JobId(9),
        need: Need::Periodic(Periodic {
            next_due,
            period_ms: period_s * 1000,
            max_delay_ms: max_delay_s * 1000,
            cost: Prediction::exact(cost),
            ..Default::default()
        }),
    }
}

fn bulk(job: u32, per_item: i64, min: u32, max: u32) -> Demand {
    Demand {
        job: JobId(job),
        need: Need::Bulk(Bulk {
            per_request: Prediction::exact(0),
            per_item: Prediction::exact(per_item),
            min_batch: min,
            max_batch: max,
            weight: 1,
            not_before: 0,
            finishing: false,
            remaining: None,
        }),
    }
}

fn sched<P: Policy>(p: P, s: TokenSnapshot) -> Scheduler<P> {
    let mut sc = Scheduler::new(p, Ledger::default());
    sc.synced(s.timestamp_ms, s);
    sc
}

/// Drives `s` from `t` as the server would answer, the bucket projected
/// from `s0` (a constant rate, nobody else spending): every wait wakes at
/// the next refill step at the latest, and a `/token` sync is answered with
/// the bucket. Returns the first grant and its instant.
fn drive<P: Policy>(
    s: &mut Scheduler<P>,
    s0: TokenSnapshot,
    mut t: i64,
    d: &[Demand],
) -> (i64, Grant) {
    let server = keepa::tokens::TokenBucket::from_snapshot(&s0);
    for _ in 0..10_000 {
        match s.decide(t, d) {
            Decision::Go(g) => return (t, g),
            Decision::Sync => {
                let b = server.projected_balance(t);
                s.synced(
                    t,
                    TokenSnapshot {
                        timestamp_ms: t,
                        tokens_left: b,
                        refill_in_ms: 60_000 - (t - s0.next_refill_at_ms()).rem_euclid(60_000),
                        refill_rate: s0.refill_rate,
                    },
                );
            }
            Decision::Wait { until: Some(u) } => {
                assert!(
                    u > t && u <= t + 60_000,
                    "wakes by the next step: {t} → {u}"
                );
                t = u;
            }
            other => panic!("unexpected {other:?} at {t}"),
        }
    }
    panic!("no grant")
}

#[test]
fn flow_wait_ends_exactly_when_refill_makes_the_batch_fit() {
    // 5/min, balance 10, a fixed 20-item chunk at 12 tokens: needs 241.
    let d = [bulk(1, 12, 20, 20)];
    let s0 = snap(0, 10, 5);
    let mut s = sched(Flow::default(), s0);
    // 10 + 5k >= 241 → k = 47 steps; flow looks again at every step on the
    // way (a plan change shows only in an envelope).
    let (at, g) = drive(&mut s, s0, 0, &d);
    assert_eq!(at, 47 * 60_000);
    assert_eq!(g.items, 20);
}

#[test]
fn flow_notices_a_plan_change_at_the_next_step_while_bulk_waits() {
    // 5/min, balance 10, the 241-token chunk: 47 steps at 5/min. The plan
    // becomes 100/min unannounced before the first step.
    let d = [bulk(1, 12, 20, 20)];
    let mut s = sched(Flow::default(), snap(0, 10, 5));
    assert_eq!(
        s.decide(0, &d),
        Decision::Wait {
            until: Some(60_000)
        }
    );
    // At the step the view rests on refill no envelope confirmed: re-read.
    assert_eq!(s.decide(60_000, &d), Decision::Sync);
    s.synced(60_000, snap(60_000, 110, 100));
    assert_eq!(
        s.decide(60_000, &d),
        Decision::Wait {
            until: Some(120_000)
        }
    );
    assert_eq!(s.decide(120_000, &d), Decision::Sync);
    s.synced(120_000, snap(120_000, 210, 100));
    assert_eq!(
        s.decide(120_000, &d),
        Decision::Wait {
            until: Some(180_000)
        }
    );
    assert_eq!(s.decide(180_000, &d), Decision::Sync);
    s.synced(180_000, snap(180_000, 310, 100));
    assert!(matches!(s.decide(180_000, &d), Decision::Go(g) if g.items == 20));
}

#[test]
fn flow_sizes_the_batch_to_the_balance_and_leaves_it_positive() {
    for rate in [5, 20, 250, 4000] {
        let cap = 60 * rate;
        let mut s = sched(Flow::default(), snap(0, cap, rate));
        let d = [bulk(1, 7, 1, 100)];
        let Decision::Go(g) = s.decide(0, &d) else {
            panic!()
        };
        assert_eq!(g.items as i64, ((cap - 1) / 7).min(100), "rate {rate}");
        assert!(cap - g.cost.upper_bound >= 1);
    }
}

#[test]
fn flow_keeps_the_periodic_run_admissible_by_its_deadline() {
    // Two periodic runs of 50 tokens due in 30 s with no slack; 5/min;
    // balance 60. Whichever runs second must still find a positive balance
    // after the other's 50: a bulk request must leave 51, so no item of 12.
    let mut other = refresh(30_000, 3600, 0, 50);
    other.job = JobId(8);
    let d = [refresh(30_000, 3600, 0, 50), other, bulk(1, 12, 1, 100)];
    let mut s = sched(Flow::default(), snap(0, 60, 5));
    assert!(matches!(s.decide(0, &d), Decision::Wait { .. }));
    // With balance 63 one item fits: 63 - 12 = 51 >= 50 + 1.
    let mut s = sched(Flow::default(), snap(0, 63, 5));
    assert!(matches!(s.decide(0, &d), Decision::Go(g) if g.items == 1));
}

#[test]
fn flow_refuses_an_item_that_never_fits_with_periodic_jobs() {
    // Bucket 300 at 5/min; one item costs 400; a refresher every minute.
    let d = [refresh(60_000, 60, 60, 1), bulk(1, 400, 1, 1)];
    let mut s = sched(Flow::default(), snap(0, 300, 5));
    match s.decide(0, &d) {
        Decision::Refuse(Refusal::NeverFits { job, cost, .. }) => {
            assert_eq!(job, JobId(1));
            assert_eq!(cost, 400);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn flow_sends_an_item_larger_than_the_bucket_from_a_full_bucket_without_periodic_jobs() {
    let d = [bulk(1, 400, 1, 1)];
    // 290 at 5/min: full (300) after two steps, where the next would
    // overflow: it goes then, digging to -100.
    let s0 = snap(0, 290, 5);
    let mut s = sched(Flow::default(), s0);
    let (at, g) = drive(&mut s, s0, 0, &d);
    assert_eq!((at, g.items), (120_000, 1));
    let mut s = sched(Flow::default(), snap(0, 300, 5));
    assert!(matches!(s.decide(0, &d), Decision::Go(_)));
}

#[test]
fn flow_zero_refill_is_refused_not_waited_on() {
    let d = [bulk(1, 12, 1, 1)];
    let mut s = sched(Flow::default(), snap(0, 0, 0));
    assert!(matches!(
        s.decide(0, &d),
        Decision::Refuse(Refusal::NoRefill { .. })
    ));
}

#[test]
fn flow_finish_line_takes_all_that_remains_at_a_positive_balance() {
    let mut b = bulk(1, 12, 1, 90);
    if let Need::Bulk(x) = &mut b.need {
        x.finishing = true;
    }
    let mut s = sched(Flow::default(), snap(0, 1, 5));
    assert!(matches!(s.decide(0, &[b]), Decision::Go(g) if g.items == 90));
    let mut off = sched(
        Flow {
            finish_line: false,
            ..Flow::default()
        },
        snap(0, 1, 5),
    );
    assert!(matches!(off.decide(0, &[b]), Decision::Wait { .. }));
}

#[test]
fn flow_a_periodic_runs_tail_goes_before_the_backfills_fair_share() {
    // Job 2 (the refresh's tail) was granted far more than job 1 (the
    // backfill), so fair share puts job 1 first; job 1's batch needs 100
    // tokens and the balance is 20. Without the rule job 2 waits behind it.
    let backfill = bulk(1, 100, 1, 1);
    let mut tail = bulk(2, 12, 1, 5);
    if let Need::Bulk(x) = &mut tail.need {
        x.finishing = true;
    }
    let d = [backfill, tail];
    let mut s = sched(Flow::default(), snap(0, 10_000, 5_000));
    // Job 2 spends a lot: its virtual time runs ahead of job 1's.
    for _ in 0..20 {
        let g = Grant {
            job: JobId(2),
            items: 5,
            cost: Prediction::exact(60),
        };
        let r = s.start(&g, &d);
        s.settle(r, Outcome::Unsent);
    }
    s.synced(1, snap(1, 20, 5));
    match s.decide(1, &d) {
        Decision::Go(g) => assert_eq!(g.job, JobId(2), "the tail goes first"),
        other => panic!("expected the tail to go, got {other:?}"),
    }
}

#[test]
fn flow_shares_bulk_by_weight() {
    let mut s = sched(Flow::default(), snap(0, 1_000_000, 100_000));
    let mut a = bulk(1, 10, 1, 1);
    let mut b = bulk(2, 10, 1, 1);
    if let Need::Bulk(x) = &mut b.need {
        x.weight = 3;
    }
    if let Need::Bulk(x) = &mut a.need {
        x.weight = 1;
    }
    let d = [a, b];
    let mut count = [0, 0];
    for _ in 0..400 {
        let Decision::Go(g) = s.decide(0, &d) else {
            panic!()
        };
        let r = s.start(&g, &d);
        s.settle(r, Outcome::Unsent);
        count[(g.job.0 - 1) as usize] += 1;
    }
    assert_eq!(count, [100, 300]);
}

#[test]
fn wait_for_max_at_exactly_max_never_starts_while_the_refresher_sips() {
    let rules = SeedRules {
        wait_for_max_fraction: 1.0,
        ..SeedRules::default()
    };
    let p = WaitForMax { rules };
    let mut s = sched(p, snap(0, 300, 5));
    let d = [refresh(0, 60, 60, 1), bulk(1, 12, 20, 20)];
    let Decision::Go(g) = s.decide(0, &d) else {
        panic!()
    };
    assert_eq!(g.job, JobId(9), "the refresher goes first");
    let r = s.start(&g, &d);
    s.settle(
        r,
        Outcome::Charged {
            consumed: 1,
            snapshot: Some(snap(0, 299, 5)),
        },
    );
    let d = [refresh(60_000, 60, 60, 1), bulk(1, 12, 20, 20)];
    assert!(matches!(s.decide(0, &d), Decision::Wait { .. }));
}

#[test]
fn controlled_deficit_waits_for_the_resume_level_once_below_the_threshold() {
    let p = ControlledDeficit::default();
    let d = [bulk(1, 12, 20, 20)];
    let mut s = sched(p, snap(0, 45, 5));
    // 45 <= 50: wait until 55, i.e. two steps.
    assert_eq!(
        s.decide(0, &d),
        Decision::Wait {
            until: Some(120_000)
        }
    );
    // At 50 (one step) still waiting, although a fresh start at 51 would go.
    assert!(matches!(s.decide(60_000, &d), Decision::Wait { .. }));
    assert!(matches!(s.decide(120_000, &d), Decision::Go(_)));
    // A fresh scheduler at 51 goes at once: above the threshold.
    let mut s = sched(p, snap(0, 51, 5));
    assert!(matches!(s.decide(0, &d), Decision::Go(_)));
}

#[test]
fn seed_refresher_skips_below_its_minimum() {
    let mut s = sched(ControlledDeficit::default(), snap(0, 19, 5));
    assert_eq!(
        s.decide(0, &[refresh(0, 60, 60, 1)]),
        Decision::Skip(JobId(9))
    );
}

#[test]
fn a_grant_that_rests_on_unconfirmed_refill_syncs_first_at_most_once_a_minute() {
    // Confirmed balance -3; the projection says +2 after the step at 60 s.
    let mut s = sched(Flow::default(), snap(0, -3, 5));
    let d = [refresh(60_000, 60, 60, 1)];
    assert_eq!(s.decide(60_000, &d), Decision::Sync);
    // The /token answer says a foreign consumer took the step: still -3 + 5 - 10.
    s.synced(60_000, snap(60_000, -8, 5));
    assert!(matches!(
        s.decide(60_000, &d),
        Decision::Wait {
            until: Some(180_000)
        }
    ));
    // -3 at the next step, +2 at the one after: sync again (a minute has passed).
    assert_eq!(s.decide(180_000, &d), Decision::Sync);
}

fn known(job: u32, per_item: i64, batch: u32, remaining: u64) -> Demand {
    let mut d = bulk(
        job,
        per_item,
        batch.min(remaining as u32),
        batch.min(remaining as u32),
    );
    if let Need::Bulk(x) = &mut d.need {
        x.remaining = Some(remaining);
    }
    d
}

#[test]
fn flow_keeps_the_most_expensive_last_request_for_the_finish() {
    // Job 1 ends with one request of 900; job 2 has 150 one-token items
    // in batches of 100. At 120 tokens job 1's last request waits for the
    // end although it heads the fair queue: job 2 goes.
    let d = [known(1, 300, 3, 3), known(2, 1, 100, 150)];
    let mut s = sched(Flow::default(), snap(0, 120, 5));
    assert!(matches!(s.decide(0, &d), Decision::Go(g) if g.job == JobId(2) && g.items == 100));
}

#[test]
fn flow_sends_all_that_remains_at_once_the_dearest_last() {
    // 1,000 tokens; 900 + 150 remain: everything is admitted at a positive
    // balance if the 900 goes last (150 ≤ 999), leaving −50.
    let mut s = sched(Flow::default(), snap(0, 1_000, 5));
    let mut left = [3u64, 150];
    let mut order = vec![];
    while left.iter().any(|&n| n > 0) {
        let d: Vec<Demand> = [(1, 300, 3), (2, 1, 100)]
            .iter()
            .zip(left)
            .filter(|(_, n)| *n > 0)
            .map(|(&(j, c, b), n)| known(j, c, b, n))
            .collect();
        let Decision::Go(g) = s.decide(0, &d) else {
            panic!("all must go at once, left {left:?}")
        };
        let r = s.start(&g, &d);
        let balance = s.ledger().view().unwrap().balance_at(0);
        s.settle(
            r,
            Outcome::Charged {
                consumed: g.cost.expected,
                snapshot: Some(snap(0, balance, 5)),
            },
        );
        left[(g.job.0 - 1) as usize] -= u64::from(g.items);
        order.push((g.job.0, g.items));
    }
    assert_eq!(order, [(2, 100), (2, 50), (1, 3)]);
    assert_eq!(s.ledger().view().unwrap().balance_at(0), -50);
}
