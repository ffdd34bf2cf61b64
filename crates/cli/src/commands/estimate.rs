//! `keepa-harvest estimate`: "how long?" in one sentence (or JSON), from a
//! simulation under `flow` with every refresh run on time; its figures
//! typed as flags or taken from a run's own `--summary-json`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sim::estimate::{duration_words, Answer, OffersAge, Question};

use crate::context::Context;
use crate::exit::usage;

/// Flags of `estimate`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Two readings of --tokens-per-deal:\n  \
    - alone (the default): tokens per stored deal, everything included: all a run \
    spends (backfill and refresh) ÷ the deals it stores, the `tokens_per_stored_deal` \
    of `run --summary-json`; the answer is when the plan has paid for all of it.\n  \
    - with --refresh-every/--refresh-cost: the backfill's own cost per deal (a \
    product with offers: ~12), and a refresher that costs on top and stores nothing; \
    the answer is when the backfill's last request is sent.")]
pub(crate) struct EstimateArgs {
    /// Plan: tokens per minute [--from-summary: its `refill_per_minute`].
    #[arg(long, value_name = "R", required_unless_present = "from_summary")]
    refill_per_minute: Option<i64>,
    /// Deals to store [--from-summary: its `deals_stored`].
    #[arg(long, value_name = "N", required_unless_present = "from_summary")]
    deals: Option<u64>,
    /// Tokens per stored deal, refresh included (fractions allowed: 17.8);
    /// with a refresher, the backfill's own cost (see below)
    /// [--from-summary: its `tokens_per_stored_deal`].
    #[arg(long, value_name = "TOKENS", required_unless_present = "from_summary")]
    tokens_per_deal: Option<f64>,
    /// Tokens in the bucket at the start [default: full, 60 × the rate;
    /// --from-summary: its `start_balance`].
    #[arg(long, value_name = "TOKENS", allow_negative_numbers = true)]
    start_tokens: Option<i64>,
    /// Take the figures from a run's `--summary-json` file (a flag given
    /// overrides its key), and compare with that run's Keepa time.
    #[arg(long, value_name = "FILE")]
    from_summary: Option<PathBuf>,
    /// A refresher costing on top and storing nothing: its period, e.g. `1m`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "refresh_cost")]
    refresh_every: Option<Duration>,
    /// Tokens per refresher run.
    #[arg(long, value_name = "TOKENS", requires = "refresh_every")]
    refresh_cost: Option<i64>,
    /// The offers stage at this `max_age` (e.g. `24h`, as in the config):
    /// the --fresh-share of products whose offers Keepa holds that fresh
    /// cost a flat 5 instead of --offers-tokens.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "fresh_share")]
    max_age: Option<Duration>,
    /// With --max-age: the share (0-1) of products whose offers Keepa
    /// collected within it (the sandbox: about 0.6 for a day).
    #[arg(long, value_name = "SHARE", requires = "max_age")]
    fresh_share: Option<f64>,
    /// With --max-age: the offers part of --tokens-per-deal when collected
    /// [default: 12, two pages].
    #[arg(long, value_name = "TOKENS", requires = "max_age")]
    offers_tokens: Option<f64>,
}

/// The keys of a run summary `estimate` reads; any may be missing.
#[derive(Debug, Default, Deserialize)]
struct RunFigures {
    deals_stored: Option<u64>,
    tokens_per_stored_deal: Option<f64>,
    refill_per_minute: Option<i64>,
    start_balance: Option<i64>,
    bucket_max: Option<i64>,
    tokens_left: Option<i64>,
    limited_by: Option<String>,
    keepa_elapsed_s: Option<f64>,
}

impl RunFigures {
    fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| usage(format!("{}: not a run summary: {e}", path.display())))
    }
}

/// The run a summary describes, beside the estimate.
#[derive(Debug, Serialize)]
struct Observed {
    /// The run's Keepa (server) time, seconds.
    keepa_elapsed_s: Option<f64>,
    /// (estimate − run) ÷ run.
    relative_difference: Option<f64>,
    /// `tokens` or `feed`, as the summary says.
    limited_by: Option<String>,
}

#[derive(Debug, Serialize)]
struct Output<'a> {
    #[serde(flatten)]
    answer: &'a Answer,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<Observed>,
}

/// The flag's value, else the summary's key, else a usage error naming both.
fn pick<T>(
    flag: Option<T>,
    key: Option<T>,
    key_name: &str,
    flag_name: &str,
    path: &Path,
) -> anyhow::Result<T> {
    flag.or(key).ok_or_else(|| {
        usage(format!(
            "{}: no `{key_name}` in the summary; pass --{flag_name}",
            path.display()
        ))
    })
}

impl EstimateArgs {
    /// The question, and the figures of the summary if one was given.
    fn question(&self) -> anyhow::Result<(Question, Option<RunFigures>)> {
        // Both or neither (clap's `requires`); the sim checks their range.
        let refresh = self
            .refresh_every
            .zip(self.refresh_cost)
            .map(|(d, c)| (d.as_secs_f64(), c));
        let offers_age = self
            .max_age
            .zip(self.fresh_share)
            .map(|(d, share)| OffersAge {
                max_age_s: d.as_secs_f64(),
                fresh_share: share,
                offers_tokens: self.offers_tokens.unwrap_or(12.0),
            });
        let Some(path) = &self.from_summary else {
            let mut q = Question::new(
                self.refill_per_minute.unwrap_or_default(),
                self.deals.unwrap_or_default(),
                self.tokens_per_deal.unwrap_or_default(),
            );
            q.start_tokens = self.start_tokens;
            q.refresh = refresh;
            q.offers_age = offers_age;
            return Ok((q, None));
        };
        let f = RunFigures::read(path)?;
        let mut q = Question::new(
            pick(
                self.refill_per_minute,
                f.refill_per_minute,
                "refill_per_minute",
                "refill-per-minute",
                path,
            )?,
            pick(self.deals, f.deals_stored, "deals_stored", "deals", path)?,
            pick(
                self.tokens_per_deal,
                f.tokens_per_stored_deal,
                "tokens_per_stored_deal",
                "tokens-per-deal",
                path,
            )?,
        );
        q.start_tokens = Some(pick(
            self.start_tokens,
            f.start_balance,
            "start_balance",
            "start-tokens",
            path,
        )?);
        q.bucket_max = f.bucket_max;
        // The run ended in its last request's debt (Keepa charges in full
        // below zero): the estimate of that run may too.
        q.end_debt = f.tokens_left.map_or(0, |l| (-l).max(0));
        q.refresh = refresh;
        q.offers_age = offers_age;
        Ok((q, Some(f)))
    }

    pub(crate) async fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let (q, figures) = self.question()?;
        let answer = tokio::task::spawn_blocking(move || sim::estimate::estimate(q))
            .await?
            .map_err(|e| match e {
                // Every field is a flag but the summary's `bucket_max`.
                sim::SimError::Invalid { field, why } if field == "bucket-max" => {
                    usage(format!("the summary's `bucket_max` {why}"))
                }
                sim::SimError::Invalid { field, why } => usage(format!("--{field} {why}")),
                other => other.into(),
            })?;
        let run = figures.map(|f| Observed {
            relative_difference: match (answer.days, f.keepa_elapsed_s) {
                (Some(d), Some(s)) if s > 0.0 => Some((d * 86_400.0 - s) / s),
                _ => None,
            },
            keepa_elapsed_s: f.keepa_elapsed_s,
            limited_by: f.limited_by,
        });
        let mut out = std::io::stdout().lock();
        if ctx.json {
            serde_json::to_writer_pretty(
                &mut out,
                &Output {
                    answer: &answer,
                    run,
                },
            )?;
            writeln!(out)?;
            return Ok(());
        }
        writeln!(out, "{}", answer.sentence)?;
        if let Some(o) = run {
            if let Some(s) = o.keepa_elapsed_s {
                let diff = o.relative_difference.map_or(String::new(), |r| {
                    format!(" (the estimate: {:+.1} %)", r * 100.0)
                });
                writeln!(
                    out,
                    "that run took {} of Keepa time{diff}",
                    duration_words(s)
                )?;
            }
            if o.limited_by.as_deref() == Some("feed") {
                writeln!(
                    out,
                    "that run was limited by the feed, not by tokens (the backfill ran out of \
                     deals before its target): its duration is not a token-limited one"
                )?;
            }
        }
        Ok(())
    }
}
