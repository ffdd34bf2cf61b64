//! `/deal`: the [`DealSelection`] a user writes in Keepa's own names.

use super::*;

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
pub(super) fn check_no_numeric_string(name: &str, value: &Value) -> Result<(), ValidationError> {
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
