//! The `stats` object of a product (present when the request had `stats=`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::csv::CsvType;
use super::sentinel::{null_default, unknown, KeepaValue};
use crate::time::KeepaMinutes;

/// Statistics over a product's histories. Arrays are indexed by
/// [`CsvType`]: use the accessors, which never panic — an absent array or
/// index reads as [`KeepaValue::Unknown`] (or `None` for extremes).
///
/// Keepa sends some fields as `null` and omits others depending on the
/// request (`offers`, `buybox`): every field tolerates both.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Current value per csv type.
    #[serde(default, deserialize_with = "null_default")]
    pub current: Vec<KeepaValue>,
    /// Weighted average over the requested `stats` interval.
    #[serde(default, deserialize_with = "null_default")]
    pub avg: Vec<KeepaValue>,
    /// Weighted average over 30 days.
    #[serde(default, deserialize_with = "null_default")]
    pub avg30: Vec<KeepaValue>,
    /// Weighted average over 90 days.
    #[serde(default, deserialize_with = "null_default")]
    pub avg90: Vec<KeepaValue>,
    /// Weighted average over 180 days.
    #[serde(default, deserialize_with = "null_default")]
    pub avg180: Vec<KeepaValue>,
    /// Weighted average over 365 days.
    #[serde(default, deserialize_with = "null_default")]
    pub avg365: Vec<KeepaValue>,
    /// Value at the start of the requested interval.
    #[serde(default, deserialize_with = "null_default")]
    pub at_interval_start: Vec<KeepaValue>,
    /// All-time minimum per type, raw `[t, v]` or `null`.
    #[serde(default, deserialize_with = "null_default")]
    pub min: Vec<Option<Vec<i64>>>,
    /// All-time maximum per type, raw `[t, v]` or `null`.
    #[serde(default, deserialize_with = "null_default")]
    pub max: Vec<Option<Vec<i64>>>,
    /// Minimum within the requested interval, raw `[t, v]` or `null`.
    #[serde(default, deserialize_with = "null_default")]
    pub min_in_interval: Vec<Option<Vec<i64>>>,
    /// Maximum within the requested interval, raw `[t, v]` or `null`.
    #[serde(default, deserialize_with = "null_default")]
    pub max_in_interval: Vec<Option<Vec<i64>>>,
    /// Whether the current value is the lowest ever, per type.
    #[serde(default, deserialize_with = "null_default")]
    pub is_lowest: Vec<Option<bool>>,
    /// Whether the current value is the lowest of the last 90 days, per type.
    #[serde(default, deserialize_with = "null_default")]
    pub is_lowest90: Vec<Option<bool>>,
    /// Out-of-stock share (percent) over 30 days, per type.
    #[serde(default, deserialize_with = "null_default")]
    pub out_of_stock_percentage30: Vec<KeepaValue>,
    /// Out-of-stock share (percent) over 90 days, per type.
    #[serde(default, deserialize_with = "null_default")]
    pub out_of_stock_percentage90: Vec<KeepaValue>,
    /// Out-of-stock share (percent) over the requested interval, per type.
    #[serde(default, deserialize_with = "null_default")]
    pub out_of_stock_percentage_in_interval: Vec<KeepaValue>,
    /// Sales-rank drops in the last 30 days.
    #[serde(default = "unknown")]
    pub sales_rank_drops30: KeepaValue,
    /// Sales-rank drops in the last 90 days.
    #[serde(default = "unknown")]
    pub sales_rank_drops90: KeepaValue,
    /// Sales-rank drops in the last 180 days.
    #[serde(default = "unknown")]
    pub sales_rank_drops180: KeepaValue,
    /// Sales-rank drops in the last 365 days.
    #[serde(default = "unknown")]
    pub sales_rank_drops365: KeepaValue,
    /// Total offer count (all conditions).
    #[serde(default = "unknown")]
    pub total_offer_count: KeepaValue,
    /// New FBA offers counted (`Unknown` without `offers`).
    #[serde(default = "unknown", rename = "offerCountFBA")]
    pub offer_count_fba: KeepaValue,
    /// New merchant-fulfilled offers counted (`Unknown` without `offers`).
    #[serde(default = "unknown", rename = "offerCountFBM")]
    pub offer_count_fbm: KeepaValue,
    /// Offers retrieved by this request (`Unknown` without `offers`).
    #[serde(default = "unknown")]
    pub retrieved_offer_count: KeepaValue,
    /// Buy box price (without shipping).
    #[serde(default = "unknown")]
    pub buy_box_price: KeepaValue,
    /// Buy box shipping cost.
    #[serde(default = "unknown")]
    pub buy_box_shipping: KeepaValue,
    /// Trade-in price.
    #[serde(default = "unknown")]
    pub trade_in_price: KeepaValue,
    /// Seller holding the buy box; `None` also for Keepa's `"-1"`/`"-2"`.
    #[serde(default, deserialize_with = "seller_id")]
    pub buy_box_seller_id: Option<String>,
    /// Whether the buy box is fulfilled by Amazon.
    #[serde(default, rename = "buyBoxIsFBA")]
    pub buy_box_is_fba: Option<bool>,
    /// Whether Amazon holds the buy box.
    #[serde(default)]
    pub buy_box_is_amazon: Option<bool>,
    /// Whether the buy box offer is used.
    #[serde(default)]
    pub buy_box_is_used: Option<bool>,
    /// Whether the buy box price is MAP-restricted.
    #[serde(default, rename = "buyBoxIsMAP")]
    pub buy_box_is_map: Option<bool>,
    /// Whether the buy box is Prime-eligible.
    #[serde(default)]
    pub buy_box_is_prime_eligible: Option<bool>,
    /// Offer condition code of the buy box (1 new, 2–5 used…).
    #[serde(default)]
    pub buy_box_condition: Option<i64>,
    /// Per-seller buy box statistics over the interval.
    #[serde(default)]
    pub buy_box_stats: Option<BTreeMap<String, BuyBoxSellerStats>>,
    /// When offers were last refreshed.
    #[serde(default)]
    pub last_offers_update: Option<KeepaMinutes>,
    /// When the buy box was last refreshed.
    #[serde(default)]
    pub last_buy_box_update: Option<KeepaMinutes>,
    /// Out-of-stock share (percent) over 180 days, per type.
    #[serde(default, deserialize_with = "null_default")]
    pub out_of_stock_percentage180: Vec<KeepaValue>,
    /// Out-of-stock share (percent) over 365 days, per type.
    #[serde(default, deserialize_with = "null_default")]
    pub out_of_stock_percentage365: Vec<KeepaValue>,
    /// Times Amazon went out of stock in the last 30 days.
    #[serde(default)]
    pub out_of_stock_count_amazon30: Option<i64>,
    /// Times Amazon went out of stock in the last 90 days.
    #[serde(default)]
    pub out_of_stock_count_amazon90: Option<i64>,
    /// `monthlySold` now against its 90-day average, in percent (`0`:
    /// unchanged or not computable).
    /// Not sentinel-coded: `-1` and `-2` are real percentages here.
    #[serde(default, rename = "deltaPercent90_monthlySold")]
    pub delta_percent90_monthly_sold: Option<i64>,
    /// Raw `[start, end]` of the last or next lightning deal (see
    /// [`Stats::lightning_deal`]).
    #[serde(default, deserialize_with = "null_default")]
    pub lightning_deal_info: Vec<i64>,
    /// Amazon's own stock (at most 10 reported; `Unknown` without `offers`
    /// or without an Amazon offer).
    #[serde(default = "unknown")]
    pub stock_amazon: KeepaValue,
    /// Stock of the buy box offer (at most 10 reported; `Unknown` without
    /// `offers` or when the buy box is empty).
    #[serde(default = "unknown")]
    pub stock_buy_box: KeepaValue,
    /// Stock of the retrieved third-party FBA offers, indexed by offer
    /// condition code (see [`crate::model::OfferCondition::code`]).
    #[serde(
        default,
        rename = "stockPerCondition3rdFBA",
        deserialize_with = "null_default"
    )]
    pub stock_per_condition_3rd_fba: Vec<KeepaValue>,
    /// Stock of the retrieved merchant-fulfilled offers, by condition code.
    #[serde(
        default,
        rename = "stockPerConditionFBM",
        deserialize_with = "null_default"
    )]
    pub stock_per_condition_fbm: Vec<KeepaValue>,
    /// Seller ids of the cheapest live FBA offer(s) (with `offers`).
    #[serde(default, rename = "sellerIdsLowestFBA")]
    pub seller_ids_lowest_fba: Option<Vec<String>>,
    /// Seller ids of the cheapest live merchant-fulfilled offer(s) (with `offers`).
    #[serde(default, rename = "sellerIdsLowestFBM")]
    pub seller_ids_lowest_fbm: Option<Vec<String>>,
    /// Whether no offer qualifies for the buy box.
    #[serde(default)]
    pub buy_box_is_unqualified: Option<bool>,
    /// Whether the buy box offer is shippable now.
    #[serde(default)]
    pub buy_box_is_shippable: Option<bool>,
    /// Whether the buy box offer is a pre-order.
    #[serde(default)]
    pub buy_box_is_preorder: Option<bool>,
    /// Whether the buy box offer is back-ordered.
    #[serde(default)]
    pub buy_box_is_backorder: Option<bool>,
    /// Whether the buy box offer is an Amazon Warehouse deal.
    #[serde(default)]
    pub buy_box_is_warehouse_deal: Option<bool>,
    /// Whether the buy box offer is Prime exclusive.
    #[serde(default)]
    pub buy_box_is_prime_exclusive: Option<bool>,
    /// Whether the buy box offer ships free.
    #[serde(default)]
    pub buy_box_is_free_shipping_eligible: Option<bool>,
    /// Amazon's availability message for the buy box, e.g. `IN_STOCK`.
    #[serde(default)]
    pub buy_box_availability_message: Option<String>,
    /// Default shipping country of the buy box seller, e.g. `US`.
    #[serde(default)]
    pub buy_box_shipping_country: Option<String>,
    /// Minimum order quantity of the buy box (`Known(0)`: no limit).
    #[serde(default = "unknown")]
    pub buy_box_min_order_quantity: KeepaValue,
    /// Maximum order quantity of the buy box (`Known(0)`: no limit).
    #[serde(default = "unknown")]
    pub buy_box_max_order_quantity: KeepaValue,
    /// Strike-through ("typical" or list) price shown against the buy box.
    #[serde(default)]
    pub buy_box_saving_basis: Option<i64>,
    /// What [`Stats::buy_box_saving_basis`] is, e.g. `LIST_PRICE`.
    #[serde(default)]
    pub buy_box_saving_basis_type: Option<String>,
    /// Saving against the basis, percent.
    #[serde(default)]
    pub buy_box_saving_percentage: Option<f64>,
    /// Used buy box price (with `offers`).
    #[serde(default = "unknown")]
    pub buy_box_used_price: KeepaValue,
    /// Used buy box shipping cost (with `offers`).
    #[serde(default = "unknown")]
    pub buy_box_used_shipping: KeepaValue,
    /// Seller of the used buy box; `None` also for `"-1"`/`"-2"`.
    #[serde(default, deserialize_with = "seller_id")]
    pub buy_box_used_seller_id: Option<String>,
    /// Whether the used buy box is fulfilled by Amazon.
    #[serde(default, rename = "buyBoxUsedIsFBA")]
    pub buy_box_used_is_fba: Option<bool>,
    /// Offer condition code of the used buy box (2–5).
    #[serde(default)]
    pub buy_box_used_condition: Option<i64>,
    /// Per-seller used buy box statistics over the interval.
    #[serde(default)]
    pub buy_box_used_stats: Option<BTreeMap<String, BuyBoxSellerStats>>,
    /// Whether the product is an add-on item (with `offers`).
    #[serde(default)]
    pub is_addon_item: Option<bool>,
}

/// One seller's share of the buy box (`stats.buyBoxStats[sellerId]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuyBoxSellerStats {
    /// Share of the interval the seller held the buy box, `0.0..=1.0`.
    #[serde(default)]
    pub percentage_won: Option<f64>,
    /// Average price while holding it.
    #[serde(default = "unknown")]
    pub avg_price: KeepaValue,
    /// Average new offer count meanwhile.
    #[serde(default = "unknown")]
    pub avg_new_offer_count: KeepaValue,
    /// Average used offer count meanwhile.
    #[serde(default = "unknown")]
    pub avg_used_offer_count: KeepaValue,
    /// Whether the seller's offer was FBA.
    #[serde(default, rename = "isFBA")]
    pub is_fba: Option<bool>,
    /// When the seller last held it.
    #[serde(default)]
    pub last_seen: Option<KeepaMinutes>,
}

/// A seller id where Keepa writes `"-1"` (none) or `"-2"` (unknown) as
/// sentinels: both, like `null` and `""`, read as `None`.
fn seller_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !matches!(s.as_str(), "" | "-1" | "-2")))
}

fn at(v: &[KeepaValue], ty: CsvType) -> KeepaValue {
    v.get(ty.index()).copied().unwrap_or(KeepaValue::Unknown)
}

/// `[t, v]` → point; `None` for null, a wrong shape, or Keepa's `[-1, -1]`
/// placeholder (seen in real `maxInInterval`).
fn extreme(v: &[Option<Vec<i64>>], ty: CsvType) -> Option<(KeepaMinutes, KeepaValue)> {
    match v.get(ty.index())?.as_deref()? {
        [t, val] if *t >= 0 => Some((KeepaMinutes(*t), KeepaValue::from_raw(*val))),
        _ => None,
    }
}

impl Stats {
    /// Current value of `ty`.
    pub fn current(&self, ty: CsvType) -> KeepaValue {
        at(&self.current, ty)
    }
    /// Average of `ty` over the requested `stats` interval.
    pub fn avg(&self, ty: CsvType) -> KeepaValue {
        at(&self.avg, ty)
    }
    /// 30-day average of `ty`.
    pub fn avg30(&self, ty: CsvType) -> KeepaValue {
        at(&self.avg30, ty)
    }
    /// 90-day average of `ty`.
    pub fn avg90(&self, ty: CsvType) -> KeepaValue {
        at(&self.avg90, ty)
    }
    /// 180-day average of `ty`.
    pub fn avg180(&self, ty: CsvType) -> KeepaValue {
        at(&self.avg180, ty)
    }
    /// 365-day average of `ty`.
    pub fn avg365(&self, ty: CsvType) -> KeepaValue {
        at(&self.avg365, ty)
    }
    /// Value of `ty` at the start of the requested interval.
    pub fn at_interval_start(&self, ty: CsvType) -> KeepaValue {
        at(&self.at_interval_start, ty)
    }
    /// All-time minimum of `ty` and when it occurred.
    pub fn min(&self, ty: CsvType) -> Option<(KeepaMinutes, KeepaValue)> {
        extreme(&self.min, ty)
    }
    /// All-time maximum of `ty` and when it occurred.
    pub fn max(&self, ty: CsvType) -> Option<(KeepaMinutes, KeepaValue)> {
        extreme(&self.max, ty)
    }
    /// Minimum of `ty` within the requested interval.
    pub fn min_in_interval(&self, ty: CsvType) -> Option<(KeepaMinutes, KeepaValue)> {
        extreme(&self.min_in_interval, ty)
    }
    /// Maximum of `ty` within the requested interval.
    pub fn max_in_interval(&self, ty: CsvType) -> Option<(KeepaMinutes, KeepaValue)> {
        extreme(&self.max_in_interval, ty)
    }
    /// Whether the current value of `ty` is its lowest ever (`None` if not sent).
    pub fn is_lowest(&self, ty: CsvType) -> Option<bool> {
        self.is_lowest.get(ty.index()).copied().flatten()
    }
    /// Whether the current value of `ty` is its 90-day lowest (`None` if not sent).
    pub fn is_lowest90(&self, ty: CsvType) -> Option<bool> {
        self.is_lowest90.get(ty.index()).copied().flatten()
    }
    /// 30-day out-of-stock percentage of `ty`.
    pub fn out_of_stock_percentage30(&self, ty: CsvType) -> KeepaValue {
        at(&self.out_of_stock_percentage30, ty)
    }
    /// 90-day out-of-stock percentage of `ty`.
    pub fn out_of_stock_percentage90(&self, ty: CsvType) -> KeepaValue {
        at(&self.out_of_stock_percentage90, ty)
    }
    /// 180-day out-of-stock percentage of `ty`.
    pub fn out_of_stock_percentage180(&self, ty: CsvType) -> KeepaValue {
        at(&self.out_of_stock_percentage180, ty)
    }
    /// 365-day out-of-stock percentage of `ty`.
    pub fn out_of_stock_percentage365(&self, ty: CsvType) -> KeepaValue {
        at(&self.out_of_stock_percentage365, ty)
    }
    /// Out-of-stock percentage of `ty` over the requested interval.
    pub fn out_of_stock_percentage_in_interval(&self, ty: CsvType) -> KeepaValue {
        at(&self.out_of_stock_percentage_in_interval, ty)
    }

    /// The last, current or next lightning deal as `(start, end)`; `end` is
    /// `None` for an announced deal whose end Keepa does not know yet.
    /// `None` when the product never had one or the field is malformed.
    pub fn lightning_deal(&self) -> Option<(KeepaMinutes, Option<KeepaMinutes>)> {
        match self.lightning_deal_info.as_slice() {
            [start, end] if *start > 0 => Some((
                KeepaMinutes(*start),
                (*end > 0).then_some(KeepaMinutes(*end)),
            )),
            _ => None,
        }
    }

    /// Buy box price plus shipping, when both are known (an unknown
    /// shipping cost makes the total unknown rather than guessed).
    pub fn buy_box_landed(&self) -> KeepaValue {
        match (self.buy_box_price, self.buy_box_shipping) {
            (KeepaValue::Known(p), KeepaValue::Known(s)) => KeepaValue::Known(p.saturating_add(s)),
            (KeepaValue::Known(_), other) => other,
            (other, _) => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerant_of_nulls_and_short_arrays() {
        let s: Stats = serde_json::from_str(
            r#"{"current":[-1,1499,-2],"avg30":null,"min":[null,[5,1000],[-1,-1],[1]],
                "buyBoxPrice":null,"offerCountFBA":-2,"salesRankDrops30":35,"buyBoxIsFBA":null,
                "somethingNew":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(s.current(CsvType::Amazon), KeepaValue::NoData);
        assert_eq!(s.current(CsvType::New), KeepaValue::Known(1499));
        assert_eq!(s.current(CsvType::Used), KeepaValue::Unknown);
        assert_eq!(s.current(CsvType::CountNewFbm), KeepaValue::Unknown);
        assert_eq!(s.avg30(CsvType::New), KeepaValue::Unknown);
        assert_eq!(s.min(CsvType::Amazon), None);
        assert_eq!(
            s.min(CsvType::New),
            Some((KeepaMinutes(5), KeepaValue::Known(1000)))
        );
        assert_eq!(s.min(CsvType::Used), None);
        assert_eq!(s.min(CsvType::Sales), None);
        assert_eq!(s.buy_box_price, KeepaValue::Unknown);
        assert_eq!(s.offer_count_fba, KeepaValue::Unknown);
        assert_eq!(s.sales_rank_drops30.known(), Some(35));
        assert_eq!(s.buy_box_is_fba, None);
        assert_eq!(s.total_offer_count, KeepaValue::Unknown);
    }

    #[test]
    fn seller_sentinels_lightning_deals_and_landed_price() {
        let s: Stats = serde_json::from_str(
            r#"{"buyBoxSellerId":"-2","buyBoxUsedSellerId":"A1","lightningDealInfo":[100,-1],
                "buyBoxPrice":1000,"buyBoxShipping":-2,"buyBoxMinOrderQuantity":-1}"#,
        )
        .unwrap();
        assert_eq!(s.buy_box_seller_id, None);
        assert_eq!(s.buy_box_used_seller_id.as_deref(), Some("A1"));
        assert_eq!(s.lightning_deal(), Some((KeepaMinutes(100), None)));
        assert_eq!(s.buy_box_landed(), KeepaValue::Unknown);
        assert_eq!(s.buy_box_min_order_quantity, KeepaValue::NoData);
        let s: Stats = serde_json::from_str(r#"{"lightningDealInfo":[1]}"#).unwrap();
        assert_eq!(s.lightning_deal(), None);
    }
}
