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
//!   admission; under `flow`, any bulk decision), at most once per step.
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
//! use budget::gate::{Gate, ManualClock};
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

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use keepa::TokenSnapshot;
use tokio::sync::Notify;

use crate::demand::{
    Bulk, Decision, Demand, Grant, JobId, Millis, Need, Periodic, Prediction, Refusal,
};
use crate::ledger::{Ledger, Outcome, ReservationId};
use crate::policy::Policy;
use crate::store::{LedgerError, LedgerStore, Loaded, Published, StoreFuture};
use crate::Scheduler;

/// Server time, as the gate sees it.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Now, in server milliseconds (Keepa `timestamp`).
    fn now(&self) -> Millis;
    /// Resolves at server time `at` (at once if past).
    fn sleep_until(&self, at: Millis) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Tokio's clock mapped to server time, optionally running `scale` times
/// faster than real time: `now = origin_ms + elapsed × scale`.
///
/// Against Keepa the scale is 1 (its `timestamp` is wall time); against a
/// fake server on a fast clock it is the server's scale, from the server's
/// time at the same instant, so `now()` tracks the server's `timestamp` and
/// `sleep_until` sleeps the real equivalent. Works with `tokio::time::pause`.
#[derive(Debug, Clone)]
pub struct TokioClock {
    origin_ms: Millis,
    origin: tokio::time::Instant,
    scale: f64,
}

impl TokioClock {
    /// A clock reading `server_now_ms` at this instant, at real speed.
    pub fn new(server_now_ms: Millis) -> Self {
        Self::scaled(server_now_ms, 1.0)
    }

    /// A clock reading `server_now_ms` at this instant and running `scale`
    /// times faster than real time (a non-finite or non-positive scale is 1).
    pub fn scaled(server_now_ms: Millis, scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        TokioClock {
            origin_ms: server_now_ms,
            origin: tokio::time::Instant::now(),
            scale,
        }
    }

    /// The local wall clock at real speed (Keepa's `timestamp` is wall time).
    pub fn wall() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Millis);
        Self::new(now)
    }

    /// The speed-up factor.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The real duration that `server_ms` of server time takes.
    pub fn real(&self, server_ms: Millis) -> std::time::Duration {
        std::time::Duration::from_secs_f64(server_ms.max(0) as f64 / 1000.0 / self.scale)
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Millis {
        let elapsed = self.origin.elapsed().as_secs_f64() * 1000.0 * self.scale;
        self.origin_ms
            .saturating_add(elapsed.min(Millis::MAX as f64 / 4.0) as Millis)
    }

    fn sleep_until(&self, at: Millis) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let deadline = self.origin + self.real(at.saturating_sub(self.origin_ms));
        Box::pin(tokio::time::sleep_until(deadline))
    }
}

/// A clock moved by hand (for tests and doc examples); sleeping on it
/// waits until [`advance`](Self::advance) passes the instant.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Millis>>,
    tick: Arc<Notify>,
}

impl ManualClock {
    /// A clock at `now`.
    pub fn new(now: Millis) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(now)),
            tick: Arc::new(Notify::new()),
        }
    }

    /// Moves the clock to `to` (never backwards).
    pub fn advance(&self, to: Millis) {
        let mut n = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *n = (*n).max(to);
        drop(n);
        self.tick.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep_until(&self, at: Millis) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let me = self.clone();
        Box::pin(async move {
            loop {
                let tick = me.tick.notified();
                if me.now() >= at {
                    return;
                }
                tick.await;
            }
        })
    }
}

/// Calls Keepa's free `/token` endpoint.
pub trait TokenSync: Send + Sync + 'static {
    /// The token state of one `/token` call, if its answer carried one
    /// (an error's body included).
    fn sync(&self) -> Pin<Box<dyn Future<Output = Option<TokenSnapshot>> + Send + '_>>;
}

/// The Keepa client syncs through one `/token` call (free).
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
}

impl<P, L> Shared<P, L> {
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

/// Permission to send one request. Settle it with the outcome; dropping it
/// unsettled returns the reservation (the request was not sent).
#[must_use = "a permit dropped unsent returns its reservation"]
#[derive(Debug)]
pub struct Permit<P: Policy + 'static, C: Clock, L: LedgerStore + 'static = Ledger> {
    gate: Gate<P, C, L>,
    reservation: ReservationId,
    grant: Grant,
    settled: bool,
}

impl<P: Policy + 'static, C: Clock, L: LedgerStore + 'static> Permit<P, C, L> {
    /// Items the request may carry.
    pub fn items(&self) -> u32 {
        self.grant.items
    }

    /// The grant.
    pub fn grant(&self) -> Grant {
        self.grant
    }

    /// The reservation this permit holds.
    pub fn reservation(&self) -> ReservationId {
        self.reservation
    }

    /// Settles with the request's outcome. With a shared store the write
    /// completes in the background (a failure is logged; the lease then
    /// releases the reservation); use [`settle_confirmed`](Self::settle_confirmed)
    /// to wait for it.
    pub fn settle(mut self, outcome: Outcome) {
        self.settled = true;
        self.gate.settle_reservation(self.reservation, outcome);
    }

    /// Settles with the request's outcome and waits until the store has it.
    pub async fn settle_confirmed(mut self, outcome: Outcome) -> Result<(), GateError> {
        self.settled = true;
        let fut = self.gate.lock().store.settle(self.reservation, outcome);
        let r = fut.await;
        self.gate.inner.changed.notify_waiters();
        Ok(r?)
    }
}

impl<P: Policy + 'static, C: Clock, L: LedgerStore + 'static> Drop for Permit<P, C, L> {
    fn drop(&mut self) {
        if !self.settled {
            self.gate
                .settle_reservation(self.reservation, Outcome::Unsent);
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

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.inner.clock
    }

    /// `/token` calls made so far.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// Projected balance now (for a shared store: as of its last read).
    pub fn balance(&self) -> Option<i64> {
        let now = self.inner.clock.now();
        self.lock().store.view().map(|v| v.balance_at(now))
    }

    /// Adopts an envelope seen outside a permit (e.g. a `/token` call).
    pub fn observe(&self, snapshot: TokenSnapshot) {
        let fut = self.lock().store.observe(snapshot);
        self.finish(fut, "observe");
    }

    /// [`observe`](Self::observe), waiting until the store has it; resolves
    /// to whether the snapshot was adopted (newer than the one held).
    pub async fn observe_confirmed(&self, snapshot: TokenSnapshot) -> Result<bool, GateError> {
        let fut = self.lock().store.observe(snapshot);
        let r = fut.await;
        self.inner.changed.notify_waiters();
        Ok(r?)
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
                },
            );
            let mine = sh.published();
            sh.store.publish(&mine)
        };
        self.finish(fut, "publish");
    }

    fn settle_reservation(&self, id: ReservationId, outcome: Outcome) {
        let fut = self.lock().store.settle(id, outcome);
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

    /// Waits until the policy grants `need` for `job`.
    pub async fn acquire(&self, job: JobId, need: Need) -> Result<Permit<P, C, L>, GateError> {
        let mut guard = WaiterGuard {
            gate: self,
            job,
            granted: false,
        };
        self.lock().waiting.insert(job, need);
        loop {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let load = {
                let mut sh = self.lock();
                let mine = sh.published();
                sh.store.load(&mine)
            };
            let loaded = load.await?;
            let now = self.inner.clock.now();
            let step = {
                let mut sh = self.lock();
                let demands = adopt_and_demands(&mut sh, &loaded, now);
                let remote = |j: JobId| j.0 >= REMOTE_JOB_BASE && j != job;
                let recheck = loaded.recheck_in_ms.map(|ms| now + ms.max(1));
                let decision = sh.sched.decide_view(now, loaded.view.clone(), &demands);
                tracing::trace!(
                    job = job.0,
                    now,
                    balance = loaded.view.as_ref().map(|v| v.balance_at(now)),
                    others = loaded.others.len(),
                    vt = ?sh.sched.memory_mut().bulk_vtime,
                    ?decision,
                    "budget: decided"
                );
                match decision {
                    Decision::Go(g) if g.job == job => {
                        let vtime = sh.sched.vtime_after(&g, &demands);
                        let reserve =
                            sh.store
                                .reserve(job, g.cost.upper_bound, Some(loaded.version), vtime);
                        Step::Reserve(g, vtime, reserve)
                    }
                    // Another process's turn: it acts on the same state; hear
                    // from it, or check again when its lease would lapse.
                    Decision::Go(g) if remote(g.job) => Step::Wait(recheck, false),
                    Decision::Skip(j) if remote(j) => Step::Wait(recheck, false),
                    // Another waiter's turn: wake it, wait for a change.
                    Decision::Go(_) => Step::Wait(None, true),
                    Decision::Skip(j) => {
                        if let Some(p) = sh.periodic.get_mut(&j) {
                            p.next_due += p.period_ms;
                        }
                        if j == job {
                            return Err(GateError::Skipped(job));
                        }
                        Step::Again
                    }
                    Decision::Sync => Step::Sync(loaded.view.is_some()),
                    Decision::Refuse(r) => {
                        let j = match &r {
                            Refusal::NeverFits { job, .. } | Refusal::NoRefill { job, .. } => *job,
                        };
                        if j == job {
                            return Err(GateError::Refused(r));
                        }
                        if remote(j) {
                            Step::Wait(recheck, false)
                        } else {
                            // Someone else's problem: it will hear on its turn.
                            Step::Wait(None, true)
                        }
                    }
                    Decision::Wait { until } => {
                        if until.is_none() && sh.waiting.len() == 1 && loaded.others.is_empty() {
                            return Err(GateError::Never(job));
                        }
                        let until = not_before_a_step(until, now, &demands, &sh.waiting, &loaded);
                        Step::Wait(crate::policy::min_opt(until, recheck), false)
                    }
                }
            };
            match step {
                Step::Again => continue,
                Step::Reserve(g, vtime, reserve) => {
                    let Some(r) = reserve.await? else {
                        // The state moved under the decision: decide again.
                        continue;
                    };
                    let mut sh = self.lock();
                    // Exactly the position stored with the reservation: every
                    // process must see this job where this one does, or two
                    // of them may each wait for the other's turn.
                    sh.sched.record_start_at(&g, vtime);
                    if let Some(p) = sh.periodic.get_mut(&job) {
                        p.next_due += p.period_ms;
                    }
                    sh.waiting.remove(&job);
                    drop(sh);
                    guard.granted = true;
                    drop(guard);
                    self.inner.changed.notify_waiters();
                    return Ok(Permit {
                        gate: self.clone(),
                        reservation: r,
                        grant: g,
                        settled: false,
                    });
                }
                Step::Sync(known) => {
                    let snap = match &self.inner.token {
                        Some(t) => t.sync().await,
                        None => None,
                    };
                    let ops = {
                        let mut sh = self.lock();
                        sh.syncs += 1;
                        match snap {
                            Some(s) => Some((sh.store.note_sync(now), Some(sh.store.observe(s)))),
                            // No /token available: note the attempt, trust the projection.
                            None if known => Some((sh.store.note_sync(now), None)),
                            None => None,
                        }
                    };
                    let Some((noted, observed)) = ops else {
                        // Nothing known and no way to ask: wait for an
                        // envelope from elsewhere instead of spinning.
                        changed.await;
                        continue;
                    };
                    noted.await?;
                    if let Some(o) = observed {
                        o.await?;
                    }
                }
                Step::Wait(_, true) => {
                    // Another waiter's turn: wake it and let it run.
                    self.inner.changed.notify_waiters();
                    tokio::task::yield_now().await;
                }
                Step::Wait(until, false) => match until {
                    Some(at) => {
                        tokio::select! {
                            _ = self.inner.clock.sleep_until(at) => {}
                            _ = changed => {}
                        }
                    }
                    None => changed.await,
                },
            }
        }
    }
}

enum Step {
    Again,
    /// Reserve for the grant, with its new fair-queue position.
    Reserve(Grant, Option<f64>, StoreFuture<Option<ReservationId>>),
    /// Call `/token`; whether a snapshot is known.
    Sync(bool),
    Wait(Option<Millis>, bool),
}

/// Removes a waiter that gave up (its future dropped or it returned an error).
struct WaiterGuard<'a, P: Policy + 'static, C: Clock, L: LedgerStore + 'static> {
    gate: &'a Gate<P, C, L>,
    job: JobId,
    /// Granted: the store's reservation already withdrew the demand.
    granted: bool,
}

impl<P: Policy + 'static, C: Clock, L: LedgerStore + 'static> Drop for WaiterGuard<'_, P, C, L> {
    fn drop(&mut self) {
        if self.granted {
            return;
        }
        let fut = {
            let mut sh = self.gate.lock();
            sh.waiting.remove(&self.job);
            let mine = sh.published();
            sh.store.publish(&mine)
        };
        self.gate.finish(fut, "publish");
    }
}

/// Takes in what a load says about the fair queue, and lists the demands
/// to decide on: this process's, then other processes' (ids from
/// [`REMOTE_JOB_BASE`]).
fn adopt_and_demands<P: Policy, L>(
    sh: &mut Shared<P, L>,
    loaded: &Loaded,
    now: Millis,
) -> Vec<Demand> {
    let mut out = demands(sh, now);
    if loaded.others.is_empty() && loaded.own_vtimes.is_empty() {
        return out;
    }
    let memory = sh.sched.memory_mut();
    memory.bulk_vtime.retain(|j, _| j.0 < REMOTE_JOB_BASE);
    for (j, v) in &loaded.own_vtimes {
        let e = memory.bulk_vtime.entry(*j).or_insert(*v);
        *e = e.max(*v);
    }
    for (i, r) in loaded.others.iter().enumerate() {
        let job = JobId(REMOTE_JOB_BASE.saturating_add(i as u32));
        match (r.waiting, r.periodic) {
            (Some(Need::Bulk(b)), _) => {
                if let Some(v) = r.vtime {
                    memory.bulk_vtime.insert(job, v);
                }
                out.push(Demand {
                    job,
                    need: Need::Bulk(b),
                });
            }
            // Another process's periodic job counts for the reserve; only
            // its own process grants it.
            (Some(Need::Periodic(p)), _) | (None, Some(p)) => {
                let mut p = p;
                if p.next_due <= now {
                    p.next_due = now + 1;
                }
                out.push(Demand {
                    job,
                    need: Need::Periodic(p),
                });
            }
            (None, None) => {}
        }
    }
    out
}

/// A wake-up the policy names for `now + 1` because of a periodic run that
/// is overdue but not asking here (its own process or waiter decides for
/// it; it counts only for the reserve) would wake this waiter again and
/// again without anything changing. Such a wait lasts instead until the next
/// refill step, the instant the balance next moves by itself (a settlement,
/// an envelope or a new waiter wakes it earlier).
fn not_before_a_step(
    until: Option<Millis>,
    now: Millis,
    demands: &[Demand],
    waiting: &BTreeMap<JobId, Need>,
    loaded: &Loaded,
) -> Option<Millis> {
    let soon = |d: &Demand| matches!(d.need, Need::Periodic(p) if p.next_due <= now + 1);
    let idle_overdue = demands
        .iter()
        .any(|d| soon(d) && !waiting.contains_key(&d.job));
    // A periodic run that is asking here and falls due keeps its wake-up.
    let asking = demands
        .iter()
        .any(|d| soon(d) && waiting.contains_key(&d.job));
    match (until, &loaded.view) {
        (Some(t), Some(view)) if t <= now + 1 && idle_overdue && !asking => {
            Some(view.bucket.refill_step_after(now))
        }
        _ => until,
    }
}

fn demands<P, L>(sh: &Shared<P, L>, now: Millis) -> Vec<Demand> {
    let mut out = Vec::with_capacity(sh.periodic.len() + sh.waiting.len());
    for (job, p) in &sh.periodic {
        if sh.waiting.contains_key(job) {
            continue;
        }
        // A periodic job not waiting right now still counts for the reserve,
        // but cannot be granted: its next run is treated as not yet due.
        let mut p = *p;
        if p.next_due <= now {
            p.next_due = now + 1;
        }
        out.push(Demand {
            job: *job,
            need: Need::Periodic(p),
        });
    }
    for (job, need) in &sh.waiting {
        let need = match need {
            Need::Periodic(_) => match sh.periodic.get(job) {
                Some(p) => Need::Periodic(*p),
                None => *need,
            },
            Need::Bulk(_) => *need,
        };
        out.push(Demand { job: *job, need });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_000_000;

    fn loaded() -> Loaded {
        let mut ledger = Ledger::default();
        // Next refill step 20 s from now.
        ledger.observe(TokenSnapshot {
            timestamp_ms: NOW,
            tokens_left: 3,
            refill_in_ms: 20_000,
            refill_rate: 5,
        });
        Loaded {
            view: ledger.view(),
            version: 0,
            others: vec![],
            own_vtimes: vec![],
            recheck_in_ms: None,
        }
    }

    fn periodic(job: u32) -> Demand {
        Demand {
            job: JobId(job),
            need: Need::Periodic(Periodic {
                next_due: NOW + 1,
                period_ms: 60_000,
                max_delay_ms: 60_000,
                cost: Prediction::new(1, 1),
            }),
        }
    }

    fn waiting(jobs: &[u32]) -> BTreeMap<JobId, Need> {
        jobs.iter().map(|&j| (JobId(j), periodic(j).need)).collect()
    }

    #[test]
    fn a_wait_for_an_idle_overdue_run_lasts_until_the_next_refill_step() {
        // Job 1 (periodic) is overdue and not asking; job 2 waits. Without
        // the fix the policy's `now + 1` wakes job 2 every millisecond.
        let demands = [periodic(1)];
        let until = not_before_a_step(Some(NOW + 1), NOW, &demands, &waiting(&[2]), &loaded());
        assert_eq!(until, Some(NOW + 20_000));
    }

    #[test]
    fn a_periodic_run_asking_here_keeps_its_wake_up() {
        let demands = [periodic(1)];
        let until = not_before_a_step(Some(NOW + 1), NOW, &demands, &waiting(&[1]), &loaded());
        assert_eq!(until, Some(NOW + 1));
    }

    #[test]
    fn a_later_wake_up_is_left_alone() {
        let demands = [periodic(1)];
        let until = not_before_a_step(Some(NOW + 5_000), NOW, &demands, &waiting(&[2]), &loaded());
        assert_eq!(until, Some(NOW + 5_000));
        assert_eq!(
            not_before_a_step(None, NOW, &demands, &waiting(&[2]), &loaded()),
            None
        );
    }
}
