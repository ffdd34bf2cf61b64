//! One module per subcommand. To add one: a variant in [`Command`], an arm in
//! [`Command::run`], and a module file here.

use crate::cli::GlobalArgs;
use crate::context::Context;

pub(crate) mod alert;
pub(crate) mod api;
pub(crate) mod estimate;
pub(crate) mod export;
pub(crate) mod fake_keepa;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod simulate;
pub(crate) mod status;

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Single Keepa calls: token status, products, the deal feed.
    Api(api::ApiArgs),
    /// The Keepa-compatible fake server (prints `listening on http://ADDR` first).
    FakeKeepa(fake_keepa::FakeKeepaArgs),
    /// Run a workload through the simulator (report keys: workloads/README.md).
    Simulate(simulate::SimulateArgs),
    /// How long will it take? One sentence (or --json).
    Estimate(estimate::EstimateArgs),
    /// The harvest: backfill, refresh and re-checks under one budget (`--sandbox`: on a fake Keepa).
    Run(run::RunArgs),
    /// What is stored, where each job stands, tokens used, ETA (reads only).
    Status(status::StatusArgs),
    /// Stored deals with their product fields, as CSV or JSON Lines.
    Export(export::ExportArgs),
    /// Alert webhooks: `alert test` sends a sample to each configured [[alert]].
    Alert(alert::AlertArgs),
    /// The web dashboard over a database (prints `listening on http://ADDR`).
    Serve(serve::ServeArgs),
}

impl Command {
    /// Whether the command handles Ctrl-C itself (a graceful shutdown).
    pub(crate) fn handles_interrupt(&self) -> bool {
        matches!(self, Command::Run(_))
    }

    /// Whether the user asked for quiet output (`run --quiet`): logs then
    /// default to warnings and errors only.
    pub(crate) fn quiet(&self) -> bool {
        matches!(self, Command::Run(args) if args.quiet)
    }

    /// Runs the command to completion.
    pub(crate) async fn run(&self, global: &GlobalArgs) -> anyhow::Result<()> {
        let ctx = Context::new(global)?;
        match self {
            Command::Api(cmd) => cmd.run(&ctx).await,
            Command::FakeKeepa(args) => args.run(&ctx).await,
            Command::Simulate(args) => args.run(&ctx).await,
            Command::Estimate(args) => args.run(&ctx).await,
            Command::Run(args) => args.run(&ctx).await,
            Command::Status(args) => args.run(&ctx).await,
            Command::Export(args) => args.run(&ctx).await,
            Command::Alert(args) => args.run(&ctx).await,
            Command::Serve(args) => args.run(&ctx).await,
        }
    }
}
