//! `--record DIR` on `api` and `run`: every answer of the server lands in
//! DIR as a numbered file, readable by `keepa::record` and replayable; the
//! key is in none of them; an unusable DIR is a usage error.

mod common;

use std::path::Path;

use common::{run, temp_dir, Fake};
use keepa::record::{read_dir, RecordedAnswer};
use serde_json::Value;

const KEY: &str = "RECORDCLIKEY0123456789abcdef";

/// The recorded answers of `dir`, after checking no file holds the key.
fn recorded(dir: &Path) -> Vec<RecordedAnswer> {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(KEY), "{} holds the key", path.display());
    }
    read_dir(dir).unwrap().into_iter().map(|(_, a)| a).collect()
}

/// How many Keepa requests the fake server (with one key) answered.
fn server_requests(base_url: &str) -> u64 {
    let addr = base_url.trim_start_matches("http://").parse().unwrap();
    let raw = common::http_get(addr, "/_fake/stats");
    let body = raw.split_once("\r\n\r\n").unwrap().1;
    let stats: Value = serde_json::from_str(body).unwrap();
    let keys = stats["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "the server has one key");
    let by_endpoint = keys[0]["requests"].as_object().unwrap();
    (by_endpoint.values())
        .flat_map(|statuses| statuses.as_object().unwrap().values())
        .map(|n| n.as_u64().unwrap())
        .sum()
}

#[test]
fn api_records_each_answer_as_printed_and_never_the_key() {
    let fake = Fake::start(fake_keepa::FakeKeepa::builder().keys([KEY]));
    let dir = temp_dir("record", "api");
    let rec = dir.join("answers");
    let rec_s = rec.to_str().unwrap();
    let base = fake.base_url.as_str();
    let out = run(
        &["--base-url", base, "api", "token", "--record", rec_s],
        Some(KEY),
    );
    out.expect(0, "tokens left");
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    let asin_args = ["--base-url", base, "api", "--record", rec_s, "product"];
    let out = run(
        &[&asin_args[..], &["--asin", "B000000001"]].concat(),
        Some(KEY),
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let bad = run(
        &[&asin_args[..], &["--asin", "B000000001"]].concat(),
        Some("WRONG"),
    );
    bad.expect(3, "invalid API key");

    let answers = recorded(&rec);
    let shape: Vec<(&str, u16)> = answers
        .iter()
        .map(|a| (a.endpoint.as_str(), a.status))
        .collect();
    assert_eq!(shape, [("token", 200), ("product", 200), ("product", 400)]);
    let body: Value = serde_json::from_str(&answers[0].body).unwrap();
    assert_eq!(body, printed, "the recorded body is the printed one");
    assert_eq!(answers[1].query, "domain=1&asin=B000000001");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn run_records_every_answer_of_a_whole_run() {
    let fake = Fake::start(
        fake_keepa::FakeKeepa::builder()
            .keys([KEY])
            .time_scale(600.0)
            .seed(5)
            .initial_deals(400),
    );
    let dir = temp_dir("record", "run");
    let rec = dir.join("answers");
    let db = dir.join("h.db");
    let args = [
        "--base-url",
        fake.base_url.as_str(),
        "run",
        "--quiet",
        "--db",
        db.to_str().unwrap(),
        "--target-deals",
        "5",
        "--record",
        rec.to_str().unwrap(),
    ];
    let out = run(&args, Some(KEY));
    assert_eq!(out.code(), Some(0), "{}", out.stderr);

    let answers = recorded(&rec);
    assert_eq!(answers.len() as u64, server_requests(&fake.base_url));
    assert_eq!(answers[0].endpoint, "token", "the run asks /token first");
    for endpoint in ["deal", "product"] {
        assert!(
            answers
                .iter()
                .any(|a| a.endpoint == endpoint && a.status == 200),
            "no {endpoint} answer recorded"
        );
    }
    assert!(answers
        .iter()
        .all(|a| a.header(keepa::TIME_SCALE_HEADER) == Some("600")));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_unusable_record_directory_is_a_usage_error() {
    let dir = temp_dir("record", "unusable");
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let target = file.join("answers");
    let out = run(
        &["api", "--record", target.to_str().unwrap(), "token"],
        Some(KEY),
    );
    out.expect(2, "--record:");
    assert!(out.stderr.contains("a-file"), "{}", out.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn fake_keepa_replays_a_recording_to_the_same_output() {
    let fake = Fake::start(fake_keepa::FakeKeepa::builder().keys([KEY]));
    let dir = temp_dir("record", "replay");
    let rec = dir.join("answers");
    let rec_s = rec.to_str().unwrap();
    let call = |base: &str, record: bool| {
        let mut args = vec!["--base-url", base, "api", "product", "--asin", "B000000001"];
        if record {
            args.extend(["--record", rec_s]);
        }
        run(&args, Some(KEY))
    };
    let first = call(&fake.base_url, true);
    assert_eq!(first.code(), Some(0), "{}", first.stderr);
    drop(fake);

    let replay = common::FakeServer::start(KEY, &["--replay", rec_s]);
    let again = call(&replay.url, false);
    assert_eq!(again.code(), Some(0), "{}", again.stderr);
    assert_eq!(again.stdout, first.stdout);
    // The recording is used up: the next call gets the replay's 404 (exit 3).
    call(&replay.url, false).expect(3, "no recorded answer left for /product");
    let _ = std::fs::remove_dir_all(dir);
}
