//! Arbitrary and mutated input never panics the run's readers: the same
//! entry points as the fuzz targets (`harvest::fuzz`) on proptest-generated
//! configuration text, rule strings and Keepa-shaped answers, and on every
//! input kept in `fuzz/seeds/` (plus the crashes in `fuzz/artifacts/`,
//! when a local fuzzing run left some). A cheap safety net in every
//! `cargo test`; the long search is `.ci/fuzz`.

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{json, Value};

/// Words a rule string is made of.
const RULE_WORDS: &[&str] = &[
    "current.used",
    "current.new",
    "title",
    "sales_rank",
    "delta_percent.used.month",
    "stats.avg90.used",
    "stats.sales_rank_drops30",
    "offers.lowest_used",
    "offers.lowest_used_condition",
    "avg.buy_box.quarter",
    "root_category",
    "<",
    "<=",
    ">",
    ">=",
    "==",
    "=",
    "!=",
    "=<",
    "between",
    "BETWEEN",
    "and",
    "contains",
    "$4",
    "$80",
    "$.99",
    "80.00",
    "$1.234",
    "8000",
    "2_000_000",
    "_1",
    "20%",
    "-",
    "-$1",
    "$-3",
    "99999999999999999999",
    "-9223372036854775808",
    "9223372036854775807",
    "$92233720368547758.07",
    "é",
    "\"",
    "'",
    "\"a b\"",
    "'x",
    "",
    " ",
    "\t",
];

/// Top-level and table keys, with values of every TOML type.
const CONFIG_LINES: &[&str] = &[
    "domain = \"com\"",
    "domain = 7",
    "domain = \"xx\"",
    "domain = 1.5",
    "domain = \"co.uk\"",
    "db = \"\"",
    "db = \"x.db\"",
    "ledger = \"redis://h\"",
    "ledger = \"mem\"",
    "metrics_addr = \"127.0.0.1:9100\"",
    "metrics_addr = \"x\"",
    "keep_raw_deals = true",
    "keep_history = true",
    "key = \"k e y\"",
    "key = \"\"",
    "domian = 1",
    "[selection]",
    "priceTypes = [2]",
    "priceTypes = []",
    "priceTypes = [2, 0]",
    "priceTypes = [99999999999999999999]",
    "dateRange = -9223372036854775808",
    "currentRange = [5, 1]",
    "salesRankRange = [1, -1]",
    "minRating = 51",
    "warehouseConditions = [0]",
    "page = 1",
    "sortType = 1",
    "domainId = 3",
    "brand = 1979-05-27T07:32:00Z",
    "brand = nan",
    "isLowest = \"yes\"",
    "titleSearch = 5",
    "includeCategories = [283155, -1]",
    "[pipeline]",
    "[pipeline.deal_filter]",
    "[pipeline.product_stats]",
    "[pipeline.product_offers]",
    "enabled = false",
    "rules = []",
    "rules = [\"current.used between $4 $80\"]",
    "rules = [1]",
    "rules = [{ field = \"current.used\", op = \"between\", value = [\"$9\", 5] }]",
    "rules = [{ field = \"title\", op = \"contains\", value = 5 }]",
    "rules = [{ op = \"<\" }]",
    "stats_days = 0",
    "stats_days = 3651",
    "offers = 19",
    "offers = 101",
    "offers = 20",
    "fresh_for = \"0s\"",
    "fresh_for = \"5 fortnights\"",
    "rejection_ttl = \"99999999999999999999d\"",
    "[budget]",
    "policy = \"flow\"",
    "policy = \"flwo\"",
    "policy = \"wait-for-max\"",
    "deficit_floor = 5",
    "deficit_floor = -9223372036854775808",
    "finish_line = 1",
    "[budget.seed_rules]",
    "wait_for_max_fraction = 0",
    "wait_for_max_fraction = 1e308",
    "deficit_threshold = 50",
    "[backfill]",
    "target_deals = 0",
    "max_pages = 68",
    "[refresh]",
    "period = \"5m\"",
    "max_delay = 5",
    "[recheck]",
    "older_than = \"\"",
    "[[selection]]",
    "x = ",
    "= 1",
    "[",
    "\"",
    "a.b.c = 1",
    "\u{feff}",
];

fn rule_string() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(RULE_WORDS), 0..7).prop_map(|w| w.join(" "))
}

fn config_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(CONFIG_LINES).prop_map(str::to_string),
            1 => rule_string().prop_map(|r| format!("rules = [{r:?}]")),
            1 => "\\PC{0,20}",
        ],
        0..14,
    )
    .prop_map(|lines| lines.join("\n"))
}

fn extreme() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(i64::MIN)),
        Just(json!(i64::MAX)),
        Just(json!(-1)),
        Just(json!(-2)),
        Just(json!(null)),
        Just(json!(1e300)),
        Just(json!("-1")),
        (-10i64..10_000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
    ]
}

fn int_array() -> impl Strategy<Value = Value> {
    prop::collection::vec(extreme(), 0..40).prop_map(Value::Array)
}

/// A deal with every field the extractor reads, each extreme or short.
fn deal() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just("B000000001".to_string()), "\\PC{0,24}"],
        int_array(),
        prop::collection::vec(int_array(), 0..40),
        prop::collection::vec(int_array(), 0..6),
        (extreme(), extreme(), extreme()),
    )
        .prop_map(|(asin, current, avg, delta, (created, updated, root))| {
            json!({
                "asin": asin, "title": "t", "rootCat": root, "current": current,
                "avg": avg, "delta": delta.clone(), "deltaPercent": delta,
                "creationDate": created, "lastUpdate": updated,
            })
        })
}

/// A product with stats, offers and histories, each extreme or short.
fn product() -> impl Strategy<Value = Value> {
    (
        (int_array(), int_array(), int_array()),
        (extreme(), extreme(), extreme(), extreme()),
        prop::collection::vec((extreme(), int_array()), 0..4),
        int_array(),
        prop::collection::vec(prop::option::of(int_array()), 0..37),
    )
        .prop_map(
            |((cur, avg, drops), (update, sold, fba, cond), offers, order, csv)| {
                let offers: Vec<Value> = offers
                    .into_iter()
                    .map(|(c, csv)| json!({ "condition": c, "offerCSV": csv, "sellerId": "S" }))
                    .collect();
                json!({
                    "asin": "B000000001", "lastUpdate": update, "monthlySold": sold, "csv": csv,
                    "stats": { "current": cur, "avg30": avg.clone(), "avg90": avg.clone(),
                               "avg180": avg, "salesRankDrops30": drops, "offerCountFBA": fba,
                               "buyBoxShipping": cond },
                    "offers": offers, "liveOffersOrder": order,
                })
            },
        )
}

proptest! {
    #[test]
    fn config_text_never_panics(text in config_text()) {
        harvest::fuzz::config(text.as_bytes());
    }

    #[test]
    fn arbitrary_config_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
        harvest::fuzz::config(&data);
        harvest::fuzz::rule(&data);
    }

    #[test]
    fn rule_strings_never_panic(rule in rule_string()) {
        harvest::fuzz::rule(rule.as_bytes());
    }

    #[test]
    fn deal_pages_never_panic(deals in prop::collection::vec(deal(), 0..4), left in extreme()) {
        let body = json!({ "tokensLeft": left, "deals": { "dr": deals } });
        harvest::fuzz::deal_feed(body.to_string().as_bytes());
    }

    #[test]
    fn product_answers_never_panic(
        products in prop::collection::vec(product(), 0..3),
        consumed in extreme(),
    ) {
        let body = json!({ "tokensConsumed": consumed, "products": products });
        harvest::fuzz::product(body.to_string().as_bytes());
    }
}

#[test]
fn every_kept_fuzz_input_replays_without_panic() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut replayed = 0;
    // A local fuzz/corpus is left out: after a long fuzzing run it holds
    // far too many inputs for every `cargo test`; its crashes are in
    // fuzz/artifacts.
    for kind in ["seeds", "artifacts"] {
        for (target, run) in [
            ("deal", harvest::fuzz::deal_feed as fn(&[u8])),
            ("product", harvest::fuzz::product),
            ("config", harvest::fuzz::config),
            ("rule", harvest::fuzz::rule),
        ] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Ok(data) = std::fs::read(entry.path()) {
                    run(&data);
                    replayed += 1;
                }
            }
        }
    }
    assert!(
        replayed >= 10,
        "the seed corpus in fuzz/seeds is missing: {replayed} inputs"
    );
}
