//! Alerts: a deal matching an `[[alert]]` is announced to a webhook as it
//! is stored.
//!
//! - `payload`: [`matches()`] (the rules, at the pipeline's store step) and
//!   the alert object; [`body`], what each format (`json`, `slack`,
//!   `discord`) POSTs.
//! - `worker`: the [`Worker`] beside the jobs: it claims due rows of the
//!   outbox ([`crate::store`]'s `alert_outbox`), POSTs them through a
//!   [`Transport`] ([`HttpTransport`] on reqwest), marks them delivered or
//!   schedules a retry with [`backoff_ms`]; [`send_test`] for
//!   `keepa-harvest alert test`.
//!
//! Guarantees: delivery is at least once. An outbox row commits with its
//! deal; a row is delivered, or retried with backoff (2 s doubling to 1 h,
//! forever), also after a restart; a send whose outcome a crash lost is
//! sent again and counted ([`crate::metrics::AlertCounts::duplicates`]),
//! with the same `key` so the receiver can drop it. The worker never
//! blocks the harvest: the jobs only write rows. Neither the API key nor a
//! webhook URL appears in a payload, a log line or a stored error.

mod payload;
mod worker;

pub use payload::{body, matches, object, sample, BUYER_FIELDS};
pub use worker::{
    backoff_ms, send_test, HttpTransport, Round, SendError, Transport, Worker, WorkerSettings,
};
