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

/// Builder for `/product`: asin **or** code list (≤ 100), offers, stats, …
///
/// ASINs are trimmed and upper-cased, duplicates dropped (first kept).
#[derive(Debug, Clone, PartialEq)]
pub struct ProductRequest {
    domain: Domain,
    asins: Vec<String>,
    codes: Vec<String>,
    offers: Option<u32>,
    stats: Option<Stats>,
    history: Option<bool>,
    days: Option<u32>,
    update: Option<i64>,
    rating: bool,
    buybox: bool,
    stock: bool,
    only_live_offers: bool,
}

/// The `stats` parameter of `/product`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stats {
    /// The last N days (N ≥ 1).
    Days(u32),
    /// A closed interval of Unix milliseconds, `start < end`.
    Between {
        /// Start, Unix ms.
        start_ms: i64,
        /// End, Unix ms.
        end_ms: i64,
    },
}

impl ProductRequest {
    /// A product call by ASIN.
    pub fn asins<I, S>(domain: Domain, asins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut r = ProductRequest::empty(domain);
        r.asins = asins.into_iter().map(|s| s.as_ref().to_string()).collect();
        r
    }

    /// A product call by product code (EAN, UPC, ISBN-13).
    pub fn codes<I, S>(domain: Domain, codes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut r = ProductRequest::empty(domain);
        r.codes = codes.into_iter().map(|s| s.as_ref().to_string()).collect();
        r
    }

    /// A product call naming nothing yet; add ASINs or codes (not both).
    pub fn empty(domain: Domain) -> Self {
        ProductRequest {
            domain,
            asins: Vec::new(),
            codes: Vec::new(),
            offers: None,
            stats: None,
            history: None,
            days: None,
            update: None,
            rating: false,
            buybox: false,
            stock: false,
            only_live_offers: false,
        }
    }

    /// Adds ASINs.
    pub fn add_asins<I, S>(mut self, asins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.asins
            .extend(asins.into_iter().map(|s| s.as_ref().to_string()));
        self
    }

    /// Adds product codes.
    pub fn add_codes<I, S>(mut self, codes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.codes
            .extend(codes.into_iter().map(|s| s.as_ref().to_string()));
        self
    }

    /// `offers=N`: live offers, 20–100. Costs 6 per page of 10 offers found.
    pub fn offers(mut self, n: u32) -> Self {
        self.offers = Some(n);
        self
    }

    /// `stats=D`: statistics over the last `days` days (free).
    pub fn stats(mut self, days: u32) -> Self {
        self.stats = Some(Stats::Days(days));
        self
    }

    /// `stats=start,end`: statistics over an interval of Unix ms (free).
    pub fn stats_between(mut self, start_ms: i64, end_ms: i64) -> Self {
        self.stats = Some(Stats::Between { start_ms, end_ms });
        self
    }

    /// `history=0/1`: include the csv histories (free).
    pub fn history(mut self, on: bool) -> Self {
        self.history = Some(on);
        self
    }

    /// `days=N`: limit histories to the last N days (free).
    pub fn days(mut self, n: u32) -> Self {
        self.days = Some(n);
        self
    }

    /// `update=H`: -1 never refresh, 0 force a live refresh (+1 token if the
    /// data was fresh), H > 0 refresh if older than H hours.
    pub fn update(mut self, hours: i64) -> Self {
        self.update = Some(hours);
        self
    }

    /// `rating=1`: rating and review-count history (up to +1 per product).
    pub fn rating(mut self, on: bool) -> Self {
        self.rating = on;
        self
    }

    /// `buybox=1`: buy-box history (+2 per product; ignored with offers).
    pub fn buybox(mut self, on: bool) -> Self {
        self.buybox = on;
        self
    }

    /// `stock=1`: stock of the offers (+2 per product; needs offers).
    pub fn stock(mut self, on: bool) -> Self {
        self.stock = on;
        self
    }

    /// `only-live-offers=1`: drop historical offers (needs offers).
    pub fn only_live_offers(mut self, on: bool) -> Self {
        self.only_live_offers = on;
        self
    }

    /// Checks every rule and returns the request.
    pub fn build(self) -> Result<Request, ValidationError> {
        let (param, list) = match (self.asins.is_empty(), self.codes.is_empty()) {
            (false, false) => {
                return Err(ValidationError::missing(
                    "asin/code",
                    "give either asin or code, not both",
                ))
            }
            (true, true) => {
                return Err(ValidationError::missing(
                    "asin/code",
                    "one of asin or code is required",
                ))
            }
            (false, true) => (
                "asin",
                self.asins
                    .iter()
                    .map(|a| parse_asin(a))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            (true, false) => (
                "code",
                self.codes
                    .iter()
                    .map(|c| parse_code(c))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let list = dedup_keep_order(list);
        check_count(param, list.len(), MAX_ITEMS_PER_CALL)?;

        if let Some(n) = self.offers {
            if !(20..=100).contains(&n) {
                return Err(ValidationError::new(
                    "offers",
                    n,
                    "must be between 20 and 100",
                ));
            }
        }
        if self.stock && self.offers.is_none() {
            return Err(ValidationError::new(
                "stock",
                1,
                "needs offers (set offers to 20-100)",
            ));
        }
        if self.only_live_offers && self.offers.is_none() {
            return Err(ValidationError::new(
                "only-live-offers",
                1,
                "needs offers (set offers to 20-100)",
            ));
        }
        if let Some(stats) = self.stats {
            match stats {
                Stats::Days(0) => {
                    return Err(ValidationError::new("stats", 0, "must be at least 1 day"))
                }
                Stats::Between { start_ms, end_ms } if start_ms < 0 || start_ms >= end_ms => {
                    return Err(ValidationError::new(
                        "stats",
                        format!("{start_ms},{end_ms}"),
                        "must be start,end in Unix ms with 0 <= start < end",
                    ))
                }
                _ => {}
            }
        }
        if self.days == Some(0) {
            return Err(ValidationError::new("days", 0, "must be at least 1"));
        }
        if let Some(u) = self.update {
            if u < -1 {
                return Err(ValidationError::new(
                    "update",
                    u,
                    "must be -1 (never), 0 (force) or a number of hours",
                ));
            }
        }

        let mut query = vec![
            ("domain".to_string(), self.domain.id().to_string()),
            (param.to_string(), list.join(",")),
        ];
        if let Some(n) = self.offers {
            query.push(("offers".into(), n.to_string()));
        }
        match self.stats {
            Some(Stats::Days(d)) => query.push(("stats".into(), d.to_string())),
            Some(Stats::Between { start_ms, end_ms }) => {
                query.push(("stats".into(), format!("{start_ms},{end_ms}")))
            }
            None => {}
        }
        if let Some(h) = self.history {
            query.push(("history".into(), flag(h).into()));
        }
        if let Some(d) = self.days {
            query.push(("days".into(), d.to_string()));
        }
        if let Some(u) = self.update {
            query.push(("update".into(), u.to_string()));
        }
        for (name, on) in [
            ("rating", self.rating),
            ("buybox", self.buybox),
            ("stock", self.stock),
            ("only-live-offers", self.only_live_offers),
        ] {
            if on {
                query.push((name.into(), "1".into()));
            }
        }

        let shape = RequestShape {
            endpoint: Endpoint::Product,
            offer_pages: self.offers.map_or(0, |n| n.div_ceil(10)),
            stock: self.stock,
            rating: self.rating,
            buybox: self.buybox,
            force_update: self.update == Some(0),
            storefront: false,
        };
        Ok(Request {
            endpoint: Endpoint::Product,
            method: Method::Get,
            domain: Some(self.domain),
            query,
            body: None,
            shape,
            items: list.len() as u32,
        })
    }
}

/// A `[min, max]` range in a deal selection.
pub type Range = [i64; 2];

/// The `/deal` selection: the common fields of `KEEPA_API.md` §4, typed,
/// plus [`DealSelection::extra`] for anything else (passed through as is).
///
/// Deserialises from the JSON a user writes (Keepa's own field names);
/// serialises integers as JSON numbers (Keepa silently ignores `"4"`).
///
/// ```
/// use keepa::request::DealSelection;
/// let sel: DealSelection = serde_json::from_str(
///     r#"{"domainId":1,"priceTypes":[0],"page":0,"sortType":1,"mustHaveAmazonOffer":true}"#,
/// ).unwrap();
/// let req = sel.build().unwrap();
/// assert_eq!(req.body().unwrap()["sortType"], 1);
/// assert_eq!(req.body().unwrap()["mustHaveAmazonOffer"], true);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DealSelection {
    /// Marketplace.
    pub domain_id: Domain,
    /// Exactly one of [`DEAL_PRICE_TYPES`].
    pub price_types: Vec<i64>,
    /// 0-based page of up to 150 deals; at most [`MAX_DEAL_PAGE`].
    #[serde(default)]
    pub page: u32,
    /// 0 = 24 h, 1 = 7 d, 2 = 31 d, 3 = 90 d.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_range: Option<i64>,
    /// 1 newest first, 2 absolute delta, 3 sales rank, 4 percent delta;
    /// negative inverts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_type: Option<i64>,
    /// Apply the filter options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_filter_enabled: Option<bool>,
    /// Apply the range options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_range_enabled: Option<bool>,
    /// `[min, max]` percent change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_percent_range: Option<Range>,
    /// `[min, max]` absolute change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_range: Option<Range>,
    /// `[min, max]` current value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_range: Option<Range>,
    /// `[min, max]` sales rank; max −1 = no upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales_rank_range: Option<Range>,
    /// Only these root/sub categories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_categories: Option<Vec<u64>>,
    /// Not these categories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_categories: Option<Vec<u64>>,
    /// Minimum rating 0–50 (−1 = off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rating: Option<i64>,
    /// Only lowest-ever prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_lowest: Option<bool>,
    /// Only lowest prices of the last 90 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_lowest90: Option<bool>,
    /// Only out-of-stock products.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_out_of_stock: Option<bool>,
    /// Only products with reviews.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_reviews: Option<bool>,
    /// One variation per parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_variation: Option<bool>,
    /// Title must contain these words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_search: Option<String>,
    /// Warehouse deal conditions, 1–5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse_conditions: Option<Vec<i64>>,
    /// Every other field, passed through unchanged.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl DealSelection {
    /// A minimal selection: one domain, one price type, page 0, newest first.
    pub fn new(domain: Domain, price_type: u8) -> Self {
        DealSelection {
            domain_id: domain,
            price_types: vec![i64::from(price_type)],
            page: 0,
            date_range: None,
            sort_type: Some(1),
            is_filter_enabled: None,
            is_range_enabled: None,
            delta_percent_range: None,
            delta_range: None,
            current_range: None,
            sales_rank_range: None,
            include_categories: None,
            exclude_categories: None,
            min_rating: None,
            is_lowest: None,
            is_lowest90: None,
            is_out_of_stock: None,
            has_reviews: None,
            single_variation: None,
            title_search: None,
            warehouse_conditions: None,
            extra: BTreeMap::new(),
        }
    }

    /// The same selection at another page.
    pub fn with_page(mut self, page: u32) -> Self {
        self.page = page;
        self
    }

    /// Checks every rule of §4.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self.price_types.as_slice() {
            [p] if DEAL_PRICE_TYPES.iter().any(|&a| i64::from(a) == *p) => {}
            [p] => {
                return Err(ValidationError::new(
                    "priceTypes",
                    format!("[{p}]"),
                    "must be one of 0,1,2,3,5,6,7,8,9,10,18,19,20,21,22,32,33",
                ))
            }
            other => {
                return Err(ValidationError::new(
                    "priceTypes",
                    format!("{other:?}"),
                    "must hold exactly one price type",
                ))
            }
        }
        if self.page > MAX_DEAL_PAGE {
            return Err(ValidationError::new(
                "page",
                self.page,
                format!("must be at most {MAX_DEAL_PAGE} (paging reaches at most 10000 deals)"),
            ));
        }
        if let Some(d) = self.date_range {
            if !(0..=3).contains(&d) {
                return Err(ValidationError::new(
                    "dateRange",
                    d,
                    "must be 0 (24 h), 1 (7 d), 2 (31 d) or 3 (90 d)",
                ));
            }
        }
        if let Some(s) = self.sort_type {
            if !(1..=4).contains(&s.unsigned_abs()) {
                return Err(ValidationError::new(
                    "sortType",
                    s,
                    "must be 1..4 or -1..-4 (1 newest first, 2 absolute delta, 3 sales rank, 4 percent delta)",
                ));
            }
        }
        for (name, range, open_max) in [
            ("deltaPercentRange", self.delta_percent_range, false),
            ("deltaRange", self.delta_range, false),
            ("currentRange", self.current_range, false),
            ("salesRankRange", self.sales_rank_range, true),
        ] {
            if let Some([min, max]) = range {
                let open = open_max && max == -1;
                if !open && min > max {
                    return Err(ValidationError::new(
                        name,
                        format!("[{min},{max}]"),
                        if open_max {
                            "must be [min,max] with min <= max (max -1 = no upper bound)"
                        } else {
                            "must be [min,max] with min <= max"
                        },
                    ));
                }
            }
        }
        if let Some(r) = self.min_rating {
            if !(-1..=50).contains(&r) {
                return Err(ValidationError::new(
                    "minRating",
                    r,
                    "must be -1 (off) or 0..50 (45 = 4.5 stars)",
                ));
            }
        }
        if let Some(w) = &self.warehouse_conditions {
            if let Some(bad) = w.iter().find(|c| !(1..=5).contains(*c)) {
                return Err(ValidationError::new(
                    "warehouseConditions",
                    bad,
                    "each condition must be 1..5",
                ));
            }
        }
        for (name, value) in &self.extra {
            check_no_numeric_string(name, value)?;
        }
        Ok(())
    }

    /// Validates and returns a `POST /deal` request with this selection as body.
    pub fn build(&self) -> Result<Request, ValidationError> {
        self.validate()?;
        let body = serde_json::to_value(self)
            .map_err(|e| ValidationError::new("selection", "", e.to_string()))?;
        Ok(Request {
            endpoint: Endpoint::Deal,
            method: Method::Post,
            domain: Some(self.domain_id),
            query: Vec::new(),
            body: Some(body),
            shape: RequestShape::plain(Endpoint::Deal),
            items: 1,
        })
    }

    /// Validates and returns a `GET /deal?selection=…` request.
    pub fn build_get(&self) -> Result<Request, ValidationError> {
        let mut req = self.build()?;
        let body = req.body.take().unwrap_or(Value::Null);
        req.method = Method::Get;
        req.query.push(("selection".into(), body.to_string()));
        Ok(req)
    }
}

/// Keepa silently ignores integers sent as strings: refuse `"4"` where a
/// pass-through field holds one.
fn check_no_numeric_string(name: &str, value: &Value) -> Result<(), ValidationError> {
    match value {
        Value::String(s) if !s.is_empty() && s.trim().parse::<i64>().is_ok() => {
            Err(ValidationError::new(
                "selection",
                format!("{name}={s:?}"),
                "integers must be JSON numbers (Keepa silently ignores \"4\")",
            ))
        }
        Value::Array(items) => items
            .iter()
            .try_for_each(|v| check_no_numeric_string(name, v)),
        _ => Ok(()),
    }
}

/// Builder for `/seller`: up to 100 seller ids, optional storefront.
#[derive(Debug, Clone, PartialEq)]
pub struct SellerRequest {
    domain: Domain,
    ids: Vec<String>,
    storefront: bool,
}

impl SellerRequest {
    /// Sellers by id (e.g. `A2L77EE7U53NWQ`).
    pub fn new<I, S>(domain: Domain, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        SellerRequest {
            domain,
            ids: ids.into_iter().map(|s| s.as_ref().to_string()).collect(),
            storefront: false,
        }
    }

    /// `storefront=1`: the seller's ASIN list (+9 per seller).
    pub fn storefront(mut self, on: bool) -> Self {
        self.storefront = on;
        self
    }

    /// Checks every rule and returns the request.
    pub fn build(self) -> Result<Request, ValidationError> {
        let ids = self
            .ids
            .iter()
            .map(|raw| {
                let id = raw.trim().to_ascii_uppercase();
                if id.is_empty()
                    || id.len() > 20
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                {
                    Err(ValidationError::new(
                        "seller",
                        raw,
                        "must be 1-20 characters A-Z/0-9",
                    ))
                } else {
                    Ok(id)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ids = dedup_keep_order(ids);
        check_count("seller", ids.len(), MAX_ITEMS_PER_CALL)?;
        let mut query = vec![
            ("domain".to_string(), self.domain.id().to_string()),
            ("seller".to_string(), ids.join(",")),
        ];
        if self.storefront {
            query.push(("storefront".into(), "1".into()));
        }
        Ok(Request {
            endpoint: Endpoint::Seller,
            method: Method::Get,
            domain: Some(self.domain),
            query,
            body: None,
            shape: RequestShape {
                storefront: self.storefront,
                ..RequestShape::plain(Endpoint::Seller)
            },
            items: ids.len() as u32,
        })
    }
}

/// Builder for `/query` (the product finder): a selection JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRequest {
    domain: Domain,
    selection: Value,
}

impl QueryRequest {
    /// A product-finder query; `selection` must be a JSON object.
    pub fn new(domain: Domain, selection: Value) -> Self {
        QueryRequest { domain, selection }
    }

    /// Checks every rule and returns a `POST /query` request.
    pub fn build(self) -> Result<Request, ValidationError> {
        let Value::Object(map) = &self.selection else {
            return Err(ValidationError::new(
                "selection",
                self.selection.to_string(),
                "must be a JSON object",
            ));
        };
        for (name, value) in map {
            check_no_numeric_string(name, value)?;
        }
        let per_page = match map.get("perPage") {
            None => DEFAULT_QUERY_PER_PAGE,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=10_000).contains(&n) => n as u32,
                _ => {
                    return Err(ValidationError::new(
                        "perPage",
                        v,
                        "must be an integer between 1 and 10000",
                    ))
                }
            },
        };
        Ok(Request {
            endpoint: Endpoint::Query,
            method: Method::Post,
            domain: Some(self.domain),
            query: vec![("domain".into(), self.domain.id().to_string())],
            body: Some(self.selection),
            shape: RequestShape::plain(Endpoint::Query),
            items: per_page,
        })
    }
}

/// Builder for `/bestsellers`: a category and an optional range.
#[derive(Debug, Clone, PartialEq)]
pub struct BestsellersRequest {
    domain: Domain,
    category: u64,
    range: Option<u16>,
}

impl BestsellersRequest {
    /// The best-seller list of `category`.
    pub fn new(domain: Domain, category: u64) -> Self {
        BestsellersRequest {
            domain,
            category,
            range: None,
        }
    }

    /// `range`: 0 (current rank) or 30/90/180 (average over that many days).
    pub fn range(mut self, days: u16) -> Self {
        self.range = Some(days);
        self
    }

    /// Checks every rule and returns the request.
    pub fn build(self) -> Result<Request, ValidationError> {
        let mut query = vec![
            ("domain".to_string(), self.domain.id().to_string()),
            ("category".to_string(), self.category.to_string()),
        ];
        if let Some(r) = self.range {
            if !BESTSELLER_RANGES.contains(&r) {
                return Err(ValidationError::new("range", r, "must be 0, 30, 90 or 180"));
            }
            query.push(("range".into(), r.to_string()));
        }
        Ok(Request {
            endpoint: Endpoint::Bestsellers,
            method: Method::Get,
            domain: Some(self.domain),
            query,
            body: None,
            shape: RequestShape::plain(Endpoint::Bestsellers),
            items: 1,
        })
    }
}

/// Builder for `/category`: category ids (0 = all roots), optional parents.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryRequest {
    domain: Domain,
    ids: Vec<u64>,
    parents: bool,
}

impl CategoryRequest {
    /// Look up these category ids.
    pub fn new(domain: Domain, ids: impl IntoIterator<Item = u64>) -> Self {
        CategoryRequest {
            domain,
            ids: ids.into_iter().collect(),
            parents: false,
        }
    }

    /// `parents=1`: include the parent tree.
    pub fn parents(mut self, on: bool) -> Self {
        self.parents = on;
        self
    }

    /// Checks every rule and returns the request.
    pub fn build(self) -> Result<Request, ValidationError> {
        let mut ids = self.ids;
        let mut seen = std::collections::HashSet::new();
        ids.retain(|i| seen.insert(*i));
        check_count("category", ids.len(), MAX_CATEGORIES_PER_CALL)?;
        let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let mut query = vec![
            ("domain".to_string(), self.domain.id().to_string()),
            ("category".to_string(), list),
        ];
        if self.parents {
            query.push(("parents".into(), "1".into()));
        }
        Ok(Request {
            endpoint: Endpoint::Category,
            method: Method::Get,
            domain: Some(self.domain),
            query,
            body: None,
            shape: RequestShape::plain(Endpoint::Category),
            items: ids.len() as u32,
        })
    }
}
