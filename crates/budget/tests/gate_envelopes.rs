//! The gate against envelopes that are not what they seem: a server clock
//! skewed from ours, a refill rate of 0 in one answer, the bad-key envelope
//! (every token field 0), and a `/token` answer that never comes. Time is a
//! `ManualClock` moved by hand (the gate's local clock); nothing sleeps.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use budget::gate::{Gate, GateError, Permit, TokenSync};
use budget::policy::Flow;
use budget::{JobId, Ledger, Outcome, Prediction};
use keepa::clock::{Clock, ManualClock};
use keepa::TokenSnapshot;

type G = Gate<Flow, ManualClock>;

fn snap(ts: i64, left: i64, refill_in: i64, rate: i64) -> TokenSnapshot {
    TokenSnapshot {
        timestamp_ms: ts,
        tokens_left: left,
        refill_in_ms: refill_in,
        refill_rate: rate,
    }
}

/// A `/token` endpoint answering from a script, one answer per call; past
/// its end it never answers.
#[derive(Clone, Default)]
struct Scripted {
    answers: Arc<Mutex<VecDeque<TokenSnapshot>>>,
    calls: Arc<Mutex<u64>>,
}

impl Scripted {
    fn new(answers: &[TokenSnapshot]) -> Self {
        Scripted {
            answers: Arc::new(Mutex::new(answers.iter().copied().collect())),
            calls: Arc::default(),
        }
    }

    fn calls(&self) -> u64 {
        *self.calls.lock().unwrap()
    }
}

impl TokenSync for Scripted {
    fn sync(&self) -> Pin<Box<dyn Future<Output = Option<TokenSnapshot>> + Send + '_>> {
        *self.calls.lock().unwrap() += 1;
        let next = self.answers.lock().unwrap().pop_front();
        Box::pin(async move {
            match next {
                Some(s) => Some(s),
                None => std::future::pending().await,
            }
        })
    }
}

fn gate(clock: &ManualClock, token: Option<Scripted>) -> G {
    let token = token.map(|t| Box::new(t) as Box<dyn TokenSync>);
    Gate::new(Flow::default(), Ledger::default(), clock.clone(), token)
}

type Acquired = tokio::task::JoinHandle<Result<Permit<Flow, ManualClock>, GateError>>;

/// Job `job` asks for 1..=5 items of 12 tokens, in a task.
fn ask(g: &G, job: u32) -> Acquired {
    let g = g.clone();
    tokio::spawn(async move {
        g.acquire_batch(
            JobId(job),
            Prediction::exact(0),
            Prediction::exact(12),
            1,
            5,
        )
        .await
    })
}

/// Lets every task run until it blocks.
async fn settle_tasks() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

const T0: i64 = 1_750_000_000_000;

/// Regression: with the server's clock 30 s behind ours, the gate took the
/// refill step for landed 30 s early and sent into a 429 (a storm of them
/// at scale 1: every 429's envelope showed a step the local clock had
/// passed already).
#[tokio::test]
async fn a_server_clock_behind_ours_sends_nothing_before_the_step() {
    let clock = ManualClock::new(T0 + 30_000);
    let g = gate(&clock, None);
    // Empty bucket, next step 10 s after the server's now.
    g.observe(snap(T0, 0, 10_000, 60));
    assert_eq!(g.server_offset_ms(), -30_000);
    assert_eq!(g.server_now(), T0);
    let job = ask(&g, 1);
    settle_tasks().await;
    assert!(!job.is_finished(), "granted before the server's step");
    clock.set_ms(T0 + 30_000 + 9_999);
    settle_tasks().await;
    assert!(!job.is_finished(), "granted before the server's step");
    clock.advance_ms(1);
    settle_tasks().await;
    assert!(job.is_finished(), "not granted at the server's step");
    assert!(job.await.unwrap().is_ok());
}

/// Regression: with the server's clock 30 s ahead, the gate waited 30 s
/// past the step.
#[tokio::test]
async fn a_server_clock_ahead_of_ours_stalls_nothing() {
    let clock = ManualClock::new(T0);
    let g = gate(&clock, None);
    g.observe(snap(T0 + 30_000, 0, 10_000, 60));
    let job = ask(&g, 1);
    settle_tasks().await;
    assert!(!job.is_finished());
    clock.set_ms(T0 + 9_999);
    settle_tasks().await;
    assert!(!job.is_finished());
    clock.advance_ms(1);
    settle_tasks().await;
    assert!(job.is_finished(), "still waiting after the server's step");
    assert!(job.await.unwrap().is_ok());
}

/// The offset is the largest lower bound the envelopes give; a 429 (the
/// gate was early: the server's clock stepped back) starts it again from
/// its own envelope.
#[tokio::test]
async fn a_429_resets_the_measured_offset() {
    let clock = ManualClock::new(T0);
    let g = gate(&clock, None);
    g.observe(snap(T0 + 5_000, 600, 10_000, 60));
    g.observe(snap(T0 + 5_500, 600, 9_500, 60));
    assert_eq!(g.server_offset_ms(), 5_500);
    let permit = ask(&g, 1).await.unwrap().unwrap();
    permit.settle(Outcome::Refused {
        snapshot: Some(snap(T0 - 15_000, 0, 30_000, 60)),
    });
    assert_eq!(g.server_offset_ms(), -15_000);
}

/// A timeout's instant is read from the gate's clock and kept in server
/// time: the first envelope newer than it releases the reservation.
#[tokio::test]
async fn a_timeout_is_released_in_server_time() {
    let clock = ManualClock::new(T0);
    let g = gate(&clock, None);
    g.observe(snap(T0 - 30_000, 600, 30_000, 60));
    let permit = ask(&g, 1).await.unwrap().unwrap();
    permit.settle(Outcome::TimedOut { at: clock.now_ms() });
    assert_eq!(g.balance(), Some(540));
    clock.advance_ms(10);
    g.observe(snap(T0 - 30_000 + 10, 600, 29_990, 60));
    assert_eq!(g.balance(), Some(600), "the timeout was not in server time");
}

/// Regression: one answer with `refillRate` 0 made the policy refuse every
/// job ("refill can never pay") and the run exit 1.
#[tokio::test]
async fn one_refill_of_zero_is_not_believed_until_a_second_answer() {
    let clock = ManualClock::new(T0);
    let token = Scripted::new(&[snap(T0 + 10, 90, 59_990, 60)]);
    let g = gate(&clock, Some(token.clone()));
    g.observe(snap(T0, 100, 60_000, 60));
    let permit = ask(&g, 1).await.unwrap().unwrap();
    permit.settle(Outcome::Charged {
        consumed: 10,
        snapshot: Some(snap(T0 + 5, 90, 59_995, 0)),
    });
    // Held back: the view is the last believed envelope's.
    assert_eq!(g.balance(), Some(100));
    let next = ask(&g, 2);
    settle_tasks().await;
    assert_eq!(token.calls(), 1, "no /token asked to confirm");
    let p = next.await.unwrap().expect("refused on one envelope");
    assert_eq!(p.items(), 5);
}

/// A second answer confirms a refill of 0: with tokens left it is adopted
/// (and the policy refuses what refill must pay); with none, it is the
/// bad key: every waiter ends with `NoPlan`, no wait.
#[tokio::test]
async fn a_confirmed_refill_of_zero_is_believed_and_the_bad_key_ends_every_wait() {
    let clock = ManualClock::new(T0);
    let token = Scripted::new(&[snap(T0 + 10, 0, 0, 0)]);
    let g = gate(&clock, Some(token.clone()));
    g.observe(snap(T0, 0, 0, 0));
    let (a, b) = (ask(&g, 1), ask(&g, 2));
    settle_tasks().await;
    assert_eq!(token.calls(), 1);
    assert_eq!(a.await.unwrap().unwrap_err(), GateError::NoPlan);
    assert_eq!(b.await.unwrap().unwrap_err(), GateError::NoPlan);
    assert!(GateError::NoPlan.to_string().contains("refillRate 0"));

    // Tokens left: adopted, and no refill is projected any more.
    let token = Scripted::new(&[snap(T0 + 10, 500, 50_000, 0)]);
    let g = gate(&clock, Some(token.clone()));
    g.observe(snap(T0, 500, 50_000, 0));
    let permit = ask(&g, 1).await.unwrap().unwrap();
    assert_eq!(token.calls(), 1);
    let left = 500 - 12 * i64::from(permit.items());
    assert_eq!(g.balance(), Some(left));
    clock.advance_minutes(5);
    assert!(g.balance().unwrap() <= left, "refill projected at rate 0");
}

/// Regression: a `/token` answer that never came held up every job (each
/// waiter called `/token` itself and awaited it).
#[tokio::test]
async fn a_token_answer_that_never_comes_holds_up_no_job() {
    let clock = ManualClock::new(T0 - 2_000);
    let token = Scripted::new(&[]);
    let g = gate(&clock, Some(token.clone()));
    g.observe(snap(T0 - 2_000, 0, 1_000, 600));
    // A step landed 1 s ago that no envelope confirmed: the policy asks /token.
    clock.set_ms(T0);
    let first = ask(&g, 1);
    settle_tasks().await;
    assert_eq!(token.calls(), 1);
    assert!(
        !first.is_finished(),
        "the asker waits a little for its answer"
    );
    // Its patience is one second of real time (here 1:1), then it decides
    // on the projection.
    clock.advance_ms(budget::gate::SYNC_PATIENCE.as_millis() as i64);
    settle_tasks().await;
    assert!(first.is_finished(), "the asker waited past its patience");
    // Another job does not wait at all, nor ask again.
    let second = ask(&g, 2);
    settle_tasks().await;
    assert!(second.is_finished(), "a job waited for another's /token");
    assert_eq!(token.calls(), 1, "one /token at a time");
    assert_eq!(first.await.unwrap().unwrap().items(), 5);
    assert_eq!(second.await.unwrap().unwrap().items(), 5);
}

/// A periodic run is due by the gate's clock (the caller's), and is
/// granted then, whatever the server's clock says: with the server 30 s
/// behind, not 30 s late.
#[tokio::test]
async fn a_periodic_run_is_due_by_the_callers_clock_whatever_the_skew() {
    let clock = ManualClock::new(T0 + 30_000);
    let g = gate(&clock, None);
    g.observe(snap(T0, 600, 10_000, 60));
    g.register_periodic(
        JobId(7),
        T0 + 40_000,
        300_000,
        120_000,
        Prediction::exact(5),
    );
    let run = {
        let g = g.clone();
        tokio::spawn(async move { g.acquire_periodic(JobId(7)).await })
    };
    settle_tasks().await;
    assert!(!run.is_finished(), "granted before it was due");
    clock.set_ms(T0 + 40_000);
    settle_tasks().await;
    assert!(
        run.is_finished(),
        "not granted when due by the caller's clock"
    );
    assert!(run.await.unwrap().is_ok());
}
