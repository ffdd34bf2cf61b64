//! What an alert says: the match of a deal against the `[[alert]]`
//! tables ([`matches`]) with its JSON object, and the body each format
//! sends ([`body`]).
//!
//! Guarantees: the object holds the deal's own fields, the rule fields a
//! buyer decides on, and links to Amazon and Keepa; never the API key or
//! a webhook URL. Rendering never panics, whatever the stored payload holds.

use serde_json::{json, Map, Value};

use crate::config::{AlertConfig, AlertFormat, FieldValue, Fields};
use crate::store::{feed_price, AlertMatch, DealRow};

/// The rule fields copied into an alert's `fields` object, when known.
pub const BUYER_FIELDS: &[&str] = &[
    "current.amazon",
    "current.new",
    "current.used",
    "current.buy_box",
    "sales_rank",
    "delta_percent.amazon.day",
    "delta_percent.new.day",
    "delta_percent.used.day",
    "delta_percent.buy_box.day",
    "delta_percent.used.month",
    "delta_percent.new.month",
    "stats.avg90.new",
    "stats.avg90.used",
    "stats.avg90.buy_box",
    "stats.sales_rank_drops30",
    "stats.sales_rank_drops90",
    "stats.offer_count.new",
    "stats.offer_count.used",
    "stats.monthly_sold",
    "offers.lowest_used",
    "offers.lowest_new",
    "offers.lowest_used_condition",
];

/// The `[[alert]]` tables whose rules `fields` satisfy, as matches of
/// `row` (the commit decides whether each becomes a `new` or a
/// `price_drop` alert, or none).
pub fn matches(alerts: &[AlertConfig], row: &DealRow, fields: &Fields) -> Vec<AlertMatch> {
    alerts
        .iter()
        .filter(|a| a.rules.check(fields).is_ok())
        .map(|a| AlertMatch {
            alert: a.name.clone(),
            domain: row.domain,
            asin: row.asin.clone(),
            on: a.on.clone(),
            payload: object(&a.name, row, fields),
        })
        .collect()
}

/// The marketplace's domain suffix (`com`, `co.uk`, …), `com` if unknown.
fn suffix(domain: u8) -> &'static str {
    keepa::Domain::try_from(domain).map_or("com", |d| d.suffix())
}

/// The alert object of `row` for the alert named `alert`.
pub fn object(alert: &str, row: &DealRow, fields: &Fields) -> Value {
    let mut f = Map::new();
    for name in BUYER_FIELDS {
        match fields.get(name) {
            Some(FieldValue::Int(v)) => f.insert((*name).into(), json!(v)),
            Some(FieldValue::Text(t)) => f.insert((*name).into(), json!(t)),
            None => None,
        };
    }
    json!({
        "alert": alert,
        "asin": row.asin,
        "domain": row.domain,
        "marketplace": format!("amazon.{}", suffix(row.domain)),
        "title": row.title,
        "price_type": row.price_type,
        "price": feed_price(row),
        "sales_rank": row.sales_rank,
        "delta_percent_day": row.delta_percent_day,
        "delta_percent_month": row.delta_percent_month,
        "seen_at_ms": row.seen_at_ms,
        "links": {
            "amazon": format!("https://www.amazon.{}/dp/{}", suffix(row.domain), row.asin),
            "keepa": format!("https://keepa.com/#!product/{}-{}", row.domain, row.asin),
        },
        "fields": f,
    })
}

/// A sample object for `keepa-harvest alert test`.
pub fn sample(alert: &AlertConfig) -> Value {
    let row = DealRow {
        asin: "B000000000".into(),
        domain: 1,
        title: Some("keepa-harvest test alert (not a real deal)".into()),
        price_type: 2,
        current_used: Some(1234),
        sales_rank: Some(4321),
        delta_percent_day: Some(45),
        seen_at_ms: keepa::clock::wall_unix_ms(),
        ..Default::default()
    };
    let mut o = object(&alert.name, &row, &Fields::new());
    if let Some(m) = o.as_object_mut() {
        m.insert("kind".into(), "test".into());
        m.insert("key".into(), format!("{}:test", alert.name).into());
    }
    o
}

/// The body POSTed for a stored payload in `format`: `json` sends the
/// object itself; `slack` and `discord` one line of markdown with links.
pub fn body(format: AlertFormat, payload: &Value) -> Value {
    match format {
        AlertFormat::Json => payload.clone(),
        AlertFormat::Slack => json!({ "text": line(payload, Markup::Slack) }),
        AlertFormat::Discord => json!({ "content": line(payload, Markup::Discord) }),
    }
}

#[derive(Clone, Copy)]
enum Markup {
    Slack,
    Discord,
}

/// Money in the marketplace's unit: cents as `12.34` (yen as `1234`).
fn money(cents: i64, domain: u8) -> String {
    let (code, decimals) = match domain {
        2 => ("GBP", true),
        3 | 4 | 8 | 9 => ("EUR", true),
        5 => ("JPY", false),
        6 => ("CAD", true),
        10 => ("INR", true),
        11 => ("MXN", true),
        12 => ("BRL", true),
        _ => ("USD", true),
    };
    if decimals {
        let sign = if cents < 0 { "-" } else { "" };
        let c = cents.unsigned_abs();
        format!("{sign}{}.{:02} {code}", c / 100, c % 100)
    } else {
        format!("{cents} {code}")
    }
}

/// Strips what would break a markdown link label and bounds its length.
fn label(title: &str) -> String {
    let clean: String = title
        .chars()
        .filter(|c| !matches!(c, '<' | '>' | '|' | '[' | ']' | '*' | '_' | '`'))
        .take(150)
        .collect();
    if clean.trim().is_empty() {
        "(no title)".into()
    } else {
        clean
    }
}

fn line(p: &Value, markup: Markup) -> String {
    let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
    let int = |k: &str| p.get(k).and_then(Value::as_i64);
    let domain = int("domain")
        .and_then(|d| u8::try_from(d).ok())
        .unwrap_or(1);
    let kind = match text("kind") {
        "new" => "New deal",
        "price_drop" => "Price drop",
        "test" => "Test alert",
        _ => "Deal",
    };
    let title = label(text("title"));
    let links = p.get("links");
    let link = |k: &str| {
        links
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let (amazon, keepa) = (link("amazon"), link("keepa"));
    let mut parts = Vec::new();
    if let Some(price) = int("price") {
        match int("previous_price") {
            Some(old) => parts.push(format!(
                "{} (was {})",
                money(price, domain),
                money(old, domain)
            )),
            None => parts.push(money(price, domain)),
        }
    }
    if let Some(d) = int("delta_percent_day") {
        parts.push(format!("−{d}% today"));
    }
    if let Some(r) = int("sales_rank") {
        parts.push(format!("rank {r}"));
    }
    let details = parts.join(", ");
    match markup {
        Markup::Slack => format!(
            "*{kind}* ({alert}): <{amazon}|{title}> {details} · <{keepa}|Keepa>",
            alert = label(text("alert"))
        ),
        Markup::Discord => format!(
            "**{kind}** ({alert}): [{title}](<{amazon}>) {details} · [Keepa](<{keepa}>)",
            alert = label(text("alert"))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RunConfig;

    fn alerts(rules: &str) -> Vec<AlertConfig> {
        RunConfig::from_toml_str(
            &format!(
                "[[alert]]\nname = \"drops\"\nurl = \"http://127.0.0.1:1/x\"\nrules = [{rules}]\n"
            ),
            "t.toml",
        )
        .unwrap()
        .alerts
    }

    fn deal() -> (DealRow, Fields) {
        let row = DealRow {
            asin: "B00TEST".into(),
            domain: 3,
            title: Some("A <b>book</b>".into()),
            price_type: 2,
            current_used: Some(1999),
            sales_rank: Some(777),
            delta_percent_day: Some(45),
            seen_at_ms: 5,
            ..Default::default()
        };
        let mut f = Fields::new();
        f.insert("delta_percent.used.day", FieldValue::Int(45));
        f.insert("current.used", FieldValue::Int(1999));
        (row, f)
    }

    #[test]
    fn rules_decide_the_match() {
        let (row, f) = deal();
        assert_eq!(
            matches(&alerts("\"delta_percent.used.day >= 40\""), &row, &f).len(),
            1
        );
        assert!(matches(&alerts("\"delta_percent.used.day >= 50\""), &row, &f).is_empty());
        // A field the step did not fetch is absent: its rule fails.
        assert!(matches(&alerts("\"stats.monthly_sold > 1\""), &row, &f).is_empty());
        assert_eq!(
            matches(&alerts(""), &row, &f).len(),
            1,
            "no rules: every deal"
        );
    }

    #[test]
    fn the_object_has_links_and_buyer_fields() {
        let (row, f) = deal();
        let o = object("drops", &row, &f);
        assert_eq!(o["links"]["amazon"], "https://www.amazon.de/dp/B00TEST");
        assert_eq!(o["links"]["keepa"], "https://keepa.com/#!product/3-B00TEST");
        assert_eq!(o["price"], 1999);
        assert_eq!(o["fields"]["delta_percent.used.day"], 45);
        assert_eq!(o["marketplace"], "amazon.de");
    }

    #[test]
    fn slack_and_discord_bodies_carry_links_and_prices() {
        let (row, f) = deal();
        let mut o = object("drops", &row, &f);
        o["kind"] = "price_drop".into();
        o["previous_price"] = 2999.into();
        let s = body(AlertFormat::Slack, &o)["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            s.starts_with("*Price drop* (drops): <https://www.amazon.de/dp/B00TEST|A bbook/b>"),
            "{s}"
        );
        assert!(s.contains("19.99 EUR (was 29.99 EUR)"), "{s}");
        assert!(
            s.contains("<https://keepa.com/#!product/3-B00TEST|Keepa>"),
            "{s}"
        );
        let d = body(AlertFormat::Discord, &o)["content"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            d.starts_with(
                "**Price drop** (drops): [A bbook/b](<https://www.amazon.de/dp/B00TEST>)"
            ),
            "{d}"
        );
        assert_eq!(body(AlertFormat::Json, &o), o);
    }

    #[test]
    fn any_stored_payload_renders_without_panic() {
        for p in [
            json!(null),
            json!([1]),
            json!({"price": "x", "links": 3, "domain": -1}),
        ] {
            assert!(body(AlertFormat::Slack, &p)["text"].is_string());
            assert!(body(AlertFormat::Discord, &p)["content"].is_string());
        }
        assert_eq!(money(-5, 1), "-0.05 USD");
        assert_eq!(money(1234, 5), "1234 JPY");
    }
}
