//! "How long?": one backfill and an optional refresher on a plan, run
//! through the simulator under `flow`.
//!
//! Two readings of the cost. The default: `tokens_per_deal` is a run's
//! "tokens per stored deal, everything included" (all tokens spent ÷ deals
//! stored, as `run --summary-json` reports it), so the refresh's spending,
//! and the deals it stores, are already in it; no refresher is modelled.
//! The other: `tokens_per_deal` is the backfill's own cost and
//! [`Question::refresh`] models a refresh that costs on top and stores
//! nothing.
//!
//! When is it done? In the default reading, when the plan has paid for all
//! of it: a bulk request runs whenever the balance is positive and is
//! charged into the negative, but the averaged cost stands for spending
//! spread over the whole run (the refresh's runs), so the answer is the
//! refill step at which the balance is back to zero after the last request
//! (`start + k × R ≥ round(deals × tokens_per_deal)`). With a refresher it
//! is when the backfill's last request is sent, as the simulator reports.

use serde::Serialize;

use crate::workload::{JobSpec, Plan, RateSpec, Workload};
use crate::SimError;

/// The question.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Question {
    /// Plan: tokens per minute.
    pub refill_per_minute: i64,
    /// Deals to store.
    pub deals: u64,
    /// Tokens per deal, fractional allowed (see the module docs for the two
    /// readings).
    pub tokens_per_deal: f64,
    /// The balance at the start (`None`: a full bucket).
    pub start_tokens: Option<i64>,
    /// The bucket's maximum (`None`: 60 × the rate, Keepa's rule).
    pub bucket_max: Option<i64>,
    /// A refresher costing on top and storing nothing: (period in seconds,
    /// tokens per run), on time within its period.
    pub refresh: Option<(f64, i64)>,
    /// The offers stage at a `max_age` (see [`OffersAge`]).
    pub offers_age: Option<OffersAge>,
    /// The debt the job may end with (tokens, ≥ 0): Keepa charges the last
    /// request in full below zero, so a run is done when that request goes,
    /// not when its debt is paid back. 0 (the default) counts the payback.
    pub end_debt: i64,
}

/// The offers stage read at a `max_age`: of the offers part of
/// [`Question::tokens_per_deal`] (`offers_tokens` a deal, collected), the
/// `fresh_share` Keepa holds within `max_age` costs the flat 5
/// (`keepa::cost::CACHED_OFFERS_COST`) instead, so a deal costs
/// `tokens_per_deal − fresh_share × (offers_tokens − 5)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OffersAge {
    /// How old Keepa's offers may be, seconds (the harvest's `max_age`).
    pub max_age_s: f64,
    /// Share of products whose offers Keepa collected within it (0..=1).
    pub fresh_share: f64,
    /// Tokens of the offers part per deal when collected (at least 5).
    pub offers_tokens: f64,
}

impl OffersAge {
    /// Tokens per deal once the fresh share costs the flat 5.
    pub fn tokens_per_deal(&self, tokens_per_deal: f64) -> f64 {
        let cached = f64::from(keepa::cost::CACHED_OFFERS_COST);
        (tokens_per_deal - self.fresh_share * (self.offers_tokens - cached)).max(0.0)
    }
}

impl Question {
    /// `deals` at `tokens_per_deal` on a `refill_per_minute` plan from a
    /// full bucket, no refresher.
    pub fn new(refill_per_minute: i64, deals: u64, tokens_per_deal: f64) -> Self {
        Question {
            refill_per_minute,
            deals,
            tokens_per_deal,
            start_tokens: None,
            bucket_max: None,
            refresh: None,
            offers_age: None,
            end_debt: 0,
        }
    }

    /// Tokens per deal as charged: [`Question::tokens_per_deal`], less
    /// what the offers age saves.
    pub fn effective_tokens_per_deal(&self) -> f64 {
        self.offers_age.map_or(self.tokens_per_deal, |a| {
            a.tokens_per_deal(self.tokens_per_deal)
        })
    }

    /// The bucket's maximum: [`Question::bucket_max`] or 60 × the rate.
    pub fn cap(&self) -> i64 {
        self.bucket_max
            .unwrap_or(self.refill_per_minute.saturating_mul(60))
    }
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// Days under `flow`, every refresh run on time (`None`: beyond ten years).
    pub days: Option<f64>,
    /// The frontier in days.
    pub frontier_days: Option<f64>,
    /// Deals per hour.
    pub deals_per_hour: Option<f64>,
    /// The answer as one sentence.
    pub sentence: String,
}

/// `n` with thousands separators: `12345` as `12,345`, `-1200` as `-1,200`.
pub fn thousands(n: impl Into<i128>) -> String {
    let n: i128 = n.into();
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    if n < 0 {
        out.push('-');
    }
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A cost as typed: `12`, `17.8`, `17.83` (at most two decimals).
fn cost_words(c: f64) -> String {
    let s = format!("{c:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn period_words(s: f64) -> String {
    if s == 60.0 {
        "every minute".into()
    } else if s % 3600.0 == 0.0 {
        format!("every {} h", s / 3600.0)
    } else if s % 60.0 == 0.0 {
        format!("every {} min", s / 60.0)
    } else {
        format!("every {s} s")
    }
}

/// A duration in the unit a reader takes in: days from one day up
/// (`20.6 days`), hours from one hour (`6.4 h`), minutes (`31 min`), else
/// seconds. A duration above zero never reads as zero.
pub fn duration_words(seconds: f64) -> String {
    let hours = seconds / 3600.0;
    if hours >= 24.0 {
        format!("{:.1} days", hours / 24.0)
    } else if hours >= 1.0 {
        format!("{hours:.1} h")
    } else if seconds >= 60.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds > 0.0 {
        format!("{:.0} s", seconds.ceil())
    } else {
        "0 s".into()
    }
}

fn invalid(field: &str, why: &str) -> SimError {
    SimError::Invalid {
        field: field.into(),
        why: why.into(),
    }
}

/// Largest rate, tokens per minute (Keepa's largest plans are far below).
const MAX_RATE: i64 = 1_000_000;
/// Largest cost of one deal.
const MAX_COST: f64 = 100_000.0;
/// Most deals.
const MAX_DEALS: u64 = 10_000_000_000;
/// Longest refresh period, seconds.
const MAX_PERIOD_S: f64 = 100.0 * 86_400.0;
/// Largest bucket, and the deepest starting debt.
const MAX_TOKENS: i64 = 1_000_000_000;

/// The plan of `q`, checked: values beyond these bounds are refused, so
/// that no sum in the budget can overflow.
fn plan_of(q: &Question) -> Result<Plan, SimError> {
    if !(1..=MAX_RATE).contains(&q.refill_per_minute) {
        return Err(invalid("refill-per-minute", "must be within 1..=1,000,000"));
    }
    if !(0.0..=MAX_COST).contains(&q.tokens_per_deal) {
        return Err(invalid(
            "tokens-per-deal",
            "must be a number within 0..=100,000",
        ));
    }
    if q.deals > MAX_DEALS {
        return Err(invalid("deals", "must be at most 10,000,000,000"));
    }
    if q.bucket_max.is_some_and(|b| !(1..=MAX_TOKENS).contains(&b)) {
        return Err(invalid("bucket-max", "must be within 1..=1,000,000,000"));
    }
    let cap = q.cap();
    if q.start_tokens.is_some_and(|s| s > cap) {
        return Err(invalid(
            "start-tokens",
            &format!("must be at most the bucket's maximum, {}", thousands(cap)),
        ));
    }
    if q.start_tokens.is_some_and(|s| s < -MAX_TOKENS) {
        return Err(invalid("start-tokens", "must be at least -1,000,000,000"));
    }
    if let Some(a) = q.offers_age {
        if !(0.0..=1.0).contains(&a.fresh_share) {
            return Err(invalid("fresh-share", "must be within 0..=1"));
        }
        let cached = f64::from(keepa::cost::CACHED_OFFERS_COST);
        if !(cached..=q.tokens_per_deal.max(cached)).contains(&a.offers_tokens) {
            return Err(invalid(
                "offers-tokens",
                "must be at least 5 and at most --tokens-per-deal (the offers part of it)",
            ));
        }
        if !(a.max_age_s >= 0.0 && a.max_age_s.is_finite()) {
            return Err(invalid("max-age", "must be a duration"));
        }
    }
    if let Some((period_s, cost)) = q.refresh {
        if !(1.0..=MAX_PERIOD_S).contains(&period_s) {
            return Err(invalid("refresh-every", "must be between 1 s and 100 days"));
        }
        if !(0..=MAX_COST as i64).contains(&cost) {
            return Err(invalid("refresh-cost", "must be within 0..=100,000"));
        }
    }
    Ok(Plan {
        refill_per_minute: RateSpec::Constant(q.refill_per_minute),
        bucket_max: q.bucket_max,
        start_tokens: q.start_tokens,
        horizon_days: 3650.0,
    })
}

/// Milliseconds of a day count in the report.
const DAY_MS: f64 = 86_400_000.0;
/// Keepa's refill interval.
const STEP_MS: i64 = 60_000;

/// The default reading (no refresher): done when the debt of the last
/// requests is paid back down to [`Question::end_debt`], at a refill step
/// (the first lands at 60 s); the frontier is the first step with
/// `start + k × R + end_debt ≥ total`.
fn paid_back(r: &mut crate::Report, q: &Question, end_balance: i64) {
    let Some(days) = r.days_to_target else {
        return;
    };
    let rate = q.refill_per_minute;
    let steps = |owed: i64| (owed.max(0) + rate - 1) / rate;
    let debt = q.end_debt.max(0);
    let mut end_ms = (days * DAY_MS).round() as i64;
    if end_balance < -debt {
        end_ms = (end_ms / STEP_MS + steps(-end_balance - debt)) * STEP_MS;
    }
    let total = (q.deals as f64 * q.tokens_per_deal).round() as i64;
    let start = q.start_tokens.unwrap_or(q.cap());
    let frontier_ms = steps(total.saturating_sub(start).saturating_sub(debt)) * STEP_MS;
    r.days_to_target = Some(end_ms as f64 / DAY_MS);
    r.frontier_days = r.frontier_days.map(|_| frontier_ms as f64 / DAY_MS);
    r.deals_per_hour = r.deals as f64 / (end_ms.max(1) as f64 / 3_600_000.0);
}

/// Answers `q`. Errors: [`SimError::Invalid`] for a value out of range
/// (its field named as the flag: `refill-per-minute`, `tokens-per-deal`,
/// `start-tokens`, `bucket-max`).
pub fn estimate(q: Question) -> Result<Answer, SimError> {
    let plan = plan_of(&q)?;
    let q = Question {
        tokens_per_deal: q.effective_tokens_per_deal(),
        ..q
    };
    let mut jobs = vec![JobSpec::Backfill {
        name: None,
        target_deals: q.deals,
        tokens_per_deal: q.tokens_per_deal,
        batch_deals: None,
        min_spacing_s: None,
        weight: None,
    }];
    if let Some((period_s, cost)) = q.refresh {
        jobs.push(JobSpec::Refresh {
            name: None,
            period_s,
            tokens_per_run: cost,
            max_delay_s: period_s,
        });
    }
    let w = Workload {
        name: "estimate".into(),
        description: None,
        plan,
        jobs,
        alternatives: vec![],
        seed_rules: None,
    };
    let run = crate::simulate(&w, "flow")?;
    let end_balance = run.trace.last().map_or(0, |s| s.balance);
    let mut r = run.report;
    if q.refresh.is_none() {
        paid_back(&mut r, &q, end_balance);
    }
    let start = match q.start_tokens {
        Some(n) => format!(" from a balance of {}", thousands(n)),
        None => String::new(),
    };
    let aged = match q.offers_age {
        Some(a) => format!(
            " (offers up to {} old, {:.0} % fresh)",
            duration_words(a.max_age_s),
            a.fresh_share * 100.0
        ),
        None => String::new(),
    };
    let refresher = match q.refresh {
        Some((p, c)) => format!(" with a {c}-token refresher {}", period_words(p)),
        None => String::new(),
    };
    let when = match r.days_to_target {
        Some(d) if d > 0.0 => duration_words(d * 86_400.0),
        Some(_) => "at once (the starting balance covers it)".into(),
        None if !r.refused.is_empty() => format!("never ({})", r.refused.join("; ")),
        None => "more than ten years".into(),
    };
    let sentence = format!(
        "{} deals at {} token{}{aged} on a {}/min plan{start}{refresher}: {when}",
        thousands(q.deals),
        cost_words(q.tokens_per_deal),
        if q.tokens_per_deal == 1.0 { "" } else { "s" },
        q.refill_per_minute
    );
    Ok(Answer {
        days: r.days_to_target,
        frontier_days: r.frontier_days,
        deals_per_hour: r.days_to_target.map(|_| r.deals_per_hour),
        sentence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_refresh(mut q: Question, period_s: f64, cost: i64) -> Question {
        q.refresh = Some((period_s, cost));
        q
    }

    #[test]
    fn the_seed_question_in_one_sentence() {
        let a = estimate(with_refresh(Question::new(5, 10_000, 12.0), 60.0, 1)).unwrap();
        assert_eq!(
            a.sentence,
            "10,000 deals at 12 tokens on a 5/min plan with a 1-token refresher every minute: 20.6 days"
        );
        // Exactly the figure before fractional costs existed.
        assert_eq!(a.days, Some(20.573611111111113));
        assert!((a.days.unwrap() - a.frontier_days.unwrap()).abs() < 0.01);
    }

    #[test]
    fn a_refresher_eating_the_whole_plan_never_finishes() {
        let a = estimate(with_refresh(Question::new(5, 10_000, 1.0), 60.0, 5)).unwrap();
        assert!(a.days.is_none(), "{a:?}");
        assert!(a.sentence.contains("never"), "{}", a.sentence);
    }

    #[test]
    fn more_than_the_bucket_is_not_done_at_once() {
        // 1,800 tokens, a bucket of 1,200: 600 owed at 20/min.
        let a = estimate(Question::new(20, 100, 18.0)).unwrap();
        let hours = a.days.unwrap() * 24.0;
        assert!((hours - 0.5).abs() < 0.05, "{a:?}");
        assert_eq!(
            a.sentence,
            "100 deals at 18 tokens on a 20/min plan: 30 min"
        );
        assert_eq!(a.days, a.frontier_days);
    }

    #[test]
    fn what_the_bucket_holds_is_done_at_once() {
        let a = estimate(Question::new(20, 100, 12.0)).unwrap();
        assert_eq!(a.days, Some(0.0));
        assert!(a
            .sentence
            .ends_with("at once (the starting balance covers it)"));
    }

    #[test]
    fn a_run_may_end_in_the_debt_of_its_last_request() {
        // 4,632 tokens from 3,600 at 60/min: 18 steps to pay everything,
        // 17 when the run may end 72 tokens below zero.
        let mut q = Question::new(60, 300, 15.44);
        let paid = estimate(q).unwrap().days.unwrap() * 1440.0;
        q.end_debt = 72;
        let owed = estimate(q).unwrap().days.unwrap() * 1440.0;
        assert!(owed < paid, "{owed} vs {paid}");
        assert!((16.0..=17.0).contains(&owed), "{owed}");
    }

    #[test]
    fn a_fractional_cost_and_a_starting_balance() {
        // The README's sandbox run: 500 deals at 17.8 from a full bucket.
        let a = estimate(Question::new(20, 500, 17.8)).unwrap();
        // round(500 × 17.8) = 8,900; (8,900 − 1,200) / 20 = 385 steps.
        assert_eq!(a.days, Some(385.0 * 60.0 / 86_400.0));
        assert_eq!(
            a.sentence,
            "500 deals at 17.8 tokens on a 20/min plan: 6.4 h"
        );
        let mut empty = Question::new(20, 500, 17.8);
        empty.start_tokens = Some(0);
        let b = estimate(empty).unwrap();
        assert_eq!(b.days, Some(445.0 * 60.0 / 86_400.0));
        assert!(
            b.sentence.contains("from a balance of 0:"),
            "{}",
            b.sentence
        );
    }

    #[test]
    fn out_of_range_values_name_the_flag() {
        let mut q = Question::new(20, 10, 12.0);
        q.start_tokens = Some(1_201);
        let e = estimate(q).unwrap_err().to_string();
        assert!(e.contains("start-tokens") && e.contains("1,200"), "{e}");
        for (r, c, flag) in [
            (0, 1.0, "refill-per-minute"),
            (1_000_001, 1.0, "refill-per-minute"),
            (5, -1.0, "tokens-per-deal"),
            (5, f64::NAN, "tokens-per-deal"),
            (5, 1e300, "tokens-per-deal"),
        ] {
            let e = estimate(Question::new(r, 10, c)).unwrap_err().to_string();
            assert!(e.contains(flag), "{e}");
        }
    }

    #[test]
    fn a_refresher_out_of_range_names_its_flag() {
        for (period_s, cost, flag) in [
            (0.001, 1, "refresh-every"),
            (60.0, 1_000_000_000, "refresh-cost"),
            (60.0, -1, "refresh-cost"),
        ] {
            let q = with_refresh(Question::new(1, 10, 1.0), period_s, cost);
            let e = estimate(q).unwrap_err().to_string();
            assert!(e.contains(flag), "{e}");
        }
    }

    #[test]
    fn fresh_offers_at_a_max_age_cost_five() {
        let mut q = Question::new(20, 500, 17.8);
        q.offers_age = Some(OffersAge {
            max_age_s: 86_400.0,
            fresh_share: 0.6,
            offers_tokens: 12.0,
        });
        // 17.8 − 0.6 × (12 − 5) = 13.6 a deal.
        assert!((q.effective_tokens_per_deal() - 13.6).abs() < 1e-9);
        let a = estimate(q).unwrap();
        let plain = estimate(Question::new(20, 500, 13.6)).unwrap();
        assert_eq!(a.days, plain.days);
        assert!(
            a.sentence
                .starts_with("500 deals at 13.6 tokens (offers up to 1.0 days old, 60 % fresh)"),
            "{}",
            a.sentence
        );
        q.offers_age = Some(OffersAge {
            offers_tokens: 4.0,
            ..q.offers_age.unwrap()
        });
        let e = estimate(q).unwrap_err().to_string();
        assert!(e.contains("offers-tokens"), "{e}");
    }

    #[test]
    fn durations_in_words_never_read_zero() {
        assert_eq!(duration_words(0.0), "0 s");
        assert_eq!(duration_words(0.2), "1 s");
        assert_eq!(duration_words(59.0), "59 s");
        assert_eq!(duration_words(1_800.0), "30 min");
        assert_eq!(duration_words(4_320.0), "1.2 h");
        assert_eq!(duration_words(23_760.0), "6.6 h");
        assert_eq!(duration_words(20.6 * 86_400.0), "20.6 days");
    }
}
