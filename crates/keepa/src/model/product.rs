//! The product object (`/product`, `/search`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::csv::{decode_named_pairs, CsvError, CsvType, History};
use super::offer::{ConditionFilter, LowestOffer, Offer};
use super::sentinel::{null_default, KeepaValue};
use super::stats::Stats;
use crate::domain::Domain;
use crate::time::KeepaMinutes;

/// One entry of a product's `categoryTree` (root first).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CategoryTreeEntry {
    /// Category node id.
    #[serde(default)]
    pub cat_id: i64,
    /// Category name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
}

/// FBA fees (`fbaFees`), when Keepa knows them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FbaFees {
    /// When the fees were last updated.
    #[serde(default)]
    pub last_update: Option<KeepaMinutes>,
    /// Pick & pack fee (smallest currency unit).
    #[serde(default)]
    pub pick_and_pack_fee: Option<i64>,
    /// Storage fee.
    #[serde(default)]
    pub storage_fee: Option<i64>,
    /// Tax on the storage fee.
    #[serde(default)]
    pub storage_fee_tax: Option<i64>,
    /// Tax on the pick & pack fee.
    #[serde(default)]
    pub pick_and_pack_fee_tax: Option<i64>,
}

/// One product image (`images`): file names under
/// `https://m.media-amazon.com/images/I/`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProductImage {
    /// Large image file name.
    #[serde(default)]
    pub l: Option<String>,
    /// Medium image file name.
    #[serde(default)]
    pub m: Option<String>,
}

/// One variation of a parent (`variations`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Variation {
    /// The variation's ASIN.
    #[serde(default)]
    pub asin: Option<String>,
    /// Its dimension values, e.g. colour = red.
    #[serde(default, deserialize_with = "null_default")]
    pub attributes: Vec<VariationAttribute>,
}

/// A variation dimension and its value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VariationAttribute {
    /// Dimension, e.g. `Color`.
    #[serde(default)]
    pub dimension: Option<String>,
    /// Value, e.g. `Red`.
    #[serde(default)]
    pub value: Option<String>,
}

/// A product as Keepa sends it. Every field may be absent or `null` in
/// real responses; unknown fields are ignored. Histories stay raw
/// (cheap to parse and to store) and are decoded on demand by the
/// accessors, which never panic.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    /// The ASIN (empty only if Keepa omitted it).
    #[serde(default, deserialize_with = "null_default")]
    pub asin: String,
    /// Marketplace id (see [`Product::domain`]).
    #[serde(default)]
    pub domain_id: Option<i64>,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// 0 standard, 1 downloadable, 2 ebook, 3 unaccessible, 4 invalid, 5 variation parent.
    #[serde(default)]
    pub product_type: Option<i64>,
    /// Parent ASIN of a variation.
    #[serde(default)]
    pub parent_asin: Option<String>,
    /// Root category id.
    #[serde(default)]
    pub root_category: Option<i64>,
    /// Leaf category ids.
    #[serde(default, deserialize_with = "null_default")]
    pub categories: Vec<i64>,
    /// Category path, root first.
    #[serde(default, deserialize_with = "null_default")]
    pub category_tree: Vec<CategoryTreeEntry>,
    /// Last data refresh.
    #[serde(default)]
    pub last_update: Option<KeepaMinutes>,
    /// Last price change.
    #[serde(default)]
    pub last_price_change: Option<KeepaMinutes>,
    /// Last rating refresh.
    #[serde(default)]
    pub last_rating_update: Option<KeepaMinutes>,
    /// Start of Keepa's tracking.
    #[serde(default)]
    pub tracking_since: Option<KeepaMinutes>,
    /// First listing date known to Keepa (`0` when unknown).
    #[serde(default)]
    pub listed_since: Option<KeepaMinutes>,
    /// Category the `SALES` history refers to.
    #[serde(default)]
    pub sales_rank_reference: Option<i64>,
    /// Raw sales-rank histories `[t, rank, …]` per category id.
    #[serde(default, deserialize_with = "null_default")]
    pub sales_ranks: BTreeMap<i64, Vec<i64>>,
    /// Raw buy box holder history: `["t", "sellerId", …]`.
    #[serde(default, deserialize_with = "null_default")]
    pub buy_box_seller_id_history: Vec<String>,
    /// Offers, live and past (with `offers=`).
    #[serde(default)]
    pub offers: Option<Vec<Offer>>,
    /// Indexes into `offers` of the live offers, in Amazon's order.
    #[serde(default)]
    pub live_offers_order: Option<Vec<i64>>,
    /// Whether the offers request succeeded.
    #[serde(default)]
    pub offers_successful: Option<bool>,
    /// Statistics (with `stats=`).
    #[serde(default)]
    pub stats: Option<Stats>,
    /// FBA fees.
    #[serde(default)]
    pub fba_fees: Option<FbaFees>,
    /// Referral fee percent, whole (e.g. `15`); see also
    /// [`Product::referral_fee_percentage`].
    #[serde(default)]
    pub referral_fee_percent: Option<f64>,
    /// Amazon's "bought in past month" estimate.
    #[serde(default)]
    pub monthly_sold: Option<i64>,
    /// Raw `[t, monthlySold, …]` history.
    #[serde(default, deserialize_with = "null_default")]
    pub monthly_sold_history: Vec<i64>,
    /// Raw csv histories, indexed by [`CsvType`]; `None` entries have no
    /// data. Empty without `history`. Use [`Product::history`].
    #[serde(default, deserialize_with = "null_default")]
    pub csv: Vec<Option<Vec<i64>>>,
    /// Brand.
    #[serde(default)]
    pub brand: Option<String>,
    /// Manufacturer.
    #[serde(default)]
    pub manufacturer: Option<String>,
    /// Binding (e.g. `Paperback`).
    #[serde(default)]
    pub binding: Option<String>,
    /// Author.
    #[serde(default)]
    pub author: Option<String>,
    /// Product group (e.g. `Book`).
    #[serde(default)]
    pub product_group: Option<String>,
    /// Manufacturer part number.
    #[serde(default)]
    pub part_number: Option<String>,
    /// Model.
    #[serde(default)]
    pub model: Option<String>,
    /// Colour.
    #[serde(default)]
    pub color: Option<String>,
    /// Size.
    #[serde(default)]
    pub size: Option<String>,
    /// Edition.
    #[serde(default)]
    pub edition: Option<String>,
    /// Format.
    #[serde(default)]
    pub format: Option<String>,
    /// EANs (ISBN-13 for books).
    #[serde(default, deserialize_with = "null_default")]
    pub ean_list: Vec<String>,
    /// UPCs.
    #[serde(default, deserialize_with = "null_default")]
    pub upc_list: Vec<String>,
    /// Items in the package.
    #[serde(default)]
    pub number_of_items: Option<i64>,
    /// Pages (`-1` when not a book).
    #[serde(default)]
    pub number_of_pages: Option<i64>,
    /// Publication date as `YYYYMMDD` (`0` unknown).
    #[serde(default)]
    pub publication_date: Option<i64>,
    /// Release date as `YYYYMMDD` (`0` unknown).
    #[serde(default)]
    pub release_date: Option<i64>,
    /// Package height, mm.
    #[serde(default)]
    pub package_height: Option<i64>,
    /// Package length, mm.
    #[serde(default)]
    pub package_length: Option<i64>,
    /// Package width, mm.
    #[serde(default)]
    pub package_width: Option<i64>,
    /// Package weight, g.
    #[serde(default)]
    pub package_weight: Option<i64>,
    /// Package quantity.
    #[serde(default)]
    pub package_quantity: Option<i64>,
    /// Item weight, g.
    #[serde(default)]
    pub item_weight: Option<i64>,
    /// Images.
    #[serde(default, deserialize_with = "null_default")]
    pub images: Vec<ProductImage>,
    /// Older image field: comma-separated file names.
    #[serde(default, rename = "imagesCSV")]
    pub images_csv: Option<String>,
    /// Variations of a parent.
    #[serde(default, deserialize_with = "null_default")]
    pub variations: Vec<Variation>,
    /// Whether the product has reviews.
    #[serde(default)]
    pub has_reviews: Option<bool>,
    /// Adult product.
    #[serde(default)]
    pub is_adult_product: Option<bool>,
    /// Whether the ASIN redirects to another.
    #[serde(default, rename = "isRedirectASIN")]
    pub is_redirect_asin: Option<bool>,
    /// Amazon's availability of its own offer (`-1` none).
    #[serde(default)]
    pub availability_amazon: Option<i64>,
    /// Offers eligible for the buy box, 8 counts in Keepa's documented
    /// order: new FBA, new FBM, used FBA, used FBM, collectible FBA,
    /// collectible FBM, refurbished FBA, refurbished FBM.
    #[serde(default, deserialize_with = "null_default")]
    pub buy_box_eligible_offer_counts: Vec<i64>,
    /// Amazon's competitive price threshold (smallest currency unit).
    #[serde(default)]
    pub competitive_price_threshold: Option<i64>,
    /// Amazon's suggested lower price.
    #[serde(default)]
    pub suggested_lower_price: Option<i64>,
    /// Raw `[oneTime, subscribeAndSave]` coupon (see [`Product::coupons`]).
    #[serde(default)]
    pub coupon: Option<Vec<i64>>,
    /// Raw `[t, oneTime, subscribeAndSave, …]` coupon history.
    #[serde(default, deserialize_with = "null_default")]
    pub coupon_history: Vec<i64>,
    /// Current promotions (collected for Amazon US only).
    #[serde(default, deserialize_with = "null_default")]
    pub promotions: Vec<Promotion>,
    /// Referral fee percent, precise (e.g. `15.01`).
    #[serde(default)]
    pub referral_fee_percentage: Option<f64>,
    /// Raw `[t, categoryId, …]`: which category the `SALES` history
    /// referred to over time (`-1`: none).
    #[serde(default, deserialize_with = "null_default")]
    pub sales_rank_reference_history: Vec<i64>,
    /// Display group of the sales rank, e.g. `beauty_display_on_website`.
    #[serde(default)]
    pub sales_rank_display_group: Option<String>,
    /// Raw `["t", "parentAsin", …]`; `"-1"` when the product had no parent.
    #[serde(default, deserialize_with = "null_default")]
    pub parent_asin_history: Vec<String>,
    /// Comma-separated variation ASINs of a parent.
    #[serde(default, rename = "variationCSV")]
    pub variation_csv: Option<String>,
    /// One or two "frequently bought together" ASINs.
    #[serde(default)]
    pub frequently_bought_together: Option<Vec<String>>,
    /// Whether the buy box offers Subscribe & Save (updated with `offers`).
    #[serde(default, rename = "isSNS")]
    pub is_sns: Option<bool>,
    /// Whether the product can be traded in.
    #[serde(default)]
    pub is_eligible_for_trade_in: Option<bool>,
    /// Whether Amazon itself ships it with super-saver shipping.
    #[serde(default)]
    pub is_eligible_for_super_saver_shipping: Option<bool>,
    /// Heat-sensitive (FBA restrictions in summer).
    #[serde(default)]
    pub is_heat_sensitive: Option<bool>,
    /// Whether the current new price is hidden by a MAP rule (then the
    /// `NEW` price reads `-1` as if out of stock).
    #[serde(default, rename = "newPriceIsMAP")]
    pub new_price_is_map: Option<bool>,
    /// Hazardous-material declarations, kept raw (shape not documented).
    #[serde(default)]
    pub hazardous_materials: Option<serde_json::Value>,
    /// Item height, mm.
    #[serde(default)]
    pub item_height: Option<i64>,
    /// Item length, mm.
    #[serde(default)]
    pub item_length: Option<i64>,
    /// Item width, mm.
    #[serde(default)]
    pub item_width: Option<i64>,
    /// Amazon's internal product type, e.g. `SKIN_SERUM`.
    #[serde(default, rename = "type")]
    pub amazon_product_type: Option<String>,
    /// When `monthlySold` was last refreshed.
    #[serde(default)]
    pub last_sold_update: Option<KeepaMinutes>,
}

/// One promotion (`promotions`). Keepa's documented fields and those seen
/// in real responses differ, so every field is optional.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Promotion {
    /// Promotion type, e.g. `SNS` or `BuyQuantityXGetPercentOffX`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Keepa's promotion id.
    #[serde(default)]
    pub promotion_id: Option<String>,
    /// Seller running the promotion.
    #[serde(default)]
    pub seller_id: Option<String>,
    /// Promoted price (smallest currency unit).
    #[serde(default)]
    pub amount: Option<i64>,
    /// Discount, percent.
    #[serde(default)]
    pub discount_percent: Option<f64>,
    /// Extra Subscribe & Save bulk discount, percent.
    #[serde(default)]
    pub sns_bulk_discount_percent: Option<f64>,
    /// What the buyer gets.
    #[serde(default)]
    pub benefit_description: Option<String>,
    /// What the buyer must do.
    #[serde(default)]
    pub eligibility_requirement_description: Option<String>,
}

/// One coupon slot of [`Product::coupons`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Coupon {
    /// No coupon of this kind (`0`).
    None,
    /// An absolute discount in the smallest currency unit (positive raw value).
    Amount(i64),
    /// A percentage discount (negative raw value, e.g. `-15` = 15 %).
    Percent(i64),
}

impl Coupon {
    /// From Keepa's raw value: `0` none, positive amount, negative percent.
    pub fn from_raw(raw: i64) -> Coupon {
        match raw {
            0 => Coupon::None,
            a if a > 0 => Coupon::Amount(a),
            p => Coupon::Percent(p.saturating_neg()),
        }
    }
}

impl Product {
    /// The marketplace, if `domainId` is a known one.
    pub fn domain(&self) -> Option<Domain> {
        Domain::try_from(self.domain_id?).ok()
    }

    /// The history of `ty`: `Ok(None)` when Keepa sent no data for it
    /// (`null`, or no `csv` at all), an error when the series is malformed.
    pub fn history(&self, ty: CsvType) -> Result<Option<History>, CsvError> {
        match self.csv.get(ty.index()) {
            Some(Some(raw)) => History::decode(ty, raw).map(Some),
            _ => Ok(None),
        }
    }

    /// The newest value of `ty` in its history (`None` without history).
    pub fn last_value(&self, ty: CsvType) -> Option<KeepaValue> {
        self.history(ty).ok()??.last().map(|p| p.1)
    }

    /// The sales-rank history in category `category_id`.
    pub fn sales_rank_history(
        &self,
        category_id: i64,
    ) -> Result<Option<Vec<(KeepaMinutes, KeepaValue)>>, CsvError> {
        match self.sales_ranks.get(&category_id) {
            Some(raw) => decode_named_pairs("salesRanks", raw).map(Some),
            None => Ok(None),
        }
    }

    /// The newest sales rank in category `category_id`.
    pub fn sales_rank(&self, category_id: i64) -> Option<KeepaValue> {
        self.sales_rank_history(category_id)
            .ok()??
            .last()
            .map(|p| p.1)
    }

    /// The monthly-sold history.
    pub fn monthly_sold_history(&self) -> Result<Vec<(KeepaMinutes, KeepaValue)>, CsvError> {
        decode_named_pairs("monthlySoldHistory", &self.monthly_sold_history)
    }

    /// Buy box holders over time, oldest first; `None` as seller when no
    /// one held it (`"-1"`) or Keepa did not know (`"-2"`). Pairs whose time
    /// is not a number are skipped; an odd length is an error.
    pub fn buy_box_seller_history(&self) -> Result<Vec<(KeepaMinutes, Option<String>)>, CsvError> {
        string_pairs("buyBoxSellerIdHistory", &self.buy_box_seller_id_history)
    }

    /// Live offers (those named by `liveOffersOrder`), in that order, with
    /// their index in `offers`. Indexes out of range are skipped. Empty
    /// without `offers`.
    pub fn live_offers(&self) -> Vec<(usize, &Offer)> {
        let (Some(offers), Some(order)) = (&self.offers, &self.live_offers_order) else {
            return Vec::new();
        };
        order
            .iter()
            .filter_map(|&i| {
                let i = usize::try_from(i).ok()?;
                offers.get(i).map(|o| (i, o))
            })
            .collect()
    }

    /// The cheapest live offer (price plus shipping) whose condition passes
    /// `filter`. Offers without a known current price, or with shipping
    /// `NoData` (not shippable / unspecified), are skipped; an `Unknown`
    /// shipping cost counts as 0 and is reported as such. Ties keep the
    /// earlier offer in `liveOffersOrder`.
    pub fn lowest_offer(&self, filter: ConditionFilter) -> Option<LowestOffer> {
        self.lowest_offer_by(|o| filter.accepts(o.condition))
    }

    /// Like [`Product::lowest_offer`] with any predicate (e.g. FBA only).
    pub fn lowest_offer_by(&self, mut keep: impl FnMut(&Offer) -> bool) -> Option<LowestOffer> {
        let mut best: Option<LowestOffer> = None;
        for (i, o) in self.live_offers() {
            if !keep(o) {
                continue;
            }
            let Some(cur) = o.current() else { continue };
            let Some(price) = cur.price.known().filter(|p| *p >= 0) else {
                continue;
            };
            let ship = match cur.shipping {
                KeepaValue::Known(s) if s >= 0 => s,
                KeepaValue::Unknown => 0,
                _ => continue,
            };
            let total = price.saturating_add(ship);
            if best.as_ref().is_some_and(|b| b.total <= total) {
                continue;
            }
            best = Some(LowestOffer {
                offer_index: i,
                offer_id: o.offer_id,
                seller_id: o.seller_id.clone(),
                condition: o.condition,
                price,
                shipping: cur.shipping,
                total,
                is_fba: o.is_fba,
                is_amazon: o.is_amazon,
            });
        }
        best
    }

    /// The current `(one-time, subscribe & save)` coupons; `None` when
    /// Keepa sent none or the array is not two entries.
    pub fn coupons(&self) -> Option<(Coupon, Coupon)> {
        match self.coupon.as_deref()? {
            [one, sns] => Some((Coupon::from_raw(*one), Coupon::from_raw(*sns))),
            _ => None,
        }
    }

    /// The coupon history as `(t, one-time, subscribe & save)`, oldest first.
    pub fn coupon_history(&self) -> Result<Vec<(KeepaMinutes, Coupon, Coupon)>, CsvError> {
        let raw = &self.coupon_history;
        if !raw.len().is_multiple_of(3) {
            return Err(CsvError::SeriesLength {
                what: "couponHistory",
                len: raw.len(),
                stride: 3,
            });
        }
        Ok(raw
            .chunks_exact(3)
            .map(|c| {
                (
                    KeepaMinutes(c[0]),
                    Coupon::from_raw(c[1]),
                    Coupon::from_raw(c[2]),
                )
            })
            .collect())
    }

    /// Which category the `SALES` history referred to over time; `None`
    /// as category for Keepa's `-1`/`-2`.
    pub fn sales_rank_reference_history(
        &self,
    ) -> Result<Vec<(KeepaMinutes, Option<i64>)>, CsvError> {
        Ok(decode_named_pairs(
            "salesRankReferenceHistory",
            &self.sales_rank_reference_history,
        )?
        .into_iter()
        .map(|(t, v)| (t, v.known()))
        .collect())
    }

    /// Parent ASINs over time, oldest first; `None` while the product had
    /// no parent. Pairs whose time is not a number are skipped.
    pub fn parent_asin_history(&self) -> Result<Vec<(KeepaMinutes, Option<String>)>, CsvError> {
        string_pairs("parentAsinHistory", &self.parent_asin_history)
    }

    /// The variation ASINs of a parent (from `variationCSV`).
    pub fn variation_asins(&self) -> Vec<&str> {
        self.variation_csv
            .as_deref()
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Current rating, 0–50 (45 = 4.5 stars), from the `RATING` history or
    /// else `stats.current`.
    pub fn rating(&self) -> Option<KeepaValue> {
        self.last_value(CsvType::Rating)
            .or_else(|| self.stats.as_ref().map(|s| s.current(CsvType::Rating)))
    }
}

/// `["t", "id", …]` string pairs; `"-1"`, `"-2"` and `""` ids read as
/// `None`, pairs whose time is not a number are skipped.
fn string_pairs(
    what: &'static str,
    raw: &[String],
) -> Result<Vec<(KeepaMinutes, Option<String>)>, CsvError> {
    if !raw.len().is_multiple_of(2) {
        return Err(CsvError::SeriesLength {
            what,
            len: raw.len(),
            stride: 2,
        });
    }
    Ok(raw
        .chunks_exact(2)
        .filter_map(|c| {
            let t = c[0].trim().parse::<i64>().ok()?;
            let id = match c[1].as_str() {
                "-1" | "-2" | "" => None,
                s => Some(s.to_string()),
            };
            Some((KeepaMinutes(t), id))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OfferCondition;

    fn product_with_offers() -> Product {
        serde_json::from_str(
            r#"{"asin":"B000000001","liveOffersOrder":[2,0,1,9,-1],
                "offers":[
                  {"offerId":0,"sellerId":"A","condition":1,"offerCSV":[1,1000,0,5,900,100]},
                  {"offerId":1,"sellerId":"B","condition":3,"offerCSV":[5,700,399]},
                  {"offerId":2,"sellerId":"C","condition":2,"offerCSV":[5,950,-1],"isFBA":true},
                  {"offerId":3,"sellerId":"D","condition":1,"offerCSV":[5,10,0]}
                ]}"#,
        )
        .unwrap()
    }

    #[test]
    fn lowest_offer_over_live_offers_only() {
        let p = product_with_offers();
        // D (offer 3) is cheapest but not live; C has no shipping price.
        let any = p.lowest_offer(ConditionFilter::Any).unwrap();
        assert_eq!(any.seller_id.as_deref(), Some("A"));
        assert_eq!((any.price, any.total), (900, 1000));
        let used = p.lowest_offer(ConditionFilter::Used).unwrap();
        assert_eq!(used.seller_id.as_deref(), Some("B"));
        assert_eq!(used.condition, OfferCondition::UsedVeryGood);
        assert_eq!(used.total, 1099);
        assert!(p.lowest_offer(ConditionFilter::Collectible).is_none());
        assert!(p.lowest_offer_by(|o| o.is_fba).is_none());
        assert_eq!(p.live_offers().len(), 3);
    }

    #[test]
    fn histories_absent_malformed_and_buy_box() {
        let p: Product = serde_json::from_str(
            r#"{"asin":"X","csv":[[1,2,3],null],"salesRanks":{"5":[1,100,2,-1]},
                "buyBoxSellerIdHistory":["10","A1","20","-1","x","B"]}"#,
        )
        .unwrap();
        assert!(p.history(CsvType::Amazon).is_err());
        assert_eq!(p.history(CsvType::New), Ok(None));
        assert_eq!(p.history(CsvType::CountNewFbm), Ok(None));
        assert_eq!(p.sales_rank(5), Some(KeepaValue::NoData));
        assert_eq!(p.sales_rank(6), None);
        let bb = p.buy_box_seller_history().unwrap();
        assert_eq!(
            bb,
            vec![
                (KeepaMinutes(10), Some("A1".to_string())),
                (KeepaMinutes(20), None)
            ]
        );
        assert!(p.live_offers().is_empty());
        assert!(p.lowest_offer(ConditionFilter::Any).is_none());
    }

    #[test]
    fn coupons_references_and_variations() {
        let p: Product = serde_json::from_str(
            r#"{"asin":"X","coupon":[200,-15],"couponHistory":[1,0,0,2,-7],
                "salesRankReferenceHistory":[1,5,2,-2],"parentAsinHistory":["1","P1","2"],
                "variationCSV":"A1, A2,,A3"}"#,
        )
        .unwrap();
        assert_eq!(
            p.coupons(),
            Some((Coupon::Amount(200), Coupon::Percent(15)))
        );
        assert!(p.coupon_history().is_err());
        assert_eq!(
            p.sales_rank_reference_history().unwrap(),
            vec![(KeepaMinutes(1), Some(5)), (KeepaMinutes(2), None)]
        );
        assert!(p.parent_asin_history().is_err());
        assert_eq!(p.variation_asins(), ["A1", "A2", "A3"]);
        let bad: Product = serde_json::from_str(r#"{"coupon":[1,2,3]}"#).unwrap();
        assert_eq!(bad.coupons(), None);
        assert_eq!(Coupon::from_raw(i64::MIN), Coupon::Percent(i64::MAX));
    }
}
