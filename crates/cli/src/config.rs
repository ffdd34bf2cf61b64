//! The `--config` TOML file. Flags override it. The whole file, the run's
//! own settings and sections (`domain`, `[selection]`, …) included, is
//! validated by `harvest::config` first; this module reads the command
//! line's keys only.
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
}

impl Config {
    /// Reads and parses `path`; an unreadable or malformed file is a usage error.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read config file {}: {e}", path.display())))?;
        // One file for the command line and the run: `harvest::config`
        // checks every key and value first, so a typo or a bad value is
        // reported as `FILE:LINE:COL` with the closest valid name, whichever
        // command reads the file.
        harvest::config::RunConfig::from_toml_str(&text, &path.display().to_string())
            .map_err(|e| usage(e.to_string()))?;
        let mut config: Config = toml::from_str(&text)
            .map_err(|e| usage(format!("invalid config file {}: {e}", path.display())))?;
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
