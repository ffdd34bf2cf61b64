//! What the server saw, per key: the ground truth tests and benchmarks
//! compare a client's own tally against.

use std::collections::BTreeMap;

use serde::Serialize;

/// How many refill steps each key remembers in detail; older steps are only counted.
pub const REFILL_HISTORY: usize = 1440;

/// A snapshot of everything the server counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerStats {
    /// Server time of the snapshot, Unix ms.
    pub now_ms: i64,
    /// One entry per configured key, in configuration order.
    pub keys: Vec<KeyStats>,
    /// Requests with a missing, unknown or expired key: endpoint → status → count.
    pub rejected_keys: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Faults injected so far.
    pub faults: FaultCounts,
}

impl ServerStats {
    /// The stats of one key (in-process use; the key itself is never serialised).
    pub fn key(&self, key: &str) -> Option<&KeyStats> {
        self.keys.iter().find(|k| k.key == key)
    }
}

/// Counters of injected faults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultCounts {
    /// 500/503 answers.
    pub server_errors: u64,
    /// Requests charged and then held without answer.
    pub hangs: u64,
    /// Connections reset.
    pub resets: u64,
    /// Malformed bodies sent.
    pub garbage: u64,
    /// 200 answers with an error object and no payload (`inbody`).
    pub in_body: u64,
    /// 200 answers without their payload (`nopayload`).
    pub no_payload: u64,
    /// Feed pages with one malformed deal (`bad_deal`).
    pub bad_deals: u64,
    /// Products whose offers collection was said to fail (`offers_failed`).
    pub offers_failed: u64,
    /// 200 answers without `tokensConsumed` (`no_consumed`).
    pub no_consumed: u64,
    /// ASINs left out of `/product` answers (`missing_asin`).
    pub missing_asins: u64,
}

/// One key's account, as the server kept it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyStats {
    /// The key (in-process only; never serialised).
    #[serde(skip)]
    pub key: String,
    /// A redacted label: short keys (≤ 8 chars, test keys) as they are,
    /// longer ones as their first four characters and `…`.
    pub label: String,
    /// Requests by endpoint (`token`, `product`, …) and HTTP status.
    pub requests: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Tokens charged to this key's own requests (sum of `tokensConsumed`).
    pub tokens_charged: i64,
    /// Requests refused with 429.
    pub refused_429: u64,
    /// Balance now.
    pub balance: i64,
    /// Lowest balance ever reached (after any charge, foreign included).
    pub min_balance: i64,
    /// Refill rate now.
    pub refill_rate: i64,
    /// Refill steps that have landed.
    pub refill_steps_total: u64,
    /// Tokens the cap threw away at refill steps.
    pub wasted_refill: i64,
    /// The last [`REFILL_HISTORY`] refill steps.
    pub refill_steps: Vec<RefillRecord>,
    /// Tokens the foreign consumer spent.
    pub foreign_spent: i64,
    /// Foreign requests admitted.
    pub foreign_requests: u64,
    /// Foreign requests refused (balance ≤ 0).
    pub foreign_refused: u64,
    /// Products served in charged `/product` answers (unknown ASINs are not).
    pub products_served: u64,
    /// Of those, products served before to a request of the same shape
    /// (domain, offers, stats, history, rating, buybox, stock, live offers):
    /// a client that never pays twice for one product keeps this at 0.
    pub products_served_again: u64,
}

/// The balance right after one refill step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefillRecord {
    /// When the step landed, Unix ms.
    pub at_ms: i64,
    /// Tokens the step added (before the cap).
    pub rate: i64,
    /// Balance after the step and the cap.
    pub balance_after: i64,
}

/// Redacts a key for display.
pub(crate) fn label(key: &str) -> String {
    if key.chars().count() <= 8 {
        key.to_string()
    } else {
        format!("{}…", key.chars().take(4).collect::<String>())
    }
}
