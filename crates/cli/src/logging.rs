//! Logs go to stderr, filtered by `RUST_LOG` (default: warnings, plus the
//! harvest's own progress lines at `info`). Colour only on a terminal.
//!
//! The process has one set of progress bars, [`bars`]; every log line is
//! written whole above them (the bars are cleared, the line written, the
//! bars redrawn), so a line never lands inside a bar and no bar is left
//! behind as a copy. Without a terminal the bars are hidden and lines go
//! straight to stderr.

use std::io::{IsTerminal as _, Write};
use std::sync::OnceLock;

use indicatif::MultiProgress;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// The filter when `RUST_LOG` is unset: warnings from everything, and the
/// harvest's progress and lifecycle lines (the periodic status line that
/// replaces progress bars when stderr is not a terminal).
const DEFAULT_FILTER: &str = "warn,harvest=info,keepa_harvest=info";

/// The filter when `RUST_LOG` is unset and the user asked for quiet output.
const QUIET_FILTER: &str = "warn";

/// The process's progress bars, drawn on stderr (hidden when stderr is not
/// a terminal). Add bars here, never to a `MultiProgress` of one's own:
/// log lines are printed above these.
pub(crate) fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(MultiProgress::new)
}

/// Prints `line` on stderr above the bars: for the few messages that are
/// not log events. A failed write is ignored (there is nowhere to report it).
pub(crate) fn eprintln_above_bars(line: impl std::fmt::Display) {
    bars().suspend(|| {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    });
}

/// Installs the global subscriber.
pub(crate) fn init(format: LogFormat, quiet: bool) -> anyhow::Result<()> {
    let default = if quiet { QUIET_FILTER } else { DEFAULT_FILTER };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(AboveBars::new(bars().clone(), std::io::stderr));
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!(e))
}

/// A [`MakeWriter`] that writes each event to `out` whole, above the bars
/// of `bars`: an event's bytes are gathered and written in one
/// `MultiProgress::suspend` when its writer is dropped.
#[derive(Debug, Clone)]
pub(crate) struct AboveBars<M> {
    bars: MultiProgress,
    out: M,
}

impl<M> AboveBars<M> {
    /// Writes to `out` above `bars`.
    pub(crate) fn new(bars: MultiProgress, out: M) -> Self {
        AboveBars { bars, out }
    }
}

impl<'a, M: MakeWriter<'a> + 'a> MakeWriter<'a> for AboveBars<M> {
    type Writer = EventWriter<'a, M>;

    fn make_writer(&'a self) -> Self::Writer {
        EventWriter {
            to: self,
            buf: Vec::new(),
        }
    }
}

/// One event's bytes, written above the bars when dropped.
#[derive(Debug)]
pub(crate) struct EventWriter<'a, M: MakeWriter<'a> + 'a> {
    to: &'a AboveBars<M>,
    buf: Vec<u8>,
}

impl<'a, M: MakeWriter<'a> + 'a> Write for EventWriter<'a, M> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a, M: MakeWriter<'a> + 'a> Drop for EventWriter<'a, M> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let to = self.to;
        let buf = std::mem::take(&mut self.buf);
        to.bars.suspend(|| {
            let mut out = to.out.make_writer();
            // Nowhere to report a failed log write: drop the line.
            let _ = out.write_all(&buf).and_then(|()| out.flush());
        });
    }
}

#[cfg(test)]
mod tests;
