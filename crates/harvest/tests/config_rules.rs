//! Rule evaluation through a parsed configuration.

use harvest::config::{FieldValue, Fields, Op, RunConfig, StageRules};

fn deal_rules(rules: &[&str]) -> StageRules {
    let list: Vec<String> = rules.iter().map(|r| format!("{r:?}")).collect();
    let text = format!("[pipeline.deal_filter]\nrules = [{}]\n", list.join(", "));
    RunConfig::from_toml_str(&text, "config.toml")
        .unwrap()
        .pipeline
        .deal_filter
        .unwrap()
}

fn fields() -> Fields {
    let mut f = Fields::default();
    f.insert("current.used", FieldValue::Int(1250));
    f.insert("sales_rank", FieldValue::Int(150_000));
    f.insert("delta_percent.used.month", FieldValue::Int(35));
    f.insert(
        "title",
        FieldValue::Text("Organic Chemistry: Study Guide".into()),
    );
    f
}

#[test]
fn each_op() {
    let f = fields();
    for (rule, op, holds) in [
        ("current.used < $12.50", Op::Lt, false),
        ("current.used < 1251", Op::Lt, true),
        ("current.used <= 12.50", Op::Le, true),
        ("current.used > 1250", Op::Gt, false),
        ("current.used >= $12.5", Op::Ge, true),
        ("sales_rank == 150_000", Op::Eq, true),
        ("sales_rank = 150000", Op::Eq, true),
        ("sales_rank != 150000", Op::Ne, false),
        ("current.used between $4 $80", Op::Between, true),
        ("current.used between 1251 and 2000", Op::Between, false),
        ("delta_percent.used.month >= 20%", Op::Ge, true),
        ("title contains study guide", Op::Contains, true),
        ("title contains \"PHYSICS\"", Op::Contains, false),
        ("title == 'organic chemistry: study guide'", Op::Eq, true),
        ("title != 'organic chemistry: study guide'", Op::Ne, false),
    ] {
        let rules = deal_rules(&[rule]);
        assert_eq!(rules.rules[0].op, op, "{rule}");
        assert_eq!(rules.check(&f).is_ok(), holds, "{rule}");
    }
}

#[test]
fn between_bounds_are_inclusive() {
    let r = deal_rules(&["current.used between 1250 1250"]);
    assert!(r.check(&fields()).is_ok());
}

#[test]
fn first_failing_rule_is_reported_with_its_origin() {
    let r = deal_rules(&[
        "sales_rank <= 2_000_000",
        "current.used <= $10",
        "title contains x",
    ]);
    let fail = r.check(&fields()).unwrap_err();
    assert_eq!(fail.rule, "current.used <= $10");
    assert_eq!(fail.actual, Some(FieldValue::Int(1250)));
    assert_eq!(fail.origin, "config.toml:2:38");
    assert_eq!(
        fail.to_string(),
        "config.toml:2:38: current.used <= $10 failed (actual: 1250)"
    );
}

#[test]
fn an_absent_value_fails() {
    let r = deal_rules(&["current.new >= 0"]);
    let fail = r.check(&fields()).unwrap_err();
    assert_eq!(fail.actual, None);
    assert!(fail.to_string().ends_with("(actual: absent)"));
    // insert_int leaves None absent
    let mut f = fields();
    f.insert_int("current.new", None);
    assert!(r.check(&f).is_err());
    f.insert_int("current.new", Some(0));
    assert!(r.check(&f).is_ok());
}

#[test]
fn no_rules_pass_everything() {
    let r = deal_rules(&[]);
    assert!(r.check(&Fields::default()).is_ok());
}

#[test]
fn later_stages_see_earlier_fields() {
    let text = "[pipeline.product_offers]\nrules = [\"current.used <= $20\", \"offers.lowest_used <= $15\"]\n";
    let c = RunConfig::from_toml_str(text, "config.toml").unwrap();
    let rules = c.pipeline.product_offers.unwrap().rules;
    let mut f = fields();
    assert!(rules.check(&f).is_err()); // offers not fetched yet: absent
    let mut offers = Fields::default();
    offers.insert("offers.lowest_used", FieldValue::Int(1499));
    f.merge(offers);
    assert!(rules.check(&f).is_ok());
}
