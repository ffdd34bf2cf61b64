//! Server time: a [`Clock`] trait, a scaled wall clock and a manual clock.
//!
//! Every time-dependent answer of the server (refill steps, `timestamp`,
//! `refillIn`, `lastUpdate`, the deal feed, the foreign consumer) reads one
//! [`Clock`]. Tests inject a [`ManualClock`] and advance it by hand, so no
//! test ever sleeps to see a refill.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A source of server time in Unix milliseconds.
///
/// Implementations must be monotone (never go backwards) for the bucket
/// arithmetic to hold.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Server time now, Unix milliseconds.
    fn now_ms(&self) -> i64;

    /// Server milliseconds per real millisecond, if this clock follows real
    /// time at a fixed speed; `None` (the default) if it does not, like a
    /// [`ManualClock`]. The server announces a speed other than 1 in every
    /// Keepa answer (`x-fake-keepa-time-scale`).
    fn time_scale(&self) -> Option<f64> {
        None
    }
}

/// Wall time run `scale` times faster from a starting instant:
/// `now = start_unix_ms + elapsed_real × scale`.
///
/// `scale = 1.0` is real time; `600.0` makes one real second ten Keepa minutes.
#[derive(Debug, Clone)]
pub struct ScaledClock {
    start_unix_ms: i64,
    started: Instant,
    scale: f64,
}

impl ScaledClock {
    /// A clock that reads `start_unix_ms` now and runs `scale` times faster
    /// than real time. A non-finite or non-positive scale is taken as 1.
    pub fn new(start_unix_ms: i64, scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        ScaledClock {
            start_unix_ms,
            started: Instant::now(),
            scale,
        }
    }

    /// A clock starting at the current wall time.
    pub fn from_wall(scale: f64) -> Self {
        ScaledClock::new(wall_unix_ms(), scale)
    }

    /// The speed-up factor.
    pub fn scale(&self) -> f64 {
        self.scale
    }
}

impl Clock for ScaledClock {
    fn now_ms(&self) -> i64 {
        let elapsed = self.started.elapsed().as_secs_f64() * 1000.0 * self.scale;
        self.start_unix_ms
            .saturating_add(elapsed.min(i64::MAX as f64 / 2.0) as i64)
    }

    fn time_scale(&self) -> Option<f64> {
        Some(self.scale)
    }
}

/// A clock that moves only when told to. Clones share the same time.
///
/// ```
/// use fake_keepa::clock::{Clock, ManualClock};
/// let clock = ManualClock::new(1_700_000_000_000);
/// clock.advance_ms(60_000);
/// assert_eq!(clock.now_ms(), 1_700_000_060_000);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock reading `start_unix_ms`.
    pub fn new(start_unix_ms: i64) -> Self {
        ManualClock {
            now: Arc::new(AtomicI64::new(start_unix_ms)),
        }
    }

    /// Moves time forward by `ms` (negative values are ignored: the clock is monotone).
    pub fn advance_ms(&self, ms: i64) {
        self.now.fetch_add(ms.max(0), Ordering::SeqCst);
    }

    /// Moves time forward by whole minutes.
    pub fn advance_minutes(&self, minutes: i64) {
        self.advance_ms(minutes.saturating_mul(60_000));
    }

    /// Sets the time, if it is not earlier than the current one.
    pub fn set_ms(&self, unix_ms: i64) {
        self.now.fetch_max(unix_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}

/// The machine's wall time, Unix milliseconds.
pub fn wall_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
