//! Configuration errors: each names `origin:line:col` and what is wrong;
//! an unknown name comes with the closest known one.

use std::fmt;

/// A place in a config file: `origin:line:col`, both 1-based, the column
/// counted in characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file name as given (or `<default config>`).
    pub origin: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Location {
    /// Line 1, column 1 of `origin`.
    pub fn start(origin: &str) -> Location {
        Location {
            origin: origin.to_string(),
            line: 1,
            column: 1,
        }
    }

    /// The location of byte `offset` in `text` (clamped to the text and to
    /// a character boundary, so any offset is safe).
    pub fn of_offset(origin: &str, text: &str, offset: usize) -> Location {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = text[line_start..offset].chars().count() + 1;
        Location {
            origin: origin.to_string(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.origin, self.line, self.column)
    }
}

/// An optional "did you mean" hint; displays as `; did you mean "x"?` or
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Suggestion(pub Option<String>);

impl Suggestion {
    /// The known name closest to `given` by edit distance, if close enough
    /// to be a plausible typo.
    pub fn closest<'a>(given: &str, known: impl IntoIterator<Item = &'a str>) -> Suggestion {
        let given_l = given.to_ascii_lowercase();
        let len = given.chars().count();
        let limit = (len / 3).max(2);
        // The distance is at least the difference in length: a name that
        // differs by more than the limit is skipped unmeasured, so a huge
        // bogus key costs no more than its length.
        let best = known
            .into_iter()
            .filter(|k| k.chars().count().abs_diff(len) <= limit)
            .map(|k| (edit_distance(&given_l, &k.to_ascii_lowercase()), k))
            .min_by_key(|(d, _)| *d);
        Suggestion(
            best.filter(|(d, _)| *d <= limit)
                .map(|(_, k)| k.to_string()),
        )
    }
}

impl fmt::Display for Suggestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(s) => write!(f, "; did you mean {s:?}?"),
            None => Ok(()),
        }
    }
}

/// Levenshtein distance in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Why a run configuration was refused. Every variant but [`ConfigError::Io`]
/// carries the [`Location`] of the offending text; no message ever contains
/// the API key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read the config file: {source}")]
    Io {
        /// The path as given.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// Not valid TOML.
    #[error("{at}: invalid TOML: {message}")]
    Syntax {
        /// Where the parser stopped.
        at: Location,
        /// The parser's message (first line).
        message: String,
    },
    /// A key the table does not have.
    #[error("{at}: unknown key {key:?} in {table}{suggestion}")]
    UnknownKey {
        /// Where the key is.
        at: Location,
        /// The key as written.
        key: String,
        /// `the top level`, `[pipeline.deal_filter]`, …
        table: String,
        /// The closest known key.
        suggestion: Suggestion,
    },
    /// A required key is missing.
    #[error("{at}: missing {key:?} in {table}: {hint}")]
    MissingKey {
        /// The table's position.
        at: Location,
        /// The key.
        key: String,
        /// The table.
        table: String,
        /// What to write.
        hint: String,
    },
    /// A value of the wrong TOML type.
    #[error("{at}: {key} must be {expected}, found {found}")]
    WrongType {
        /// Where the value is.
        at: Location,
        /// The key (dotted path).
        key: String,
        /// What was expected (`an integer`, `a string like "5m"`, …).
        expected: String,
        /// The TOML type found.
        found: String,
    },
    /// A value of the right type that breaks a rule (bad duration, offers
    /// outside 20–100, unknown domain, …).
    #[error("{at}: {key}: {message}")]
    BadValue {
        /// Where the value is.
        at: Location,
        /// The key (dotted path).
        key: String,
        /// The rule it breaks.
        message: String,
    },
    /// An unknown budget policy name.
    #[error(
        "{at}: unknown policy {name:?}{suggestion} (known: flow, controlled-deficit, wait-for-max)"
    )]
    UnknownPolicy {
        /// Where the name is.
        at: Location,
        /// The name as written.
        name: String,
        /// The closest known policy.
        suggestion: Suggestion,
    },
    /// A rule names a field no stage provides.
    #[error("{at}: unknown field {field:?} in rule{suggestion}")]
    UnknownField {
        /// Where the field name is.
        at: Location,
        /// The name as written.
        field: String,
        /// The closest known field.
        suggestion: Suggestion,
    },
    /// A rule uses a field only a later stage provides.
    #[error("{at}: field {field:?} is only known at the {field_stage} stage, which runs after {stage}; move the rule to [pipeline.{field_stage}]")]
    LaterStageField {
        /// Where the field name is.
        at: Location,
        /// The field.
        field: String,
        /// The stage the rule is in.
        stage: String,
        /// The stage that provides the field.
        field_stage: String,
    },
    /// A rule that cannot be read (unknown operator, missing or
    /// ill-typed value, `between` without two values, …).
    #[error("{at}: bad rule {rule:?}: {message}")]
    BadRule {
        /// Where the rule (or the offending part) is.
        at: Location,
        /// The rule as written.
        rule: String,
        /// What is wrong.
        message: String,
    },
    /// The `[selection]` fails the deal request's own validation.
    #[error("{at}: invalid [selection]: {source}")]
    InvalidSelection {
        /// The offending key, or the `[selection]` header.
        at: Location,
        /// The request builder's verdict.
        source: keepa::ValidationError,
    },
}

impl ConfigError {
    /// Where the error is, if it is in the file's text.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Syntax { at, .. }
            | ConfigError::UnknownKey { at, .. }
            | ConfigError::MissingKey { at, .. }
            | ConfigError::WrongType { at, .. }
            | ConfigError::BadValue { at, .. }
            | ConfigError::UnknownPolicy { at, .. }
            | ConfigError::UnknownField { at, .. }
            | ConfigError::LaterStageField { at, .. }
            | ConfigError::BadRule { at, .. }
            | ConfigError::InvalidSelection { at, .. } => Some(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_line_and_column() {
        let text = "a = 1\nbb = \"é\"\n";
        assert_eq!(Location::of_offset("f", text, 0).to_string(), "f:1:1");
        assert_eq!(Location::of_offset("f", text, 6).to_string(), "f:2:1");
        assert_eq!(Location::of_offset("f", text, 11).to_string(), "f:2:6");
        // inside a multi-byte character and past the end: clamped, no panic
        assert_eq!(Location::of_offset("f", text, 12).to_string(), "f:2:7");
        assert_eq!(Location::of_offset("f", text, 13).to_string(), "f:2:7");
        assert_eq!(Location::of_offset("f", text, 999).line, 3);
    }

    #[test]
    fn suggestions_only_for_plausible_typos() {
        let known = ["current.used", "current.new"];
        assert_eq!(
            Suggestion::closest("curent.used", known).0.as_deref(),
            Some("current.used")
        );
        assert_eq!(Suggestion::closest("zzzzzzzz", known).0, None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        // A huge bogus name is not measured against every known name
        // (edit distance is quadratic): skipped by length, same answer.
        let long = "x".repeat(100_000);
        assert_eq!(Suggestion::closest(&long, known).0, None);
        assert_eq!(
            Suggestion::closest("current.usd", known).0.as_deref(),
            Some("current.used")
        );
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
