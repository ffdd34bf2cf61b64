//! The HTTP client against a local axum server on 127.0.0.1:0: every status
//! Keepa sends, gzip and plain bodies, a hang, resets and garbage, and the
//! key redacted from every error.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::Router;
use keepa::client::{ApiKey, Client};
use keepa::request::{DealSelection, Method, ProductRequest, Request};
use keepa::{ApiError, Domain};
use serde_json::{json, Value};

const KEY: &str = "SECRETKEY0123456789abcdef";

const ENVELOPE: &str = r#""timestamp":1594177158252,"tokensLeft":1180,"refillIn":38205,"refillRate":20,"tokenFlowReduction":0,"tokensConsumed":0,"processingTimeInMs":3"#;

fn gzip(text: &str) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

fn json_body(status: u16, text: String, gz: bool) -> AxumResponse {
    let status = StatusCode::from_u16(status).unwrap();
    if gz {
        (
            status,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CONTENT_ENCODING, "gzip"),
            ],
            gzip(&text),
        )
            .into_response()
    } else {
        (status, [(header::CONTENT_TYPE, "application/json")], text).into_response()
    }
}

fn error_json(status: u16, kind: &str, message: &str) -> AxumResponse {
    // Keepa's error bodies carry the envelope; this one echoes the key, to
    // prove the client redacts what a server sends back.
    json_body(
        status,
        format!(
            r#"{{"timestamp":1,"tokensLeft":0,"refillIn":0,"refillRate":0,"tokensConsumed":0,"error":{{"type":"{kind}","message":"{message} (key {KEY})","details":[{{"type":"domain","message":"invalid"}}]}}}}"#
        ),
        true,
    )
}

/// Behaviour is chosen by the first path segment (the test's base URL prefix).
async fn handler(method: HttpMethod, uri: Uri, headers: HeaderMap, body: Bytes) -> AxumResponse {
    let mode = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    match mode.as_str() {
        "gzip" => json_body(200, format!("{{{ENVELOPE},\"products\":[]}}"), true),
        "plain" => json_body(200, format!("{{{ENVELOPE},\"products\":[]}}"), false),
        "echo" => {
            let body_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let accept = headers
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let echo = json!({
                "method": method.as_str(),
                "path": uri.path(),
                "query": uri.query().unwrap_or(""),
                "body": body_json,
                "acceptEncoding": accept,
                "tokensLeft": 5,
            });
            json_body(200, echo.to_string(), true)
        }
        "e400" => error_json(400, "invalidParameter", "invalid key"),
        "e402" => error_json(402, "paymentRequired", "expired"),
        "e404" => error_json(404, "notFound", "no such endpoint"),
        "e405" => error_json(405, "methodNotAllowed", "wrong method"),
        "e429" => json_body(
            429,
            r#"{"timestamp":1594177158252,"tokensLeft":0,"refillIn":38205,"refillRate":20,"tokenFlowReduction":0,"tokensConsumed":0,"processingTimeInMs":0}"#.into(),
            true,
        ),
        "e500" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("<html>Internal error for /product?key={KEY}&asin=X</html>"),
        )
            .into_response(),
        "e503" => json_body(503, format!("{{{ENVELOPE}}}"), false),
        "e418" => (StatusCode::IM_A_TEAPOT, "teapot").into_response(),
        "garbage" => (StatusCode::OK, format!("<html>oops {KEY}</html>")).into_response(),
        "badjson" => json_body(200, format!("{{{ENVELOPE},\"products\":[tru"), false),
        "badgzip" => (
            StatusCode::OK,
            [(header::CONTENT_ENCODING, "gzip")],
            b"definitely not gzip".to_vec(),
        )
            .into_response(),
        "hang" => std::future::pending().await,
        _ => (StatusCode::NOT_FOUND, "?").into_response(),
    }
}

async fn server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(handler);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn client(base: String) -> Client {
    Client::builder(ApiKey::new(KEY).unwrap())
        .base_url(base)
        .timeout(Duration::from_millis(2_000))
        .connect_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

fn short_client(base: String) -> Client {
    Client::builder(ApiKey::new(KEY).unwrap())
        .base_url(base)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap()
}

async fn call(addr: SocketAddr, mode: &str) -> Result<keepa::Response, ApiError> {
    client(format!("http://{addr}/{mode}"))
        .send(&Request::token())
        .await
}

fn assert_no_key(e: &ApiError) {
    let shown = format!("{e} | {e:?}");
    assert!(!shown.contains(KEY), "key leaked: {shown}");
    assert!(!shown.contains("key=S"), "key param leaked: {shown}");
}

#[tokio::test]
async fn gzip_and_plain_bodies_succeed_with_envelope() {
    let addr = server().await;
    for mode in ["gzip", "plain"] {
        let r = call(addr, mode).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.envelope.tokens_left, Some(1180));
        assert_eq!(r.envelope.refill_rate, Some(20));
        assert!(r.received_at_ms > 1_600_000_000_000);
        let v: Value = r.parse().unwrap();
        assert_eq!(v["products"], json!([]));
        let snap = r.snapshot().unwrap();
        assert_eq!(snap.next_refill_at_ms(), 1594177158252 + 38205);
        assert!(!format!("{r:?}").contains(KEY));
        // A model that does not match is Undecodable, not a panic.
        let e = r.parse::<Vec<u8>>().unwrap_err();
        assert!(
            matches!(e, ApiError::Undecodable { status: 200, .. }),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn get_and_post_carry_the_key_in_the_query_only() {
    let addr = server().await;
    let c = client(format!("http://{addr}/echo/"));
    let req = ProductRequest::asins(Domain::De, ["B0D8W1YVBX"])
        .offers(20)
        .build()
        .unwrap();
    let v: Value = c.send(&req).await.unwrap().parse().unwrap();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/echo/product");
    assert_eq!(
        v["query"],
        format!("key={KEY}&domain=3&asin=B0D8W1YVBX&offers=20")
    );
    assert!(v["acceptEncoding"].as_str().unwrap().contains("gzip"));

    let deal = DealSelection::new(Domain::Com, 0)
        .with_page(2)
        .build()
        .unwrap();
    let v: Value = c.send(&deal).await.unwrap().parse().unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/echo/deal");
    assert_eq!(v["query"], format!("key={KEY}"));
    assert_eq!(v["body"]["page"], 2);
    assert_eq!(v["body"]["priceTypes"], json!([0]));

    let get = DealSelection::new(Domain::Com, 0).build_get().unwrap();
    let v: Value = c.send(&get).await.unwrap().parse().unwrap();
    assert_eq!(v["method"], "GET");
    assert!(v["query"].as_str().unwrap().contains("selection=%7B"));

    // `/product?` and `/product/?` style paths, with any stray key dropped.
    let v: Value = c
        .send_raw(
            Method::Get,
            "/product/?domain=1&key=OTHER&asin=B0D8W1YVBX",
            None,
        )
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(v["path"], "/echo/product/");
    assert_eq!(v["query"], format!("domain=1&asin=B0D8W1YVBX&key={KEY}"));
    let v: Value = c
        .send_raw(
            Method::Post,
            "query?domain=1",
            Some(&json!({"perPage": 50})),
        )
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        (v["method"].as_str(), v["path"].as_str()),
        (Some("POST"), Some("/echo/query"))
    );
    assert_eq!(v["body"]["perPage"], 50);
}

type Case = (&'static str, u16, fn(&ApiError) -> bool, &'static str);

#[tokio::test]
async fn refusals_carry_keepa_error_object_and_envelope() {
    let addr = server().await;
    let cases: [Case; 4] = [
        (
            "e400",
            400,
            |e| matches!(e, ApiError::Rejected(_)),
            "invalidParameter",
        ),
        (
            "e402",
            402,
            |e| matches!(e, ApiError::PaymentRequired(_)),
            "paymentRequired",
        ),
        (
            "e404",
            404,
            |e| matches!(e, ApiError::NotFound(_)),
            "notFound",
        ),
        (
            "e405",
            405,
            |e| matches!(e, ApiError::MethodNotAllowed(_)),
            "methodNotAllowed",
        ),
    ];
    for (mode, status, is_kind, kind) in cases {
        let e = call(addr, mode).await.unwrap_err();
        assert!(is_kind(&e), "{mode}: {e:?}");
        assert_eq!(e.status(), Some(status));
        assert!(e.is_refusal());
        assert!(!e.may_have_been_charged());
        let ke = e.keepa_error().unwrap();
        assert_eq!(ke.kind.as_deref(), Some(kind));
        assert!(ke.message.as_deref().unwrap().contains("(key ***)"));
        assert_eq!(ke.details.as_ref().unwrap()[0]["type"], "domain");
        assert_eq!(e.envelope().unwrap().tokens_left, Some(0));
        assert!(e.to_string().contains(kind), "{e}");
        assert_no_key(&e);
    }
}

#[tokio::test]
async fn not_enough_tokens_carries_the_bare_envelope() {
    let addr = server().await;
    let e = call(addr, "e429").await.unwrap_err();
    let ApiError::NotEnoughTokens(r) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(r.status, 429);
    assert!(r.error.is_none());
    let env = r.envelope.unwrap();
    assert_eq!(
        (env.tokens_left, env.refill_in, env.tokens_consumed),
        (Some(0), Some(38205), Some(0))
    );
    assert!(!e.may_have_been_charged());
    assert!(!e.is_refusal());
    assert_no_key(&e);
}

#[tokio::test]
async fn server_errors_keep_status_envelope_or_excerpt() {
    let addr = server().await;
    let e = call(addr, "e500").await.unwrap_err();
    let ApiError::Server(r) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(r.status, 500);
    assert!(r.envelope.is_none());
    assert!(r.excerpt.as_deref().unwrap().contains("Internal error"));
    assert!(e.may_have_been_charged());
    assert_no_key(&e);

    let e = call(addr, "e503").await.unwrap_err();
    let ApiError::Server(r) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        (r.status, r.envelope.unwrap().tokens_left),
        (503, Some(1180))
    );
    assert_no_key(&e);

    let e = call(addr, "e418").await.unwrap_err();
    assert!(
        matches!(&e, ApiError::UnexpectedStatus(r) if r.status == 418),
        "{e:?}"
    );
    assert_no_key(&e);
}

#[tokio::test]
async fn undecodable_bodies_keep_a_short_redacted_excerpt() {
    let addr = server().await;
    for mode in ["garbage", "badjson", "badgzip"] {
        let e = call(addr, mode).await.unwrap_err();
        let ApiError::Undecodable {
            status, excerpt, ..
        } = &e
        else {
            panic!("{mode}: {e:?}")
        };
        assert_eq!(*status, 200);
        assert!(excerpt.chars().count() <= keepa::client::EXCERPT_CHARS);
        if mode == "garbage" {
            assert_eq!(excerpt, "<html>oops ***</html>");
        }
        assert_no_key(&e);
    }
}

#[tokio::test]
async fn a_hang_becomes_a_timeout_that_may_have_been_charged() {
    let addr = server().await;
    let started = std::time::Instant::now();
    let e = short_client(format!("http://{addr}/hang"))
        .send(&Request::token())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    let ApiError::Timeout {
        after,
        connecting,
        may_have_been_charged,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(*after, Duration::from_millis(200));
    assert!(!connecting);
    assert!(may_have_been_charged);
    assert!(e.to_string().contains("may have been charged"));
    assert_no_key(&e);
}

#[tokio::test]
async fn refused_connection_is_transport_and_not_charged() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = call(addr, "x").await.unwrap_err();
    let ApiError::Transport {
        connecting,
        may_have_been_charged,
        message,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert!(connecting);
    assert!(!may_have_been_charged);
    assert!(!message.is_empty());
    assert_no_key(&e);
}

/// A server that reads the request, then closes (or sends garbage) before answering.
async fn raw_server(reply: &'static [u8]) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let _ = sock.write_all(reply).await;
            let _ = sock.shutdown().await;
        }
    });
    addr
}

#[tokio::test]
async fn reset_and_non_http_garbage_are_transport_errors_that_may_have_been_charged() {
    for reply in [
        &b""[..],
        b"SSH-2.0-garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"tok",
    ] {
        let addr = raw_server(reply).await;
        let e = call(addr, "token").await.unwrap_err();
        assert!(
            matches!(
                e,
                ApiError::Transport {
                    connecting: false,
                    may_have_been_charged: true,
                    ..
                }
            ),
            "{reply:?}: {e:?}"
        );
        assert_no_key(&e);
    }
}

#[test]
fn key_never_prints_and_bad_base_urls_are_refused() {
    let key = ApiKey::new(KEY).unwrap();
    assert_eq!(format!("{key} {key:?}"), "*** ApiKey(***)");
    let c = Client::builder(key.clone()).build().unwrap();
    assert!(!format!("{c:?}").contains(KEY));
    assert_eq!(c.base_url(), "https://api.keepa.com/");
    for bad in ["ftp://x", "not a url", "http://x/?key=1"] {
        let e = Client::builder(key.clone())
            .base_url(bad)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("invalid base URL"), "{e}");
    }
}
