//! Server time for the budget: a tokio clock run `scale` times faster.
//!
//! The budget reads time only through [`budget::gate::Clock`], in the
//! server's milliseconds. Against real Keepa the scale is 1 and the origin is
//! the local wall clock (Keepa's `timestamp` is wall time). Against the
//! sandbox's fake server the clock runs at the server's scale from the
//! server's time at the same instant, so `now()` tracks the server's
//! `timestamp` and `sleep_until` sleeps the real equivalent.
//!
//! Built on `tokio::time::Instant`, so tests can pause and advance time.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use budget::gate::Clock;
use budget::Millis;

/// `now = origin_ms + elapsed_real × scale`.
#[derive(Debug, Clone)]
pub struct ScaledClock {
    origin_ms: Millis,
    origin: tokio::time::Instant,
    scale: f64,
}

impl ScaledClock {
    /// A clock reading `server_now_ms` at this instant and running `scale`
    /// times faster than real time (a non-finite or non-positive scale is 1).
    pub fn new(server_now_ms: Millis, scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        ScaledClock {
            origin_ms: server_now_ms,
            origin: tokio::time::Instant::now(),
            scale,
        }
    }

    /// Real time from the local wall clock (scale 1).
    pub fn wall() -> Self {
        ScaledClock::new(wall_unix_ms(), 1.0)
    }

    /// The speed-up factor.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The real duration that `server_ms` of server time takes.
    pub fn real(&self, server_ms: i64) -> Duration {
        Duration::from_secs_f64(server_ms.max(0) as f64 / 1000.0 / self.scale)
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Millis {
        let elapsed = self.origin.elapsed().as_secs_f64() * 1000.0 * self.scale;
        self.origin_ms
            .saturating_add(elapsed.min(i64::MAX as f64 / 4.0) as i64)
    }

    fn sleep_until(&self, at: Millis) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let ahead = at.saturating_sub(self.origin_ms);
        let deadline = self.origin + self.real(ahead);
        Box::pin(tokio::time::sleep_until(deadline))
    }
}

/// The machine's wall time, Unix milliseconds.
pub fn wall_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn scaled_clock_maps_server_time_to_real_time() {
        let c = ScaledClock::new(1_000_000, 600.0);
        assert_eq!(c.now(), 1_000_000);
        // Ten server minutes are one real second.
        c.sleep_until(1_000_000 + 600_000).await;
        let now = c.now();
        assert!((1_600_000..1_600_100).contains(&now), "{now}");
        assert_eq!(c.real(60_000), Duration::from_millis(100));
    }
}
