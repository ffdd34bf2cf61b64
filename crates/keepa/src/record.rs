//! Recording what a Keepa server answers, and reading a recording back.
//!
//! A recording is a directory of JSON files, one per answer, named
//! `NNNN-ENDPOINT.json` in the order the answers arrived (`0001-token.json`,
//! `0002-product.json`, …); each holds one [`RecordedAnswer`]: the endpoint,
//! the query without the key, the status, the headers that matter
//! ([`KEPT_HEADERS`]), the body as text and when it arrived. The
//! [`Recorder`] writes them (`keepa::Client` does, when built with
//! `ClientBuilder::record`); [`read_dir`] reads them back in order, for a
//! replay server (`fake_keepa::replay`) or a test.
//!
//! Guarantee: the API key is never written. The query is recorded without
//! its `key` parameter, every recorded text goes through
//! [`ApiKey::redact`], and a file that would still hold the key is refused
//! ([`RecordError::KeyLeak`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::answer::{ApiKey, TIME_SCALE_HEADER};

/// The version of the file format written (the `format` field).
pub const FORMAT: u32 = 1;

/// The response headers a recording keeps (lower case); the rest are
/// transport details. `content-encoding` is absent on purpose: the body is
/// recorded decoded.
pub const KEPT_HEADERS: [&str; 5] = [
    "content-type",
    "date",
    "retry-after",
    "server",
    TIME_SCALE_HEADER,
];

/// Why a recording could not be written or read. Names files, never the key.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Creating, reading or writing a file or the directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file of the directory is not a recorded answer.
    #[error("{path}: not a recorded answer: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The answer still held the key after redaction; nothing was written.
    #[error("{path}: not written: the answer would still hold the API key")]
    KeyLeak {
        /// The file that was not written.
        path: PathBuf,
    },
}

/// One answer as a server sent it (the body decoded from gzip).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedAnswer {
    /// [`FORMAT`] of the writer.
    #[serde(default = "format_one")]
    pub format: u32,
    /// The path under the base URL, without slashes: `product`, `deal`, `token`.
    pub endpoint: String,
    /// `GET` or `POST`.
    #[serde(default = "get")]
    pub method: String,
    /// The URL-encoded query as sent, without the `key` parameter.
    #[serde(default)]
    pub query: String,
    /// The JSON body of a POST (a deal selection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<Value>,
    /// The HTTP status.
    pub status: u16,
    /// The [`KEPT_HEADERS`] the answer had, by lower-case name.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body, as text (Keepa's answers are JSON text).
    #[serde(default)]
    pub body: String,
    /// The body was not UTF-8: `body` is its lossy decoding.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub body_lossy: bool,
    /// When the answer's headers arrived, Unix ms (local clock).
    #[serde(default)]
    pub received_at_ms: i64,
    /// Time from sending to the whole body being read, ms.
    #[serde(default)]
    pub elapsed_ms: u64,
}

fn format_one() -> u32 {
    FORMAT
}

fn get() -> String {
    "GET".to_string()
}

impl RecordedAnswer {
    /// A `GET` answer with `status` and a JSON `body`, as a test or a bare
    /// response file (such as `fixtures/keepa/*.json`) gives it.
    pub fn new(endpoint: &str, status: u16, body: impl Into<String>) -> RecordedAnswer {
        RecordedAnswer {
            format: FORMAT,
            endpoint: endpoint.trim_matches('/').to_string(),
            method: get(),
            query: String::new(),
            request_body: None,
            status,
            headers: BTreeMap::from([(
                "content-type".to_string(),
                "application/json;charset=UTF-8".to_string(),
            )]),
            body: body.into(),
            body_lossy: false,
            received_at_ms: 0,
            elapsed_ms: 0,
        }
    }

    /// The value of a kept header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// This answer with every text redacted for `key` (see the module's
    /// guarantee); a request body that no longer parses is dropped.
    pub fn redacted(mut self, key: &ApiKey) -> RecordedAnswer {
        self.endpoint = key.redact(&self.endpoint);
        self.query = key.redact(&self.query);
        for v in self.headers.values_mut() {
            *v = key.redact(v);
        }
        self.body = key.redact(&self.body);
        self.request_body = self.request_body.take().and_then(|b| {
            let text = key.redact(&b.to_string());
            serde_json::from_str(&text).ok()
        });
        self
    }
}

/// The file name part for an endpoint: letters, digits and `-`, else `_`.
fn slug(endpoint: &str) -> String {
    let s: String = endpoint
        .chars()
        .take(40)
        .map(|c| match c.is_ascii_alphanumeric() || c == '-' {
            true => c.to_ascii_lowercase(),
            false => '_',
        })
        .collect();
    match s.is_empty() {
        true => "root".to_string(),
        false => s,
    }
}

/// The number a recording file starts with (`0012-product.json` → 12).
fn number_of(name: &str) -> Option<u64> {
    let (n, rest) = name.split_once('-')?;
    (rest.ends_with(".json") && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| n.parse().ok())
        .flatten()
}

/// Writes answers into a directory, one numbered file each. Cheap to clone
/// (clones share the numbering); files are written synchronously, each
/// complete under a temporary name first, so a reader never sees half a
/// file.
#[derive(Debug, Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    next: AtomicU64,
}

impl Recorder {
    /// Records into `dir`, creating it if needed. Numbering continues after
    /// the highest-numbered recording already there, so a second run adds
    /// to a directory instead of overwriting it.
    pub fn create(dir: impl Into<PathBuf>) -> Result<Recorder, RecordError> {
        let dir = dir.into();
        let io = |source| RecordError::Io {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut highest = 0;
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            if let Some(n) = entry.file_name().to_str().and_then(number_of) {
                highest = highest.max(n);
            }
        }
        Ok(Recorder {
            inner: Arc::new(Inner {
                next: AtomicU64::new(highest + 1),
                dir,
            }),
        })
    }

    /// The directory recorded into.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Writes `answer`, redacted for `key`, as the next numbered file;
    /// returns its path. Refuses to write a file that would hold the key.
    pub fn write(&self, key: &ApiKey, answer: RecordedAnswer) -> Result<PathBuf, RecordError> {
        let answer = answer.redacted(key);
        let n = self.inner.next.fetch_add(1, Ordering::SeqCst);
        let name = format!("{n:04}-{}.json", slug(&answer.endpoint));
        let path = self.inner.dir.join(name);
        let text = serde_json::to_string_pretty(&answer).map_err(|e| RecordError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if text.contains(key.expose()) {
            return Err(RecordError::KeyLeak { path });
        }
        let tmp = path.with_extension("json.partial");
        let io = |source| RecordError::Io {
            path: path.clone(),
            source,
        };
        std::fs::write(&tmp, format!("{text}\n")).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(path)
    }
}

/// Reads one recorded answer.
pub fn read_file(path: &Path) -> Result<RecordedAnswer, RecordError> {
    let text = std::fs::read_to_string(path).map_err(|source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| RecordError::Invalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Reads every recording of `dir` (the files named `NNNN-….json`), in the
/// order they were recorded; other files are ignored.
pub fn read_dir(dir: &Path) -> Result<Vec<(PathBuf, RecordedAnswer)>, RecordError> {
    let io = |source| RecordError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(n) = number_of(name) {
            files.push((n, name.to_string(), path));
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|(_, _, path)| read_file(&path).map(|a| (path, a)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_number_and_slug() {
        assert_eq!(number_of("0012-product.json"), Some(12));
        assert_eq!(number_of("12345-deal.json"), Some(12345));
        assert_eq!(number_of("0012-product.json.partial"), None);
        assert_eq!(number_of("README.json"), None);
        assert_eq!(number_of("-x.json"), None);
        assert_eq!(slug("product"), "product");
        assert_eq!(slug("a/b?c"), "a_b_c");
        assert_eq!(slug(""), "root");
    }

    #[test]
    fn redaction_reaches_every_text() {
        let key = ApiKey::new("SECRETKEY123").unwrap();
        let mut a = RecordedAnswer::new("product", 400, r#"{"m":"bad key SECRETKEY123"}"#);
        a.query = "domain=1&key=SECRETKEY123&asin=B".into();
        a.headers.insert("server".into(), "x SECRETKEY123".into());
        a.request_body = Some(serde_json::json!({"k": "SECRETKEY123"}));
        let text = serde_json::to_string(&a.redacted(&key)).unwrap();
        assert!(!text.contains("SECRETKEY123"), "{text}");
        assert!(text.contains("domain=1&key=***&asin=B"), "{text}");
    }
}
