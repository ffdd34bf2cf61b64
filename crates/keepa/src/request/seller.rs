//! `/seller`: [`SellerRequest`].

use super::*;

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
