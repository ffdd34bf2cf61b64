//! The `[selection]` table (Keepa's `/deal` selection, with Keepa's names)
//! and the top-level `domain`.

use keepa::request::DealSelection;
use keepa::Domain;
use toml::de::DeValue;

use super::parse::{self, Table};
use super::{default_config_checked, ConfigError};

/// Known `/deal` selection keys (Keepa's names) and the JSON shape of the
/// typed ones.
#[derive(Clone, Copy)]
enum SelKind {
    Int,
    Bool,
    Text,
    IntList,
    Range,
    Any,
}

const SELECTION_KEYS: &[(&str, SelKind)] = &[
    ("domainId", SelKind::Any),
    ("priceTypes", SelKind::IntList),
    ("page", SelKind::Int),
    ("sortType", SelKind::Int),
    ("dateRange", SelKind::Int),
    ("isFilterEnabled", SelKind::Bool),
    ("isRangeEnabled", SelKind::Bool),
    ("deltaPercentRange", SelKind::Range),
    ("deltaRange", SelKind::Range),
    ("currentRange", SelKind::Range),
    ("salesRankRange", SelKind::Range),
    ("deltaLastRange", SelKind::Range),
    ("includeCategories", SelKind::IntList),
    ("excludeCategories", SelKind::IntList),
    ("minRating", SelKind::Int),
    ("isLowest", SelKind::Bool),
    ("isLowest90", SelKind::Bool),
    ("isLowestOffer", SelKind::Bool),
    ("isHighest", SelKind::Bool),
    ("isOutOfStock", SelKind::Bool),
    ("hasReviews", SelKind::Bool),
    ("singleVariation", SelKind::Bool),
    ("filterErotic", SelKind::Bool),
    ("isPrimeExclusive", SelKind::Bool),
    ("mustHaveAmazonOffer", SelKind::Bool),
    ("mustNotHaveAmazonOffer", SelKind::Bool),
    ("titleSearch", SelKind::Text),
    ("warehouseConditions", SelKind::IntList),
    ("material", SelKind::Any),
    ("type", SelKind::Any),
    ("manufacturer", SelKind::Any),
    ("brand", SelKind::Any),
    ("productGroup", SelKind::Any),
    ("model", SelKind::Any),
    ("color", SelKind::Any),
    ("size", SelKind::Any),
    ("unitType", SelKind::Any),
    ("scent", SelKind::Any),
    ("itemForm", SelKind::Any),
    ("pattern", SelKind::Any),
    ("style", SelKind::Any),
    ("itemTypeKeyword", SelKind::Any),
    ("targetAudienceKeyword", SelKind::Any),
    ("edition", SelKind::Any),
    ("format", SelKind::Any),
    ("author", SelKind::Any),
    ("binding", SelKind::Any),
    ("languages", SelKind::Any),
    ("brandStoreName", SelKind::Any),
    ("brandStoreUrlName", SelKind::Any),
    ("websiteDisplayGroup", SelKind::Any),
    ("websiteDisplayGroupName", SelKind::Any),
    ("salesRankDisplayGroup", SelKind::Any),
];

fn domain_from(v: &parse::Value<'_>) -> Option<Domain> {
    match v.get_ref() {
        DeValue::String(s) => Domain::parse(s).ok(),
        other => parse::int_of(other).and_then(|n| Domain::try_from(n).ok()),
    }
}

const DOMAIN_HELP: &str = "must be a marketplace: \"com\", \"co.uk\", \"de\", \"fr\", \"co.jp\", \"ca\", \"it\", \"es\", \"in\", \"com.mx\", \"com.br\" or its id 1-6, 8-12";

pub(super) fn read_domain(top: &Table<'_, '_>) -> Result<Option<Domain>, ConfigError> {
    let Some(v) = top.get("domain") else {
        return Ok(None);
    };
    if !matches!(v.get_ref(), DeValue::String(_) | DeValue::Integer(_)) {
        return Err(top.wrong_type("domain", v, "a string like \"com\" or an id"));
    }
    domain_from(v)
        .map(Some)
        .ok_or_else(|| top.bad_value("domain", v, DOMAIN_HELP))
}

pub(super) fn read_selection(
    top: &Table<'_, '_>,
    domain: Option<Domain>,
) -> Result<(Domain, DealSelection), ConfigError> {
    let Some(sel) = top.table("selection")? else {
        let domain = domain.unwrap_or(Domain::Com);
        if domain != Domain::Com {
            let at = top.get("domain").map_or(0, |v| v.span().start);
            return Err(ConfigError::MissingKey {
                at: top.doc.loc(at),
                key: "selection".into(),
                table: top.display_name(),
                hint: "the built-in selection is for amazon.com books; write a [selection] for this marketplace".into(),
            });
        }
        return Ok((domain, default_config_checked()?.selection));
    };
    let names: Vec<&str> = SELECTION_KEYS.iter().map(|(k, _)| *k).collect();
    sel.check_keys(&names)?;
    if sel.get("priceTypes").is_none() {
        return Err(ConfigError::MissingKey {
            at: sel.at(),
            key: "priceTypes".into(),
            table: sel.display_name(),
            hint: "the deal feed needs exactly one price type, e.g. priceTypes = [2] (USED)".into(),
        });
    }
    let mut domain = domain;
    let mut obj = serde_json::Map::new();
    for (key, _) in sel.keys() {
        let Some(v) = sel.get(key) else { continue };
        let kind = SELECTION_KEYS
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(SelKind::Any, |(_, kind)| *kind);
        match key {
            "page" | "sortType" => {
                return Err(sel.bad_value(
                    key,
                    v,
                    "is chosen by the jobs (backfill pages through, refresh reads newest first); remove it",
                ))
            }
            "domainId" => {
                let Some(d) = domain_from(v) else {
                    return Err(sel.bad_value(key, v, DOMAIN_HELP));
                };
                match domain {
                    Some(top_d) if top_d != d => {
                        return Err(sel.bad_value(
                            key,
                            v,
                            format!(
                                "{} contradicts domain = {}; set the marketplace once, with the top-level `domain`",
                                d.id(),
                                top_d.id()
                            ),
                        ))
                    }
                    _ => domain = Some(d),
                }
                continue;
            }
            _ => {}
        }
        check_selection_shape(&sel, key, v, kind)?;
        let json = parse::to_json(v).map_err(|span| ConfigError::WrongType {
            at: sel.doc.loc(span.start),
            key: sel.path(key),
            expected: "a value JSON can carry (no datetimes, no inf/nan)".into(),
            found: "a value without a JSON form".into(),
        })?;
        obj.insert(key.to_string(), json);
    }
    let domain = domain.unwrap_or(Domain::Com);
    obj.insert("domainId".into(), serde_json::Value::from(domain.id()));
    obj.insert("page".into(), serde_json::Value::from(0));
    let selection: DealSelection =
        serde_json::from_value(serde_json::Value::Object(obj)).map_err(|e| {
            ConfigError::BadValue {
                at: sel.at(),
                key: "selection".into(),
                message: e.to_string(),
            }
        })?;
    if let Err(source) = selection.build() {
        let at = sel
            .get(source.param)
            .map_or_else(|| sel.at(), |v| sel.doc.loc(v.span().start));
        return Err(ConfigError::InvalidSelection { at, source });
    }
    Ok((domain, selection))
}

fn check_selection_shape(
    sel: &Table<'_, '_>,
    key: &str,
    v: &parse::Value<'_>,
    kind: SelKind,
) -> Result<(), ConfigError> {
    let is_int = |x: &DeValue<'_>| parse::int_of(x).is_some();
    let ints = |x: &DeValue<'_>| match x {
        DeValue::Array(a) => a.iter().all(|i| is_int(i.get_ref())),
        _ => false,
    };
    let (ok, expected) = match kind {
        SelKind::Int => (is_int(v.get_ref()), "an integer"),
        SelKind::Bool => (v.get_ref().is_bool(), "true or false"),
        SelKind::Text => (v.get_ref().is_str(), "a string"),
        SelKind::IntList => (ints(v.get_ref()), "an array of integers"),
        SelKind::Range => (
            ints(v.get_ref()) && v.get_ref().as_array().is_some_and(|a| a.len() == 2),
            "[min, max] (two integers)",
        ),
        SelKind::Any => (true, ""),
    };
    if ok {
        return Ok(());
    }
    // Point at the first offending element of an array when there is one.
    let at = match v.get_ref() {
        DeValue::Array(a) => a
            .iter()
            .find(|i| !is_int(i.get_ref()))
            .map_or(v.span().start, |i| i.span().start),
        _ => v.span().start,
    };
    let found = match v.get_ref() {
        DeValue::Array(a) => match a.iter().find(|i| !is_int(i.get_ref())) {
            Some(i) => format!("an array holding {}", parse::type_name(i.get_ref())),
            None => format!("an array of {}", a.len()),
        },
        other => parse::type_name(other).to_string(),
    };
    Err(ConfigError::WrongType {
        at: sel.doc.loc(at),
        key: sel.path(key),
        expected: expected.into(),
        found,
    })
}
