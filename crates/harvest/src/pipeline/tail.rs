//! What a refresh run charges after its first feed page (its tail), learned
//! run by run and told to the budget, which holds it back from the backfill
//! so that one run's product calls do not leave the next run late.

use std::collections::VecDeque;

use budget::Prediction;

use super::{Shared, FEED_PAGE_TOKENS};

/// Runs the largest recent tail is taken over.
const RECENT: usize = 8;
/// Weight of the newest run in the mean.
const ALPHA: f64 = 0.25;

/// The refresh's tails: a moving mean and the largest of the last
/// [`RECENT`] runs. Nothing is known before the first run ends (a tail of 0,
/// as the budget assumed before it learned).
#[derive(Debug, Default, Clone)]
pub(crate) struct TailBook {
    mean: Option<f64>,
    recent: VecDeque<i64>,
    /// The refresh's spending when the run in progress started.
    started_at: Option<i64>,
}

impl TailBook {
    /// Learns one run's tail.
    pub(crate) fn learn(&mut self, tail: i64) {
        let tail = tail.max(0);
        self.mean = Some(match self.mean {
            None => tail as f64,
            Some(m) => m + ALPHA * (tail as f64 - m),
        });
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(tail);
    }

    /// The tail the budget should expect: the mean and the largest recent one.
    pub(crate) fn prediction(&self) -> Prediction {
        let mean = self.mean.unwrap_or(0.0).ceil() as i64;
        Prediction::new(mean, self.recent.iter().copied().max().unwrap_or(0))
    }

    /// A run has started (its first page granted): the budget holds its
    /// expected tail back until it ends.
    pub(crate) fn run_started(&mut self, sh: &Shared) {
        self.started_at = Some(sh.refresh_spent());
        let p = self.prediction();
        sh.refresh_tail(p, p.expected);
    }

    /// The run has ended: learn its tail, and release what was held.
    pub(crate) fn run_ended(&mut self, sh: &Shared) {
        if let Some(start) = self.started_at.take() {
            let tail = sh.refresh_spent() - start - FEED_PAGE_TOKENS;
            self.learn(tail);
            tracing::debug!(tail, expected = ?self.prediction(), "refresh: run ended");
        }
        sh.refresh_tail(self.prediction(), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_held_before_a_run_was_seen() {
        assert_eq!(TailBook::default().prediction(), Prediction::exact(0));
    }

    #[test]
    fn the_mean_follows_the_runs_and_the_bound_is_the_largest_recent_tail() {
        let mut b = TailBook::default();
        b.learn(100);
        assert_eq!(b.prediction(), Prediction::exact(100));
        b.learn(0);
        // 100 + 0.25 × (0 − 100) = 75.
        assert_eq!(b.prediction(), Prediction::new(75, 100));
        // A negative measurement (a refund) counts as 0.
        b.learn(-20);
        assert_eq!(b.prediction().upper_bound, 100);
        assert!(b.prediction().expected < 75);
    }

    #[test]
    fn an_old_peak_leaves_the_bound_after_eight_runs() {
        let mut b = TailBook::default();
        b.learn(160);
        for _ in 0..RECENT {
            b.learn(40);
        }
        // The bound is the largest recent tail, or the mean if that is
        // higher (the mean still remembers the peak a little).
        let p = b.prediction();
        assert_eq!(p.upper_bound, p.expected.max(40));
        assert!(p.upper_bound < 60, "{p:?}");
    }
}
