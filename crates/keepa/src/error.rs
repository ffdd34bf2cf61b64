//! Typed errors of the client and the request builders.
//!
//! - [`ValidationError`]: a request refused before any IO; it names the
//!   parameter, the offending value and the rule.
//! - [`ApiError`]: every way a call to Keepa can fail, each carrying the
//!   [`Envelope`] whenever the response body had one.
//! - [`BuildError`], [`InvalidApiKey`]: a client that cannot be built.
//!
//! Guarantee: no error in this module holds or prints the API key. Transport
//! messages are stripped of URLs and of the key string before they are
//! stored, and response excerpts are redacted the same way.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::envelope::Envelope;

/// A request refused before any IO: `param=value: rule`, e.g.
/// `offers=5: must be between 20 and 100`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// The Keepa parameter at fault, as Keepa names it (`offers`, `asin`,
    /// `priceTypes`, …).
    pub param: &'static str,
    /// The offending value as given (may be empty when a value is missing).
    pub value: String,
    /// The rule it breaks, e.g. `must be between 20 and 100`.
    pub rule: String,
}

impl ValidationError {
    pub(crate) fn new(
        param: &'static str,
        value: impl fmt::Display,
        rule: impl Into<String>,
    ) -> Self {
        let mut value = value.to_string();
        if value.chars().count() > 80 {
            value = value.chars().take(77).collect::<String>() + "...";
        }
        ValidationError {
            param,
            value,
            rule: rule.into(),
        }
    }

    pub(crate) fn missing(param: &'static str, rule: impl Into<String>) -> Self {
        ValidationError {
            param,
            value: String::new(),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}: {}", self.param, self.rule)
        } else {
            write!(f, "{}={}: {}", self.param, self.value, self.rule)
        }
    }
}

/// Keepa's `error` object, as sent on 400/402/404/405 (and perhaps others).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KeepaErrorObject {
    /// Keepa's error type, e.g. `invalidParameter`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Free-form details, e.g. `[{"type":"domain","message":"invalid"}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl fmt::Display for KeepaErrorObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.message) {
            (Some(k), Some(m)) => write!(f, "{k}: {m}")?,
            (Some(k), None) => write!(f, "{k}")?,
            (None, Some(m)) => write!(f, "{m}")?,
            (None, None) => write!(f, "(no error type or message)")?,
        }
        if let Some(d) = &self.details {
            if !d.is_null() {
                write!(f, " (details: {d})")?;
            }
        }
        Ok(())
    }
}

/// A non-success HTTP response from Keepa, as far as it could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorResponse {
    /// HTTP status code.
    pub status: u16,
    /// The token envelope, if the body was JSON with any token field.
    pub envelope: Option<Envelope>,
    /// Keepa's `error` object, if the body had one.
    pub error: Option<KeepaErrorObject>,
    /// When the response arrived, Unix milliseconds (local clock): fills a
    /// missing `timestamp`.
    pub received_at_ms: i64,
    /// The start of the body (redacted, at most a few hundred characters)
    /// when it was not a JSON object.
    pub excerpt: Option<String>,
}

impl fmt::Display for ErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if (200..300).contains(&self.status) {
            f.write_str(" with an error in the body")?;
        }
        if let Some(e) = &self.error {
            write!(f, ": {e}")?;
        } else if let Some(x) = &self.excerpt {
            write!(f, ": body {x:?}")?;
        }
        if let Some(left) = self.envelope.and_then(|e| e.tokens_left) {
            write!(f, " (tokens left {left})")?;
        }
        Ok(())
    }
}

/// Every way one call to Keepa can fail. No variant retries or waits: that
/// is the caller's (the budget's) decision.
///
/// [`ApiError::envelope`] gives the token state whenever the body carried
/// one; [`ApiError::may_have_been_charged`] says whether tokens may have been
/// spent although no usable answer came back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 400 REQUEST_REJECTED: bad key, domain or parameter.
    #[error("Keepa rejected the request: {0}")]
    Rejected(Box<ErrorResponse>),
    /// 402 PAYMENT_REQUIRED: expired or unpaid key.
    #[error("Keepa requires payment (expired or unpaid key): {0}")]
    PaymentRequired(Box<ErrorResponse>),
    /// 404 NOT_FOUND: unknown endpoint.
    #[error("Keepa does not know this endpoint: {0}")]
    NotFound(Box<ErrorResponse>),
    /// 405 METHOD_NOT_ALLOWED: wrong method or parameter combination.
    #[error("Keepa does not allow this method or parameter combination: {0}")]
    MethodNotAllowed(Box<ErrorResponse>),
    /// 429 NOT_ENOUGH_TOKEN: the balance was ≤ 0; nothing was charged.
    #[error("not enough tokens (nothing charged): {0}")]
    NotEnoughTokens(Box<ErrorResponse>),
    /// 5xx: a server fault; the request may or may not have run.
    #[error("Keepa server error: {0}")]
    Server(Box<ErrorResponse>),
    /// Any other non-2xx status (3xx, 401, 403, 408, …).
    #[error("unexpected HTTP status from Keepa: {0}")]
    UnexpectedStatus(Box<ErrorResponse>),
    /// The connect or total timeout elapsed. Unless the connection was never
    /// made, Keepa may have executed and charged the request: count it as
    /// spent until a later envelope says otherwise.
    #[error("timed out after {after:?} ({}){}", if *.connecting { "connecting" } else { "waiting for the response" }, if *.may_have_been_charged { "; the request may have been charged" } else { "" })]
    Timeout {
        /// The configured timeout that elapsed.
        after: Duration,
        /// Whether it elapsed while connecting (nothing was sent).
        connecting: bool,
        /// Whether the request may have reached Keepa and been charged.
        may_have_been_charged: bool,
    },
    /// Connection refused, reset, TLS failure, DNS failure and the like.
    #[error("network error{}: {message}", if *.may_have_been_charged { " (the request may have been charged)" } else { "" })]
    Transport {
        /// What went wrong, redacted (no URL, no key).
        message: String,
        /// Whether the failure happened while connecting (nothing was sent).
        connecting: bool,
        /// Whether the request may have reached Keepa and been charged.
        may_have_been_charged: bool,
    },
    /// A success status whose body is not the JSON expected.
    #[error("undecodable response (HTTP {status}): {reason}; body starts {excerpt:?}")]
    Undecodable {
        /// HTTP status code.
        status: u16,
        /// Why decoding failed.
        reason: String,
        /// The start of the body, redacted, at most a few hundred characters.
        excerpt: String,
        /// The token envelope, if one could still be read from the body.
        envelope: Option<Box<Envelope>>,
        /// When the response arrived, Unix milliseconds (local clock).
        received_at_ms: i64,
    },
}

impl ApiError {
    /// The token envelope the response carried, if any.
    pub fn envelope(&self) -> Option<&Envelope> {
        match self {
            ApiError::Undecodable { envelope, .. } => envelope.as_deref(),
            other => other.response().and_then(|r| r.envelope.as_ref()),
        }
    }

    /// The HTTP response details, for the status variants.
    pub fn response(&self) -> Option<&ErrorResponse> {
        match self {
            ApiError::Rejected(r)
            | ApiError::PaymentRequired(r)
            | ApiError::NotFound(r)
            | ApiError::MethodNotAllowed(r)
            | ApiError::NotEnoughTokens(r)
            | ApiError::Server(r)
            | ApiError::UnexpectedStatus(r) => Some(r),
            _ => None,
        }
    }

    /// The HTTP status, if a response arrived.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Undecodable { status, .. } => Some(*status),
            other => other.response().map(|r| r.status),
        }
    }

    /// Keepa's `error` object, if the body had one.
    pub fn keepa_error(&self) -> Option<&KeepaErrorObject> {
        self.response().and_then(|r| r.error.as_ref())
    }

    /// When the response arrived (Unix ms, local clock), if one did.
    pub fn received_at_ms(&self) -> Option<i64> {
        match self {
            ApiError::Undecodable { received_at_ms, .. } => Some(*received_at_ms),
            other => other.response().map(|r| r.received_at_ms),
        }
    }

    /// The token state the error's body carried, its arrival time standing
    /// in for a missing `timestamp` (like [`crate::Response::snapshot`]);
    /// `None` without an envelope or with an implausible one.
    pub fn snapshot(&self) -> Option<crate::TokenSnapshot> {
        self.envelope()?
            .snapshot_or_received_at(self.received_at_ms()?)
    }

    /// Whether a 2xx answer carried this error in its body (an `error`
    /// object, or a payload missing: see [`crate::in_body`]) rather than in
    /// its HTTP status.
    pub fn is_in_body(&self) -> bool {
        self.response()
            .is_some_and(|r| (200..300).contains(&r.status))
    }

    /// Whether Keepa refused the request itself (400, 402, 404, 405): sending
    /// it again unchanged will not help.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ApiError::Rejected(_)
                | ApiError::PaymentRequired(_)
                | ApiError::NotFound(_)
                | ApiError::MethodNotAllowed(_)
        )
    }

    /// Whether tokens may have been spent without a usable answer: a
    /// timeout or a broken connection after the request was sent, a 5xx,
    /// or an undecodable success. A 429 or a refusal is never charged
    /// beyond what its envelope says.
    pub fn may_have_been_charged(&self) -> bool {
        match self {
            ApiError::Timeout {
                may_have_been_charged,
                ..
            }
            | ApiError::Transport {
                may_have_been_charged,
                ..
            } => *may_have_been_charged,
            ApiError::Server(_) | ApiError::Undecodable { .. } => true,
            _ => false,
        }
    }
}

/// A `keepa::client::Client` (feature `client`) that could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The base URL is not an absolute `http`/`https` URL.
    #[error("invalid base URL {url:?}: {reason}")]
    InvalidBaseUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP stack could not be initialised (TLS and the like).
    #[error("cannot initialise the HTTP client: {0}")]
    Http(String),
}

/// A string that cannot be a Keepa API key. Never holds the key itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Keepa API key: {0}")]
pub struct InvalidApiKey(pub &'static str);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_snapshot_takes_the_arrival_for_a_missing_timestamp() {
        let err = |timestamp| {
            ApiError::NotEnoughTokens(Box::new(ErrorResponse {
                status: 429,
                envelope: Some(Envelope {
                    timestamp,
                    tokens_left: Some(-3),
                    refill_in: Some(4_000),
                    refill_rate: Some(20),
                    ..Default::default()
                }),
                error: None,
                received_at_ms: 1_000,
                excerpt: None,
            }))
        };
        let s = err(None).snapshot().unwrap();
        assert_eq!(
            (s.timestamp_ms, s.tokens_left, s.refill_in_ms),
            (1_000, -3, 4_000)
        );
        assert_eq!(err(Some(900)).snapshot().unwrap().timestamp_ms, 900);
        assert_eq!(
            ApiError::NotEnoughTokens(Box::new(ErrorResponse {
                status: 429,
                envelope: None,
                error: None,
                received_at_ms: 1_000,
                excerpt: None,
            }))
            .snapshot(),
            None
        );
    }
}
