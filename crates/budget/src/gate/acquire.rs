//! [`Gate::acquire`]: one waiter's loop, in named steps: read the shared
//! state, decide on it, then reserve, sync or wait.

use std::pin::Pin;

use tokio::sync::futures::Notified;

use super::queue::{adopt_and_demands, not_before_a_step};
use super::{Clock, Gate, GateError, Permit, REMOTE_JOB_BASE};
use crate::demand::{Decision, Grant, JobId, Millis, Need, Refusal};
use crate::ledger::ReservationId;
use crate::policy::Policy;
use crate::store::{LedgerStore, Loaded, StoreFuture};

/// What a waiter does after one decision.
enum Step {
    /// Decide again at once (a periodic run was skipped).
    Again,
    /// Reserve for the grant, with its new fair-queue position.
    Reserve(Grant, Option<f64>, StoreFuture<Option<ReservationId>>),
    /// Call `/token`; whether a snapshot is known.
    Sync(bool),
    /// Another waiter's turn: wake it and let it run.
    Handoff,
    /// Sleep until the instant, or the next change.
    Wait(Option<Millis>),
}

impl<P: Policy + 'static, C: Clock, L: LedgerStore + 'static> Gate<P, C, L> {
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
            let now = self.server_now();
            match self.decide_step(job, now, &loaded)? {
                Step::Again => continue,
                Step::Reserve(g, vtime, reserve) => {
                    let Some(r) = reserve.await? else {
                        // The state moved under the decision: decide again.
                        continue;
                    };
                    guard.granted = true;
                    return Ok(self.take_grant(job, g, vtime, r));
                }
                Step::Sync(known) => self.sync_step(now, known, changed).await?,
                Step::Handoff => {
                    self.inner.changed.notify_waiters();
                    tokio::task::yield_now().await;
                }
                Step::Wait(until) => self.wait_step(until, changed).await,
            }
        }
    }

    /// Decides on `loaded` for waiter `job`: the step it takes, or why it
    /// gets no permit.
    fn decide_step(&self, job: JobId, now: Millis, loaded: &Loaded) -> Result<Step, GateError> {
        let mut sh = self.lock();
        if sh.no_plan {
            return Err(GateError::NoPlan);
        }
        if !sh.sync_in_flight && sh.doubt.ask() {
            // An implausible envelope was held back: ask for a second answer.
            return Ok(Step::Sync(loaded.view.is_some()));
        }
        let demands = adopt_and_demands(&mut sh, loaded, now);
        let remote = |j: JobId| j.0 >= REMOTE_JOB_BASE && j != job;
        let recheck = loaded.recheck_in_ms.map(|ms| now + ms.max(1));
        let mut view = loaded.view.clone();
        if sh.sync_in_flight {
            // A `/token` answer is awaited: decide on the projection
            // meanwhile, as if it had come.
            if let Some(v) = view.as_mut() {
                v.last_sync = Some(v.last_sync.map_or(now, |s| s.max(now)));
            }
        }
        let decision = sh.sched.decide_view(now, view, &demands);
        tracing::trace!(
            job = job.0,
            now,
            balance = loaded.view.as_ref().map(|v| v.balance_at(now)),
            others = loaded.others.len(),
            vt = ?sh.sched.memory_mut().bulk_vtime,
            ?decision,
            "budget: decided"
        );
        Ok(match decision {
            Decision::Go(g) if g.job == job => {
                let vtime = sh.sched.vtime_after(&g, &demands);
                let reserve =
                    sh.store
                        .reserve(job, g.cost.upper_bound, Some(loaded.version), vtime);
                Step::Reserve(g, vtime, reserve)
            }
            // Another process's turn: it acts on the same state; hear
            // from it, or check again when its lease would lapse.
            Decision::Go(g) if remote(g.job) => Step::Wait(recheck),
            Decision::Skip(j) if remote(j) => Step::Wait(recheck),
            // Another waiter's turn: wake it, wait for a change.
            Decision::Go(_) => Step::Handoff,
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
                    Step::Wait(recheck)
                } else {
                    // Someone else's problem: it will hear on its turn.
                    Step::Handoff
                }
            }
            Decision::Wait { until } => {
                if until.is_none() && sh.waiting.len() == 1 && loaded.others.is_empty() {
                    return Err(GateError::Never(job));
                }
                let until = not_before_a_step(until, now, &demands, &sh.waiting, loaded);
                Step::Wait(crate::policy::min_opt(until, recheck))
            }
        })
    }

    /// The reservation is taken: the job leaves the waiters, its fair-queue
    /// position and next periodic run move on, and the other waiters wake.
    fn take_grant(
        &self,
        job: JobId,
        g: Grant,
        vtime: Option<f64>,
        reservation: ReservationId,
    ) -> Permit<P, C, L> {
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
        self.inner.changed.notify_waiters();
        Permit::new(self.clone(), reservation, g)
    }

    /// Calls `/token` (if the gate can; one call at a time, in the
    /// background) and waits for its answer: with a snapshot `known`, at
    /// most [`SYNC_PATIENCE`](super::SYNC_PATIENCE), after which this waiter
    /// too decides on the projection (a slow answer holds up no job); with
    /// nothing known, until something changes.
    async fn sync_step(
        &self,
        now: Millis,
        known: bool,
        changed: Pin<&mut Notified<'_>>,
    ) -> Result<(), GateError> {
        let Some(token) = &self.inner.token else {
            self.lock().syncs += 1;
            if known {
                // No /token available: note the attempt, trust the projection.
                let noted = self.lock().store.note_sync(now);
                noted.await?;
            } else {
                // Nothing known and no way to ask: wait for an envelope
                // from elsewhere instead of spinning.
                changed.await;
            }
            return Ok(());
        };
        let start = {
            let mut sh = self.lock();
            let start = !sh.sync_in_flight;
            if start {
                sh.sync_in_flight = true;
                sh.syncs += 1;
            }
            start
        };
        if start {
            let gate = self.clone();
            let call = async move {
                let snap = match &gate.inner.token {
                    Some(t) => t.sync().await,
                    None => None,
                };
                gate.after_sync(snap).await;
            };
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn(call)),
                // No runtime to run it beside: this waiter awaits it.
                Err(_) => {
                    let snap = token.sync().await;
                    self.after_sync(snap).await;
                }
            }
        }
        if known {
            let scale = self.inner.clock.time_scale().unwrap_or(1.0);
            let patience = (super::SYNC_PATIENCE.as_secs_f64() * 1000.0 * scale) as i64;
            self.wait_step(Some(now.saturating_add(patience.max(1))), changed)
                .await;
        } else {
            changed.await;
        }
        Ok(())
    }

    /// Takes in a `/token` answer (`None`: none came): screened, measured,
    /// adopted, the call noted at the instant it ended; then wakes the
    /// waiters, unless nothing came and nothing is known (they would only
    /// ask again at once).
    async fn after_sync(&self, snap: Option<keepa::TokenSnapshot>) {
        let local = self.inner.clock.now_ms();
        let (noted, observed, news) = {
            let mut sh = self.lock();
            sh.sync_in_flight = false;
            let believed = snap.and_then(|s| sh.believe(local, s, false));
            let now = sh.offset.to_server(local);
            let known = believed.is_some() || sh.store.view().is_some();
            let noted = known.then(|| sh.store.note_sync(now));
            let observed = believed.map(|s| sh.store.observe(s));
            (noted, observed, snap.is_some() || known)
        };
        if let Some(fut) = noted {
            if let Err(e) = fut.await {
                tracing::warn!(error = %e, "budget: ledger note_sync failed");
            }
        }
        if let Some(fut) = observed {
            if let Err(e) = fut.await {
                tracing::warn!(error = %e, "budget: ledger observe failed");
            }
        }
        if news {
            self.inner.changed.notify_waiters();
        }
    }

    /// Sleeps until `until` (server time, on the clock through the measured
    /// offset) or the next change, whichever comes first; without an
    /// instant, until the next change.
    async fn wait_step(&self, until: Option<Millis>, changed: Pin<&mut Notified<'_>>) {
        match until {
            Some(at) => {
                let at = self.lock().offset.to_local(at);
                tokio::select! {
                    _ = self.inner.clock.sleep_until(at) => {}
                    _ = changed => {}
                }
            }
            None => changed.await,
        }
    }
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
