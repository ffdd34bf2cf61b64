//! Routing: which endpoint a request names, the checks before admission in
//! Keepa's order (404, 405, 402, 400, then 429), the charge, and the
//! envelope every answer carries; also the loopback-only `/_fake` hooks.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Map, Value};

use super::bad_answers;
use super::execute::execute;
use super::transport::respond;
use super::validate::{param, validate, Query, Work};
use super::{error_body, lock, uniforms, ApiError, Shared};

/// Keepa endpoints the server knows.
pub(super) const ENDPOINTS: [&str; 8] = [
    "token",
    "deal",
    "product",
    "seller",
    "query",
    "bestsellers",
    "category",
    "search",
];

/// A Keepa answer before it goes on the wire.
pub(super) struct Outcome {
    pub(super) status: StatusCode,
    pub(super) body: Value,
    pub(super) hang: bool,
    /// `Some(true)`: cut the gzip stream; `Some(false)`: gzip broken JSON.
    pub(super) garbage: Option<bool>,
}

impl Outcome {
    /// An answer delivered as it is.
    fn plain(status: StatusCode, body: Value) -> Self {
        Outcome {
            status,
            body,
            hang: false,
            garbage: None,
        }
    }
}

/// The faults drawn for one request.
struct Draw {
    reset: bool,
    server_error: Option<StatusCode>,
    hang: bool,
    garbage: Option<bool>,
}

fn draw_faults(shared: &Shared) -> Draw {
    let spec = &shared.settings.faults;
    let [a, b, c, d, e, f] = uniforms(&shared.fault_rng);
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

/// A request that arrived at `now`, before it is known to have a key.
struct Arrival<'a> {
    shared: &'a Shared,
    now: i64,
    started: Instant,
}

impl Arrival<'_> {
    /// An error to a request without a usable key: zero token fields.
    fn reject(&self, endpoint: &str, err: ApiError) -> Outcome {
        lock(&self.shared.books).reject(endpoint, err.status.as_u16());
        let env = self.shared.envelope(None, self.now, 0, self.started);
        Outcome::plain(err.status, error_body(env, &err))
    }

    /// The checks before a key's bucket is involved, in Keepa's order:
    /// unknown endpoint (404), wrong method (405), expired key (402),
    /// unknown key (400). Passing yields the endpoint and the account.
    fn gate(
        &self,
        endpoint: Option<&'static str>,
        method: &Method,
        key: &str,
    ) -> Result<(&'static str, usize), Outcome> {
        let shared = self.shared;
        let account = lock(&shared.books).by_key.get(key).copied();
        let Some(endpoint) = endpoint else {
            let err = ApiError::not_found();
            let Some(i) = account else {
                return Err(self.reject("unknown", err));
            };
            let mut books = lock(&shared.books);
            let a = &mut books.accounts[i];
            a.sync(self.now, &shared.settings.faults);
            a.count("unknown", 404);
            let env = shared.envelope(Some(a), self.now, 0, self.started);
            return Err(Outcome::plain(StatusCode::NOT_FOUND, error_body(env, &err)));
        };
        let method_ok = match endpoint {
            "deal" | "query" => *method == Method::GET || *method == Method::POST,
            _ => *method == Method::GET,
        };
        if !method_ok {
            let message = format!("{method} is not allowed on /{endpoint}");
            let err = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "methodNotAllowed", message);
            return Err(self.reject(endpoint, err));
        }
        if shared.settings.expired_keys.iter().any(|k| k == key) && account.is_none() {
            let err = ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "paymentRequired",
                "the subscription of this key has expired",
            );
            return Err(self.reject(endpoint, err));
        }
        let Some(i) = account else {
            let err = ApiError {
                details: Some(json!([{"type": "key", "message": "invalid"}])),
                ..ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalidParameter",
                    "invalid API key",
                )
            };
            return Err(self.reject(endpoint, err));
        };
        Ok((endpoint, i))
    }
}

/// Answers to a request with a valid key on a known endpoint.
struct Answer<'a> {
    shared: &'a Shared,
    endpoint: &'static str,
    idx: usize,
    now: i64,
    started: Instant,
}

impl<'a> Answer<'a> {
    fn new(arrival: &Arrival<'a>, endpoint: &'static str, idx: usize) -> Self {
        Answer {
            shared: arrival.shared,
            endpoint,
            idx,
            now: arrival.now,
            started: arrival.started,
        }
    }

    /// The instant an answer is ready (never before the request arrived).
    fn at(&self) -> i64 {
        self.shared.clock.now_ms().max(self.now)
    }

    /// The body of an answer with `status`: the envelope as of the moment
    /// it is written, plus the payload or the error. A newer timestamp
    /// always holds every charge an older one does (clients rely on "newest
    /// wins"); the account is brought up to that instant here.
    fn body(
        &self,
        status: StatusCode,
        consumed: i64,
        payload: Option<Map<String, Value>>,
        err: Option<&ApiError>,
    ) -> Value {
        let mut books = lock(&self.shared.books);
        let a = &mut books.accounts[self.idx];
        a.count(self.endpoint, status.as_u16());
        let at = self.at();
        a.sync(at, &self.shared.settings.faults);
        let mut env = self.shared.envelope(Some(a), at, consumed, self.started);
        match (payload, err) {
            (_, Some(e)) => error_body(env, e),
            (Some(p), None) => {
                env.extend(p);
                Value::Object(env)
            }
            (None, None) => Value::Object(env),
        }
    }

    fn error(&self, err: &ApiError) -> Outcome {
        Outcome::plain(err.status, self.body(err.status, 0, None, Some(err)))
    }

    /// Keepa's answer to a key it refuses (fault `bad_key`): HTTP 200,
    /// every token field 0; a data endpoint also gets an `error` object.
    fn bad_key(&self) -> Outcome {
        lock(&self.shared.books).accounts[self.idx].count(self.endpoint, 200);
        let env = self.shared.envelope(None, self.at(), 0, self.started);
        let body = match self.endpoint {
            "token" => Value::Object(env),
            _ => error_body(
                env,
                &ApiError::new(StatusCode::OK, "invalidParameter", "invalid API key"),
            ),
        };
        Outcome::plain(StatusCode::OK, body)
    }

    /// 429 with the bare envelope.
    fn too_many(&self) -> Outcome {
        let status = StatusCode::TOO_MANY_REQUESTS;
        Outcome::plain(status, self.body(status, 0, None, None))
    }

    /// Whether the work may start: a free request always, any other only at
    /// a balance > 0 (no work for a request that cannot run).
    fn may_run(&self, work: &Work) -> bool {
        let mut books = lock(&self.shared.books);
        let free = matches!(work, Work::Token);
        books.accounts[self.idx].may_run(self.now, &self.shared.settings.faults, free)
    }

    /// Charges `cost` when the answer is ready, at that instant (a slow
    /// answer does not charge in the past, behind requests that came after
    /// it); `false` if the bucket refuses.
    fn charge(&self, work: &Work, cost: i64) -> bool {
        let spec = &self.shared.settings.faults;
        let mut books = lock(&self.shared.books);
        let a = &mut books.accounts[self.idx];
        let at = self.at();
        if matches!(work, Work::Token) {
            a.sync(at, spec);
            return true;
        }
        let admitted = a.charge(at, cost, spec);
        if let (true, Work::Product { indices, opt, .. }) = (admitted, work) {
            a.record_products(indices, opt);
        }
        admitted
    }
}

/// Answers a request to a Keepa endpoint (`None`: an unknown one).
pub(super) async fn keepa_route(
    shared: &Shared,
    kill: &AtomicBool,
    endpoint: Option<&'static str>,
    method: &Method,
    q: &Query,
    body: &Bytes,
    started: Instant,
) -> Outcome {
    let arrival = Arrival {
        shared,
        now: shared.clock.now_ms(),
        started,
    };
    let draw = draw_faults(shared);
    if draw.reset {
        kill.store(true, Ordering::SeqCst);
        lock(&shared.books).faults.resets += 1;
        tracing::debug!(
            endpoint = endpoint.unwrap_or("unknown"),
            "fault: connection reset"
        );
        return Outcome::plain(StatusCode::INTERNAL_SERVER_ERROR, Value::Null);
    }
    let key = param(q, "key").unwrap_or("");
    let (endpoint, idx) = match arrival.gate(endpoint, method, key) {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    let answer = Answer::new(&arrival, endpoint, idx);
    if shared.settings.faults.bad_key {
        return answer.bad_key();
    }
    if let Some(status) = draw.server_error {
        lock(&shared.books).faults.server_errors += 1;
        let message = "fault injection: server error";
        return answer.error(&ApiError::new(status, "internalServerError", message));
    }
    let mut work = match validate(shared, endpoint, method, q, body) {
        Ok(w) => w,
        Err(e) => return answer.error(&e),
    };
    if !answer.may_run(&work) {
        return answer.too_many();
    }
    let bad = bad_answers::draw(shared, endpoint);
    if let Some(limit) = bad.in_body {
        lock(&shared.books).faults.in_body += 1;
        let err = if limit {
            ApiError::new(
                StatusCode::OK,
                "tokenLimit",
                "fault injection: a limit in a 200",
            )
        } else {
            ApiError::new(
                StatusCode::OK,
                "requestFailed",
                "fault injection: an error in a 200",
            )
        };
        return answer.error(&err);
    }
    bad_answers::leave_out(shared, &mut work);
    let (mut payload, cost) = execute(shared, &work, arrival.now);
    if !answer.charge(&work, cost) {
        return answer.too_many();
    }
    tracing::debug!(endpoint, cost, "served");
    bad_answers::spoil(shared, &bad, &work, &mut payload);
    let mut body = answer.body(StatusCode::OK, cost, Some(payload), None);
    bad_answers::drop_consumed(shared, &bad, &mut body);
    let garbage = if draw.hang { None } else { draw.garbage };
    {
        let mut books = lock(&shared.books);
        books.faults.hangs += u64::from(draw.hang);
        books.faults.garbage += u64::from(garbage.is_some());
    }
    Outcome {
        status: StatusCode::OK,
        body,
        hang: draw.hang,
        garbage,
    }
}

/// The loopback-only admin hooks under `/_fake/`.
pub(super) fn admin_route(
    shared: &Shared,
    peer: SocketAddr,
    method: &Method,
    path: &str,
    q: &Query,
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
