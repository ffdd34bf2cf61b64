//! The canonical field names rules may test, per pipeline stage.
//!
//! Guarantees: names are unique across the three tables; the harvest fills
//! [`Fields`](super::Fields) with exactly these names; prices are in the
//! smallest currency unit (cents), percentages are whole percent.

use std::fmt;

/// What kind of value a field holds; decides how a rule's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// A price in the smallest currency unit (cents). Rules may write
    /// `8000`, `"$80"` or `"80.00"`.
    Price,
    /// A plain integer (sales rank, counts, ids, conditions).
    Int,
    /// Whole percent (`20` or `"20%"`).
    Percent,
    /// Text (compared without regard to case).
    Text,
}

impl FieldKind {
    /// Whether values of this kind are integers (everything but text).
    pub fn is_numeric(self) -> bool {
        !matches!(self, FieldKind::Text)
    }
}

impl fmt::Display for FieldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FieldKind::Price => "price",
            FieldKind::Int => "integer",
            FieldKind::Percent => "percent",
            FieldKind::Text => "text",
        })
    }
}

/// One field a rule may test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// Canonical name, e.g. `current.used`.
    pub name: &'static str,
    /// Its kind.
    pub kind: FieldKind,
    /// One line for humans.
    pub help: &'static str,
}

/// The pipeline stages, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Free filter on the deal object.
    Deal,
    /// `/product` with stats, no offers (about 1 token a product).
    Stats,
    /// `/product` with offers (6 tokens per page of 10 offers).
    Offers,
}

impl Stage {
    /// The stage's table name in the config (`deal_filter`, …).
    pub fn table_name(self) -> &'static str {
        match self {
            Stage::Deal => "deal_filter",
            Stage::Stats => "product_stats",
            Stage::Offers => "product_offers",
        }
    }

    /// The fields this stage itself provides.
    pub fn own_fields(self) -> &'static [FieldSpec] {
        match self {
            Stage::Deal => DEAL_FIELDS,
            Stage::Stats => STATS_FIELDS,
            Stage::Offers => OFFERS_FIELDS,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.table_name())
    }
}

/// The field named `name` and the stage that provides it.
pub fn lookup(name: &str) -> Option<(&'static FieldSpec, Stage)> {
    [Stage::Deal, Stage::Stats, Stage::Offers]
        .into_iter()
        .find_map(|s| {
            s.own_fields()
                .iter()
                .find(|f| f.name == name)
                .map(|f| (f, s))
        })
}

/// Every field name, deal stage first.
pub fn all_names() -> impl Iterator<Item = &'static str> {
    DEAL_FIELDS
        .iter()
        .chain(STATS_FIELDS)
        .chain(OFFERS_FIELDS)
        .map(|f| f.name)
}

/// Fields of the deal stage, known for free from the `/deal` feed.
pub const DEAL_FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "title",
        kind: FieldKind::Text,
        help: "the product title as in the deal (may contain HTML)",
    },
    FieldSpec {
        name: "root_category",
        kind: FieldKind::Int,
        help: "Keepa's root category id (283155 = Books on amazon.com)",
    },
    FieldSpec {
        name: "sales_rank",
        kind: FieldKind::Int,
        help: "current sales rank (lower sells better)",
    },
    FieldSpec {
        name: "current.amazon",
        kind: FieldKind::Price,
        help: "current Amazon price, cents",
    },
    FieldSpec {
        name: "current.new",
        kind: FieldKind::Price,
        help: "current lowest new price, cents",
    },
    FieldSpec {
        name: "current.used",
        kind: FieldKind::Price,
        help: "current lowest used price, cents",
    },
    FieldSpec {
        name: "current.buy_box",
        kind: FieldKind::Price,
        help: "current Buy Box price, cents",
    },
    FieldSpec {
        name: "delta_percent.amazon.day",
        kind: FieldKind::Percent,
        help: "drop in percent of the Amazon's own price over the last day (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.amazon.week",
        kind: FieldKind::Percent,
        help: "drop in percent of the Amazon's own price over the last week (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.amazon.month",
        kind: FieldKind::Percent,
        help: "drop in percent of the Amazon's own price over the last month (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.amazon.quarter",
        kind: FieldKind::Percent,
        help: "drop in percent of the Amazon's own price over the last quarter (90 days) (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.new.day",
        kind: FieldKind::Percent,
        help: "drop in percent of the lowest new price over the last day (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.new.week",
        kind: FieldKind::Percent,
        help: "drop in percent of the lowest new price over the last week (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.new.month",
        kind: FieldKind::Percent,
        help: "drop in percent of the lowest new price over the last month (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.new.quarter",
        kind: FieldKind::Percent,
        help: "drop in percent of the lowest new price over the last quarter (90 days) (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.used.day",
        kind: FieldKind::Percent,
        help: "drop in percent of the lowest used price over the last day (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.used.week",
        kind: FieldKind::Percent,
        help: "drop in percent of the lowest used price over the last week (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.used.month",
        kind: FieldKind::Percent,
        help: "drop in percent of the lowest used price over the last month (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.used.quarter",
        kind: FieldKind::Percent,
        help: "drop in percent of the lowest used price over the last quarter (90 days) (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.buy_box.day",
        kind: FieldKind::Percent,
        help: "drop in percent of the Buy Box price over the last day (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.buy_box.week",
        kind: FieldKind::Percent,
        help: "drop in percent of the Buy Box price over the last week (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.buy_box.month",
        kind: FieldKind::Percent,
        help: "drop in percent of the Buy Box price over the last month (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.buy_box.quarter",
        kind: FieldKind::Percent,
        help: "drop in percent of the Buy Box price over the last quarter (90 days) (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.sales_rank.day",
        kind: FieldKind::Percent,
        help: "drop in percent of the sales rank over the last day (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.sales_rank.week",
        kind: FieldKind::Percent,
        help: "drop in percent of the sales rank over the last week (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.sales_rank.month",
        kind: FieldKind::Percent,
        help: "drop in percent of the sales rank over the last month (positive = dropped)",
    },
    FieldSpec {
        name: "delta_percent.sales_rank.quarter",
        kind: FieldKind::Percent,
        help: "drop in percent of the sales rank over the last quarter (90 days) (positive = dropped)",
    },
    FieldSpec {
        name: "delta.amazon.day",
        kind: FieldKind::Price,
        help: "drop of the Amazon's own price over the last day (positive = dropped), cents",
    },
    FieldSpec {
        name: "delta.amazon.week",
        kind: FieldKind::Price,
        help: "drop of the Amazon's own price over the last week (positive = dropped), cents",
    },
    FieldSpec {
        name: "delta.amazon.month",
        kind: FieldKind::Price,
        help: "drop of the Amazon's own price over the last month (positive = dropped), cents",
    },
    FieldSpec {
        name: "delta.amazon.quarter",
        kind: FieldKind::Price,
        help: "drop of the Amazon's own price over the last quarter (90 days) (positive = dropped), cents",
    },
    FieldSpec {
        name: "delta.new.day",
        kind: FieldKind::Price,
        help: "drop of the lowest new price over the last day (positive = dropped), cents",
    },
    FieldSpec {
        name: "delta.new.week",
        kind: FieldKind::Price,
        help: "drop of the lowest new price over the last week (positive = dropped), cents",
    },
    FieldSpec {
        name: "delta.new.month",
        kind: FieldKind::Price,
        help: "drop of the lowest new price over the last month (positive = dropped), cents",
    },
    FieldSpec {
        name: "delta.new.quarter",
        kind: FieldKind::Price,
        help: "drop of the lowest new price over the last quarter (90 days) (positive = dropped), cents",
    },
    FieldSpec {
        name: "delta.used.day",
        kind: FieldKind::Price,
        help: "drop of the lowest used price over the last day (positive = dropped), cents",
    },
    FieldSpec {
        name: "delta.used.week",
        kind: FieldKind::Price,
        help: "drop of the lowest used price over the last week (positive = dropped), cents",
    },
    FieldSpec {
        name: "delta.used.month",
        kind: FieldKind::Price,
        help: "drop of the lowest used price over the last month (positive = dropped), cents",
    },
    FieldSpec {
        name: "delta.used.quarter",
        kind: FieldKind::Price,
        help: "drop of the lowest used price over the last quarter (90 days) (positive = dropped), cents",
    },
    FieldSpec {
        name: "delta.buy_box.day",
        kind: FieldKind::Price,
        help: "drop of the Buy Box price over the last day (positive = dropped), cents",
    },
    FieldSpec {
        name: "delta.buy_box.week",
        kind: FieldKind::Price,
        help: "drop of the Buy Box price over the last week (positive = dropped), cents",
    },
    FieldSpec {
        name: "delta.buy_box.month",
        kind: FieldKind::Price,
        help: "drop of the Buy Box price over the last month (positive = dropped), cents",
    },
    FieldSpec {
        name: "delta.buy_box.quarter",
        kind: FieldKind::Price,
        help: "drop of the Buy Box price over the last quarter (90 days) (positive = dropped), cents",
    },
    FieldSpec {
        name: "delta.sales_rank.day",
        kind: FieldKind::Int,
        help: "drop of the sales rank over the last day (positive = dropped)",
    },
    FieldSpec {
        name: "delta.sales_rank.week",
        kind: FieldKind::Int,
        help: "drop of the sales rank over the last week (positive = dropped)",
    },
    FieldSpec {
        name: "delta.sales_rank.month",
        kind: FieldKind::Int,
        help: "drop of the sales rank over the last month (positive = dropped)",
    },
    FieldSpec {
        name: "delta.sales_rank.quarter",
        kind: FieldKind::Int,
        help: "drop of the sales rank over the last quarter (90 days) (positive = dropped)",
    },
    FieldSpec {
        name: "avg.amazon.day",
        kind: FieldKind::Price,
        help: "average Amazon's own price over the last day, cents",
    },
    FieldSpec {
        name: "avg.amazon.week",
        kind: FieldKind::Price,
        help: "average Amazon's own price over the last week, cents",
    },
    FieldSpec {
        name: "avg.amazon.month",
        kind: FieldKind::Price,
        help: "average Amazon's own price over the last month, cents",
    },
    FieldSpec {
        name: "avg.amazon.quarter",
        kind: FieldKind::Price,
        help: "average Amazon's own price over the last quarter (90 days), cents",
    },
    FieldSpec {
        name: "avg.new.day",
        kind: FieldKind::Price,
        help: "average lowest new price over the last day, cents",
    },
    FieldSpec {
        name: "avg.new.week",
        kind: FieldKind::Price,
        help: "average lowest new price over the last week, cents",
    },
    FieldSpec {
        name: "avg.new.month",
        kind: FieldKind::Price,
        help: "average lowest new price over the last month, cents",
    },
    FieldSpec {
        name: "avg.new.quarter",
        kind: FieldKind::Price,
        help: "average lowest new price over the last quarter (90 days), cents",
    },
    FieldSpec {
        name: "avg.used.day",
        kind: FieldKind::Price,
        help: "average lowest used price over the last day, cents",
    },
    FieldSpec {
        name: "avg.used.week",
        kind: FieldKind::Price,
        help: "average lowest used price over the last week, cents",
    },
    FieldSpec {
        name: "avg.used.month",
        kind: FieldKind::Price,
        help: "average lowest used price over the last month, cents",
    },
    FieldSpec {
        name: "avg.used.quarter",
        kind: FieldKind::Price,
        help: "average lowest used price over the last quarter (90 days), cents",
    },
    FieldSpec {
        name: "avg.buy_box.day",
        kind: FieldKind::Price,
        help: "average Buy Box price over the last day, cents",
    },
    FieldSpec {
        name: "avg.buy_box.week",
        kind: FieldKind::Price,
        help: "average Buy Box price over the last week, cents",
    },
    FieldSpec {
        name: "avg.buy_box.month",
        kind: FieldKind::Price,
        help: "average Buy Box price over the last month, cents",
    },
    FieldSpec {
        name: "avg.buy_box.quarter",
        kind: FieldKind::Price,
        help: "average Buy Box price over the last quarter (90 days), cents",
    },
    FieldSpec {
        name: "avg.sales_rank.day",
        kind: FieldKind::Int,
        help: "average sales rank over the last day",
    },
    FieldSpec {
        name: "avg.sales_rank.week",
        kind: FieldKind::Int,
        help: "average sales rank over the last week",
    },
    FieldSpec {
        name: "avg.sales_rank.month",
        kind: FieldKind::Int,
        help: "average sales rank over the last month",
    },
    FieldSpec {
        name: "avg.sales_rank.quarter",
        kind: FieldKind::Int,
        help: "average sales rank over the last quarter (90 days)",
    },
];

/// Fields of the product-stats stage (a `/product` call with `stats`, no offers).
pub const STATS_FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "stats.current.amazon",
        kind: FieldKind::Price,
        help: "current Amazon's own price from the product's stats, cents",
    },
    FieldSpec {
        name: "stats.current.new",
        kind: FieldKind::Price,
        help: "current lowest new price from the product's stats, cents",
    },
    FieldSpec {
        name: "stats.current.used",
        kind: FieldKind::Price,
        help: "current lowest used price from the product's stats, cents",
    },
    FieldSpec {
        name: "stats.current.buy_box",
        kind: FieldKind::Price,
        help: "current Buy Box price from the product's stats, cents",
    },
    FieldSpec {
        name: "stats.current.sales_rank",
        kind: FieldKind::Int,
        help: "current sales rank from the product's stats",
    },
    FieldSpec {
        name: "stats.avg30.amazon",
        kind: FieldKind::Price,
        help: "average Amazon's own price over 30 days, cents",
    },
    FieldSpec {
        name: "stats.avg30.new",
        kind: FieldKind::Price,
        help: "average lowest new price over 30 days, cents",
    },
    FieldSpec {
        name: "stats.avg30.used",
        kind: FieldKind::Price,
        help: "average lowest used price over 30 days, cents",
    },
    FieldSpec {
        name: "stats.avg30.buy_box",
        kind: FieldKind::Price,
        help: "average Buy Box price over 30 days, cents",
    },
    FieldSpec {
        name: "stats.avg30.sales_rank",
        kind: FieldKind::Int,
        help: "average sales rank over 30 days",
    },
    FieldSpec {
        name: "stats.avg90.amazon",
        kind: FieldKind::Price,
        help: "average Amazon's own price over 90 days, cents",
    },
    FieldSpec {
        name: "stats.avg90.new",
        kind: FieldKind::Price,
        help: "average lowest new price over 90 days, cents",
    },
    FieldSpec {
        name: "stats.avg90.used",
        kind: FieldKind::Price,
        help: "average lowest used price over 90 days, cents",
    },
    FieldSpec {
        name: "stats.avg90.buy_box",
        kind: FieldKind::Price,
        help: "average Buy Box price over 90 days, cents",
    },
    FieldSpec {
        name: "stats.avg90.sales_rank",
        kind: FieldKind::Int,
        help: "average sales rank over 90 days",
    },
    FieldSpec {
        name: "stats.avg180.amazon",
        kind: FieldKind::Price,
        help: "average Amazon's own price over 180 days, cents",
    },
    FieldSpec {
        name: "stats.avg180.new",
        kind: FieldKind::Price,
        help: "average lowest new price over 180 days, cents",
    },
    FieldSpec {
        name: "stats.avg180.used",
        kind: FieldKind::Price,
        help: "average lowest used price over 180 days, cents",
    },
    FieldSpec {
        name: "stats.avg180.buy_box",
        kind: FieldKind::Price,
        help: "average Buy Box price over 180 days, cents",
    },
    FieldSpec {
        name: "stats.avg180.sales_rank",
        kind: FieldKind::Int,
        help: "average sales rank over 180 days",
    },
    FieldSpec {
        name: "stats.sales_rank_drops30",
        kind: FieldKind::Int,
        help: "sales rank drops in the last 30 days (each roughly a sale)",
    },
    FieldSpec {
        name: "stats.sales_rank_drops90",
        kind: FieldKind::Int,
        help: "sales rank drops in the last 90 days (each roughly a sale)",
    },
    FieldSpec {
        name: "stats.sales_rank_drops180",
        kind: FieldKind::Int,
        help: "sales rank drops in the last 180 days (each roughly a sale)",
    },
    FieldSpec {
        name: "stats.sales_rank_drops365",
        kind: FieldKind::Int,
        help: "sales rank drops in the last 365 days (each roughly a sale)",
    },
    FieldSpec {
        name: "stats.offer_count.new",
        kind: FieldKind::Int,
        help: "current number of new offers",
    },
    FieldSpec {
        name: "stats.offer_count.used",
        kind: FieldKind::Int,
        help: "current number of used offers",
    },
    FieldSpec {
        name: "stats.offer_count.fba",
        kind: FieldKind::Int,
        help: "current number of FBA (fulfilled by Amazon) offers",
    },
    FieldSpec {
        name: "stats.offer_count.fbm",
        kind: FieldKind::Int,
        help: "current number of FBM (fulfilled by merchant) offers",
    },
    FieldSpec {
        name: "stats.monthly_sold",
        kind: FieldKind::Int,
        help: "Amazon's \"bought in past month\" figure",
    },
];

/// Fields of the product-offers stage (a `/product` call with `offers`).
pub const OFFERS_FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "offers.lowest_used",
        kind: FieldKind::Price,
        help: "lowest used offer, price plus shipping, cents",
    },
    FieldSpec {
        name: "offers.lowest_new",
        kind: FieldKind::Price,
        help: "lowest new offer, price plus shipping, cents",
    },
    FieldSpec {
        name: "offers.count_used",
        kind: FieldKind::Int,
        help: "used offers among those fetched",
    },
    FieldSpec {
        name: "offers.count_new",
        kind: FieldKind::Int,
        help: "new offers among those fetched",
    },
    FieldSpec {
        name: "offers.lowest_used_condition",
        kind: FieldKind::Int,
        help: "condition of the lowest used offer: 2 like new, 3 very good, 4 good, 5 acceptable",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_counted() {
        let mut names: Vec<_> = all_names().collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
        assert_eq!(DEAL_FIELDS.len(), 7 + 3 * 5 * 4);
        assert_eq!(STATS_FIELDS.len(), 4 * 5 + 4 + 4 + 1);
        assert_eq!(OFFERS_FIELDS.len(), 5);
    }

    #[test]
    fn lookup_reports_the_stage() {
        assert_eq!(lookup("current.used").map(|(_, s)| s), Some(Stage::Deal));
        assert_eq!(
            lookup("stats.avg90.sales_rank").map(|(f, _)| f.kind),
            Some(FieldKind::Int)
        );
        assert_eq!(
            lookup("offers.lowest_used").map(|(_, s)| s),
            Some(Stage::Offers)
        );
        assert!(lookup("curent.used").is_none());
    }
}
