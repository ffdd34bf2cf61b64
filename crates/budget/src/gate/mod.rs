//! The async gate: a thin shell over the pure [`Scheduler`].
//!
//! Jobs `acquire` a [`Permit`], send their request, and
//! [`settle`](Permit::settle) it with what the server said. While nothing
//! may go, a waiter sleeps until the exact instant the core names, or until
//! something changes (a settlement, an envelope, another waiter), never
//! polling. The gate reads time only through a [`Clock`] that maps to the
//! server's `timestamp`.
//!
//! - A permit dropped unsent returns its reservation.
//! - A timeout ([`Outcome::TimedOut`]) counts as charged until a newer
//!   envelope says otherwise.
//! - A 429 ([`Outcome::Refused`]) adopts its envelope; the balance it shows
//!   (≤ 0) makes every waiter sleep until the next refill step: no storm.
//! - `/token` is called (through [`TokenSync`]) only when a decision rests on
//!   a refill step no envelope confirmed and work is waiting (a grant's
//!   admission; under `flow`, any bulk decision), at most once per step,
//!   and never twice at once. A slow answer holds up only its own request:
//!   while it is awaited every waiter decides on the projection (the one
//!   that asked after [`SYNC_PATIENCE`] of real time).
//! - The gate waits in server time: it measures the offset of the server's
//!   clock from its own from every envelope (`timestamp` against the
//!   instant it arrived), so a skewed local clock causes no 429 and no wait
//!   beyond one refill step (see `trust::ServerOffset`).
//! - One implausible envelope (a refill rate of 0) is not believed until a
//!   second answer confirms it (the gate asks `/token`); a confirmed refill
//!   of 0 with nothing left ends every `acquire` with [`GateError::NoPlan`]
//!   (see `trust::Doubt`).
//! - The ledger is any [`LedgerStore`]: the in-process [`Ledger`] (default)
//!   or a shared one (`RedisLedger`, feature `redis`). A decision is applied
//!   only to the state it was taken on (the store's conditional
//!   reservation), and over a shared store the demands of other processes
//!   take part in it: their periodic jobs count for the reserve, their bulk
//!   jobs for the fair share. Job ids from `0x8000_0000` up are the gate's,
//!   for other processes' jobs.
//! - A store failure ends `acquire` with [`GateError::Store`]; a settlement
//!   that fails is logged, and a shared store's lease then releases it.
//!
//! ```
//! # tokio_test_block_on(async {
//! use budget::gate::Gate;
//! use keepa::clock::ManualClock;
//! use budget::{policy::Flow, JobId, Ledger, Outcome, Prediction};
//! use keepa::TokenSnapshot;
//!
//! let clock = ManualClock::new(0);
//! let gate = Gate::new(Flow::default(), Ledger::default(), clock.clone(), None);
//! gate.observe(TokenSnapshot { timestamp_ms: 0, tokens_left: 100, refill_in_ms: 60_000, refill_rate: 5 });
//! // "How many of these products (12 tokens each) may I send now?"
//! let permit = gate.acquire_batch(JobId(1), Prediction::exact(0), Prediction::exact(12), 1, 100).await.unwrap();
//! assert_eq!(permit.items(), 8);
//! permit.settle(Outcome::Charged { consumed: 96, snapshot: Some(TokenSnapshot {
//!     timestamp_ms: 5_000, tokens_left: 4, refill_in_ms: 55_000, refill_rate: 5 }) });
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
//! # }
//! ```

mod acquire;
mod permit;
mod queue;
mod trust;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use keepa::TokenSnapshot;
use tokio::sync::Notify;

use crate::demand::{Bulk, Demand, JobId, Millis, Need, Periodic, Prediction, Refusal};
use crate::ledger::{Ledger, Outcome, ReservationId};
use crate::policy::Policy;
use crate::store::{LedgerError, LedgerStore, Published, StoreFuture};
use crate::Scheduler;

use keepa::clock::Clock;
pub use permit::Permit;
use trust::{Doubt, ServerOffset, Verdict};

/// How long (real time) the waiter that called `/token` waits for its
/// answer before it decides on the projection like every other waiter.
pub const SYNC_PATIENCE: Duration = Duration::from_secs(1);

/// Calls Keepa's free `/token` endpoint.
pub trait TokenSync: Send + Sync + 'static {
    /// The token state of one `/token` call, if its answer carried one
    /// (an error's body included).
    fn sync(&self) -> Pin<Box<dyn Future<Output = Option<TokenSnapshot>> + Send + '_>>;
}

/// The Keepa client syncs through one `/token` call (free). Feature `client`.
#[cfg(feature = "client")]
impl TokenSync for keepa::Client {
    fn sync(&self) -> Pin<Box<dyn Future<Output = Option<TokenSnapshot>> + Send + '_>> {
        Box::pin(async move {
            // Any answer's envelope is the server's state (a 429 or 5xx too).
            match self.send(&keepa::request::Request::token()).await {
                Ok(r) => r.snapshot(),
                Err(e) => e.snapshot(),
            }
        })
    }
}

/// Why `acquire` did not give a permit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GateError {
    /// The budget refuses the job for good.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The policy dropped this periodic run (the seed's refresher rule).
    #[error("periodic run of job {0:?} skipped by the policy")]
    Skipped(JobId),
    /// Nothing will ever make the request possible (no refill known).
    #[error("job {0:?}: no refill will ever admit it")]
    Never(JobId),
    /// The job is not registered as periodic.
    #[error("job {0:?} is not registered as periodic")]
    NotPeriodic(JobId),
    /// The ledger's store failed (a shared store unreachable, say).
    #[error(transparent)]
    Store(#[from] LedgerError),
    /// Two answers in a row said refill 0 and no tokens left (Keepa's
    /// answer to a key it refuses): no request will ever be admitted.
    #[error(
        "the API key was refused or has no plan: refillRate 0 and no tokens left, \
         in two answers in a row"
    )]
    NoPlan,
}

/// Job ids from here up name other processes' jobs inside a gate.
const REMOTE_JOB_BASE: u32 = 0x8000_0000;

#[derive(Debug)]
struct Shared<P, L> {
    /// Policy and memory; the ledger itself is `store`.
    sched: Scheduler<P, ()>,
    store: L,
    periodic: BTreeMap<JobId, Periodic>,
    /// Jobs waiting in `acquire`, with what they need.
    waiting: BTreeMap<JobId, Need>,
    syncs: u64,
    /// A `/token` call is awaited.
    sync_in_flight: bool,
    /// The server's clock against ours.
    offset: ServerOffset,
    /// An implausible envelope waiting for confirmation.
    doubt: Doubt,
    /// [`GateError::NoPlan`] was confirmed.
    no_plan: bool,
}

impl<P, L> Shared<P, L> {
    /// What to adopt of `s`, received at local time `local` (`refused`: a
    /// 429's): measures the server's clock from a believed envelope.
    fn believe(&mut self, local: Millis, s: TokenSnapshot, refused: bool) -> Option<TokenSnapshot> {
        match self.doubt.screen(s) {
            Verdict::Believe(s) => {
                if refused {
                    self.offset.reset(local, s.timestamp_ms);
                } else {
                    self.offset.sample(local, s.timestamp_ms);
                }
                Some(s)
            }
            Verdict::Hold => {
                tracing::warn!(
                    rate = s.refill_rate,
                    left = s.tokens_left,
                    "budget: an answer says refillRate 0; not believed until a second answer confirms it"
                );
                None
            }
            Verdict::NoPlan => {
                self.no_plan = true;
                None
            }
        }
    }

    /// `outcome` as the store gets it, received at local time `local`: its
    /// envelope screened, a timeout's instant (read from the gate's clock)
    /// in server time.
    fn screen_outcome(&mut self, local: Millis, outcome: Outcome) -> Outcome {
        match outcome {
            Outcome::Charged { consumed, snapshot } => Outcome::Charged {
                consumed,
                snapshot: snapshot.and_then(|s| self.believe(local, s, false)),
            },
            Outcome::Refused { snapshot } => Outcome::Refused {
                snapshot: snapshot.and_then(|s| self.believe(local, s, true)),
            },
            Outcome::TimedOut { at } => Outcome::TimedOut {
                at: self.offset.to_server(at),
            },
            Outcome::Unsent => Outcome::Unsent,
        }
    }

    fn published(&self) -> Published {
        Published {
            waiting: self
                .waiting
                .iter()
                .map(|(job, need)| Demand {
                    job: *job,
                    need: *need,
                })
                .collect(),
            periodic: self.periodic.iter().map(|(j, p)| (*j, *p)).collect(),
        }
    }
}

struct Inner<P, C, L> {
    shared: Mutex<Shared<P, L>>,
    changed: Arc<Notify>,
    clock: C,
    token: Option<Box<dyn TokenSync>>,
}

impl<P: fmt::Debug, C: fmt::Debug, L: fmt::Debug> fmt::Debug for Inner<P, C, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("shared", &self.shared)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// The budget's async gate for one key. Cheap to clone.
#[derive(Debug)]
pub struct Gate<P, C, L = Ledger> {
    inner: Arc<Inner<P, C, L>>,
}

impl<P, C, L> Clone for Gate<P, C, L> {
    fn clone(&self) -> Self {
        Gate {
            inner: self.inner.clone(),
        }
    }
}

impl<P: Policy + 'static, C: Clock, L: LedgerStore + 'static> Gate<P, C, L> {
    /// A gate over `ledger` deciding with `policy`, reading `clock`, and
    /// calling `/token` through `token` when the view is stale.
    pub fn new(policy: P, mut ledger: L, clock: C, token: Option<Box<dyn TokenSync>>) -> Self {
        let changed = Arc::new(Notify::new());
        ledger.watch(changed.clone());
        Gate {
            inner: Arc::new(Inner {
                shared: Mutex::new(Shared {
                    sched: Scheduler::new(policy, ()),
                    store: ledger,
                    periodic: BTreeMap::new(),
                    waiting: BTreeMap::new(),
                    syncs: 0,
                    sync_in_flight: false,
                    offset: ServerOffset::default(),
                    doubt: Doubt::default(),
                    no_plan: false,
                }),
                changed,
                clock,
                token,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared<P, L>> {
        self.inner.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The clock (local time: see [`server_now`](Self::server_now)).
    pub fn clock(&self) -> &C {
        &self.inner.clock
    }

    /// Server time now: the clock plus the offset measured from envelopes
    /// (never ahead of the server's clock as its envelopes show it).
    pub fn server_now(&self) -> Millis {
        let local = self.inner.clock.now_ms();
        self.lock().offset.to_server(local)
    }

    /// The measured offset of the server's clock from [`clock`](Self::clock),
    /// milliseconds (0 before any envelope).
    pub fn server_offset_ms(&self) -> Millis {
        self.lock().offset.offset()
    }

    /// `/token` calls made so far.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// Projected balance now (for a shared store: as of its last read).
    pub fn balance(&self) -> Option<i64> {
        let now = self.server_now();
        self.lock().store.view().map(|v| v.balance_at(now))
    }

    /// Adopts an envelope seen outside a permit (e.g. a `/token` call),
    /// received now; an implausible one only once confirmed.
    pub fn observe(&self, snapshot: TokenSnapshot) {
        let local = self.inner.clock.now_ms();
        let fut = {
            let mut sh = self.lock();
            sh.believe(local, snapshot, false)
                .map(|s| sh.store.observe(s))
        };
        match fut {
            Some(fut) => self.finish(fut, "observe"),
            None => self.inner.changed.notify_waiters(),
        }
    }

    /// [`observe`](Self::observe), waiting until the store has it; resolves
    /// to whether the snapshot was adopted (believed, and newer than the
    /// one held).
    pub async fn observe_confirmed(&self, snapshot: TokenSnapshot) -> Result<bool, GateError> {
        let local = self.inner.clock.now_ms();
        let fut = {
            let mut sh = self.lock();
            sh.believe(local, snapshot, false)
                .map(|s| sh.store.observe(s))
        };
        let r = match fut {
            Some(fut) => fut.await.map_err(GateError::from),
            None => Ok(false),
        };
        self.inner.changed.notify_waiters();
        r
    }

    /// Declares a periodic job: first run due at `first_due`, then every
    /// `period_ms`; a run is on time if it starts by due + `max_delay_ms`.
    pub fn register_periodic(
        &self,
        job: JobId,
        first_due: Millis,
        period_ms: i64,
        max_delay_ms: i64,
        cost: Prediction,
    ) {
        let fut = {
            let mut sh = self.lock();
            sh.periodic.insert(
                job,
                Periodic {
                    next_due: first_due,
                    period_ms: period_ms.max(1),
                    max_delay_ms,
                    cost,
                    ..Default::default()
                },
            );
            let mine = sh.published();
            sh.store.publish(&mine)
        };
        self.finish(fut, "publish");
    }

    /// Tells the budget what a periodic job's runs charge after their first
    /// request (`tail`: the mean and the largest recent one) and what the
    /// run in progress may still charge (`open_tail`, 0 when it is done).
    /// The budget holds both back from bulk work (see `policy::Flow`), so
    /// that one run's tail does not leave the next run late. Unknown jobs
    /// are ignored.
    pub fn set_periodic_tail(&self, job: JobId, tail: Prediction, open_tail: i64) {
        let fut = {
            let mut sh = self.lock();
            let Some(p) = sh.periodic.get_mut(&job) else {
                return;
            };
            let (tail, open_tail) = (
                Prediction::new(tail.expected.max(0), tail.upper_bound),
                open_tail.max(0),
            );
            if p.tail == tail && p.open_tail == open_tail {
                return;
            }
            p.tail = tail;
            p.open_tail = open_tail;
            let mine = sh.published();
            sh.store.publish(&mine)
        };
        self.finish(fut, "publish");
    }

    fn settle_reservation(&self, id: ReservationId, outcome: Outcome) {
        let local = self.inner.clock.now_ms();
        let fut = {
            let mut sh = self.lock();
            let outcome = sh.screen_outcome(local, outcome);
            sh.store.settle(id, outcome)
        };
        self.finish(fut, "settle");
    }

    /// Completes a store operation's IO without blocking the caller: at once
    /// if it is already done (the in-process ledger), else on the runtime.
    /// Waiters are woken when it is done.
    fn finish<T: Send + 'static>(&self, mut fut: StoreFuture<T>, what: &'static str) {
        let mut cx = Context::from_waker(Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(r) => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "budget: ledger {what} failed");
                }
                self.inner.changed.notify_waiters();
            }
            Poll::Pending => {
                let changed = self.inner.changed.clone();
                match tokio::runtime::Handle::try_current() {
                    Ok(rt) => {
                        rt.spawn(async move {
                            if let Err(e) = fut.await {
                                tracing::warn!(error = %e, "budget: ledger {what} failed");
                            }
                            changed.notify_waiters();
                        });
                    }
                    Err(_) => tracing::warn!(
                        "budget: ledger {what} dropped outside a tokio runtime; \
                         a shared store's lease will release it"
                    ),
                }
            }
        }
    }

    /// Waits for the next run of periodic job `job` to be due and admissible.
    pub async fn acquire_periodic(&self, job: JobId) -> Result<Permit<P, C, L>, GateError> {
        let Some(p) = self.lock().periodic.get(&job).copied() else {
            return Err(GateError::NotPeriodic(job));
        };
        self.acquire(job, Need::Periodic(p)).await
    }

    /// "How many of these items may I send now?": waits until at least
    /// `min_batch` fit and returns a permit for up to `max_batch`.
    pub async fn acquire_batch(
        &self,
        job: JobId,
        per_request: Prediction,
        per_item: Prediction,
        min_batch: u32,
        max_batch: u32,
    ) -> Result<Permit<P, C, L>, GateError> {
        let need = Need::Bulk(Bulk {
            per_request,
            per_item,
            min_batch,
            max_batch,
            weight: 1,
            not_before: Millis::MIN,
            finishing: false,
            remaining: None,
        });
        self.acquire(job, need).await
    }
}
