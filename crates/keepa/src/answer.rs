//! What Keepa answered, without any HTTP stack: the [`ApiKey`] (which never
//! prints), the [`Response`] of a 2xx, and [`decode_answer`], the one
//! reading of a received answer into a [`Response`] or a typed
//! [`ApiError`]. Always built; the HTTP client that sends requests is
//! `keepa::client` (feature `client`), which uses exactly this.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::envelope::{Envelope, TokenSnapshot};
use crate::error::{ApiError, ErrorResponse, InvalidApiKey, KeepaErrorObject};
use crate::in_body::error_in_body;

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

/// What the client makes of an HTTP answer it has read in full: a
/// [`Response`] for a 2xx whose body is a JSON object without an `error`
/// object, otherwise the typed [`ApiError`] of its status (with the
/// envelope and Keepa's error object when the body has them, and a redacted
/// excerpt when it is not JSON). A 2xx with an `error` object is the error
/// of its HTTP twin ([`crate::in_body`]), with the 2xx status kept.
///
/// The HTTP client (`Client::send`, feature `client`) uses exactly this;
/// it is public so that recorded
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

/// [`decode_answer`], with the time the exchange took.
pub(crate) fn classify(
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
            Ok(envelope) => {
                if let Some(err) = error_in_body(key, status, &body, &envelope, received_at_ms) {
                    return Err(err);
                }
                Ok(Response {
                    status,
                    envelope,
                    received_at_ms,
                    elapsed,
                    server_time_scale: None,
                    body,
                })
            }
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
}
