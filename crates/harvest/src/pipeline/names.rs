//! The names jobs and stages go by in the database, in errors and in
//! metrics. The strings are stored: they never change.

use std::fmt;

/// A job, as checkpoints, the request ledger, metrics and errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    /// The backfill (`backfill`).
    Backfill,
    /// The refresh (`refresh`).
    Refresh,
    /// The re-check of stale products (`recheck`).
    Recheck,
    /// The run itself, before any job starts (`run`).
    Run,
}

impl Job {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Job::Backfill => "backfill",
            Job::Refresh => "refresh",
            Job::Recheck => "recheck",
            Job::Run => "run",
        }
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The step a request, a rejection or a stored product belongs to.
///
/// Not the configuration's [`crate::config::Stage`] (which names rule
/// tables): these are the names the store, the ledger and errors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// A deal feed page (`feed`).
    Feed,
    /// The free deal filter, or a deal stored without product details (`deal`).
    Deal,
    /// Products with stats (`stats`).
    Stats,
    /// Products with offers (`offers`).
    Offers,
    /// The re-check's product requests (`recheck`).
    Recheck,
    /// The run's first `/token` (`/token`).
    Token,
}

impl Stage {
    /// Every stage.
    pub const ALL: [Stage; 6] = [
        Stage::Feed,
        Stage::Deal,
        Stage::Stats,
        Stage::Offers,
        Stage::Recheck,
        Stage::Token,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Feed => "feed",
            Stage::Deal => "deal",
            Stage::Stats => "stats",
            Stage::Offers => "offers",
            Stage::Recheck => "recheck",
            Stage::Token => "/token",
        }
    }

    /// The stage a stored name stands for; `None` for a name no stage has.
    pub fn from_stored(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip_and_stay_as_written() {
        for s in Stage::ALL {
            assert_eq!(Stage::from_stored(s.as_str()), Some(s));
        }
        assert_eq!(Stage::Token.to_string(), "/token");
        assert_eq!(Stage::from_stored("deal_filter"), None);
        assert_eq!(Job::Recheck.to_string(), "recheck");
    }
}
