//! The HTTP client: every outcome is one typed result carrying the envelope.
//!
//! [`Client::send`] makes exactly one HTTP exchange per call: no retries, no
//! waiting, no redirects (waiting and retrying is the budget's job). It
//! returns a [`Response`] on 2xx, or an [`ApiError`] that says what happened
//! and carries the token [`Envelope`] whenever the body had one.
//!
//! The key travels in the query string, as Keepa requires. It never appears
//! in an error, a `Debug` print or a log line: [`ApiKey`] prints `***`,
//! transport errors are stripped of their URL and redacted, and response
//! excerpts are redacted too.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use keepa::client::{ApiKey, Client};
//! use keepa::request::{ProductRequest, Request};
//! use keepa::Domain;
//!
//! let client = Client::builder(ApiKey::new("my-key")?).build()?;
//! let status = client.send(&Request::token()).await?;
//! println!("tokens left: {:?}", status.envelope.tokens_left);
//! let req = ProductRequest::asins(Domain::Com, ["B0D8W1YVBX"]).stats(90).build()?;
//! let products: serde_json::Value = client.send(&req).await?.parse()?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use crate::envelope::{Envelope, TokenSnapshot};
use crate::error::{ApiError, BuildError, ErrorResponse, InvalidApiKey, KeepaErrorObject};
use crate::request::{Method, Request};

/// Keepa's production base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.keepa.com";
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default total timeout (offers calls take 2–20 s; the Java client allows 120 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest body excerpt kept in an error, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// A Keepa API key. `Debug` and `Display` print `***`; only
/// [`ApiKey::expose`] gives the secret, for building the request URL.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key, trimmed. Refuses an empty key or one with whitespace or
    /// control characters (a key file with two lines, say).
    pub fn new(key: impl Into<String>) -> Result<ApiKey, InvalidApiKey> {
        let key = key.into();
        let trimmed = key.trim();
        if trimmed.is_empty() {
            return Err(InvalidApiKey("the key is empty"));
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidApiKey(
                "the key contains whitespace or control characters",
            ));
        }
        Ok(ApiKey(trimmed.to_string()))
    }

    /// The secret itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of this key, and any `key=…` query
    /// parameter, replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        redact_key_params(&text.replace(&self.0, "***"))
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Replaces the value of every `key=` query parameter with `***`.
fn redact_key_params(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("key=") {
        let boundary = pos == 0 || matches!(rest.as_bytes()[pos - 1], b'?' | b'&' | b' ' | b'"');
        out.push_str(&rest[..pos + 4]);
        rest = &rest[pos + 4..];
        if boundary {
            let end = rest
                .find(|c: char| {
                    c == '&' || c == '#' || c == '"' || c == '\'' || c.is_whitespace() || c == ')'
                })
                .unwrap_or(rest.len());
            if end > 0 {
                out.push_str("***");
            }
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

/// A 2xx answer from Keepa: the envelope, the raw body, and when it arrived.
#[derive(Clone, PartialEq)]
pub struct Response {
    /// HTTP status (2xx).
    pub status: u16,
    /// The token envelope (fields missing from the body are `None`).
    pub envelope: Envelope,
    /// When the response headers arrived, Unix ms (local clock): fills a
    /// missing `timestamp`.
    pub received_at_ms: i64,
    /// Time from sending to the whole body being read.
    pub elapsed: Duration,
    /// How many times faster than real time the server's clock runs, when
    /// the server says so ([`TIME_SCALE_HEADER`]: fake-keepa on a fast
    /// clock); `None` from Keepa, whose `timestamp` is wall time.
    pub server_time_scale: Option<f64>,
    body: Vec<u8>,
}

/// The header in which a fake server on a fast clock announces its time
/// scale (Keepa never sends it): a positive finite number, `600` for one
/// real second per ten server minutes.
pub const TIME_SCALE_HEADER: &str = "x-fake-keepa-time-scale";

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("envelope", &self.envelope)
            .field("received_at_ms", &self.received_at_ms)
            .field("elapsed", &self.elapsed)
            .field("server_time_scale", &self.server_time_scale)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl Response {
    /// The decoded (gunzipped) body: a JSON object.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as a JSON value.
    pub fn json(&self) -> Result<Value, ApiError> {
        self.parse()
    }

    /// The body as a typed model (unknown fields are the model's business).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| ApiError::Undecodable {
            status: self.status,
            reason: format!("body does not match the expected model: {e}"),
            excerpt: excerpt(&self.body, None),
            envelope: Some(Box::new(self.envelope)),
            received_at_ms: self.received_at_ms,
        })
    }

    /// The token state, using [`Response::received_at_ms`] for a missing
    /// `timestamp`; `None` if the balance, refill time or rate is missing.
    pub fn snapshot(&self) -> Option<TokenSnapshot> {
        self.envelope.snapshot_or_received_at(self.received_at_ms)
    }
}

/// Builds a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    key: ApiKey,
    base_url: String,
    connect_timeout: Duration,
    timeout: Duration,
    user_agent: String,
}

impl ClientBuilder {
    /// A builder with Keepa's base URL and the default timeouts.
    pub fn new(key: ApiKey) -> Self {
        ClientBuilder {
            key,
            base_url: DEFAULT_BASE_URL.to_string(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            user_agent: concat!("keepa-harvest/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }

    /// Another server (a fake Keepa, a proxy): `http(s)://host[:port][/prefix]`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Time allowed to establish the connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for the whole exchange, body included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Builds the client. Installs rustls' `ring` crypto provider as the
    /// process default if none is installed yet.
    pub fn build(self) -> Result<Client, BuildError> {
        let invalid = |reason: &str| BuildError::InvalidBaseUrl {
            url: self.key.redact(&self.base_url),
            reason: reason.to_string(),
        };
        let base = Url::parse(self.base_url.trim()).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if base.cannot_be_a_base() || base.host_str().is_none() {
            return Err(invalid("the URL needs a host"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("the URL must not have a query or fragment"));
        }
        // Another crate may have installed a provider already: that is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .gzip(true)
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .retry(reqwest::retry::never())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(self.user_agent)
            .build()
            .map_err(|e| BuildError::Http(self.key.redact(&error_chain(e.without_url()))))?;
        Ok(Client {
            http,
            base,
            key: self.key,
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
        })
    }
}

/// The Keepa HTTP client. Cheap to clone (shares one connection pool).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    key: ApiKey,
    connect_timeout: Duration,
    timeout: Duration,
}

impl Client {
    /// A builder for `key`.
    pub fn builder(key: ApiKey) -> ClientBuilder {
        ClientBuilder::new(key)
    }

    /// The base URL in use (holds no key).
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// Sends one validated request: one HTTP exchange, no retry.
    pub async fn send(&self, request: &Request) -> Result<Response, ApiError> {
        let url = self.url(request.endpoint().path(), None, request.query());
        self.exchange(request.method(), url, request.body(), &request.describe())
            .await
    }

    /// Sends an unvalidated call given as a path such as `/product?domain=1&asin=…`
    /// or `product/?…` (already URL-encoded; a `key=` parameter in it is
    /// dropped and the client's key added). For ad-hoc calls and tests;
    /// prefer [`Client::send`].
    pub async fn send_raw(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Response, ApiError> {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let url = self.url(path.trim_start_matches('/'), query, &[]);
        let what = format!("{method} /{}", path.trim_start_matches('/'));
        self.exchange(method, url, body, &what).await
    }

    fn url(&self, path: &str, raw_query: Option<&str>, pairs: &[(String, String)]) -> Url {
        let mut url = self.base.clone();
        let joined = format!("{}/{}", self.base.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        let kept: Vec<&str> = raw_query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty() && *p != "key" && !p.starts_with("key="))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.set_query(Some(&kept.join("&")));
        }
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("key", self.key.expose());
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
        }
        url
    }

    async fn exchange(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Response, ApiError> {
        let started = Instant::now();
        let mut builder = match method {
            Method::Get => self.http.get(url),
            Method::Post => self.http.post(url),
        };
        if let Some(body) = body {
            builder = builder.json(body);
        }
        tracing::debug!(request = %what, "sending to Keepa");
        let response = builder.send().await.map_err(|e| self.map_error(e, None))?;
        let received_at_ms = unix_ms_now();
        let status = response.status().as_u16();
        let time_scale = response
            .headers()
            .get(TIME_SCALE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.map_error(e, Some((status, received_at_ms))))?;
        let elapsed = started.elapsed();
        let mut outcome = classify(&self.key, status, bytes.to_vec(), received_at_ms, elapsed);
        if let Ok(r) = &mut outcome {
            r.server_time_scale = time_scale;
        }
        match &outcome {
            Ok(r) => tracing::debug!(
                request = %what,
                status,
                tokens_consumed = r.envelope.tokens_consumed,
                tokens_left = r.envelope.tokens_left,
                elapsed_ms = elapsed.as_millis() as u64,
                "Keepa answered"
            ),
            Err(e) => tracing::debug!(request = %what, status, error = %e, "Keepa call failed"),
        }
        outcome
    }

    fn map_error(&self, err: reqwest::Error, response: Option<(u16, i64)>) -> ApiError {
        let connecting = response.is_none() && err.is_connect();
        let timeout = err.is_timeout();
        // A body that arrived but cannot be decompressed surfaces as an
        // `InvalidData` I/O error; a connection that broke mid-body as
        // `UnexpectedEof` (a transport failure).
        let decode = err.is_decode() && chain_has_invalid_data(&err);
        let message = self.key.redact(&error_chain(err.without_url()));
        if timeout {
            return ApiError::Timeout {
                after: if connecting {
                    self.connect_timeout
                } else {
                    self.timeout
                },
                connecting,
                may_have_been_charged: !connecting,
            };
        }
        if let (true, Some((status, received_at_ms))) = (decode, response) {
            return ApiError::Undecodable {
                status,
                reason: format!("cannot decode the body: {message}"),
                excerpt: String::new(),
                envelope: None,
                received_at_ms,
            };
        }
        ApiError::Transport {
            message,
            connecting,
            may_have_been_charged: !connecting,
        }
    }
}

/// What the client makes of an HTTP answer it has read in full: a
/// [`Response`] for a 2xx whose body is a JSON object, otherwise the typed
/// [`ApiError`] of its status (with the envelope and Keepa's error object
/// when the body has them, and a redacted excerpt when it is not JSON).
///
/// [`Client::send`] uses exactly this; it is public so that recorded
/// answers can be replayed and so that the fuzz targets and the no-panic
/// tests reach the same code. It never panics, whatever `body` holds.
pub fn decode_answer(
    key: &ApiKey,
    status: u16,
    body: Vec<u8>,
    received_at_ms: i64,
) -> Result<Response, ApiError> {
    classify(key, status, body, received_at_ms, Duration::ZERO)
}

fn classify(
    key: &ApiKey,
    status: u16,
    body: Vec<u8>,
    received_at_ms: i64,
    elapsed: Duration,
) -> Result<Response, ApiError> {
    if (200..300).contains(&status) {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(ApiError::Undecodable {
                status,
                reason: "the body is not a JSON object".into(),
                excerpt: excerpt(&body, Some(key)),
                envelope: None,
                received_at_ms,
            });
        }
        return match serde_json::from_slice::<Envelope>(&body) {
            Ok(envelope) => Ok(Response {
                status,
                envelope,
                received_at_ms,
                elapsed,
                server_time_scale: None,
                body,
            }),
            Err(e) => Err(ApiError::Undecodable {
                status,
                reason: format!("invalid JSON or token fields: {e}"),
                excerpt: excerpt(&body, Some(key)),
                envelope: None,
                received_at_ms,
            }),
        };
    }

    // Error bodies are small: redact the key before reading them at all.
    let text = key.redact(&String::from_utf8_lossy(&body));
    let parsed = serde_json::from_str::<Value>(&text)
        .ok()
        .filter(Value::is_object);
    let (envelope, error, excerpt_text) = match &parsed {
        Some(v) => {
            let envelope = serde_json::from_value::<Envelope>(v.clone())
                .ok()
                .filter(|e| !e.is_empty());
            let error = v
                .get("error")
                .filter(|e| e.is_object())
                .and_then(|e| serde_json::from_value::<KeepaErrorObject>(e.clone()).ok());
            (envelope, error, None)
        }
        None => (None, None, Some(excerpt(text.as_bytes(), None))),
    };
    let detail = Box::new(ErrorResponse {
        status,
        envelope,
        error,
        received_at_ms,
        excerpt: excerpt_text,
    });
    Err(match status {
        400 => ApiError::Rejected(detail),
        402 => ApiError::PaymentRequired(detail),
        404 => ApiError::NotFound(detail),
        405 => ApiError::MethodNotAllowed(detail),
        429 => ApiError::NotEnoughTokens(detail),
        500..=599 => ApiError::Server(detail),
        _ => ApiError::UnexpectedStatus(detail),
    })
}

fn chain_has_invalid_data(err: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
            );
        }
        source = s.source();
    }
    false
}

/// The error and its sources, joined with `: `.
fn error_chain(err: reqwest::Error) -> String {
    let mut out = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The first [`EXCERPT_CHARS`] characters of a body, lossily decoded and
/// redacted.
fn excerpt(body: &[u8], key: Option<&ApiKey>) -> String {
    let head = &body[..body.len().min(EXCERPT_CHARS * 4)];
    let text: String = String::from_utf8_lossy(head)
        .chars()
        .take(EXCERPT_CHARS)
        .collect();
    match key {
        Some(k) => k.redact(&text),
        None => redact_key_params(&text),
    }
}

fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_params_are_redacted() {
        assert_eq!(
            redact_key_params("GET http://x/product?key=abc&asin=1 failed"),
            "GET http://x/product?key=***&asin=1 failed"
        );
        assert_eq!(redact_key_params("monkey=1"), "monkey=1");
        let k = ApiKey::new("SECRET123").unwrap();
        assert_eq!(k.redact("a SECRET123 b"), "a *** b");
        assert_eq!(format!("{k} {k:?}"), "*** ApiKey(***)");
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(ApiKey::new("  ").is_err());
        assert!(ApiKey::new("ab\ncd").is_err());
        assert_eq!(ApiKey::new(" ab\n").unwrap().expose(), "ab");
    }

    #[test]
    fn urls_join_base_prefix_and_drop_foreign_keys() {
        let c = Client::builder(ApiKey::new("K").unwrap())
            .base_url("http://127.0.0.1:9/prefix/")
            .build()
            .unwrap();
        let u = c.url("product/", Some("domain=1&key=OTHER&asin=B"), &[]);
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:9/prefix/product/?domain=1&asin=B&key=K"
        );
    }
}
