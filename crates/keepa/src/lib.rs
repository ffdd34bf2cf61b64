//! A typed client for the [Keepa](https://keepa.com) API.
//!
//! Keepa meters its API in tokens: a plan refills `R` tokens a minute into a
//! bucket of `60 × R`; a request runs whenever the balance is positive and is
//! charged in full even into the negative; a request at zero gets HTTP 429.
//! This crate speaks that API and knows its rules, and nothing else: it has
//! no notion of jobs, storage or waiting policy.
//!
//! - [`envelope`]: the token fields on every response ([`Envelope`],
//!   [`TokenSnapshot`]).
//! - [`tokens`]: Keepa's bucket (refill step, cap, admission rule) as one
//!   pure model, shared by the fake server, the simulator and the budget.
//! - [`clock`]: server time ([`clock::Clock`]), scaled or moved by hand;
//!   the one clock abstraction of the project.
//! - [`time`]: Keepa minutes ([`KeepaMinutes`]), both directions.
//! - [`domain`]: marketplaces ([`Domain`]).
//! - [`model`]: products, stats, offers, deals, sellers, csv histories.
//! - [`request`]: validated request builders; a bad request never costs a token.
//! - [`cost`]: what a request will cost, learned online from `tokensConsumed`.
//! - [`answer`]: what Keepa answered: [`ApiKey`] (prints `***`),
//!   [`Response`], and `decode_answer`, the one reading of a received
//!   answer into a response or a typed error.
//! - [`in_body`]: errors inside a 2xx answer, and answers without their
//!   payload: typed like their HTTP twins, never "no data".
//! - `client` (feature **`client`**, on by default): the HTTP client
//!   (`Client`, on reqwest and rustls); every outcome is one typed result.
//!   Crates that only model Keepa (the budget, the simulator) depend on
//!   `keepa` with `default-features = false` and link no HTTP stack.
//! - [`fuzz`]: the parse entry points the fuzz targets and the no-panic
//!   tests drive with arbitrary bytes.
//!
//! ```
//! use keepa::{KeepaMinutes, Envelope};
//! let env: Envelope = serde_json::from_str(
//!     r#"{"timestamp":1594177158252,"tokensLeft":-89,"refillIn":500,"refillRate":20}"#,
//! ).unwrap();
//! let snapshot = env.snapshot().unwrap();
//! let bucket = keepa::tokens::TokenBucket::from_snapshot(&snapshot);
//! // Refill alone makes the balance positive five steps later.
//! assert_eq!(bucket.when_balance_reaches(1), Some(1594177158252 + 500 + 4 * 60_000));
//! assert_eq!(KeepaMinutes(411_180).to_unix_ms(), 1_318_510_800_000);
//! ```
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod answer;
#[cfg(feature = "client")]
pub mod client;
pub mod clock;
pub mod cost;
pub mod domain;
pub mod envelope;
pub mod error;
pub mod fuzz;
pub mod in_body;
pub mod model;
pub mod record;
pub mod request;
pub mod time;
pub mod tokens;

pub use answer::{ApiKey, Response, TIME_SCALE_HEADER};
#[cfg(feature = "client")]
pub use client::{Client, ClientBuilder};
pub use cost::{CostModel, CostPrediction};
pub use domain::Domain;
pub use envelope::{Envelope, TokenSnapshot, PLAUSIBLE};
pub use error::{ApiError, ValidationError};
pub use model::{
    ConditionFilter, CsvType, DateRange, Deal, DealResponse, History, KeepaValue, Offer,
    OfferCondition, Product, ProductResponse, Stats,
};
pub use request::{DealSelection, Endpoint, Method, ProductRequest, Request, RequestShape};
pub use time::KeepaMinutes;
