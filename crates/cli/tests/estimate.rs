//! `estimate` through the built binary: its flags, its errors (exit 2, the
//! message naming the flag or the summary's key) and `--from-summary` on
//! hand-written run summaries.

mod common;

use std::path::Path;

use common::{run, temp_dir, Outcome};

const SUITE: &str = "estimate";

/// A command line's words.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Exit 0, no panic; stdout.
#[track_caller]
fn ok(args: &[&str]) -> String {
    let out: Outcome = run(args, None);
    assert_eq!(out.code(), Some(0), "stderr:\n{}", out.stderr);
    out.stdout
}

/// A run summary as `run --summary-json` writes it, with the keys of
/// `extra` (the new ones) added and those of `drop` removed.
fn summary(dir: &Path, name: &str, extra: &[(&str, serde_json::Value)], drop: &[&str]) -> String {
    let mut s = serde_json::json!({
        "deals_stored": 500,
        "products_fetched": 1435,
        "tokens_spent": {"backfill": {"products": 3549}, "refresh": {"products": 5364}},
        "tokens_per_stored_deal": 17.826,
        "tokens_refilled": 7900,
        "utilization": 0.99,
        "requests_by_status": {"200": 401},
        "own_429": 0,
        "refresh_runs_due": 79,
        "refresh_runs_late": 0,
        "refresh_delay_p99_s": 20.0,
        "min_balance": -75,
        "keepa_elapsed_s": 23760.0,
        "wall_elapsed_s": 39.0,
        "refill_per_minute": 20,
        "start_balance": 1200,
        "bucket_max": 1200,
        "limited_by": "tokens"
    });
    let map = s.as_object_mut().unwrap();
    for (k, v) in extra {
        map.insert(k.to_string(), v.clone());
    }
    for k in drop {
        map.remove(*k);
    }
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(&s).unwrap()).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn the_readme_questions_in_one_sentence() {
    assert_eq!(
        ok(&words(
            "estimate --refill-per-minute 5 --deals 10000 --tokens-per-deal 12 \
             --refresh-every 1m --refresh-cost 1"
        )),
        "10,000 deals at 12 tokens on a 5/min plan with a 1-token refresher every minute: 20.6 days\n"
    );
    assert_eq!(
        ok(&words(
            "estimate --refill-per-minute 20 --deals 500 --tokens-per-deal 17.8"
        )),
        "500 deals at 17.8 tokens on a 20/min plan: 6.4 h\n"
    );
}

const BEYOND_THE_BUCKET: &str = "estimate --refill-per-minute 20 --deals 100 --tokens-per-deal 18";

#[test]
fn more_than_the_bucket_never_reads_zero_days() {
    assert_eq!(
        ok(&words(BEYOND_THE_BUCKET)),
        "100 deals at 18 tokens on a 20/min plan: 30 min\n"
    );
    assert_eq!(
        ok(&words(&format!("{BEYOND_THE_BUCKET} --start-tokens 0"))),
        "100 deals at 18 tokens on a 20/min plan from a balance of 0: 1.5 h\n"
    );
}

#[test]
fn json_gives_the_figures() {
    let out = ok(&words(&format!("--json {BEYOND_THE_BUCKET}")));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let days = v["days"].as_f64().unwrap();
    assert!((days * 24.0 - 0.5).abs() < 1e-9, "{v}");
    assert!(
        v["frontier_days"].is_number() && v["deals_per_hour"].is_number(),
        "{v}"
    );
    assert!(v.get("run").is_none(), "{v}");
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let base = ["estimate", "--refill-per-minute", "20", "--deals", "100"];
    let with = |extra: &[&str]| -> Outcome {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        run(&args, None)
    };
    with(&["--tokens-per-deal", "many"]).expect(2, "--tokens-per-deal");
    with(&["--tokens-per-deal=-1"])
        .expect(2, "--tokens-per-deal must be a number within 0..=100,000");
    with(&["--tokens-per-deal", "NaN"])
        .expect(2, "--tokens-per-deal must be a number within 0..=100,000");
    with(&["--tokens-per-deal", "18", "--start-tokens", "5000"]).expect(
        2,
        "--start-tokens must be at most the bucket's maximum, 1,200",
    );
    with(&[
        "--tokens-per-deal",
        "18",
        "--refresh-every",
        "0s",
        "--refresh-cost",
        "1",
    ])
    .expect(2, "--refresh-every must be between 1 s and 100 days");
    with(&["--tokens-per-deal", "18", "--refresh-every", "1m"]).expect(2, "--refresh-cost");
    run(
        &[
            "estimate",
            "--refill-per-minute",
            "20",
            "--tokens-per-deal",
            "18",
        ],
        None,
    )
    .expect(2, "--deals");
    run(
        &[
            "estimate",
            "--refill-per-minute",
            "0",
            "--deals",
            "1",
            "--tokens-per-deal",
            "1",
        ],
        None,
    )
    .expect(2, "--refill-per-minute must be within 1..=1,000,000");
}

#[test]
fn from_summary_takes_the_runs_own_figures_and_compares() {
    let dir = temp_dir(SUITE, "full");
    let file = summary(&dir, "summary.json", &[], &[]);
    let out = ok(&["estimate", "--from-summary", &file]);
    // round(500 × 17.826) = 8,913; (8,913 − 1,200) / 20 → 386 refill steps.
    assert_eq!(
        out,
        "500 deals at 17.83 tokens on a 20/min plan from a balance of 1,200: 6.4 h\n\
         that run took 6.6 h of Keepa time (the estimate: -2.5 %)\n"
    );
    let out = ok(&["--json", "estimate", "--from-summary", &file]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["days"].as_f64().unwrap(), 386.0 * 60.0 / 86_400.0);
    assert_eq!(v["run"]["keepa_elapsed_s"], 23760.0);
    assert_eq!(v["run"]["limited_by"], "tokens");
    let rel = v["run"]["relative_difference"].as_f64().unwrap();
    assert!(
        (rel - (23_160.0 - 23_760.0) / 23_760.0).abs() < 1e-12,
        "{v}"
    );
    // A flag overrides its key.
    let out = ok(&[
        "estimate",
        "--from-summary",
        &file,
        "--deals",
        "100",
        "--start-tokens",
        "0",
    ]);
    assert!(
        out.starts_with("100 deals at 17.83 tokens on a 20/min plan from a balance of 0: 1.5 h\n"),
        "{out}"
    );
}

#[test]
fn a_summary_missing_a_key_needs_its_flag() {
    let dir = temp_dir(SUITE, "missing");
    let no_rate = summary(
        &dir,
        "no-rate.json",
        &[],
        &["refill_per_minute", "bucket_max"],
    );
    run(&["estimate", "--from-summary", &no_rate], None).expect(
        2,
        "no `refill_per_minute` in the summary; pass --refill-per-minute",
    );
    let out = ok(&[
        "estimate",
        "--from-summary",
        &no_rate,
        "--refill-per-minute",
        "20",
    ]);
    assert!(out.contains(": 6.4 h\n"), "{out}");
    // Today's summaries: no rate, no start balance, no limit.
    let old = summary(
        &dir,
        "old.json",
        &[],
        &[
            "refill_per_minute",
            "start_balance",
            "bucket_max",
            "limited_by",
        ],
    );
    run(
        &[
            "estimate",
            "--from-summary",
            &old,
            "--refill-per-minute",
            "20",
        ],
        None,
    )
    .expect(2, "no `start_balance` in the summary; pass --start-tokens");
    let no_cost = summary(
        &dir,
        "no-cost.json",
        &[("tokens_per_stored_deal", serde_json::Value::Null)],
        &[],
    );
    run(&["estimate", "--from-summary", &no_cost], None).expect(
        2,
        "no `tokens_per_stored_deal` in the summary; pass --tokens-per-deal",
    );
    let no_bucket = summary(&dir, "no-bucket.json", &[("bucket_max", 0.into())], &[]);
    run(&["estimate", "--from-summary", &no_bucket], None).expect(
        2,
        "the summary's `bucket_max` must be within 1..=1,000,000,000",
    );
    let missing = dir.join("absent.json");
    run(
        &["estimate", "--from-summary", missing.to_str().unwrap()],
        None,
    )
    .expect(2, "cannot read");
    let junk = dir.join("junk.json");
    std::fs::write(&junk, "stored 500 deals").unwrap();
    run(
        &["estimate", "--from-summary", junk.to_str().unwrap()],
        None,
    )
    .expect(2, "not a run summary");
}

#[test]
fn a_feed_limited_run_is_said_to_be_one() {
    let dir = temp_dir(SUITE, "feed");
    let file = summary(&dir, "feed.json", &[("limited_by", "feed".into())], &[]);
    let out = ok(&["estimate", "--from-summary", &file]);
    assert!(out.contains("6.4 h\n"), "{out}");
    assert!(
        out.contains("that run was limited by the feed, not by tokens"),
        "{out}"
    );
}

#[test]
fn max_age_prices_the_fresh_offers_at_five() {
    let out = ok(&words(
        "estimate --refill-per-minute 20 --deals 500 --tokens-per-deal 17.8 \
         --max-age 24h --fresh-share 0.6",
    ));
    // 17.8 − 0.6 × (12 − 5) = 13.6 a deal: what 13.6 alone answers.
    let plain = ok(&words(
        "estimate --refill-per-minute 20 --deals 500 --tokens-per-deal 13.6",
    ));
    assert!(
        out.starts_with("500 deals at 13.6 tokens (offers up to 1.0 days old, 60 % fresh)"),
        "{out}"
    );
    assert_eq!(out.rsplit(':').next(), plain.rsplit(':').next());
    let base = words("estimate --refill-per-minute 20 --deals 500 --tokens-per-deal 17.8");
    let with = |extra: &str| -> Outcome {
        let args: Vec<&str> = base.iter().copied().chain(words(extra)).collect();
        run(&args, None)
    };
    with("--max-age 24h").expect(2, "--fresh-share");
    with("--max-age 24h --fresh-share 2").expect(2, "--fresh-share must be within 0..=1");
    with("--max-age 24h --fresh-share 0.5 --offers-tokens 30").expect(2, "--offers-tokens");
}
