//! Where a key's ledger lives: the [`LedgerStore`] trait the
//! [`Gate`](crate::gate::Gate) runs on.
//!
//! Two stores implement it: the in-process [`Ledger`] (every operation
//! completes before its method returns) and, with the `redis` feature,
//! `redis_ledger::RedisLedger`, one ledger shared by
//! several processes and hosts.
//!
//! # Contract
//!
//! Every store keeps the invariants of the [`ledger`](crate::ledger) module
//! (newest snapshot wins, reservations apart, settlement, timeouts) and:
//!
//! - **Methods split in two.** The synchronous part of a call runs inside the
//!   method (the gate calls it under its lock); the IO, if any, runs in the
//!   returned `'static` future, which the gate awaits without holding a lock.
//! - **Conditional reservation.** [`LedgerStore::load`] returns a `version`;
//!   [`LedgerStore::reserve`] with `Some(version)` succeeds only if no
//!   snapshot was adopted and no reservation was made since, so a decision is
//!   never applied to a state it was not taken on (four processes each seeing
//!   "5 available" cannot all spend them). Releases (settlements, expired
//!   leases) do not change the version: they only make a decision safer.
//! - **Failures are values** ([`LedgerError`]), never panics.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use keepa::TokenSnapshot;
use tokio::sync::Notify;

use crate::demand::{Demand, JobId, Millis, Need, Periodic};
use crate::ledger::{Ledger, Outcome, ReservationId, View};

/// The IO half of a store operation.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, LedgerError>> + Send + 'static>>;

/// A store operation that is already complete.
pub fn done<T: Send + 'static>(value: T) -> StoreFuture<T> {
    Box::pin(std::future::ready(Ok(value)))
}

/// Why a ledger store could not do what was asked. Never carries the API
/// key, a connection password or a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The store could not be reached or failed the command.
    #[error("ledger store unavailable: {0}")]
    Unavailable(String),
    /// The store answered something this version does not understand.
    #[error("ledger store answered unexpectedly: {0}")]
    Protocol(String),
    /// The shared ledger already runs a different policy; every process on
    /// one key must decide alike.
    #[error("the shared ledger runs policy {stored}, this process asked for {ours}")]
    PolicyConflict {
        /// The policy stored with the ledger.
        stored: String,
        /// The policy this process was configured with.
        ours: String,
    },
    /// A ledger name that cannot be used in a store key.
    #[error("invalid ledger name: {0}")]
    InvalidName(String),
}

/// This process's standing demands, which a shared store publishes (with a
/// lease) so that other processes' decisions account for them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Published {
    /// Jobs waiting in `acquire` now, with what they need.
    pub waiting: Vec<Demand>,
    /// Periodic jobs registered here, with their next run.
    pub periodic: Vec<(JobId, Periodic)>,
}

/// A job of another process, as a shared store reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteJob {
    /// What it waits for now, if it waits.
    pub waiting: Option<Need>,
    /// Its periodic registration, if any (counts for the periodic reserve).
    pub periodic: Option<Periodic>,
    /// Its place in the bulk fair queue (tokens granted / weight), if it was
    /// ever granted.
    pub vtime: Option<f64>,
}

/// One read of a store: what the decision core needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The view; `None` before the first snapshot.
    pub view: Option<View>,
    /// Pass to [`LedgerStore::reserve`] to reserve only on this state.
    pub version: u64,
    /// Other processes' jobs (empty for an in-process ledger).
    pub others: Vec<RemoteJob>,
    /// Fair-queue positions of this process's jobs as the store has them.
    pub own_vtimes: Vec<(JobId, f64)>,
    /// When (milliseconds from now) the earliest lease of another process
    /// expires: a waiter yielding to another process checks again by then.
    pub recheck_in_ms: Option<i64>,
}

/// Where a key's ledger lives. See the [module docs](self) for the contract.
pub trait LedgerStore: Send + fmt::Debug + 'static {
    /// Publishes `mine` and reads the state to decide on.
    fn load(&mut self, mine: &Published) -> StoreFuture<Loaded>;
    /// The last view known here without IO (the state itself for an
    /// in-process ledger, the last [`load`](Self::load) for a shared one).
    fn view(&self) -> Option<View>;
    /// The newest snapshot known here without IO.
    fn newest(&self) -> Option<TokenSnapshot>;
    /// Adopts `snapshot` if newer; resolves to whether it was adopted.
    fn observe(&mut self, snapshot: TokenSnapshot) -> StoreFuture<bool>;
    /// Records a `/token` call at `at`.
    fn note_sync(&mut self, at: Millis) -> StoreFuture<()>;
    /// Holds `amount` tokens for `job`. With `Some(version)`, only if the
    /// store is still at that version (else resolves to `None`). `vtime` is
    /// the job's new fair-queue position, stored with the reservation.
    fn reserve(
        &mut self,
        job: JobId,
        amount: i64,
        expected_version: Option<u64>,
        vtime: Option<f64>,
    ) -> StoreFuture<Option<ReservationId>>;
    /// Settles a reservation (idempotent).
    fn settle(&mut self, id: ReservationId, outcome: Outcome) -> StoreFuture<()>;
    /// Publishes `mine` without reading (a waiter left, a job registered).
    fn publish(&mut self, _mine: &Published) -> StoreFuture<()> {
        done(())
    }
    /// Asks to be woken through `changed` when another process changes the
    /// shared state. In-process stores have no one else to hear from.
    fn watch(&mut self, _changed: Arc<Notify>) {}
}

impl LedgerStore for Ledger {
    fn load(&mut self, _mine: &Published) -> StoreFuture<Loaded> {
        done(Loaded {
            view: Ledger::view(self),
            version: self.version(),
            others: Vec::new(),
            own_vtimes: Vec::new(),
            recheck_in_ms: None,
        })
    }
    fn view(&self) -> Option<View> {
        Ledger::view(self)
    }
    fn newest(&self) -> Option<TokenSnapshot> {
        Ledger::newest(self).copied()
    }
    fn observe(&mut self, snapshot: TokenSnapshot) -> StoreFuture<bool> {
        done(Ledger::observe(self, snapshot))
    }
    fn note_sync(&mut self, at: Millis) -> StoreFuture<()> {
        Ledger::note_sync(self, at);
        done(())
    }
    fn reserve(
        &mut self,
        job: JobId,
        amount: i64,
        expected_version: Option<u64>,
        _vtime: Option<f64>,
    ) -> StoreFuture<Option<ReservationId>> {
        if expected_version.is_some_and(|v| v != self.version()) {
            return done(None);
        }
        done(Some(Ledger::reserve(self, job, amount)))
    }
    fn settle(&mut self, id: ReservationId, outcome: Outcome) -> StoreFuture<()> {
        Ledger::settle(self, id, outcome);
        done(())
    }
}

/// A ledger chosen at run time (`--ledger memory|redis://…`): one gate type
/// for both.
#[derive(Debug)]
pub enum AnyLedger {
    /// In this process only.
    Memory(Ledger),
    /// Shared through Redis.
    #[cfg(feature = "redis")]
    Redis(crate::redis_ledger::RedisLedger),
}

impl Default for AnyLedger {
    fn default() -> Self {
        AnyLedger::Memory(Ledger::default())
    }
}

impl AnyLedger {
    /// The ledger `spec` names for `key` under `policy`: `memory` (this
    /// process only) or a `redis://…` / `rediss://…` URL (feature `redis`),
    /// whose ledger is named after a salted hash of the key and must run the
    /// same policy as every other process on it
    /// ([`LedgerError::PolicyConflict`] otherwise). Never shows the URL.
    pub async fn open(
        spec: &str,
        key: &keepa::ApiKey,
        policy: &crate::PolicyKind,
    ) -> Result<AnyLedger, LedgerError> {
        let lower = spec.trim().to_ascii_lowercase();
        if lower == "memory" {
            return Ok(AnyLedger::Memory(Ledger::default()));
        }
        if lower.starts_with("redis://") || lower.starts_with("rediss://") {
            #[cfg(feature = "redis")]
            {
                use crate::redis_ledger::{LedgerName, PolicyMode, PolicySpec, RedisLedger};
                let ledger = RedisLedger::connect(
                    spec.trim(),
                    &LedgerName::for_key(key),
                    Default::default(),
                )
                .await?;
                let ours = PolicySpec::of(policy, keepa::tokens::BucketCap::default());
                ledger.agree_policy(&ours, PolicyMode::Require).await?;
                return Ok(AnyLedger::Redis(ledger));
            }
            #[cfg(not(feature = "redis"))]
            {
                let _ = (key, policy);
                return Err(LedgerError::Unavailable(
                    "this build has no Redis ledger (budget feature `redis`)".into(),
                ));
            }
        }
        let _ = (key, policy);
        Err(LedgerError::InvalidName(
            "a ledger is `memory` or a redis:// URL".into(),
        ))
    }
}

macro_rules! each {
    ($self:ident, $l:ident => $e:expr) => {
        match $self {
            AnyLedger::Memory($l) => $e,
            #[cfg(feature = "redis")]
            AnyLedger::Redis($l) => $e,
        }
    };
}

impl LedgerStore for AnyLedger {
    fn load(&mut self, mine: &Published) -> StoreFuture<Loaded> {
        each!(self, l => l.load(mine))
    }
    fn view(&self) -> Option<View> {
        each!(self, l => LedgerStore::view(l))
    }
    fn newest(&self) -> Option<TokenSnapshot> {
        each!(self, l => LedgerStore::newest(l))
    }
    fn observe(&mut self, snapshot: TokenSnapshot) -> StoreFuture<bool> {
        each!(self, l => LedgerStore::observe(l, snapshot))
    }
    fn note_sync(&mut self, at: Millis) -> StoreFuture<()> {
        each!(self, l => LedgerStore::note_sync(l, at))
    }
    fn reserve(
        &mut self,
        job: JobId,
        amount: i64,
        expected_version: Option<u64>,
        vtime: Option<f64>,
    ) -> StoreFuture<Option<ReservationId>> {
        each!(self, l => LedgerStore::reserve(l, job, amount, expected_version, vtime))
    }
    fn settle(&mut self, id: ReservationId, outcome: Outcome) -> StoreFuture<()> {
        each!(self, l => LedgerStore::settle(l, id, outcome))
    }
    fn publish(&mut self, mine: &Published) -> StoreFuture<()> {
        each!(self, l => l.publish(mine))
    }
    fn watch(&mut self, changed: Arc<Notify>) {
        each!(self, l => l.watch(changed))
    }
}
