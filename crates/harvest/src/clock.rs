//! Server time for the budget.
//!
//! The budget reads time only through [`budget::gate::Clock`], in the
//! server's milliseconds. [`ScaledClock`] is the budget's
//! [`TokioClock`](budget::gate::TokioClock): against real Keepa the scale is
//! 1 and the origin is the local wall clock (Keepa's `timestamp` is wall
//! time); against a fake server on a fast clock it runs at the server's
//! scale from the server's time at the same instant.

/// The harvest's clock: server time, possibly scaled. See the module docs.
pub type ScaledClock = budget::gate::TokioClock;

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
    use budget::gate::Clock;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn scaled_clock_maps_server_time_to_real_time() {
        let c = ScaledClock::scaled(1_000_000, 600.0);
        assert_eq!(c.now(), 1_000_000);
        // Ten server minutes are one real second.
        c.sleep_until(1_000_000 + 600_000).await;
        let now = c.now();
        assert!((1_600_000..1_600_100).contains(&now), "{now}");
        assert_eq!(c.real(60_000), Duration::from_millis(100));
    }
}
