//! `keepa-harvest export`: every stored deal joined with its product's
//! fields, or with `--history` the stored products' price and rank
//! histories in long format; as CSV (header row), JSON Lines or Parquet,
//! to stdout or a file.

use std::io::{IsTerminal as _, Write as _};
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
    /// Apache Parquet (integers, UTC timestamps, strings; nulls).
    Parquet,
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
    /// Export the stored products' csv histories instead, one row per point
    /// (asin, domain, series, time, value); kept by runs with `keep_history = true`.
    #[arg(long)]
    history: bool,
}

/// What was exported, for the closing line.
enum Exported {
    Deals(u64),
    History(harvest::store::HistoryExport),
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
            Format::Parquet => ExportFormat::Parquet,
        };
        if format == ExportFormat::Parquet && self.out.is_none() && std::io::stdout().is_terminal()
        {
            return Err(usage(
                "--format parquet writes binary data: give --out FILE or redirect stdout",
            ));
        }
        if self.history && store.count_histories().await.context("exporting")? == 0 {
            store.close().await;
            return Err(usage(format!(
                "{} holds no product histories: they are kept only by runs with \
                 `keep_history = true` in the config (from then on, for every product fetched)",
                store.display_name()
            )));
        }
        let Some(done) = self.write(&store, format).await? else {
            return Ok(()); // `| head`: the reader has what it wanted.
        };
        store.close().await;
        let dest = self
            .out
            .as_ref()
            .map_or("stdout".to_string(), |p| p.display().to_string());
        let mut err = std::io::stderr();
        let what = match done {
            Exported::Deals(rows) => format!("{rows} deals"),
            Exported::History(h) => {
                for why in &h.skipped {
                    let _ = writeln!(err, "warning: history left out: {why}");
                }
                format!(
                    "{} history points of {} products{}",
                    h.rows,
                    h.products,
                    if h.skipped.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} series left out, see the warnings)", h.skipped.len())
                    }
                )
            }
        };
        let _ = writeln!(
            err,
            "exported {what} from {} to {dest}",
            store.display_name()
        );
        Ok(())
    }

    /// Runs the export into stdout or `--out`; `None` when stdout was
    /// closed early (a pipe into `head`).
    async fn write(
        &self,
        store: &harvest::store::Store,
        format: ExportFormat,
    ) -> anyhow::Result<Option<Exported>> {
        let Some(path) = &self.out else {
            let mut out = std::io::BufWriter::new(std::io::stdout());
            return match self.export_to(store, format, &mut out).await {
                Err(StoreError::Write { source, .. })
                    if source.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    Ok(None)
                }
                other => Ok(Some(other.context("exporting")?)),
            };
        };
        // Write beside the target, then rename: a failed export never
        // leaves a truncated file under the requested name.
        let mut partial = path.clone().into_os_string();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = std::fs::File::create(&partial)
            .map_err(|e| usage(format!("--out: cannot create {}: {e}", partial.display())))?;
        let mut out = std::io::BufWriter::new(file);
        let result = self.export_to(store, format, &mut out).await;
        let result = result.and_then(|done| {
            out.into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .map(|()| done)
                .map_err(|source| StoreError::Write {
                    db: store.display_name().to_string(),
                    source,
                })
        });
        let done = match result {
            Ok(done) => done,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e).context("exporting");
            }
        };
        std::fs::rename(&partial, path)
            .with_context(|| format!("cannot move the export to {}", path.display()))?;
        Ok(Some(done))
    }

    /// Deals, or with `--history` the histories, into `out`.
    async fn export_to(
        &self,
        store: &harvest::store::Store,
        format: ExportFormat,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<Exported, StoreError> {
        if self.history {
            store
                .export_history(format, out)
                .await
                .map(Exported::History)
        } else {
            store.export(format, out).await.map(Exported::Deals)
        }
    }
}
