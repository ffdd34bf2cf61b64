//! Whole response bodies: the payload plus the token [`Envelope`].
//!
//! Each wrapper flattens the envelope, so
//! `client::Response::parse::<ProductResponse>()` yields products and token
//! state together. Payload fields default to empty when absent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::deal::DealsPayload;
use super::product::Product;
use super::seller::{BestSellersList, Category, Seller};
use super::sentinel::null_default;
use crate::envelope::Envelope;

/// `/product` (and `/search`) body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProductResponse {
    /// Token fields.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// Products found (unknown ASINs are left out).
    #[serde(default, deserialize_with = "null_default")]
    pub products: Vec<Product>,
}

/// `/deal` body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DealResponse {
    /// Token fields.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// The page.
    #[serde(default, deserialize_with = "null_default")]
    pub deals: DealsPayload,
}

/// `/seller` body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SellerResponse {
    /// Token fields.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// Sellers found, by seller id.
    #[serde(default, deserialize_with = "null_default")]
    pub sellers: BTreeMap<String, Seller>,
}

/// `/query` (product finder) body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryResponse {
    /// Token fields.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// ASINs of this page.
    #[serde(default, deserialize_with = "null_default")]
    pub asin_list: Vec<String>,
    /// Matches in total.
    #[serde(default)]
    pub total_results: Option<i64>,
}

/// `/bestsellers` body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BestsellersResponse {
    /// Token fields.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// The list; `None` when Keepa has none for the category.
    #[serde(default)]
    pub best_sellers_list: Option<BestSellersList>,
}

/// `/category` body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CategoryResponse {
    /// Token fields.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// Categories found, by id.
    #[serde(default, deserialize_with = "null_default")]
    pub categories: BTreeMap<i64, Category>,
}
