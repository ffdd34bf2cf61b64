//! The `--config` TOML file, read and parsed once: the run's settings and
//! sections (`domain`, `[selection]`, …) by `harvest::config`, and this
//! binary's own top-level keys, handed back by the same parse, here. A
//! typo or a bad value anywhere is `FILE:LINE:COL` with the closest valid
//! name, whichever command reads the file.
//!
//! ```toml
//! base_url = "http://127.0.0.1:8080"
//! key_file = "/run/secrets/keepa"   # relative: to the config file
//! timeout = "60s"
//! connect_timeout = "5s"
//! db = "keepa-harvest.db"           # or postgres://…
//! ledger = "memory"                 # or redis://…
//! metrics_addr = "9100"             # or "127.0.0.1:9100"
//! # key = "…"                       # better: KEEPA_API_KEY or key_file
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harvest::config::{ConfigError, ExtraKind, Extras, RunConfig};
use keepa::client::ApiKey;

use crate::exit::usage;

/// The top-level keys this binary owns in the file, and their types.
const CLI_KEYS: &[(&str, ExtraKind)] = &[
    ("base_url", ExtraKind::Text),
    ("key_file", ExtraKind::Text),
    ("timeout", ExtraKind::Duration),
    ("connect_timeout", ExtraKind::Duration),
    ("key", ExtraKind::Text),
    ("db", ExtraKind::Text),
    ("ledger", ExtraKind::Text),
    ("metrics_addr", ExtraKind::Text),
];

/// What the config file holds, validated; without `--config`, the
/// built-in run configuration and nothing else. `Debug` prints the key as
/// `***`.
#[derive(Debug, Clone)]
pub(crate) struct FileConfig {
    /// The harvest's own settings.
    pub(crate) run: RunConfig,
    /// Keepa server.
    pub(crate) base_url: Option<String>,
    /// File holding the API key (a relative path is made relative to the
    /// config file by [`FileConfig::load`]).
    pub(crate) key_file: Option<PathBuf>,
    /// Total timeout of one HTTP call.
    pub(crate) timeout: Option<Duration>,
    /// Connect timeout.
    pub(crate) connect_timeout: Option<Duration>,
    /// The API key itself.
    pub(crate) key: Option<ApiKey>,
    /// Store: a SQLite path or a `postgres://` URL.
    pub(crate) db: Option<String>,
    /// Ledger: `memory` or a `redis://` URL.
    pub(crate) ledger: Option<String>,
    /// Where to serve Prometheus metrics.
    pub(crate) metrics_addr: Option<SocketAddr>,
}

impl FileConfig {
    /// The built-in configuration, as without `--config`.
    pub(crate) fn built_in() -> FileConfig {
        FileConfig::of(RunConfig::default_config())
    }

    fn of(run: RunConfig) -> FileConfig {
        FileConfig {
            run,
            base_url: None,
            key_file: None,
            timeout: None,
            connect_timeout: None,
            key: None,
            db: None,
            ledger: None,
            metrics_addr: None,
        }
    }

    /// The file named by `--config`, or the built-in configuration.
    pub(crate) fn load_optional(path: Option<&Path>) -> anyhow::Result<FileConfig> {
        path.map_or_else(|| Ok(FileConfig::built_in()), FileConfig::load)
    }

    /// Reads and parses `path`; an unreadable file or a bad setting is a
    /// usage error. Warns when the file holds a key and is readable by
    /// group or others.
    pub(crate) fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read config file {}: {e}", path.display())))?;
        let origin = path.display().to_string();
        let mut config =
            FileConfig::from_toml_str(&text, &origin).map_err(|e| usage(e.to_string()))?;
        if let Some(key_file) = &config.key_file {
            if key_file.is_relative() {
                let base = path.parent().unwrap_or(Path::new("."));
                config.key_file = Some(base.join(key_file));
            }
        }
        if let Some(mode) = file_mode(path) {
            if key_file_too_open(mode, config.key.is_some()) {
                tracing::warn!(
                    path = %origin,
                    mode = format_args!("{:o}", mode & 0o777),
                    "the config file holds an API key and is readable by other users; run `chmod 600 {origin}` or use KEEPA_API_KEY"
                );
            }
        }
        Ok(config)
    }

    /// Parses `text` (`origin` names it in messages): one parse for the
    /// run's settings and this binary's keys.
    pub(crate) fn from_toml_str(text: &str, origin: &str) -> Result<FileConfig, ConfigError> {
        let (run, extras) = RunConfig::from_toml_str_with(text, origin, CLI_KEYS)?;
        let mut config = FileConfig::of(run);
        config.base_url = extras.text("base_url").map(str::to_string);
        config.key_file = extras.text("key_file").map(PathBuf::from);
        config.timeout = extras.duration("timeout");
        config.connect_timeout = extras.duration("connect_timeout");
        config.key = read_key(&extras)?;
        config.db = read_db(&extras)?;
        config.ledger = read_ledger(&extras)?;
        config.metrics_addr = extras
            .text("metrics_addr")
            .map(|s| {
                harvest::metrics::parse_addr(s).map_err(|m| extras.bad_value("metrics_addr", m))
            })
            .transpose()?;
        Ok(config)
    }
}

/// `key`: a valid key, never repeated in an error.
fn read_key(extras: &Extras) -> Result<Option<ApiKey>, ConfigError> {
    extras
        .text("key")
        .map(|k| ApiKey::new(k).map_err(|e| extras.bad_value("key", e.to_string())))
        .transpose()
}

/// `db`: not empty.
fn read_db(extras: &Extras) -> Result<Option<String>, ConfigError> {
    match extras.text("db") {
        Some(s) if s.trim().is_empty() => Err(extras.bad_value("db", "must not be empty")),
        other => Ok(other.map(str::to_string)),
    }
}

/// `ledger`: `memory` or a Redis URL.
fn read_ledger(extras: &Extras) -> Result<Option<String>, ConfigError> {
    match extras.text("ledger") {
        None => Ok(None),
        Some(s) if s == "memory" || s.starts_with("redis://") || s.starts_with("rediss://") => {
            Ok(Some(s.to_string()))
        }
        Some(s) => Err(extras.bad_value(
            "ledger",
            format!("{s:?}: must be \"memory\" or a redis:// URL"),
        )),
    }
}

/// Whether a config file with permission bits `mode` is too open to hold a
/// key: it holds one (`has_key`) and group or others may read it.
fn key_file_too_open(mode: u32, has_key: bool) -> bool {
    has_key && mode & 0o044 != 0
}

#[cfg(unix)]
fn file_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).ok().map(|m| m.permissions().mode())
}

#[cfg(not(unix))]
fn file_mode(_path: &Path) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests;
