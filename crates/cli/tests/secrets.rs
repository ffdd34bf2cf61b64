//! The API key stays secret under faults and at full verbosity: a harvest
//! against a fake Keepa that answers 5xx, garbage and resets, with trace
//! JSON logs, a summary file, a scraped metrics endpoint, then `status
//! --json` and both exports; the key is in no output, no log line, no
//! metric, no byte of the database (file, WAL and all) and no file in the
//! run's directory. Also: the metrics endpoint binds loopback by default,
//! and a config file holding a key that others may read gets a warning.
//!
//! (`api_commands.rs` checks the same for single `api` calls and
//! `run_shutdown.rs` the sandbox's own key in the metrics text.)

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{command, files_under, finish, http_get, temp_dir, Fake, Running};

const SUITE: &str = "secrets";

/// Distinctive enough that no other text holds it by chance.
const KEY: &str = "LeakCanary7Qx9R4mT2vZ";

/// The address in a `metrics at http://ADDR/metrics` log line.
fn metrics_addr(line: &str) -> SocketAddr {
    let rest = &line[line.find("metrics at http://").unwrap() + "metrics at http://".len()..];
    rest[..rest.find("/metrics").unwrap()].parse().unwrap()
}

/// New deals of a JSON `committed` log line (0 for any other line).
fn committed_deals(line: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .filter(|v| v["fields"]["message"] == "committed")
        .and_then(|v| v["fields"]["new_deals"].as_u64())
        .unwrap_or(0)
}

#[track_caller]
fn assert_no_key(what: &str, bytes: &[u8]) {
    let key = KEY.as_bytes();
    assert!(
        !bytes.windows(key.len()).any(|w| w == key),
        "the API key is in {what}"
    );
}

#[test]
fn a_faulty_harvest_leaks_the_key_nowhere() {
    let dir = temp_dir(SUITE, "leak");
    let faults = "5xx=0.05,garbage=0.02,reset=0.02".parse().unwrap();
    let server = Fake::start(
        fake_keepa::FakeKeepa::builder()
            .keys([KEY])
            .refill_per_minute(2_000)
            .seed(5)
            .faults(faults),
    );
    let db = dir.join("h.db");
    let summary = dir.join("summary.json");
    let (db_s, summary_s) = (db.to_str().unwrap(), summary.to_str().unwrap());
    let mut cmd = command(&[
        "--log-format",
        "json",
        "--base-url",
        &server.base_url,
        "run",
        "--quiet",
        "--db",
        db_s,
        "--summary-json",
        summary_s,
        "--metrics-addr",
        "127.0.0.1:0",
        "--target-deals",
        "1000000",
    ]);
    cmd.env("KEEPA_API_KEY", KEY)
        .env("RUST_LOG", "trace")
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut run = Running::new(cmd.spawn().unwrap());
    let addr = metrics_addr(&run.wait_line(Duration::from_secs(60), |l| {
        l.contains("metrics at http://")
    }));
    // Work stored and at least one injected fault seen and logged by the
    // client (its error message is where a URL would leak), then one scrape.
    let (mut stored, mut failed) = (0, false);
    run.wait_until(
        |line| {
            stored += committed_deals(line);
            failed |= line.contains("request failed; retrying");
            stored > 0 && failed
        },
        "stored deal and retried failure",
        Duration::from_secs(180),
    );
    let metrics = http_get(addr, "/metrics");
    assert!(
        metrics.contains("keepa_harvest_deals_stored_total"),
        "{metrics}"
    );
    run.signal("-INT");
    let out = run.wait(Duration::from_secs(120));
    assert_eq!(out.code(), Some(130), "{}", out.stderr);
    assert!(
        out.stderr.contains("\"level\":\"TRACE\""),
        "trace logs were on"
    );
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert!(s["deals_stored"].as_u64().unwrap() > 0, "{s}");

    let mut outputs = vec![
        ("the run's stdout".to_string(), out.stdout.into_bytes()),
        ("the run's logs".to_string(), out.stderr.into_bytes()),
        ("the metrics".to_string(), metrics.into_bytes()),
    ];
    let csv = dir.join("export.csv");
    for args in [
        vec!["--log-format", "json", "--json", "status", "--db", db_s],
        vec![
            "--log-format",
            "json",
            "export",
            "--db",
            db_s,
            "--format",
            "jsonl",
        ],
        vec![
            "--log-format",
            "json",
            "export",
            "--db",
            db_s,
            "--format",
            "csv",
            "--out",
            csv.to_str().unwrap(),
        ],
    ] {
        let mut cmd = command(&args);
        cmd.env("KEEPA_API_KEY", KEY).env("RUST_LOG", "trace");
        let out = finish(cmd);
        assert_eq!(out.code(), Some(0), "{args:?}: {}", out.stderr);
        outputs.push((format!("stdout of {args:?}"), out.stdout.into_bytes()));
        outputs.push((format!("logs of {args:?}"), out.stderr.into_bytes()));
    }
    assert!(
        std::fs::read_to_string(&csv).unwrap().lines().count() > 1,
        "the export holds rows"
    );
    // Every file the run and the commands left: the database and its WAL
    // files, the summary, the export.
    let files = files_under(&dir);
    assert!(files.iter().any(|f| f == &db), "{files:?}");
    for f in files {
        outputs.push((f.display().to_string(), std::fs::read(&f).unwrap()));
    }
    for (what, bytes) in &outputs {
        assert!(
            !bytes.is_empty() || what.contains("stdout"),
            "{what} is empty"
        );
        assert_no_key(what, bytes);
    }
    // The key was really in use: the fake server counted its requests
    // (and says how many faults it injected on the way).
    let fake_addr: SocketAddr = server
        .base_url
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let stats = http_get(fake_addr, "/_fake/stats");
    let body: serde_json::Value =
        serde_json::from_str(stats.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert!(
        body["keys"][0]["requests"]
            .as_object()
            .is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    let faults = &body["faults"];
    assert!(
        ["serverErrors", "garbage", "resets"]
            .iter()
            .any(|k| faults[k].as_u64().unwrap_or(0) > 0),
        "{faults}"
    );
    eprintln!("faults injected during the run: {faults}");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_metrics_endpoint_binds_loopback_by_default() {
    let dir = temp_dir(SUITE, "loopback");
    let db = dir.join("h.db");
    // A bare port: no interface named, so loopback only.
    let mut cmd = command(&[
        "--log-format",
        "json",
        "run",
        "--sandbox",
        "--quiet",
        "--db",
        db.to_str().unwrap(),
        "--metrics-addr",
        "0",
        "--target-deals",
        "1000000",
    ]);
    cmd.env("RUST_LOG", "keepa_harvest=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut run = Running::new(cmd.spawn().unwrap());
    let addr = metrics_addr(&run.wait_line(Duration::from_secs(60), |l| {
        l.contains("metrics at http://")
    }));
    assert!(addr.ip().is_loopback(), "bound to {addr}");
    assert_ne!(addr.port(), 0);
    assert!(http_get(addr, "/metrics").starts_with("HTTP/1.1 200"));
    run.signal("-INT");
    let out = run.wait(Duration::from_secs(120));
    assert_eq!(out.code(), Some(130), "{}", out.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_config_holding_a_key_readable_by_others_warns() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir(SUITE, "warn");
    let db = dir.join("h.db");
    harvest::store::Store::open(db.to_str().unwrap())
        .await
        .unwrap()
        .close()
        .await;
    let with_key = dir.join("with-key.toml");
    std::fs::write(&with_key, format!("key = \"{KEY}\"\n")).unwrap();
    let without = dir.join("without.toml");
    std::fs::write(&without, "domain = \"com\"\n").unwrap();
    let status = |cfg: &Path, mode: u32| {
        std::fs::set_permissions(cfg, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = finish(command(&[
            "--config",
            cfg.to_str().unwrap(),
            "status",
            "--db",
            db.to_str().unwrap(),
        ]));
        assert_eq!(out.code(), Some(0), "{}", out.stderr);
        assert_no_key("the output", out.stderr.as_bytes());
        assert_no_key("the output", out.stdout.as_bytes());
        out.stderr
    };
    const WARNING: &str = "holds an API key and is readable by other users";
    for mode in [0o644, 0o640, 0o604] {
        let err = status(&with_key, mode);
        assert!(err.contains(WARNING), "mode {mode:o}: {err}");
        assert!(
            err.contains(&format!("chmod 600 {}", with_key.display())),
            "{err}"
        );
    }
    assert!(!status(&with_key, 0o600).contains(WARNING));
    assert!(!status(&without, 0o644).contains(WARNING));
    let _ = std::fs::remove_dir_all(dir);
}
