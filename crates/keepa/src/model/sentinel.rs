//! Keepa's integer sentinels (`-1` no data, `-2` unknown) as explicit values.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One Keepa integer (price, rank, count, rating…) with its sentinels made
/// explicit, so that no caller ever compares against a magic `-1`.
///
/// Raw mapping: `-1` → [`KeepaValue::NoData`], `-2` → [`KeepaValue::Unknown`],
/// any other integer → [`KeepaValue::Known`]. Other negative values stay
/// `Known`: some Keepa series use them with a meaning (coupon history, deltas).
/// A JSON `null` deserializes as `Unknown`; serialization writes the raw
/// integer back (`Unknown` → `-2`), so a round trip is exact except for `null`.
///
/// ```
/// use keepa::KeepaValue;
/// let v: Vec<KeepaValue> = serde_json::from_str("[1499, -1, -2, null]").unwrap();
/// assert_eq!(v[0].known(), Some(1499));
/// assert_eq!(v[1], KeepaValue::NoData);
/// assert_eq!(v[2], KeepaValue::Unknown);
/// assert_eq!(v[3], KeepaValue::Unknown);
/// assert_eq!(serde_json::to_string(&v).unwrap(), "[1499,-1,-2,-2]");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeepaValue {
    /// A real value (price in the smallest currency unit, rank, count…).
    Known(i64),
    /// Keepa's `-1`: no offer, out of stock, or no data for this point.
    NoData,
    /// Keepa's `-2` (or a missing value): Keepa does not know.
    #[default]
    Unknown,
}

impl KeepaValue {
    /// Maps a raw Keepa integer (`-1`, `-2` are the sentinels).
    pub const fn from_raw(raw: i64) -> Self {
        match raw {
            -1 => KeepaValue::NoData,
            -2 => KeepaValue::Unknown,
            v => KeepaValue::Known(v),
        }
    }

    /// The raw Keepa integer (`NoData` → `-1`, `Unknown` → `-2`).
    pub const fn raw(self) -> i64 {
        match self {
            KeepaValue::Known(v) => v,
            KeepaValue::NoData => -1,
            KeepaValue::Unknown => -2,
        }
    }

    /// The value if known.
    pub const fn known(self) -> Option<i64> {
        match self {
            KeepaValue::Known(v) => Some(v),
            _ => None,
        }
    }

    /// Whether this is a real value.
    pub const fn is_known(self) -> bool {
        matches!(self, KeepaValue::Known(_))
    }

    /// Applies `f` to a known value; sentinels pass through unchanged.
    pub fn map(self, f: impl FnOnce(i64) -> i64) -> Self {
        match self {
            KeepaValue::Known(v) => KeepaValue::Known(f(v)),
            other => other,
        }
    }
}

impl From<i64> for KeepaValue {
    fn from(raw: i64) -> Self {
        KeepaValue::from_raw(raw)
    }
}

impl From<KeepaValue> for i64 {
    fn from(v: KeepaValue) -> i64 {
        v.raw()
    }
}

impl std::fmt::Display for KeepaValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeepaValue::Known(v) => write!(f, "{v}"),
            KeepaValue::NoData => f.write_str("no data"),
            KeepaValue::Unknown => f.write_str("unknown"),
        }
    }
}

impl Serialize for KeepaValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.raw())
    }
}

impl<'de> Deserialize<'de> for KeepaValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<Lenient>::deserialize(d)?
            .map_or(KeepaValue::Unknown, |l| KeepaValue::from_raw(l.0)))
    }
}

/// An integer that also accepts a float with no fractional part (some Keepa
/// fields switch between `3` and `3.0`); a fractional value is truncated.
struct Lenient(i64);

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Lenient;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Lenient, E> {
                Ok(Lenient(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Lenient, E> {
                i64::try_from(v)
                    .map(Lenient)
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Lenient, E> {
                if v.is_finite() && v.abs() < 9.0e18 {
                    Ok(Lenient(v as i64))
                } else {
                    Err(E::custom("number out of range"))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Serde helper: a `null` (or absent, with `#[serde(default)]`) field becomes
/// `T::default()`.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Default for a [`KeepaValue`] field Keepa may omit.
pub(crate) fn unknown() -> KeepaValue {
    KeepaValue::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinels_and_round_trip() {
        for raw in [-3, -2, -1, 0, 1, 1499, i64::MAX] {
            assert_eq!(KeepaValue::from_raw(raw).raw(), raw);
            let v: KeepaValue = serde_json::from_str(&raw.to_string()).unwrap();
            assert_eq!(serde_json::to_string(&v).unwrap(), raw.to_string());
        }
        assert_eq!(KeepaValue::from_raw(-1).known(), None);
        assert_eq!(KeepaValue::from_raw(-3).known(), Some(-3));
        assert_eq!(KeepaValue::NoData.map(|v| v * 2), KeepaValue::NoData);
        assert_eq!(KeepaValue::Known(2).map(|v| v * 2), KeepaValue::Known(4));
    }

    #[test]
    fn floats_and_garbage() {
        let v: KeepaValue = serde_json::from_str("3.0").unwrap();
        assert_eq!(v, KeepaValue::Known(3));
        assert!(serde_json::from_str::<KeepaValue>("\"x\"").is_err());
        assert!(serde_json::from_str::<KeepaValue>("1e300").is_err());
    }
}
