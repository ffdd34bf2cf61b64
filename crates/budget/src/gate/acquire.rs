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
            let now = self.inner.clock.now_ms();
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
        let demands = adopt_and_demands(&mut sh, loaded, now);
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

    /// Calls `/token` (if the gate can) and stores what it says; `known`:
    /// whether the store holds a snapshot to go on without an answer.
    async fn sync_step(
        &self,
        now: Millis,
        known: bool,
        changed: Pin<&mut Notified<'_>>,
    ) -> Result<(), GateError> {
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
            return Ok(());
        };
        noted.await?;
        if let Some(o) = observed {
            o.await?;
        }
        Ok(())
    }

    /// Sleeps until `until` (server time) or the next change, whichever
    /// comes first; without an instant, until the next change.
    async fn wait_step(&self, until: Option<Millis>, changed: Pin<&mut Notified<'_>>) {
        match until {
            Some(at) => {
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
