//! `keepa-harvest simulate`: a workload through the simulator, one policy
//! or all of them. Everything lives in the `sim` crate; this module turns
//! flags into calls and prints.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::context::Context;
use crate::exit::usage;

/// Flags of `simulate`.
#[derive(Debug, clap::Args)]
pub(crate) struct SimulateArgs {
    /// Workload file (see workloads/README.md).
    #[arg(long, value_name = "FILE")]
    workload: PathBuf,
    /// Policy: flow (default), controlled-deficit, wait-for-max.
    #[arg(long, conflicts_with = "all_policies")]
    policy: Option<String>,
    /// Run every policy (with --json: a JSON array of reports).
    #[arg(long)]
    all_policies: bool,
    /// Draw balance and deals over time per policy into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    chart: Option<PathBuf>,
}

impl SimulateArgs {
    pub(crate) async fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let workload =
            sim::Workload::from_file(&self.workload).map_err(|e| usage(e.to_string()))?;
        let policies: Vec<String> = if self.all_policies {
            budget::PolicyKind::NAMES
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            vec![self.policy.clone().unwrap_or_else(|| "flow".into())]
        };
        for p in &policies {
            budget::PolicyKind::by_name(p, workload.seed_rules())
                .map_err(|e| usage(e.to_string()))?;
        }
        // The simulation is CPU work: keep it off the async workers.
        let runs = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<sim::Run>> {
            policies
                .iter()
                .map(|p| sim::simulate(&workload, p).map_err(anyhow::Error::from))
                .collect()
        })
        .await
        .context("the simulation panicked")??;
        if let Some(path) = &self.chart {
            sim::chart::write_svg(&runs, path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let mut out = std::io::stdout().lock();
        if ctx.json {
            let reports: Vec<&sim::Report> = runs.iter().map(|r| &r.report).collect();
            if self.all_policies {
                serde_json::to_writer_pretty(&mut out, &reports)?;
            } else {
                serde_json::to_writer_pretty(&mut out, reports[0])?;
            }
            writeln!(out)?;
        } else {
            for r in &runs {
                writeln!(out, "{}", human(&r.report))?;
            }
        }
        Ok(())
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// One paragraph per report.
fn human(r: &sim::Report) -> String {
    let mut s = format!(
        "{} / {}: {}\n  frontier {} days, efficiency {}, {:.1} deals/h\n  refresh runs: {} due, {} served, {} on time; delay p50 {} s, p99 {} s, max {} s\n  min balance {}, wasted refill {}, own 429s {}, /token syncs {}\n  tokens spent: {}",
        r.workload,
        r.policy,
        match r.days_to_target {
            Some(d) => format!("{d:.2} days to target"),
            None => "did not finish".into(),
        },
        opt(r.frontier_days, 2),
        opt(r.efficiency, 4),
        r.deals_per_hour,
        r.refresh_runs_due,
        r.refresh_runs_served,
        r.refresh_runs_on_time,
        opt(r.refresh_delay_p50_s, 0),
        opt(r.refresh_delay_p99_s, 0),
        opt(r.refresh_delay_max_s, 0),
        r.min_balance,
        r.wasted_refill_tokens,
        r.rejected_429,
        r.token_syncs,
        r.tokens_spent
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    for e in &r.refused {
        s.push_str(&format!("\n  refused: {e}"));
    }
    for p in r.pipelines.iter().flatten() {
        s.push_str(&format!(
            "\n  pipeline {}: {} tokens per stored deal, {} days, {} stored",
            p.name,
            opt(p.tokens_per_stored_deal, 1),
            opt(p.days_to_target, 2),
            p.stored
        ));
    }
    s
}
