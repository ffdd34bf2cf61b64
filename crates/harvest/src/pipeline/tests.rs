//! The fetch path against fake-keepa on a hand-moved clock: a product
//! answer that cannot be read, or that carries an error in its 200, is a
//! failed call, retried within the retry budget, never "0 products, move
//! on"; an answer without any ASIN asked is retried before it is believed;
//! a charge the answer does not state is estimated, never zero.

use std::sync::{Arc, Mutex};

use budget::gate::Gate;
use fake_keepa::{FakeKeepa, RunningServer};
use keepa::clock::ManualClock;
use keepa::request::{ProductRequest, Request};
use keepa::{ApiKey, Client, CostModel, TokenSnapshot};
use tokio::sync::watch;

use super::*;
use crate::store::Batch;

const START_MS: i64 = 1_767_225_600_000;
const KEY: &str = "pipelinetestkey0123456789abcdef0123456789abcdef0123456789abcdef";

struct Rig {
    sh: Shared,
    server: RunningServer,
    dir: std::path::PathBuf,
    /// The server's clock.
    clock: ManualClock,
}

impl Rig {
    async fn new(faults: &str) -> Rig {
        Rig::with_config(faults, RunConfig::default_config()).await
    }

    async fn with_config(faults: &str, cfg: RunConfig) -> Rig {
        let clock = ManualClock::new(START_MS);
        let server = FakeKeepa::builder()
            .keys([KEY])
            .refill_per_minute(20)
            .start_tokens(1_000)
            .clock(clock.clone())
            .seed(7)
            .faults(faults.parse().unwrap())
            .start()
            .await
            .unwrap();
        let client = Client::builder(ApiKey::new(KEY.to_string()).unwrap())
            .base_url(server.base_url())
            .build()
            .unwrap();
        let gate = Gate::new(
            cfg.budget.policy,
            AnyLedger::default(),
            ScaledClock::new(START_MS, 1.0),
            None,
        );
        gate.observe_confirmed(TokenSnapshot {
            timestamp_ms: START_MS,
            tokens_left: 1_000,
            refill_in_ms: 60_000,
            refill_rate: 20,
        })
        .await
        .unwrap();
        let dir = std::env::temp_dir().join(format!(
            "keepa_harvest_pipeline_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let store = Store::open(&dir.join("h.db").display().to_string())
            .await
            .unwrap();
        let locks = store.locks().await.unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let sh = Shared {
            gate,
            client,
            cost: Arc::new(Mutex::new(CostModel::new())),
            store,
            domain: cfg.domain.id(),
            cfg: Arc::new(cfg),
            metrics: Metrics::new(),
            stop,
            stop_tx: Arc::new(stop_tx),
            claims: Arc::new(Claims::new(locks)),
            retry: RetryPolicy {
                max_attempts: 3,
                backoff_ms: 0,
            },
            target_deals: None,
            alert_wake: Default::default(),
        };
        Rig {
            sh,
            server,
            dir,
            clock,
        }
    }

    async fn finish(self) {
        self.sh.store.close().await;
        self.server.shutdown().await;
        let _ = std::fs::remove_dir_all(self.dir);
    }
}

fn network_attempts(r: Result<impl std::fmt::Debug, Halt>) -> (Job, Stage, u32) {
    match r {
        Err(Halt::Failed(HarvestError::Network {
            job,
            stage,
            attempts,
            ..
        })) => (job, stage, attempts),
        other => panic!("expected a Network failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_recheck_of_undecodable_answers_fails_after_the_retry_budget() {
    let rig = Rig::new("garbage=1").await;
    let mut pending = Batch::default();
    let asins = vec!["B000000001".to_string(), "B000000002".to_string()];
    let r = rig.sh.refetch(&RECHECK, &asins, &mut pending).await;
    assert_eq!(network_attempts(r), (Job::Recheck, Stage::Recheck, 3));
    // Every attempt reached the server, was charged and is in the ledger.
    assert_eq!(rig.server.stats().faults.garbage, 3);
    assert_eq!(pending.requests.len(), 3);
    assert!(pending.products.is_empty());
    for row in &pending.requests {
        assert_eq!(
            (row.job.as_str(), row.stage.as_str()),
            ("recheck", "recheck")
        );
        assert_ne!(row.status, "ok");
    }
    rig.finish().await;
}

#[tokio::test]
async fn an_answer_the_reader_cannot_read_is_retried_like_a_failed_call() {
    let rig = Rig::new("").await;
    let mut pending = Batch::default();
    let req = ProductRequest::asins(rig.sh.cfg.domain, ["B000000001"])
        .build()
        .unwrap();
    let need = Shared::bulk(&RECHECK, Prediction::exact(1), Prediction::exact(0), 1);
    let permit = rig
        .sh
        .acquire(RECHECK.id, RECHECK.name, need)
        .await
        .unwrap();
    // A model the answer does not match: an object is not a list.
    let r = rig
        .sh
        .send(
            &RECHECK,
            Stage::Recheck,
            permit,
            &req,
            "products",
            &mut pending,
            |r| r.parse::<Vec<u8>>(),
        )
        .await;
    assert_eq!(network_attempts(r), (Job::Recheck, Stage::Recheck, 3));
    assert_eq!(pending.requests.len(), 3);
    assert!(pending.requests.iter().all(|row| row.status == "ok"));
    rig.finish().await;
}

#[tokio::test]
async fn the_stages_and_the_recheck_fetch_products_the_same_way() {
    let rig = Rig::new("").await;
    let sh = &rig.sh;
    let mut pending = Batch::default();
    let req: Request = sh.cfg.selection.clone().with_page(0).build().unwrap();
    let permit = sh.acquire_page(&BACKFILL).await.unwrap();
    let (deals, held) = sh
        .feed_page(&BACKFILL, permit, &req, &mut pending)
        .await
        .unwrap();
    assert_eq!(deals.len(), held);
    assert!(deals.len() >= 2, "{} deals", deals.len());
    let asins: Vec<String> = deals.iter().take(2).map(|d| d.asin.clone()).collect();
    let found = sh.refetch(&RECHECK, &asins, &mut pending).await.unwrap();
    assert_eq!(found, 2);
    let shape = sh.deepest_shape();
    for row in &pending.products {
        assert_eq!(row.stage, shape.stage.as_str());
        assert!(row.tokens_charged > 0, "{row:?}");
    }
    let last = pending.requests.last().unwrap();
    assert_eq!(
        (last.job.as_str(), last.stage.as_str(), last.status.as_str()),
        ("recheck", "recheck", "ok")
    );
    rig.finish().await;
}

#[tokio::test]
async fn an_error_in_a_200_is_a_failed_call_never_no_data() {
    let rig = Rig::new("inbody=1").await;
    let mut pending = Batch::default();
    let asins = vec!["B000000001".to_string()];
    let r = rig.sh.refetch(&RECHECK, &asins, &mut pending).await;
    assert_eq!(network_attempts(r), (Job::Recheck, Stage::Recheck, 3));
    assert_eq!(rig.server.stats().faults.in_body, 3);
    assert!(pending.requests.iter().all(|row| row.status == "in-body"));
    assert_eq!(rig.sh.metrics.snapshot().in_body_errors, 3);
    rig.finish().await;
}

#[tokio::test]
async fn an_answer_without_any_asin_asked_is_retried_then_taken_as_it_is() {
    let rig = Rig::new("missing_asin=1").await;
    let mut pending = Batch::default();
    let asins = rig.server.book_asins(2);
    let found = rig
        .sh
        .refetch(&RECHECK, &asins, &mut pending)
        .await
        .unwrap();
    assert_eq!(found, 0);
    // Three calls (the retry budget), each answered "ok" but empty.
    assert_eq!(pending.requests.len(), 3);
    assert_eq!(rig.server.stats().faults.missing_asins, 6);
    assert_eq!(rig.sh.metrics.snapshot().retries, 2);
    rig.finish().await;
}

#[tokio::test]
async fn a_charge_the_answer_does_not_state_is_estimated_not_zero() {
    let rig = Rig::new("no_consumed=1").await;
    let mut pending = Batch::default();
    let asins = rig.server.book_asins(1);
    let before = rig.sh.cost_lock().clone();
    let found = rig
        .sh
        .refetch(&RECHECK, &asins, &mut pending)
        .await
        .unwrap();
    assert_eq!(found, 1);
    let row = &pending.requests[0];
    assert!(row.charged.is_some_and(|c| c > 0), "{row:?}");
    assert!(pending.products[0].tokens_charged > 0);
    assert_eq!(rig.sh.metrics.snapshot().charges_estimated, 1);
    // Nothing was taught to the cost model.
    assert_eq!(format!("{:?}", *rig.sh.cost_lock()), format!("{before:?}"));
    rig.finish().await;
}

/// Offers and data Keepa holds fresher than `max_age` are not collected:
/// a second re-check two hours later costs the flat 5 a product with
/// `max_age = "24h"`, and more with the default (1 h).
#[tokio::test]
async fn max_age_sends_update_and_fresh_offers_cost_five() {
    let mut cfg = RunConfig::default_config();
    cfg.recheck.max_age = Some(crate::config::MaxAge::Hours(24));
    let recheck_twice = |rig: Rig, later_min: i64| async move {
        let mut pending = Batch::default();
        let req: Request = rig.sh.cfg.selection.clone().with_page(0).build().unwrap();
        let permit = rig.sh.acquire_page(&BACKFILL).await.unwrap();
        let deals = rig
            .sh
            .feed_page(&BACKFILL, permit, &req, &mut pending)
            .await
            .unwrap();
        let asins: Vec<String> = deals.0.iter().take(10).map(|d| d.asin.clone()).collect();
        assert_eq!(
            rig.sh
                .refetch(&RECHECK, &asins, &mut pending)
                .await
                .unwrap(),
            10
        );
        rig.clock.advance_minutes(later_min);
        rig.server.set_balance(KEY, 1_000);
        assert_eq!(
            rig.sh
                .refetch(&RECHECK, &asins, &mut pending)
                .await
                .unwrap(),
            10
        );
        let last = pending.requests.last().unwrap();
        assert_eq!((last.items, last.status.as_str()), (10, "ok"));
        let charged = last.charged;
        rig.finish().await;
        charged
    };
    // 2 h later, with max_age = "24h": every offer list is the cached one
    // (collected by the first re-check, or by others within the day).
    let rig = Rig::with_config("", cfg).await;
    assert_eq!(
        rig.sh.deepest_shape().update,
        None,
        "the stages keep the default"
    );
    assert_eq!(recheck_twice(rig, 120).await, Some(10 * 5));
    // With the default, two hours make them due again.
    let rig = Rig::new("").await;
    let charged = recheck_twice(rig, 120).await.unwrap();
    assert!(charged > 10 * 5, "{charged}");
}
