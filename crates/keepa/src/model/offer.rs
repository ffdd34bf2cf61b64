//! Marketplace offers (`offers` of a product requested with `offers=N`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::csv::{decode_named_pairs, CsvError, CsvType, ShippingPoint};
use super::sentinel::{null_default, KeepaValue};
use crate::time::KeepaMinutes;

/// An offer's condition (Keepa's integer code). Unknown codes are kept in
/// [`OfferCondition::Other`], so parsing never fails on a new code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OfferCondition {
    /// 0: Keepa could not determine the condition.
    #[default]
    Unknown,
    /// 1: new.
    New,
    /// 2: used – like new (open box is coded as used).
    UsedLikeNew,
    /// 3: used – very good.
    UsedVeryGood,
    /// 4: used – good.
    UsedGood,
    /// 5: used – acceptable.
    UsedAcceptable,
    /// 6: refurbished.
    Refurbished,
    /// 7: collectible – like new.
    CollectibleLikeNew,
    /// 8: collectible – very good.
    CollectibleVeryGood,
    /// 9: collectible – good.
    CollectibleGood,
    /// 10: collectible – acceptable.
    CollectibleAcceptable,
    /// Any other code.
    Other(i64),
}

impl OfferCondition {
    /// From Keepa's code.
    pub fn from_code(code: i64) -> Self {
        use OfferCondition::*;
        match code {
            0 => Unknown,
            1 => New,
            2 => UsedLikeNew,
            3 => UsedVeryGood,
            4 => UsedGood,
            5 => UsedAcceptable,
            6 => Refurbished,
            7 => CollectibleLikeNew,
            8 => CollectibleVeryGood,
            9 => CollectibleGood,
            10 => CollectibleAcceptable,
            other => Other(other),
        }
    }

    /// Keepa's code.
    pub fn code(self) -> i64 {
        use OfferCondition::*;
        match self {
            Unknown => 0,
            New => 1,
            UsedLikeNew => 2,
            UsedVeryGood => 3,
            UsedGood => 4,
            UsedAcceptable => 5,
            Refurbished => 6,
            CollectibleLikeNew => 7,
            CollectibleVeryGood => 8,
            CollectibleGood => 9,
            CollectibleAcceptable => 10,
            Other(c) => c,
        }
    }

    /// Whether this is new.
    pub fn is_new(self) -> bool {
        self == OfferCondition::New
    }

    /// Whether this is one of the four used grades (2–5).
    pub fn is_used(self) -> bool {
        (2..=5).contains(&self.code())
    }

    /// Whether this is one of the four collectible grades (7–10).
    pub fn is_collectible(self) -> bool {
        (7..=10).contains(&self.code())
    }

    /// The product csv type tracking the lowest price in this condition
    /// (with shipping), as Keepa's Java client maps it; `None` for new and
    /// unknown.
    pub fn csv_type(self) -> Option<CsvType> {
        use OfferCondition::*;
        Some(match self {
            UsedLikeNew => CsvType::UsedNewShipping,
            UsedVeryGood => CsvType::UsedVeryGoodShipping,
            UsedGood => CsvType::UsedGoodShipping,
            UsedAcceptable => CsvType::UsedAcceptableShipping,
            Refurbished => CsvType::RefurbishedShipping,
            CollectibleLikeNew => CsvType::CollectibleNewShipping,
            CollectibleVeryGood => CsvType::CollectibleVeryGoodShipping,
            CollectibleGood => CsvType::CollectibleGoodShipping,
            CollectibleAcceptable => CsvType::CollectibleAcceptableShipping,
            _ => return None,
        })
    }
}

impl Serialize for OfferCondition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.code())
    }
}

/// `null` reads as [`OfferCondition::Unknown`].
impl<'de> Deserialize<'de> for OfferCondition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<i64>::deserialize(d)?.map_or(OfferCondition::Unknown, Self::from_code))
    }
}

/// Which offers [`crate::model::Product::lowest_offer`] considers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionFilter {
    /// Every condition.
    Any,
    /// New only.
    New,
    /// Any used grade (2–5).
    Used,
    /// Any collectible grade (7–10).
    Collectible,
    /// Refurbished only.
    Refurbished,
    /// Exactly this condition.
    Exactly(OfferCondition),
}

impl ConditionFilter {
    /// Whether `c` passes.
    pub fn accepts(self, c: OfferCondition) -> bool {
        match self {
            ConditionFilter::Any => true,
            ConditionFilter::New => c.is_new(),
            ConditionFilter::Used => c.is_used(),
            ConditionFilter::Collectible => c.is_collectible(),
            ConditionFilter::Refurbished => c == OfferCondition::Refurbished,
            ConditionFilter::Exactly(x) => c == x,
        }
    }
}

/// One marketplace offer. Keepa keeps offers it no longer sees: only those
/// listed in the product's `liveOffersOrder` are live (see
/// [`crate::model::Product::live_offers`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    /// Keepa's id of the offer, stable within the product.
    #[serde(default)]
    pub offer_id: Option<i64>,
    /// When Keepa last saw the offer.
    #[serde(default)]
    pub last_seen: Option<KeepaMinutes>,
    /// The merchant's seller id.
    #[serde(default)]
    pub seller_id: Option<String>,
    /// Raw `[t, price, shipping, …]` history (see [`Offer::history`]).
    #[serde(default, rename = "offerCSV", deserialize_with = "null_default")]
    pub offer_csv: Vec<i64>,
    /// Condition.
    #[serde(default)]
    pub condition: OfferCondition,
    /// The seller's condition text.
    #[serde(default)]
    pub condition_comment: Option<String>,
    /// Prime-eligible.
    #[serde(default, deserialize_with = "null_default")]
    pub is_prime: bool,
    /// Fulfilled by Amazon.
    #[serde(default, rename = "isFBA", deserialize_with = "null_default")]
    pub is_fba: bool,
    /// Price hidden by a minimum-advertised-price rule.
    #[serde(default, rename = "isMAP", deserialize_with = "null_default")]
    pub is_map: bool,
    /// Currently shippable.
    #[serde(default, deserialize_with = "null_default")]
    pub is_shippable: bool,
    /// Add-on item.
    #[serde(default, deserialize_with = "null_default")]
    pub is_addon_item: bool,
    /// Pre-order.
    #[serde(default, deserialize_with = "null_default")]
    pub is_preorder: bool,
    /// Amazon Warehouse deal.
    #[serde(default, deserialize_with = "null_default")]
    pub is_warehouse_deal: bool,
    /// Keepa flags the merchant as a scammer.
    #[serde(default, deserialize_with = "null_default")]
    pub is_scam: bool,
    /// Sold by Amazon itself.
    #[serde(default, deserialize_with = "null_default")]
    pub is_amazon: bool,
    /// Prime-exclusive price.
    #[serde(default, deserialize_with = "null_default")]
    pub is_prime_excl: bool,
    /// Ships from China.
    #[serde(default, deserialize_with = "null_default")]
    pub ships_from_china: bool,
    /// Minimum order quantity.
    #[serde(default)]
    pub min_order_qty: Option<i64>,
    /// Raw `[t, stock, …]` (with `stock=1`).
    #[serde(default, rename = "stockCSV", deserialize_with = "null_default")]
    pub stock_csv: Vec<i64>,
    /// Raw `[t, price, …]` Prime-exclusive prices.
    #[serde(default, rename = "primeExclCSV", deserialize_with = "null_default")]
    pub prime_excl_csv: Vec<i64>,
}

impl Offer {
    /// The price/shipping history, oldest first. Shipping `0` is free;
    /// `NoData` is not shippable or unspecified; `Unknown` undetermined.
    pub fn history(&self) -> Result<Vec<ShippingPoint>, CsvError> {
        if !self.offer_csv.len().is_multiple_of(3) {
            return Err(CsvError::SeriesLength {
                what: "offerCSV",
                len: self.offer_csv.len(),
                stride: 3,
            });
        }
        Ok(self
            .offer_csv
            .chunks_exact(3)
            .map(|c| ShippingPoint {
                time: KeepaMinutes(c[0]),
                price: KeepaValue::from_raw(c[1]),
                shipping: KeepaValue::from_raw(c[2]),
            })
            .collect())
    }

    /// The newest price and shipping; `None` if the history is empty or
    /// malformed.
    pub fn current(&self) -> Option<ShippingPoint> {
        self.history().ok()?.last().copied()
    }

    /// The stock history (with `stock=1`).
    pub fn stock_history(&self) -> Result<Vec<(KeepaMinutes, KeepaValue)>, CsvError> {
        decode_named_pairs("stockCSV", &self.stock_csv)
    }

    /// The newest stock count, if sent and well-formed.
    pub fn stock(&self) -> Option<KeepaValue> {
        self.stock_history().ok()?.last().map(|p| p.1)
    }
}

/// The cheapest live offer found by [`crate::model::Product::lowest_offer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LowestOffer {
    /// Index of the offer in the product's `offers` array.
    pub offer_index: usize,
    /// Keepa's offer id.
    pub offer_id: Option<i64>,
    /// The merchant.
    pub seller_id: Option<String>,
    /// Condition.
    pub condition: OfferCondition,
    /// Current price (smallest currency unit).
    pub price: i64,
    /// Current shipping: `Known` (0 = free) or `Unknown` (counted as 0).
    pub shipping: KeepaValue,
    /// `price` plus known shipping.
    pub total: i64,
    /// Fulfilled by Amazon.
    pub is_fba: bool,
    /// Sold by Amazon.
    pub is_amazon: bool,
}
