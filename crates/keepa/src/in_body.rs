//! Errors inside a 2xx answer, and answers that lack their payload.
//!
//! Keepa can answer HTTP 200 with an `error` object beside the envelope and
//! no payload (`docs/KEEPA_API.md` §7). Such an answer is an error, typed
//! like its HTTP twin, never a success with no data:
//!
//! | the answer | the error |
//! |---|---|
//! | an error whose type names tokens or a limit, or any error with `tokensLeft <= 0` | [`ApiError::NotEnoughTokens`] (wait for refill) |
//! | an error whose type names an invalid parameter | [`ApiError::Rejected`] |
//! | an error whose type names payment | [`ApiError::PaymentRequired`] |
//! | any other error | [`ApiError::Server`] (retry) |
//! | no error, but the payload asked for is missing or `null` ([`missing_payload`]) | `NotEnoughTokens` at `tokensLeft <= 0`, else `Server` (retry), with an error object of no type whose message names the missing field |
//!
//! Each such error keeps the answer's 2xx status: [`ApiError::is_in_body`]
//! tells them from the HTTP errors. Keepa's error object is read with the
//! key redacted.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

use crate::answer::{ApiKey, Response};
use crate::envelope::Envelope;
use crate::error::{ApiError, ErrorResponse, KeepaErrorObject};

/// Just the `error` member of a body (everything else is skipped unread).
#[derive(Deserialize)]
struct ErrorMember {
    #[serde(default)]
    error: Option<Value>,
}

/// The typed error a 2xx `body` carries in an `error` object, if it has
/// one (a JSON object; `null` or any other value is no error).
pub(crate) fn error_in_body(
    key: &ApiKey,
    status: u16,
    body: &[u8],
    envelope: &Envelope,
    received_at_ms: i64,
) -> Option<ApiError> {
    let member = serde_json::from_slice::<ErrorMember>(body).ok()?.error?;
    if !member.is_object() {
        return None;
    }
    // Keepa may echo the request (and so the key) in its message.
    let text = key.redact(&member.to_string());
    let error = serde_json::from_str::<KeepaErrorObject>(&text).unwrap_or_default();
    let kind = error.kind.as_deref().unwrap_or("").to_ascii_lowercase();
    let detail = Box::new(ErrorResponse {
        status,
        envelope: Some(*envelope).filter(|e| !e.is_empty()),
        error: Some(error),
        received_at_ms,
        excerpt: None,
    });
    let out_of_tokens = envelope.tokens_left.is_some_and(|t| t <= 0);
    Some(
        if out_of_tokens || kind.contains("token") || kind.contains("limit") {
            ApiError::NotEnoughTokens(detail)
        } else if kind.contains("invalid") || kind.contains("parameter") {
            ApiError::Rejected(detail)
        } else if kind.contains("payment") {
            ApiError::PaymentRequired(detail)
        } else {
            ApiError::Server(detail)
        },
    )
}

/// The error of a 2xx `resp` whose payload `field` (`products`, `deals`,
/// …) is missing or `null`; `None` when the field holds a value. Without
/// its payload the answer is a failed call: "not enough tokens" when its
/// envelope shows `tokensLeft <= 0`, otherwise a server error (retried
/// like any), never "no data". Its error object has no type and a message
/// that names the missing field.
pub fn missing_payload(resp: &Response, field: &str) -> Option<ApiError> {
    let mut de = serde_json::Deserializer::from_slice(resp.body());
    let present =
        serde::de::DeserializeSeed::deserialize(HasMember(field), &mut de).unwrap_or(false);
    if present {
        return None;
    }
    let detail = Box::new(ErrorResponse {
        status: resp.status,
        envelope: Some(resp.envelope),
        error: Some(KeepaErrorObject {
            kind: None,
            message: Some(format!("the answer has no `{field}` (missing or null)")),
            details: None,
        }),
        received_at_ms: resp.received_at_ms,
        excerpt: None,
    });
    Some(if resp.envelope.tokens_left.is_some_and(|t| t <= 0) {
        ApiError::NotEnoughTokens(detail)
    } else {
        ApiError::Server(detail)
    })
}

/// Reads a JSON object and says whether member `.0` holds a value other
/// than `null`, skipping every other member unread.
struct HasMember<'a>(&'a str);

impl<'de> serde::de::DeserializeSeed<'de> for HasMember<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for HasMember<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if k == self.0 {
                found |= map.next_value::<Option<IgnoredAny>>()?.is_some();
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::decode_answer;

    const ENV: &str = r#""timestamp":1000,"refillIn":26645,"refillRate":5,"tokensConsumed":0"#;

    fn decode(body: &str) -> Result<Response, ApiError> {
        let key = ApiKey::new("SECRETKEY").unwrap();
        decode_answer(&key, 200, body.as_bytes().to_vec(), 1_000)
    }

    #[test]
    fn an_error_in_a_200_is_typed_like_its_http_twin() {
        // The shape measured in 2026-08.
        let measured = format!(
            r#"{{"error":{{"message":"bad asin","type":"invalidParameter"}},"tokensLeft":59,{ENV}}}"#
        );
        let e = decode(&measured).unwrap_err();
        assert!(matches!(e, ApiError::Rejected(_)), "{e}");
        assert!(e.is_in_body() && e.is_refusal());
        assert_eq!(e.status(), Some(200));
        assert_eq!(e.envelope().and_then(|e| e.tokens_left), Some(59));
        let tokens = format!(r#"{{"error":{{"type":"tokenLimit"}},"tokensLeft":59,{ENV}}}"#);
        assert!(matches!(decode(&tokens), Err(ApiError::NotEnoughTokens(_))));
        // Any error at a balance <= 0 is a quota failure.
        let zero = format!(r#"{{"error":{{"type":"whatever"}},"tokensLeft":0,{ENV}}}"#);
        assert!(matches!(decode(&zero), Err(ApiError::NotEnoughTokens(_))));
        let other = format!(r#"{{"error":{{"type":"internal"}},"tokensLeft":9,{ENV}}}"#);
        let e = decode(&other).unwrap_err();
        assert!(matches!(e, ApiError::Server(_)) && e.may_have_been_charged());
        assert!(
            e.to_string().contains("HTTP 200 with an error in the body"),
            "{e}"
        );
        // `null` or a non-object is no error.
        let ok = format!(r#"{{"error":null,"tokensLeft":9,{ENV},"products":[]}}"#);
        assert!(decode(&ok).is_ok());
    }

    #[test]
    fn the_key_echoed_in_an_in_body_error_is_redacted() {
        let body = format!(
            r#"{{"error":{{"type":"x","message":"GET /product?key=SECRETKEY failed"}},"tokensLeft":5,{ENV}}}"#
        );
        let e = decode(&body).unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(!text.contains("SECRETKEY"), "{text}");
    }

    #[test]
    fn a_missing_or_null_payload_is_a_failed_call() {
        let with = decode(&format!(r#"{{"tokensLeft":5,{ENV},"products":[]}}"#)).unwrap();
        assert!(missing_payload(&with, "products").is_none());
        for body in [
            format!(r#"{{"tokensLeft":5,{ENV}}}"#),
            format!(r#"{{"tokensLeft":5,{ENV},"products":null}}"#),
            format!(r#"{{"tokensLeft":5,{ENV},"deals":{{"dr":[]}}}}"#),
        ] {
            let resp = decode(&body).unwrap();
            let e = missing_payload(&resp, "products").unwrap();
            assert!(matches!(e, ApiError::Server(_)) && e.is_in_body(), "{e}");
            assert!(e.to_string().contains("no `products`"), "{e}");
        }
        let broke = decode(&format!(r#"{{"tokensLeft":-3,{ENV}}}"#)).unwrap();
        assert!(matches!(
            missing_payload(&broke, "deals"),
            Some(ApiError::NotEnoughTokens(_))
        ));
    }
}
