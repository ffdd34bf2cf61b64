//! `/bestsellers`: [`BestsellersRequest`].

use super::*;

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
