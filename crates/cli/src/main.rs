//! `keepa-harvest`: collect Amazon deal and product data from the Keepa API.
//!
//! `main` only parses arguments, sets up logging and the runtime, runs the
//! chosen command and maps its outcome to an exit code ([`exit`]). Each
//! subcommand is one variant of [`commands::Command`] and one module under
//! `commands/`.

mod cli;
mod clock;
mod commands;
mod config;
mod context;
mod dashboard;
mod exit;
mod logging;
mod metrics_http;
mod progress;
mod sandbox;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    if let Err(err) = logging::init(cli.global.log_format, cli.command.quiet()) {
        eprintln!("error: cannot set up logging: {err:#}");
        return exit::Status::Internal.into();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return exit::Status::Internal.into();
        }
    };
    let outcome = runtime.block_on(async {
        if cli.command.handles_interrupt() {
            return cli.command.run(&cli.global).await;
        }
        tokio::select! {
            result = cli.command.run(&cli.global) => result,
            _ = tokio::signal::ctrl_c() => Err(exit::Interrupted.into()),
        }
    });
    match outcome {
        Ok(()) => exit::Status::Ok.into(),
        Err(err) => exit::report(&err).into(),
    }
}
