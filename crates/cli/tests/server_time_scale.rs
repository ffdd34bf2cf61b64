//! A fake server on a fast clock announces its time scale in its `/token`
//! answers (`x-fake-keepa-time-scale`); `run` adopts it without a flag, and
//! `--server-time-scale` overrides it. Checked against a tiny axum stub
//! that answers `/token` (with or without the header) and refuses every
//! other call, so each run stops at its first data request.

mod common;

use std::net::SocketAddr;

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use common::{run, temp_dir};

const KEY: &str = "SCALETESTKEY0123456789";
const TOKEN: &str = r#"{"timestamp":1594177158252,"tokensLeft":1180,"refillIn":38205,"refillRate":20,"tokenFlowReduction":0,"tokensConsumed":0,"processingTimeInMs":1}"#;
const REFUSED: &str =
    r#"{"tokensLeft":1180,"error":{"type":"invalidParameter","message":"not served here"}}"#;
const ADOPTED: &str = "server clock: time x";

/// Starts the stub; `scale` is its header, if any.
fn start_stub(scale: Option<&'static str>) -> SocketAddr {
    let stub = move |uri: Uri| async move {
        let mut answer: Response = if uri.path() == "/token" {
            (StatusCode::OK, TOKEN).into_response()
        } else {
            (StatusCode::BAD_REQUEST, REFUSED).into_response()
        };
        let headers = answer.headers_mut();
        headers.insert("content-type", "application/json".parse().unwrap());
        if let Some(s) = scale {
            headers.insert(keepa::TIME_SCALE_HEADER, s.parse().unwrap());
        }
        answer
    };
    common::serve_stub(Router::new().fallback(stub))
}

/// `run` against the stub, with `extra` global flags; its stderr.
fn run_against(addr: SocketAddr, tag: &str, extra: &[&str]) -> String {
    let dir = temp_dir("scale", tag);
    let db = dir.join("h.db");
    let base = format!("http://{addr}");
    let mut args = vec!["--base-url", &base];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["run", "--db", db.to_str().unwrap(), "--until", "1h"]);
    let out = run(&args, Some(KEY));
    // The stub refuses the first data request: Keepa refused (exit 3).
    out.expect(3, "Keepa rejected the request");
    assert!(!out.stderr.contains(KEY), "{}", out.stderr);
    let _ = std::fs::remove_dir_all(dir);
    out.stderr
}

#[test]
fn run_adopts_the_announced_scale_and_the_flag_overrides_it() {
    let announcing = start_stub(Some("600"));
    let stderr = run_against(announcing, "announced", &[]);
    assert!(
        stderr.contains("server clock: time x600, announced by the server"),
        "{stderr}"
    );
    let stderr = run_against(announcing, "override", &["--server-time-scale", "120"]);
    assert!(
        stderr.contains("server clock: time x120, from --server-time-scale"),
        "{stderr}"
    );
    assert!(!stderr.contains("x600"), "{stderr}");

    // Keepa announces nothing: the wall clock, no line.
    let silent = start_stub(None);
    let stderr = run_against(silent, "silent", &[]);
    assert!(!stderr.contains(ADOPTED), "{stderr}");
    let stderr = run_against(silent, "flag", &["--server-time-scale", "120"]);
    assert!(
        stderr.contains("server clock: time x120, from --server-time-scale"),
        "{stderr}"
    );
}
