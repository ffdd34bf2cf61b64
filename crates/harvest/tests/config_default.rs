//! The built-in configuration, loading from a file, and the key's secrecy.

use std::time::Duration;

use harvest::config::{
    ExtraKind, FieldKind, RunConfig, DEAL_FIELDS, DEFAULT_CONFIG_TOML, OFFERS_FIELDS, STATS_FIELDS,
};
use keepa::Domain;

#[test]
fn the_default_config_validates_and_has_all_three_stages() {
    let c = RunConfig::default_config();
    assert_eq!(
        c,
        RunConfig::from_toml_str(DEFAULT_CONFIG_TOML, harvest::config::DEFAULT_ORIGIN).unwrap()
    );
    assert_eq!(c.domain, Domain::Com);
    assert_eq!(c.selection.domain_id, Domain::Com);
    assert_eq!(c.selection.price_types, vec![2]);
    assert_eq!(c.selection.date_range, Some(1));
    assert_eq!(c.selection.include_categories, Some(vec![283155]));
    c.selection.build().unwrap();

    let deal = c.pipeline.deal_filter.as_ref().unwrap();
    let stats = c.pipeline.product_stats.as_ref().unwrap();
    let offers = c.pipeline.product_offers.as_ref().unwrap();
    assert!(deal.rules.iter().any(|r| r.field == "current.used"));
    assert!(deal
        .rules
        .iter()
        .any(|r| r.field == "delta_percent.used.month"));
    assert!(deal.rules.iter().any(|r| r.field == "sales_rank"));
    assert!(stats
        .rules
        .rules
        .iter()
        .any(|r| r.field == "stats.sales_rank_drops30"));
    assert!(offers
        .rules
        .rules
        .iter()
        .any(|r| r.field == "offers.lowest_used"));
    assert_eq!(stats.stats_days, 180);
    assert_eq!(stats.fresh_for, Duration::from_secs(12 * 3600));
    assert_eq!(stats.rejection_ttl, Duration::from_secs(7 * 86400));
    assert_eq!(stats.rules.rejection_ttl, stats.rejection_ttl);
    assert_eq!(offers.offers, 20);
    assert_eq!(c.policy_name(), "flow");
    assert!(c.backfill.enabled && c.refresh.enabled && c.recheck.enabled);
    assert_eq!(c.refresh.period, Duration::from_secs(300));
    assert_eq!(c.refresh.max_delay, Duration::from_secs(120));
    assert_eq!(c.recheck.older_than, Duration::from_secs(86400));
    // rule origins name the default and a line
    assert!(
        deal.rules[0].origin.starts_with("<default config>:"),
        "{}",
        deal.rules[0].origin
    );
}

#[test]
fn an_empty_file_means_the_defaults() {
    assert_eq!(
        RunConfig::from_toml_str("", "c.toml").unwrap(),
        RunConfig::default_config()
    );
}

#[test]
fn a_full_custom_config() {
    let text = r#"
domain = 1
db = "harvest.db"
ledger = "memory"
metrics_addr = "127.0.0.1:9100"

[selection]
priceTypes = [2]
dateRange = 2
includeCategories = [283155]
salesRankRange = [1, -1]
mustHaveAmazonOffer = false

[pipeline.deal_filter]
rules = [
  { field = "current.used", op = "between", value = ["$4", 8000] },
  { field = "title", op = "contains", value = "guide" },
]

[pipeline.product_stats]
enabled = false

[pipeline.product_offers]
offers = 40
rules = ["offers.lowest_used <= 60.00"]
fresh_for = "6h"

[budget]
policy = "controlled-deficit"
[budget.seed_rules]
deficit_threshold = 80
deficit_resume = 90

[backfill]
target_deals = 500
max_pages = 10

[refresh]
enabled = false
"#;
    // `db`, `ledger`, `metrics_addr` are the command line's: handed back
    // as they are written (their checks: crates/cli/src/config/tests.rs).
    let ours = [
        ("db", ExtraKind::Text),
        ("ledger", ExtraKind::Text),
        ("metrics_addr", ExtraKind::Text),
    ];
    let (c, extras) = RunConfig::from_toml_str_with(text, "c.toml", &ours).unwrap();
    assert_eq!(extras.text("db"), Some("harvest.db"));
    assert_eq!(extras.text("metrics_addr"), Some("127.0.0.1:9100"));
    assert_eq!(extras.location("ledger").to_string(), "c.toml:4:10");
    assert_eq!(c.selection.sales_rank_range, Some([1, -1]));
    assert_eq!(
        c.selection.extra.get("mustHaveAmazonOffer"),
        Some(&serde_json::json!(false))
    );
    let deal = c.pipeline.deal_filter.clone().unwrap();
    assert_eq!(deal.rules[0].text, "current.used between 400 8000");
    assert_eq!(deal.rules[1].text, "title contains \"guide\"");
    assert!(c.pipeline.product_stats.is_none());
    let offers = c.pipeline.product_offers.clone().unwrap();
    assert_eq!(offers.offers, 40);
    assert_eq!(offers.fresh_for, Duration::from_secs(6 * 3600));
    assert_eq!(
        offers.rules.rules[0].value,
        harvest::config::RuleValue::Int(6000)
    );
    assert_eq!(c.policy_name(), "controlled-deficit");
    match c.budget.policy {
        budget::PolicyKind::ControlledDeficit(p) => {
            assert_eq!(p.rules.deficit_threshold, 80);
            assert_eq!(p.rules.deficit_resume, 90);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.backfill.target_deals, Some(500));
    assert_eq!(c.backfill.max_pages, Some(10));
    assert!(!c.refresh.enabled);
}

#[test]
fn a_present_pipeline_holds_only_the_stages_it_lists() {
    let c = RunConfig::from_toml_str(
        "[pipeline.product_stats]\nrules = [\"stats.monthly_sold >= 10\"]\n",
        "c.toml",
    )
    .unwrap();
    assert!(c.pipeline.deal_filter.is_none());
    assert!(c.pipeline.product_offers.is_none());
    assert_eq!(c.pipeline.product_stats.unwrap().rules.rules.len(), 1);
}

#[test]
fn a_callers_values_are_not_printed() {
    let (_, extras) = RunConfig::from_toml_str_with(
        "key = \"abcdef0123456789\"\n",
        "c.toml",
        &[("key", ExtraKind::Text)],
    )
    .unwrap();
    assert_eq!(extras.text("key"), Some("abcdef0123456789"));
    let printed = format!("{extras:?}");
    assert!(!printed.contains("abcdef0123456789"), "{printed}");
    assert!(printed.contains("c.toml:1:7"), "{printed}");
}

#[test]
fn load_reads_a_file_and_names_it() {
    let dir = std::env::temp_dir().join(format!("harvest-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(&path, "[refresh]\nperiod = \"1m\"\n").unwrap();
    let c = RunConfig::load(&path).unwrap();
    assert_eq!(c.refresh.period, Duration::from_secs(60));
    std::fs::write(&path, "\n[refresh]\nperoid = \"1m\"\n").unwrap();
    let e = RunConfig::load(&path).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}:3:1: unknown key \"peroid\"", path.display())),
        "{e}"
    );
    let missing = RunConfig::load(&dir.join("nope.toml")).unwrap_err();
    assert!(missing.to_string().contains("cannot read the config file"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn field_tables_are_consistent() {
    for f in DEAL_FIELDS.iter().chain(STATS_FIELDS).chain(OFFERS_FIELDS) {
        assert!(!f.help.is_empty(), "{}", f.name);
        if f.name.starts_with("delta_percent.") {
            assert_eq!(f.kind, FieldKind::Percent);
        }
        if f.name.ends_with("sales_rank") || f.name.contains("count") {
            assert_eq!(f.kind, FieldKind::Int, "{}", f.name);
        }
    }
    assert_eq!(DEAL_FIELDS[0].kind, FieldKind::Text);
}
