//! Products, stats, offers, deals, sellers and csv histories, as Keepa sends them.
//!
//! Guarantees, for every type here:
//! - unknown fields are ignored and anything real responses omit or send as
//!   `null` is tolerated (`Option`, empty `Vec`, or [`KeepaValue::Unknown`]);
//! - Keepa's `-1`/`-2` sentinels surface as [`KeepaValue::NoData`] /
//!   [`KeepaValue::Unknown`], never as magic numbers;
//! - per-type arrays are read through accessors taking a [`CsvType`]
//!   (and a [`DateRange`] for deals), which never panic on short arrays;
//! - a malformed history is a [`CsvError`], never a panic.
//!
//! ```
//! use keepa::model::{CsvType, DateRange, DealResponse, KeepaValue};
//! let body = r#"{"tokensLeft":95,"deals":{"dr":[{"asin":"B000000001",
//!     "current":[-1,-1,1200],"avg":[[-1,-1,1600]],"deltaPercent":[[0,0,25]],
//!     "image":[97,46,106,112,103]}],"categoryIds":[283155],
//!     "categoryNames":["Books"],"categoryCount":[1]}}"#;
//! let page: DealResponse = serde_json::from_str(body).unwrap();
//! let deal = &page.deals.dr[0];
//! assert_eq!(page.envelope.tokens_left, Some(95));
//! assert_eq!(deal.current(CsvType::Used), KeepaValue::Known(1200));
//! assert_eq!(deal.current(CsvType::New), KeepaValue::NoData);
//! assert_eq!(deal.avg(CsvType::Used, DateRange::Day), KeepaValue::Known(1600));
//! assert_eq!(deal.delta_percent(CsvType::Used, DateRange::Day), Some(25));
//! assert_eq!(deal.image_name().as_deref(), Some("a.jpg"));
//! ```

mod csv;
mod deal;
mod offer;
mod product;
mod responses;
mod seller;
mod sentinel;
mod stats;

pub use csv::{CsvError, CsvType, History, ShippingPoint, UnknownCsvType, CSV_TYPE_COUNT};
pub use deal::{DateRange, Deal, DealsPayload};
pub use offer::{ConditionFilter, LowestOffer, Offer, OfferCondition};
pub use product::{
    CategoryTreeEntry, Coupon, FbaFees, Product, ProductImage, Promotion, Variation,
    VariationAttribute,
};
pub use responses::{
    BestsellersResponse, CategoryResponse, DealResponse, ProductResponse, QueryResponse,
    SellerResponse,
};
pub use seller::{BestSellersList, Category, Seller};
pub use sentinel::KeepaValue;
pub use stats::{BuyBoxSellerStats, Stats};
