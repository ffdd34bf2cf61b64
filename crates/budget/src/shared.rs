//! One-off calls through a shared budget (feature `redis`).
//!
//! A program that is not a harvester (a web dashboard fetching one product
//! when a person clicks) takes its permits from the same budget as the
//! harvest processes on that key: [`SharedBudget::connect`] to the Redis
//! ledger, [`SharedBudget::acquire_one`] with a [`JobClass`] and a cost
//! prediction, send the request, settle the [`OneOffPermit`] with the
//! response's envelope.
//!
//! ```no_run
//! # async fn demo(key: keepa::ApiKey) -> Result<(), budget::shared::SharedError> {
//! use std::time::Duration;
//! use budget::shared::{JobClass, SharedBudget};
//! use budget::redis_ledger::LedgerName;
//! use budget::{Outcome, Prediction};
//!
//! // The ledger's name is derived from the key (salted hash), never the key.
//! let budget = SharedBudget::connect("redis://127.0.0.1:6379/", LedgerName::for_key(&key)).await?;
//! // One product with offers: about 6 tokens, at most 12; the person waits 5 s at most.
//! let permit = budget
//!     .acquire_one(JobClass::Interactive { max_delay: Duration::from_secs(5) }, Prediction::new(6, 12))
//!     .await?;
//! // … send the request with the keepa client, then hand back what it said:
//! let snapshot = None; // Some(response envelope's TokenSnapshot)
//! permit.settle_confirmed(Outcome::Charged { consumed: 6, snapshot }).await?;
//! # Ok(()) }
//! ```
//!
//! Guarantees: the permit is a reservation in the shared ledger (a lease
//! this process renews while it lives); dropping it unsettled returns it; an
//! `Interactive` call is served ahead of bulk work like a periodic run that
//! is due (under `flow`: as soon as the balance is positive), and fails with
//! [`SharedError::Late`] rather than wait past its `max_delay`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use keepa::TokenSnapshot;

use crate::demand::{Bulk, JobId, Millis, Need, Periodic, Prediction};
use crate::gate::{Gate, GateError, Permit, TokenSync};
use crate::policy::PolicyKind;
use crate::redis_ledger::{LedgerName, PolicyMode, PolicySpec, RedisLedger, RedisOptions};
use crate::store::LedgerError;
use keepa::clock::{Clock as _, ScaledClock};

/// A permit for one call; settle it with the outcome (see [`Permit`]).
pub type OneOffPermit = Permit<PolicyKind, ScaledClock, RedisLedger>;

/// How urgent a one-off call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobClass {
    /// A person waits: served ahead of bulk work, or
    /// [`SharedError::Late`] after `max_delay`.
    Interactive {
        /// The longest the caller will wait for the permit.
        max_delay: Duration,
    },
    /// Background work: one request in the bulk fair share, with this
    /// weight relative to other bulk jobs (`>= 1`); waits as long as the
    /// policy says.
    Background {
        /// Share of the bulk budget.
        weight: u32,
    },
}

/// Why a one-off call got no permit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SharedError {
    /// The shared ledger failed (Redis unreachable, say).
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The budget did not admit the call (see [`GateError`]).
    #[error(transparent)]
    Gate(#[from] GateError),
    /// An interactive call was not admitted within its `max_delay`.
    #[error("no permit within {0:?}")]
    Late(Duration),
}

/// Options of [`SharedBudget::connect_with`].
#[derive(Debug, Clone, Default)]
pub struct SharedOptions {
    /// The ledger's options (lease, TTLs).
    pub redis: RedisOptions,
    /// The policy to require; `None`: adopt the one stored (or `flow` if the
    /// ledger has none yet).
    pub policy: Option<PolicySpec>,
    /// Server time (the clock envelopes' `timestamp` follows). `None`:
    /// Redis `TIME` at real speed, right for Keepa, whose `timestamp` is wall
    /// time; a fake server on a fast clock needs its own, scaled.
    pub clock: Option<ScaledClock>,
}

/// A handle on a key's shared budget for one-off calls. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SharedBudget {
    gate: Gate<PolicyKind, ScaledClock, RedisLedger>,
    next_job: std::sync::Arc<AtomicU32>,
}

/// One-off jobs get ids from here (below the gate's ids for other processes).
const ONE_OFF_BASE: u32 = 0x4000_0000;

impl SharedBudget {
    /// Connects to the shared ledger `name` at `url`, adopting its policy.
    pub async fn connect(url: &str, name: LedgerName) -> Result<Self, SharedError> {
        Self::connect_with(url, name, SharedOptions::default(), None).await
    }

    /// [`connect`](Self::connect) with options, and a `/token` caller for
    /// when nothing is known yet (without one, the first call waits for an
    /// envelope from another process or [`observe`](Self::observe)).
    pub async fn connect_with(
        url: &str,
        name: LedgerName,
        options: SharedOptions,
        token: Option<Box<dyn TokenSync>>,
    ) -> Result<Self, SharedError> {
        let ledger = RedisLedger::connect(url, &name, options.redis).await?;
        let spec = match &options.policy {
            Some(p) => ledger.agree_policy(p, PolicyMode::Require).await?,
            None => {
                ledger
                    .agree_policy(&PolicySpec::default(), PolicyMode::Adopt)
                    .await?
            }
        };
        // Redis TIME is the clock every process on this ledger shares.
        let clock = match options.clock {
            Some(c) => c,
            None => ScaledClock::new(ledger.redis_time_ms().await?, 1.0),
        };
        Ok(SharedBudget {
            gate: Gate::new(spec.policy()?, ledger, clock, token),
            next_job: std::sync::Arc::new(AtomicU32::new(0)),
        })
    }

    /// Waits for a permit for one request of `class` costing about `cost`.
    pub async fn acquire_one(
        &self,
        class: JobClass,
        cost: Prediction,
    ) -> Result<OneOffPermit, SharedError> {
        let n = self.next_job.fetch_add(1, Ordering::Relaxed) % ONE_OFF_BASE;
        let job = JobId(ONE_OFF_BASE + n);
        let now: Millis = self.gate.clock().now_ms();
        match class {
            JobClass::Interactive { max_delay } => {
                // Due now, no period: the policy serves it like a periodic
                // run that is due; it is no part of the future reserve.
                let need = Need::Periodic(Periodic {
                    next_due: now,
                    period_ms: 0,
                    max_delay_ms: max_delay.as_millis() as i64,
                    cost,
                    ..Default::default()
                });
                match tokio::time::timeout(max_delay, self.gate.acquire(job, need)).await {
                    Ok(r) => Ok(r?),
                    Err(_) => Err(SharedError::Late(max_delay)),
                }
            }
            JobClass::Background { weight } => {
                let need = Need::Bulk(Bulk {
                    per_request: cost,
                    per_item: Prediction::exact(0),
                    min_batch: 1,
                    max_batch: 1,
                    weight: weight.max(1),
                    not_before: Millis::MIN,
                    finishing: false,
                    remaining: None,
                });
                Ok(self.gate.acquire(job, need).await?)
            }
        }
    }

    /// Adopts an envelope seen outside a permit (newest `timestamp` wins);
    /// resolves to whether it was newer than the one held.
    pub async fn observe(&self, snapshot: TokenSnapshot) -> Result<bool, SharedError> {
        Ok(self.gate.observe_confirmed(snapshot).await?)
    }

    /// The projected balance as of the last read of the ledger.
    pub fn balance(&self) -> Option<i64> {
        self.gate.balance()
    }

    /// The gate underneath, for callers that want the whole surface.
    pub fn gate(&self) -> &Gate<PolicyKind, ScaledClock, RedisLedger> {
        &self.gate
    }
}
