//! Typed pipeline rules: `field op value`, read from the config and checked
//! against the [`Fields`] of a deal or product.
//!
//! Guarantees: every [`Rule`] names a canonical field of its stage or of an
//! earlier one, its value has the field's kind, and `between` holds
//! `low <= high`; [`StageRules::check`] never panics and treats a field
//! with no value as failing the rule.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::error::{ConfigError, Location, Suggestion};
use super::fields::{self, FieldKind, FieldSpec, Stage};

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==` (or `=`); text compares without regard to case.
    Eq,
    /// `!=`; text compares without regard to case.
    Ne,
    /// `between LOW HIGH`, both inclusive.
    Between,
    /// `contains TEXT`: case-insensitive substring (text fields only).
    Contains,
}

impl Op {
    /// Every spelling accepted, with its operator.
    pub const SPELLINGS: [(&'static str, Op); 9] = [
        ("<", Op::Lt),
        ("<=", Op::Le),
        (">", Op::Gt),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("=", Op::Eq),
        ("!=", Op::Ne),
        ("between", Op::Between),
        ("contains", Op::Contains),
    ];

    /// Parses an operator (`<=`, `between`, …; words in any case).
    pub fn parse(text: &str) -> Option<Op> {
        let lower = text.to_ascii_lowercase();
        Op::SPELLINGS
            .iter()
            .find(|(s, _)| *s == lower)
            .map(|(_, op)| *op)
    }

    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Between => "between",
            Op::Contains => "contains",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule's right-hand side, already converted to the field's unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RuleValue {
    /// A number (cents for prices, whole percent for percentages).
    Int(i64),
    /// Text (for `==`, `!=`, `contains` on text fields).
    Text(String),
    /// The inclusive bounds of `between`, `low <= high`.
    Range(i64, i64),
}

impl fmt::Display for RuleValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleValue::Int(v) => write!(f, "{v}"),
            RuleValue::Text(t) => write!(f, "{t:?}"),
            RuleValue::Range(lo, hi) => write!(f, "{lo} {hi}"),
        }
    }
}

/// One rule of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Canonical field name.
    pub field: &'static str,
    /// The comparison.
    pub op: Op,
    /// The value, in the field's unit.
    pub value: RuleValue,
    /// Where it was written: `config.toml:14:3`.
    pub origin: String,
    /// The rule as written (`current.used <= $80`), for messages.
    pub text: String,
}

impl Rule {
    /// Whether `actual` satisfies the rule. A value of the wrong kind (text
    /// for a numeric rule or the reverse) does not.
    pub fn holds(&self, actual: &FieldValue) -> bool {
        match (self.op, &self.value, actual) {
            (Op::Between, RuleValue::Range(lo, hi), FieldValue::Int(v)) => lo <= v && v <= hi,
            (op, RuleValue::Int(want), FieldValue::Int(v)) => match op {
                Op::Lt => v < want,
                Op::Le => v <= want,
                Op::Gt => v > want,
                Op::Ge => v >= want,
                Op::Eq => v == want,
                Op::Ne => v != want,
                Op::Between | Op::Contains => false,
            },
            (op, RuleValue::Text(want), FieldValue::Text(v)) => {
                let v = v.to_lowercase();
                let want = want.to_lowercase();
                match op {
                    Op::Eq => v == want,
                    Op::Ne => v != want,
                    Op::Contains => v.contains(&want),
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A field's value for one deal or product.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldValue {
    /// A number: prices in the smallest currency unit (cents).
    Int(i64),
    /// Text.
    Text(String),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Int(v) => write!(f, "{v}"),
            FieldValue::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// The known field values of one deal or product, by canonical name.
/// Insert only values that exist: Keepa's "no data" sentinels (-1, -2)
/// must be left out, so that rules on them fail as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    values: BTreeMap<&'static str, FieldValue>,
}

impl Fields {
    /// No values.
    pub fn new() -> Self {
        Fields::default()
    }

    /// Sets `name` (replacing any earlier value).
    pub fn insert(&mut self, name: &'static str, v: FieldValue) {
        self.values.insert(name, v);
    }

    /// Sets `name` to an integer if `v` is `Some`; leaves it absent otherwise.
    pub fn insert_int(&mut self, name: &'static str, v: Option<i64>) {
        if let Some(v) = v {
            self.insert(name, FieldValue::Int(v));
        }
    }

    /// Sets the canonical field spelled `name` (no need for a `&'static
    /// str`); returns `false` and stores nothing if no stage has that field.
    pub fn insert_known(&mut self, name: &str, v: FieldValue) -> bool {
        match fields::lookup(name) {
            Some((spec, _)) => {
                self.insert(spec.name, v);
                true
            }
            None => false,
        }
    }

    /// The value of `name`, if known.
    pub fn get(&self, name: &str) -> Option<&FieldValue> {
        self.values.get(name)
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<FieldValue> {
        self.values.remove(name)
    }

    /// Adds every value of `other` (later stages on top of earlier ones).
    pub fn merge(&mut self, other: Fields) {
        self.values.extend(other.values);
    }

    /// All values, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &FieldValue)> {
        self.values.iter().map(|(k, v)| (*k, v))
    }

    /// How many values are known.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no value is known.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Why a deal or product was rejected: the first rule it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {rule} failed (actual: {})", actual.as_ref().map_or_else(|| "absent".to_string(), |v| v.to_string()))]
pub struct RuleFailure {
    /// The rule as written, e.g. `current.used <= 8000`.
    pub rule: String,
    /// The field's value, `None` when absent.
    pub actual: Option<FieldValue>,
    /// Where the rule was written.
    pub origin: String,
}

/// The rules of one stage and how long a rejection by them is remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRules {
    /// All must hold, checked in order.
    pub rules: Vec<Rule>,
    /// A product this stage rejected is not reconsidered for this long.
    pub rejection_ttl: Duration,
}

impl StageRules {
    /// `Ok` when every rule holds, else the first failing rule. A field
    /// with no value fails with `actual: None`.
    pub fn check(&self, fields: &Fields) -> Result<(), RuleFailure> {
        for rule in &self.rules {
            let actual = fields.get(rule.field);
            if !actual.is_some_and(|v| rule.holds(v)) {
                return Err(RuleFailure {
                    rule: rule.text.clone(),
                    actual: actual.cloned(),
                    origin: rule.origin.clone(),
                });
            }
        }
        Ok(())
    }

    /// The canonical names of the fields these rules read.
    pub fn fields_used(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.rules.iter().map(|r| r.field)
    }
}

/// Resolves a field name written in a rule of `stage`.
pub(crate) fn resolve_field(
    name: &str,
    stage: Stage,
    at: Location,
) -> Result<&'static FieldSpec, ConfigError> {
    match fields::lookup(name) {
        Some((spec, field_stage)) if field_stage <= stage => Ok(spec),
        Some((_, field_stage)) => Err(ConfigError::LaterStageField {
            at,
            field: name.to_string(),
            stage: stage.table_name().to_string(),
            field_stage: field_stage.table_name().to_string(),
        }),
        None => Err(ConfigError::UnknownField {
            at,
            field: name.to_string(),
            suggestion: Suggestion::closest(name, fields::all_names()),
        }),
    }
}

/// Whether `op` applies to fields of `kind`; the reason when not.
pub(crate) fn op_fits(kind: FieldKind, op: Op) -> Result<(), String> {
    match (kind, op) {
        (FieldKind::Text, Op::Eq | Op::Ne | Op::Contains) => Ok(()),
        (FieldKind::Text, _) => Err(format!(
            "`{op}` does not apply to a text field; use ==, != or contains"
        )),
        (_, Op::Contains) => Err(format!(
            "`contains` applies to text fields only; this field is a {kind}"
        )),
        _ => Ok(()),
    }
}

/// Reads one number written as text, in the unit of `kind`:
/// prices `8000` (cents), `$80`, `$80.5`, `80.00` (currency units);
/// percentages `20` or `20%`; integers `2000000` or `2_000_000`.
pub(crate) fn number_from_text(kind: FieldKind, text: &str) -> Result<i64, String> {
    let t = text.trim();
    match kind {
        FieldKind::Price => parse_price(t),
        FieldKind::Percent => parse_int(t.strip_suffix('%').unwrap_or(t))
            .ok_or_else(|| format!("{text:?} is not a whole percentage (write 20 or \"20%\")")),
        FieldKind::Int => parse_int(t).ok_or_else(|| format!("{text:?} is not an integer")),
        FieldKind::Text => Err("a text field takes no number".to_string()),
    }
}

fn parse_int(t: &str) -> Option<i64> {
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let v: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -v } else { v })
}

fn parse_price(t: &str) -> Result<i64, String> {
    let bad = || {
        format!("{t:?} is not a price (write cents as an integer, 8000, or currency units as \"$80\" or \"80.00\")")
    };
    let (neg, rest) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let (dollar, rest) = match rest.strip_prefix('$') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let cents = if !dollar && !rest.contains('.') {
        parse_int(rest).ok_or_else(bad)?
    } else {
        let (units, frac) = rest.split_once('.').unwrap_or((rest, ""));
        if units.is_empty() && frac.is_empty() {
            return Err(bad());
        }
        let units = if units.is_empty() {
            0
        } else {
            parse_int(units)
                .filter(|_| !units.starts_with(['-', '+']))
                .ok_or_else(bad)?
        };
        if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(if frac.len() > 2 {
                format!("{t:?}: a price has at most two decimals")
            } else {
                bad()
            });
        }
        let frac_cents = match frac.len() {
            0 => 0,
            1 => i64::from(frac.as_bytes()[0] - b'0') * 10,
            _ => frac.parse::<i64>().map_err(|_| bad())?,
        };
        units
            .checked_mul(100)
            .and_then(|c| c.checked_add(frac_cents))
            .ok_or_else(bad)?
    };
    Ok(if neg { -cents } else { cents })
}

/// A token of a rule string and its byte offset in that string.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token<'a> {
    text: &'a str,
    quoted: bool,
    at: usize,
}

fn tokenize(s: &str) -> Result<Vec<Token<'_>>, (usize, String)> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    let is_op = |b: u8| matches!(b, b'<' | b'>' | b'=' | b'!');
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_whitespace() {
            i += 1;
        } else if b == b'"' || b == b'\'' {
            let start = i + 1;
            let end = s[start..]
                .find(b as char)
                .map(|e| start + e)
                .ok_or((i, "unterminated quoted text".to_string()))?;
            out.push(Token {
                text: &s[start..end],
                quoted: true,
                at: i,
            });
            i = end + 1;
        } else {
            let start = i;
            let op = is_op(b);
            while i < bytes.len()
                && !bytes[i].is_ascii_whitespace()
                && is_op(bytes[i]) == op
                && !(bytes[i] == b'"' || bytes[i] == b'\'')
            {
                i += 1;
            }
            out.push(Token {
                text: &s[start..i],
                quoted: false,
                at: start,
            });
        }
    }
    Ok(out)
}

/// Parses a rule written as a string (`"current.used between $4 $80"`) in
/// `stage`. `locate` maps a byte offset in `s` to its place in the file.
pub(crate) fn parse_rule_str(
    s: &str,
    stage: Stage,
    locate: &dyn Fn(usize) -> Location,
) -> Result<Rule, ConfigError> {
    let bad = |at: usize, message: String| ConfigError::BadRule {
        at: locate(at),
        rule: s.to_string(),
        message,
    };
    let tokens = tokenize(s).map_err(|(at, m)| bad(at, m))?;
    let Some(field_tok) = tokens.first() else {
        return Err(bad(
            0,
            "empty rule; write FIELD OP VALUE, e.g. \"current.used <= 8000\"".to_string(),
        ));
    };
    let spec = resolve_field(field_tok.text, stage, locate(field_tok.at))?;
    let Some(op_tok) = tokens.get(1) else {
        return Err(bad(
            s.len(),
            "missing operator and value; write FIELD OP VALUE (op: < <= > >= == != between contains)"
                .to_string(),
        ));
    };
    let op = Op::parse(op_tok.text)
        .filter(|_| !op_tok.quoted)
        .ok_or_else(|| {
            let sugg = Suggestion::closest(op_tok.text, Op::SPELLINGS.iter().map(|(s, _)| *s));
            bad(
                op_tok.at,
                format!(
                    "unknown operator {:?}{sugg} (known: < <= > >= == != between contains)",
                    op_tok.text
                ),
            )
        })?;
    op_fits(spec.kind, op).map_err(|m| bad(op_tok.at, m))?;
    let rest = &tokens[2..];
    let value = if spec.kind == FieldKind::Text {
        // The value is the rest of the string: one quoted token, or the
        // unquoted remainder as is.
        match rest {
            [] => return Err(bad(s.len(), format!("missing text after `{op}`"))),
            [first, more @ ..] => {
                if !first.quoted {
                    RuleValue::Text(s[first.at..].trim().to_string())
                } else if let Some(extra) = more.first() {
                    return Err(bad(
                        extra.at,
                        "unexpected text after the quoted value".to_string(),
                    ));
                } else {
                    RuleValue::Text(first.text.to_string())
                }
            }
        }
    } else if op == Op::Between {
        let nums: Vec<&Token<'_>> = rest
            .iter()
            .filter(|t| t.quoted || !t.text.eq_ignore_ascii_case("and"))
            .collect();
        match nums.as_slice() {
            [lo, hi] => {
                let l = number_from_text(spec.kind, lo.text).map_err(|m| bad(lo.at, m))?;
                let h = number_from_text(spec.kind, hi.text).map_err(|m| bad(hi.at, m))?;
                if l > h {
                    return Err(bad(
                        lo.at,
                        format!("`between` needs LOW <= HIGH, got {l} > {h}"),
                    ));
                }
                RuleValue::Range(l, h)
            }
            _ => {
                let at = nums.get(2).map_or(s.len(), |t| t.at);
                return Err(bad(
                    at,
                    format!(
                        "`between` needs exactly two values, LOW and HIGH (e.g. \"{} between 400 8000\"); got {}",
                        spec.name,
                        nums.len()
                    ),
                ));
            }
        }
    } else {
        match rest {
            [] => return Err(bad(s.len(), format!("missing value after `{op}`"))),
            [v] => RuleValue::Int(number_from_text(spec.kind, v.text).map_err(|m| bad(v.at, m))?),
            [_, extra, ..] => {
                return Err(bad(
                    extra.at,
                    format!("unexpected {:?} after the value", extra.text),
                ))
            }
        }
    };
    Ok(Rule {
        field: spec.name,
        op,
        value,
        origin: locate(0).to_string(),
        text: s.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(off: usize) -> Location {
        Location {
            origin: "t".into(),
            line: 1,
            column: off + 1,
        }
    }

    fn rule(s: &str) -> Result<Rule, ConfigError> {
        parse_rule_str(s, Stage::Offers, &loc)
    }

    #[test]
    fn prices_in_cents_or_currency_units() {
        let p = |t| number_from_text(FieldKind::Price, t);
        assert_eq!(p("8000"), Ok(8000));
        assert_eq!(p("$80"), Ok(8000));
        assert_eq!(p("$12.5"), Ok(1250));
        assert_eq!(p("12.50"), Ok(1250));
        assert_eq!(p("$.99"), Ok(99));
        assert_eq!(p("-$1.05"), Ok(-105));
        assert_eq!(p("2_000"), Ok(2000));
        assert!(p("$1.234").unwrap_err().contains("two decimals"));
        for bad in [
            "",
            "$",
            ".",
            "abc",
            "$-3",
            "1.2.3",
            "$1e3",
            "99999999999999999999",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        assert_eq!(number_from_text(FieldKind::Percent, "20%"), Ok(20));
        assert!(number_from_text(FieldKind::Int, "$5").is_err());
    }

    #[test]
    fn rule_strings_parse() {
        let r = rule("current.used between $4 and $80").unwrap();
        assert_eq!(
            (r.field, r.op, r.value),
            ("current.used", Op::Between, RuleValue::Range(400, 8000))
        );
        let r = rule("sales_rank<=2_000_000").unwrap();
        assert_eq!((r.op, r.value), (Op::Le, RuleValue::Int(2_000_000)));
        let r = rule("title contains Study Guide").unwrap();
        assert_eq!(r.value, RuleValue::Text("Study Guide".into()));
        let r = rule("title != 'a  b'").unwrap();
        assert_eq!(r.value, RuleValue::Text("a  b".into()));
        assert_eq!(rule("offers.lowest_used <= 6000").unwrap().origin, "t:1:1");
    }

    #[test]
    fn rule_string_errors_point_into_the_string() {
        let e = rule("curent.used < 5").unwrap_err().to_string();
        assert_eq!(
            e,
            "t:1:1: unknown field \"curent.used\" in rule; did you mean \"current.used\"?"
        );
        let e = rule("current.used =< 5").unwrap_err().to_string();
        assert!(e.starts_with("t:1:14: bad rule"), "{e}");
        assert!(e.contains("did you mean"), "{e}");
        let e = rule("current.used between 5").unwrap_err().to_string();
        assert!(e.contains("exactly two values"), "{e}");
        let e = rule("current.used between 9 5").unwrap_err().to_string();
        assert!(e.contains("LOW <= HIGH"), "{e}");
        let e = rule("title > abc").unwrap_err().to_string();
        assert!(e.contains("text field"), "{e}");
        let e = rule("sales_rank contains 5").unwrap_err().to_string();
        assert!(e.contains("text fields only"), "{e}");
        let e = rule("current.used <= cheap").unwrap_err().to_string();
        assert!(e.starts_with("t:1:17:"), "{e}");
        assert!(rule("").is_err());
        assert!(rule("title").is_err());
        assert!(rule("title == \"open").is_err());
        assert!(rule("current.used <= 5 6").is_err());
        let e = parse_rule_str("offers.lowest_used < 5", Stage::Stats, &loc).unwrap_err();
        assert!(matches!(e, ConfigError::LaterStageField { .. }), "{e}");
    }

    fn r(text: &str) -> StageRules {
        StageRules {
            rules: vec![rule(text).unwrap()],
            rejection_ttl: Duration::from_secs(1),
        }
    }

    #[test]
    fn every_op_evaluates() {
        let mut f = Fields::new();
        f.insert("current.used", FieldValue::Int(500));
        f.insert("title", FieldValue::Text("The Study GUIDE".into()));
        for (text, ok) in [
            ("current.used < 500", false),
            ("current.used < 501", true),
            ("current.used <= 500", true),
            ("current.used > 500", false),
            ("current.used >= 500", true),
            ("current.used == 500", true),
            ("current.used != 500", false),
            ("current.used between 500 500", true),
            ("current.used between 501 600", false),
            ("title contains study guide", true),
            ("title contains atlas", false),
            ("title == 'the study guide'", true),
            ("title != 'the study guide'", false),
        ] {
            assert_eq!(r(text).check(&f).is_ok(), ok, "{text}");
        }
        let mut g = Fields::new();
        assert!(g.insert_known(&format!("avg.{}.{}", "used", "week"), FieldValue::Int(1)));
        assert!(!g.insert_known("avg.used.fortnight", FieldValue::Int(1)));
        assert_eq!(g.len(), 1);
        let fail = r("current.new < 5").check(&f).unwrap_err();
        assert_eq!(fail.actual, None);
        assert_eq!(fail.rule, "current.new < 5");
        assert!(fail.to_string().contains("absent"));
        let fail = r("current.used > 600").check(&f).unwrap_err();
        assert_eq!(fail.actual, Some(FieldValue::Int(500)));
        // a value of the wrong kind fails instead of panicking
        f.insert("current.new", FieldValue::Text("x".into()));
        assert!(r("current.new < 5").check(&f).is_err());
    }
}
