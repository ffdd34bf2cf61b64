//! `/query` (the Product Finder): [`QueryRequest`].

use super::deal::check_no_numeric_string;
use super::*;

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
