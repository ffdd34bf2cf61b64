//! The command line as clap sees it: global flags and the subcommand.
//!
//! Flags here are raw; [`crate::context`] turns them (with the config file
//! and the environment) into ready-to-use objects.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, ValueEnum};

use crate::commands::Command;

/// Collect Amazon deal and product data from the Keepa API as fast as a plan allows.
///
/// The API key comes from the KEEPA_API_KEY environment variable or from
/// --key-file; never from a plain flag (it would land in shell history).
#[derive(Debug, Parser)]
#[command(name = "keepa-harvest", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags every command accepts, before or after the subcommand.
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// File holding the Keepa API key (one line). Overrides KEEPA_API_KEY.
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) key_file: Option<PathBuf>,

    /// Keepa server to talk to (a fake one, a proxy) [default: `https://api.keepa.com`]
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) base_url: Option<String>,

    /// TOML configuration file; flags override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Machine-readable output: one JSON document on stdout (and JSON cost lines on stderr).
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// Log line format on stderr (filter with RUST_LOG).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,

    /// Total time allowed for one HTTP call, e.g. `30s` [default: 120s]
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Option<Duration>,

    /// The budget's ledger: `memory` (this process) or a redis:// URL shared
    /// by every process on the key [default: memory]
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) ledger: Option<String>,

    /// Override: the server's clock runs this many times faster than real
    /// time. A fake Keepa on a fast clock announces its scale in its /token
    /// answers, and `run` and `api` adopt it without this flag [default:
    /// the server's announcement, else 1: Keepa's wall time]
    #[arg(long, global = true, value_name = "X")]
    pub(crate) server_time_scale: Option<f64>,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}
