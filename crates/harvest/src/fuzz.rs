//! Entry points for fuzzing, and for the no-panic tests that run in every
//! `cargo test`.
//!
//! Each function takes arbitrary bytes along the path a run takes: a feed
//! page or a product answer through the client's decoding, the model and
//! [`extract`] into rows and rule fields, then the rules of
//! the built-in pipeline; or a configuration file through
//! [`RunConfig::from_toml_str`]. They return nothing and never panic; the
//! cargo-fuzz targets in `fuzz/` at the repository root run them under
//! libFuzzer, and `tests/no_panic.rs` runs them on proptest-generated and
//! corpus inputs.
//!
//! ```
//! harvest::fuzz::config(b"[pipeline.deal_filter]\nrules = [\"current.used between $4 $80\"]\n");
//! harvest::fuzz::rule(b"sales_rank <= 2_000_000");
//! ```

use std::hint::black_box;

/// Hands `v` to the optimiser as used, so no accessor call is dropped.
fn keep<T>(v: T) {
    let _ = black_box(v);
}
use std::sync::OnceLock;

use keepa::client::{decode_answer, ApiKey};
use keepa::model::{DealResponse, ProductResponse};

use crate::config::{Fields, RunConfig, Stage, StageRules};
use crate::extract;

/// When the fuzzed answers "arrived" (Unix ms).
const NOW_MS: i64 = 1_700_000_000_000;

/// The built-in pipeline's rules, parsed once.
fn default_rules() -> &'static [StageRules] {
    static RULES: OnceLock<Vec<StageRules>> = OnceLock::new();
    RULES.get_or_init(|| {
        let p = RunConfig::default_config().pipeline;
        [
            p.deal_filter,
            p.product_stats.map(|s| s.rules),
            p.product_offers.map(|s| s.rules),
        ]
        .into_iter()
        .flatten()
        .collect()
    })
}

fn check_all(fields: &Fields) {
    for rules in default_rules() {
        keep(rules.check(fields).map_err(|f| f.to_string()));
    }
}

fn decode(data: &[u8]) -> Option<keepa::Response> {
    let key = ApiKey::new("FUZZKEY0123").ok()?;
    decode_answer(&key, 200, data.to_vec(), NOW_MS).ok()
}

/// A `/deal` answer (status 200, `data` the body) as the feed jobs read
/// it: every deal extracted for each price type's column, its fields
/// checked against the built-in rules; also through the model's own
/// accessors ([`keepa::fuzz::answer`]).
pub fn deal_feed(data: &[u8]) {
    keepa::fuzz::deal_body(data);
    let Some(resp) = decode(data) else { return };
    let Ok(page) = resp.parse::<DealResponse>() else {
        return;
    };
    for d in &page.deals.dr {
        for price_type in [0u8, 2, 18, 35, 36, 255] {
            if let Some(item) = extract::deal(d, 1, price_type, NOW_MS) {
                keep((&item.asin, item.time_ms, &item.row));
                check_all(&item.fields);
            }
        }
    }
}

/// A `/product` answer (status 200, `data` the body) as the stats and
/// offers stages read it: every product extracted at both stages, its
/// fields checked against the built-in rules.
pub fn product(data: &[u8]) {
    keepa::fuzz::product_body(data);
    let Some(resp) = decode(data) else { return };
    let Ok(parsed) = resp.parse::<ProductResponse>() else {
        return;
    };
    let consumed = resp.envelope.tokens_consumed.unwrap_or(0);
    let found = i64::try_from(parsed.products.len()).unwrap_or(i64::MAX);
    let share = if found > 0 { consumed / found } else { 0 };
    for p in &parsed.products {
        for stage in ["stats", "offers"] {
            let item = extract::product(p, 1, stage, NOW_MS, share);
            keep((&item.asin, &item.row));
            check_all(&item.fields);
        }
    }
}

/// A configuration file: TOML text (lossily decoded) into a validated
/// [`RunConfig`]; an accepted one has its selection built, its rules run
/// on empty fields, and is printed; a refused one has its message and
/// location printed.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    config_text(&text);
}

fn config_text(text: &str) {
    match RunConfig::from_toml_str(text, "fuzz.toml") {
        Ok(c) => {
            keep(format!("{c:?}"));
            keep(c.selection.build().map(|r| r.describe()));
            keep(c.policy_name());
            let empty = Fields::new();
            let p = &c.pipeline;
            for rules in [
                p.deal_filter.as_ref(),
                p.product_stats.as_ref().map(|s| &s.rules),
                p.product_offers.as_ref().map(|s| &s.rules),
            ]
            .into_iter()
            .flatten()
            {
                keep(rules.check(&empty).map_err(|f| f.to_string()));
                keep(rules.fields_used().count());
                for r in &rules.rules {
                    keep(r.to_string());
                }
            }
        }
        Err(e) => {
            keep((e.to_string(), e.location().map(ToString::to_string)));
        }
    }
}

/// One rule string (`"current.used between $4 $80"`), written into each
/// stage's `rules` of a configuration (as a TOML basic string, escaped),
/// then read as [`config`] reads a file.
pub fn rule(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let quoted = toml_basic_string(&text);
    // A [selection] of its own spares each document a parse of the
    // built-in configuration: the fuzzer's time goes to the rules.
    const SELECTION: &str = "[selection]\npriceTypes = [2]\n";
    for stage in [Stage::Deal, Stage::Stats, Stage::Offers] {
        let table = stage.table_name();
        config_text(&format!(
            "{SELECTION}[pipeline.{table}]\nrules = [{quoted}]\n"
        ));
    }
    // And as a table rule, the text as the operator and as the value.
    config_text(&format!(
        "{SELECTION}[pipeline.deal_filter]\nrules = [{{ field = \"current.used\", op = {quoted}, value = 5 }}]\n"
    ));
    config_text(&format!(
        "{SELECTION}[pipeline.deal_filter]\nrules = [{{ field = \"current.used\", op = \"between\", value = [{quoted}, \"$80\"] }}]\n"
    ));
}

/// `s` as a TOML basic string, every character that needs it escaped.
fn toml_basic_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_strings_reach_the_rule_parser() {
        let quoted = toml_basic_string("title contains a\\b\td\u{7f}");
        assert_eq!(quoted, "\"title contains a\\\\b\\u0009d\\u007F\"");
        let doc = format!("[pipeline.deal_filter]\nrules = [{quoted}]\n");
        let c = RunConfig::from_toml_str(&doc, "t").unwrap();
        let rules = c.pipeline.deal_filter.unwrap().rules;
        assert_eq!(
            rules[0].value,
            crate::config::RuleValue::Text("a\\b\td\u{7f}".into())
        );
        let quote = toml_basic_string("title == 'say \"hi\"'");
        let doc = format!("[pipeline.deal_filter]\nrules = [{quote}]\n");
        assert!(RunConfig::from_toml_str(&doc, "t").is_ok(), "{doc}");
        let ok = toml_basic_string("current.used between $4 $80");
        let doc = format!("[pipeline.deal_filter]\nrules = [{ok}]\n");
        assert!(RunConfig::from_toml_str(&doc, "t").is_ok());
    }
}
