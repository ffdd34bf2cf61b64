//! `keepa-harvest estimate`: "how long?" in one sentence (or JSON), from a
//! simulation under `flow` with every refresh run on time.

use std::io::Write as _;
use std::time::Duration;

use crate::context::Context;
use crate::exit::usage;

/// Flags of `estimate`.
#[derive(Debug, clap::Args)]
pub(crate) struct EstimateArgs {
    /// Plan: tokens per minute.
    #[arg(long)]
    refill_per_minute: i64,
    /// Deals to fetch.
    #[arg(long)]
    deals: u64,
    /// Tokens per deal (a product with offers: ~12).
    #[arg(long)]
    tokens_per_deal: i64,
    /// A refresher's period, e.g. `1m`, `5m`.
    #[arg(long, value_parser = humantime::parse_duration, requires = "refresh_cost")]
    refresh_every: Option<Duration>,
    /// Tokens per refresher run.
    #[arg(long, requires = "refresh_every")]
    refresh_cost: Option<i64>,
}

impl EstimateArgs {
    pub(crate) async fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        if self.refill_per_minute <= 0 || self.tokens_per_deal < 0 {
            return Err(usage(
                "--refill-per-minute must be > 0 and --tokens-per-deal >= 0",
            ));
        }
        let refresh = match (self.refresh_every, self.refresh_cost) {
            (Some(d), Some(c)) if !d.is_zero() && c >= 0 => Some((d.as_secs_f64(), c)),
            (None, None) => None,
            _ => return Err(usage("--refresh-every must be > 0 and --refresh-cost >= 0")),
        };
        let q = sim::estimate::Question {
            refill_per_minute: self.refill_per_minute,
            deals: self.deals,
            tokens_per_deal: self.tokens_per_deal,
            refresh,
        };
        let answer = tokio::task::spawn_blocking(move || sim::estimate::estimate(q)).await??;
        let mut out = std::io::stdout().lock();
        if ctx.json {
            serde_json::to_writer_pretty(&mut out, &answer)?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", answer.sentence)?;
        }
        Ok(())
    }
}
