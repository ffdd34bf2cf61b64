//! The alert outbox on each backend: a match is queued with its deal once
//! per version, and a row is claimed by one sender at a time.

use harvest::config::AlertKind;
use harvest::store::{AlertMatch, Batch, Store};

use super::deal;

fn matched(asin: &str, seen: i64, used: i64) -> Batch {
    let mut d = deal(asin, seen);
    d.current_used = Some(used);
    Batch {
        alerts: vec![AlertMatch {
            alert: "a".into(),
            domain: 1,
            asin: asin.into(),
            on: vec![AlertKind::New, AlertKind::PriceDrop],
            payload: serde_json::json!({ "asin": asin }),
        }],
        deals: vec![d],
        ..Batch::default()
    }
}

pub async fn alert_outbox_queues_once_per_version_and_claims_once(db: &str) {
    let store = Store::open(db).await.unwrap();
    let queued = |b: Batch| {
        let store = store.clone();
        async move {
            let c = store.commit(b).await.unwrap();
            (c.alerts_queued, c.alerts_deduplicated)
        }
    };
    assert_eq!(queued(matched("B1", 10, 1000)).await, (1, 0), "new");
    assert_eq!(queued(matched("B1", 10, 1000)).await, (0, 0), "replayed");
    assert_eq!(queued(matched("B1", 20, 900)).await, (1, 0), "drop to 900");
    assert_eq!(queued(matched("B1", 30, 1000)).await, (0, 0), "back up");
    assert_eq!(queued(matched("B1", 40, 900)).await, (0, 1), "900 again");

    // Rows are due from their (wall-clock) commit; `t` is after it.
    let t = keepa::clock::wall_unix_ms() + 60_000;
    // Two handles (two processes' pools): a row goes to one of them.
    let other = Store::open(db).await.unwrap();
    let names = vec!["a".to_string()];
    let mine = store.alerts_claim(&names, t, 0, 10).await.unwrap();
    assert_eq!(mine.len(), 2);
    assert!(other
        .alerts_claim(&names, t, 0, 10)
        .await
        .unwrap()
        .is_empty());
    // Past the lease, the other takes them over and sees that it did.
    let taken = other.alerts_claim(&names, t + 70_000, t, 10).await.unwrap();
    assert_eq!(taken.len(), 2);
    assert!(taken.iter().all(|r| r.taken_over));
    other
        .alerts_failed(taken[0].id, "HTTP 500", t + 80_000)
        .await
        .unwrap();
    other
        .alerts_delivered(taken[1].id, t + 70_001)
        .await
        .unwrap();
    let c = store.alerts_counts().await.unwrap();
    assert_eq!((c.pending, c.delivered, c.failing), (1, 1, 1));
    assert_eq!(store.alerts_pending(&names).await.unwrap(), 1);
    assert_eq!(
        store.alerts_last_error().await.unwrap().as_deref(),
        Some("HTTP 500")
    );
    let early = store.alerts_claim(&names, t + 79_999, 0, 10).await.unwrap();
    assert!(early.is_empty(), "not before its backoff");
    let again = store.alerts_claim(&names, t + 80_000, 0, 10).await.unwrap();
    assert_eq!(
        (again.len(), again[0].attempts, again[0].taken_over),
        (1, 1, false)
    );
    assert_eq!(store.alerts_release_abandoned(t + 80_000).await.unwrap(), 1);
    other.close().await;
    store.close().await;
}
