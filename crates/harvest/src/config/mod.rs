//! The run configuration and the pipeline rules, read from TOML.
//!
//! Guarantees:
//! - [`RunConfig::from_toml_str`] accepts a file only if every key is known,
//!   every value has its type and range, every rule names a field of its
//!   stage or an earlier one, and the `[selection]` passes the deal
//!   request's own validation; otherwise the [`ConfigError`] names
//!   `origin:line:col` and, for an unknown name, the closest known one.
//! - It never panics, whatever the input.
//! - A file shared with a caller (the command line's keys beside the
//!   run's) is read once, by [`RunConfig::from_toml_str_with`]: the caller
//!   names its own top-level keys and gets their values back ([`Extras`]),
//!   so its typos and bad values get the same `origin:line:col` messages.
//!
//! # Format
//! See [`DEFAULT_CONFIG_TOML`] for a complete, commented example. In short:
//! - top level: `domain` (`"com"`, `"co.uk"`, … or an id 1–12; default
//!   `com`), `keep_raw_deals` (store each deal's JSON as sent; default
//!   false), `keep_history` (store each fetched product's csv histories,
//!   for `export --history`; default false); a caller's own keys, when it
//!   names them.
//! - `[selection]`: Keepa's `/deal` selection with Keepa's names;
//!   `domainId` comes from `domain`, `page` and `sortType` are chosen by
//!   the jobs. Absent: the built-in books selection (amazon.com only).
//! - `[pipeline.deal_filter]`, `[pipeline.product_stats]`,
//!   `[pipeline.product_offers]`: each optional, each with `rules` (strings
//!   `"FIELD OP VALUE"` or tables `{ field = …, op = …, value = … }`),
//!   `rejection_ttl`, and `enabled = false` to switch a stage off; stats
//!   adds `stats_days`, `fresh_for`; offers adds `offers` (20–100),
//!   `fresh_for`; both product stages take `max_age` ([`MaxAge`]). Absent `[pipeline]`: the built-in pipeline; present:
//!   exactly the stages it lists.
//! - `[budget]`: `policy` (`flow`, `controlled-deficit`, `wait-for-max`),
//!   `deficit_floor` and `finish_line` for `flow`, `[budget.seed_rules]`
//!   for the seed's two policies.
//! - `[[alert]]` (any number): `name`, `url`, `format` (`json`, `slack`,
//!   `discord`), `on` (`new`, `price_drop`), `rules` ([`AlertConfig`]).
//! - `[backfill]`: `enabled`, `target_deals`, `max_pages`;
//!   `[refresh]`: `enabled`, `period`, `max_delay`;
//!   `[recheck]`: `enabled`, `older_than`, `max_age`.
//!
//! Values: prices as integer cents (`8000`) or dollars as text (`"$80"`,
//! `"80.00"`; in a rule string `$80` or `80.00`); percentages `20` or
//! `"20%"`; durations `"90s"`, `"5m"`, `"12h"`, `"7d"`.

mod alerts;
mod error;
mod extras;
mod fields;
mod max_age;
mod parse;
mod rules;
mod selection;

use std::path::Path;
use std::time::Duration;

use budget::{PolicyKind, SeedRules};
use keepa::request::DealSelection;
use keepa::Domain;
use toml::de::{DeTable, DeValue};

pub use alerts::{AlertConfig, AlertFormat, AlertKind, WebhookUrl};
pub use error::{edit_distance, ConfigError, Location, Suggestion};
pub use extras::{ExtraKind, Extras};
pub use fields::{
    all_names as all_field_names, lookup as lookup_field, FieldKind, FieldSpec, Stage, DEAL_FIELDS,
    OFFERS_FIELDS, STATS_FIELDS,
};
pub use max_age::MaxAge;
pub use rules::{FieldValue, Fields, Op, Rule, RuleFailure, RuleValue, StageRules};

use parse::{Doc, Table};

/// The built-in configuration: used-book arbitrage on amazon.com. It is what
/// `run` uses without `--config`, and a commented example of every section.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default.toml");

/// The origin named in messages about [`DEFAULT_CONFIG_TOML`].
pub const DEFAULT_ORIGIN: &str = "<default config>";

/// The top-level keys this module owns (scalars and sections); a caller
/// sharing the file names its own to [`RunConfig::from_toml_str_with`].
pub const RUN_KEYS: &[&str] = &[
    "domain",
    "key",
    "selection",
    "pipeline",
    "budget",
    "backfill",
    "refresh",
    "recheck",
    "keep_raw_deals",
    "alert",
    "keep_history",
];

/// Everything a harvest run needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// Marketplace (default amazon.com).
    pub domain: Domain,
    /// The `/deal` selection of the feed, validated; `domain_id` equals
    /// [`RunConfig::domain`]. The jobs set `page` and `sortType`.
    pub selection: DealSelection,
    /// The staged filters.
    pub pipeline: Pipeline,
    /// Token policy.
    pub budget: BudgetConfig,
    /// The backfill job.
    pub backfill: BackfillConfig,
    /// The refresh job.
    pub refresh: RefreshConfig,
    /// The re-check job.
    pub recheck: RecheckConfig,
    /// Store each deal's JSON object as Keepa sent it beside its typed
    /// fields (`keep_raw_deals`, default false: about 1-2 KB a deal).
    pub keep_raw_deals: bool,
    /// The `[[alert]]` tables, in file order (none: no alerts).
    pub alerts: Vec<AlertConfig>,
    /// Store each fetched product's `csv` histories (`keep_history`,
    /// default false): they come with every product answer at no extra
    /// token cost, and `export --history` decodes them. Typically a few KB
    /// a product.
    pub keep_history: bool,
}

/// The three stages, each optional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pipeline {
    /// Free filter on the deal object.
    pub deal_filter: Option<StageRules>,
    /// `/product` with stats, no offers.
    pub product_stats: Option<StatsStage>,
    /// `/product` with offers, for survivors.
    pub product_offers: Option<OffersStage>,
}

/// The product-stats stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsStage {
    /// Its rules (may use deal fields too).
    pub rules: StageRules,
    /// `stats=` days (default 180).
    pub stats_days: u32,
    /// A product fetched within this is not fetched again (default 12 h).
    pub fresh_for: Duration,
    /// A rejection is remembered this long (default 7 d); equals
    /// `rules.rejection_ttl`.
    pub rejection_ttl: Duration,
    /// How old Keepa's data may be (`update`; default: not sent, 1 h).
    pub max_age: Option<MaxAge>,
}

/// The product-offers stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffersStage {
    /// Its rules (may use deal and stats fields too).
    pub rules: StageRules,
    /// `offers=` (20–100, default 20).
    pub offers: u8,
    /// Offers fetched within this are not fetched again (default 12 h).
    pub fresh_for: Duration,
    /// A rejection is remembered this long (default 3 d); equals
    /// `rules.rejection_ttl`.
    pub rejection_ttl: Duration,
    /// How old Keepa's data and offers may be (`update`; default: not
    /// sent, 1 h): offers younger than this cost a flat 5 a product.
    pub max_age: Option<MaxAge>,
}

/// The token policy.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetConfig {
    /// The policy, with its parameters (default `flow`).
    pub policy: PolicyKind,
}

/// The backfill job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillConfig {
    /// Run it (default true).
    pub enabled: bool,
    /// Stop after this many stored deals.
    pub target_deals: Option<u64>,
    /// Stop after this many feed pages (1–67; paging reaches 10 000 deals).
    pub max_pages: Option<u32>,
}

/// The refresh job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshConfig {
    /// Run it (default true).
    pub enabled: bool,
    /// How often it reads the newest deals (default 5 min).
    pub period: Duration,
    /// Freshness target: a run starts at most this late (default 2 min).
    pub max_delay: Duration,
}

/// The re-check job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecheckConfig {
    /// Run it (default true).
    pub enabled: bool,
    /// Re-fetch stored products whose data is older than this (default 24 h).
    pub older_than: Duration,
    /// How old Keepa's data may be when re-fetched (`update`; default: not
    /// sent, 1 h).
    pub max_age: Option<MaxAge>,
}

impl Default for BackfillConfig {
    /// On, without a target or a page limit.
    fn default() -> Self {
        BackfillConfig {
            enabled: true,
            target_deals: None,
            max_pages: None,
        }
    }
}

impl Default for RefreshConfig {
    /// On, every 5 min, at most 2 min late.
    fn default() -> Self {
        RefreshConfig {
            enabled: true,
            period: Duration::from_secs(300),
            max_delay: Duration::from_secs(120),
        }
    }
}

impl Default for RecheckConfig {
    /// On, for products older than a day.
    fn default() -> Self {
        RecheckConfig {
            enabled: true,
            older_than: Duration::from_secs(DAY),
            max_age: None,
        }
    }
}

const DAY: u64 = 24 * 3600;
const DEFAULT_DEAL_REJECTION_TTL: Duration = Duration::from_secs(DAY);
const DEFAULT_STATS_REJECTION_TTL: Duration = Duration::from_secs(7 * DAY);
const DEFAULT_OFFERS_REJECTION_TTL: Duration = Duration::from_secs(3 * DAY);
const DEFAULT_FRESH_FOR: Duration = Duration::from_secs(12 * 3600);

impl RunConfig {
    /// Parses and validates a configuration; `origin` names the file in
    /// messages. Absent sections take their defaults (see the module docs).
    ///
    /// # Errors
    /// The first problem in file order within each section, as a
    /// [`ConfigError`] naming `origin:line:col`; a top-level key this
    /// module does not own is unknown.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<RunConfig, ConfigError> {
        Self::from_toml_str_with(text, origin, &[]).map(|(config, _)| config)
    }

    /// Like [`RunConfig::from_toml_str`], for a file the caller shares: its
    /// own top-level `extra` keys are accepted (an unknown key's closest
    /// name is sought among them too), type-checked, and handed back with
    /// their places in [`Extras`] for the caller to read and judge.
    ///
    /// # Errors
    /// As [`RunConfig::from_toml_str`]; a caller's key of the wrong type is
    /// a [`ConfigError::WrongType`] (or, for a duration,
    /// [`ConfigError::BadValue`]).
    pub fn from_toml_str_with(
        text: &str,
        origin: &str,
        extra: &[(&str, ExtraKind)],
    ) -> Result<(RunConfig, Extras), ConfigError> {
        let doc = Doc { origin, text };
        let root = DeTable::parse(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            ConfigError::Syntax {
                at: doc.loc(offset),
                message: e.message().lines().next().unwrap_or("").trim().to_string(),
            }
        })?;
        let top = Table {
            doc,
            name: String::new(),
            span: 0..0,
            map: root.get_ref(),
        };
        let mut allowed: Vec<&str> = RUN_KEYS.to_vec();
        allowed.extend(extra.iter().map(|(k, _)| *k));
        top.check_keys(&allowed)?;

        let domain = selection::read_domain(&top)?;
        let (domain, selection) = selection::read_selection(&top, domain)?;
        let pipeline = match top.table("pipeline")? {
            Some(t) => read_pipeline(&t)?,
            None => default_config_checked()?.pipeline,
        };
        let config = RunConfig {
            domain,
            selection,
            pipeline,
            budget: read_budget(&top)?,
            backfill: read_backfill(&top)?,
            refresh: read_refresh(&top)?,
            recheck: read_recheck(&top)?,
            keep_raw_deals: top.boolean("keep_raw_deals")?.unwrap_or(false),
            alerts: alerts::read_alerts(&top)?,
            keep_history: top.boolean("keep_history")?.unwrap_or(false),
        };
        Ok((config, Extras::read(&top, extra)?))
    }

    /// Reads `path` and parses it (the path as given names it in messages).
    ///
    /// # Errors
    /// [`ConfigError::Io`] if the file cannot be read, else as
    /// [`RunConfig::from_toml_str`].
    pub fn load(path: &Path) -> Result<RunConfig, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: origin.clone(),
            source,
        })?;
        RunConfig::from_toml_str(&text, &origin)
    }

    /// The built-in configuration ([`DEFAULT_CONFIG_TOML`]).
    pub fn default_config() -> RunConfig {
        match default_config_checked() {
            Ok(c) => c,
            // Unreachable: a unit test parses the default. Kept panic-free
            // all the same: the bare minimum, with no stages.
            Err(_) => RunConfig {
                domain: Domain::Com,
                selection: DealSelection::new(Domain::Com, 2),
                pipeline: Pipeline::default(),
                budget: BudgetConfig {
                    policy: PolicyKind::Flow(budget::flow::Flow::default()),
                },
                backfill: BackfillConfig::default(),
                refresh: RefreshConfig::default(),
                recheck: RecheckConfig::default(),
                keep_raw_deals: false,
                alerts: Vec::new(),
                keep_history: false,
            },
        }
    }

    /// The policy's command-line name.
    pub fn policy_name(&self) -> &'static str {
        budget::Policy::name(&self.budget.policy)
    }
}

fn default_config_checked() -> Result<RunConfig, ConfigError> {
    RunConfig::from_toml_str(DEFAULT_CONFIG_TOML, DEFAULT_ORIGIN)
}

fn read_backfill(top: &Table<'_, '_>) -> Result<BackfillConfig, ConfigError> {
    let Some(t) = top.table("backfill")? else {
        return Ok(BackfillConfig::default());
    };
    t.check_keys(&["enabled", "target_deals", "max_pages"])?;
    let max_page = i64::from(keepa::request::MAX_DEAL_PAGE) + 1;
    Ok(BackfillConfig {
        enabled: t.boolean("enabled")?.unwrap_or(true),
        target_deals: t
            .int_in("target_deals", 1..=i64::MAX)?
            .and_then(|n| u64::try_from(n).ok()),
        max_pages: t
            .int_in("max_pages", 1..=max_page)?
            .and_then(|n| u32::try_from(n).ok()),
    })
}

fn read_refresh(top: &Table<'_, '_>) -> Result<RefreshConfig, ConfigError> {
    let default = RefreshConfig::default();
    let Some(t) = top.table("refresh")? else {
        return Ok(default);
    };
    t.check_keys(&["enabled", "period", "max_delay"])?;
    Ok(RefreshConfig {
        enabled: t.boolean("enabled")?.unwrap_or(true),
        period: t.duration("period")?.unwrap_or(default.period),
        max_delay: t.duration("max_delay")?.unwrap_or(default.max_delay),
    })
}

fn read_recheck(top: &Table<'_, '_>) -> Result<RecheckConfig, ConfigError> {
    let default = RecheckConfig::default();
    let Some(t) = top.table("recheck")? else {
        return Ok(default);
    };
    t.check_keys(&["enabled", "older_than", "max_age"])?;
    Ok(RecheckConfig {
        enabled: t.boolean("enabled")?.unwrap_or(true),
        older_than: t.duration("older_than")?.unwrap_or(default.older_than),
        max_age: max_age::read(&t)?,
    })
}

fn read_pipeline(p: &Table<'_, '_>) -> Result<Pipeline, ConfigError> {
    p.check_keys(&["deal_filter", "product_stats", "product_offers"])?;
    let mut pipeline = Pipeline::default();
    if let Some(t) = p.table("deal_filter")? {
        t.check_keys(&["enabled", "rules", "rejection_ttl"])?;
        let rules = read_rules(&t, Stage::Deal, DEFAULT_DEAL_REJECTION_TTL)?;
        if t.boolean("enabled")?.unwrap_or(true) {
            pipeline.deal_filter = Some(rules);
        }
    }
    if let Some(t) = p.table("product_stats")? {
        t.check_keys(&[
            "enabled",
            "rules",
            "rejection_ttl",
            "stats_days",
            "fresh_for",
            "max_age",
        ])?;
        let rules = read_rules(&t, Stage::Stats, DEFAULT_STATS_REJECTION_TTL)?;
        let stage = StatsStage {
            rejection_ttl: rules.rejection_ttl,
            rules,
            stats_days: t
                .int_in("stats_days", 1..=3650)?
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(180),
            fresh_for: t.duration("fresh_for")?.unwrap_or(DEFAULT_FRESH_FOR),
            max_age: max_age::read(&t)?,
        };
        if t.boolean("enabled")?.unwrap_or(true) {
            pipeline.product_stats = Some(stage);
        }
    }
    if let Some(t) = p.table("product_offers")? {
        t.check_keys(&[
            "enabled",
            "rules",
            "rejection_ttl",
            "offers",
            "fresh_for",
            "max_age",
        ])?;
        let rules = read_rules(&t, Stage::Offers, DEFAULT_OFFERS_REJECTION_TTL)?;
        let stage = OffersStage {
            rejection_ttl: rules.rejection_ttl,
            rules,
            offers: t
                .int_in("offers", 20..=100)?
                .and_then(|n| u8::try_from(n).ok())
                .unwrap_or(20),
            fresh_for: t.duration("fresh_for")?.unwrap_or(DEFAULT_FRESH_FOR),
            max_age: max_age::read(&t)?,
        };
        if t.boolean("enabled")?.unwrap_or(true) {
            pipeline.product_offers = Some(stage);
        }
    }
    Ok(pipeline)
}

fn read_rules(t: &Table<'_, '_>, stage: Stage, ttl: Duration) -> Result<StageRules, ConfigError> {
    let rejection_ttl = t.duration("rejection_ttl")?.unwrap_or(ttl);
    let mut rules = Vec::new();
    if let Some(v) = t.get("rules") {
        let DeValue::Array(items) = v.get_ref() else {
            return Err(t.wrong_type(
                "rules",
                v,
                "an array of rules like [\"current.used <= 8000\"]",
            ));
        };
        for item in items.iter() {
            let rule = match item.get_ref() {
                DeValue::String(s) => {
                    let locate = t.doc.string_locator(item.span(), s);
                    rules::parse_rule_str(s, stage, &locate)?
                }
                DeValue::Table(map) => {
                    let rt = Table {
                        doc: t.doc,
                        name: t.path("rules"),
                        span: item.span(),
                        map,
                    };
                    read_rule_table(&rt, stage)?
                }
                other => {
                    return Err(ConfigError::WrongType {
                        at: t.doc.loc(item.span().start),
                        key: t.path("rules"),
                        expected: "rule strings like \"current.used <= 8000\" or tables { field = …, op = …, value = … }".into(),
                        found: parse::type_name(other).into(),
                    })
                }
            };
            rules.push(rule);
        }
    }
    Ok(StageRules {
        rules,
        rejection_ttl,
    })
}

fn read_rule_table(rt: &Table<'_, '_>, stage: Stage) -> Result<Rule, ConfigError> {
    rt.check_keys(&["field", "op", "value"])?;
    let missing = |key: &str, hint: &str| ConfigError::MissingKey {
        at: rt.at(),
        key: key.into(),
        table: "a rule table".into(),
        hint: hint.into(),
    };
    let (field, fspan) = rt.string("field")?.ok_or_else(|| {
        missing(
            "field",
            "write { field = \"current.used\", op = \"<=\", value = 8000 }",
        )
    })?;
    let spec_at = rt.doc.loc(fspan.start);
    let spec = rules::resolve_field(field, stage, spec_at)?;
    let (op_text, ospan) = rt
        .string("op")?
        .ok_or_else(|| missing("op", "one of < <= > >= == != between contains"))?;
    let bad = |offset: usize, message: String| ConfigError::BadRule {
        at: rt.doc.loc(offset),
        rule: rt.doc.text.get(rt.span.clone()).unwrap_or("").to_string(),
        message,
    };
    let op = Op::parse(op_text).ok_or_else(|| {
        let sugg = Suggestion::closest(op_text, Op::SPELLINGS.iter().map(|(s, _)| *s));
        bad(
            ospan.start,
            format!("unknown operator {op_text:?}{sugg} (known: < <= > >= == != between contains)"),
        )
    })?;
    rules::op_fits(spec.kind, op).map_err(|m| bad(ospan.start, m))?;
    let v = rt
        .get("value")
        .ok_or_else(|| missing("value", "the value to compare with"))?;
    let number = |x: &parse::Value<'_>| -> Result<i64, ConfigError> {
        match x.get_ref() {
            DeValue::String(s) => {
                rules::number_from_text(spec.kind, s).map_err(|m| bad(x.span().start, m))
            }
            other => parse::int_of(other).ok_or_else(|| ConfigError::WrongType {
                at: rt.doc.loc(x.span().start),
                key: rt.path("value"),
                expected: format!("a {} (integer, or text like \"$80\")", spec.kind),
                found: parse::type_name(other).into(),
            }),
        }
    };
    let value = if spec.kind == FieldKind::Text {
        match v.get_ref() {
            DeValue::String(s) => RuleValue::Text(s.to_string()),
            _ => return Err(rt.wrong_type("value", v, "a string (text field)")),
        }
    } else if op == Op::Between {
        match v.get_ref() {
            DeValue::Array(a) if a.len() == 2 => {
                let (lo, hi) = (number(&a[0])?, number(&a[1])?);
                if lo > hi {
                    return Err(bad(
                        v.span().start,
                        format!("`between` needs LOW <= HIGH, got {lo} > {hi}"),
                    ));
                }
                RuleValue::Range(lo, hi)
            }
            _ => {
                return Err(bad(
                    v.span().start,
                    "`between` needs exactly two values: value = [LOW, HIGH]".into(),
                ))
            }
        }
    } else {
        RuleValue::Int(number(v)?)
    };
    let text = match &value {
        RuleValue::Range(lo, hi) => format!("{} between {lo} {hi}", spec.name),
        other => format!("{} {} {}", spec.name, op, other),
    };
    Ok(Rule {
        field: spec.name,
        op,
        value,
        origin: rt.at().to_string(),
        text,
    })
}

fn read_budget(top: &Table<'_, '_>) -> Result<BudgetConfig, ConfigError> {
    let Some(b) = top.table("budget")? else {
        return Ok(BudgetConfig {
            policy: PolicyKind::Flow(budget::flow::Flow::default()),
        });
    };
    b.check_keys(&["policy", "deficit_floor", "finish_line", "seed_rules"])?;
    let mut rules = SeedRules::default();
    if let Some(s) = b.table("seed_rules")? {
        s.check_keys(&[
            "refresh_min_balance",
            "wait_for_max_fraction",
            "deficit_threshold",
            "deficit_resume",
        ])?;
        if let Some(n) = s.int_in("refresh_min_balance", i64::MIN..=i64::MAX)? {
            rules.refresh_min_balance = n;
        }
        if let Some(n) = s.int_in("deficit_threshold", i64::MIN..=i64::MAX)? {
            rules.deficit_threshold = n;
        }
        if let Some(n) = s.int_in("deficit_resume", i64::MIN..=i64::MAX)? {
            rules.deficit_resume = n;
        }
        if let Some(v) = s.get("wait_for_max_fraction") {
            let x = match v.get_ref() {
                DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
                other => parse::int_of(other).map(|n| n as f64),
            };
            match x {
                Some(x) if x > 0.0 && x <= 1.0 => rules.wait_for_max_fraction = x,
                Some(_) => {
                    return Err(s.bad_value("wait_for_max_fraction", v, "must be in (0, 1]"))
                }
                None => return Err(s.wrong_type("wait_for_max_fraction", v, "a number in (0, 1]")),
            }
        }
    }
    let name = b.string("policy")?;
    let policy = match name {
        None => PolicyKind::Flow(budget::flow::Flow::default()),
        Some((n, span)) => {
            PolicyKind::by_name(n, rules).map_err(|_| ConfigError::UnknownPolicy {
                at: b.doc.loc(span.start),
                name: n.to_string(),
                suggestion: Suggestion::closest(n, PolicyKind::NAMES),
            })?
        }
    };
    let policy = match policy {
        PolicyKind::Flow(mut f) => {
            if let Some(floor) = b.int_in("deficit_floor", i64::MIN..=0)? {
                f.deficit_floor = Some(floor);
            }
            if let Some(fl) = b.boolean("finish_line")? {
                f.finish_line = fl;
            }
            PolicyKind::Flow(f)
        }
        other => {
            for key in ["deficit_floor", "finish_line"] {
                if let Some(v) = b.get(key) {
                    return Err(b.bad_value(key, v, "applies to the flow policy only"));
                }
            }
            other
        }
    };
    Ok(BudgetConfig { policy })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_parses_with_three_stages() {
        let c = default_config_checked().unwrap();
        assert_eq!(c.domain, Domain::Com);
        assert!(c.pipeline.deal_filter.is_some());
        assert!(c.pipeline.product_stats.is_some());
        assert!(c.pipeline.product_offers.is_some());
        assert_eq!(c.selection.include_categories, Some(vec![283155]));
        assert_eq!(c, RunConfig::default_config());
    }
}
