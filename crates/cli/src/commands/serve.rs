//! `keepa-harvest serve`: the web dashboard over a database, without a
//! run (SQLite or PostgreSQL; reads only, besides the store's migrations).
//! Prints `listening on http://ADDR` as its first stdout line, then serves
//! until interrupted.

use std::io::Write as _;
use std::net::SocketAddr;

use crate::context::{CommandFlags, Context};
use crate::dashboard::{self, Source};

/// Flags of `serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Database: a SQLite path or a postgres:// URL [default: keepa-harvest.db]
    #[arg(long, value_name = "PATH-or-URL")]
    db: Option<String>,
    /// Address to serve on; a bare port (`8080`) binds loopback only.
    #[arg(long, value_name = "ADDR|PORT", default_value = "127.0.0.1:0",
          value_parser = harvest::metrics::parse_addr)]
    addr: SocketAddr,
    /// The run's target, for the ETA [default: the config's backfill.target_deals]
    #[arg(long, value_name = "N")]
    target_deals: Option<u64>,
}

impl ServeArgs {
    pub(crate) async fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let plan = ctx.plan(CommandFlags {
            db: self.db.clone(),
            target_deals: self.target_deals,
            ..CommandFlags::default()
        })?;
        let store = super::status::open_existing(&plan.db).await?;
        let (_keep, stop) = tokio::sync::watch::channel(false);
        let source = Source {
            store,
            target_deals: plan.target_deals,
        };
        let bound = dashboard::start(self.addr, "--addr", source, None, stop).await?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on http://{bound}")?;
            out.flush()?;
        }
        // Until Ctrl-C (main turns it into exit 130) or a kill.
        std::future::pending::<()>().await;
        Ok(())
    }
}
