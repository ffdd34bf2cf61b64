//! The gate's clocks: server time, read through [`Clock`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::demand::Millis;

/// Server time, as the gate sees it.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Now, in server milliseconds (Keepa `timestamp`).
    fn now(&self) -> Millis;
    /// Resolves at server time `at` (at once if past).
    fn sleep_until(&self, at: Millis) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Tokio's clock mapped to server time, optionally running `scale` times
/// faster than real time: `now = origin_ms + elapsed × scale`.
///
/// Against Keepa the scale is 1 (its `timestamp` is wall time); against a
/// fake server on a fast clock it is the server's scale, from the server's
/// time at the same instant, so `now()` tracks the server's `timestamp` and
/// `sleep_until` sleeps the real equivalent. Works with `tokio::time::pause`.
#[derive(Debug, Clone)]
pub struct TokioClock {
    origin_ms: Millis,
    origin: tokio::time::Instant,
    scale: f64,
}

impl TokioClock {
    /// A clock reading `server_now_ms` at this instant, at real speed.
    pub fn new(server_now_ms: Millis) -> Self {
        Self::scaled(server_now_ms, 1.0)
    }

    /// A clock reading `server_now_ms` at this instant and running `scale`
    /// times faster than real time (a non-finite or non-positive scale is 1).
    pub fn scaled(server_now_ms: Millis, scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        TokioClock {
            origin_ms: server_now_ms,
            origin: tokio::time::Instant::now(),
            scale,
        }
    }

    /// The local wall clock at real speed (Keepa's `timestamp` is wall time).
    pub fn wall() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Millis);
        Self::new(now)
    }

    /// The speed-up factor.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The real duration that `server_ms` of server time takes.
    pub fn real(&self, server_ms: Millis) -> std::time::Duration {
        std::time::Duration::from_secs_f64(server_ms.max(0) as f64 / 1000.0 / self.scale)
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Millis {
        let elapsed = self.origin.elapsed().as_secs_f64() * 1000.0 * self.scale;
        self.origin_ms
            .saturating_add(elapsed.min(Millis::MAX as f64 / 4.0) as Millis)
    }

    fn sleep_until(&self, at: Millis) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let deadline = self.origin + self.real(at.saturating_sub(self.origin_ms));
        Box::pin(tokio::time::sleep_until(deadline))
    }
}

/// A clock moved by hand (for tests and doc examples); sleeping on it
/// waits until [`advance`](Self::advance) passes the instant.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Millis>>,
    tick: Arc<Notify>,
}

impl ManualClock {
    /// A clock at `now`.
    pub fn new(now: Millis) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(now)),
            tick: Arc::new(Notify::new()),
        }
    }

    /// Moves the clock to `to` (never backwards).
    pub fn advance(&self, to: Millis) {
        let mut n = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *n = (*n).max(to);
        drop(n);
        self.tick.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep_until(&self, at: Millis) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let me = self.clone();
        Box::pin(async move {
            loop {
                let tick = me.tick.notified();
                if me.now() >= at {
                    return;
                }
                tick.await;
            }
        })
    }
}
