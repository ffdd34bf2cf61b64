use super::*;

const MIN: i64 = 60_000;

/// An envelope at `t` ms with `left` tokens, a 20/min plan, the next step
/// on the minute.
fn env(t: i64, left: i64) -> Event {
    Event::Envelope(TokenSnapshot {
        timestamp_ms: t,
        tokens_left: left,
        refill_in_ms: MIN - t.rem_euclid(MIN),
        refill_rate: 20,
    })
}

fn adds_up(b: &TokenBreakdown) {
    assert_eq!(
        b.spent + b.lost_at_cap + b.left + b.spent_by_others,
        b.available,
        "{b:?}"
    );
}

#[test]
fn a_full_bucket_and_no_spending_is_all_lost_at_the_cap() {
    // Full at the start (1 200), an hour without a request.
    let b = account([env(0, 1200)], 60 * MIN).unwrap();
    adds_up(&b);
    assert_eq!(b.start_balance, 1200);
    assert_eq!(b.refilled, 60 * 20);
    assert_eq!(b.available, 2400);
    assert_eq!(b.lost_at_cap, 1200);
    assert_eq!(b.left, 1200);
    assert_eq!(b.spent_by_others, 0);
    assert_eq!(b.utilization(), 0.0);
    assert_eq!((b.refill_per_minute, b.bucket_max), (20, 1200));
}

#[test]
fn continuous_spending_uses_nearly_everything() {
    // Spend the whole bucket at once, then every refill as it lands.
    let mut ev = vec![env(0, 1200), Event::Charged(1200), env(1, 0)];
    for m in 1..=600 {
        let t = m * MIN + 10;
        ev.push(Event::Charged(20));
        ev.push(env(t, 0));
    }
    let b = account(ev, 600 * MIN + 20).unwrap();
    adds_up(&b);
    assert_eq!(b.available, 1200 + 600 * 20);
    assert_eq!((b.lost_at_cap, b.left, b.spent_by_others), (0, 0, 0));
    assert_eq!(b.utilization(), 1.0);
}

#[test]
fn a_foreign_drain_is_spent_by_others() {
    // We spend 100; the balance falls by 600 more than that, twice.
    let ev = [
        env(0, 1000),
        Event::Charged(100),
        env(10_000, 300),
        Event::Charged(0),
        env(3 * MIN + 10_000, 60 - 600 + 300),
    ];
    let b = account(ev, 3 * MIN + 10_000).unwrap();
    adds_up(&b);
    assert_eq!(b.refilled, 60);
    assert_eq!(b.spent_by_others, 1000 + 60 - 100 - (-240));
    assert_eq!(b.lost_at_cap, 0);
    assert_eq!(b.utilization(), (100.0_f64 / 1060.0 * 1e4).round() / 1e4);
}

#[test]
fn out_of_order_envelopes_are_put_in_order() {
    // Full bucket; a request charged 500 just before a step, answered
    // after one charged later: in order, the step is not lost at the cap.
    let ev = [
        env(0, 1200),
        Event::Charged(10),
        env(MIN + 1_000, 710),
        Event::Charged(500),
        env(MIN - 1_000, 700),
    ];
    let b = account(ev, MIN + 1_000).unwrap();
    adds_up(&b);
    assert_eq!(
        (b.spent, b.left, b.lost_at_cap, b.spent_by_others),
        (510, 710, 0, 0)
    );
}

#[test]
fn an_envelope_too_late_to_place_counts_its_charge_only() {
    let ev = [
        env(0, 500),
        Event::Charged(5),
        env(10 * MIN, 495 + 200 - 600),
        Event::Charged(5),
        env(1_000, 490),
    ];
    let b = account(ev, 10 * MIN).unwrap();
    adds_up(&b);
    assert_eq!(b.spent, 10);
    assert_eq!(b.left, 95);
}

#[test]
fn the_tail_after_the_last_envelope_is_projected_to_the_end() {
    // A resumed run: nothing to do but wait, bucket half full.
    let b = account([env(0, 600)], 120 * MIN).unwrap();
    adds_up(&b);
    assert_eq!(b.refilled, 2400);
    assert_eq!(b.left, 1200);
    assert_eq!(b.lost_at_cap, 600 + 2400 - 1200);
}

#[test]
fn no_envelope_no_breakdown() {
    assert_eq!(account([Event::Charged(3)], 0), None);
}

#[test]
fn every_period_that_began_is_due_and_overruns_are_late() {
    let mut r = RefreshBook::default();
    // Every 5 min from t = 0, late after 1 min.
    r.schedule(0, 5 * MIN, MIN);
    r.run_started(0, false);
    assert_eq!(r.at(0), RefreshFigures { due: 1, late: 0 });
    // The first run overruns for 57 min: due grows with time, late follows.
    assert_eq!(r.at(4 * MIN).due, 1);
    assert_eq!(r.at(5 * MIN), RefreshFigures { due: 2, late: 0 });
    assert_eq!(r.at(6 * MIN + 1), RefreshFigures { due: 2, late: 1 });
    assert_eq!(r.at(57 * MIN).due, 12);
    // The next run starts at 57 min: it serves the periods from 5 to 55 min,
    // all late but the one at 55 min (2 min > 1 min: late too).
    r.run_started(57 * MIN, false);
    assert_eq!(r.at(57 * MIN), RefreshFigures { due: 12, late: 11 });
    // A catch-up run right after serves nothing new.
    r.run_started(57 * MIN + 5, false);
    assert_eq!(r.at(57 * MIN + 5), RefreshFigures { due: 12, late: 11 });
    // On time from there, and a skipped one is late.
    r.run_started(60 * MIN, false);
    r.run_started(65 * MIN + 30_000, true);
    let f = r.at(66 * MIN);
    assert_eq!(f, RefreshFigures { due: 14, late: 12 });
    assert!(f.late <= f.due);
    assert_eq!(r.delays_ms().len(), 14);
    assert_eq!(r.runs(), 5);
    // The refresh stops with the run: later periods are not due.
    r.end(66 * MIN);
    assert_eq!(r.at(90 * MIN), f);
}

#[test]
fn nothing_due_before_the_schedule_or_the_first_time() {
    let mut r = RefreshBook::default();
    assert_eq!(r.at(10 * MIN), RefreshFigures::default());
    r.schedule(10 * MIN, MIN, 0);
    assert_eq!(r.at(10 * MIN - 1), RefreshFigures::default());
    assert_eq!(r.at(10 * MIN).due, 1);
}
