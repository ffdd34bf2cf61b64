//! The token envelope Keepa puts on every JSON response, errors and 429s
//! included.

use serde::{Deserialize, Serialize};

/// The token fields of a Keepa response, exactly as sent. Every field is
/// optional: real responses (and the published fixtures) sometimes omit some.
///
/// ```
/// use keepa::Envelope;
/// let body = r#"{"timestamp":1594177158252,"tokensLeft":0,"refillIn":38205,
///   "refillRate":20,"tokenFlowReduction":0,"tokensConsumed":0,"processingTimeInMs":0}"#;
/// let env: Envelope = serde_json::from_str(body).unwrap();
/// let snap = env.snapshot().unwrap();
/// assert_eq!(snap.tokens_left, 0);
/// assert_eq!(snap.next_refill_at_ms(), 1594177158252 + 38205);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Server time of the response, Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Balance after this request; may be negative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_left: Option<i64>,
    /// Milliseconds until the next refill step (always < 60 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refill_in: Option<i64>,
    /// Tokens added per minute now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refill_rate: Option<i64>,
    /// Rate reduction caused by product tracking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_flow_reduction: Option<f64>,
    /// What this request cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_consumed: Option<i64>,
    /// Server processing time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_time_in_ms: Option<i64>,
}

/// The server's token state at one instant: everything a budget needs to
/// project the balance forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSnapshot {
    /// Server time, Unix milliseconds.
    pub timestamp_ms: i64,
    /// Balance at `timestamp_ms`, after the request it answered.
    pub tokens_left: i64,
    /// Milliseconds from `timestamp_ms` to the next refill step, in `0..=60_000`.
    pub refill_in_ms: i64,
    /// Tokens per minute.
    pub refill_rate: i64,
}

impl TokenSnapshot {
    /// Server time of the next refill step.
    pub fn next_refill_at_ms(&self) -> i64 {
        self.timestamp_ms.saturating_add(self.refill_in_ms)
    }
}

/// The ranges a server's token state can be in; [`Envelope::snapshot`]
/// refuses values outside them. Far beyond any Keepa plan, and small
/// enough that every projection of [`crate::tokens::TokenBucket`] stays
/// within `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plausible {
    /// Latest server time, Unix ms (the earliest is 0).
    pub max_timestamp_ms: i64,
    /// Largest balance either side of zero.
    pub max_abs_tokens: i64,
    /// Largest refill rate, tokens per minute.
    pub max_refill_rate: i64,
}

/// Year 2286, a trillion tokens, a billion tokens a minute.
pub const PLAUSIBLE: Plausible = Plausible {
    max_timestamp_ms: 10_000_000_000_000,
    max_abs_tokens: 1_000_000_000_000,
    max_refill_rate: 1_000_000_000,
};

impl Plausible {
    /// Whether `s` is within these ranges.
    pub fn admits(&self, s: &TokenSnapshot) -> bool {
        (0..=self.max_timestamp_ms).contains(&s.timestamp_ms)
            && (-self.max_abs_tokens..=self.max_abs_tokens).contains(&s.tokens_left)
            && (0..=self.max_refill_rate).contains(&s.refill_rate)
    }
}

impl Envelope {
    /// Whether the body carried any token field at all.
    pub fn is_empty(&self) -> bool {
        self.timestamp.is_none()
            && self.tokens_left.is_none()
            && self.refill_in.is_none()
            && self.refill_rate.is_none()
            && self.tokens_consumed.is_none()
    }

    /// The token state, if the envelope names the time, the balance, the
    /// next refill and the rate, each within [`PLAUSIBLE`] (anything else
    /// is garbage no Keepa server is in, and projecting it would overflow).
    /// `refillIn` is clamped into `0..=60_000`, a negative rate to 0.
    pub fn snapshot(&self) -> Option<TokenSnapshot> {
        let snapshot = TokenSnapshot {
            timestamp_ms: self.timestamp?,
            tokens_left: self.tokens_left?,
            refill_in_ms: self.refill_in?.clamp(0, 60_000),
            refill_rate: self.refill_rate?.max(0),
        };
        PLAUSIBLE.admits(&snapshot).then_some(snapshot)
    }

    /// Like [`Envelope::snapshot`], taking `received_at_ms` for a missing
    /// `timestamp` (the published fixtures lack one).
    pub fn snapshot_or_received_at(&self, received_at_ms: i64) -> Option<TokenSnapshot> {
        let mut with_time = *self;
        with_time.timestamp.get_or_insert(received_at_ms);
        with_time.snapshot()
    }

    /// Whether `self` is strictly newer than `other` by server time. An
    /// envelope without a timestamp is never newer.
    pub fn is_newer_than(&self, other: &Envelope) -> bool {
        match (self.timestamp, other.timestamp) {
            (Some(a), Some(b)) => a > b,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_are_tolerated() {
        let env: Envelope = serde_json::from_str(r#"{"tokensLeft":42,"refillIn":0}"#).unwrap();
        assert_eq!(env.tokens_left, Some(42));
        assert_eq!(env.timestamp, None);
        assert!(env.snapshot().is_none());
        let snap = Envelope {
            refill_rate: Some(5),
            ..env
        }
        .snapshot_or_received_at(1_000)
        .unwrap();
        assert_eq!(snap.timestamp_ms, 1_000);
    }

    #[test]
    fn negative_balance_and_fractional_flow_reduction_parse() {
        let env: Envelope = serde_json::from_str(
            r#"{"timestamp":5,"tokensLeft":-231,"refillIn":12000,"refillRate":25,"tokenFlowReduction":0.5,"tokensConsumed":386}"#,
        )
        .unwrap();
        assert_eq!(env.tokens_left, Some(-231));
        assert_eq!(env.token_flow_reduction, Some(0.5));
        assert_eq!(env.tokens_consumed, Some(386));
    }

    /// Regression: an envelope with `"tokensLeft": -9223372036854775808`
    /// (found by the no-panic proptest) became a snapshot whose bucket
    /// projection (`when_balance_reaches`) overflowed and panicked in debug
    /// builds; release builds wrapped into a nonsense wake-up time.
    #[test]
    fn extreme_envelope_overflowed_the_bucket_projection() {
        let env = |ts: i64, left: i64, rate: i64| Envelope {
            timestamp: Some(ts),
            tokens_left: Some(left),
            refill_in: Some(1_000),
            refill_rate: Some(rate),
            ..Default::default()
        };
        for bad in [
            env(1_750_000_000_000, i64::MIN, 20),
            env(1_750_000_000_000, i64::MAX, 20),
            env(i64::MAX, 5, 20),
            env(-1, 5, 20),
            env(1_750_000_000_000, 5, i64::MAX),
        ] {
            assert_eq!(bad.snapshot(), None, "{bad:?}");
            assert_eq!(bad.snapshot_or_received_at(1), None, "{bad:?}");
        }
        let worst = env(PLAUSIBLE.max_timestamp_ms, -PLAUSIBLE.max_abs_tokens, 1)
            .snapshot()
            .unwrap();
        let b = crate::tokens::TokenBucket::from_snapshot(&worst);
        assert!(b.when_balance_reaches(60).is_some());
        assert_eq!(env(5, 5, -3).snapshot().unwrap().refill_rate, 0);
    }

    #[test]
    fn newest_timestamp_wins() {
        let old = Envelope {
            timestamp: Some(10),
            ..Default::default()
        };
        let new = Envelope {
            timestamp: Some(11),
            ..Default::default()
        };
        assert!(new.is_newer_than(&old));
        assert!(!old.is_newer_than(&new));
        assert!(!old.is_newer_than(&old));
        assert!(!Envelope::default().is_newer_than(&old));
    }
}
