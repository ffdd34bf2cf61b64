//! Per-key state: the token bucket, the foreign consumer sharing it, and
//! what `/_fake/stats` reports.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use keepa::tokens::{Admission, RateSchedule, TokenBucket};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::Settings;
use crate::faults::FaultSpec;
use crate::render::ProductOptions;
use crate::stats::{label, FaultCounts, KeyStats, RefillRecord, REFILL_HISTORY};

/// Another client spending from the same key (`foreign=` in the fault spec).
#[derive(Debug)]
struct Foreign {
    rng: ChaCha8Rng,
    next_at: i64,
}

/// Milliseconds to the foreign consumer's next request: exponential, so
/// its spend averages `foreign_per_minute` tokens a minute (at least 1 ms).
fn foreign_gap(rng: &mut ChaCha8Rng, spec: &FaultSpec) -> i64 {
    let mean_cost = (1 + spec.foreign_max_cost) as f64 / 2.0;
    let per_ms = spec.foreign_per_minute / mean_cost / 60_000.0;
    let u: f64 = rng.random::<f64>().max(1e-12);
    ((-u.ln()) / per_ms).max(1.0) as i64
}

/// One key: its bucket and its counters.
#[derive(Debug)]
pub(super) struct Account {
    pub(super) key: String,
    pub(super) bucket: TokenBucket,
    requests: BTreeMap<String, BTreeMap<u16, u64>>,
    tokens_charged: i64,
    refused_429: u64,
    pub(super) min_balance: i64,
    steps_total: u64,
    wasted: i64,
    steps: VecDeque<RefillRecord>,
    foreign: Option<Foreign>,
    foreign_spent: i64,
    foreign_requests: u64,
    foreign_refused: u64,
    /// Products served in charged answers, and which (index, request
    /// shape number in `shapes`): bounded by the catalog, not by time.
    products_served: u64,
    products_served_again: u64,
    served: HashSet<(u32, u32)>,
    shapes: HashMap<String, u32>,
}

impl Account {
    fn new(key: String, bucket: TokenBucket, foreign: Option<Foreign>) -> Self {
        Account {
            key,
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
            served: HashSet::new(),
            shapes: HashMap::new(),
        }
    }

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
    pub(super) fn sync(&mut self, now: i64, spec: &FaultSpec) {
        if spec.foreign_per_minute > 0.0 {
            while let Some(f) = self.foreign.as_mut() {
                if f.next_at >= now {
                    break;
                }
                let at = f.next_at;
                let cost = f.rng.random_range(1..=spec.foreign_max_cost);
                f.next_at = at + foreign_gap(&mut f.rng, spec);
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

    /// Counts one answer of `endpoint` with `status`.
    pub(super) fn count(&mut self, endpoint: &str, status: u16) {
        bump(&mut self.requests, endpoint, status);
    }

    /// Whether a request arriving at `now` may run at all (balance > 0, or
    /// free); a refusal is counted.
    pub(super) fn may_run(&mut self, now: i64, spec: &FaultSpec, free: bool) -> bool {
        self.sync(now, spec);
        if self.bucket.balance() <= 0 && !free {
            self.refused_429 += 1;
            return false;
        }
        true
    }

    /// Charges `cost` at `at`, the instant the answer is ready; `false`
    /// (and a counted refusal) if the bucket no longer admits it.
    pub(super) fn charge(&mut self, at: i64, cost: i64, spec: &FaultSpec) -> bool {
        self.sync(at, spec);
        match self.bucket.try_spend(at, cost) {
            Admission::Admitted { balance_after } => {
                self.tokens_charged += cost;
                self.min_balance = self.min_balance.min(balance_after);
                true
            }
            Admission::Refused => {
                self.refused_429 += 1;
                false
            }
        }
    }

    /// Records products served in a charged answer, noting those already
    /// served with the same options.
    pub(super) fn record_products(&mut self, indices: &[u32], opt: &ProductOptions) {
        let next = self.shapes.len() as u32;
        let shape = *self.shapes.entry(product_shape(opt)).or_insert(next);
        for i in indices {
            self.products_served += 1;
            if !self.served.insert((*i, shape)) {
                self.products_served_again += 1;
            }
        }
    }

    pub(super) fn snapshot(&self, now: i64) -> KeyStats {
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

/// The options that change what is paid for or returned.
fn product_shape(opt: &ProductOptions) -> String {
    format!(
        "{}:{:?}:{:?}:{}:{}:{}:{}:{}",
        opt.domain_id,
        opt.offers,
        opt.stats_days,
        opt.history,
        opt.rating,
        opt.buybox,
        opt.stock,
        opt.only_live_offers
    )
}

/// Every account, and what was counted for requests without one.
#[derive(Debug, Default)]
pub(super) struct Books {
    pub(super) accounts: Vec<Account>,
    pub(super) by_key: HashMap<String, usize>,
    pub(super) rejected: BTreeMap<String, BTreeMap<u16, u64>>,
    pub(super) faults: FaultCounts,
}

impl Books {
    /// One account per distinct key, each with a bucket on `schedule`.
    pub(super) fn new(settings: &Settings, schedule: &RateSchedule, start_ms: i64) -> Self {
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
                Foreign {
                    next_at: start_ms + foreign_gap(&mut rng, &settings.faults),
                    rng,
                }
            });
            books.by_key.insert(key.clone(), books.accounts.len());
            books
                .accounts
                .push(Account::new(key.clone(), bucket, foreign));
        }
        books
    }

    /// Counts an answer to a request without a usable key.
    pub(super) fn reject(&mut self, endpoint: &str, status: u16) {
        bump(&mut self.rejected, endpoint, status);
    }
}

/// Adds one to the count of (`endpoint`, `status`).
fn bump(counts: &mut BTreeMap<String, BTreeMap<u16, u64>>, endpoint: &str, status: u16) {
    *counts
        .entry(endpoint.to_string())
        .or_default()
        .entry(status)
        .or_default() += 1;
}
