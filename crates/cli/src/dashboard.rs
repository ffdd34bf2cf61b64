//! The web dashboard of `serve` and `run --ui`: one static page (HTML and
//! vanilla JavaScript embedded in the binary, no build step) that polls
//! `GET /api/state`, a JSON document read from the database on each
//! request; and `GET /metrics` when a run's [`Metrics`] are at hand. Any
//! other path or method is 404. The state holds no key and no database
//! password (the store's name is redacted).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use harvest::metrics::Metrics;
use harvest::store::{DashboardData, DealView, StatusReport, Store};
use serde::Serialize;
use tokio::sync::watch;

use crate::metrics_http::{not_found, scrape, serve};

pub(crate) mod sampler;

/// The page: HTML, CSS and JavaScript in one file.
const INDEX_HTML: &str = include_str!("dashboard/index.html");

/// What the dashboard reads: a store, and the run's target for the ETA.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) store: Store,
    pub(crate) target_deals: Option<u64>,
}

/// Binds `addr` (a usage error naming `flag` if it cannot) and serves the
/// dashboard (and `/metrics` when `metrics` is given) until `stop` turns
/// true. Returns the bound address.
pub(crate) async fn start(
    addr: SocketAddr,
    flag: &str,
    source: Source,
    metrics: Option<Arc<Metrics>>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    serve(addr, flag, router(source, metrics), stop).await
}

/// `/`, `/api/state` and (with `metrics`) `/metrics`; 404 elsewhere.
pub(crate) fn router(source: Source, metrics: Option<Arc<Metrics>>) -> Router {
    let mut app = Router::new()
        .route("/", get(index))
        .route("/api/state", get(api_state));
    if let Some(m) = metrics {
        app = app.route("/metrics", scrape(m));
    }
    app.fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(Arc::new(source))
}

async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        INDEX_HTML,
    )
}

async fn api_state(State(source): State<Arc<Source>>) -> Response {
    match state(&source).await {
        Ok(s) => ([(header::CACHE_CONTROL, "no-store")], Json(s)).into_response(),
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "dashboard: reading the state failed"
            );
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({ "error": format!("{e:#}") })),
            )
                .into_response()
        }
    }
}

/// The document `/api/state` answers (its keys: README "The dashboard").
#[derive(Debug, Serialize)]
pub(crate) struct DashboardState {
    /// The database, password removed.
    pub(crate) db: String,
    /// This machine's clock, Unix ms.
    pub(crate) wall_ms: i64,
    /// Counts, token use, checkpoints, ETA (what `status --json` shows).
    pub(crate) status: StatusReport,
    /// Each job's position in words, as `status` prints it.
    pub(crate) jobs: Vec<String>,
    /// Budget series, rejections, alert state.
    #[serde(flatten)]
    pub(crate) data: DashboardData,
    /// The newest deals with their Amazon and Keepa links.
    pub(crate) deals: Vec<DealLinks>,
}

/// A stored deal and where to look at it.
#[derive(Debug, Serialize)]
pub(crate) struct DealLinks {
    #[serde(flatten)]
    pub(crate) deal: DealView,
    /// The product page on Amazon (`None` for an unknown domain id).
    pub(crate) amazon_url: Option<String>,
    /// The product page on Keepa.
    pub(crate) keepa_url: String,
}

/// Reads the state: the status report as `status` would (windows ending
/// at the newest request, the harvest's clock), then the dashboard's data.
pub(crate) async fn state(source: &Source) -> anyhow::Result<DashboardState> {
    let store = &source.store;
    let wall = keepa::clock::wall_unix_ms();
    let mut report = store.status(wall).await.context("reading the status")?;
    if let Some(latest) = report.latest_request_ms.filter(|&l| l != wall) {
        report = store.status(latest).await.context("reading the status")?;
    }
    if let Some(target) = source.target_deals {
        report.set_target(target);
    }
    let mut data = store
        .dashboard(report.now_ms)
        .await
        .context("reading the dashboard's data")?;
    let deals = std::mem::take(&mut data.newest_deals)
        .into_iter()
        .map(links)
        .collect();
    Ok(DashboardState {
        db: store.display_name().to_string(),
        wall_ms: wall,
        jobs: crate::commands::status::job_lines(&report, wall),
        status: report,
        data,
        deals,
    })
}

fn links(deal: DealView) -> DealLinks {
    let amazon_url = keepa::Domain::try_from(deal.domain)
        .ok()
        .map(|d| format!("https://www.amazon.{}/dp/{}", d.suffix(), deal.asin));
    let keepa_url = format!("https://keepa.com/#!product/{}-{}", deal.domain, deal.asin);
    DealLinks {
        deal,
        amazon_url,
        keepa_url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_name_the_marketplace_and_keepa() {
        let deal = DealView {
            domain: 3,
            asin: "B0TEST0001".into(),
            title: None,
            buy_box: None,
            amazon: None,
            new: None,
            used: None,
            sales_rank: None,
            drop_percent_month: None,
            first_seen_ms: 0,
            lowest_used_offer: None,
            offers_new: None,
            offers_used: None,
        };
        let l = links(deal.clone());
        assert_eq!(
            l.amazon_url.as_deref(),
            Some("https://www.amazon.de/dp/B0TEST0001")
        );
        assert_eq!(l.keepa_url, "https://keepa.com/#!product/3-B0TEST0001");
        assert_eq!(links(DealView { domain: 7, ..deal }).amazon_url, None);
    }
}
