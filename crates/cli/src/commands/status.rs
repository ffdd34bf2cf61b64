//! `keepa-harvest status`: what is stored, where each job stands, tokens
//! used, and an ETA when the run's target is known. Reads only.

use std::io::Write as _;

use anyhow::Context as _;
use harvest::store::{Store, StoreError};

use crate::context::Context;
use crate::exit::usage;

mod render;
use render::render;

/// Flags of `status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// Database: a SQLite path or a postgres:// URL [default: keepa-harvest.db]
    #[arg(long, value_name = "PATH-or-URL")]
    db: Option<String>,
    /// The run's target, for the ETA [default: the config's backfill.target_deals]
    #[arg(long, value_name = "N")]
    target_deals: Option<u64>,
}

impl StatusArgs {
    pub(crate) async fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let (db, cfg_target) = resolve(self.db.as_deref(), ctx)?;
        if self.target_deals == Some(0) {
            return Err(usage("--target-deals must be at least 1"));
        }
        let store = open_existing(&db).await?;
        let wall = harvest::clock::wall_unix_ms();
        let mut report = store.status(wall).await.context("reading the status")?;
        // The ledger's times are the harvest's clock (a sandbox's is not the
        // wall clock): windows end at the newest request, so "last hour"
        // means the last hour of work, for live and stopped runs alike.
        if let Some(latest) = report.latest_request_ms.filter(|&l| l != wall) {
            report = store.status(latest).await.context("reading the status")?;
        }
        if let Some(target) = self.target_deals.or(cfg_target) {
            report.set_target(target);
        }
        store.close().await;
        let mut out = std::io::stdout().lock();
        let written = if ctx.json {
            serde_json::to_writer_pretty(&mut out, &report)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
        } else {
            out.write_all(render(store.display_name(), &report, wall).as_bytes())
        };
        match written.and_then(|()| out.flush()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(anyhow::Error::new(e).context("writing to stdout"))
            }
            _ => Ok(()),
        }
    }
}

/// Default database file (the same as `run`'s).
const DEFAULT_DB: &str = "keepa-harvest.db";

/// `--db` of `status` and `export`: `--db`, else the config file's `db`, else [`DEFAULT_DB`]; and the run's
/// target (`backfill.target_deals`) when a config file names one.
pub(crate) fn resolve(flag: Option<&str>, ctx: &Context) -> anyhow::Result<(String, Option<u64>)> {
    let cfg = match ctx.config_path() {
        Some(p) => Some(harvest::config::RunConfig::load(p).map_err(|e| usage(format!("{e}")))?),
        None => None,
    };
    let db = flag
        .map(str::to_string)
        .or_else(|| cfg.as_ref().and_then(|c| c.db.clone()))
        .unwrap_or_else(|| DEFAULT_DB.to_string());
    let target = cfg.and_then(|c| c.backfill.target_deals);
    Ok((db, target))
}

/// Opens an existing database, never creating one (a typo must not yield
/// a silently empty database). Missing, corrupt, too new or unreachable is
/// bad input (exit 2), the message naming the database (password removed).
pub(crate) async fn open_existing(db: &str) -> anyhow::Result<Store> {
    match Store::open_existing(db).await {
        Ok(store) => Ok(store),
        Err(
            e @ (StoreError::Missing { .. }
            | StoreError::Corrupt { .. }
            | StoreError::TooNew { .. }
            | StoreError::Connect { .. }
            | StoreError::Create { .. }),
        ) => Err(usage(e.to_string())),
        Err(e) => Err(e).with_context(|| format!("opening {}", harvest::store::redact(db))),
    }
}
