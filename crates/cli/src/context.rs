//! Turns global flags, the config file and the environment into what
//! commands use: the API key and a ready [`keepa::Client`].

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use keepa::client::{ApiKey, Client};

use crate::cli::GlobalArgs;
use crate::config::Config;
use crate::exit::usage;

/// The environment variable holding the API key.
pub(crate) const KEY_ENV: &str = "KEEPA_API_KEY";

/// Everything a command needs from the global flags.
#[derive(Debug)]
pub(crate) struct Context {
    /// The config file (or defaults).
    pub(crate) config: Config,
    /// `--json`.
    pub(crate) json: bool,
    global: GlobalArgs,
}

impl Context {
    /// Loads the config file named by the flags.
    pub(crate) fn new(global: &GlobalArgs) -> anyhow::Result<Context> {
        Ok(Context {
            config: Config::load_optional(global.config.as_deref())?,
            json: global.json,
            global: global.clone(),
        })
    }

    /// The `--config` file, if one was given.
    pub(crate) fn config_path(&self) -> Option<&Path> {
        self.global.config.as_deref()
    }

    /// The API key: `--key-file`, else `KEEPA_API_KEY`, else the config's
    /// `key_file`. The key itself never appears in an error.
    pub(crate) fn api_key(&self) -> anyhow::Result<ApiKey> {
        if let Some(path) = &self.global.key_file {
            return read_key_file(path);
        }
        if let Ok(value) = std::env::var(KEY_ENV) {
            if !value.trim().is_empty() {
                return ApiKey::new(value)
                    .map_err(|e| usage(format!("{KEY_ENV} holds an invalid key: {}", e.0)));
            }
        }
        if let Some(path) = &self.config.key_file {
            return read_key_file(path);
        }
        Err(usage(format!(
            "no Keepa API key: set {KEY_ENV} or pass --key-file PATH"
        )))
    }

    /// The base URL: `--base-url`, else the config's, else Keepa's.
    pub(crate) fn base_url(&self) -> String {
        self.global
            .base_url
            .clone()
            .or_else(|| self.config.base_url.clone())
            .unwrap_or_else(|| keepa::client::DEFAULT_BASE_URL.to_string())
    }

    /// `--ledger`, if given.
    pub(crate) fn ledger(&self) -> Option<&str> {
        self.global.ledger.as_deref()
    }

    /// Server time for the budget: the wall clock against Keepa, or, with
    /// `--server-time-scale X`, a clock running X times faster from the
    /// `timestamp` of one free `/token` call.
    pub(crate) async fn server_clock(
        &self,
        client: &Client,
    ) -> anyhow::Result<harvest::clock::ScaledClock> {
        let Some(scale) = self.global.server_time_scale else {
            return Ok(harvest::clock::ScaledClock::wall());
        };
        if !(scale.is_finite() && scale > 0.0) {
            return Err(usage(format!(
                "--server-time-scale {scale}: must be a positive number"
            )));
        }
        let resp = client
            .send(&keepa::request::Request::token())
            .await
            .context("reading the server's clock (GET /token)")?;
        let now = resp
            .envelope
            .timestamp
            .ok_or_else(|| anyhow::anyhow!("the server's /token answer has no timestamp"))?;
        Ok(harvest::clock::ScaledClock::scaled(now, scale))
    }

    /// A client for the configured server and key.
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        self.client_with(self.api_key()?)
    }

    /// A client for the configured server with `key`.
    pub(crate) fn client_with(&self, key: ApiKey) -> anyhow::Result<Client> {
        let mut builder = Client::builder(key).base_url(self.base_url());
        if let Some(t) = self.global.timeout.or(self.config.timeout) {
            builder = builder.timeout(t);
        }
        if let Some(t) = self.config.connect_timeout {
            builder = builder.connect_timeout(t);
        }
        builder.build().context("setting up the Keepa client")
    }
}

fn read_key_file(path: &PathBuf) -> anyhow::Result<ApiKey> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read key file {}: {e}", path.display())))?;
    ApiKey::new(text).map_err(|e| usage(format!("key file {}: {}", display(path), e.0)))
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
