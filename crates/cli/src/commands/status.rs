//! `keepa-harvest status`: what is stored, where each job stands, tokens
//! used, and an ETA when the run's target is known. Reads only.

use std::io::Write as _;

use anyhow::Context as _;
use harvest::store::{Store, StoreError};

use crate::context::{CommandFlags, Context};
use crate::exit::usage;

mod render;
pub(crate) use render::job_lines;
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
        let plan = ctx.plan(CommandFlags {
            db: self.db.clone(),
            target_deals: self.target_deals,
            ..CommandFlags::default()
        })?;
        let store = open_existing(&plan.db).await?;
        let wall = keepa::clock::wall_unix_ms();
        let mut report = store.status(wall).await.context("reading the status")?;
        // The ledger's times are the harvest's clock (a sandbox's is not the
        // wall clock): windows end at the newest request, so "last hour"
        // means the last hour of work, for live and stopped runs alike.
        if let Some(latest) = report.latest_request_ms.filter(|&l| l != wall) {
            report = store.status(latest).await.context("reading the status")?;
        }
        if let Some(target) = plan.target_deals {
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
