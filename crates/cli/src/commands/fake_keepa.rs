//! `keepa-harvest fake-keepa`: the Keepa-compatible fake server.
//!
//! Prints `listening on http://ADDR` as its first stdout line, then serves
//! until interrupted. All behaviour lives in the `fake-keepa` crate; this
//! module only turns flags into its builder. With `--replay DIR` it serves
//! a recording (`--record DIR` of `run` or `api`) instead.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fake_keepa::{CatalogParams, FakeKeepa, FaultSpec};

use crate::context::{Context, KEY_ENV};
use crate::exit::usage;

/// Flags of `fake-keepa`.
#[derive(Debug, clap::Args)]
pub(crate) struct FakeKeepaArgs {
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Port; 0 takes a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Tokens added per minute (each key).
    #[arg(long, default_value_t = 20)]
    refill_per_minute: i64,
    /// Rate changes over time as MINUTE:RATE,… from the start (overrides --refill-per-minute), e.g. `0:5,1440:25`.
    #[arg(long, value_name = "SCHEDULE")]
    refill_schedule: Option<String>,
    /// Bucket cap [default: 60 × refill rate].
    #[arg(long)]
    bucket_max: Option<i64>,
    /// Balance at start [default: the cap].
    #[arg(long, allow_negative_numbers = true)]
    start_tokens: Option<i64>,
    /// Server time speed: 1 = real time, 600 = ten minutes per second.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Seed of the catalog, the deal feed and the faults.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Valid keys, comma-separated [default: $KEEPA_API_KEY if set, else `fake-keepa-key`].
    #[arg(long, value_delimiter = ',', value_name = "K,…")]
    keys: Vec<String>,
    /// Keys answered with 402 (expired), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "K,…")]
    expired_keys: Vec<String>,
    /// Faults to inject: `5xx=0.05,latency=20ms..2s,hang=0.01,reset=0.01,garbage=0.01,foreign=8/min`, or a TOML file with the same keys.
    #[arg(long, value_name = "SPEC|FILE")]
    faults: Option<String>,
    /// New deals per hour of server time.
    #[arg(long, default_value_t = 300.0)]
    deals_per_hour: f64,
    /// Deals already in the 12 h window at start.
    #[arg(long, default_value_t = 3_000)]
    initial_deals: u32,
    /// Products in the catalog.
    #[arg(long, default_value_t = 100_000)]
    products: u32,
    /// Answer with the recording in DIR (what `--record DIR` wrote): each
    /// endpoint's answers in recorded order, whatever the query or key;
    /// 404 once they are used up. Only --bind and --port apply.
    #[arg(long, value_name = "DIR")]
    replay: Option<PathBuf>,
}

impl FakeKeepaArgs {
    /// Starts the server and serves until interrupted.
    pub(crate) async fn run(&self, _ctx: &Context) -> anyhow::Result<()> {
        if let Some(dir) = &self.replay {
            return self.replay(dir).await;
        }
        let faults = match &self.faults {
            None => FaultSpec::default(),
            Some(spec) if Path::new(spec).is_file() => {
                let text = std::fs::read_to_string(spec)
                    .with_context(|| format!("reading the fault file {spec}"))?;
                FaultSpec::from_toml_str(&text).map_err(|e| usage(format!("{spec}: {e}")))?
            }
            Some(spec) => spec
                .parse::<FaultSpec>()
                .map_err(|e| usage(format!("--faults: {e}")))?,
        };
        let keys = if self.keys.is_empty() {
            match std::env::var(KEY_ENV) {
                Ok(k) if !k.trim().is_empty() => vec![k.trim().to_string()],
                _ => vec!["fake-keepa-key".to_string()],
            }
        } else {
            self.keys.clone()
        };
        let mut builder = FakeKeepa::builder()
            .bind(SocketAddr::new(self.bind, self.port))
            .refill_per_minute(self.refill_per_minute)
            .time_scale(self.time_scale)
            .seed(self.seed)
            .keys(keys)
            .expired_keys(self.expired_keys.clone())
            .faults(faults)
            .deals_per_hour(self.deals_per_hour)
            .initial_deals(self.initial_deals)
            .catalog(CatalogParams {
                products: self.products,
                ..CatalogParams::default()
            });
        if let Some(schedule) = &self.refill_schedule {
            builder = builder.refill_schedule(parse_schedule(schedule)?);
        }
        if let Some(max) = self.bucket_max {
            builder = builder.bucket_max(max);
        }
        if let Some(start) = self.start_tokens {
            builder = builder.start_tokens(start);
        }
        let server = builder
            .start()
            .await
            .context("starting the fake Keepa server")?;
        announce(&server.base_url())?;
        tracing::info!(
            stats = %format!("{}/_fake/stats", server.base_url()),
            "fake Keepa serving; Ctrl-C stops it"
        );
        // Serve until the process is interrupted (main maps Ctrl-C to exit 130).
        std::future::pending::<()>().await;
        Ok(())
    }

    /// Serves the recording in `dir` until interrupted.
    async fn replay(&self, dir: &Path) -> anyhow::Result<()> {
        let answers = keepa::record::read_dir(dir).map_err(|e| usage(format!("--replay: {e}")))?;
        let count = answers.len();
        let server = fake_keepa::replay::ReplayServer::start_on(
            SocketAddr::new(self.bind, self.port),
            answers.into_iter().map(|(_, a)| a).collect(),
        )
        .await
        .context("starting the replay server")?;
        announce(&server.base_url())?;
        tracing::info!(answers = count, dir = %dir.display(), "replaying; Ctrl-C stops it");
        std::future::pending::<()>().await;
        Ok(())
    }
}

/// The first stdout line: where the server listens.
fn announce(base_url: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {base_url}")?;
    stdout.flush()?;
    Ok(())
}

fn parse_schedule(text: &str) -> anyhow::Result<Vec<(i64, i64)>> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (m, r) = p
                .split_once(':')
                .ok_or_else(|| usage(format!("--refill-schedule: {p:?} is not MINUTE:RATE")))?;
            Ok((
                m.trim()
                    .parse()
                    .map_err(|_| usage(format!("--refill-schedule: bad minute {m:?}")))?,
                r.trim()
                    .parse()
                    .map_err(|_| usage(format!("--refill-schedule: bad rate {r:?}")))?,
            ))
        })
        .collect()
}
