//! The worker against a real SQLite store, a recording transport and a
//! hand-moved clock: no sleeps.

use std::sync::Mutex;

use keepa::clock::ManualClock;

use super::*;
use crate::config::{AlertKind, RunConfig};
use crate::store::{AlertMatch, Batch, DealRow};

/// Records every body; fails the first `fail` posts with a 503.
#[derive(Debug, Default)]
struct Recorder {
    fail: Mutex<u32>,
    bodies: Mutex<Vec<Value>>,
}

impl Transport for Recorder {
    fn post<'a>(&'a self, _url: &'a WebhookUrl, body: &'a Value) -> SendFuture<'a> {
        Box::pin(async move {
            let mut fail = self.fail.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err(SendError::Status {
                    status: 503,
                    detail: "busy".into(),
                    retry_after_s: None,
                });
            }
            self.bodies.lock().unwrap().push(body.clone());
            Ok(())
        })
    }
}

/// A time after every row's commit (rows are due from their wall-clock commit).
fn t0() -> i64 {
    keepa::clock::wall_unix_ms() + 60_000
}

async fn store() -> Store {
    let dir = std::env::temp_dir().join(format!(
        "keepa_harvest_alerts_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    Store::open(&dir.join("h.db").display().to_string())
        .await
        .unwrap()
}

fn config(format: &str) -> Vec<AlertConfig> {
    RunConfig::from_toml_str(
        &format!("[[alert]]\nname = \"a\"\nurl = \"http://127.0.0.1:9/secret-path\"\nformat = \"{format}\"\non = [\"new\", \"price_drop\"]\n"),
        "t.toml",
    )
    .unwrap()
    .alerts
}

fn deal(asin: &str, seen: i64, used: i64) -> (DealRow, AlertMatch) {
    let row = DealRow {
        asin: asin.into(),
        domain: 1,
        price_type: 2,
        current_used: Some(used),
        seen_at_ms: seen,
        ..Default::default()
    };
    let m = AlertMatch {
        alert: "a".into(),
        domain: 1,
        asin: asin.into(),
        on: vec![AlertKind::New, AlertKind::PriceDrop],
        payload: crate::alerts::object("a", &row, &Default::default()),
    };
    (row, m)
}

async fn commit(store: &Store, deals: &[(DealRow, AlertMatch)]) -> crate::store::Committed {
    let mut b = Batch::default();
    for (r, m) in deals {
        b.deals.push(r.clone());
        b.alerts.push(m.clone());
    }
    store.commit(b).await.unwrap()
}

fn worker(store: &Store, t: Arc<Recorder>, clock: &ManualClock, metrics: &Arc<Metrics>) -> Worker {
    Worker::new(
        store.clone(),
        WorkerSettings::new(config("json")),
        t,
        Arc::new(clock.clone()),
        metrics.clone(),
    )
}

#[test]
fn backoff_doubles_from_two_seconds_to_an_hour() {
    assert_eq!(backoff_ms(1), 2_000);
    assert_eq!(backoff_ms(2), 4_000);
    assert_eq!(backoff_ms(5), 32_000);
    assert_eq!(backoff_ms(12), MAX_BACKOFF_MS);
    assert_eq!(backoff_ms(u32::MAX), MAX_BACKOFF_MS);
    assert_eq!(backoff_ms(0), 2_000);
}

#[tokio::test]
async fn a_new_deal_is_queued_once_and_a_drop_once_per_price() {
    let s = store().await;
    let c = commit(&s, &[deal("B1", 10, 1000), deal("B2", 10, 500)]).await;
    assert_eq!((c.alerts_queued, c.alerts_deduplicated), (2, 0));
    // The same sighting again: not new, no drop.
    let c = commit(&s, &[deal("B1", 10, 1000)]).await;
    assert_eq!((c.alerts_queued, c.alerts_deduplicated), (0, 0));
    // Drop to 900, back up, down to 900 again: one price_drop for 900.
    assert_eq!(commit(&s, &[deal("B1", 20, 900)]).await.alerts_queued, 1);
    assert_eq!(commit(&s, &[deal("B1", 30, 1000)]).await.alerts_queued, 0);
    let c = commit(&s, &[deal("B1", 40, 900)]).await;
    assert_eq!((c.alerts_queued, c.alerts_deduplicated), (0, 1));
    // An older sighting at a lower price is no drop.
    assert_eq!(commit(&s, &[deal("B1", 35, 100)]).await.alerts_queued, 0);
    let counts = s.alerts_counts().await.unwrap();
    assert_eq!((counts.pending, counts.delivered), (3, 0));
}

#[tokio::test]
async fn a_failed_send_waits_its_backoff_then_is_delivered_once() {
    let s = store().await;
    commit(&s, &[deal("B1", 10, 1000)]).await;
    let clock = ManualClock::new(t0());
    let t = Arc::new(Recorder {
        fail: Mutex::new(2),
        ..Default::default()
    });
    let m = Metrics::new();
    let w = worker(&s, t.clone(), &clock, &m);
    assert_eq!(w.round().await.unwrap().failed, 1);
    let counts = s.alerts_counts().await.unwrap();
    assert_eq!((counts.pending, counts.failing), (1, 1));
    clock.advance_ms(1_999);
    assert_eq!(
        w.round().await.unwrap().claimed,
        0,
        "not before its backoff"
    );
    clock.advance_ms(1);
    assert_eq!(w.round().await.unwrap().failed, 1);
    clock.advance_ms(3_999);
    assert_eq!(w.round().await.unwrap().claimed, 0, "second backoff is 4 s");
    clock.advance_ms(1);
    assert_eq!(w.round().await.unwrap().delivered, 1);
    assert_eq!(w.round().await.unwrap().claimed, 0);
    let counts = s.alerts_counts().await.unwrap();
    assert_eq!(
        (counts.pending, counts.delivered, counts.failing),
        (0, 1, 0)
    );
    let sent = t.bodies.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["key"], "a:1:B1:new:10");
    let a = m.snapshot().alerts;
    assert_eq!((a.delivered, a.retried, a.duplicates), (1, 2, 0));
}

#[tokio::test]
async fn a_claim_a_crash_lost_is_sent_again_and_counted() {
    let s = store().await;
    commit(&s, &[deal("B1", 10, 1000), deal("B2", 10, 1000)]).await;
    let clock = ManualClock::new(t0());
    // A sender claims both rows and dies before any outcome.
    let claimed = s.alerts_claim(&["a".into()], t0(), 0, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let t = Arc::new(Recorder::default());
    let m = Metrics::new();
    let w = worker(&s, t.clone(), &clock, &m);
    assert_eq!(
        w.round().await.unwrap().claimed,
        0,
        "claimed rows are not sent twice at once"
    );
    assert_eq!(w.recover().await.unwrap(), 2);
    assert_eq!(w.round().await.unwrap().delivered, 2);
    assert_eq!(m.snapshot().alerts.duplicates, 2);
    assert_eq!(s.alerts_counts().await.unwrap().pending, 0);
}

#[tokio::test]
async fn a_stored_error_names_the_status_not_the_url() {
    let s = store().await;
    commit(&s, &[deal("B1", 10, 1000)]).await;
    let clock = ManualClock::new(t0());
    let t = Arc::new(Recorder {
        fail: Mutex::new(1),
        ..Default::default()
    });
    let w = worker(&s, t, &clock, &Metrics::new());
    w.round().await.unwrap();
    let e = SendError::Status {
        status: 503,
        detail: "busy".into(),
        retry_after_s: None,
    };
    assert_eq!(e.to_string(), "HTTP 503: busy");
    let last = s.alerts_last_error().await.unwrap();
    assert_eq!(last.as_deref(), Some("HTTP 503: busy"));
}

#[tokio::test]
async fn send_test_reports_each_target() {
    let t = Recorder {
        fail: Mutex::new(1),
        ..Default::default()
    };
    let mut alerts = config("slack");
    alerts.extend(config("discord").into_iter().map(|mut a| {
        a.name = "b".into();
        a
    }));
    let r = send_test(&alerts, &t).await;
    assert_eq!(r.len(), 2);
    assert!(r[0].1.is_err());
    assert!(r[1].1.is_ok());
    let sent = t.bodies.lock().unwrap().clone();
    assert!(sent[0]["content"]
        .as_str()
        .unwrap()
        .starts_with("**Test alert**"));
}
