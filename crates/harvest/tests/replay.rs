//! Keepa's answers replayed through the client and `extract`: the real
//! responses of `fixtures/keepa/*.json` and the recorded shapes of
//! `fixtures/keepa/replay/` (field reports, the bad-key envelope, the
//! documented deal object). Each file is served by `fake_keepa::replay`,
//! fetched with `keepa::Client` and read as the pipeline reads it; each
//! must decode to what it is (products, a deal page or a typed error), and
//! a file without an expectation here fails the test.

use std::path::{Path, PathBuf};

use fake_keepa::replay::ReplayServer;
use harvest::extract;
use keepa::client::{ApiKey, Client};
use keepa::record::RecordedAnswer;
use keepa::request::{DealSelection, ProductRequest, Request};
use keepa::{ApiError, DealResponse, Domain, ProductResponse, Response};

/// What a replayed answer must decode to.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Products with these ASINs, each read by `extract::product`.
    Products(&'static [&'static str]),
    /// A feed page whose readable deals have these ASINs.
    Deals(&'static [&'static str]),
    /// An `error` object inside a 2xx, with this `tokensLeft`: an error
    /// accepted by the predicate.
    InBodyError(i64, fn(&ApiError) -> bool),
    /// A 2xx without its payload and without an `error` object.
    NoPayload,
    /// An error status: an error accepted by the predicate, whose envelope
    /// has every token field 0 when `zero_envelope`.
    Error(fn(&ApiError) -> bool, bool),
    /// The bad-key envelope on a 2xx: every token field 0.
    ZeroEnvelope,
}

/// Every replayed file, by its path under `fixtures/keepa/`.
const EXPECTED: [(&str, Expect); 9] = [
    ("product_B0D8W1YVBX.json", Expect::Products(&["B0D8W1YVBX"])),
    (
        "products_B0D8W1YVBX_B0F7XPYCSJ_sanitized.json",
        Expect::Products(&["B0D8W1YVBX", "B0F7XPYCSJ"]),
    ),
    (
        "replay/0001-product.json",
        Expect::InBodyError(59, |e| matches!(e, ApiError::Rejected(_))),
    ),
    (
        "replay/0002-product.json",
        Expect::InBodyError(0, |e| matches!(e, ApiError::NotEnoughTokens(_))),
    ),
    (
        "replay/0003-product.json",
        Expect::Error(|e| matches!(e, ApiError::Rejected(_)), true),
    ),
    ("replay/0004-token.json", Expect::ZeroEnvelope),
    (
        "replay/0005-deal.json",
        Expect::InBodyError(40, |e| matches!(e, ApiError::Rejected(_))),
    ),
    ("replay/0006-product.json", Expect::NoPayload),
    ("replay/0007-deal.json", Expect::Deals(&["0316769487"])),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/keepa")
}

/// Every fixture: the bare responses (`*.json`, answers of `/product`)
/// and the recordings of `replay/`, by path under `fixtures/keepa/`.
fn every_fixture() -> Vec<(String, RecordedAnswer)> {
    let root = fixtures();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let body = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            out.push((name, RecordedAnswer::new("product", 200, body)));
        }
    }
    for (path, answer) in keepa::record::read_dir(&root.join("replay")).unwrap() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        out.push((format!("replay/{name}"), answer));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The call the answer was recorded for (the replay ignores the query).
fn request_for(endpoint: &str) -> Request {
    match endpoint {
        "product" => ProductRequest::asins(Domain::Com, ["B0D8W1YVBX"])
            .stats(90)
            .build()
            .unwrap(),
        "deal" => DealSelection::new(Domain::Com, 2).build().unwrap(),
        "token" => Request::token(),
        other => panic!("no call for a recorded /{other}"),
    }
}

/// Serves `answer` alone and sends its call through the client.
async fn replay(answer: RecordedAnswer) -> Result<Response, ApiError> {
    let request = request_for(&answer.endpoint);
    let server = ReplayServer::start(vec![answer]).await.unwrap();
    let client = Client::builder(ApiKey::new("REPLAYKEY").unwrap())
        .base_url(server.base_url())
        .build()
        .unwrap();
    let outcome = client.send(&request).await;
    assert_eq!(server.remaining(), 0, "the recorded answer was served");
    server.shutdown().await;
    outcome
}

/// Products read as the pipeline reads them.
fn products(name: &str, r: &Response, asins: &[&str]) {
    let parsed: ProductResponse = r.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
    let items: Vec<_> = (parsed.products.iter())
        .map(|p| extract::product(p, 1, "stats", r.received_at_ms, 1))
        .collect();
    let got: Vec<&str> = items.iter().map(|i| i.asin.as_str()).collect();
    assert_eq!(got, asins, "{name}");
    for item in &items {
        assert_eq!(item.row.asin, item.asin, "{name}");
        assert!(
            item.row.title.is_some(),
            "{name}: a real product has a title"
        );
        assert!(!item.fields.is_empty(), "{name}: stats fields were read");
    }
}

/// A feed page read as the pipeline reads it.
fn deals(name: &str, r: &Response, asins: &[&str]) {
    let page: DealResponse = r.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
    let items: Vec<_> = (page.deals.dr.iter())
        .filter_map(|d| extract::deal(d, 1, 2, r.received_at_ms))
        .collect();
    let got: Vec<&str> = items.iter().map(|i| i.asin.as_str()).collect();
    assert_eq!(got, asins, "{name}");
    assert!(items.iter().all(|i| i.row.current_used.is_some()), "{name}");
}

/// The payload the endpoint is asked for is absent or null.
fn payload_missing(r: &Response) -> bool {
    let v = r.json().unwrap();
    ["products", "deals"]
        .iter()
        .all(|k| v.get(k).is_none_or(|p| p.is_null()))
}

fn zero_envelope(env: &keepa::Envelope) -> bool {
    env.tokens_left == Some(0)
        && env.refill_in == Some(0)
        && env.refill_rate == Some(0)
        && env.tokens_consumed == Some(0)
}

fn check(name: &str, expect: Expect, outcome: Result<Response, ApiError>) {
    match (expect, outcome) {
        (Expect::Products(asins), Ok(r)) => products(name, &r, asins),
        (Expect::Deals(asins), Ok(r)) => deals(name, &r, asins),
        (Expect::InBodyError(left, want), Err(e)) => {
            assert!(want(&e), "{name}: {e:?}");
            assert_eq!(e.envelope().and_then(|v| v.tokens_left), Some(left));
        }
        (Expect::NoPayload, Err(e)) => {
            assert!(!matches!(e, ApiError::Undecodable { .. }), "{name}: {e:?}");
        }
        // A 2xx without its payload is an answer to the client; the
        // pipeline asks `missing_payload`, which makes it a failed call.
        (Expect::NoPayload, Ok(r)) => {
            assert!(payload_missing(&r), "{name}");
            let e = keepa::in_body::missing_payload(&r, "products");
            assert!(e.is_some(), "{name}: a missing payload read as data");
        }
        (Expect::Error(want, zero), Err(e)) => {
            assert!(want(&e), "{name}: {e:?}");
            if zero {
                assert!(zero_envelope(e.envelope().unwrap()), "{name}: {e:?}");
            }
        }
        (Expect::ZeroEnvelope, outcome) => {
            let env = match &outcome {
                Ok(r) => r.envelope,
                Err(e) => *e.envelope().unwrap_or_else(|| panic!("{name}: {e:?}")),
            };
            assert!(zero_envelope(&env), "{name}: {env:?}");
            // A refill of 0 is a snapshot no wait can be computed from.
            if let Some(s) = env.snapshot() {
                assert_eq!(s.refill_rate, 0, "{name}");
            }
        }
        (expect, outcome) => panic!("{name}: expected {expect:?}, got {outcome:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_replays_through_the_client_and_extract_as_what_it_is() {
    let fixtures = every_fixture();
    let names: Vec<&str> = fixtures.iter().map(|(n, _)| n.as_str()).collect();
    let mut expected: Vec<&str> = EXPECTED.iter().map(|(n, _)| *n).collect();
    expected.sort();
    assert_eq!(names, expected, "each fixture needs one expectation");
    for (name, answer) in fixtures {
        let expect = EXPECTED.iter().find(|(n, _)| *n == name).unwrap().1;
        check(&name, expect, replay(answer).await);
    }
}
