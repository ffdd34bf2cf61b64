//! `keepa-harvest api …` against a tiny local Keepa stub: output, cost line,
//! exit codes, and the key nowhere in sight.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output};

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

const KEY: &str = "CLITESTKEY0123456789";
const ENVELOPE: &str = r#""timestamp":1594177158252,"tokensLeft":1180,"refillIn":38205,"refillRate":20,"tokenFlowReduction":0,"processingTimeInMs":1"#;

async fn stub(uri: Uri, body: String) -> Response {
    let query = uri.query().unwrap_or("").to_string();
    let json = |status: StatusCode, text: String| {
        (status, [("content-type", "application/json")], text).into_response()
    };
    if !query.contains(&format!("key={KEY}")) {
        return json(
            StatusCode::BAD_REQUEST,
            r#"{"tokensLeft":0,"error":{"type":"invalidParameter","message":"invalid key"}}"#
                .into(),
        );
    }
    // Echo the query back without the key (a real body never holds it).
    let query = query.replace(&format!("key={KEY}&"), "");
    match uri.path() {
        "/token" => json(StatusCode::OK, format!(r#"{{{ENVELOPE},"tokensConsumed":0}}"#)),
        "/product" => json(
            StatusCode::OK,
            format!(r#"{{{ENVELOPE},"tokensConsumed":12,"query":"{query}","products":[{{"asin":"B0D8W1YVBX"}}]}}"#),
        ),
        "/deal" => {
            let selection: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            json(
                StatusCode::OK,
                format!(r#"{{{ENVELOPE},"tokensConsumed":5,"deals":{{"dr":[]}},"echo":{selection}}}"#),
            )
        }
        "/bad/token" => json(
            StatusCode::BAD_REQUEST,
            format!(
                r#"{{"timestamp":1,"tokensLeft":0,"refillIn":0,"refillRate":0,"tokensConsumed":0,"error":{{"type":"invalidParameter","message":"parameter out of range for key {KEY}"}}}}"#
            ),
        ),
        "/empty/token" => json(
            StatusCode::TOO_MANY_REQUESTS,
            r#"{"timestamp":1594177158252,"tokensLeft":0,"refillIn":38205,"refillRate":20,"tokenFlowReduction":0,"tokensConsumed":0,"processingTimeInMs":0}"#.into(),
        ),
        "/broken/token" => (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
        _ => json(StatusCode::NOT_FOUND, r#"{"error":{"type":"notFound"}}"#.into()),
    }
}

/// Starts the stub on its own thread and runtime; it lives until the test
/// process ends.
fn start_stub() -> SocketAddr {
    common::serve_stub(Router::new().fallback(stub))
}

fn run(args: &[&str], key: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keepa-harvest"));
    cmd.args(args)
        .env_remove("KEEPA_API_KEY")
        .env_remove("RUST_LOG");
    if let Some(k) = key {
        cmd.env("KEEPA_API_KEY", k);
    }
    cmd.output().unwrap()
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_no_key(out: &Output) {
    let (stdout, stderr) = texts(out);
    assert!(!stdout.contains(KEY), "key in stdout: {stdout}");
    assert!(!stderr.contains(KEY), "key in stderr: {stderr}");
}

#[test]
fn token_prints_the_status_and_exits_0() {
    let addr = start_stub();
    let base = format!("http://{addr}");
    let out = run(&["api", "token", "--base-url", &base], Some(KEY));
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let body: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(body["tokensLeft"], 1180);
    assert!(stderr.contains("predicted 0"), "{stderr}");
    assert!(
        stderr.contains("tokens left 1180, refill 20/min, next refill in"),
        "{stderr}"
    );
    assert_no_key(&out);

    // --json: compact body on stdout, the cost line as JSON on stderr.
    let out = run(&["--json", "api", "token", "--base-url", &base], Some(KEY));
    let (stdout, stderr) = texts(&out);
    assert_eq!(stdout.lines().count(), 1);
    let line: serde_json::Value = serde_json::from_str(stderr.trim()).unwrap();
    assert_eq!(line["tokensLeft"], 1180);
    assert_eq!(line["refillRate"], 20);
}

#[test]
fn key_file_is_read_and_trimmed() {
    let addr = start_stub();
    let dir = std::env::temp_dir().join(format!("keepa-harvest-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let out = run(
        &[
            "api",
            "token",
            "--base-url",
            &format!("http://{addr}"),
            "--key-file",
            key_file.to_str().unwrap(),
        ],
        Some("WRONGKEY"),
    );
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_400_exits_3_with_keepa_message_and_no_key() {
    let addr = start_stub();
    let out = run(
        &["api", "token", "--base-url", &format!("http://{addr}/bad")],
        Some(KEY),
    );
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("invalidParameter: parameter out of range"),
        "{stderr}"
    );
    assert_no_key(&out);
}

#[test]
fn a_429_exits_4_and_a_5xx_or_refused_connection_exits_5() {
    let addr = start_stub();
    let out = run(
        &[
            "api",
            "token",
            "--base-url",
            &format!("http://{addr}/empty"),
        ],
        Some(KEY),
    );
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("not enough tokens"), "{stderr}");
    assert!(stderr.contains("refill 20/min"), "{stderr}");
    assert_no_key(&out);

    let out = run(
        &[
            "api",
            "token",
            "--base-url",
            &format!("http://{addr}/broken"),
        ],
        Some(KEY),
    );
    assert_eq!(out.status.code(), Some(5), "{:?}", texts(&out));
    assert_no_key(&out);

    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let out = run(
        &[
            "api",
            "token",
            "--base-url",
            &format!("http://127.0.0.1:{port}"),
        ],
        Some(KEY),
    );
    assert_eq!(out.status.code(), Some(5), "{:?}", texts(&out));
    assert_no_key(&out);
}

#[test]
fn a_missing_key_exits_2_with_a_clear_message() {
    let out = run(&["api", "token", "--base-url", "http://127.0.0.1:9"], None);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("no Keepa API key: set KEEPA_API_KEY or pass --key-file"),
        "{stderr}"
    );
    let out = run(
        &["api", "token", "--key-file", "/nonexistent/keepa-key"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(texts(&out)
        .1
        .contains("cannot read key file /nonexistent/keepa-key"));
}

#[test]
fn product_sends_flags_and_reports_predicted_and_charged_cost() {
    let addr = start_stub();
    let out = run(
        &[
            "api",
            "product",
            "--base-url",
            &format!("http://{addr}"),
            "--asin",
            "B0D8W1YVBX",
            "--domain",
            "de",
            "--offers",
            "40",
            "--stats",
            "90",
            "--history",
            "0",
            "--update",
            "-1",
        ],
        Some(KEY),
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let body: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let query = body["query"].as_str().unwrap();
    assert!(
        query.ends_with("domain=3&asin=B0D8W1YVBX&offers=40&stats=90&history=0&update=-1"),
        "{query}"
    );
    assert!(
        // `update=-1` never collects: the offers are Keepa's cached ones at
        // the flat 5 (the stub's charge is fixed).
        stderr.contains("cost: predicted 5 (max 5), charged 12; tokens left 1180"),
        "{stderr}"
    );
    assert_no_key(&out);
}

#[test]
fn bad_product_input_exits_2_naming_the_rule() {
    let out = run(
        &["api", "product", "--asin", "B0D8W1YVBX", "--offers", "5"],
        Some(KEY),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(texts(&out)
        .1
        .contains("offers=5: must be between 20 and 100"));
    let out = run(
        &["api", "product", "--asin", "B0D8W1YVBX", "--stock"],
        Some(KEY),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(texts(&out).1.contains("stock=1: needs offers"));
    let out = run(
        &["api", "product", "--asin", "B0D8W1YVBX", "--domain", "7"],
        Some(KEY),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(texts(&out).1.contains("invalid domain"));
}

#[test]
fn deals_posts_the_selection_from_json_or_file() {
    let addr = start_stub();
    let base = format!("http://{addr}");
    let out = run(
        &[
            "api",
            "deals",
            "--base-url",
            &base,
            "--selection",
            r#"{"domainId":1,"priceTypes":[0],"sortType":1}"#,
            "--page",
            "2",
        ],
        Some(KEY),
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let body: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(body["echo"]["page"], 2);
    assert_eq!(body["echo"]["sortType"], 1);
    assert!(
        stderr.contains("predicted 5 (max 5), charged 5"),
        "{stderr}"
    );

    let file = std::env::temp_dir().join(format!("keepa-harvest-sel-{}.json", std::process::id()));
    std::fs::write(&file, r#"{"domainId":1,"priceTypes":[4]}"#).unwrap();
    let out = run(
        &[
            "api",
            "deals",
            "--base-url",
            &base,
            "--selection",
            file.to_str().unwrap(),
        ],
        Some(KEY),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        texts(&out).1.contains("priceTypes=[4]: must be one of"),
        "{:?}",
        texts(&out)
    );
    let _ = std::fs::remove_file(&file);
}

#[test]
fn trace_logs_never_show_the_key() {
    let addr = start_stub();
    for (base, format) in [
        (format!("http://{addr}"), "text"),
        (format!("http://{addr}/bad"), "json"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_keepa-harvest"))
            .args([
                "--log-format",
                format,
                "api",
                "product",
                "--asin",
                "B0D8W1YVBX",
            ])
            .args(["--base-url", &base])
            .env("KEEPA_API_KEY", KEY)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        assert!(!out.stderr.is_empty());
        assert_no_key(&out);
    }
}
