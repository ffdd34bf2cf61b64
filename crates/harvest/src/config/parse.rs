//! A span-keeping reader over `toml`'s [`DeTable`]: every value it hands
//! out comes with its location, every key is checked against the table's
//! known keys.

use std::ops::Range;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::error::{ConfigError, Location, Suggestion};

/// The text being read and its name for messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Doc<'a> {
    pub(crate) origin: &'a str,
    pub(crate) text: &'a str,
}

impl<'a> Doc<'a> {
    pub(crate) fn loc(&self, offset: usize) -> Location {
        Location::of_offset(self.origin, self.text, offset)
    }

    /// Maps offsets inside the value of the string at `span` to file
    /// locations; falls back to the string's start when the source holds
    /// escapes or is a multi-line string (offsets would not line up).
    pub(crate) fn string_locator(
        &self,
        span: Range<usize>,
        value: &str,
    ) -> impl Fn(usize) -> Location + 'a {
        let doc = *self;
        let raw = self.text.get(span.clone()).unwrap_or("");
        let direct = raw.len() == value.len() + 2
            && (raw.starts_with('"') || raw.starts_with('\''))
            && raw.get(1..raw.len() - 1) == Some(value);
        let start = span.start;
        move |off: usize| {
            if direct {
                doc.loc(start + 1 + off)
            } else {
                doc.loc(start)
            }
        }
    }
}

/// A TOML value with its span.
pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// One table of the document and its dotted name (`""` at the top).
pub(crate) struct Table<'t, 'i> {
    pub(crate) doc: Doc<'t>,
    pub(crate) name: String,
    pub(crate) span: Range<usize>,
    pub(crate) map: &'t DeTable<'i>,
}

impl<'t, 'i> Table<'t, 'i> {
    /// `[name]`, or `the top level`.
    pub(crate) fn display_name(&self) -> String {
        if self.name.is_empty() {
            "the top level".to_string()
        } else {
            format!("[{}]", self.name)
        }
    }

    /// The dotted path of `key` in this table.
    pub(crate) fn path(&self, key: &str) -> String {
        if self.name.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.name)
        }
    }

    /// Where the table starts (its header, or the start of the file).
    pub(crate) fn at(&self) -> Location {
        self.doc.loc(self.span.start)
    }

    /// Keys in the order they appear in the file, with their spans.
    pub(crate) fn keys(&self) -> Vec<(&'t str, Range<usize>)> {
        let mut keys: Vec<_> = self
            .map
            .iter()
            .map(|(k, _)| (k.get_ref().as_ref(), k.span()))
            .collect();
        keys.sort_by_key(|(_, s)| s.start);
        keys
    }

    /// Refuses the first key (in file order) not in `allowed`.
    pub(crate) fn check_keys(&self, allowed: &[&str]) -> Result<(), ConfigError> {
        for (key, span) in self.keys() {
            if !allowed.contains(&key) {
                return Err(ConfigError::UnknownKey {
                    at: self.doc.loc(span.start),
                    key: key.to_string(),
                    table: self.display_name(),
                    suggestion: Suggestion::closest(key, allowed.iter().copied()),
                });
            }
        }
        Ok(())
    }

    /// The value of `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&'t Value<'i>> {
        self.map.get(key)
    }

    pub(crate) fn wrong_type(&self, key: &str, v: &Value<'_>, expected: &str) -> ConfigError {
        ConfigError::WrongType {
            at: self.doc.loc(v.span().start),
            key: self.path(key),
            expected: expected.to_string(),
            found: type_name(v.get_ref()).to_string(),
        }
    }

    pub(crate) fn bad_value(
        &self,
        key: &str,
        v: &Value<'_>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::BadValue {
            at: self.doc.loc(v.span().start),
            key: self.path(key),
            message: message.into(),
        }
    }

    /// A sub-table.
    pub(crate) fn table(&self, key: &str) -> Result<Option<Table<'t, 'i>>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::Table(map) => Ok(Some(Table {
                    doc: self.doc,
                    name: self.path(key),
                    span: v.span(),
                    map,
                })),
                _ => Err(self.wrong_type(key, v, "a table")),
            },
        }
    }

    /// A string and its span.
    pub(crate) fn string(&self, key: &str) -> Result<Option<(&'t str, Range<usize>)>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::String(s) => Ok(Some((s.as_ref(), v.span()))),
                _ => Err(self.wrong_type(key, v, "a string")),
            },
        }
    }

    /// A boolean.
    pub(crate) fn boolean(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .get_ref()
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.wrong_type(key, v, "true or false")),
        }
    }

    /// An integer within `range`.
    pub(crate) fn int_in(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, ConfigError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let n = int_of(v.get_ref()).ok_or_else(|| self.wrong_type(key, v, "an integer"))?;
        if !range.contains(&n) {
            return Err(self.bad_value(
                key,
                v,
                format!(
                    "{n} is out of range: must be between {} and {}",
                    range.start(),
                    range.end()
                ),
            ));
        }
        Ok(Some(n))
    }

    /// A positive duration written as a string (`"90s"`, `"5m"`, `"12h"`, `"7d"`).
    pub(crate) fn duration(&self, key: &str) -> Result<Option<Duration>, ConfigError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let DeValue::String(s) = v.get_ref() else {
            return Err(self.wrong_type(
                key,
                v,
                "a duration string like \"5m\", \"12h\" or \"7d\"",
            ));
        };
        let d = humantime::parse_duration(s.trim()).map_err(|e| {
            self.bad_value(
                key,
                v,
                format!(
                    "{s:?} is not a duration ({e}); write e.g. \"90s\", \"5m\", \"12h\", \"7d\""
                ),
            )
        })?;
        if d.is_zero() {
            return Err(self.bad_value(key, v, "must be longer than zero"));
        }
        Ok(Some(d))
    }
}

/// The integer value of a TOML integer (any radix), if it fits in `i64`.
pub(crate) fn int_of(v: &DeValue<'_>) -> Option<i64> {
    let i = v.as_integer()?;
    i64::from_str_radix(i.as_str(), i.radix()).ok()
}

/// A TOML type name for messages.
pub(crate) fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Converts a TOML value to JSON (for the deal selection). Datetimes and
/// non-finite floats have no JSON form: the span of the first one is the error.
pub(crate) fn to_json(v: &Value<'_>) -> Result<serde_json::Value, Range<usize>> {
    use serde_json::Value as J;
    Ok(match v.get_ref() {
        DeValue::String(s) => J::String(s.to_string()),
        DeValue::Integer(_) => match int_of(v.get_ref()) {
            Some(n) => J::from(n),
            None => return Err(v.span()),
        },
        DeValue::Float(f) => {
            let x: f64 = f.as_str().replace('_', "").parse().map_err(|_| v.span())?;
            J::Number(serde_json::Number::from_f64(x).ok_or(v.span())?)
        }
        DeValue::Boolean(b) => J::Bool(*b),
        DeValue::Datetime(_) => return Err(v.span()),
        DeValue::Array(a) => J::Array(a.iter().map(to_json).collect::<Result<_, _>>()?),
        DeValue::Table(t) => {
            let mut m = serde_json::Map::new();
            for (k, v) in t.iter() {
                m.insert(k.get_ref().to_string(), to_json(v)?);
            }
            J::Object(m)
        }
    })
}
