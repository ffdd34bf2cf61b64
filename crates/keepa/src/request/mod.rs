//! Validated request builders: a bad request is refused before it costs a token.
//!
//! Each builder checks every rule of `docs/KEEPA_API.md` §4 in
//! `build()` and returns a [`Request`], or a [`ValidationError`] that names
//! the parameter and the rule. A [`Request`] is plain data: endpoint, method,
//! query parameters (never the key; the client adds it), an optional JSON
//! body, the domain, and a [`RequestShape`] that cost prediction keys on.
//!
//! ```
//! use keepa::request::{ProductRequest, Endpoint, Method};
//! use keepa::Domain;
//!
//! let req = ProductRequest::asins(Domain::Com, ["B0D8W1YVBX", "B0F7XPYCSJ"])
//!     .offers(40)
//!     .stats(90)
//!     .build()
//!     .unwrap();
//! assert_eq!(req.endpoint(), Endpoint::Product);
//! assert_eq!(req.method(), Method::Get);
//! assert_eq!(req.items(), 2);
//! assert_eq!(req.shape().offer_pages, 4);
//! assert!(req.query().iter().all(|(k, _)| k != "key"));
//!
//! let err = ProductRequest::asins(Domain::Com, ["B0D8W1YVBX"]).offers(5).build().unwrap_err();
//! assert_eq!(err.to_string(), "offers=5: must be between 20 and 100");
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::Domain;
use crate::error::ValidationError;

mod bestsellers;
mod category;
mod deal;
mod product;
mod query;
mod seller;

pub use bestsellers::BestsellersRequest;
pub use category::CategoryRequest;
pub use deal::{DealSelection, Range};
pub use product::{ProductRequest, Stats};
pub use query::QueryRequest;
pub use seller::SellerRequest;

/// Most ASINs, codes or seller ids one call may name.
pub const MAX_ITEMS_PER_CALL: usize = 100;
/// Most deals one `/deal` page holds.
pub const DEALS_PER_PAGE: u32 = 150;
/// Deepest deal page: paging reaches at most 10 000 deals (page 66 starts at 9 900).
pub const MAX_DEAL_PAGE: u32 = 10_000 / DEALS_PER_PAGE;
/// The `priceTypes` values `/deal` accepts.
pub const DEAL_PRICE_TYPES: [u8; 17] = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 18, 19, 20, 21, 22, 32, 33];
/// Most category ids one `/category` call may name (Keepa's documented limit).
pub const MAX_CATEGORIES_PER_CALL: usize = 10;
/// The `range` values `/bestsellers` accepts (0 = current, else days averaged).
pub const BESTSELLER_RANGES: [u16; 4] = [0, 30, 90, 180];
/// `/query` page size when the selection does not name `perPage`.
pub const DEFAULT_QUERY_PER_PAGE: u32 = 50;

/// A Keepa endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// `/token`: token status, free.
    Token,
    /// `/deal`: the deal feed.
    Deal,
    /// `/product`: product details.
    Product,
    /// `/seller`: seller details.
    Seller,
    /// `/query`: the product finder.
    Query,
    /// `/bestsellers`: a category's best-seller list.
    Bestsellers,
    /// `/category`: category lookup.
    Category,
}

impl Endpoint {
    /// The URL path segment, without slashes (`"product"`).
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::Deal => "deal",
            Endpoint::Product => "product",
            Endpoint::Seller => "seller",
            Endpoint::Query => "query",
            Endpoint::Bestsellers => "bestsellers",
            Endpoint::Category => "category",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.path())
    }
}

/// The HTTP method a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    /// `GET`, parameters in the query string.
    Get,
    /// `POST` with a JSON body (deal and query selections); the key and any
    /// other parameters stay in the query string.
    Post,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Post => "POST",
        })
    }
}

/// What determines a request's cost besides how many items it names.
///
/// Two requests with equal shapes (and domains) cost the same per item found,
/// so [`crate::cost::CostModel`] learns per `(domain, shape)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestShape {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Offer pages requested per product: `ceil(offers / 10)`, 0 without offers.
    pub offer_pages: u32,
    /// `stock=1` (with offers).
    pub stock: bool,
    /// `rating=1`.
    pub rating: bool,
    /// `buybox=1`.
    pub buybox: bool,
    /// `update=0`: force a live refresh.
    pub force_update: bool,
    /// `storefront=1` (sellers).
    pub storefront: bool,
    /// `update=` as sent (`None`: Keepa's default, 1 hour): how old Keepa's
    /// data may be before the call collects it again, which sets what the
    /// offers cost (see [`crate::cost`]).
    pub update: Option<i64>,
}

impl RequestShape {
    /// A shape with no flags set.
    pub fn plain(endpoint: Endpoint) -> Self {
        RequestShape {
            endpoint,
            offer_pages: 0,
            stock: false,
            rating: false,
            buybox: false,
            force_update: false,
            storefront: false,
            update: None,
        }
    }
}

/// A validated, ready-to-send Keepa request. Holds no key.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    endpoint: Endpoint,
    method: Method,
    domain: Option<Domain>,
    query: Vec<(String, String)>,
    body: Option<Value>,
    shape: RequestShape,
    items: u32,
}

impl Request {
    /// `GET /token`: the token status; costs nothing.
    pub fn token() -> Request {
        Request {
            endpoint: Endpoint::Token,
            method: Method::Get,
            domain: None,
            query: Vec::new(),
            body: None,
            shape: RequestShape::plain(Endpoint::Token),
            items: 0,
        }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint
    }

    /// `GET`, or `POST` when the selection travels as a body.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The marketplace, for endpoints that take one.
    pub fn domain(&self) -> Option<Domain> {
        self.domain
    }

    /// Query parameters in sending order, **without** the key.
    pub fn query(&self) -> &[(String, String)] {
        &self.query
    }

    /// The JSON body of a `POST`.
    pub fn body(&self) -> Option<&Value> {
        self.body.as_ref()
    }

    /// What cost prediction keys on.
    pub fn shape(&self) -> RequestShape {
        self.shape
    }

    /// How many items the request asks for: products, sellers, category ids,
    /// or the `/query` page size; 1 for a deal page, 0 for `/token`.
    pub fn items(&self) -> u32 {
        self.items
    }

    /// Path and query string as sent, **without** the key: safe to log.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {}", self.method, self.endpoint);
        for (i, (k, v)) in self.query.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(k);
            s.push('=');
            s.push_str(v);
        }
        s
    }
}

fn flag(on: bool) -> &'static str {
    if on {
        "1"
    } else {
        "0"
    }
}

/// Parses and normalises an ASIN: trimmed, upper-cased, 10 characters A–Z/0–9.
pub fn parse_asin(text: &str) -> Result<String, ValidationError> {
    let asin = text.trim().to_ascii_uppercase();
    if asin.len() != 10
        || !asin
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(ValidationError::new(
            "asin",
            text,
            "must be 10 characters A-Z/0-9",
        ));
    }
    Ok(asin)
}

fn parse_code(text: &str) -> Result<String, ValidationError> {
    let code = text.trim().to_ascii_uppercase();
    if code.is_empty()
        || code.len() > 20
        || !code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(ValidationError::new(
            "code",
            text,
            "must be 1-20 characters A-Z/0-9 (EAN, UPC or ISBN)",
        ));
    }
    Ok(code)
}

fn dedup_keep_order(items: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .collect()
}

fn check_count(param: &'static str, n: usize, max: usize) -> Result<(), ValidationError> {
    if n == 0 {
        return Err(ValidationError::missing(param, "at least one is required"));
    }
    if n > max {
        return Err(ValidationError::new(
            param,
            format!("({n} given)"),
            format!("at most {max} per call"),
        ));
    }
    Ok(())
}
