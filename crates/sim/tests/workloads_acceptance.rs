//! The acceptance figures of issue 4, on the real workload files.

use sim::{simulate, Report, Workload};

macro_rules! workload {
    ($name:literal) => {
        Workload::from_file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../workloads/",
            $name
        ))
        .expect($name)
    };
}

fn run(w: &Workload, policy: &str) -> Report {
    simulate(w, policy).expect("simulate").report
}

fn within(actual: f64, expected: f64, rel: f64) -> bool {
    (actual - expected).abs() <= expected * rel
}

#[test]
fn seed_wait_for_max_takes_20_79_days() {
    let r = run(&workload!("seed.toml"), "wait-for-max");
    let d = r.days_to_target.expect("finishes");
    assert!(within(d, 20.79, 0.005), "{d}");
    assert_eq!(r.refresh_runs_served, r.refresh_runs_due);
}

#[test]
fn seed_wait_for_exactly_max_never_finishes() {
    let mut w = workload!("seed.toml");
    w.seed_rules.as_mut().unwrap().wait_for_max_fraction = 1.0;
    w.plan.horizon_days = 60.0;
    let r = run(&w, "wait-for-max");
    assert!(!r.finished);
    assert_eq!(
        r.deals, 0,
        "the sipping refresher keeps the balance below 300"
    );
}

#[test]
fn seed_controlled_deficit_takes_17_29_days_serving_a_fifth_of_the_refresher() {
    let r = run(&workload!("seed.toml"), "controlled-deficit");
    let d = r.days_to_target.expect("finishes");
    assert!(within(d, 17.29, 0.005), "{d}");
    let served = r.refresh_runs_served as f64 / r.refresh_runs_due as f64;
    assert!((0.18..0.22).contains(&served), "{served}");
}

#[test]
fn seed_frontier_matches_the_reference_table() {
    let mut w = workload!("seed.toml");
    for (period, days) in [(60.0, 20.74), (300.0, 17.28), (900.0, 16.82)] {
        if let sim::workload::JobSpec::Refresh { period_s, .. } = &mut w.jobs[1] {
            *period_s = period;
        }
        let f = sim::frontier::frontier_days(&w).unwrap().unwrap();
        assert!((f - days).abs() < 0.005, "period {period}: {f}");
    }
}

fn assert_flow_on_seed(r: &Report) {
    assert!(r.finished);
    assert_eq!(
        r.refresh_runs_served, r.refresh_runs_due,
        "every run served"
    );
    assert_eq!(
        r.refresh_runs_on_time, r.refresh_runs_due,
        "every run on time"
    );
    assert!(r.refresh_delay_p99_s.unwrap() <= 60.0);
    assert!(r.efficiency.unwrap() >= 0.995, "{:?}", r.efficiency);
    assert_eq!(r.rejected_429, 0);
    assert_eq!(r.wasted_refill_tokens, 0);
}

#[test]
fn flow_on_seed_serves_every_refresh_and_reaches_the_frontier() {
    assert_flow_on_seed(&run(&workload!("seed.toml"), "flow"));
}

#[test]
fn flow_on_seed_adaptive_serves_every_refresh_and_reaches_the_frontier() {
    assert_flow_on_seed(&run(&workload!("seed-adaptive.toml"), "flow"));
}

fn assert_flow_robust(r: &Report, own_429_allowed: bool) {
    assert!(r.finished, "{r:?}");
    assert!(r.efficiency.unwrap() >= 0.99, "{:?}", r.efficiency);
    assert!(
        r.refresh_runs_on_time as f64 >= 0.99 * r.refresh_runs_due as f64,
        "{} of {}",
        r.refresh_runs_on_time,
        r.refresh_runs_due
    );
    if !own_429_allowed {
        assert_eq!(r.rejected_429, 0);
    }
}

#[test]
fn flow_on_plan_upgrade() {
    assert_flow_robust(&run(&workload!("plan-upgrade.toml"), "flow"), false);
}

#[test]
fn flow_on_foreign_consumer() {
    let r = run(&workload!("foreign-consumer.toml"), "flow");
    assert_flow_robust(&r, true);
    // The foreign consumer is not starved: it spent about its 8/min.
    let minutes = r.days_to_target.unwrap() * 1440.0;
    let foreign = r.tokens_spent["foreign"] as f64 / minutes;
    assert!(foreign > 7.0, "{foreign}");
}

#[test]
fn flow_on_big_plan() {
    assert_flow_robust(&run(&workload!("big-plan.toml"), "flow"), false);
}

#[test]
fn books_arbitrage_reports_tokens_per_stored_deal_for_each_pipeline() {
    let r = run(&workload!("books-arbitrage.toml"), "flow");
    let p = r.pipelines.expect("pipelines");
    let get = |n: &str| {
        p.iter()
            .find(|x| x.name == n)
            .and_then(|x| x.tokens_per_stored_deal)
            .unwrap_or_else(|| panic!("{n}"))
    };
    assert!(within(get("two-stage"), 16.0, 0.03), "{}", get("two-stage"));
    assert!(within(get("seed-full-fetch"), 120.0, 0.01));
    assert!(within(get("seed-peek-commit"), 72.0, 0.01));
    // Offers at max_age = "24h", 60 % fresh: 0.6 × 5 + 0.4 × 12 = 7.8
    // instead of 12 per stored deal.
    let aged = get("two-stage-max-age-24h");
    assert!(within(aged, 16.0 - 12.0 + 7.8, 0.03), "{aged}");
    assert!(aged < get("two-stage"));
    assert!(p.iter().all(|x| x.days_to_target.is_some()));
    assert_eq!(p[0].tokens_spent["deal-filter"], 0, "a filter is free");
}

#[test]
fn reports_carry_every_key_the_readme_lists() {
    let r = run(&workload!("books-arbitrage.toml"), "flow");
    let v = serde_json::to_value(&r).unwrap();
    for key in [
        "workload",
        "policy",
        "finished",
        "days_to_target",
        "frontier_days",
        "efficiency",
        "deals_per_hour",
        "refresh_runs_due",
        "refresh_runs_served",
        "refresh_delay_p50_s",
        "refresh_delay_p99_s",
        "refresh_delay_max_s",
        "min_balance",
        "wasted_refill_tokens",
        "rejected_429",
        "tokens_spent",
        "pipelines",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    for p in v["pipelines"].as_array().unwrap() {
        for key in [
            "name",
            "tokens_per_stored_deal",
            "days_to_target",
            "tokens_spent",
        ] {
            assert!(p.get(key).is_some(), "pipeline missing {key}");
        }
    }
}

#[test]
fn every_workload_file_parses() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workloads");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            Workload::from_file(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 6);
}

#[test]
fn unknown_and_malformed_fields_are_named() {
    let base = "name = \"x\"\n[plan]\nrefill_per_minute = 5\nhorizon_days = 1\n";
    let e = Workload::parse(&format!("{base}[[jobs]]\nkind = \"refresh\"\nperiod_s = 60\ntokens_per_run = 1\nmax_delay_s = 60\nperiod_ms = 3\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("period_ms"), "{e}");
    let e = Workload::parse(&format!(
        "{base}[[jobs]]\nkind = \"backfill\"\ntarget_deals = \"many\"\ntokens_per_deal = 1\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("target_deals"), "{e}");
    let e = Workload::parse(
        "name = \"x\"\n[plan]\nrefill_per_minute = [[0, 5], [0, 6]]\nhorizon_days = 1\njobs = []\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("refill_per_minute"), "{e}");
    let e = Workload::parse(&format!("{base}[[jobs]]\nkind = \"teleport\"\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("teleport"), "{e}");
    let e = Workload::parse(&format!(
        "{base}[[jobs]]\nkind = \"refresh\"\nperiod_s = 0\ntokens_per_run = 1\nmax_delay_s = 60\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("jobs[0].period_s"), "{e}");
}

#[test]
fn the_chart_has_a_line_per_policy() {
    let w = workload!("seed-adaptive.toml");
    let runs: Vec<_> = budget::PolicyKind::NAMES
        .iter()
        .map(|p| simulate(&w, p).unwrap())
        .collect();
    let svg = sim::chart::render_svg(&runs).unwrap();
    assert!(svg.starts_with("<svg"));
    assert_eq!(
        svg.matches("<polyline").count(),
        2 * runs.len() + 1,
        "balance and deals per policy, plus the zero line"
    );
    assert!(svg.contains("refresh runs served on time"));
    assert!(
        svg.contains("100.0 % (29627 of 29627)"),
        "flow serves every refresh run"
    );
    assert!(svg.contains("flow: 20.57 days"));
}

#[test]
fn max_age_needs_its_fresh_share_on_an_offers_stage() {
    let text = |extra: &str| {
        format!(
            "name = \"t\"\n[plan]\nrefill_per_minute = 20\nhorizon_days = 10\n\
             [[jobs]]\nkind = \"pipeline\"\nname = \"p\"\ntarget_stored = 10\n\
             feed_backlog_deals = 1000\nstages = [\n\
             {{ name = \"feed\", tokens_per_request = 5, items_per_request = 150 }},\n\
             {{ name = \"offers\", tokens_per_item = 12{extra} }},\n]\n"
        )
    };
    let err = |extra: &str| Workload::parse(&text(extra)).unwrap_err().to_string();
    assert!(err(", max_age = \"24h\"").contains("stages[1].fresh_share"));
    assert!(err(", fresh_share = 0.5").contains("stages[1].max_age"));
    assert!(err(", max_age = \"a day\", fresh_share = 0.5").contains("not a duration"));
    assert!(err(", max_age = \"24h\", fresh_share = 1.5").contains("0..=1"));
    let w = Workload::parse(&text(", max_age = \"24h\", fresh_share = 0.5")).unwrap();
    let r = run(&w, "flow");
    // Every item costs 0.5 × 5 + 0.5 × 12 = 8.5 on average, charged whole.
    let p = &r.pipelines.unwrap()[0];
    let offers = p.tokens_spent["offers"] as f64;
    let per_item = offers / p.stored as f64;
    assert!((per_item - 8.5).abs() <= 0.01, "{offers} for {}", p.stored);
}
