//! Server time: one [`Clock`] abstraction for the whole project.
//!
//! Everything that reasons about Keepa's tokens reads time through a
//! [`Clock`] in the server's Unix milliseconds (Keepa's `timestamp`): the
//! fake server (refill steps, `timestamp`, `refillIn`, the deal feed), the
//! budget's gate (when a waiter may go) and the harvest's jobs (refresh
//! periods, watermarks). Nothing reads the wall clock directly, so every
//! test injects time:
//!
//! - [`ScaledClock`]: real time, optionally run `scale` times faster from a
//!   starting instant (a fake server on a fast clock, or a client following
//!   one). It is built on tokio's clock, so `tokio::time::pause` stops it.
//! - [`ManualClock`]: moves only when told to; sleeping on it waits until
//!   the clock is moved past the instant. Clones share one time.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use keepa::clock::{Clock, ManualClock};
//! let clock = ManualClock::new(1_700_000_000_000);
//! let sleeper = clock.sleep_until(1_700_000_060_000);
//! clock.advance_minutes(1);
//! sleeper.await; // resolves: the clock reached the instant
//! assert_eq!(clock.now_ms(), 1_700_000_060_000);
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

/// A future returned by [`Clock::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A source of server time in Unix milliseconds.
///
/// Implementations are monotone (never go backwards), which the bucket
/// arithmetic relies on.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Server time now, Unix milliseconds.
    fn now_ms(&self) -> i64;

    /// Resolves once server time reaches `at_ms` (at once if it has).
    fn sleep_until(&self, at_ms: i64) -> Sleep;

    /// How many times faster than real time this clock runs, for a clock
    /// that follows real time at all (`None` for a hand-moved one).
    fn time_scale(&self) -> Option<f64> {
        None
    }
}

/// Real time run `scale` times faster from a starting instant:
/// `now = origin_ms + elapsed × scale`, on tokio's clock.
///
/// Scale 1 is real time (Keepa's `timestamp` is wall time); `600` makes one
/// real second ten server minutes. Clones share the origin.
#[derive(Debug, Clone)]
pub struct ScaledClock {
    origin_ms: i64,
    origin: tokio::time::Instant,
    scale: f64,
}

impl ScaledClock {
    /// A clock reading `origin_ms` now and running `scale` times faster
    /// than real time (a non-finite or non-positive scale is taken as 1).
    pub fn new(origin_ms: i64, scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        ScaledClock {
            origin_ms,
            origin: tokio::time::Instant::now(),
            scale,
        }
    }

    /// The machine's wall clock, at real speed.
    pub fn wall() -> Self {
        ScaledClock::new(wall_unix_ms(), 1.0)
    }

    /// A clock starting at the machine's wall time, running `scale` times
    /// faster.
    pub fn from_wall(scale: f64) -> Self {
        ScaledClock::new(wall_unix_ms(), scale)
    }

    /// The speed-up factor (1 for real time).
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The real duration that `server_ms` of this clock's time takes.
    pub fn real(&self, server_ms: i64) -> Duration {
        Duration::from_secs_f64(server_ms.max(0) as f64 / 1000.0 / self.scale)
    }
}

impl Clock for ScaledClock {
    fn now_ms(&self) -> i64 {
        let elapsed = self.origin.elapsed().as_secs_f64() * 1000.0 * self.scale;
        self.origin_ms
            .saturating_add(elapsed.min(i64::MAX as f64 / 4.0) as i64)
    }

    fn sleep_until(&self, at_ms: i64) -> Sleep {
        let deadline = self.origin + self.real(at_ms.saturating_sub(self.origin_ms));
        Box::pin(tokio::time::sleep_until(deadline))
    }

    fn time_scale(&self) -> Option<f64> {
        Some(self.scale)
    }
}

/// A clock that moves only when told to (tests, doc examples, and a fake
/// server steered by hand). Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
    tick: Arc<Notify>,
}

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        ManualClock {
            now: Arc::new(AtomicI64::new(start_ms)),
            tick: Arc::new(Notify::new()),
        }
    }

    /// Moves time forward by `ms` (a negative step is ignored: the clock is
    /// monotone).
    pub fn advance_ms(&self, ms: i64) {
        self.now.fetch_add(ms.max(0), Ordering::SeqCst);
        self.tick.notify_waiters();
    }

    /// Moves time forward by whole minutes.
    pub fn advance_minutes(&self, minutes: i64) {
        self.advance_ms(minutes.saturating_mul(60_000));
    }

    /// Sets the time to `to_ms`, if that is not earlier than now.
    pub fn set_ms(&self, to_ms: i64) {
        self.now.fetch_max(to_ms, Ordering::SeqCst);
        self.tick.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, at_ms: i64) -> Sleep {
        let me = self.clone();
        Box::pin(async move {
            loop {
                let tick = me.tick.notified();
                if me.now_ms() >= at_ms {
                    return;
                }
                tick.await;
            }
        })
    }
}

/// The machine's wall time, Unix milliseconds (0 before 1970).
pub fn wall_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_scaled_clock_maps_server_time_to_real_time() {
        let c = ScaledClock::new(1_000_000, 600.0);
        assert_eq!(c.now_ms(), 1_000_000);
        // Ten server minutes are one real second.
        c.sleep_until(1_000_000 + 600_000).await;
        let now = c.now_ms();
        assert!((1_600_000..1_600_100).contains(&now), "{now}");
        assert_eq!(c.real(60_000), Duration::from_millis(100));
        assert_eq!(c.time_scale(), Some(600.0));
    }

    #[test]
    fn a_bad_scale_is_real_time() {
        for s in [0.0, -3.0, f64::NAN, f64::INFINITY] {
            assert_eq!(ScaledClock::new(0, s).scale(), 1.0);
        }
    }

    #[tokio::test]
    async fn a_manual_clock_is_monotone_and_wakes_its_sleepers() {
        let c = ManualClock::new(1_000);
        c.advance_ms(-500);
        c.set_ms(10);
        assert_eq!(c.now_ms(), 1_000);
        let sleeper = tokio::spawn(c.sleep_until(61_000));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        c.advance_minutes(1);
        sleeper.await.unwrap();
        assert_eq!(c.now_ms(), 61_000);
        assert_eq!(c.time_scale(), None);
    }
}
