//! Request validation, per endpoint: the parameters into the work an
//! admitted request will do, or a 400 (405 for `asin` with `code`) that
//! costs nothing.

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::Value;

use super::{ApiError, Shared};
use crate::catalog::Catalog;
use crate::feed::Selection;
use crate::render::ProductOptions;

/// What a validated request will do once admitted.
pub(super) enum Work {
    Token,
    Product {
        indices: Vec<u32>,
        opt: ProductOptions,
        update: Option<i64>,
    },
    Deal(Selection),
    Seller {
        indices: Vec<u32>,
        domain: i64,
        storefront: bool,
    },
    Query {
        body: Value,
    },
    Bestsellers {
        domain: i64,
        category: i64,
    },
    Category {
        domain: i64,
        ids: Vec<i64>,
        parents: bool,
    },
    Search {
        domain: i64,
        term: String,
        page: i64,
    },
}

/// The query parameters of a request, in order.
pub(super) type Query = [(String, String)];

/// The first value of parameter `name`.
pub(super) fn param<'a>(q: &'a Query, name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn int_param(q: &Query, name: &str) -> Result<Option<i64>, ApiError> {
    match param(q, name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad(name, format!("{name} must be an integer"))),
    }
}

/// Whether the integer parameter `name` is 1.
fn flag(q: &Query, name: &str) -> Result<bool, ApiError> {
    Ok(int_param(q, name)?.is_some_and(|v| v == 1))
}

fn domain_param(q: &Query) -> Result<i64, ApiError> {
    let d = int_param(q, "domain")
        .map_err(|_| ApiError::domain())?
        .ok_or_else(ApiError::domain)?;
    keepa::Domain::try_from(d).map_err(|_| ApiError::domain())?;
    Ok(d)
}

/// The non-empty items of a comma-separated list.
fn items(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// A selection: the POST body, or the `selection` parameter of a GET.
fn selection_text(method: &Method, q: &Query, body: &Bytes) -> Result<Vec<u8>, ApiError> {
    if *method == Method::POST {
        return Ok(body.to_vec());
    }
    Ok(param(q, "selection")
        .ok_or_else(|| ApiError::bad("selection", "selection is required"))?
        .as_bytes()
        .to_vec())
}

/// Checks a request to `endpoint` and says what it will do.
pub(super) fn validate(
    shared: &Shared,
    endpoint: &str,
    method: &Method,
    q: &Query,
    body: &Bytes,
) -> Result<Work, ApiError> {
    let catalog = &shared.catalog;
    match endpoint {
        "token" => Ok(Work::Token),
        "product" => product(catalog, q),
        "deal" => {
            let text = selection_text(method, q, body)?;
            let sel = Selection::parse(&text).map_err(|(ty, msg)| ApiError::bad(ty, msg))?;
            Ok(Work::Deal(sel))
        }
        "seller" => seller(catalog, q),
        "query" => query(method, q, body),
        "bestsellers" => bestsellers(q),
        "category" => category(q),
        "search" => search(q),
        _ => Err(ApiError::not_found()),
    }
}

fn product(catalog: &Catalog, q: &Query) -> Result<Work, ApiError> {
    let domain_id = domain_param(q)?;
    let list = match (param(q, "asin"), param(q, "code")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "methodNotAllowed",
                "use either asin or code, not both",
            ))
        }
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return Err(ApiError::bad("asin", "asin or code is required")),
    };
    let asins = items(list);
    if asins.is_empty() {
        return Err(ApiError::bad("asin", "no ASIN given"));
    }
    if asins.len() > 100 {
        return Err(ApiError::bad("asin", "at most 100 ASINs per request"));
    }
    let offers = int_param(q, "offers")?;
    if offers.is_some_and(|n| !(20..=100).contains(&n)) {
        return Err(ApiError::bad("offers", "offers must be between 20 and 100"));
    }
    let stats_days = match param(q, "stats") {
        None => None,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(d) if d >= 1 => Some(d.min(36_500)),
            _ => {
                return Err(ApiError::bad(
                    "stats",
                    "stats must be a number of days >= 1",
                ))
            }
        },
    };
    let days = int_param(q, "days")?;
    if days.is_some_and(|d| d < 1) {
        return Err(ApiError::bad("days", "days must be >= 1"));
    }
    let history = int_param(q, "history")?.is_none_or(|h| h != 0);
    let update = int_param(q, "update")?;
    let mut indices = Vec::new();
    for i in asins.into_iter().filter_map(|a| catalog.lookup(a)) {
        if !indices.contains(&i) {
            indices.push(i);
        }
    }
    Ok(Work::Product {
        indices,
        opt: ProductOptions {
            domain_id,
            stats_days,
            history,
            days,
            offers: offers.map(|n| n as usize),
            only_live_offers: flag(q, "only-live-offers")?,
            buybox: flag(q, "buybox")?,
            stock: flag(q, "stock")? && offers.is_some(),
            rating: flag(q, "rating")?,
            refreshed: false,
            offers_at: None,
        },
        update,
    })
}

fn seller(catalog: &Catalog, q: &Query) -> Result<Work, ApiError> {
    let domain = domain_param(q)?;
    let list = param(q, "seller").ok_or_else(|| ApiError::bad("seller", "seller is required"))?;
    let ids = items(list);
    if ids.is_empty() || ids.len() > 100 {
        return Err(ApiError::bad("seller", "between 1 and 100 seller ids"));
    }
    let storefront = flag(q, "storefront")?;
    let indices = ids
        .iter()
        .filter_map(|s| catalog.seller_lookup(s))
        .collect();
    Ok(Work::Seller {
        indices,
        domain,
        storefront,
    })
}

fn query(method: &Method, q: &Query, body: &Bytes) -> Result<Work, ApiError> {
    domain_param(q)?;
    let text = selection_text(method, q, body)?;
    let body: Value = serde_json::from_slice(&text)
        .map_err(|_| ApiError::bad("selection", "selection is not valid JSON"))?;
    if !body.is_object() {
        return Err(ApiError::bad(
            "selection",
            "selection must be a JSON object",
        ));
    }
    Ok(Work::Query { body })
}

fn bestsellers(q: &Query) -> Result<Work, ApiError> {
    let domain = domain_param(q)?;
    let category = int_param(q, "category")?
        .ok_or_else(|| ApiError::bad("category", "category is required"))?;
    if int_param(q, "range")?.is_some_and(|r| ![0, 30, 90, 180].contains(&r)) {
        return Err(ApiError::bad("range", "range must be 0, 30, 90 or 180"));
    }
    Ok(Work::Bestsellers { domain, category })
}

fn category(q: &Query) -> Result<Work, ApiError> {
    let domain = domain_param(q)?;
    let list =
        param(q, "category").ok_or_else(|| ApiError::bad("category", "category is required"))?;
    let ids = items(list)
        .into_iter()
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::bad("category", "category ids are integers"))
        })
        .collect::<Result<Vec<i64>, ApiError>>()?;
    if ids.is_empty() || ids.len() > 10 {
        return Err(ApiError::bad("category", "between 1 and 10 category ids"));
    }
    let parents = flag(q, "parents")?;
    Ok(Work::Category {
        domain,
        ids,
        parents,
    })
}

fn search(q: &Query) -> Result<Work, ApiError> {
    let domain = domain_param(q)?;
    if param(q, "type") != Some("product") {
        return Err(ApiError::bad("type", "type must be product"));
    }
    let term = param(q, "term").unwrap_or("").to_lowercase();
    if term.trim().is_empty() {
        return Err(ApiError::bad("term", "term is required"));
    }
    let page = int_param(q, "page")?.unwrap_or(0).clamp(0, 9);
    Ok(Work::Search { domain, term, page })
}
