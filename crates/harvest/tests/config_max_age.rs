//! `max_age` on the product stages and the re-check: Keepa's `update`, in
//! whole hours, "live" or "any"; absent means today's behaviour (nothing
//! sent); a bad value names `origin:line:col`.

use harvest::config::{MaxAge, RunConfig};

const STAGES: &str = "[pipeline.product_stats]\n[pipeline.product_offers]\n";

fn offers_age(value: &str) -> Result<Option<MaxAge>, String> {
    let text = format!("{STAGES}max_age = {value}\n");
    RunConfig::from_toml_str(&text, "config.toml")
        .map(|c| c.pipeline.product_offers.unwrap().max_age)
        .map_err(|e| e.to_string())
}

#[test]
fn absent_everywhere_by_default() {
    let c = RunConfig::default_config();
    assert_eq!(c.pipeline.product_stats.unwrap().max_age, None);
    assert_eq!(c.pipeline.product_offers.unwrap().max_age, None);
    assert_eq!(c.recheck.max_age, None);
}

#[test]
fn hours_live_and_any_set_update() {
    for (value, age, update) in [
        ("\"24h\"", MaxAge::Hours(24), 24),
        ("\"1h\"", MaxAge::Hours(1), 1),
        ("\"2d\"", MaxAge::Hours(48), 48),
        ("\"0\"", MaxAge::Live, 0),
        ("\"live\"", MaxAge::Live, 0),
        ("\"0h\"", MaxAge::Live, 0),
        ("\"any\"", MaxAge::Any, -1),
    ] {
        assert_eq!(offers_age(value), Ok(Some(age)), "{value}");
        assert_eq!(age.update(), update);
    }
    let text = "[pipeline.product_stats]\nmax_age = \"12h\"\n[recheck]\nmax_age = \"24h\"\n";
    let c = RunConfig::from_toml_str(text, "config.toml").unwrap();
    assert_eq!(
        c.pipeline.product_stats.unwrap().max_age,
        Some(MaxAge::Hours(12))
    );
    assert_eq!(c.recheck.max_age, Some(MaxAge::Hours(24)));
}

#[test]
fn bad_values_say_what_to_write_and_where() {
    let e = offers_age("\"90m\"").unwrap_err();
    assert!(
        e.starts_with("config.toml:3:11: pipeline.product_offers.max_age: \"90m\": Keepa counts `update` in whole hours"),
        "{e}"
    );
    let e = offers_age("\"a day\"").unwrap_err();
    assert!(
        e.contains("is not a duration") && e.contains("\"24h\""),
        "{e}"
    );
    let e = offers_age("24").unwrap_err();
    assert!(e.contains("a string") && e.contains("integer"), "{e}");
    let e = offers_age("\"400d\"").unwrap_err();
    assert!(
        e.contains("more than a year") && e.contains("\"any\""),
        "{e}"
    );
    let e = RunConfig::from_toml_str("[recheck]\nmax_ag = \"1h\"\n", "config.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("did you mean \"max_age\""), "{e}");
}

#[test]
fn the_max_age_example_is_the_default_with_a_day_on_offers_and_recheck() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/max-age-24h.toml"
    );
    let mut c = RunConfig::load(std::path::Path::new(path)).unwrap();
    let offers = c.pipeline.product_offers.as_mut().unwrap();
    assert_eq!(offers.max_age.take(), Some(MaxAge::Hours(24)));
    assert_eq!(c.recheck.max_age.take(), Some(MaxAge::Hours(24)));
    // The same as the built-in one otherwise (rules compared by text:
    // their origins name the file).
    let d = RunConfig::default_config();
    assert_eq!(
        (&c.selection, &c.recheck, &c.backfill, &c.refresh, &c.budget),
        (&d.selection, &d.recheck, &d.backfill, &d.refresh, &d.budget)
    );
    let texts = |c: &RunConfig| {
        let p = &c.pipeline;
        [
            p.deal_filter.as_ref().map(|s| &s.rules),
            p.product_stats.as_ref().map(|s| &s.rules.rules),
            p.product_offers.as_ref().map(|s| &s.rules.rules),
        ]
        .into_iter()
        .flatten()
        .flatten()
        .map(|r| r.text.clone())
        .collect::<Vec<_>>()
    };
    assert_eq!(texts(&c), texts(&d));
}
