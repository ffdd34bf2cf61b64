//! One scheduler for one Keepa key's tokens.
//!
//! Every job that spends tokens asks the budget first. The budget keeps a
//! [`Ledger`] (the newest server envelope plus the reservations in flight),
//! asks a [`Policy`] what may go now, and answers with a [`Decision`]: a
//! [`Grant`] (which request, how many items), a skipped periodic run, a
//! `/token` sync, a refusal with a clear error, or the **exact** instant at
//! which refill alone makes something possible.
//!
//! - [`demand`]: what jobs ask ([`Demand`]: periodic or bulk) and the answers.
//! - [`ledger`]: the server's state and ours; invariants in its docs.
//! - [`policy`]: `wait-for-max` and `controlled-deficit` (the seed's) and
//!   [`flow`] (ours, the default).
//! - [`Scheduler`]: ledger + policy + memory, pure: `decide(now, demands)`.
//! - [`gate`]: the async shell the harvest uses: `acquire` → [`gate::Permit`]
//!   → `settle`. With feature `client`, `keepa::Client` is its
//!   [`gate::TokenSync`] (the budget links no HTTP stack without it).
//! - [`store`]: where the ledger lives ([`LedgerStore`]): in process, or
//!   (feature `redis`) in Redis, shared by several processes and hosts
//!   (`redis_ledger`), with a small surface for one-off calls (`shared`).
//!
//! # Invariants
//!
//! - The core never does IO and never reads a clock: every instant is an
//!   argument, so every decision replays in a test.
//! - The newest server `timestamp` wins; an older envelope never overwrites
//!   a newer one; reservations in flight are never overwritten by one.
//! - No wait without a wake-up time computed on the server's bucket model
//!   ([`keepa::tokens::TokenBucket`]); a wait that refill can never end is
//!   reported as such (`until: None`) or as a [`Refusal`], never polled.
//!   [`policy::Flow`] looks again at every refill step while bulk work
//!   waits, re-reading the bucket (a free `/token` call) at most once per
//!   step: a plan change shows only in an envelope.
//! - Under [`policy::Flow`], a bulk request never leaves less than the
//!   reserve that keeps every periodic run admissible by its deadline,
//!   counting refill only at the rate the periodic jobs need, so that an
//!   unannounced plan change cannot take it away (see [`flow`] for the
//!   exact guarantees).
//!
//! # Example
//!
//! ```
//! use budget::{Decision, Demand, JobId, Need, Periodic, Prediction, Scheduler};
//! use budget::policy::Flow;
//! use keepa::TokenSnapshot;
//!
//! let mut s = Scheduler::new(Flow::default(), budget::Ledger::default());
//! // Nothing known yet: sync first.
//! assert_eq!(s.decide(0, &[]), Decision::Sync);
//! s.synced(0, TokenSnapshot { timestamp_ms: 0, tokens_left: 0, refill_in_ms: 60_000, refill_rate: 5 });
//! let refresh = Demand { job: JobId(0), need: Need::Periodic(Periodic {
//!     next_due: 0, period_ms: 60_000, max_delay_ms: 60_000, cost: Prediction::exact(1), ..Default::default() }) };
//! // Balance 0: the refresher waits for the first refill step, exactly.
//! assert_eq!(s.decide(0, &[refresh]), Decision::Wait { until: Some(60_000) });
//! ```
//!
//! # One-off calls through a shared budget (feature `redis`)
//!
//! A program that is not a harvester (a web dashboard, say) takes a permit
//! for a single call from the same budget as the harvest processes on the
//! key. The ledger's name in Redis is derived from the key (a salted hash),
//! never the key itself.
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # async fn demo(key: keepa::ApiKey) -> Result<(), Box<dyn std::error::Error>> {
//! use budget::redis_ledger::LedgerName;
//! use budget::shared::{JobClass, SharedBudget};
//! use budget::{Outcome, Prediction};
//! use std::time::Duration;
//!
//! let budget = SharedBudget::connect("redis://127.0.0.1:6379/", LedgerName::for_key(&key)).await?;
//! let permit = budget
//!     .acquire_one(JobClass::Interactive { max_delay: Duration::from_secs(5) }, Prediction::new(6, 12))
//!     .await?;
//! // … send the request, then settle with what the server said:
//! permit.settle(Outcome::Charged { consumed: 6, snapshot: None });
//! # Ok(()) }
//! ```
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod demand;
pub mod flow;
pub mod gate;
pub mod ledger;
pub mod policy;
#[cfg(feature = "redis")]
pub mod redis_ledger;
mod scheduler;
#[cfg(feature = "redis")]
pub mod shared;
pub mod store;

pub use demand::{
    Bulk, Decision, Demand, Grant, JobId, Millis, Need, Periodic, Prediction, Refusal,
};
pub use ledger::{Ledger, Outcome, ReservationId, View};
pub use policy::{Policy, PolicyKind, SeedRules};
pub use scheduler::Scheduler;
pub use store::{AnyLedger, LedgerError, LedgerStore};
