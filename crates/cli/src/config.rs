//! The `--config` TOML file. Flags override it; sections this binary does
//! not know yet (added by other commands) are kept in [`Config::other`].
//!
//! ```toml
//! base_url = "http://127.0.0.1:8080"
//! key_file = "/run/secrets/keepa"
//! timeout = "60s"
//! connect_timeout = "5s"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::exit::usage;

/// The settings a config file may hold.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Config {
    /// Keepa server.
    #[serde(default)]
    pub(crate) base_url: Option<String>,
    /// File holding the API key (relative paths: relative to the config file).
    #[serde(default)]
    pub(crate) key_file: Option<PathBuf>,
    /// Total timeout of one HTTP call.
    #[serde(default, with = "opt_duration")]
    pub(crate) timeout: Option<Duration>,
    /// Connect timeout.
    #[serde(default, with = "opt_duration")]
    pub(crate) connect_timeout: Option<Duration>,
    /// Sections owned by other commands (`[run]`, `[budget]`, …).
    #[serde(flatten)]
    pub(crate) other: toml::Table,
}

impl Config {
    /// Reads and parses `path`; an unreadable or malformed file is a usage error.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read config file {}: {e}", path.display())))?;
        let mut config: Config = toml::from_str(&text)
            .map_err(|e| usage(format!("invalid config file {}: {e}", path.display())))?;
        // Top-level sections and the run's own settings (`domain`, `db`, …)
        // belong to `harvest::config`, which validates them with line
        // numbers; any other top-level value is most likely a typo
        // (`base-url`).
        let run_keys = harvest::config::RUN_KEYS;
        if let Some((name, _)) = config
            .other
            .iter()
            .find(|(k, v)| !v.is_table() && !run_keys.contains(&k.as_str()))
        {
            return Err(usage(format!(
                "invalid config file {}: unknown setting `{name}` (known: base_url, key_file, timeout, connect_timeout, {}, or a [section])",
                path.display(),
                run_keys.join(", ")
            )));
        }
        if let Some(key_file) = &config.key_file {
            if key_file.is_relative() {
                let base = path.parent().unwrap_or(Path::new("."));
                config.key_file = Some(base.join(key_file));
            }
        }
        Ok(config)
    }

    /// The file named by `--config`, or defaults.
    pub(crate) fn load_optional(path: Option<&Path>) -> anyhow::Result<Config> {
        match path {
            Some(p) => Config::load(p).context("loading --config"),
            None => Ok(Config::default()),
        }
    }
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}
