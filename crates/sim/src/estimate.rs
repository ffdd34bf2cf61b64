//! "How long?": one backfill and an optional refresher on a plan, run
//! through the simulator under `flow`.

use serde::Serialize;

use crate::workload::{JobSpec, Plan, RateSpec, Workload};
use crate::SimError;

/// The question.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Question {
    /// Plan: tokens per minute.
    pub refill_per_minute: i64,
    /// Deals to fetch.
    pub deals: u64,
    /// Tokens per deal.
    pub tokens_per_deal: i64,
    /// A refresher: (period in seconds, tokens per run), on time within its period.
    pub refresh: Option<(f64, i64)>,
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

/// `n` with thousands separators: `12345` as `12,345`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
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

/// Answers `q`.
pub fn estimate(q: Question) -> Result<Answer, SimError> {
    if q.refill_per_minute <= 0 {
        return Err(SimError::Invalid {
            field: "refill-per-minute".into(),
            why: "must be > 0".into(),
        });
    }
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
        plan: Plan {
            refill_per_minute: RateSpec::Constant(q.refill_per_minute),
            bucket_max: None,
            start_tokens: None,
            horizon_days: 3650.0,
        },
        jobs,
        alternatives: vec![],
        seed_rules: None,
    };
    let run = crate::simulate(&w, "flow")?;
    let r = run.report;
    let refresher = match q.refresh {
        Some((p, c)) => format!(" with a {c}-token refresher {}", period_words(p)),
        None => String::new(),
    };
    let when = match r.days_to_target {
        Some(d) => format!("{d:.1} days"),
        None if !r.refused.is_empty() => format!("never ({})", r.refused.join("; ")),
        None => "more than ten years".into(),
    };
    let sentence = format!(
        "{} deals at {} tokens on a {}/min plan{refresher}: {when}",
        thousands(q.deals),
        q.tokens_per_deal,
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

    #[test]
    fn the_seed_question_in_one_sentence() {
        let a = estimate(Question {
            refill_per_minute: 5,
            deals: 10_000,
            tokens_per_deal: 12,
            refresh: Some((60.0, 1)),
        })
        .unwrap();
        assert_eq!(
            a.sentence,
            "10,000 deals at 12 tokens on a 5/min plan with a 1-token refresher every minute: 20.6 days"
        );
        assert!((a.days.unwrap() - a.frontier_days.unwrap()).abs() < 0.01);
    }

    #[test]
    fn a_refresher_eating_the_whole_plan_never_finishes() {
        let a = estimate(Question {
            refill_per_minute: 5,
            deals: 10_000,
            tokens_per_deal: 1,
            refresh: Some((60.0, 5)),
        })
        .unwrap();
        assert!(a.days.is_none(), "{a:?}");
        assert!(a.sentence.contains("never"), "{}", a.sentence);
    }
}
