//! Turns global flags, a command's own flags, the environment and the
//! config file (parsed once, [`FileConfig`]) into one [`Plan`]: what the
//! command runs with. Precedence, for every setting: flags, then the
//! environment (`KEEPA_API_KEY`), then the config file, then defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use harvest::config::RunConfig;
use keepa::client::{ApiKey, Client};
use keepa::record::Recorder;

use crate::cli::GlobalArgs;
use crate::config::FileConfig;
use crate::exit::usage;
use crate::sandbox::SandboxSettings;

/// The environment variable holding the API key.
pub(crate) const KEY_ENV: &str = "KEEPA_API_KEY";

/// The database without `--db` or `db` in the config file.
pub(crate) const DEFAULT_DB: &str = "keepa-harvest.db";

/// The ledger without `--ledger` or `ledger` in the config file.
const DEFAULT_LEDGER: &str = "memory";

/// The global flags and the config file, read once per process.
#[derive(Debug)]
pub(crate) struct Context {
    /// `--json`.
    pub(crate) json: bool,
    file: FileConfig,
    global: GlobalArgs,
}

/// A command's own flags, as far as they override shared settings.
#[derive(Debug, Default)]
pub(crate) struct CommandFlags {
    /// `--db`.
    pub(crate) db: Option<String>,
    /// `--target-deals`.
    pub(crate) target_deals: Option<u64>,
    /// `--metrics-addr`.
    pub(crate) metrics_addr: Option<SocketAddr>,
    /// `--policy`.
    pub(crate) policy: Option<String>,
    /// `--sandbox`, with its settings: the server and its key are in-process.
    pub(crate) sandbox: Option<SandboxSettings>,
    /// The command calls Keepa (with the configured key) unless sandboxed.
    pub(crate) needs_key: bool,
    /// `--record DIR`: write every answer of the server into DIR.
    pub(crate) record: Option<PathBuf>,
}

/// Everything a command runs with, resolved.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The harvest's own settings (`--policy` applied).
    pub(crate) run: RunConfig,
    /// Database: a SQLite path or a `postgres://` URL.
    pub(crate) db: String,
    /// Ledger: `memory` or a `redis://` URL.
    pub(crate) ledger: String,
    /// The API key, when the command needs one and is not sandboxed.
    pub(crate) key: Option<ApiKey>,
    /// Where to serve Prometheus metrics.
    pub(crate) metrics_addr: Option<SocketAddr>,
    /// Stop once this many deals are stored (`--target-deals`, else the
    /// config's `backfill.target_deals`).
    pub(crate) target_deals: Option<u64>,
    /// `--sandbox`, validated.
    pub(crate) sandbox: Option<SandboxSettings>,
    /// How to reach Keepa.
    pub(crate) client: ClientSettings,
    /// `--server-time-scale`: overrides the scale a fake server announces.
    pub(crate) server_time_scale: Option<f64>,
}

/// How to reach Keepa: `--base-url`/`--timeout`, else the config file's,
/// else the client's defaults; and `--record`.
#[derive(Debug, Clone)]
pub(crate) struct ClientSettings {
    base_url: String,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    recorder: Option<Recorder>,
}

impl ClientSettings {
    /// A client for this server with `key`.
    pub(crate) fn build(&self, key: ApiKey) -> anyhow::Result<Client> {
        let mut builder = Client::builder(key).base_url(self.base_url.clone());
        if let Some(t) = self.timeout {
            builder = builder.timeout(t);
        }
        if let Some(t) = self.connect_timeout {
            builder = builder.connect_timeout(t);
        }
        if let Some(r) = &self.recorder {
            builder = builder.record(r.clone());
        }
        builder.build().context("setting up the Keepa client")
    }

    /// Where answers are recorded (`--record`), if anywhere.
    pub(crate) fn recorder(&self) -> Option<&Recorder> {
        self.recorder.as_ref()
    }
}

impl Plan {
    /// The API key; without one (a plan for a command that calls no
    /// Keepa, or for the sandbox) the usual "no Keepa API key" error.
    pub(crate) fn key(&self) -> anyhow::Result<ApiKey> {
        self.key.clone().ok_or_else(no_key)
    }

    /// A client for the configured server and key.
    pub(crate) fn keepa_client(&self) -> anyhow::Result<Client> {
        self.client.build(self.key()?)
    }
}

impl Context {
    /// Reads the config file named by the flags (once).
    pub(crate) fn new(global: &GlobalArgs) -> anyhow::Result<Context> {
        Ok(Context {
            file: FileConfig::load_optional(global.config.as_deref())?,
            json: global.json,
            global: global.clone(),
        })
    }

    /// The plan for a command with `flags`. Refuses, as usage errors: an
    /// unknown `--policy`, `--target-deals 0`, bad sandbox settings, a
    /// shared ledger with `--sandbox`, a `--record` directory that cannot
    /// be created, and a missing key the command needs.
    pub(crate) fn plan(&self, flags: CommandFlags) -> anyhow::Result<Plan> {
        let file = &self.file;
        let mut run = file.run.clone();
        if let Some(name) = &flags.policy {
            run.budget.policy = budget::PolicyKind::by_name(name, budget::SeedRules::default())
                .map_err(|e| usage(e.to_string()))?;
        }
        let ledger = (self.global.ledger.clone())
            .or_else(|| file.ledger.clone())
            .unwrap_or_else(|| DEFAULT_LEDGER.to_string());
        if flags.target_deals == Some(0) {
            return Err(usage("--target-deals must be at least 1"));
        }
        if let Some(s) = &flags.sandbox {
            check_sandbox(s, &ledger)?;
        }
        let key = match flags.needs_key && flags.sandbox.is_none() {
            true => Some(self.api_key()?),
            false => None,
        };
        // Last: a usage error above leaves no directory behind.
        let recorder = match &flags.record {
            Some(dir) => Some(Recorder::create(dir).map_err(|e| usage(format!("--record: {e}")))?),
            None => None,
        };
        Ok(Plan {
            target_deals: flags.target_deals.or(run.backfill.target_deals),
            run,
            db: (flags.db)
                .or_else(|| file.db.clone())
                .unwrap_or_else(|| DEFAULT_DB.to_string()),
            ledger,
            key,
            metrics_addr: flags.metrics_addr.or(file.metrics_addr),
            sandbox: flags.sandbox,
            client: ClientSettings {
                base_url: (self.global.base_url.clone())
                    .or_else(|| file.base_url.clone())
                    .unwrap_or_else(|| keepa::client::DEFAULT_BASE_URL.to_string()),
                timeout: self.global.timeout.or(file.timeout),
                connect_timeout: file.connect_timeout,
                recorder,
            },
            server_time_scale: self.global.server_time_scale,
        })
    }

    /// The API key: `--key-file`, else `KEEPA_API_KEY`, else the config's
    /// `key_file`, else its `key`. The key itself never appears in an error.
    fn api_key(&self) -> anyhow::Result<ApiKey> {
        if let Some(path) = &self.global.key_file {
            return read_key_file(path);
        }
        if let Ok(value) = std::env::var(KEY_ENV) {
            if !value.trim().is_empty() {
                return ApiKey::new(value)
                    .map_err(|e| usage(format!("{KEY_ENV} holds an invalid key: {}", e.0)));
            }
        }
        if let Some(path) = &self.file.key_file {
            return read_key_file(path);
        }
        self.file.key.clone().ok_or_else(no_key)
    }
}

/// The sandbox's plan must be positive, and its server is its own: a
/// shared ledger would count another server's tokens.
fn check_sandbox(s: &SandboxSettings, ledger: &str) -> anyhow::Result<()> {
    if !(s.refill_per_minute > 0 && s.time_scale.is_finite() && s.time_scale > 0.0) {
        return Err(usage(
            "--sandbox-refill-per-minute and --sandbox-time-scale must be positive",
        ));
    }
    if ledger != DEFAULT_LEDGER {
        return Err(usage(
            "--ledger: a shared ledger needs a shared server; --sandbox runs its own (start `keepa-harvest fake-keepa` and point --base-url at it)",
        ));
    }
    Ok(())
}

fn no_key() -> anyhow::Error {
    usage(format!(
        "no Keepa API key: set {KEY_ENV} or pass --key-file PATH"
    ))
}

fn read_key_file(path: &PathBuf) -> anyhow::Result<ApiKey> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read key file {}: {e}", path.display())))?;
    ApiKey::new(text).map_err(|e| usage(format!("key file {}: {}", display(path), e.0)))
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
