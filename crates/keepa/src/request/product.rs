//! `/product`: [`ProductRequest`] and its [`Stats`] window.

use super::*;

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

    /// `update=H`: -1 never collect (cached data only; an ASIN Keepa does not
    /// have costs nothing), 0 always collect (+1 token if the data was under
    /// an hour old), H > 0 collect only if Keepa's data is older than H hours
    /// (absent: 1). With offers, offers Keepa collected within H hours are
    /// not collected again and cost a flat 5 tokens per product.
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
        let (param, list) = self.items()?;
        self.check_options()?;
        let query = self.query(param, &list);
        let shape = RequestShape {
            endpoint: Endpoint::Product,
            offer_pages: self.offers.map_or(0, |n| n.div_ceil(10)),
            stock: self.stock,
            rating: self.rating,
            buybox: self.buybox,
            force_update: self.update == Some(0),
            storefront: false,
            update: self.update,
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

    /// The parameter named (`asin` or `code`) and its normalised,
    /// deduplicated list (at most [`MAX_ITEMS_PER_CALL`]).
    fn items(&self) -> Result<(&'static str, Vec<String>), ValidationError> {
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
        Ok((param, list))
    }

    /// The rules on `offers`, `stock`, `only-live-offers`, `stats`, `days`
    /// and `update`.
    fn check_options(&self) -> Result<(), ValidationError> {
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
        Ok(())
    }

    /// The query parameters, in Keepa's order.
    fn query(&self, param: &str, list: &[String]) -> Vec<(String, String)> {
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
        query
    }
}
