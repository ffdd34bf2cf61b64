//! `max_age`: how old Keepa's data may be when a product stage or the
//! re-check reads it, which sets Keepa's `update` parameter.
//!
//! Keepa collects a product (and, with `offers`, its offers) only when its
//! data is older than `update` hours; offers it does not collect cost a
//! flat 5 tokens per product instead of 6 per page of 10
//! (`docs/KEEPA_API.md` §7). Absent, nothing is sent and Keepa's default
//! applies (1 hour): today's behaviour.

use toml::de::DeValue;

use super::error::ConfigError;
use super::parse::Table;

/// How old Keepa's data may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxAge {
    /// `"0"` or `"live"`: always collect (`update=0`; +1 token a product
    /// when Keepa's data is under an hour old).
    Live,
    /// Whole hours, at least 1 (`update=N`): data and offers younger than
    /// this are not collected again.
    Hours(u32),
    /// `"any"`: never collect (`update=-1`): Keepa's data as it is, offers
    /// at a flat 5; an ASIN Keepa does not have returns nothing.
    Any,
}

impl MaxAge {
    /// The `update` parameter it sends.
    pub fn update(self) -> i64 {
        match self {
            MaxAge::Live => 0,
            MaxAge::Hours(h) => i64::from(h),
            MaxAge::Any => -1,
        }
    }
}

/// The longest `max_age` in hours (a year): Keepa's `update` is a count of
/// hours and nothing is gained beyond.
const MAX_HOURS: u64 = 366 * 24;

const HINT: &str = "write whole hours like \"1h\", \"24h\" or \"2d\", \"live\" (always collect) \
                    or \"any\" (never collect)";

/// Reads `max_age` of `t`, if present.
pub(crate) fn read(t: &Table<'_, '_>) -> Result<Option<MaxAge>, ConfigError> {
    let key = "max_age";
    let Some(v) = t.get(key) else {
        return Ok(None);
    };
    let DeValue::String(s) = v.get_ref() else {
        return Err(t.wrong_type(key, v, &format!("a string: {HINT}")));
    };
    let text = s.trim();
    match text {
        "0" | "live" => return Ok(Some(MaxAge::Live)),
        "any" => return Ok(Some(MaxAge::Any)),
        _ => {}
    }
    let d = humantime::parse_duration(text)
        .map_err(|e| t.bad_value(key, v, format!("{s:?} is not a duration ({e}); {HINT}")))?;
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs % 3600 != 0 {
        return Err(t.bad_value(
            key,
            v,
            format!("{s:?}: Keepa counts `update` in whole hours; {HINT}"),
        ));
    }
    match secs / 3600 {
        0 => Ok(Some(MaxAge::Live)),
        h if h > MAX_HOURS => Err(t.bad_value(
            key,
            v,
            format!("{s:?} is more than a year; use \"any\" to never collect"),
        )),
        h => Ok(Some(MaxAge::Hours(h as u32))),
    }
}
