//! Sellers (`/seller`).

use serde::{Deserialize, Serialize};

use super::csv::{decode_named_pairs, CsvError};
use super::sentinel::{null_default, KeepaValue};
use crate::time::KeepaMinutes;

/// A marketplace seller.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seller {
    /// The seller id, e.g. `A2L77EE7U53NWQ`.
    #[serde(default)]
    pub seller_id: Option<String>,
    /// Display name.
    #[serde(default)]
    pub seller_name: Option<String>,
    /// Marketplace id.
    #[serde(default)]
    pub domain_id: Option<i64>,
    /// Start of Keepa's tracking.
    #[serde(default)]
    pub tracked_since: Option<KeepaMinutes>,
    /// Last update.
    #[serde(default)]
    pub last_update: Option<KeepaMinutes>,
    /// Last rating update.
    #[serde(default)]
    pub last_rating_update: Option<KeepaMinutes>,
    /// Keepa flags the seller as a scammer.
    #[serde(default, deserialize_with = "null_default")]
    pub is_scammer: bool,
    /// Whether the seller has FBA listings (may be false negative).
    #[serde(default, rename = "hasFBA", deserialize_with = "null_default")]
    pub has_fba: bool,
    /// Positive rating percent, 0–100.
    #[serde(default)]
    pub current_rating: Option<i64>,
    /// Total ratings.
    #[serde(default)]
    pub current_rating_count: Option<i64>,
    /// Ratings in the last 30 days.
    #[serde(default)]
    pub ratings_last30_days: Option<i64>,
    /// Raw `[t, count]` of storefront ASINs.
    #[serde(default, deserialize_with = "null_default")]
    pub total_storefront_asins: Vec<i64>,
    /// Storefront ASINs, freshest first (with `storefront=1`).
    #[serde(default, deserialize_with = "null_default")]
    pub asin_list: Vec<String>,
    /// When each of `asin_list` was last verified.
    #[serde(default, deserialize_with = "null_default")]
    pub asin_list_last_seen: Vec<KeepaMinutes>,
    /// Raw histories: 0 rating percent, 1 rating count, each `[t, v, …]`.
    #[serde(default, deserialize_with = "null_default")]
    pub csv: Vec<Option<Vec<i64>>>,
}

impl Seller {
    /// The storefront ASIN count and when it was taken.
    pub fn storefront_asin_count(&self) -> Option<(KeepaMinutes, KeepaValue)> {
        decode_named_pairs("totalStorefrontAsins", &self.total_storefront_asins)
            .ok()?
            .last()
            .copied()
    }

    /// Rating-percent history (`csv[0]`).
    pub fn rating_history(&self) -> Result<Option<Vec<(KeepaMinutes, KeepaValue)>>, CsvError> {
        self.series(0, "seller csv RATING")
    }

    /// Rating-count history (`csv[1]`).
    pub fn rating_count_history(
        &self,
    ) -> Result<Option<Vec<(KeepaMinutes, KeepaValue)>>, CsvError> {
        self.series(1, "seller csv RATING_COUNT")
    }

    fn series(
        &self,
        i: usize,
        what: &'static str,
    ) -> Result<Option<Vec<(KeepaMinutes, KeepaValue)>>, CsvError> {
        match self.csv.get(i) {
            Some(Some(raw)) => decode_named_pairs(what, raw).map(Some),
            _ => Ok(None),
        }
    }
}

/// A category node (`/category`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Category {
    /// Category node id.
    #[serde(default)]
    pub cat_id: i64,
    /// Marketplace id.
    #[serde(default)]
    pub domain_id: Option<i64>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Name without context.
    #[serde(default)]
    pub context_free_name: Option<String>,
    /// Child ids.
    #[serde(default, deserialize_with = "null_default")]
    pub children: Vec<i64>,
    /// Parent id (`0` for a root).
    #[serde(default)]
    pub parent: Option<i64>,
    /// Highest sales rank seen in the category.
    #[serde(default)]
    pub highest_rank: Option<i64>,
    /// Products in the category.
    #[serde(default)]
    pub product_count: Option<i64>,
    /// Whether this is an Amazon browse node.
    #[serde(default)]
    pub is_browse_node: Option<bool>,
}

/// A best-seller list (`/bestsellers`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BestSellersList {
    /// Marketplace id.
    #[serde(default)]
    pub domain_id: Option<i64>,
    /// When the list was built.
    #[serde(default)]
    pub last_update: Option<KeepaMinutes>,
    /// The category.
    #[serde(default)]
    pub category_id: Option<i64>,
    /// ASINs, best first.
    #[serde(default, deserialize_with = "null_default")]
    pub asin_list: Vec<String>,
}
