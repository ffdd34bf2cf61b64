//! Replaying a recording: a server that answers each request with the next
//! recorded answer for its endpoint.
//!
//! A recording is what `keepa-harvest run --record DIR` or `api --record
//! DIR` wrote (see [`keepa::record`]), or answers a test builds. The
//! [`ReplayServer`] keeps one queue per endpoint in recording order and
//! answers a request to `/product` with the next `product` answer, whatever
//! the query: status, kept headers (the time-scale announcement included)
//! and body exactly as recorded, uncompressed. When an endpoint's queue is
//! empty it answers 404 with an `error` object saying so. It checks no key
//! and meters no tokens: the recorded envelopes are the token state.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), fake_keepa::FakeError> {
//! use fake_keepa::replay::ReplayServer;
//! use keepa::record::RecordedAnswer;
//!
//! let body = r#"{"tokensLeft":5,"refillIn":100,"refillRate":5,"tokensConsumed":0}"#;
//! let server = ReplayServer::start(vec![RecordedAnswer::new("token", 200, body)]).await?;
//! assert_eq!(server.remaining(), 1);
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use keepa::record::RecordedAnswer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::FakeError;

type Queues = HashMap<String, VecDeque<RecordedAnswer>>;

/// A running replay server; it stops when shut down or dropped.
#[derive(Debug)]
pub struct ReplayServer {
    addr: SocketAddr,
    queues: Arc<Mutex<Queues>>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl ReplayServer {
    /// Serves `answers` on 127.0.0.1 (a free port).
    pub async fn start(answers: Vec<RecordedAnswer>) -> Result<ReplayServer, FakeError> {
        ReplayServer::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), answers).await
    }

    /// Serves the recording in `dir` (in recording order) on 127.0.0.1.
    pub async fn from_dir(dir: &Path) -> Result<ReplayServer, FakeError> {
        let answers = keepa::record::read_dir(dir)?;
        ReplayServer::start(answers.into_iter().map(|(_, a)| a).collect()).await
    }

    /// Serves `answers` on `bind`.
    pub async fn start_on(
        bind: SocketAddr,
        answers: Vec<RecordedAnswer>,
    ) -> Result<ReplayServer, FakeError> {
        let bind_err = |source| FakeError::Bind { addr: bind, source };
        let listener = TcpListener::bind(bind).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let mut queues = Queues::new();
        for a in answers {
            let endpoint = a.endpoint.trim_matches('/').to_string();
            queues.entry(endpoint).or_default().push_back(a);
        }
        let queues = Arc::new(Mutex::new(queues));
        let (shutdown, stop) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, queues.clone(), stop));
        Ok(ReplayServer {
            addr,
            queues,
            shutdown,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Recorded answers not served yet.
    pub fn remaining(&self) -> usize {
        lock(&self.queues).values().map(VecDeque::len).sum()
    }

    /// Stops accepting and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

fn lock(queues: &Mutex<Queues>) -> std::sync::MutexGuard<'_, Queues> {
    queues.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept_loop(
    listener: TcpListener,
    queues: Arc<Mutex<Queues>>,
    mut stop: watch::Receiver<bool>,
) {
    let for_connections = stop.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let queues = queues.clone();
                let mut stop = for_connections.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let answer = next_answer(&queues, &req);
                        async move { Ok::<_, Infallible>(answer) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.wait_for(|s| *s) => {}
                    }
                });
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
}

/// The next recorded answer for the request's endpoint, or a 404 saying
/// the recording has none left.
fn next_answer(queues: &Mutex<Queues>, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let endpoint = req.uri().path().trim_matches('/').to_string();
    let Some(answer) = lock(queues)
        .get_mut(&endpoint)
        .and_then(VecDeque::pop_front)
    else {
        let body = serde_json::json!({"error": {
            "type": "notFound",
            "message": format!("replay: no recorded answer left for /{endpoint}"),
        }});
        let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    };
    let mut r = Response::new(Full::new(Bytes::from(answer.body.into_bytes())));
    *r.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (name, value) in &answer.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            r.headers_mut().insert(n, v);
        }
    }
    r
}
