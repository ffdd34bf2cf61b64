//! The HTTP shell: accept loop, routing, Keepa's token rules per key,
//! errors, gzip and fault injection.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use keepa::tokens::{Admission, BucketCap, RateSchedule, TokenBucket};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::catalog::{category, Catalog, MINUTES_PER_DAY, ROOTS};
use crate::clock::Clock;
use crate::faults::FaultSpec;
use crate::feed::{deal_json, DealFeed, Selection};
use crate::render::{category_json, live_offers, product_json, seller_json, ProductOptions};
use crate::stats::{label, FaultCounts, KeyStats, RefillRecord, ServerStats, REFILL_HISTORY};

/// Largest request body read (a deal selection is a few hundred bytes).
const MAX_BODY: usize = 1 << 20;

/// How the server was configured, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) keys: Vec<String>,
    pub(crate) expired_keys: Vec<String>,
    pub(crate) schedule_minutes: Vec<(i64, i64)>,
    pub(crate) cap: BucketCap,
    pub(crate) start_tokens: Option<i64>,
    pub(crate) faults: FaultSpec,
    pub(crate) seed: u64,
}

#[derive(Debug)]
struct Foreign {
    rng: ChaCha8Rng,
    next_at: i64,
}

#[derive(Debug)]
struct Account {
    key: String,
    bucket: TokenBucket,
    requests: BTreeMap<String, BTreeMap<u16, u64>>,
    tokens_charged: i64,
    refused_429: u64,
    min_balance: i64,
    steps_total: u64,
    wasted: i64,
    steps: VecDeque<RefillRecord>,
    foreign: Option<Foreign>,
    foreign_spent: i64,
    foreign_requests: u64,
    foreign_refused: u64,
    /// Products served in charged answers, and which (index, request shape).
    products_served: u64,
    products_served_again: u64,
    served: std::collections::HashSet<(u32, String)>,
}

impl Account {
    fn advance(&mut self, t: i64) {
        let (steps, total, wasted) = (&mut self.steps, &mut self.steps_total, &mut self.wasted);
        self.bucket.advance_with(t, |s| {
            *total += 1;
            *wasted += s.wasted;
            if steps.len() == REFILL_HISTORY {
                steps.pop_front();
            }
            steps.push_back(RefillRecord {
                at_ms: s.at_ms,
                rate: s.rate,
                balance_after: s.balance_after,
            });
        });
    }

    /// Brings the account to `now`: refill steps and foreign spends strictly
    /// before `now` (at equal instants our own request goes first).
    fn sync(&mut self, now: i64, spec: &FaultSpec) {
        if spec.foreign_per_minute > 0.0 {
            let mean_cost = (1 + spec.foreign_max_cost) as f64 / 2.0;
            let per_ms = spec.foreign_per_minute / mean_cost / 60_000.0;
            while let Some(f) = self.foreign.as_mut() {
                if f.next_at >= now {
                    break;
                }
                let at = f.next_at;
                let cost = f.rng.random_range(1..=spec.foreign_max_cost);
                let u: f64 = f.rng.random::<f64>().max(1e-12);
                f.next_at = at + ((-u.ln()) / per_ms).max(1.0) as i64;
                self.advance(at);
                match self.bucket.try_spend(at, cost) {
                    Admission::Admitted { balance_after } => {
                        self.foreign_spent += cost;
                        self.foreign_requests += 1;
                        self.min_balance = self.min_balance.min(balance_after);
                    }
                    Admission::Refused => self.foreign_refused += 1,
                }
            }
        }
        self.advance(now);
    }

    fn count(&mut self, endpoint: &str, status: u16) {
        *self
            .requests
            .entry(endpoint.to_string())
            .or_default()
            .entry(status)
            .or_default() += 1;
    }

    fn snapshot(&self, now: i64) -> KeyStats {
        KeyStats {
            key: self.key.clone(),
            label: label(&self.key),
            requests: self.requests.clone(),
            tokens_charged: self.tokens_charged,
            refused_429: self.refused_429,
            balance: self.bucket.balance(),
            min_balance: self.min_balance,
            refill_rate: self.bucket.rate_at(now),
            refill_steps_total: self.steps_total,
            wasted_refill: self.wasted,
            refill_steps: self.steps.iter().copied().collect(),
            foreign_spent: self.foreign_spent,
            foreign_requests: self.foreign_requests,
            products_served: self.products_served,
            products_served_again: self.products_served_again,
            foreign_refused: self.foreign_refused,
        }
    }
}

#[derive(Debug, Default)]
struct Books {
    accounts: Vec<Account>,
    by_key: HashMap<String, usize>,
    rejected: BTreeMap<String, BTreeMap<u16, u64>>,
    faults: FaultCounts,
}

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: Settings,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) start_ms: i64,
    feed: DealFeed,
    books: Mutex<Books>,
    fault_rng: Mutex<ChaCha8Rng>,
    shutdown: watch::Receiver<bool>,
}

/// A server-side problem with a request: status, error type, message, details.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    details: Option<Value>,
}

impl ApiError {
    fn bad(param: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "invalidParameter",
            message: message.into(),
            details: Some(json!([{"type": param, "message": "invalid"}])),
        }
    }

    fn domain() -> Self {
        ApiError::bad("domain", "invalid domain")
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(
        clock: Arc<dyn Clock>,
        settings: Settings,
        catalog: Arc<Catalog>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, keepa::tokens::ScheduleError> {
        let start_ms = catalog.schedule.start_ms;
        let schedule = RateSchedule::from_minutes(start_ms, &settings.schedule_minutes)?;
        let mut books = Books::default();
        for (i, key) in settings.keys.iter().enumerate() {
            if books.by_key.contains_key(key) {
                continue;
            }
            let bucket = TokenBucket::new(
                schedule.clone(),
                settings.cap,
                settings.start_tokens,
                start_ms,
            );
            let foreign = (settings.faults.foreign_per_minute > 0.0).then(|| {
                let mut rng = crate::rng::rng(settings.seed, 900, i as u64);
                let mean_cost = (1 + settings.faults.foreign_max_cost) as f64 / 2.0;
                let per_ms = settings.faults.foreign_per_minute / mean_cost / 60_000.0;
                let u: f64 = rng.random::<f64>().max(1e-12);
                Foreign {
                    next_at: start_ms + ((-u.ln()) / per_ms).max(1.0) as i64,
                    rng,
                }
            });
            books.by_key.insert(key.clone(), books.accounts.len());
            books.accounts.push(Account {
                key: key.clone(),
                min_balance: bucket.balance(),
                bucket,
                requests: BTreeMap::new(),
                tokens_charged: 0,
                refused_429: 0,
                steps_total: 0,
                wasted: 0,
                steps: VecDeque::new(),
                foreign,
                foreign_spent: 0,
                foreign_requests: 0,
                foreign_refused: 0,
                products_served: 0,
                products_served_again: 0,
                served: Default::default(),
            });
        }
        Ok(Shared {
            clock,
            fault_rng: Mutex::new(ChaCha8Rng::seed_from_u64(crate::rng::hash(
                settings.seed,
                901,
                0,
            ))),
            feed: DealFeed::new(catalog.clone()),
            settings,
            catalog,
            start_ms,
            books: Mutex::new(books),
            shutdown,
        })
    }

    /// What the server has counted so far.
    pub(crate) fn stats(&self) -> ServerStats {
        let now = self.clock.now_ms();
        let mut books = lock(&self.books);
        let spec = &self.settings.faults;
        for a in &mut books.accounts {
            a.sync(now, spec);
        }
        ServerStats {
            now_ms: now,
            keys: books.accounts.iter().map(|a| a.snapshot(now)).collect(),
            rejected_keys: books.rejected.clone(),
            faults: books.faults,
        }
    }

    /// Sets a key's balance now (admin hook). `false` if the key is unknown.
    pub(crate) fn set_balance(&self, key: &str, value: i64) -> bool {
        let now = self.clock.now_ms();
        let mut books = lock(&self.books);
        let Some(&i) = books.by_key.get(key) else {
            return false;
        };
        let a = &mut books.accounts[i];
        a.sync(now, &self.settings.faults);
        let b = a.bucket.balance();
        a.bucket.spend(now, b - value);
        a.min_balance = a.min_balance.min(value);
        true
    }

    /// Replaces the refill schedule of one key, or of all (`None`); minutes
    /// count from the server start.
    pub(crate) fn set_schedule(
        &self,
        key: Option<&str>,
        entries: &[(i64, i64)],
    ) -> Result<usize, keepa::tokens::ScheduleError> {
        let schedule = RateSchedule::from_minutes(self.start_ms, entries)?;
        let now = self.clock.now_ms();
        let mut books = lock(&self.books);
        let mut n = 0;
        for a in books
            .accounts
            .iter_mut()
            .filter(|a| key.is_none_or(|k| k == a.key))
        {
            a.sync(now, &self.settings.faults);
            a.bucket.set_schedule(schedule.clone());
            n += 1;
        }
        Ok(n)
    }

    fn envelope(
        &self,
        account: Option<&Account>,
        now: i64,
        consumed: i64,
        started: Instant,
    ) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("timestamp".into(), json!(now));
        let (left, refill_in, rate) = match account {
            Some(a) => (
                a.bucket.balance(),
                a.bucket.refill_in(now),
                a.bucket.rate_at(now),
            ),
            None => (0, 0, 0),
        };
        m.insert("tokensLeft".into(), json!(left));
        m.insert("refillIn".into(), json!(refill_in));
        m.insert("refillRate".into(), json!(rate));
        m.insert("tokenFlowReduction".into(), json!(0));
        m.insert("tokensConsumed".into(), json!(consumed));
        m.insert(
            "processingTimeInMs".into(),
            json!(started.elapsed().as_millis() as i64),
        );
        m
    }
}

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

fn respond(status: StatusCode, body: &Value, gzip_it: bool) -> Response<Full<Bytes>> {
    let raw = serde_json::to_vec(body).unwrap_or_default();
    respond_bytes(status, raw, gzip_it)
}

fn respond_bytes(status: StatusCode, raw: Vec<u8>, gzip_it: bool) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json;charset=UTF-8");
    let body = if gzip_it {
        builder = builder.header("content-encoding", "gzip");
        gzip(&raw)
    } else {
        raw
    };
    builder
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Keepa endpoints the server knows.
const ENDPOINTS: [&str; 8] = [
    "token",
    "deal",
    "product",
    "seller",
    "query",
    "bestsellers",
    "category",
    "search",
];

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
        sleep_unless_shutdown(&shared, d).await;
    }
    if hang {
        sleep_unless_shutdown(&shared, shared.settings.faults.hang_for).await;
    }
    let mut raw = serde_json::to_vec(&body).unwrap_or_default();
    if let Some(cut_gzip) = garbage {
        if cut_gzip {
            let mut z = gzip(&raw);
            z.truncate(z.len() / 2);
            return respond_bytes_prezipped(status, z);
        }
        raw.truncate(raw.len() / 2);
        raw.extend_from_slice(b"\x00<html>garbage");
    }
    respond_bytes(status, raw, true)
}

fn respond_bytes_prezipped(status: StatusCode, z: Vec<u8>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json;charset=UTF-8")
        .header("content-encoding", "gzip")
        .body(Full::new(Bytes::from(z)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn sleep_unless_shutdown(shared: &Shared, d: Duration) {
    let mut stop = shared.shutdown.clone();
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
}

struct Outcome {
    status: StatusCode,
    body: Value,
    hang: bool,
    /// `Some(true)`: cut the gzip stream; `Some(false)`: gzip broken JSON.
    garbage: Option<bool>,
}

struct Draw {
    reset: bool,
    server_error: Option<StatusCode>,
    hang: bool,
    garbage: Option<bool>,
}

fn draw_faults(shared: &Shared) -> Draw {
    let spec = &shared.settings.faults;
    let mut r = lock(&shared.fault_rng);
    // Always draw the same number of values so the sequence stays aligned.
    let (a, b, c, d, e, f): (f64, f64, f64, f64, f64, f64) = (
        r.random(),
        r.random(),
        r.random(),
        r.random(),
        r.random(),
        r.random(),
    );
    Draw {
        reset: a < spec.reset,
        server_error: (b < spec.server_error).then_some(if e < 0.25 {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        }),
        hang: c < spec.hang,
        garbage: (d < spec.garbage).then_some(f < 0.5),
    }
}

fn error_body(env: Map<String, Value>, err: &ApiError) -> Value {
    let mut m = env;
    let mut e = Map::new();
    e.insert("type".into(), json!(err.kind));
    e.insert("message".into(), json!(err.message));
    e.insert("details".into(), err.details.clone().unwrap_or(Value::Null));
    m.insert("error".into(), Value::Object(e));
    Value::Object(m)
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn int_param(q: &[(String, String)], name: &str) -> Result<Option<i64>, ApiError> {
    match param(q, name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad(name, format!("{name} must be an integer"))),
    }
}

fn domain_param(q: &[(String, String)]) -> Result<i64, ApiError> {
    let d = int_param(q, "domain")
        .map_err(|_| ApiError::domain())?
        .ok_or_else(ApiError::domain)?;
    keepa::Domain::try_from(d).map_err(|_| ApiError::domain())?;
    Ok(d)
}

/// What a validated request will do once admitted.
enum Work {
    Token,
    Product {
        indices: Vec<u32>,
        opt: ProductOptions,
        update: Option<i64>,
    },
    Deal(Selection),
    Seller {
        indices: Vec<u32>,
        domain: i64,
        storefront: bool,
    },
    Query {
        body: Value,
    },
    Bestsellers {
        domain: i64,
        category: i64,
    },
    Category {
        domain: i64,
        ids: Vec<i64>,
        parents: bool,
    },
    Search {
        domain: i64,
        term: String,
        page: i64,
    },
}

fn validate(
    shared: &Shared,
    endpoint: &str,
    method: &Method,
    q: &[(String, String)],
    body: &Bytes,
) -> Result<Work, ApiError> {
    let catalog = &shared.catalog;
    match endpoint {
        "token" => Ok(Work::Token),
        "product" => {
            let domain_id = domain_param(q)?;
            let (asin, code) = (param(q, "asin"), param(q, "code"));
            let list = match (asin, code) {
                (Some(_), Some(_)) => {
                    return Err(ApiError {
                        status: StatusCode::METHOD_NOT_ALLOWED,
                        kind: "methodNotAllowed",
                        message: "use either asin or code, not both".into(),
                        details: None,
                    })
                }
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => return Err(ApiError::bad("asin", "asin or code is required")),
            };
            let items: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if items.is_empty() {
                return Err(ApiError::bad("asin", "no ASIN given"));
            }
            if items.len() > 100 {
                return Err(ApiError::bad("asin", "at most 100 ASINs per request"));
            }
            let offers = int_param(q, "offers")?;
            if let Some(n) = offers {
                if !(20..=100).contains(&n) {
                    return Err(ApiError::bad("offers", "offers must be between 20 and 100"));
                }
            }
            let stats_days = match param(q, "stats") {
                None => None,
                Some(v) => match v.trim().parse::<i64>() {
                    Ok(d) if d >= 1 => Some(d.min(36_500)),
                    _ => {
                        return Err(ApiError::bad(
                            "stats",
                            "stats must be a number of days >= 1",
                        ))
                    }
                },
            };
            let days = int_param(q, "days")?;
            if days.is_some_and(|d| d < 1) {
                return Err(ApiError::bad("days", "days must be >= 1"));
            }
            let on = |name: &str| -> Result<bool, ApiError> {
                Ok(int_param(q, name)?.is_some_and(|v| v == 1))
            };
            let history = int_param(q, "history")?.is_none_or(|h| h != 0);
            let update = int_param(q, "update")?;
            let mut indices = Vec::new();
            for a in items {
                if let Some(i) = catalog.lookup(a) {
                    if !indices.contains(&i) {
                        indices.push(i);
                    }
                }
            }
            Ok(Work::Product {
                indices,
                opt: ProductOptions {
                    domain_id,
                    stats_days,
                    history,
                    days,
                    offers: offers.map(|n| n as usize),
                    only_live_offers: on("only-live-offers")?,
                    buybox: on("buybox")?,
                    stock: on("stock")? && offers.is_some(),
                    rating: on("rating")?,
                    refreshed: false,
                },
                update,
            })
        }
        "deal" => {
            let text: Vec<u8> = if *method == Method::POST {
                body.to_vec()
            } else {
                param(q, "selection")
                    .ok_or_else(|| ApiError::bad("selection", "selection is required"))?
                    .as_bytes()
                    .to_vec()
            };
            let sel = Selection::parse(&text).map_err(|(ty, msg)| ApiError::bad(ty, msg))?;
            Ok(Work::Deal(sel))
        }
        "seller" => {
            let domain = domain_param(q)?;
            let list =
                param(q, "seller").ok_or_else(|| ApiError::bad("seller", "seller is required"))?;
            let ids: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if ids.is_empty() || ids.len() > 100 {
                return Err(ApiError::bad("seller", "between 1 and 100 seller ids"));
            }
            let storefront = int_param(q, "storefront")?.is_some_and(|v| v == 1);
            let indices = ids
                .iter()
                .filter_map(|s| catalog.seller_lookup(s))
                .collect();
            Ok(Work::Seller {
                indices,
                domain,
                storefront,
            })
        }
        "query" => {
            domain_param(q)?;
            let text: Vec<u8> = if *method == Method::POST {
                body.to_vec()
            } else {
                param(q, "selection")
                    .ok_or_else(|| ApiError::bad("selection", "selection is required"))?
                    .as_bytes()
                    .to_vec()
            };
            let body: Value = serde_json::from_slice(&text)
                .map_err(|_| ApiError::bad("selection", "selection is not valid JSON"))?;
            if !body.is_object() {
                return Err(ApiError::bad(
                    "selection",
                    "selection must be a JSON object",
                ));
            }
            Ok(Work::Query { body })
        }
        "bestsellers" => {
            let domain = domain_param(q)?;
            let category = int_param(q, "category")?
                .ok_or_else(|| ApiError::bad("category", "category is required"))?;
            if let Some(r) = int_param(q, "range")? {
                if ![0, 30, 90, 180].contains(&r) {
                    return Err(ApiError::bad("range", "range must be 0, 30, 90 or 180"));
                }
            }
            Ok(Work::Bestsellers { domain, category })
        }
        "category" => {
            let domain = domain_param(q)?;
            let list = param(q, "category")
                .ok_or_else(|| ApiError::bad("category", "category is required"))?;
            let mut ids = Vec::new();
            for c in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                ids.push(
                    c.parse::<i64>()
                        .map_err(|_| ApiError::bad("category", "category ids are integers"))?,
                );
            }
            if ids.is_empty() || ids.len() > 10 {
                return Err(ApiError::bad("category", "between 1 and 10 category ids"));
            }
            let parents = int_param(q, "parents")?.is_some_and(|v| v == 1);
            Ok(Work::Category {
                domain,
                ids,
                parents,
            })
        }
        "search" => {
            let domain = domain_param(q)?;
            if param(q, "type") != Some("product") {
                return Err(ApiError::bad("type", "type must be product"));
            }
            let term = param(q, "term").unwrap_or("").to_lowercase();
            if term.trim().is_empty() {
                return Err(ApiError::bad("term", "term is required"));
            }
            let page = int_param(q, "page")?.unwrap_or(0).clamp(0, 9);
            Ok(Work::Search { domain, term, page })
        }
        _ => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "notFound",
            message: "unknown endpoint".into(),
            details: None,
        }),
    }
}

fn now_min(now_ms: i64) -> i64 {
    keepa::KeepaMinutes::from_unix_ms(now_ms).0
}

/// Runs the admitted work: `(payload fields, cost)`.
fn execute(shared: &Shared, work: &Work, now_ms: i64) -> (Map<String, Value>, i64) {
    let catalog = &shared.catalog;
    let now = now_min(now_ms);
    let mut out = Map::new();
    let cost = match work {
        Work::Token => 0,
        Work::Product {
            indices,
            opt,
            update,
        } => {
            let mut cost = 0;
            let mut products = Vec::with_capacity(indices.len());
            for &i in indices {
                let p = catalog.product(i, now);
                let mut opt = opt.clone();
                let mut c = 1;
                let offers = opt.offers.map(|n| live_offers(catalog, &p, n));
                if let Some(list) = &offers {
                    c = 6 * (list.len().div_ceil(10).max(1) as i64);
                    if opt.stock {
                        c += 2;
                    }
                } else if opt.buybox {
                    c += 2;
                }
                match update {
                    Some(0) => {
                        if now - p.last_update < 60 {
                            c += 1;
                        }
                        opt.refreshed = true;
                    }
                    Some(h) if *h > 0 && now - p.last_update > h.saturating_mul(60) => {
                        opt.refreshed = true
                    }
                    _ => {}
                }
                if opt.rating && now - p.last_rating_update > MINUTES_PER_DAY {
                    c += 1;
                }
                cost += c;
                products.push(product_json(catalog, &p, &opt, offers.as_deref()));
            }
            out.insert("products".into(), Value::Array(products));
            cost
        }
        Work::Deal(sel) => {
            let page = shared.feed.query(sel, now_ms);
            let (ids, rest): (Vec<i64>, Vec<usize>) = page.category_counts.iter().copied().unzip();
            let names: Vec<&str> = ids
                .iter()
                .map(|&id| category(id).map_or("", |c| c.name))
                .collect();
            out.insert(
                "deals".into(),
                json!({
                    "dr": page.deals.iter().map(|d| deal_json(d)).collect::<Vec<_>>(),
                    "categoryIds": ids,
                    "categoryNames": names,
                    "categoryCount": rest,
                }),
            );
            5
        }
        Work::Seller {
            indices,
            domain,
            storefront,
        } => {
            let mut sellers = Map::new();
            for &i in indices {
                let s = catalog.seller(i);
                let mut v = seller_json(&s, *domain, now, *storefront);
                if *storefront {
                    if let Value::Object(m) = &mut v {
                        let asins: Vec<String> = s
                            .storefront
                            .iter()
                            .map(|&p| catalog.asin(&catalog.summary(p)))
                            .collect();
                        m.insert("asinList".into(), json!(asins));
                        m.insert(
                            "asinListLastSeen".into(),
                            json!(vec![now; s.storefront.len()]),
                        );
                    }
                }
                sellers.insert(s.id.clone(), v);
            }
            out.insert("sellers".into(), Value::Object(sellers));
            indices.len() as i64 * if *storefront { 10 } else { 1 }
        }
        Work::Query { body, .. } => {
            let (asins, total) = product_finder(catalog, body);
            let n = asins.len() as i64;
            out.insert("asinList".into(), json!(asins));
            out.insert("totalResults".into(), json!(total));
            10 + (n + 99) / 100
        }
        Work::Bestsellers {
            domain,
            category: cat,
        } => match category(*cat) {
            Some(c) => {
                let mut list: Vec<(i64, u32)> = (0..catalog.params.products)
                    .map(|i| catalog.summary(i))
                    .filter(|s| s.root == c.id || s.leaf == c.id)
                    .map(|s| (s.base_rank, s.index))
                    .collect();
                list.sort_unstable();
                list.truncate(10_000);
                let asins: Vec<String> = list
                    .iter()
                    .map(|&(_, i)| catalog.asin(&catalog.summary(i)))
                    .collect();
                out.insert(
                    "bestSellersList".into(),
                    json!({"domainId": domain, "lastUpdate": now, "categoryId": c.id, "asinList": asins}),
                );
                50
            }
            None => {
                out.insert("bestSellersList".into(), Value::Null);
                0
            }
        },
        Work::Category {
            domain,
            ids,
            parents,
        } => {
            let wanted: Vec<i64> = if ids.contains(&0) {
                ROOTS.iter().map(|r| r.0).collect()
            } else {
                ids.clone()
            };
            let mut cats = Map::new();
            let mut parent_map = Map::new();
            for id in wanted {
                if let Some(v) = category_json(id, *domain, 0) {
                    cats.insert(id.to_string(), v);
                    if let Some(c) = category(id).filter(|c| *parents && c.parent != 0) {
                        if let Some(p) = category_json(c.parent, *domain, 0) {
                            parent_map.insert(c.parent.to_string(), p);
                        }
                    }
                }
            }
            out.insert("categories".into(), Value::Object(cats));
            if *parents {
                out.insert("categoryParents".into(), Value::Object(parent_map));
            }
            1
        }
        Work::Search { domain, term, page } => {
            let words: Vec<&str> = term.split_whitespace().collect();
            let mut found = Vec::new();
            let opt = ProductOptions {
                domain_id: *domain,
                history: false,
                ..Default::default()
            };
            // Titles come from the generator: scan a bounded prefix of the catalog.
            for i in 0..catalog.params.products.min(5_000) {
                let p = catalog.product(i, now);
                if words.iter().all(|w| p.title.to_lowercase().contains(w)) {
                    found.push(p);
                    if found.len() >= ((*page + 1) * 10) as usize {
                        break;
                    }
                }
            }
            let products: Vec<Value> = found
                .iter()
                .skip((*page * 10) as usize)
                .map(|p| product_json(catalog, p, &opt, None))
                .collect();
            out.insert("products".into(), Value::Array(products));
            10
        }
    };
    (out, cost)
}

/// A small product finder: `rootCategory`, `categories_include`,
/// `productType`, `page`, `perPage`. Other filters are accepted and
/// ignored. Returns (page of ASINs, total).
fn product_finder(catalog: &Catalog, sel: &Value) -> (Vec<String>, usize) {
    let as_ids = |v: Option<&Value>| -> Vec<i64> {
        match v {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_i64).collect(),
            Some(v) => v.as_i64().into_iter().collect(),
            None => Vec::new(),
        }
    };
    let roots = as_ids(sel.get("rootCategory"));
    let cats = as_ids(sel.get("categories_include"));
    let per_page = sel
        .get("perPage")
        .and_then(Value::as_i64)
        .unwrap_or(50)
        .clamp(50, 10_000) as usize;
    let page = sel
        .get("page")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .clamp(0, 10_000) as usize;
    let mut total = 0;
    let mut asins = Vec::new();
    for i in 0..catalog.params.products {
        let s = catalog.summary(i);
        if (!roots.is_empty() && !roots.contains(&s.root))
            || (!cats.is_empty() && !cats.contains(&s.leaf))
        {
            continue;
        }
        if total >= page * per_page && asins.len() < per_page {
            asins.push(catalog.asin(&s));
        }
        total += 1;
    }
    (asins, total)
}

async fn keepa_route(
    shared: &Shared,
    kill: &AtomicBool,
    endpoint: Option<&'static str>,
    method: &Method,
    q: &[(String, String)],
    body: &Bytes,
    started: Instant,
) -> Outcome {
    let now = shared.clock.now_ms();
    let key = param(q, "key").unwrap_or("");
    let plain = |status, body| Outcome {
        status,
        body,
        hang: false,
        garbage: None,
    };
    let draw = draw_faults(shared);
    let ep_name = endpoint.unwrap_or("unknown");
    // Errors without a usable key carry zero token fields.
    let reject = |status: StatusCode, err: ApiError| {
        let mut books = lock(&shared.books);
        *books
            .rejected
            .entry(ep_name.to_string())
            .or_default()
            .entry(status.as_u16())
            .or_default() += 1;
        drop(books);
        plain(
            status,
            error_body(shared.envelope(None, now, 0, started), &err),
        )
    };
    if draw.reset {
        kill.store(true, Ordering::SeqCst);
        lock(&shared.books).faults.resets += 1;
        tracing::debug!(endpoint = ep_name, "fault: connection reset");
        return plain(StatusCode::INTERNAL_SERVER_ERROR, Value::Null);
    }
    let account_idx = lock(&shared.books).by_key.get(key).copied();
    let Some(endpoint) = endpoint else {
        let err = ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "notFound",
            message: "unknown endpoint".into(),
            details: None,
        };
        return match account_idx {
            Some(i) => {
                let mut books = lock(&shared.books);
                let a = &mut books.accounts[i];
                a.sync(now, &shared.settings.faults);
                a.count("unknown", 404);
                let env = shared.envelope(Some(a), now, 0, started);
                plain(StatusCode::NOT_FOUND, error_body(env, &err))
            }
            None => reject(StatusCode::NOT_FOUND, err),
        };
    };
    let method_ok = match endpoint {
        "deal" | "query" => *method == Method::GET || *method == Method::POST,
        _ => *method == Method::GET,
    };
    if !method_ok {
        let err = ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            kind: "methodNotAllowed",
            message: format!("{method} is not allowed on /{endpoint}"),
            details: None,
        };
        return reject(StatusCode::METHOD_NOT_ALLOWED, err);
    }
    if shared.settings.expired_keys.iter().any(|k| k == key) && account_idx.is_none() {
        let err = ApiError {
            status: StatusCode::PAYMENT_REQUIRED,
            kind: "paymentRequired",
            message: "the subscription of this key has expired".into(),
            details: None,
        };
        return reject(StatusCode::PAYMENT_REQUIRED, err);
    }
    let Some(idx) = account_idx else {
        let err = ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "invalidParameter",
            message: "invalid API key".into(),
            details: Some(json!([{"type": "key", "message": "invalid"}])),
        };
        return reject(StatusCode::BAD_REQUEST, err);
    };
    let spec = &shared.settings.faults;
    // The instant an answer is ready (never before the request arrived).
    let answer_at = || shared.clock.now_ms().max(now);
    let finish = |status: StatusCode,
                  consumed: i64,
                  payload: Option<Map<String, Value>>,
                  err: Option<ApiError>|
     -> Value {
        let mut books = lock(&shared.books);
        let a = &mut books.accounts[idx];
        a.count(endpoint, status.as_u16());
        // The envelope is the account as of the moment it is written, with
        // that moment as its timestamp: a newer timestamp always holds every
        // charge an older one does (clients rely on "newest wins").
        let at = answer_at();
        a.sync(at, spec);
        let env = shared.envelope(Some(a), at, consumed, started);
        match (payload, err) {
            (_, Some(e)) => error_body(env, &e),
            (Some(p), None) => {
                let mut m = env;
                m.extend(p);
                Value::Object(m)
            }
            (None, None) => Value::Object(env),
        }
    };
    // `finish` brings the account up to the answer's instant itself.
    if let Some(status) = draw.server_error {
        lock(&shared.books).faults.server_errors += 1;
        let err = ApiError {
            status,
            kind: "internalServerError",
            message: "fault injection: server error".into(),
            details: None,
        };
        return plain(status, finish(status, 0, None, Some(err)));
    }
    let work = match validate(shared, endpoint, method, q, body) {
        Ok(w) => w,
        Err(e) => return plain(e.status, finish(e.status, 0, None, Some(e))),
    };
    // Cheap refusal first: no work for a request that cannot run.
    {
        let mut books = lock(&shared.books);
        let a = &mut books.accounts[idx];
        a.sync(now, spec);
        if a.bucket.balance() <= 0 && !matches!(work, Work::Token) {
            a.refused_429 += 1;
            drop(books);
            return plain(
                StatusCode::TOO_MANY_REQUESTS,
                finish(StatusCode::TOO_MANY_REQUESTS, 0, None, None),
            );
        }
    }
    let (payload, cost) = execute(shared, &work, now);
    let admitted = {
        let mut books = lock(&shared.books);
        let a = &mut books.accounts[idx];
        // Charged when the answer is ready, at that instant (a slow answer
        // does not charge in the past, behind requests that came after it).
        let at = answer_at();
        a.sync(at, spec);
        if matches!(work, Work::Token) {
            true
        } else {
            match a.bucket.try_spend(at, cost) {
                Admission::Admitted { balance_after } => {
                    a.tokens_charged += cost;
                    a.min_balance = a.min_balance.min(balance_after);
                    if let Work::Product { indices, opt, .. } = &work {
                        // The options that change what is paid for or returned.
                        let shape = format!(
                            "{}:{:?}:{:?}:{}:{}:{}:{}:{}",
                            opt.domain_id,
                            opt.offers,
                            opt.stats_days,
                            opt.history,
                            opt.rating,
                            opt.buybox,
                            opt.stock,
                            opt.only_live_offers
                        );
                        for i in indices {
                            a.products_served += 1;
                            if !a.served.insert((*i, shape.clone())) {
                                a.products_served_again += 1;
                            }
                        }
                    }
                    true
                }
                Admission::Refused => {
                    a.refused_429 += 1;
                    false
                }
            }
        }
    };
    if !admitted {
        return plain(
            StatusCode::TOO_MANY_REQUESTS,
            finish(StatusCode::TOO_MANY_REQUESTS, 0, None, None),
        );
    }
    tracing::debug!(endpoint, cost, "served");
    let body = finish(StatusCode::OK, cost, Some(payload), None);
    {
        let mut books = lock(&shared.books);
        if draw.hang {
            books.faults.hangs += 1;
        }
        if draw.garbage.is_some() && !draw.hang {
            books.faults.garbage += 1;
        }
    }
    Outcome {
        status: StatusCode::OK,
        body,
        hang: draw.hang,
        garbage: if draw.hang { None } else { draw.garbage },
    }
}

fn admin_route(
    shared: &Shared,
    peer: SocketAddr,
    method: &Method,
    path: &str,
    q: &[(String, String)],
    body: &Bytes,
    accepts_gzip: bool,
) -> Response<Full<Bytes>> {
    if !peer.ip().is_loopback() {
        return respond(
            StatusCode::FORBIDDEN,
            &json!({"error": {"type": "forbidden", "message": "/_fake is loopback only"}}),
            false,
        );
    }
    let bad = |msg: &str| {
        respond(
            StatusCode::BAD_REQUEST,
            &json!({"error": {"type": "invalidParameter", "message": msg}}),
            false,
        )
    };
    match (method.clone(), path.trim_end_matches('/')) {
        (Method::GET, "stats") => respond(
            StatusCode::OK,
            &serde_json::to_value(shared.stats()).unwrap_or(Value::Null),
            accepts_gzip,
        ),
        (Method::POST, "schedule") => {
            let Ok(entries) = serde_json::from_slice::<Vec<(i64, i64)>>(body) else {
                return bad("body must be [[minute, rate], ...]");
            };
            match shared.set_schedule(param(q, "key"), &entries) {
                Ok(n) => respond(StatusCode::OK, &json!({"keys": n}), false),
                Err(e) => bad(&e.to_string()),
            }
        }
        (Method::POST, "balance") => {
            let (Some(key), Some(Ok(value))) =
                (param(q, "key"), param(q, "value").map(|v| v.parse::<i64>()))
            else {
                return bad("key and value are required");
            };
            if shared.set_balance(key, value) {
                respond(StatusCode::OK, &json!({"ok": true}), false)
            } else {
                bad("unknown key")
            }
        }
        (_, "stats" | "schedule" | "balance") => respond(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": {"type": "methodNotAllowed"}}),
            false,
        ),
        _ => respond(
            StatusCode::NOT_FOUND,
            &json!({"error": {"type": "notFound"}}),
            false,
        ),
    }
}
