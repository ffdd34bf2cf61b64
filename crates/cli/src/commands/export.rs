//! `keepa-harvest export`: every stored deal joined with its product's
//! fields, as CSV (header row) or JSON Lines, to stdout or a file.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use harvest::store::{ExportFormat, StoreError};

use super::status::open_existing;
use crate::context::{CommandFlags, Context};
use crate::exit::usage;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// Flags of `export`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    /// Database: a SQLite path or a postgres:// URL [default: keepa-harvest.db]
    #[arg(long, value_name = "PATH-or-URL")]
    db: Option<String>,
    /// Output format.
    #[arg(long, value_enum)]
    format: Format,
    /// Write here instead of stdout (replaced only once the export is complete).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

impl ExportArgs {
    pub(crate) async fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let plan = ctx.plan(CommandFlags {
            db: self.db.clone(),
            ..CommandFlags::default()
        })?;
        let store = open_existing(&plan.db).await?;
        let format = match self.format {
            Format::Csv => ExportFormat::Csv,
            Format::Jsonl => ExportFormat::Jsonl,
        };
        let rows = match &self.out {
            None => {
                let mut out = std::io::BufWriter::new(std::io::stdout());
                match store.export(format, &mut out).await {
                    // `| head`: the reader has what it wanted.
                    Err(StoreError::Write { source, .. })
                        if source.kind() == std::io::ErrorKind::BrokenPipe =>
                    {
                        return Ok(())
                    }
                    other => other.context("exporting")?,
                }
            }
            Some(path) => {
                // Write beside the target, then rename: a failed export
                // never leaves a truncated file under the requested name.
                let mut partial = path.clone().into_os_string();
                partial.push(".partial");
                let partial = PathBuf::from(partial);
                let file = std::fs::File::create(&partial).map_err(|e| {
                    usage(format!("--out: cannot create {}: {e}", partial.display()))
                })?;
                let mut out = std::io::BufWriter::new(file);
                let result = store.export(format, &mut out).await;
                let result = result.and_then(|n| {
                    out.into_inner()
                        .map_err(|e| e.into_error())
                        .and_then(|f| f.sync_all())
                        .map(|()| n)
                        .map_err(|source| StoreError::Write {
                            db: store.display_name().to_string(),
                            source,
                        })
                });
                let n = match result {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = std::fs::remove_file(&partial);
                        return Err(e).context("exporting");
                    }
                };
                std::fs::rename(&partial, path)
                    .with_context(|| format!("cannot move the export to {}", path.display()))?;
                n
            }
        };
        store.close().await;
        let dest = self
            .out
            .as_ref()
            .map_or("stdout".to_string(), |p| p.display().to_string());
        let _ = writeln!(
            std::io::stderr(),
            "exported {rows} deals from {} to {dest}",
            store.display_name()
        );
        Ok(())
    }
}
