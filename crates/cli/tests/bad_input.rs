//! Bad input, each case through the built binary: the message names what
//! is wrong and where, the exit code is CLI.md's (2 bad usage, config or
//! input; 3 Keepa refused; 5 network or server failure), nothing panics,
//! and a database that already holds rows still holds them afterwards.
//!
//! Cases covered elsewhere and not repeated here: `--offers 5`, `--stock`
//! without offers and `--domain 7` (api_commands.rs); a missing or corrupt
//! database for `status` (status_export.rs); every config error kind at
//! the library level (harvest/tests/config_errors.rs); every request rule
//! (keepa/tests/request_validation.rs).

mod common;

use std::path::Path;

use common::{finish, run, temp_dir, Fake};
use harvest::store::{Batch, DealRow, Store};

const SUITE: &str = "bad";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// A database holding `n` deals, closed.
async fn db_with_rows(path: &Path, n: usize) {
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    let deals = (0..n)
        .map(|i| DealRow {
            asin: format!("B{i:09}"),
            domain: 1,
            price_type: 2,
            current_used: Some(1000 + i as i64),
            seen_at_ms: 1_750_000_000_000,
            ..DealRow::default()
        })
        .collect();
    store
        .commit(Batch {
            deals,
            ..Batch::default()
        })
        .await
        .unwrap();
    store.close().await;
}

async fn count_deals(path: &Path) -> u64 {
    let store = Store::open_existing(path.to_str().unwrap()).await.unwrap();
    let n = store.count_deals().await.unwrap();
    store.close().await;
    n
}

#[test]
fn unknown_config_keys_name_the_key_its_place_and_the_closest_name() {
    let dir = temp_dir(SUITE, "config-keys");
    let cfg = write(&dir, "harvest.toml", "domain = \"com\"\ndoman = \"com\"\n");
    // Every command that reads --config checks the whole file.
    for args in [
        vec!["--config", &cfg, "run", "--sandbox", "--quiet"],
        vec!["--config", &cfg, "status"],
        vec!["--config", &cfg, "api", "token"],
    ] {
        run(&args, Some("k")).expect(
            2,
            &format!("{cfg}:2:1: unknown key \"doman\" in the top level; did you mean \"domain\"?"),
        );
    }
    let cfg = write(
        &dir,
        "table.toml",
        "[refresh]\nperiod = \"5m\"\n  maxdelay = \"1m\"\n",
    );
    run(&["--config", &cfg, "run", "--sandbox"], None).expect(
        2,
        &format!("{cfg}:3:3: unknown key \"maxdelay\" in [refresh]; did you mean \"max_delay\"?"),
    );
    let cfg = write(
        &dir,
        "rule.toml",
        "[pipeline.deal_filter]\nrules = [\"curent.used < 5\"]\n",
    );
    run(&["--config", &cfg, "run", "--sandbox"], None).expect(
        2,
        &format!(
            "{cfg}:2:11: unknown field \"curent.used\" in rule; did you mean \"current.used\"?"
        ),
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn malformed_config_names_its_place() {
    let dir = temp_dir(SUITE, "malformed");
    let cfg = write(&dir, "bad.toml", "domain = \"com\"\n[refresh\n");
    run(&["--config", &cfg, "status"], None).expect(2, &format!("{cfg}:2:9: invalid TOML"));
    let cfg = write(&dir, "type.toml", "[refresh]\nenabled = \"yes\"\n");
    run(&["--config", &cfg, "run", "--sandbox"], None).expect(
        2,
        &format!("{cfg}:2:11: refresh.enabled must be true or false, found a string"),
    );
    let missing = dir.join("nope.toml");
    run(&["--config", missing.to_str().unwrap(), "status"], None)
        .expect(2, &format!("cannot read config file {}", missing.display()));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn invalid_selections_exit_2_naming_the_key() {
    let dir = temp_dir(SUITE, "selection");
    let cfg = write(&dir, "sel.toml", "[selection]\npriceTypes = [2, 0]\n");
    run(&["--config", &cfg, "run", "--sandbox"], None).expect(
        2,
        &format!(
            "{cfg}:2:14: invalid [selection]: priceTypes=[2, 0]: must hold exactly one price type"
        ),
    );
    let cfg = write(
        &dir,
        "range.toml",
        "[selection]\npriceTypes = [2]\ncurrentRange = [900, 100]\n",
    );
    run(&["--config", &cfg, "run", "--sandbox"], None).expect(
        2,
        &format!("{cfg}:3:16: invalid [selection]: currentRange=[900,100]: must be [min,max] with min <= max"),
    );
    // `api deals --selection`: a rule broken, and JSON that is not JSON.
    for (selection, needle) in [
        (
            r#"{"domainId":1,"priceTypes":[2],"dateRange":9}"#,
            "dateRange=9: must be 0 (24 h), 1 (7 d), 2 (31 d) or 3 (90 d)",
        ),
        (
            r#"{"domainId":1,"priceTypes":[2],"sortType":-9223372036854775808}"#,
            "sortType=-9223372036854775808: must be 1..4",
        ),
        (
            r#"{"domainId":1,"priceTypes":"#,
            "invalid deal selection in --selection: EOF while parsing",
        ),
        (
            r#"{"domainId":7,"priceTypes":[2]}"#,
            "invalid deal selection in --selection",
        ),
    ] {
        run(
            &[
                "api",
                "deals",
                "--base-url",
                "http://127.0.0.1:9",
                "--selection",
                selection,
            ],
            Some("k"),
        )
        .expect(2, needle);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_asins_and_offers_exit_2_naming_the_value_and_the_rule() {
    let base = ["api", "product", "--base-url", "http://127.0.0.1:9"];
    let hundred_one: Vec<String> = (0..101).map(|i| format!("B{i:09}")).collect();
    let hundred_one = hundred_one.join(",");
    for (extra, needle) in [
        (
            vec!["--asin", "B0D8W1YVB"],
            "asin=B0D8W1YVB: must be 10 characters A-Z/0-9",
        ),
        (
            vec!["--asin", "B0D8W1YVBX,B0D8-1YVBX"],
            "asin=B0D8-1YVBX: must be 10 characters A-Z/0-9",
        ),
        (
            vec!["--asin", "B0D8W1YVBÉ"],
            "must be 10 characters A-Z/0-9",
        ),
        (
            vec!["--asin", &hundred_one],
            "asin=(101 given): at most 100 per call",
        ),
        (vec![], "asin/code: one of asin or code is required"),
        (
            vec!["--asin", "B0D8W1YVBX", "--offers", "101"],
            "offers=101: must be between 20 and 100",
        ),
        (
            vec!["--asin", "B0D8W1YVBX", "--domain", "xx"],
            "invalid domain \"xx\"",
        ),
        (
            vec!["--asin", "B0D8W1YVBX", "--domain", "13"],
            "invalid domain \"13\"",
        ),
    ] {
        let mut args = base.to_vec();
        args.extend(extra.iter().copied());
        run(&args, Some("k")).expect(2, needle);
    }
}

#[test]
fn a_bad_domain_in_the_config_exits_2_naming_its_place() {
    let dir = temp_dir(SUITE, "domain");
    let cfg = write(&dir, "d.toml", "domain = \"amazon.xx\"\n");
    run(&["--config", &cfg, "run", "--sandbox"], None)
        .expect(2, &format!("{cfg}:1:10: domain: must be a marketplace"));
    let cfg = write(&dir, "m.toml", "domain = \"de\"\n");
    run(&["--config", &cfg, "run", "--sandbox"], None).expect(
        2,
        &format!("{cfg}:1:10: missing \"selection\" in the top level"),
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_database_path_that_cannot_be_created_exits_2() {
    let dir = temp_dir(SUITE, "create");
    let file = dir.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let under_file = file.join("sub").join("h.db");
    let under = under_file.to_str().unwrap();
    run(&["run", "--sandbox", "--quiet", "--db", under], None)
        .expect(2, &format!("cannot create or open database {under}"));
    assert!(!under_file.exists());
    let d = dir.to_str().unwrap();
    run(&["run", "--sandbox", "--quiet", "--db", d], None).expect(
        2,
        &format!("cannot create or open database {d}: it is a directory"),
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_database_exits_2_for_every_command_and_is_left_alone() {
    let dir = temp_dir(SUITE, "corrupt");
    let db = dir.join("junk.db");
    // Random-looking bytes, deterministic (no SQLite header).
    let junk: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&db, &junk).unwrap();
    let p = db.to_str().unwrap();
    let needle = format!("database {p} is not a database or is corrupt");
    for args in [
        vec![
            "run",
            "--sandbox",
            "--quiet",
            "--db",
            p,
            "--target-deals",
            "1",
        ],
        vec!["export", "--db", p, "--format", "jsonl"],
        vec!["status", "--db", p, "--json"],
    ] {
        let out = run(&args, None);
        out.expect(2, &needle);
        assert!(out.stdout.is_empty(), "{:?}", out.stdout);
    }
    assert_eq!(
        std::fs::read(&db).unwrap(),
        junk,
        "the file is never rewritten"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The uid the read-only case runs as when the tests run as root (root
/// writes any file): `nobody`.
#[cfg(unix)]
const NOBODY: u32 = 65_534;

#[cfg(unix)]
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // A file we create is owned by our effective uid.
    let probe = std::env::temp_dir().join(format!("kh-uid-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").unwrap();
    let uid = std::fs::metadata(&probe).unwrap().uid();
    let _ = std::fs::remove_file(&probe);
    uid == 0
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_database_exits_2_before_any_work_and_keeps_its_rows() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = temp_dir(SUITE, "readonly");
    let db = dir.join("h.db");
    db_with_rows(&db, 3).await;
    // A read-only file in a directory the run may write (SQLite's WAL
    // index lives beside the file): only the database itself is locked.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let before = std::fs::read(&db).unwrap();
    let p = db.to_str().unwrap();
    // Permissions bind root only through another uid: as root, the binary
    // runs as nobody (from a copy nobody can reach, if need be).
    let root = is_root();
    let bin = if root {
        common::bin_for_anyone(&dir)
    } else {
        common::bin()
    };
    let as_user = |args: &[&str]| {
        let mut cmd = common::command_of(&bin, args);
        cmd.current_dir(&dir);
        if root {
            cmd.uid(NOBODY).gid(NOBODY);
        }
        cmd
    };
    let run_args = [
        "run",
        "--sandbox",
        "--quiet",
        "--db",
        p,
        "--target-deals",
        "10",
    ];
    let out = finish(as_user(&run_args));
    out.expect(2, &format!("database {p} is read-only"));
    // Refused at open: no Keepa request was made, no summary printed.
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert_eq!(std::fs::read(&db).unwrap(), before);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(count_deals(&db).await, 3);
    // Reading commands still work on a read-only file.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    let out = finish(as_user(&["export", "--db", p, "--format", "csv"]));
    out.expect(0, "exported 3 deals");
    let _ = std::fs::remove_dir_all(dir);
}

fn fake(keys: &[&str], expired: &[&str]) -> Fake {
    Fake::start(
        fake_keepa::FakeKeepa::builder()
            .keys(keys.iter().map(|k| k.to_string()))
            .expired_keys(expired.iter().map(|k| k.to_string()))
            .refill_per_minute(100)
            .initial_deals(300),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_key_exits_3_and_an_expired_one_too_without_the_key_and_without_harm() {
    const GOOD: &str = "GOODKEY0123456789";
    const WRONG: &str = "WRONGKEY0123456789";
    const OLD: &str = "EXPIREDKEY0123456789";
    let server = fake(&[GOOD], &[OLD]);
    let dir = temp_dir(SUITE, "api-keys");
    let db = dir.join("h.db");
    db_with_rows(&db, 2).await;
    let p = db.to_str().unwrap();
    for (key, needle) in [
        (
            WRONG,
            "Keepa rejected the request: HTTP 400: invalidParameter: invalid API key",
        ),
        (
            OLD,
            "Keepa requires payment (expired or unpaid key): HTTP 402",
        ),
    ] {
        for args in [
            vec!["--base-url", &server.base_url, "api", "token"],
            vec![
                "--base-url",
                &server.base_url,
                "api",
                "product",
                "--asin",
                "B0D8W1YVBX",
            ],
        ] {
            let out = run(&args, Some(key));
            out.expect(3, needle);
            assert!(
                !out.stderr.contains(key) && !out.stdout.contains(key),
                "{out:?}"
            );
        }
        // The run stops at its first /token call (it used to wait for ever
        // for a first envelope): it names the call, and the stored rows
        // are all there.
        let out = run(
            &["--base-url", &server.base_url, "run", "--quiet", "--db", p],
            Some(key),
        );
        out.expect(3, needle);
        assert!(
            out.stderr.contains("Keepa refused a run /token request"),
            "{}",
            out.stderr
        );
        assert!(
            !out.stderr.contains(key) && !out.stdout.contains(key),
            "{out:?}"
        );
        assert_eq!(count_deals(&db).await, 2);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_server_answering_html_exits_5_naming_what_came_back() {
    let ok_html = common::html_server("200 OK");
    let bad_gateway = common::html_server("502 Bad Gateway");
    for (addr, needle) in [
        (
            ok_html,
            "undecodable response (HTTP 200): the body is not a JSON object; body starts \"<!DOCTYPE html>",
        ),
        (bad_gateway, "Keepa server error: HTTP 502: body \"<!DOCTYPE html>"),
    ] {
        let base = format!("http://{addr}");
        for args in [
            vec!["api", "token", "--base-url", &base],
            vec!["api", "product", "--asin", "B0D8W1YVBX", "--base-url", &base],
            vec!["api", "deals", "--selection", r#"{"domainId":1,"priceTypes":[2]}"#, "--base-url", &base],
        ] {
            let out = run(&args, Some("HTMLKEY0123456789"));
            out.expect(5, needle);
            assert!(!out.stderr.contains("HTMLKEY0123456789"), "{}", out.stderr);
        }
        // A harvest on a scaled clock reads the server's clock first, and
        // stops there with the same words (unscaled, it retries /token five
        // times over about 75 s first: a proxy's error page may pass).
        let dir = temp_dir("bad-input", &format!("html-run-{}", addr.port()));
        let db = dir.join("h.db");
        let p = db.to_str().unwrap();
        let out = run(
            &[
                "--base-url",
                &base,
                "--server-time-scale",
                "600",
                "run",
                "--quiet",
                "--db",
                p,
            ],
            Some("HTMLKEY0123456789"),
        );
        out.expect(5, needle);
        assert!(
            out.stderr.contains("reading the server's clock (GET /token)"),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("HTMLKEY0123456789"), "{}", out.stderr);
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Regression: an envelope with `"refillIn": -9223372036854775808`
/// overflowed the cost line's arithmetic and panicked `api` (debug build).
#[test]
fn an_absurd_envelope_is_shown_not_a_panic() {
    let body = r#"{"timestamp":-9223372036854775808,"tokensLeft":-9223372036854775808,"refillIn":-9223372036854775808,"refillRate":9223372036854775807,"tokensConsumed":-9223372036854775808}"#;
    let addr = common::answering("200 OK", "application/json", body.to_string());
    let out = run(
        &["api", "token", "--base-url", &format!("http://{addr}")],
        Some("k"),
    );
    out.expect(0, "tokens left -9223372036854775808");
    assert!(
        out.stdout.contains("\"refillIn\": -9223372036854775808"),
        "{}",
        out.stdout
    );
}
