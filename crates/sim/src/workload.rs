//! Workload files (`workloads/*.toml`; schema in its README).

use std::path::Path;

use budget::SeedRules;
use keepa::tokens::{BucketCap, RateSchedule};
use serde::{Deserialize, Serialize};

use crate::SimError;

/// One workload: a plan, jobs, pipeline alternatives, the seed's rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    /// Short name, quoted by reports.
    pub name: String,
    /// One line.
    #[serde(default)]
    pub description: Option<String>,
    /// The Keepa plan.
    pub plan: Plan,
    /// The jobs sharing the key.
    pub jobs: Vec<JobSpec>,
    /// Other stage lists for the (first) pipeline job, compared by cost.
    #[serde(default)]
    pub alternatives: Vec<Alternative>,
    /// Parameters of the seed's policies.
    #[serde(default)]
    pub seed_rules: Option<SeedRules>,
}

/// The file as read, jobs still raw tables (so errors can name their fields).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    name: String,
    #[serde(default)]
    description: Option<String>,
    plan: Plan,
    #[serde(default)]
    jobs: Vec<toml::Table>,
    #[serde(default)]
    alternatives: Vec<Alternative>,
    #[serde(default)]
    seed_rules: Option<SeedRules>,
}

/// A refill rate: one number, or `[[minute, rate], …]` changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "refill_per_minute: an integer, or a list of [minute, rate] pairs"
)]
pub enum RateSpec {
    /// The same rate for ever.
    Constant(i64),
    /// `(minute, rate)` changes from minute 0.
    Changes(Vec<(i64, i64)>),
}

/// The plan section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Tokens per minute (`R`), or changes over time.
    pub refill_per_minute: RateSpec,
    /// Bucket maximum; default 60 × R (following rate changes).
    #[serde(default)]
    pub bucket_max: Option<i64>,
    /// Balance at t = 0; default the bucket maximum.
    #[serde(default)]
    pub start_tokens: Option<i64>,
    /// Give up after this much simulated time.
    pub horizon_days: f64,
}

/// One job (`kind = "backfill" | "refresh" | "foreign" | "pipeline"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum JobSpec {
    /// A bulk job with a target.
    Backfill {
        /// Name in reports (default `backfill`).
        #[serde(default)]
        name: Option<String>,
        /// Deals to fetch.
        target_deals: u64,
        /// Tokens per deal; may be fractional (an average, e.g. a run's
        /// tokens per stored deal): each request is charged whole tokens so
        /// that the charge so far is `round(deals done × tokens_per_deal)`.
        tokens_per_deal: f64,
        /// Fixed batch; absent: the policy sizes batches.
        #[serde(default)]
        batch_deals: Option<u32>,
        /// At most one request per this many seconds.
        #[serde(default)]
        min_spacing_s: Option<f64>,
        /// Share relative to other bulk jobs (default 1).
        #[serde(default)]
        weight: Option<u32>,
    },
    /// A periodic job with a freshness target.
    Refresh {
        /// Name in reports (default `refresh`).
        #[serde(default)]
        name: Option<String>,
        /// Seconds between runs (first run at t = 0).
        period_s: f64,
        /// Tokens per run.
        tokens_per_run: i64,
        /// A run starting later than due + this is late.
        max_delay_s: f64,
    },
    /// Someone else spending on the same key, unseen except through the balance.
    Foreign {
        /// Name in reports (default `foreign`).
        #[serde(default)]
        name: Option<String>,
        /// Mean spend.
        tokens_per_minute: f64,
        /// Requests cost 1..=max_cost, uniformly.
        max_cost: i64,
        /// Random seed.
        seed: u64,
    },
    /// A deal feed passed through stages.
    Pipeline {
        /// Name of this stage list.
        name: String,
        /// Stored deals to reach.
        target_stored: u64,
        /// Deals in the feed at t = 0.
        feed_backlog_deals: u64,
        /// New deals per hour after that.
        #[serde(default)]
        feed_new_per_hour: f64,
        /// The stages, the feed first.
        stages: Vec<Stage>,
    },
}

/// A pipeline stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Name in reports.
    pub name: String,
    /// Feed stage: tokens per request.
    #[serde(default)]
    pub tokens_per_request: Option<i64>,
    /// Feed stage: items per request.
    #[serde(default)]
    pub items_per_request: Option<u32>,
    /// Item stage: tokens per item (0: a free filter).
    #[serde(default)]
    pub tokens_per_item: Option<i64>,
    /// Fraction of items that survive (default 1).
    #[serde(default)]
    pub pass: Option<f64>,
    /// Item stage: most items per request (default 100).
    #[serde(default)]
    pub max_items_per_request: Option<u32>,
    /// Offers stage: how old Keepa's offers may be, as the harvest's
    /// `max_age` (`"24h"`: Keepa's `update=24`). Needs `fresh_share`.
    #[serde(default)]
    pub max_age: Option<String>,
    /// With `max_age`: the share of items whose offers Keepa collected
    /// within it. Those cost the flat 5 tokens (`keepa::cost::
    /// CACHED_OFFERS_COST`) instead of `tokens_per_item` (the collecting
    /// cost, at least 5).
    #[serde(default)]
    pub fresh_share: Option<f64>,
}

impl Stage {
    /// Expected tokens per item: `tokens_per_item`, or with `fresh_share`
    /// `f × 5 + (1 − f) × tokens_per_item` (0 for the feed stage).
    pub fn expected_per_item(&self) -> f64 {
        let collect = self.tokens_per_item.unwrap_or(0) as f64;
        match self.fresh_share {
            Some(f) => f * f64::from(keepa::cost::CACHED_OFFERS_COST) + (1.0 - f) * collect,
            None => collect,
        }
    }
}

/// Another stage list for the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alternative {
    /// Its name.
    pub name: String,
    /// Its stages.
    pub stages: Vec<Stage>,
}

fn bad(field: &str, why: impl Into<String>) -> SimError {
    SimError::Invalid {
        field: field.to_string(),
        why: why.into(),
    }
}

impl Workload {
    /// Reads and validates a workload file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SimError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| SimError::Read {
            path: path.display().to_string(),
            source: e,
        })?;
        Self::parse(&text).map_err(|e| match e {
            SimError::Parse(m) => SimError::Parse(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Parses and validates workload text.
    pub fn parse(text: &str) -> Result<Self, SimError> {
        let raw: RawWorkload = toml::from_str(text).map_err(|e| SimError::Parse(e.to_string()))?;
        let mut jobs = Vec::with_capacity(raw.jobs.len());
        for (i, mut t) in raw.jobs.into_iter().enumerate() {
            let field = format!("jobs[{i}]");
            let kind = match t.remove("kind") {
                Some(toml::Value::String(k)) => k,
                Some(_) => return Err(bad(&format!("{field}.kind"), "must be a string")),
                None => return Err(bad(&format!("{field}.kind"), "missing")),
            };
            if !["backfill", "refresh", "foreign", "pipeline"].contains(&kind.as_str()) {
                return Err(bad(
                    &format!("{field}.kind"),
                    format!("unknown kind {kind:?}; known: backfill, refresh, foreign, pipeline"),
                ));
            }
            let mut tagged = toml::Table::new();
            tagged.insert(kind, toml::Value::Table(t));
            let job: JobSpec = toml::Value::Table(tagged)
                .try_into()
                .map_err(|e: toml::de::Error| bad(&field, e.to_string().replace('\n', " ")))?;
            jobs.push(job);
        }
        let w = Workload {
            name: raw.name,
            description: raw.description,
            plan: raw.plan,
            jobs,
            alternatives: raw.alternatives,
            seed_rules: raw.seed_rules,
        };
        w.validate()?;
        Ok(w)
    }

    /// Checks values the types cannot.
    pub fn validate(&self) -> Result<(), SimError> {
        self.schedule()?;
        let p = &self.plan;
        if p.horizon_days.is_nan() || p.horizon_days <= 0.0 {
            return Err(bad("plan.horizon_days", "must be > 0"));
        }
        if p.bucket_max.is_some_and(|b| b <= 0) {
            return Err(bad("plan.bucket_max", "must be > 0"));
        }
        let mut pipelines = 0;
        for (i, j) in self.jobs.iter().enumerate() {
            let f = |name: &str| format!("jobs[{i}].{name}");
            match j {
                JobSpec::Backfill {
                    tokens_per_deal,
                    batch_deals,
                    min_spacing_s,
                    weight,
                    ..
                } => {
                    if !tokens_per_deal.is_finite() || *tokens_per_deal < 0.0 {
                        return Err(bad(&f("tokens_per_deal"), "must be a number >= 0"));
                    }
                    if batch_deals.is_some_and(|b| b == 0) {
                        return Err(bad(&f("batch_deals"), "must be >= 1"));
                    }
                    if min_spacing_s.is_some_and(|s| s < 0.0) {
                        return Err(bad(&f("min_spacing_s"), "must be >= 0"));
                    }
                    if weight.is_some_and(|w| w == 0) {
                        return Err(bad(&f("weight"), "must be >= 1"));
                    }
                }
                JobSpec::Refresh {
                    period_s,
                    tokens_per_run,
                    max_delay_s,
                    ..
                } => {
                    if period_s.is_nan() || *period_s < 0.001 {
                        return Err(bad(&f("period_s"), "must be > 0"));
                    }
                    if *tokens_per_run < 0 {
                        return Err(bad(&f("tokens_per_run"), "must be >= 0"));
                    }
                    if *max_delay_s < 0.0 {
                        return Err(bad(&f("max_delay_s"), "must be >= 0"));
                    }
                }
                JobSpec::Foreign {
                    tokens_per_minute,
                    max_cost,
                    ..
                } => {
                    if *tokens_per_minute < 0.0 {
                        return Err(bad(&f("tokens_per_minute"), "must be >= 0"));
                    }
                    if *max_cost < 1 {
                        return Err(bad(&f("max_cost"), "must be >= 1"));
                    }
                }
                JobSpec::Pipeline {
                    stages,
                    feed_new_per_hour,
                    ..
                } => {
                    pipelines += 1;
                    if *feed_new_per_hour < 0.0 {
                        return Err(bad(&f("feed_new_per_hour"), "must be >= 0"));
                    }
                    validate_stages(stages, &f("stages"))?;
                }
            }
        }
        for (i, a) in self.alternatives.iter().enumerate() {
            if pipelines == 0 {
                return Err(bad("alternatives", "given without a pipeline job"));
            }
            validate_stages(&a.stages, &format!("alternatives[{i}].stages"))?;
        }
        Ok(())
    }

    /// The refill schedule from t = 0.
    pub fn schedule(&self) -> Result<RateSchedule, SimError> {
        match &self.plan.refill_per_minute {
            RateSpec::Constant(r) if *r < 0 => Err(bad("plan.refill_per_minute", "must be >= 0")),
            RateSpec::Constant(r) => Ok(RateSchedule::constant(*r)),
            RateSpec::Changes(list) => {
                if list.first().is_some_and(|(m, _)| *m != 0) {
                    return Err(bad(
                        "plan.refill_per_minute",
                        "the first change must be at minute 0",
                    ));
                }
                RateSchedule::from_minutes(0, list)
                    .map_err(|e| bad("plan.refill_per_minute", e.to_string()))
            }
        }
    }

    /// The bucket cap.
    pub fn cap(&self) -> BucketCap {
        match self.plan.bucket_max {
            Some(n) => BucketCap::Fixed(n),
            None => BucketCap::default(),
        }
    }

    /// The seed's rules, or their defaults.
    pub fn seed_rules(&self) -> SeedRules {
        self.seed_rules.unwrap_or_default()
    }

    /// Horizon in milliseconds.
    pub fn horizon_ms(&self) -> i64 {
        (self.plan.horizon_days * 86_400_000.0) as i64
    }

    /// This workload with the first pipeline's stages replaced by `alt`.
    pub fn with_alternative(&self, alt: &Alternative) -> Workload {
        let mut w = self.clone();
        w.alternatives.clear();
        if let Some(JobSpec::Pipeline { name, stages, .. }) = w
            .jobs
            .iter_mut()
            .find(|j| matches!(j, JobSpec::Pipeline { .. }))
        {
            *name = alt.name.clone();
            *stages = alt.stages.clone();
        }
        w
    }
}

fn validate_stages(stages: &[Stage], field: &str) -> Result<(), SimError> {
    let Some(feed) = stages.first() else {
        return Err(bad(field, "needs at least the feed stage"));
    };
    if feed.tokens_per_request.is_none() || feed.items_per_request.is_none_or(|n| n == 0) {
        return Err(bad(
            &format!("{field}[0]"),
            "the first stage is the feed: tokens_per_request and items_per_request (> 0)",
        ));
    }
    for (i, s) in stages.iter().enumerate().skip(1) {
        let f = format!("{field}[{i}]");
        match s.tokens_per_item {
            None => {
                return Err(bad(
                    &format!("{f}.tokens_per_item"),
                    "required after the feed stage",
                ))
            }
            Some(t) if t < 0 => return Err(bad(&format!("{f}.tokens_per_item"), "must be >= 0")),
            _ => {}
        }
        if s.tokens_per_request.is_some() || s.items_per_request.is_some() {
            return Err(bad(
                &f,
                "only the first stage is a feed (tokens_per_request)",
            ));
        }
        if s.pass.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
            return Err(bad(&format!("{f}.pass"), "must be within 0..=1"));
        }
        if s.max_items_per_request.is_some_and(|m| m == 0) {
            return Err(bad(&format!("{f}.max_items_per_request"), "must be >= 1"));
        }
        validate_max_age(s, &f)?;
    }
    Ok(())
}

/// `max_age` and `fresh_share` go together, on an offers stage.
fn validate_max_age(s: &Stage, f: &str) -> Result<(), SimError> {
    match (&s.max_age, s.fresh_share) {
        (None, None) => return Ok(()),
        (Some(_), None) => {
            return Err(bad(
                &format!("{f}.fresh_share"),
                "required with max_age: the share of items whose offers Keepa holds within it",
            ))
        }
        (None, Some(_)) => {
            return Err(bad(
                &format!("{f}.max_age"),
                "required with fresh_share: how old Keepa's offers may be, e.g. \"24h\"",
            ))
        }
        (Some(age), Some(share)) => {
            humantime::parse_duration(age.trim()).map_err(|e| {
                bad(
                    &format!("{f}.max_age"),
                    format!("{age:?} is not a duration ({e}); write e.g. \"24h\""),
                )
            })?;
            if !(0.0..=1.0).contains(&share) {
                return Err(bad(&format!("{f}.fresh_share"), "must be within 0..=1"));
            }
        }
    }
    let cached = i64::from(keepa::cost::CACHED_OFFERS_COST);
    if s.tokens_per_item.is_some_and(|t| t < cached) {
        return Err(bad(
            &format!("{f}.tokens_per_item"),
            "with max_age, the cost of collecting the offers (an offers stage: at least 5)",
        ));
    }
    Ok(())
}
