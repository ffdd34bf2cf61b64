//! `[[alert]]` tables: where a matching deal is announced, in which format,
//! and which deals match.
//!
//! Guarantees: every alert has a unique name, an `http`/`https` URL with a
//! host, a known format, at least one event in `on`, and rules in the
//! pipeline's rule language (any stage's fields); the URL prints only as
//! scheme, host and port (a Slack or Discord webhook's path is its secret).

use std::fmt;
use std::time::Duration;

use toml::de::DeValue;

use super::error::{ConfigError, Suggestion};
use super::parse::Table;
use super::rules::StageRules;
use super::Stage;

/// How an alert's body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertFormat {
    /// The alert object itself, as JSON (see the README for its keys).
    Json,
    /// A Slack incoming-webhook message (`text` with mrkdwn links).
    Slack,
    /// A Discord webhook message (`content` with markdown links).
    Discord,
}

impl AlertFormat {
    /// Every format's name.
    pub const NAMES: [&'static str; 3] = ["json", "slack", "discord"];

    /// The format named `name` (`json`, `slack`, `discord`).
    pub fn parse(name: &str) -> Option<AlertFormat> {
        match name.to_ascii_lowercase().as_str() {
            "json" => Some(AlertFormat::Json),
            "slack" => Some(AlertFormat::Slack),
            "discord" => Some(AlertFormat::Discord),
            _ => None,
        }
    }

    /// The format's name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertFormat::Json => "json",
            AlertFormat::Slack => "slack",
            AlertFormat::Discord => "discord",
        }
    }
}

/// What an alert fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A deal stored for the first time.
    New,
    /// A stored deal seen again at a lower price (its feed's price type).
    PriceDrop,
}

impl AlertKind {
    /// Every kind's name, as written in `on` and stored in the outbox.
    pub const NAMES: [&'static str; 2] = ["new", "price_drop"];

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<AlertKind> {
        match name {
            "new" => Some(AlertKind::New),
            "price_drop" => Some(AlertKind::PriceDrop),
            _ => None,
        }
    }

    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::New => "new",
            AlertKind::PriceDrop => "price_drop",
        }
    }
}

/// A webhook URL. Its `Debug` and `Display` show scheme, host and port
/// only: the path of a Slack or Discord webhook is a credential.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    /// Parses an `http` or `https` URL with a host; the reason when not.
    pub fn parse(text: &str) -> Result<WebhookUrl, String> {
        let u = url::Url::parse(text.trim()).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(format!(
                "the scheme must be http or https, not {:?}",
                u.scheme()
            ));
        }
        if u.host_str().is_none() {
            return Err("the URL needs a host".into());
        }
        Ok(WebhookUrl(u))
    }

    /// The full URL, to send to. Never log it.
    pub fn expose(&self) -> &url::Url {
        &self.0
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}",
            self.0.scheme(),
            self.0.host_str().unwrap_or("")
        )?;
        if let Some(p) = self.0.port() {
            write!(f, ":{p}")?;
        }
        f.write_str("/…")
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({self})")
    }
}

/// One `[[alert]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertConfig {
    /// Its name (`name`, default `alert-N`, N its 1-based position): the
    /// outbox's key, shown in messages and metrics.
    pub name: String,
    /// Where it is POSTed.
    pub url: WebhookUrl,
    /// How the body is written (default `json`).
    pub format: AlertFormat,
    /// The events it fires on (`on`, default `["new"]`), without repeats.
    pub on: Vec<AlertKind>,
    /// All must hold for a deal to match; rules may name any stage's field
    /// (one the step did not fetch is absent, so its rule fails).
    pub rules: StageRules,
}

impl AlertConfig {
    /// Whether it fires on `kind`.
    pub fn fires_on(&self, kind: AlertKind) -> bool {
        self.on.contains(&kind)
    }
}

/// Reads the top level's `[[alert]]` tables (none: an empty list).
pub(super) fn read_alerts(top: &Table<'_, '_>) -> Result<Vec<AlertConfig>, ConfigError> {
    let Some(v) = top.get("alert") else {
        return Ok(Vec::new());
    };
    let DeValue::Array(items) = v.get_ref() else {
        return Err(top.wrong_type("alert", v, "[[alert]] tables"));
    };
    let mut out: Vec<AlertConfig> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let DeValue::Table(map) = item.get_ref() else {
            return Err(top.wrong_type("alert", item, "[[alert]] tables"));
        };
        let t = Table {
            doc: top.doc,
            name: format!("alert.{}", i + 1),
            span: item.span(),
            map,
        };
        let a = read_alert(&t, i + 1)?;
        if out.iter().any(|b| b.name == a.name) {
            let at = t.get("name").map_or(item.span().start, |n| n.span().start);
            return Err(ConfigError::BadValue {
                at: t.doc.loc(at),
                key: t.path("name"),
                message: format!(
                    "another [[alert]] is named {:?}; names must be unique",
                    a.name
                ),
            });
        }
        out.push(a);
    }
    Ok(out)
}

fn read_alert(t: &Table<'_, '_>, position: usize) -> Result<AlertConfig, ConfigError> {
    t.check_keys(&["name", "url", "format", "on", "rules"])?;
    let name = match (t.string("name")?, t.get("name")) {
        (Some((n, _)), Some(v)) if n.trim().is_empty() => {
            return Err(t.bad_value("name", v, "must not be empty"));
        }
        (Some((n, _)), _) => n.trim().to_string(),
        (None, _) => format!("alert-{position}"),
    };
    let (Some((url_text, _)), Some(url_value)) = (t.string("url")?, t.get("url")) else {
        return Err(ConfigError::MissingKey {
            at: t.at(),
            key: "url".into(),
            table: format!("[[alert]] {name:?}"),
            hint: "the webhook to POST to, e.g. url = \"https://hooks.slack.com/services/…\""
                .into(),
        });
    };
    // The message must not echo the URL: it may hold a secret.
    let url = WebhookUrl::parse(url_text).map_err(|m| t.bad_value("url", url_value, m))?;
    let format = match (t.string("format")?, t.get("format")) {
        (Some((f, _)), Some(v)) => AlertFormat::parse(f).ok_or_else(|| {
            t.bad_value(
                "format",
                v,
                format!(
                    "unknown format {f:?}{} (known: json, slack, discord)",
                    Suggestion::closest(f, AlertFormat::NAMES)
                ),
            )
        })?,
        _ => AlertFormat::Json,
    };
    let on = read_on(t)?;
    let rules = super::read_rules(t, Stage::Offers, Duration::ZERO)?;
    Ok(AlertConfig {
        name,
        url,
        format,
        on,
        rules,
    })
}

fn read_on(t: &Table<'_, '_>) -> Result<Vec<AlertKind>, ConfigError> {
    let Some(v) = t.get("on") else {
        return Ok(vec![AlertKind::New]);
    };
    let expected = "a list of events like [\"new\", \"price_drop\"]";
    let items: Vec<_> = match v.get_ref() {
        DeValue::Array(a) => a.iter().collect(),
        DeValue::String(_) => vec![v],
        _ => return Err(t.wrong_type("on", v, expected)),
    };
    let mut on = Vec::new();
    for item in items {
        let DeValue::String(s) = item.get_ref() else {
            return Err(t.wrong_type("on", item, expected));
        };
        let kind = AlertKind::parse(s).ok_or_else(|| {
            t.bad_value(
                "on",
                item,
                format!(
                    "unknown event {s:?}{} (known: new, price_drop)",
                    Suggestion::closest(s, AlertKind::NAMES)
                ),
            )
        })?;
        if !on.contains(&kind) {
            on.push(kind);
        }
    }
    if on.is_empty() {
        return Err(t.bad_value("on", v, "name at least one event: new, price_drop"));
    }
    Ok(on)
}

#[cfg(test)]
mod tests {
    use super::super::RunConfig;
    use super::*;

    fn parse(text: &str) -> Result<Vec<AlertConfig>, ConfigError> {
        RunConfig::from_toml_str(text, "a.toml").map(|c| c.alerts)
    }

    #[test]
    fn alerts_parse_with_defaults_and_rules() {
        let a = parse(
            r#"
[[alert]]
url = "https://hooks.slack.com/services/T0/B0/secret"
format = "slack"
on = ["new", "price_drop"]
rules = ["delta_percent.used.day >= 40", "stats.monthly_sold > 5"]

[[alert]]
name = "mine"
url = "http://127.0.0.1:9/hook"
"#,
        )
        .unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].name, "alert-1");
        assert_eq!(a[0].format, AlertFormat::Slack);
        assert_eq!(a[0].on, vec![AlertKind::New, AlertKind::PriceDrop]);
        assert_eq!(a[0].rules.rules.len(), 2);
        assert_eq!(a[1].name, "mine");
        assert_eq!(a[1].format, AlertFormat::Json);
        assert_eq!(a[1].on, vec![AlertKind::New]);
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn the_url_never_prints_its_path() {
        let u = WebhookUrl::parse("https://hooks.slack.com/services/T0/B0/secret").unwrap();
        assert_eq!(u.to_string(), "https://hooks.slack.com/…");
        assert!(!format!("{u:?}").contains("secret"));
    }

    #[test]
    fn bad_alerts_name_the_place_and_the_problem() {
        let cases = [
            ("[[alert]]\nformat = \"json\"\n", "a.toml:1:1", "url"),
            ("[[alert]]\nurl = \"ftp://x/secret\"\n", "a.toml:2:7", "http or https"),
            ("[[alert]]\nurl = \"http://x\"\nformat = \"slak\"\n", "a.toml:3:10", "\"slack\""),
            ("[[alert]]\nurl = \"http://x\"\non = [\"nwe\"]\n", "a.toml:3:7", "\"new\""),
            ("[[alert]]\nurl = \"http://x\"\non = []\n", "a.toml:3:6", "at least one"),
            ("[[alert]]\nurl = \"http://x\"\nrules = [\"current.usd < 3\"]\n", "a.toml:3:11", "current.used"),
            ("[[alert]]\nurl = \"http://x\"\nurl2 = 1\n", "a.toml:3:1", "unknown key"),
            ("[[alert]]\nname = \"a\"\nurl = \"http://x\"\n[[alert]]\nname = \"a\"\nurl = \"http://y\"\n", "a.toml:5:8", "unique"),
            ("alert = 3\n", "a.toml:1:9", "[[alert]]"),
        ];
        for (text, at, needle) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with(at), "{text:?}: {e}");
            assert!(e.contains(needle), "{text:?}: {e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }
}
