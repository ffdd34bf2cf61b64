//! Fault injection: what can go wrong, how often, parsed from a short spec
//! or a TOML file.
//!
//! Spec syntax (comma-separated `name=value`, every part optional):
//!
//! | part | meaning |
//! |---|---|
//! | `5xx=P` | with probability `P`, answer 500 (or, one time in four, 503) with the envelope and an error object; **not charged** (the request never ran) |
//! | `latency=A..B` or `latency=A` | every response is delayed by a uniform real-time duration in `A..=B` (`ms`, `s`, `m`) |
//! | `hang=P` | with probability `P`, the request **is executed and charged**, then the server holds the connection for `hang_for` real time (default 150 s) without answering |
//! | `hang_for=D` | how long a hang lasts |
//! | `reset=P` | with probability `P`, the connection is dropped (TCP RST) before the request runs; not charged |
//! | `garbage=P` | with probability `P`, the request runs and is charged, and the body is malformed (half of the time gzip cut short, otherwise gzip of broken JSON) |
//! | `foreign=N/min` | a foreign consumer spends `N` tokens per Keepa minute on average from **every** key's bucket (`/h` and `/s` also accepted), in requests of `1..=foreign_max` tokens, obeying the admission rule; unseen except through `tokensLeft` and `/_fake/stats` |
//! | `foreign_max=N` | largest foreign request (default 50) |
//! | `inbody=P` | with probability `P`, a `/product` or `/deal` request is answered HTTP 200 with the envelope and an `error` object (type `requestFailed`) and no payload, the shape Keepa was measured to send; **not charged** (`tokensConsumed` 0) |
//! | `inbody_limit=P` | the same with an error of type `tokenLimit` at a positive balance (a limit, not the bucket); not charged |
//! | `nopayload=P` | with probability `P`, a `/product` or `/deal` request runs and is charged, and the answer lacks its payload (`products`/`deals` absent half of the time, `null` otherwise) |
//! | `bad_deal=P` | with probability `P`, one deal of a `/deal` page is malformed (its `asin` is `null`); the page keeps its length |
//! | `offers_failed=P` | each product of a `/product` answer with `offers` says, with probability `P`, that its offers collection failed (`offersSuccessful: false`, no `offers`); charged as served |
//! | `no_consumed=P` | with probability `P`, a 200 answer lacks `tokensConsumed` (it is charged as usual) |
//! | `missing_asin=P` | each ASIN of a `/product` request is, with probability `P`, left out of the answer (and not charged), as Keepa leaves out products it does not have |
//! | `skew=D` | the envelope's `timestamp` is the server's clock plus `D` (`-30s`, `2s`; server time), from `skew_from` on: a server clock skewed from the client's (refill steps stay where the clock puts them) |
//! | `skew_from=D` | server time after the start from which `skew` applies (default 0: from the first answer); later, it is a step of the server's clock that a client anchored on an earlier answer meets as skew |
//! | `slow_token=D` | every `/token` answer is delayed by `D` of real time (written at once, delivered late) |
//! | `zero_refill=P` | with probability `P`, an answer's envelope says `refillRate` 0 (the bucket is not changed) |
//! | `zero_refill_at=N` | the `N`-th answer of the server (from 1, any endpoint) says `refillRate` 0 |
//! | `bad_key=true` | every key is answered as Keepa answers a key it refuses: HTTP 200, every token field 0 (`refillRate` included), nothing run or charged; a data endpoint also gets an `error` object |
//!
//! The same keys work in TOML (`latency = "20ms..2s"`, `5xx = 0.05`,
//! `foreign = "8/min"`). Probabilities are drawn from a generator seeded by
//! the server seed, in the order requests arrive: a sequential client sees
//! the same faults on every run. The bad-answer faults (`inbody` to
//! `missing_asin`) draw from a generator of their own, so adding them leaves
//! the others' sequence unchanged.
//!
//! ```
//! use fake_keepa::faults::FaultSpec;
//! let spec: FaultSpec = "5xx=0.05,latency=20ms..2s,hang=0.01,reset=0.01,garbage=0.01,foreign=8/min"
//!     .parse()
//!     .unwrap();
//! assert_eq!(spec.server_error, 0.05);
//! assert_eq!(spec.foreign_per_minute, 8.0);
//! ```

use std::str::FromStr;
use std::time::Duration;

/// A fault spec that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultSpecError {
    /// A part that is not `name=value`.
    #[error("fault spec part {0:?} is not name=value")]
    NotAPair(String),
    /// An unknown fault name.
    #[error("unknown fault {0:?} (known: 5xx, latency, hang, hang_for, reset, garbage, foreign, foreign_max, inbody, inbody_limit, nopayload, bad_deal, offers_failed, no_consumed, missing_asin, skew, skew_from, slow_token, zero_refill, zero_refill_at, bad_key)")]
    UnknownFault(String),
    /// A value that does not parse or is out of range.
    #[error("bad value {value:?} for fault {name}: {why}")]
    BadValue {
        /// The fault name.
        name: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The TOML document does not parse.
    #[error("fault file is not valid TOML: {0}")]
    Toml(String),
}

/// Which faults to inject and how often. `Default` injects none.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    /// Probability of a 5xx answer (not charged).
    pub server_error: f64,
    /// Real-time latency added to every answer, uniform in the range.
    pub latency: Option<(Duration, Duration)>,
    /// Probability that a request is charged and then never answered.
    pub hang: f64,
    /// How long a hanging request holds the connection (real time).
    pub hang_for: Duration,
    /// Probability that the connection is reset before the request runs.
    pub reset: f64,
    /// Probability of a malformed body (the request ran and was charged).
    pub garbage: f64,
    /// Mean foreign spend per Keepa minute on each key; 0 = none.
    pub foreign_per_minute: f64,
    /// Largest single foreign request.
    pub foreign_max_cost: i64,
    /// Probability of a 200 with an error object and no payload (not charged).
    pub in_body: f64,
    /// Probability of the same with a token-limit error.
    pub in_body_limit: f64,
    /// Probability of a 200 without its payload (charged).
    pub no_payload: f64,
    /// Probability of one malformed deal (no ASIN) in a feed page.
    pub bad_deal: f64,
    /// Probability, per product asked with offers, of a failed offers collection.
    pub offers_failed: f64,
    /// Probability of a 200 without `tokensConsumed`.
    pub no_consumed: f64,
    /// Probability, per ASIN asked, that the answer leaves it out.
    pub missing_asin: f64,
    /// Added to the envelope's `timestamp` (server ms), from `skew_from_ms` on.
    pub skew_ms: i64,
    /// Server ms after the start from which `skew_ms` applies.
    pub skew_from_ms: i64,
    /// Real-time delay of every `/token` answer.
    pub slow_token: Option<Duration>,
    /// Probability that an answer's envelope says `refillRate` 0.
    pub zero_refill: f64,
    /// The answer (counted from 1) whose envelope says `refillRate` 0.
    pub zero_refill_at: Option<u64>,
    /// Every key answered as a refused key: HTTP 200, every token field 0.
    pub bad_key: bool,
}

impl Default for FaultSpec {
    fn default() -> Self {
        FaultSpec {
            server_error: 0.0,
            latency: None,
            hang: 0.0,
            hang_for: Duration::from_secs(150),
            reset: 0.0,
            garbage: 0.0,
            foreign_per_minute: 0.0,
            foreign_max_cost: 50,
            in_body: 0.0,
            in_body_limit: 0.0,
            no_payload: 0.0,
            bad_deal: 0.0,
            offers_failed: 0.0,
            no_consumed: 0.0,
            missing_asin: 0.0,
            skew_ms: 0,
            skew_from_ms: 0,
            slow_token: None,
            zero_refill: 0.0,
            zero_refill_at: None,
            bad_key: false,
        }
    }
}

impl FaultSpec {
    /// No faults at all.
    pub fn none() -> Self {
        FaultSpec::default()
    }

    /// Whether any fault is configured.
    pub fn is_empty(&self) -> bool {
        *self == FaultSpec::default()
    }

    /// Parses the TOML form (same keys as the inline spec).
    pub fn from_toml_str(text: &str) -> Result<Self, FaultSpecError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| FaultSpecError::Toml(e.message().to_string()))?;
        let mut spec = FaultSpec::default();
        for (name, value) in &table {
            let value = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(FaultSpecError::BadValue {
                        name: name.clone(),
                        value: other.to_string(),
                        why: "expected a string, a number or a boolean",
                    })
                }
            };
            spec.set(name, &value)?;
        }
        Ok(spec)
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), FaultSpecError> {
        let bad = |why| FaultSpecError::BadValue {
            name: name.to_string(),
            value: value.to_string(),
            why,
        };
        let prob = || -> Result<f64, FaultSpecError> {
            let p: f64 = value
                .trim()
                .parse()
                .map_err(|_| bad("expected a probability"))?;
            if (0.0..=1.0).contains(&p) {
                Ok(p)
            } else {
                Err(bad("a probability is between 0 and 1"))
            }
        };
        match name.trim() {
            "5xx" => self.server_error = prob()?,
            "hang" => self.hang = prob()?,
            "reset" => self.reset = prob()?,
            "garbage" => self.garbage = prob()?,
            "inbody" => self.in_body = prob()?,
            "inbody_limit" => self.in_body_limit = prob()?,
            "nopayload" => self.no_payload = prob()?,
            "bad_deal" => self.bad_deal = prob()?,
            "offers_failed" => self.offers_failed = prob()?,
            "no_consumed" => self.no_consumed = prob()?,
            "missing_asin" => self.missing_asin = prob()?,
            "hang_for" => {
                self.hang_for =
                    parse_duration(value).ok_or_else(|| bad("expected a duration like 150s"))?
            }
            "latency" => {
                let (a, b) = match value.split_once("..") {
                    Some((a, b)) => (a, b),
                    None => (value, value),
                };
                let a = parse_duration(a).ok_or_else(|| bad("expected a duration like 20ms"))?;
                let b = parse_duration(b).ok_or_else(|| bad("expected a duration like 2s"))?;
                if a > b {
                    return Err(bad("the range must be low..high"));
                }
                self.latency = Some((a, b));
            }
            "foreign" => {
                let (n, unit) = value.split_once('/').unwrap_or((value, "min"));
                let n: f64 = n.trim().parse().map_err(|_| bad("expected N/min"))?;
                let per_minute = match unit.trim() {
                    "s" | "sec" => n * 60.0,
                    "m" | "min" => n,
                    "h" | "hour" => n / 60.0,
                    _ => return Err(bad("the unit is /s, /min or /h")),
                };
                if !per_minute.is_finite() || per_minute < 0.0 {
                    return Err(bad("the rate must be a non-negative number"));
                }
                self.foreign_per_minute = per_minute;
            }
            "foreign_max" => {
                let n: i64 = value
                    .trim()
                    .parse()
                    .map_err(|_| bad("expected a token count"))?;
                if n < 1 {
                    return Err(bad("at least 1"));
                }
                self.foreign_max_cost = n;
            }
            "skew" => {
                let (sign, magnitude) = match value.trim().strip_prefix('-') {
                    Some(rest) => (-1, rest),
                    None => (1, value.trim().trim_start_matches('+')),
                };
                let d = parse_duration(magnitude)
                    .ok_or_else(|| bad("expected a signed duration like -30s"))?;
                self.skew_ms = sign * d.as_millis() as i64;
            }
            "skew_from" => {
                let d = parse_duration(value).ok_or_else(|| bad("expected a duration like 2m"))?;
                self.skew_from_ms = d.as_millis() as i64;
            }
            "slow_token" => {
                self.slow_token =
                    Some(parse_duration(value).ok_or_else(|| bad("expected a duration like 2s"))?)
            }
            "zero_refill" => self.zero_refill = prob()?,
            "zero_refill_at" => {
                let n: u64 = value
                    .trim()
                    .parse()
                    .map_err(|_| bad("expected an answer number"))?;
                if n < 1 {
                    return Err(bad("answers count from 1"));
                }
                self.zero_refill_at = Some(n);
            }
            "bad_key" => {
                self.bad_key = match value.trim() {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    _ => return Err(bad("expected true or false")),
                }
            }
            other => return Err(FaultSpecError::UnknownFault(other.to_string())),
        }
        Ok(())
    }
}

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    /// Parses the inline form, e.g. `"5xx=0.05,latency=20ms..2s,foreign=8/min"`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut spec = FaultSpec::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| FaultSpecError::NotAPair(part.to_string()))?;
            spec.set(name, value)?;
        }
        Ok(spec)
    }
}

/// Parses `20ms`, `2s`, `1.5s`, `3m`; a bare number is milliseconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (num, mult_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    let ms = v * mult_ms;
    if !ms.is_finite() || !(0.0..=86_400_000.0).contains(&ms) {
        return None;
    }
    Some(Duration::from_micros((ms * 1000.0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_toml_agree() {
        let a: FaultSpec =
            "5xx=0.05,latency=20ms..2s,hang=0.01,reset=0.01,garbage=0.01,foreign=8/min"
                .parse()
                .unwrap();
        let b = FaultSpec::from_toml_str(
            "5xx = 0.05\nlatency = \"20ms..2s\"\nhang = 0.01\nreset = 0.01\ngarbage = 0.01\nforeign = \"8/min\"\n",
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.latency,
            Some((Duration::from_millis(20), Duration::from_secs(2)))
        );
    }

    #[test]
    fn bad_answer_faults_parse_in_both_forms() {
        let a: FaultSpec = "inbody=0.2,inbody_limit=0.5,nopayload=0.1,bad_deal=0.3,offers_failed=0.05,no_consumed=1,missing_asin=0.01"
            .parse()
            .unwrap();
        let b = FaultSpec::from_toml_str(
            "inbody = 0.2\ninbody_limit = 0.5\nnopayload = 0.1\nbad_deal = 0.3\noffers_failed = 0.05\nno_consumed = 1\nmissing_asin = 0.01\n",
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(
            (
                a.in_body,
                a.no_payload,
                a.bad_deal,
                a.offers_failed,
                a.no_consumed,
                a.missing_asin
            ),
            (0.2, 0.1, 0.3, 0.05, 1.0, 0.01)
        );
        assert_eq!(a.in_body_limit, 0.5);
        assert!("inbody=1.5".parse::<FaultSpec>().is_err());
    }

    #[test]
    fn bad_specs_are_typed_errors() {
        assert!(matches!(
            "5xx".parse::<FaultSpec>(),
            Err(FaultSpecError::NotAPair(_))
        ));
        assert!(matches!(
            "boom=1".parse::<FaultSpec>(),
            Err(FaultSpecError::UnknownFault(_))
        ));
        assert!("5xx=2".parse::<FaultSpec>().is_err());
        assert!("latency=2s..1s".parse::<FaultSpec>().is_err());
        assert!("foreign=8/week".parse::<FaultSpec>().is_err());
        assert!("".parse::<FaultSpec>().unwrap().is_empty());
        for bad in [
            "skew=-x",
            "zero_refill=1.5",
            "zero_refill_at=0",
            "bad_key=maybe",
            "slow_token=-1s",
        ] {
            assert!(bad.parse::<FaultSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn envelope_faults_parse_in_both_forms() {
        let a: FaultSpec =
            "skew=-30s,skew_from=2m,slow_token=2s,zero_refill=0.1,zero_refill_at=3,bad_key=true"
                .parse()
                .unwrap();
        assert_eq!(a.skew_ms, -30_000);
        assert_eq!(a.skew_from_ms, 120_000);
        assert_eq!(a.slow_token, Some(Duration::from_secs(2)));
        assert_eq!(a.zero_refill_at, Some(3));
        assert!(a.bad_key);
        let b = FaultSpec::from_toml_str(
            "skew = \"-30s\"\nskew_from = \"2m\"\nslow_token = \"2s\"\nzero_refill = 0.1\nzero_refill_at = 3\nbad_key = true\n",
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!("skew=+2s".parse::<FaultSpec>().unwrap().skew_ms, 2_000);
    }
}
