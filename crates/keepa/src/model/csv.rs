//! The 36 csv history types and the decoding of Keepa's flat `csv` arrays.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::sentinel::KeepaValue;
use crate::time::KeepaMinutes;

macro_rules! csv_types {
    ($($variant:ident = $idx:literal, $name:literal, $doc:literal;)*) => {
        /// One of Keepa's 36 history ("csv", "price type") indexes. The
        /// discriminant is Keepa's index.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum CsvType {
            $(#[doc = $doc] $variant = $idx,)*
        }

        impl CsvType {
            /// All 36 types in index order.
            pub const ALL: [CsvType; 36] = [$(CsvType::$variant,)*];

            /// Keepa's name, e.g. `"BUY_BOX_SHIPPING"`.
            pub const fn keepa_name(self) -> &'static str {
                match self {
                    $(CsvType::$variant => $name,)*
                }
            }
        }
    };
}

csv_types! {
    Amazon = 0, "AMAZON", "Amazon's own price.";
    New = 1, "NEW", "Lowest marketplace new price (Amazon included).";
    Used = 2, "USED", "Lowest marketplace used price.";
    Sales = 3, "SALES", "Sales rank (lower is better).";
    ListPrice = 4, "LISTPRICE", "List price.";
    Collectible = 5, "COLLECTIBLE", "Lowest collectible price.";
    Refurbished = 6, "REFURBISHED", "Lowest refurbished price.";
    NewFbmShipping = 7, "NEW_FBM_SHIPPING", "Lowest new merchant-fulfilled price, with shipping.";
    LightningDeal = 8, "LIGHTNING_DEAL", "Lightning deal price.";
    Warehouse = 9, "WAREHOUSE", "Amazon Warehouse price.";
    NewFba = 10, "NEW_FBA", "Lowest new third-party FBA price.";
    CountNew = 11, "COUNT_NEW", "New offer count.";
    CountUsed = 12, "COUNT_USED", "Used offer count.";
    CountRefurbished = 13, "COUNT_REFURBISHED", "Refurbished offer count.";
    CountCollectible = 14, "COUNT_COLLECTIBLE", "Collectible offer count.";
    ExtraInfoUpdates = 15, "EXTRA_INFO_UPDATES", "Offer refreshes (number of offers fetched, negative if more existed).";
    Rating = 16, "RATING", "Rating, 0–50 (45 = 4.5 stars).";
    CountReviews = 17, "COUNT_REVIEWS", "Review count.";
    BuyBoxShipping = 18, "BUY_BOX_SHIPPING", "Buy box price, with shipping.";
    UsedNewShipping = 19, "USED_NEW_SHIPPING", "Used – like new, with shipping.";
    UsedVeryGoodShipping = 20, "USED_VERY_GOOD_SHIPPING", "Used – very good, with shipping.";
    UsedGoodShipping = 21, "USED_GOOD_SHIPPING", "Used – good, with shipping.";
    UsedAcceptableShipping = 22, "USED_ACCEPTABLE_SHIPPING", "Used – acceptable, with shipping.";
    CollectibleNewShipping = 23, "COLLECTIBLE_NEW_SHIPPING", "Collectible – like new, with shipping.";
    CollectibleVeryGoodShipping = 24, "COLLECTIBLE_VERY_GOOD_SHIPPING", "Collectible – very good, with shipping.";
    CollectibleGoodShipping = 25, "COLLECTIBLE_GOOD_SHIPPING", "Collectible – good, with shipping.";
    CollectibleAcceptableShipping = 26, "COLLECTIBLE_ACCEPTABLE_SHIPPING", "Collectible – acceptable, with shipping.";
    RefurbishedShipping = 27, "REFURBISHED_SHIPPING", "Refurbished, with shipping.";
    EbayNewShipping = 28, "EBAY_NEW_SHIPPING", "eBay new, with shipping.";
    EbayUsedShipping = 29, "EBAY_USED_SHIPPING", "eBay used, with shipping.";
    TradeIn = 30, "TRADE_IN", "Trade-in price.";
    Rent = 31, "RENT", "Rental price.";
    BuyBoxUsedShipping = 32, "BUY_BOX_USED_SHIPPING", "Used buy box price, with shipping.";
    PrimeExcl = 33, "PRIME_EXCL", "Prime exclusive price.";
    CountNewFba = 34, "COUNT_NEW_FBA", "New FBA offer count.";
    CountNewFbm = 35, "COUNT_NEW_FBM", "New merchant-fulfilled offer count.";
}

/// Number of csv types Keepa defines.
pub const CSV_TYPE_COUNT: usize = 36;

impl CsvType {
    /// Keepa's index, `0..36`.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The type at Keepa's index, `None` outside `0..36`.
    pub fn from_index(index: usize) -> Option<CsvType> {
        CsvType::ALL.get(index).copied()
    }

    /// Whether the history is `[t, price, shipping, …]` triples
    /// (7, 18–29, 32) rather than `[t, value, …]` pairs.
    pub const fn is_shipping(self) -> bool {
        matches!(self as u8, 7 | 18..=29 | 32)
    }

    /// Entries per point in the raw history: 3 for shipping types, else 2.
    pub const fn stride(self) -> usize {
        if self.is_shipping() {
            3
        } else {
            2
        }
    }
}

impl TryFrom<usize> for CsvType {
    type Error = UnknownCsvType;
    fn try_from(index: usize) -> Result<Self, UnknownCsvType> {
        CsvType::from_index(index).ok_or(UnknownCsvType(index as i64))
    }
}

impl TryFrom<i64> for CsvType {
    type Error = UnknownCsvType;
    fn try_from(index: i64) -> Result<Self, UnknownCsvType> {
        usize::try_from(index)
            .ok()
            .and_then(CsvType::from_index)
            .ok_or(UnknownCsvType(index))
    }
}

impl From<CsvType> for usize {
    fn from(t: CsvType) -> usize {
        t.index()
    }
}

impl std::fmt::Display for CsvType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.keepa_name())
    }
}

/// Serialized as Keepa's integer index.
impl Serialize for CsvType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(*self as u8)
    }
}

impl<'de> Deserialize<'de> for CsvType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let i = i64::deserialize(d)?;
        CsvType::try_from(i).map_err(serde::de::Error::custom)
    }
}

/// An index outside Keepa's 36 csv types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no csv type has index {0} (valid: 0..36)")]
pub struct UnknownCsvType(pub i64);

/// A raw csv series that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    /// The length is not a multiple of the type's stride (2, or 3 for
    /// shipping types).
    #[error("{ty} history has {len} entries, not a multiple of {stride}")]
    Length {
        /// The type decoded.
        ty: CsvType,
        /// Entries in the raw array.
        len: usize,
        /// Expected entries per point.
        stride: usize,
    },
    /// A series without a csv type (offer, sales-rank or seller history)
    /// has a length that is not a multiple of its stride.
    #[error("{what} has {len} entries, not a multiple of {stride}")]
    SeriesLength {
        /// Which series, e.g. `offerCSV`.
        what: &'static str,
        /// Entries in the raw array.
        len: usize,
        /// Expected entries per point.
        stride: usize,
    },
}

/// One point of a shipping history: price and shipping cost at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShippingPoint {
    /// When the value began.
    pub time: KeepaMinutes,
    /// Price; `NoData` when there was no offer.
    pub price: KeepaValue,
    /// Shipping cost; `0` is free shipping, `NoData` unspecified or not shippable.
    pub shipping: KeepaValue,
}

impl ShippingPoint {
    /// Price plus shipping (an unspecified shipping cost counts as 0),
    /// the way Keepa's Java `ProductAnalyzer` combines the two; the price's
    /// sentinel when the price is not known.
    pub fn landed(&self) -> KeepaValue {
        match self.price {
            KeepaValue::Known(p) => {
                KeepaValue::Known(p.saturating_add(self.shipping.known().unwrap_or(0).max(0)))
            }
            other => other,
        }
    }
}

/// A decoded csv history, oldest first, each value holding until the next
/// point (a step function).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum History {
    /// `[t, value, …]` pairs (every type except the shipping ones).
    Plain(Vec<(KeepaMinutes, KeepaValue)>),
    /// `[t, price, shipping, …]` triples (7, 18–29, 32).
    Shipping(Vec<ShippingPoint>),
}

impl History {
    /// Decodes a raw series of type `ty`. An empty array gives an empty
    /// history; a length that is not a multiple of the stride is an error.
    pub fn decode(ty: CsvType, raw: &[i64]) -> Result<History, CsvError> {
        let stride = ty.stride();
        if !raw.len().is_multiple_of(stride) {
            return Err(CsvError::Length {
                ty,
                len: raw.len(),
                stride,
            });
        }
        Ok(if ty.is_shipping() {
            History::Shipping(
                raw.chunks_exact(3)
                    .map(|c| ShippingPoint {
                        time: KeepaMinutes(c[0]),
                        price: KeepaValue::from_raw(c[1]),
                        shipping: KeepaValue::from_raw(c[2]),
                    })
                    .collect(),
            )
        } else {
            History::Plain(decode_pairs(raw))
        })
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        match self {
            History::Plain(v) => v.len(),
            History::Shipping(v) => v.len(),
        }
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(time, value)` points; for shipping types the value is
    /// [`ShippingPoint::landed`] (price plus shipping).
    pub fn points(&self) -> Vec<(KeepaMinutes, KeepaValue)> {
        match self {
            History::Plain(v) => v.clone(),
            History::Shipping(v) => v.iter().map(|p| (p.time, p.landed())).collect(),
        }
    }

    /// The newest point, as in [`History::points`].
    pub fn last(&self) -> Option<(KeepaMinutes, KeepaValue)> {
        match self {
            History::Plain(v) => v.last().copied(),
            History::Shipping(v) => v.last().map(|p| (p.time, p.landed())),
        }
    }

    /// The value in force at `t` (the last point at or before `t`), `None`
    /// before the first point. Assumes points are in time order, as Keepa
    /// sends them.
    pub fn value_at(&self, t: KeepaMinutes) -> Option<KeepaValue> {
        match self {
            History::Plain(v) => {
                let i = v.partition_point(|&(at, _)| at <= t);
                i.checked_sub(1).map(|i| v[i].1)
            }
            History::Shipping(v) => {
                let i = v.partition_point(|p| p.time <= t);
                i.checked_sub(1).map(|i| v[i].landed())
            }
        }
    }

    /// The pairs, if this is a plain history.
    pub fn as_plain(&self) -> Option<&[(KeepaMinutes, KeepaValue)]> {
        match self {
            History::Plain(v) => Some(v),
            History::Shipping(_) => None,
        }
    }

    /// The triples, if this is a shipping history.
    pub fn as_shipping(&self) -> Option<&[ShippingPoint]> {
        match self {
            History::Plain(_) => None,
            History::Shipping(v) => Some(v),
        }
    }
}

/// `[t, v, t, v, …]` as pairs; a trailing odd entry is ignored (callers
/// check the length first).
pub(crate) fn decode_pairs(raw: &[i64]) -> Vec<(KeepaMinutes, KeepaValue)> {
    raw.chunks_exact(2)
        .map(|c| (KeepaMinutes(c[0]), KeepaValue::from_raw(c[1])))
        .collect()
}

/// Decodes a `[t, v, …]` series that has no csv type.
pub(crate) fn decode_named_pairs(
    what: &'static str,
    raw: &[i64],
) -> Result<Vec<(KeepaMinutes, KeepaValue)>, CsvError> {
    if !raw.len().is_multiple_of(2) {
        return Err(CsvError::SeriesLength {
            what,
            len: raw.len(),
            stride: 2,
        });
    }
    Ok(decode_pairs(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_round_trip() {
        for (i, t) in CsvType::ALL.iter().enumerate() {
            assert_eq!(t.index(), i);
            assert_eq!(CsvType::from_index(i), Some(*t));
            assert_eq!(CsvType::try_from(i as i64), Ok(*t));
        }
        assert_eq!(CsvType::from_index(36), None);
        assert_eq!(CsvType::try_from(-1_i64), Err(UnknownCsvType(-1)));
        assert_eq!(CsvType::BuyBoxShipping.keepa_name(), "BUY_BOX_SHIPPING");
        assert_eq!(CsvType::CountNewFbm.index(), 35);
        let shipping: Vec<usize> = CsvType::ALL
            .iter()
            .filter(|t| t.is_shipping())
            .map(|t| t.index())
            .collect();
        assert_eq!(
            shipping,
            [7, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 32]
        );
    }

    #[test]
    fn decodes_pairs_and_triples() {
        let h = History::decode(CsvType::Used, &[10, 500, 20, -1, 30, -2]).unwrap();
        assert_eq!(
            h.as_plain().unwrap(),
            &[
                (KeepaMinutes(10), KeepaValue::Known(500)),
                (KeepaMinutes(20), KeepaValue::NoData),
                (KeepaMinutes(30), KeepaValue::Unknown),
            ]
        );
        assert_eq!(h.value_at(KeepaMinutes(9)), None);
        assert_eq!(h.value_at(KeepaMinutes(25)), Some(KeepaValue::NoData));
        let s = History::decode(CsvType::BuyBoxShipping, &[10, 500, 99, 20, -1, -1]).unwrap();
        let pts = s.as_shipping().unwrap();
        assert_eq!(pts[0].shipping, KeepaValue::Known(99));
        assert_eq!(pts[0].landed(), KeepaValue::Known(599));
        assert_eq!(pts[1].landed(), KeepaValue::NoData);
        assert_eq!(s.last(), Some((KeepaMinutes(20), KeepaValue::NoData)));
    }

    #[test]
    fn malformed_lengths_are_errors() {
        assert_eq!(
            History::decode(CsvType::Amazon, &[1, 2, 3]),
            Err(CsvError::Length {
                ty: CsvType::Amazon,
                len: 3,
                stride: 2
            })
        );
        assert!(History::decode(CsvType::NewFbmShipping, &[1, 2, 3, 4]).is_err());
        assert!(History::decode(CsvType::NewFbmShipping, &[])
            .unwrap()
            .is_empty());
        assert!(decode_named_pairs("x", &[1]).is_err());
    }
}
