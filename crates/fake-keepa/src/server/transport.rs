//! The transport: the hyper accept loop, one task per connection, and what
//! happens to an answer on the wire (latency, hangs, resets, garbage
//! bodies, gzip, headers).

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::Rng;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::routing::{admin_route, keepa_route, Outcome, ENDPOINTS};
use super::{lock, Shared};

/// Largest request body read (a deal selection is a few hundred bytes).
const MAX_BODY: usize = 1 << 20;

/// The IO of one connection, which a handler can kill to simulate a reset.
struct KillableIo {
    inner: TcpStream,
    kill: Arc<AtomicBool>,
}

impl KillableIo {
    fn killed(&self) -> bool {
        if self.kill.load(Ordering::SeqCst) {
            // Linger 0: closing sends RST instead of FIN. A zero linger never blocks.
            #[allow(deprecated)]
            let _ = self.inner.set_linger(Some(Duration::ZERO));
            true
        } else {
            false
        }
    }
}

fn reset_err() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "fault injection: reset",
    )
}

impl AsyncRead for KillableIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(reset_err()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.killed() {
            return Poll::Ready(Err(reset_err()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Accepts connections until shutdown.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let for_connections = shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let mut stop = for_connections.clone();
                tokio::spawn(async move {
                    let kill = Arc::new(AtomicBool::new(false));
                    let io = TokioIo::new(KillableIo { inner: stream, kill: kill.clone() });
                    let svc = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        let kill = kill.clone();
                        async move { Ok::<_, Infallible>(handle(shared, peer, kill, req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(io, svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.wait_for(|s| *s) => {}
                    }
                });
            }
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// A JSON answer, gzip if asked.
pub(super) fn respond(status: StatusCode, body: &Value, gzip_it: bool) -> Response<Full<Bytes>> {
    let raw = serde_json::to_vec(body).unwrap_or_default();
    respond_bytes(status, raw, gzip_it)
}

fn respond_bytes(status: StatusCode, raw: Vec<u8>, gzip_it: bool) -> Response<Full<Bytes>> {
    if gzip_it {
        respond_gzipped(status, gzip(&raw))
    } else {
        json_response(status, None, raw)
    }
}

/// An answer whose body is already gzip (or a cut gzip stream).
fn respond_gzipped(status: StatusCode, z: Vec<u8>) -> Response<Full<Bytes>> {
    json_response(status, Some("gzip"), z)
}

fn json_response(
    status: StatusCode,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json;charset=UTF-8");
    if let Some(encoding) = encoding {
        builder = builder.header("content-encoding", encoding);
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Adds [`keepa::TIME_SCALE_HEADER`] when the server's clock runs at a
/// known speed other than real time.
fn announce_time_scale(
    mut response: Response<Full<Bytes>>,
    shared: &Shared,
) -> Response<Full<Bytes>> {
    if let Some(scale) = shared.clock.time_scale().filter(|s| *s != 1.0) {
        if let Ok(v) = HeaderValue::from_str(&scale.to_string()) {
            response.headers_mut().insert(keepa::TIME_SCALE_HEADER, v);
        }
    }
    response
}

async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    kill: Arc<AtomicBool>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let path = parts.uri.path().to_string();
    let query: Vec<(String, String)> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    if let Some(admin) = path.strip_prefix("/_fake/") {
        let accepts_gzip = parts
            .headers
            .get("accept-encoding")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("gzip"));
        return admin_route(
            &shared,
            peer,
            &parts.method,
            admin,
            &query,
            &body,
            accepts_gzip,
        );
    }
    let name = path.trim_matches('/');
    let endpoint = ENDPOINTS.iter().copied().find(|e| *e == name);
    let outcome = keepa_route(
        &shared,
        &kill,
        endpoint,
        &parts.method,
        &query,
        &body,
        started,
    )
    .await;
    if let (Some("token"), Some(d)) = (endpoint, shared.settings.faults.slow_token) {
        sleep_unless_shutdown(&shared, d).await;
    }
    let response = deliver(&shared, outcome).await;
    announce_time_scale(response, &shared)
}

/// Puts a Keepa answer on the wire, with the latency, hang and garbage the
/// fault draw asked for.
async fn deliver(shared: &Shared, outcome: Outcome) -> Response<Full<Bytes>> {
    let Outcome {
        status,
        body,
        hang,
        garbage,
    } = outcome;
    if let Some((lo, hi)) = shared.settings.faults.latency {
        let d = {
            let mut r = lock(&shared.fault_rng);
            if hi > lo {
                r.random_range(lo..=hi)
            } else {
                lo
            }
        };
        sleep_unless_shutdown(shared, d).await;
    }
    if hang {
        sleep_unless_shutdown(shared, shared.settings.faults.hang_for).await;
    }
    let mut raw = serde_json::to_vec(&body).unwrap_or_default();
    if let Some(cut_gzip) = garbage {
        if cut_gzip {
            let mut z = gzip(&raw);
            z.truncate(z.len() / 2);
            return respond_gzipped(status, z);
        }
        raw.truncate(raw.len() / 2);
        raw.extend_from_slice(b"\x00<html>garbage");
    }
    respond_bytes(status, raw, true)
}

async fn sleep_unless_shutdown(shared: &Shared, d: Duration) {
    let mut stop = shared.shutdown.clone();
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
}
