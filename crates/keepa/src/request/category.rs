//! `/category`: [`CategoryRequest`].

use super::*;

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
