//! The HTTP client (feature `client`, on by default): every outcome is one
//! typed result carrying the envelope.
//!
//! [`Client::send`] makes exactly one HTTP exchange per call: no retries, no
//! waiting, no redirects (waiting and retrying is the budget's job). It
//! returns a [`Response`] on 2xx, or an [`ApiError`] that says what happened
//! and carries the token [`Envelope`](crate::Envelope) whenever the body
//! had one. What it makes of an answer is [`decode_answer`], in
//! [`crate::answer`] (always built); [`ApiKey`], [`Response`] and the rest
//! of that module are re-exported here.
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

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use url::Url;

use crate::answer::classify;
pub use crate::answer::{decode_answer, ApiKey, Response, EXCERPT_CHARS, TIME_SCALE_HEADER};
use crate::error::{ApiError, BuildError};
use crate::record::{RecordedAnswer, Recorder, KEPT_HEADERS};
use crate::request::{Method, Request};

/// Keepa's production base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.keepa.com";
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default total timeout (offers calls take 2–20 s; the Java client allows 120 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Builds a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    key: ApiKey,
    base_url: String,
    connect_timeout: Duration,
    timeout: Duration,
    user_agent: String,
    recorder: Option<Recorder>,
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
            recorder: None,
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

    /// Records every answer the client reads in full (any status) into
    /// `recorder`'s directory, the key redacted ([`crate::record`]). A
    /// failed write is logged as a warning and does not fail the call.
    pub fn record(mut self, recorder: Recorder) -> Self {
        self.recorder = Some(recorder);
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
            recorder: self.recorder,
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
    recorder: Option<Recorder>,
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

    /// The recorder in use, if the client records its answers.
    pub fn recorder(&self) -> Option<&Recorder> {
        self.recorder.as_ref()
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
        let recorded = self.recorder.as_ref().map(|_| url.clone());
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
        let kept = recorded.as_ref().map(|_| kept_headers(response.headers()));
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
        if let (Some(url), Some(headers)) = (recorded, kept) {
            let answer = RecordedAnswer {
                endpoint: self.endpoint_of(&url),
                method: method.to_string(),
                query: query_without_key(&url),
                request_body: body.cloned(),
                status,
                headers,
                body_lossy: std::str::from_utf8(&bytes).is_err(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
                received_at_ms,
                elapsed_ms: elapsed.as_millis() as u64,
                ..RecordedAnswer::new("", status, "")
            };
            self.record_answer(answer);
        }
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

    /// The path of `url` under the base URL, without slashes.
    fn endpoint_of(&self, url: &Url) -> String {
        let base = self.base.path().trim_end_matches('/');
        let path = url.path().strip_prefix(base).unwrap_or(url.path());
        path.trim_matches('/').to_string()
    }

    /// Writes one answer with the recorder; a failure is only a warning.
    fn record_answer(&self, answer: RecordedAnswer) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        match recorder.write(&self.key, answer) {
            Ok(path) => tracing::debug!(file = %path.display(), "answer recorded"),
            Err(e) => tracing::warn!(error = %e, "could not record Keepa's answer"),
        }
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

/// The [`KEPT_HEADERS`] of an answer, by lower-case name.
fn kept_headers(
    headers: &reqwest::header::HeaderMap,
) -> std::collections::BTreeMap<String, String> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let v = headers.get(*name)?.to_str().ok()?;
            Some((name.to_string(), v.to_string()))
        })
        .collect()
}

/// The URL's query without its `key` parameter, URL-encoded.
fn query_without_key(url: &Url) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url.query_pairs().filter(|(k, _)| k != "key") {
        out.append_pair(&k, &v);
    }
    out.finish()
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
