//! Recording answers with `ClientBuilder::record` and replaying them with
//! `fake_keepa::replay`: what a recording holds, that it never holds the
//! key, and that a replay gives the client the answers it first received.

use std::path::{Path, PathBuf};

use fake_keepa::replay::ReplayServer;
use fake_keepa::FakeKeepa;
use keepa::client::{ApiKey, Client};
use keepa::clock::ManualClock;
use keepa::record::{read_dir, Recorder};
use keepa::request::{DealSelection, Method, ProductRequest, Request};
use keepa::{ApiError, DealResponse, Domain, Response};

const KEY: &str = "RECORDKEY0123456789abcdefXYZ";
const WRONG_KEY: &str = "WRONGKEY9876543210zyxwvuQRS";

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keepa-record-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn client(key: &str, base_url: String, recorder: Option<&Recorder>) -> Client {
    let mut b = Client::builder(ApiKey::new(key).unwrap()).base_url(base_url);
    if let Some(r) = recorder {
        b = b.record(r.clone());
    }
    b.build().unwrap()
}

/// Every file under `dir`, as text.
fn texts(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// The calls both the recording and the replay make, in order: `/token`,
/// a feed page (POST), the products of its first three deals, a refused
/// call (bad domain) and, with `bad_key`'s client, a bad key.
async fn calls(c: &Client, bad_key: &Client) -> Vec<Result<Response, ApiError>> {
    let mut out = vec![c.send(&Request::token()).await];
    let page = c
        .send(&DealSelection::new(Domain::Com, 0).build().unwrap())
        .await;
    let deals: DealResponse = page.as_ref().unwrap().parse().unwrap();
    let asins: Vec<String> = deals
        .deals
        .dr
        .iter()
        .take(3)
        .map(|d| d.asin.clone())
        .collect();
    assert_eq!(asins.len(), 3, "the feed has deals");
    out.push(page);
    let products = ProductRequest::asins(Domain::Com, asins).stats(90).build();
    out.push(c.send(&products.unwrap()).await);
    out.push(
        c.send_raw(Method::Get, "/product?domain=99&asin=B000000001", None)
            .await,
    );
    out.push(bad_key.send(&Request::token()).await);
    out
}

fn same_outcome(a: &Result<Response, ApiError>, b: &Result<Response, ApiError>) {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.status, b.status);
            assert_eq!(a.body(), b.body());
            assert_eq!(a.envelope, b.envelope);
        }
        (Err(a), Err(b)) => {
            assert_eq!(std::mem::discriminant(a), std::mem::discriminant(b));
            assert_eq!(a.envelope(), b.envelope());
            assert_eq!(a.to_string(), b.to_string());
        }
        (a, b) => panic!("recorded {a:?}, replayed {b:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_holds_every_answer_never_the_key_and_replays_the_same() {
    let server = FakeKeepa::builder()
        .keys([KEY])
        .clock(ManualClock::new(1_750_000_000_000))
        .seed(3)
        .initial_deals(300)
        .start()
        .await
        .unwrap();
    let dir = temp_dir("roundtrip");
    let recorder = Recorder::create(&dir).unwrap();
    let recorded = calls(
        &client(KEY, server.base_url(), Some(&recorder)),
        &client(WRONG_KEY, server.base_url(), Some(&recorder)),
    )
    .await;
    server.shutdown().await;
    assert!(matches!(recorded[3], Err(ApiError::Rejected(_))));
    assert!(matches!(recorded[4], Err(ApiError::Rejected(_))));

    let files = texts(&dir);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "0001-token.json",
            "0002-deal.json",
            "0003-product.json",
            "0004-product.json",
            "0005-token.json"
        ]
    );
    for (name, text) in &files {
        assert!(!text.contains(KEY), "{name} holds the key");
        assert!(!text.contains(WRONG_KEY), "{name} holds the other key");
    }
    let answers: Vec<_> = read_dir(&dir)
        .unwrap()
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 200, 200, 400, 400]);
    let deal = &answers[1];
    assert_eq!(deal.method, "POST");
    assert_eq!(deal.request_body.as_ref().unwrap()["priceTypes"][0], 0);
    assert!(
        answers[2].query.starts_with("domain=1&asin="),
        "{}",
        answers[2].query
    );
    assert!(answers[2].query.contains("&stats=90"));
    assert!(answers.iter().all(|a| !a.query.contains("key")));
    assert!(answers[0].header("content-type").unwrap().contains("json"));
    assert!(
        answers[4].body.contains(r#""refillRate":0"#),
        "bad key: zero envelope"
    );
    assert_eq!(
        recorded[2].as_ref().unwrap().body(),
        answers[2].body.as_bytes(),
        "the body is recorded as received"
    );

    // The replay answers the same calls the same way, to a client with any key.
    let replay = ReplayServer::from_dir(&dir).await.unwrap();
    let replayed = calls(
        &client("ANOTHERKEY", replay.base_url(), None),
        &client("ANOTHERKEY", replay.base_url(), None),
    )
    .await;
    assert_eq!(replayed.len(), recorded.len());
    for (a, b) in recorded.iter().zip(&replayed) {
        same_outcome(a, b);
    }
    assert_eq!(replay.remaining(), 0);
    let past_the_end = client("K2", replay.base_url(), None)
        .send(&Request::token())
        .await;
    match past_the_end {
        Err(ApiError::NotFound(d)) => {
            let e = d.error.unwrap();
            assert!(e
                .message
                .unwrap()
                .contains("no recorded answer left for /token"));
        }
        other => panic!("expected 404, got {other:?}"),
    }
    replay.shutdown().await;

    // A second recorder on the same directory adds after the last file.
    let again = Recorder::create(&dir).unwrap();
    let fake = FakeKeepa::builder().keys([KEY]).start().await.unwrap();
    client(KEY, fake.base_url(), Some(&again))
        .send(&Request::token())
        .await
        .unwrap();
    fake.shutdown().await;
    assert_eq!(texts(&dir).last().unwrap().0, "0006-token.json");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_scale_announcement_is_recorded_and_replayed() {
    let server = FakeKeepa::builder()
        .keys([KEY])
        .time_scale(600.0)
        .start()
        .await
        .unwrap();
    let dir = temp_dir("scale");
    let recorder = Recorder::create(&dir).unwrap();
    let first = client(KEY, server.base_url(), Some(&recorder))
        .send(&Request::token())
        .await
        .unwrap();
    server.shutdown().await;
    assert_eq!(first.server_time_scale, Some(600.0));
    let (_, answer) = read_dir(&dir).unwrap().pop().unwrap();
    assert_eq!(answer.header(keepa::TIME_SCALE_HEADER), Some("600"));

    let replay = ReplayServer::from_dir(&dir).await.unwrap();
    let again = client("K", replay.base_url(), None)
        .send(&Request::token())
        .await
        .unwrap();
    assert_eq!(again.server_time_scale, Some(600.0));
    assert_eq!(again.envelope, first.envelope);
    replay.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_directory_that_cannot_be_created_is_a_typed_error_naming_it() {
    let file = temp_dir("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let err = Recorder::create(file.join("sub")).unwrap_err();
    assert!(err.to_string().contains("not-a-dir"), "{err}");
    let _ = std::fs::remove_file(&file);
}
