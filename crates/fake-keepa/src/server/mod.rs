//! The HTTP shell, one job per module:
//!
//! - `transport`: the hyper accept loop, connection-level faults (resets,
//!   latency, hangs, garbage bodies), gzip and the response headers.
//! - `routing`: which endpoint, the checks in Keepa's order (404, 405, 402,
//!   400, 429), admission and the envelope of every answer; the `/_fake`
//!   admin hooks.
//! - `accounts`: one token bucket per key, the foreign consumer and the
//!   counters `/_fake/stats` reports.
//! - `validate`: a request's parameters into the work it asks for, per
//!   endpoint (400 before admission, never a charge).
//! - `execute`: admitted work into its payload and cost, per endpoint.
//! - `bad_answers`: 200s that are not what was asked for, on demand (an
//!   error in the body, no payload, a malformed deal, failed offers, no
//!   `tokensConsumed`, ASINs left out).
//! - `collected`: when Keepa last collected each product and its offers,
//!   and what `update` makes of it (collect, or serve the cached offers).

mod accounts;
mod bad_answers;
mod collected;
mod execute;
mod routing;
mod transport;
mod validate;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use hyper::StatusCode;
use keepa::tokens::{BucketCap, RateSchedule};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use crate::catalog::Catalog;
use crate::faults::FaultSpec;
use crate::feed::DealFeed;
use crate::stats::ServerStats;
use accounts::{Account, Books};
use keepa::clock::Clock;
pub(crate) use transport::serve;

/// How the server was configured, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) keys: Vec<String>,
    pub(crate) expired_keys: Vec<String>,
    pub(crate) schedule_minutes: Vec<(i64, i64)>,
    pub(crate) cap: BucketCap,
    pub(crate) start_tokens: Option<i64>,
    pub(crate) faults: FaultSpec,
    pub(crate) seed: u64,
    /// The server start: the token buckets and refill schedules count from it.
    pub(crate) start_ms: i64,
}

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: Settings,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) start_ms: i64,
    feed: DealFeed,
    books: Mutex<Books>,
    collected: Mutex<collected::Collections>,
    fault_rng: Mutex<ChaCha8Rng>,
    /// The bad-answer faults' own generator (`bad_answers`).
    bad_rng: Mutex<ChaCha8Rng>,
    /// Envelopes written so far (`zero_refill` faults).
    envelopes: AtomicU64,
    shutdown: watch::Receiver<bool>,
}

/// A server-side problem with a request: status, error type, message, details.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    details: Option<Value>,
}

impl ApiError {
    /// An error without details.
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            details: None,
        }
    }

    fn bad(param: &str, message: impl Into<String>) -> Self {
        ApiError {
            details: Some(json!([{"type": param, "message": "invalid"}])),
            ..ApiError::new(StatusCode::BAD_REQUEST, "invalidParameter", message)
        }
    }

    fn domain() -> Self {
        ApiError::bad("domain", "invalid domain")
    }

    fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "notFound", "unknown endpoint")
    }
}

/// The envelope with Keepa's `error` object added.
fn error_body(env: Map<String, Value>, err: &ApiError) -> Value {
    let mut m = env;
    let mut e = Map::new();
    e.insert("type".into(), json!(err.kind));
    e.insert("message".into(), json!(err.message));
    e.insert("details".into(), err.details.clone().unwrap_or(Value::Null));
    m.insert("error".into(), Value::Object(e));
    Value::Object(m)
}

/// `N` uniform draws in `[0, 1)` from `rng`, in order: a fault kind draws
/// the same count on every request, so its sequence stays aligned.
fn uniforms<const N: usize>(rng: &Mutex<ChaCha8Rng>) -> [f64; N] {
    let mut r = lock(rng);
    std::array::from_fn(|_| rand::Rng::random(&mut *r))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(
        clock: Arc<dyn Clock>,
        settings: Settings,
        feed: DealFeed,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, keepa::tokens::ScheduleError> {
        let catalog = feed.catalog().clone();
        let start_ms = settings.start_ms;
        let schedule = RateSchedule::from_minutes(start_ms, &settings.schedule_minutes)?;
        let books = Books::new(&settings, &schedule, start_ms);
        Ok(Shared {
            clock,
            fault_rng: Mutex::new(ChaCha8Rng::seed_from_u64(crate::rng::hash(
                settings.seed,
                901,
                0,
            ))),
            bad_rng: Mutex::new(ChaCha8Rng::seed_from_u64(crate::rng::hash(
                settings.seed,
                902,
                0,
            ))),
            feed,
            settings,
            catalog,
            start_ms,
            books: Mutex::new(books),
            collected: Mutex::new(collected::Collections::default()),
            envelopes: AtomicU64::new(0),
            shutdown,
        })
    }

    /// How many deal records the feed holds built.
    pub(crate) fn cached_deals(&self) -> usize {
        self.feed.cached()
    }

    /// What the server has counted so far.
    pub(crate) fn stats(&self) -> ServerStats {
        let now = self.clock.now_ms();
        let mut books = lock(&self.books);
        let spec = &self.settings.faults;
        for a in &mut books.accounts {
            a.sync(now, spec);
        }
        ServerStats {
            now_ms: now,
            keys: books.accounts.iter().map(|a| a.snapshot(now)).collect(),
            rejected_keys: books.rejected.clone(),
            faults: books.faults,
        }
    }

    /// Sets a key's balance now (admin hook). `false` if the key is unknown.
    pub(crate) fn set_balance(&self, key: &str, value: i64) -> bool {
        let now = self.clock.now_ms();
        let mut books = lock(&self.books);
        let Some(&i) = books.by_key.get(key) else {
            return false;
        };
        let a = &mut books.accounts[i];
        a.sync(now, &self.settings.faults);
        let b = a.bucket.balance();
        a.bucket.spend(now, b - value);
        a.min_balance = a.min_balance.min(value);
        true
    }

    /// Replaces the refill schedule of one key, or of all (`None`); minutes
    /// count from the server start.
    pub(crate) fn set_schedule(
        &self,
        key: Option<&str>,
        entries: &[(i64, i64)],
    ) -> Result<usize, keepa::tokens::ScheduleError> {
        let schedule = RateSchedule::from_minutes(self.start_ms, entries)?;
        let now = self.clock.now_ms();
        let mut books = lock(&self.books);
        let mut n = 0;
        for a in books
            .accounts
            .iter_mut()
            .filter(|a| key.is_none_or(|k| k == a.key))
        {
            a.sync(now, &self.settings.faults);
            a.bucket.set_schedule(schedule.clone());
            n += 1;
        }
        Ok(n)
    }

    /// The envelope of an answer written at `now` (zeros without an
    /// account), with the envelope faults (`skew`, `zero_refill`).
    fn envelope(
        &self,
        account: Option<&Account>,
        now: i64,
        consumed: i64,
        started: Instant,
    ) -> Map<String, Value> {
        let faults = &self.settings.faults;
        let n = self.envelopes.fetch_add(1, Ordering::Relaxed) + 1;
        let zero_refill = faults.zero_refill_at == Some(n)
            || (faults.zero_refill > 0.0
                && (crate::rng::hash(self.settings.seed, 902, n) as f64 / u64::MAX as f64)
                    < faults.zero_refill);
        let mut m = Map::new();
        let skewed = now - self.start_ms >= faults.skew_from_ms;
        let stamp = now.saturating_add(if skewed { faults.skew_ms } else { 0 });
        m.insert("timestamp".into(), json!(stamp));
        let (left, refill_in, rate) = match account {
            Some(a) => (
                a.bucket.balance(),
                a.bucket.refill_in(now),
                if zero_refill {
                    0
                } else {
                    a.bucket.rate_at(now)
                },
            ),
            None => (0, 0, 0),
        };
        m.insert("tokensLeft".into(), json!(left));
        m.insert("refillIn".into(), json!(refill_in));
        m.insert("refillRate".into(), json!(rate));
        m.insert("tokenFlowReduction".into(), json!(0));
        m.insert("tokensConsumed".into(), json!(consumed));
        m.insert(
            "processingTimeInMs".into(),
            json!(started.elapsed().as_millis() as i64),
        );
        m
    }
}
