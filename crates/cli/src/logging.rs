//! Logs go to stderr, filtered by `RUST_LOG` (default: warnings, plus the
//! harvest's own progress lines at `info`). Colour only on a terminal.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// The filter when `RUST_LOG` is unset: warnings from everything, and the
/// harvest's progress and lifecycle lines (the periodic status line that
/// replaces progress bars when stderr is not a terminal).
const DEFAULT_FILTER: &str = "warn,harvest=info,keepa_harvest=info";

/// The filter when `RUST_LOG` is unset and the user asked for quiet output.
const QUIET_FILTER: &str = "warn";

/// Installs the global subscriber.
pub(crate) fn init(format: LogFormat, quiet: bool) -> anyhow::Result<()> {
    let default = if quiet { QUIET_FILTER } else { DEFAULT_FILTER };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!(e))
}
