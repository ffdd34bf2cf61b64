//! [`Permit`]: permission to send one request, settled with its outcome.

use super::{Clock, Gate, GateError};
use crate::demand::Grant;
use crate::ledger::{Ledger, Outcome, ReservationId};
use crate::policy::Policy;
use crate::store::LedgerStore;

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
    /// A permit for reservation `reservation`, unsettled.
    pub(super) fn new(gate: Gate<P, C, L>, reservation: ReservationId, grant: Grant) -> Self {
        Permit {
            gate,
            reservation,
            grant,
            settled: false,
        }
    }

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

    /// Settles with the request's outcome (a timeout's instant read from
    /// the gate's [`clock`](Gate::clock)). With a shared store the write
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
        let local = self.gate.inner.clock.now_ms();
        let fut = {
            let mut sh = self.gate.lock();
            let outcome = sh.screen_outcome(local, outcome);
            sh.store.settle(self.reservation, outcome)
        };
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
