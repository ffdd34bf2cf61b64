//! Foreign consumers: other programs spending on the key, unseen by the
//! budget until an envelope shows their spending.

use budget::Millis;
use keepa::tokens::REFILL_INTERVAL_MS;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A foreign consumer: random requests, retried at the next refill step when refused.
#[derive(Debug)]
pub(crate) struct ForeignGen {
    rng: ChaCha8Rng,
    mean_gap_ms: f64,
    max_cost: i64,
    /// Next request: when and what it costs.
    pub(crate) next: Option<(Millis, i64)>,
}

impl ForeignGen {
    pub(crate) fn new(tokens_per_minute: f64, max_cost: i64, seed: u64) -> Self {
        let mean_cost = (1 + max_cost) as f64 / 2.0;
        let mut g = ForeignGen {
            rng: ChaCha8Rng::seed_from_u64(seed),
            mean_gap_ms: if tokens_per_minute > 0.0 {
                mean_cost / tokens_per_minute * REFILL_INTERVAL_MS as f64
            } else {
                f64::INFINITY
            },
            max_cost,
            next: None,
        };
        g.next = g.draw(0);
        g
    }

    /// The request after one issued at `after`.
    pub(crate) fn draw(&mut self, after: Millis) -> Option<(Millis, i64)> {
        if !self.mean_gap_ms.is_finite() {
            return None;
        }
        let u: f64 = self.rng.random::<f64>();
        let gap = (-(1.0 - u).ln() * self.mean_gap_ms).max(1.0) as Millis;
        let cost = self.rng.random_range(1..=self.max_cost);
        Some((after + gap, cost))
    }
}

/// A foreign consumer of the workload, and what it spent.
#[derive(Debug)]
pub(super) struct Foreign {
    /// Its name in the report.
    pub(super) name: String,
    /// Its requests.
    pub(super) gen: ForeignGen,
    /// Tokens charged to it.
    pub(super) spent: i64,
}
