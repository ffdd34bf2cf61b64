//! Keepa time: whole minutes since 2011-01-01T00:00Z.
//!
//! Keepa stamps every history point, `lastUpdate`, `creationDate` and the
//! like in these minutes. The conversion is exact in both directions for
//! whole minutes; Unix milliseconds that are not on a minute boundary round
//! down.

use serde::{Deserialize, Serialize};

/// Minutes between the Unix epoch and Keepa's epoch (2011-01-01T00:00Z).
pub const KEEPA_EPOCH_OFFSET_MINUTES: i64 = 21_564_000;

const MS_PER_MINUTE: i64 = 60_000;

/// A point in Keepa time (minutes since 2011-01-01T00:00Z).
///
/// ```
/// use keepa::time::KeepaMinutes;
/// // Keepa's own documented example.
/// assert_eq!(KeepaMinutes(411_180).to_unix_ms(), 1_318_510_800_000);
/// assert_eq!(KeepaMinutes::from_unix_ms(1_318_510_800_000), KeepaMinutes(411_180));
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct KeepaMinutes(pub i64);

impl KeepaMinutes {
    /// Unix milliseconds at the start of this Keepa minute; saturates at
    /// `i64::MIN` / `i64::MAX` for minutes no real time has (a server may
    /// send any integer).
    pub fn to_unix_ms(self) -> i64 {
        self.0
            .saturating_add(KEEPA_EPOCH_OFFSET_MINUTES)
            .saturating_mul(MS_PER_MINUTE)
    }

    /// The Keepa minute containing the given Unix milliseconds (rounds down,
    /// also before the epoch).
    pub fn from_unix_ms(unix_ms: i64) -> Self {
        KeepaMinutes(unix_ms.div_euclid(MS_PER_MINUTE) - KEEPA_EPOCH_OFFSET_MINUTES)
    }

    /// Unix seconds at the start of this Keepa minute.
    pub fn to_unix_secs(self) -> i64 {
        self.to_unix_ms() / 1000
    }

    /// Whole minutes from `from_unix_ms` to `to_unix_ms`, rounded toward
    /// zero (negative when `to` is earlier); saturates instead of overflowing.
    /// A span, not a point: unlike subtracting two [`KeepaMinutes`], it does
    /// not depend on where the minute boundaries fall.
    ///
    /// ```
    /// use keepa::time::KeepaMinutes;
    /// assert_eq!(KeepaMinutes::minutes_between(30_000, 150_000), 2);
    /// assert_eq!(KeepaMinutes::minutes_between(0, 119_999), 1);
    /// ```
    pub fn minutes_between(from_unix_ms: i64, to_unix_ms: i64) -> i64 {
        to_unix_ms.saturating_sub(from_unix_ms) / MS_PER_MINUTE
    }
}

impl std::fmt::Display for KeepaMinutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (keepa minutes)", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepa_documented_example_converts_both_ways() {
        assert_eq!(KeepaMinutes(411_180).to_unix_ms(), 1_318_510_800_000);
        assert_eq!(
            KeepaMinutes::from_unix_ms(1_318_510_800_000),
            KeepaMinutes(411_180)
        );
    }

    #[test]
    fn epoch_is_2011_not_2000() {
        // 2011-01-01T00:00:00Z
        assert_eq!(KeepaMinutes(0).to_unix_ms(), 1_293_840_000_000);
    }

    /// Regression: a deal with `"lastUpdate": -9223372036854775808` (found by
    /// the no-panic proptest) overflowed the conversion and panicked
    /// `extract::deal` in debug builds; release builds wrapped silently.
    #[test]
    fn to_unix_ms_overflow_saturates() {
        assert_eq!(KeepaMinutes(i64::MIN).to_unix_ms(), i64::MIN);
        assert_eq!(KeepaMinutes(i64::MAX).to_unix_ms(), i64::MAX);
        assert_eq!(KeepaMinutes(i64::MAX / 60_000).to_unix_ms(), i64::MAX);
        assert_eq!(KeepaMinutes(i64::MIN).to_unix_secs(), i64::MIN / 1000);
        assert_eq!(
            KeepaMinutes::from_unix_ms(i64::MIN),
            KeepaMinutes(i64::MIN.div_euclid(60_000) - KEEPA_EPOCH_OFFSET_MINUTES)
        );
    }

    #[test]
    fn minutes_between_truncates_toward_zero_and_saturates() {
        assert_eq!(KeepaMinutes::minutes_between(0, 59_999), 0);
        assert_eq!(KeepaMinutes::minutes_between(0, 60_000), 1);
        assert_eq!(KeepaMinutes::minutes_between(59_999, 120_000), 1);
        assert_eq!(KeepaMinutes::minutes_between(60_000, 0), -1);
        assert_eq!(KeepaMinutes::minutes_between(119_999, 0), -1);
        assert_eq!(
            KeepaMinutes::minutes_between(i64::MIN, i64::MAX),
            i64::MAX / 60_000
        );
    }

    #[test]
    fn partial_minutes_round_down_even_before_epoch() {
        assert_eq!(
            KeepaMinutes::from_unix_ms(1_293_840_000_000 + 59_999),
            KeepaMinutes(0)
        );
        assert_eq!(
            KeepaMinutes::from_unix_ms(1_293_840_000_000 - 1),
            KeepaMinutes(-1)
        );
    }
}
