//! The run's Prometheus endpoint on axum: `GET /metrics` (and `GET /`)
//! answers [`Metrics::render_prometheus`] (OpenMetrics text, rendered by
//! `prometheus-client`); any other path or method gets 404. The text holds
//! no key and no URL (see [`harvest::metrics`]). [`serve`] is the accept
//! loop the dashboard shares.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, MethodRouter};
use axum::Router;
use harvest::metrics::{Metrics, PROMETHEUS_CONTENT_TYPE};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::exit::usage;

/// Binds `addr`, logs the bound address (`metrics at http://ADDR/metrics`)
/// and serves in a task of its own until `stop` turns true (or its sender
/// is dropped); then it accepts no more connections. A failure to bind is
/// a usage error naming the address. Returns the bound address.
pub(crate) async fn start(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    let bound = serve(addr, "--metrics-addr", router(metrics), stop).await?;
    tracing::info!(addr = %bound, "metrics at http://{bound}/metrics");
    Ok(bound)
}

/// Binds `addr` and serves `app` in a task of its own until `stop` turns
/// true (or its sender is dropped). A failure to bind is a usage error
/// naming `flag` and the address. Returns the bound address.
pub(crate) async fn serve(
    addr: SocketAddr,
    flag: &str,
    app: Router,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| usage(format!("{flag} {addr}: {e}")))?;
    let bound = listener.local_addr().unwrap_or(addr);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::warn!(error = %e, "HTTP endpoint {bound} stopped");
        }
    });
    Ok(bound)
}

/// `GET` (and `HEAD`) answering the metrics text, in a router of any state.
pub(crate) fn scrape<S: Clone + Send + Sync + 'static>(metrics: Arc<Metrics>) -> MethodRouter<S> {
    get(move || {
        let metrics = metrics.clone();
        async move {
            (
                [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
                metrics.render_prometheus(),
            )
        }
    })
}

/// `/metrics` and `/` answer the text to GET (and HEAD); everything else is 404.
fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", scrape(metrics.clone()))
        .route("/", scrape(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
}

/// 404, plain text.
pub(crate) async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    async fn request(addr: SocketAddr, head: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    fn get(path: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    }

    #[tokio::test]
    async fn serves_the_text_at_metrics_404_elsewhere_and_stops_on_the_signal() {
        let metrics = Metrics::new();
        metrics.request("backfill", "feed", "200", 5);
        let (stop_tx, stop) = watch::channel(false);
        let addr = start("127.0.0.1:0".parse().unwrap(), metrics, stop)
            .await
            .unwrap();
        assert_ne!(addr.port(), 0);

        let ok = request(addr, &get("/metrics")).await;
        let (head, body) = ok.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/openmetrics-text; version=1.0.0"),
            "{head}"
        );
        assert!(
            body.contains("keepa_harvest_tokens_spent_total{job=\"backfill\",stage=\"feed\"} 5"),
            "{body}"
        );
        assert!(body.trim_end().ends_with("# EOF"), "{body}");
        assert!(request(addr, &get("/")).await.starts_with("HTTP/1.1 200"));
        for other in [
            get("/nope"),
            get("/metrics/x"),
            "POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
                .to_string(),
        ] {
            let resp = request(addr, &other).await;
            assert!(resp.starts_with("HTTP/1.1 404"), "{other}: {resp}");
        }
        // Garbage is answered (400) or dropped, never a panic.
        let _ = request(addr, "\0\0 not http\r\n\r\n").await;
        assert!(request(addr, &get("/metrics"))
            .await
            .starts_with("HTTP/1.1 200"));

        stop_tx.send(true).unwrap();
        // Once stopped, connections are refused (the listener is closed).
        for _ in 0..1000 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("still accepting after the stop signal");
    }

    #[tokio::test]
    async fn a_busy_address_is_a_usage_error_naming_it() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let (_tx, stop) = watch::channel(false);
        let err = start(addr, Metrics::new(), stop).await.unwrap_err();
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
