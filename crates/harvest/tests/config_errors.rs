//! Every kind of config error names `origin:line:col`, what is wrong, and
//! for an unknown name the closest known one.

use harvest::config::{ExtraKind, RunConfig};

fn err(text: &str) -> String {
    match RunConfig::from_toml_str(text, "config.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => {
            assert!(e.location().is_some(), "{e}");
            e.to_string()
        }
    }
}

#[test]
fn unknown_top_level_key_suggests_the_closest() {
    assert_eq!(
        err("domain = \"com\"\ndomian = \"com\"\n"),
        "config.toml:2:1: unknown key \"domian\" in the top level; did you mean \"domain\"?"
    );
    assert_eq!(
        err("zzzzzz = 1\n"),
        "config.toml:1:1: unknown key \"zzzzzz\" in the top level"
    );
}

#[test]
fn unknown_keys_in_tables() {
    assert_eq!(
        err("[refresh]\nperiod = \"5m\"\n  maxdelay = \"1m\"\n"),
        "config.toml:3:3: unknown key \"maxdelay\" in [refresh]; did you mean \"max_delay\"?"
    );
    assert_eq!(
        err("[pipeline.product_stats]\nfersh_for = \"1h\"\n"),
        "config.toml:2:1: unknown key \"fersh_for\" in [pipeline.product_stats]; did you mean \"fresh_for\"?"
    );
    assert_eq!(
        err("[pipeline.deal_fliter]\n"),
        "config.toml:1:11: unknown key \"deal_fliter\" in [pipeline]; did you mean \"deal_filter\"?"
    );
    assert_eq!(
        err("[selection]\npricetypes = [2]\n"),
        "config.toml:2:1: unknown key \"pricetypes\" in [selection]; did you mean \"priceTypes\"?"
    );
    assert_eq!(
        err("[budget.seed_rules]\ndeficit_treshold = 5\n"),
        "config.toml:2:1: unknown key \"deficit_treshold\" in [budget.seed_rules]; did you mean \"deficit_threshold\"?"
    );
}

#[test]
fn the_cli_keys_share_the_file() {
    let text = "base_url = \"http://127.0.0.1:1\"\nkey_file = \"k\"\ntimeout = \"60s\"\nconnect_timeout = \"5s\"\n";
    let cli_keys = [
        ("base_url", ExtraKind::Text),
        ("key_file", ExtraKind::Text),
        ("timeout", ExtraKind::Duration),
        ("connect_timeout", ExtraKind::Duration),
    ];
    let (c, extras) = RunConfig::from_toml_str_with(text, "config.toml", &cli_keys).unwrap();
    assert_eq!(c, RunConfig::default_config());
    assert_eq!(
        extras.duration("timeout"),
        Some(std::time::Duration::from_secs(60))
    );
    // Unnamed, they are unknown here: the run owns only its own keys.
    assert_eq!(
        err(text),
        "config.toml:1:1: unknown key \"base_url\" in the top level"
    );
    // A caller's key of the wrong type, or a typo of one, is located.
    let typed = RunConfig::from_toml_str_with("timeout = \"soon\"\n", "config.toml", &cli_keys);
    assert!(typed
        .unwrap_err()
        .to_string()
        .starts_with("config.toml:1:11: timeout: \"soon\" is not a duration"),);
    let typo = RunConfig::from_toml_str_with("key_fil = \"k\"\n", "config.toml", &cli_keys);
    assert_eq!(
        typo.unwrap_err().to_string(),
        "config.toml:1:1: unknown key \"key_fil\" in the top level; did you mean \"key_file\"?"
    );
}

#[test]
fn unknown_rule_field_points_into_the_string() {
    let text = "[pipeline.deal_filter]\nrules = [\n  \"current.used >= 400\",\n  \"curent.used <= 8000\",\n]\n";
    assert_eq!(
        err(text),
        "config.toml:4:4: unknown field \"curent.used\" in rule; did you mean \"current.used\"?"
    );
    // the same in a rule table
    let text =
        "[pipeline.deal_filter]\nrules = [{ field = \"sales_rnk\", op = \"<\", value = 5 }]\n";
    assert_eq!(
        err(text),
        "config.toml:2:20: unknown field \"sales_rnk\" in rule; did you mean \"sales_rank\"?"
    );
}

#[test]
fn a_later_stage_field_is_refused() {
    let text = "[pipeline.product_stats]\nrules = [\"offers.lowest_used <= 6000\"]\n";
    assert_eq!(
        err(text),
        "config.toml:2:11: field \"offers.lowest_used\" is only known at the product_offers stage, which runs after product_stats; move the rule to [pipeline.product_offers]"
    );
    let text = "[pipeline.deal_filter]\nrules = [\"stats.monthly_sold > 5\"]\n";
    assert!(err(text).starts_with(
        "config.toml:2:11: field \"stats.monthly_sold\" is only known at the product_stats stage"
    ));
    // earlier stages' fields are fine
    let ok = "[pipeline.product_offers]\nrules = [\"current.used <= 5\", \"stats.monthly_sold > 5\", \"offers.count_used >= 1\"]\n";
    RunConfig::from_toml_str(ok, "config.toml").unwrap();
}

#[test]
fn bad_durations() {
    assert_eq!(
        err("[refresh]\nperiod = 300\n"),
        "config.toml:2:10: refresh.period must be a duration string like \"5m\", \"12h\" or \"7d\", found an integer"
    );
    let e = err("[recheck]\nolder_than = \"a day\"\n");
    assert!(
        e.starts_with("config.toml:2:14: recheck.older_than: \"a day\" is not a duration"),
        "{e}"
    );
    assert_eq!(
        err("[refresh]\nmax_delay = \"0s\"\n"),
        "config.toml:2:13: refresh.max_delay: must be longer than zero"
    );
}

#[test]
fn offers_outside_20_to_100() {
    assert_eq!(
        err("[pipeline.product_offers]\noffers = 10\n"),
        "config.toml:2:10: pipeline.product_offers.offers: 10 is out of range: must be between 20 and 100"
    );
    assert!(err("[pipeline.product_offers]\noffers = 101\n").contains("101 is out of range"));
    assert_eq!(
        err("[pipeline.product_offers]\noffers = \"20\"\n"),
        "config.toml:2:10: pipeline.product_offers.offers must be an integer, found a string"
    );
}

#[test]
fn unknown_policy() {
    assert_eq!(
        err("[budget]\npolicy = \"wait-for-mx\"\n"),
        "config.toml:2:10: unknown policy \"wait-for-mx\"; did you mean \"wait-for-max\"? (known: flow, controlled-deficit, wait-for-max)"
    );
    assert_eq!(
        err("[budget]\npolicy = \"wait-for-max\"\ndeficit_floor = -100\n"),
        "config.toml:3:17: budget.deficit_floor: applies to the flow policy only"
    );
}

#[test]
fn type_mismatches_in_rules() {
    assert_eq!(
        err("[pipeline.deal_filter]\nrules = [\"current.used <= cheap\"]\n"),
        "config.toml:2:27: bad rule \"current.used <= cheap\": \"cheap\" is not a price (write cents as an integer, 8000, or currency units as \"$80\" or \"80.00\")"
    );
    assert_eq!(
        err("[pipeline.deal_filter]\nrules = [{ field = \"title\", op = \"contains\", value = 5 }]\n"),
        "config.toml:2:54: pipeline.deal_filter.rules.value must be a string (text field), found an integer"
    );
    let e = err("[pipeline.deal_filter]\nrules = [\"title >= abc\"]\n");
    assert!(
        e.starts_with(
            "config.toml:2:17: bad rule \"title >= abc\": `>=` does not apply to a text field"
        ),
        "{e}"
    );
    let e = err("[pipeline.deal_filter]\nrules = [\"sales_rank contains 5\"]\n");
    assert!(e.contains("`contains` applies to text fields only"), "{e}");
    assert_eq!(
        err("[pipeline.deal_filter]\nrules = \"sales_rank < 5\"\n"),
        "config.toml:2:9: pipeline.deal_filter.rules must be an array of rules like [\"current.used <= 8000\"], found a string"
    );
    let e = err("[pipeline.deal_filter]\nrules = [\"current.used =< 5\"]\n");
    assert!(e.starts_with("config.toml:2:24: bad rule \"current.used =< 5\": unknown operator \"=<\"; did you mean"), "{e}");
}

#[test]
fn between_needs_two_values() {
    assert_eq!(
        err("[pipeline.deal_filter]\nrules = [\"current.used between 400\"]\n"),
        "config.toml:2:35: bad rule \"current.used between 400\": `between` needs exactly two values, LOW and HIGH (e.g. \"current.used between 400 8000\"); got 1"
    );
    assert!(
        err("[pipeline.deal_filter]\nrules = [\"current.used between 400 300\"]\n")
            .contains("LOW <= HIGH")
    );
    assert!(err(
        "[pipeline.deal_filter]\nrules = [{ field = \"current.used\", op = \"between\", value = [1] }]\n"
    )
    .contains("`between` needs exactly two values: value = [LOW, HIGH]"));
}

#[test]
fn invalid_selection_points_at_its_key_or_header() {
    assert_eq!(
        err("[selection]\npriceTypes = [2, 3]\n"),
        "config.toml:2:14: invalid [selection]: priceTypes=[2, 3]: must hold exactly one price type"
    );
    assert_eq!(
        err("[selection]\npriceTypes = [2]\ndateRange = 7\n"),
        "config.toml:3:13: invalid [selection]: dateRange=7: must be 0 (24 h), 1 (7 d), 2 (31 d) or 3 (90 d)"
    );
    assert_eq!(
        err("\n[selection]\ndateRange = 1\n"),
        "config.toml:2:1: missing \"priceTypes\" in [selection]: the deal feed needs exactly one price type, e.g. priceTypes = [2] (USED)"
    );
    assert_eq!(
        err("[selection]\npriceTypes = [2]\nincludeCategories = [\"283155\"]\n"),
        "config.toml:3:22: selection.includeCategories must be an array of integers, found an array holding a string"
    );
    let e = err("[selection]\npriceTypes = [2]\nsortType = 4\n");
    assert!(
        e.starts_with("config.toml:3:12: selection.sortType: is chosen by the jobs"),
        "{e}"
    );
    let e = err("domain = \"de\"\n[selection]\npriceTypes = [2]\ndomainId = 1\n");
    assert!(
        e.starts_with("config.toml:4:12: selection.domainId: 1 contradicts domain = 3"),
        "{e}"
    );
    // another marketplace needs its own selection
    let e = err("domain = \"de\"\n");
    assert!(
        e.starts_with("config.toml:1:10: missing \"selection\""),
        "{e}"
    );
}

#[test]
fn other_values() {
    assert!(err("domain = \"xx\"\n").starts_with("config.toml:1:10: domain: must be a marketplace"));
    // `metrics_addr`, `ledger`, `db`, `key`: the command line's keys, checked
    // there (crates/cli/src/config/tests.rs).
    assert_eq!(
        err("[backfill]\nmax_pages = 100\n"),
        "config.toml:2:13: backfill.max_pages: 100 is out of range: must be between 1 and 67"
    );
    assert_eq!(
        err("a = [\n"),
        "config.toml:1:6: invalid TOML: unclosed array, expected `]`"
    );
    assert_eq!(
        err("[refresh]\nenabled = \"yes\"\n"),
        "config.toml:2:11: refresh.enabled must be true or false, found a string"
    );
}

#[test]
fn no_panic_on_odd_input() {
    let odd = [
        "",
        "\u{feff}",
        "[selection]\npriceTypes = [99999999999999999999]\n",
        "[selection]\npriceTypes = [2]\ncurrentRange = [1, 2, 3]\n",
        "[selection]\npriceTypes = [2]\nbrand = 1979-05-27T07:32:00Z\n",
        "[selection]\npriceTypes = [2]\nbrand = inf\n",
        "[pipeline.deal_filter]\nrules = [\"\"]\n",
        "[pipeline.deal_filter]\nrules = [\"é\"]\n",
        "[pipeline.deal_filter]\nrules = [\"title == \\\"é\"]\n",
        "[pipeline.deal_filter]\nrules = [\"\"\"\ncurrent.used\n<= 5\"\"\"]\n",
        "[pipeline.deal_filter]\nrules = [\"current.used <= $99999999999999999\"]\n",
        "[pipeline.deal_filter]\nrules = [1, true]\n",
        "[[pipeline]]\n",
        "pipeline = 5\n",
        "[budget.seed_rules]\nwait_for_max_fraction = nan\n",
    ];
    for text in odd {
        let _ = RunConfig::from_toml_str(text, "config.toml");
    }
}

#[test]
fn keep_raw_deals_is_a_boolean_and_a_typo_is_caught() {
    let on = RunConfig::from_toml_str("keep_raw_deals = true\n", "config.toml").unwrap();
    assert!(on.keep_raw_deals);
    assert!(!RunConfig::default_config().keep_raw_deals);
    assert_eq!(
        err("keep_raw_deals = 1\n"),
        "config.toml:1:18: keep_raw_deals must be true or false, found an integer"
    );
    assert_eq!(
        err("keep_raw_deal = true\n"),
        "config.toml:1:1: unknown key \"keep_raw_deal\" in the top level; did you mean \"keep_raw_deals\"?"
    );
}

#[test]
fn keep_history_is_a_boolean_off_by_default_and_a_typo_is_caught() {
    let on = RunConfig::from_toml_str("keep_history = true\n", "config.toml").unwrap();
    assert!(on.keep_history);
    assert!(!RunConfig::default_config().keep_history);
    assert_eq!(
        err("keep_history = \"yes\"\n"),
        "config.toml:1:16: keep_history must be true or false, found a string"
    );
    assert_eq!(
        err("keep_histories = true\n"),
        "config.toml:1:1: unknown key \"keep_histories\" in the top level; did you mean \"keep_history\"?"
    );
}
