//! Top-level keys a caller owns in a file it shares with the run (the
//! command line's `db`, `base_url`, …): accepted by the parse, type-checked,
//! handed back with their places so the caller can refuse a value with a
//! `FILE:LINE:COL` message of the same shape as the run's own.

use std::fmt;
use std::time::Duration;

use super::error::{ConfigError, Location};
use super::parse::Table;

/// The type a caller's key must have (see [`RunConfig::from_toml_str_with`](super::RunConfig::from_toml_str_with)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraKind {
    /// A string.
    Text,
    /// A positive duration written as a string (`"90s"`, `"5m"`, `"12h"`).
    Duration,
}

/// A caller's key's value, of the [`ExtraKind`] asked for.
#[derive(Clone, PartialEq, Eq)]
enum ExtraValue {
    Text(String),
    Duration(Duration),
}

/// The caller's keys found in a file, each with where its value is.
///
/// `Debug` shows the names and places only, never the values: one of them
/// may be an API key.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Extras {
    origin: String,
    found: Vec<(String, Location, ExtraValue)>,
}

impl Extras {
    /// Reads `keys` from the top-level table, checking each one's type.
    pub(super) fn read(
        top: &Table<'_, '_>,
        keys: &[(&str, ExtraKind)],
    ) -> Result<Extras, ConfigError> {
        let mut found = Vec::new();
        for &(key, kind) in keys {
            let Some(v) = top.get(key) else { continue };
            let value = match kind {
                ExtraKind::Text => top
                    .string(key)?
                    .map(|(s, _)| ExtraValue::Text(s.to_string())),
                ExtraKind::Duration => top.duration(key)?.map(ExtraValue::Duration),
            };
            if let Some(value) = value {
                found.push((key.to_string(), top.doc.loc(v.span().start), value));
            }
        }
        Ok(Extras {
            origin: top.doc.origin.to_string(),
            found,
        })
    }

    fn get(&self, key: &str) -> Option<&(String, Location, ExtraValue)> {
        self.found.iter().find(|(k, _, _)| k == key)
    }

    /// The string value of `key`, if the file holds one.
    pub fn text(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some((_, _, ExtraValue::Text(s))) => Some(s),
            _ => None,
        }
    }

    /// The duration value of `key`, if the file holds one.
    pub fn duration(&self, key: &str) -> Option<Duration> {
        match self.get(key) {
            Some((_, _, ExtraValue::Duration(d))) => Some(*d),
            _ => None,
        }
    }

    /// Where the value of `key` is (the file's start if it is absent).
    pub fn location(&self, key: &str) -> Location {
        self.get(key)
            .map_or_else(|| Location::start(&self.origin), |(_, at, _)| at.clone())
    }

    /// A [`ConfigError::BadValue`] at the value of `key`:
    /// `FILE:LINE:COL: key: message`.
    pub fn bad_value(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::BadValue {
            at: self.location(key),
            key: key.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Debug for Extras {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.found.iter().map(|(k, at, _)| (k, at.to_string())))
            .finish()
    }
}
