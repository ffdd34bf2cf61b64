//! The SQL both backends share (one dialect: `$n` placeholders,
//! `ON CONFLICT … DO UPDATE`, Unix-ms `BIGINT`/`INTEGER` times), and the
//! embedded migrations.

/// One schema change, with its DDL for each backend.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sqlite: &'static str,
    pub(crate) postgres: &'static str,
}

/// Every migration, oldest first. Append only; never edit a shipped one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sqlite: include_str!("migrations/0001_init.sqlite.sql"),
        postgres: include_str!("migrations/0001_init.postgres.sql"),
    },
    Migration {
        version: 2,
        name: "deal_deltas_raw",
        sqlite: include_str!("migrations/0002_deal_deltas_raw.sqlite.sql"),
        postgres: include_str!("migrations/0002_deal_deltas_raw.postgres.sql"),
    },
    Migration {
        version: 3,
        name: "feed_pages",
        sqlite: include_str!("migrations/0003_feed_pages.sqlite.sql"),
        postgres: include_str!("migrations/0003_feed_pages.postgres.sql"),
    },
    Migration {
        version: 4,
        name: "alert_outbox",
        sqlite: include_str!("migrations/0004_alert_outbox.sqlite.sql"),
        postgres: include_str!("migrations/0004_alert_outbox.postgres.sql"),
    },
    Migration {
        version: 5,
        name: "budget_samples",
        sqlite: include_str!("migrations/0005_budget_samples.sqlite.sql"),
        postgres: include_str!("migrations/0005_budget_samples.postgres.sql"),
    },
    Migration {
        version: 6,
        name: "product_histories",
        sqlite: include_str!("migrations/0006_product_histories.sqlite.sql"),
        postgres: include_str!("migrations/0006_product_histories.postgres.sql"),
    },
];

pub(crate) const CREATE_SCHEMA_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at_ms BIGINT NOT NULL
)";
pub(crate) const APPLIED_VERSIONS: &str =
    "SELECT CAST(version AS BIGINT) FROM schema_migrations ORDER BY version";
pub(crate) const RECORD_MIGRATION: &str = "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3) ON CONFLICT (version) DO NOTHING";
/// Serialises migrations between PostgreSQL processes starting at once.
pub(crate) const PG_MIGRATION_LOCK: &str = "SELECT pg_advisory_xact_lock(7242853160412)";

/// A deal: kept fields replaced only by a sighting at least as new;
/// `first_seen_ms` never changes once stored. `raw_json` follows the newest
/// sighting too (NULL when that run did not keep it).
pub(crate) const UPSERT_DEAL: &str = "INSERT INTO deals (domain, asin, title, root_category, price_type,
    current_amazon, current_new, current_used, current_buy_box, sales_rank,
    delta_percent_day, delta_percent_week, delta_percent_month, delta_percent_quarter,
    creation_date_ms, last_update_ms, first_seen_ms, last_seen_ms,
    delta_day, delta_week, delta_month, delta_quarter, raw_json)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17,
    $18, $19, $20, $21, $22)
ON CONFLICT (domain, asin) DO UPDATE SET
    title = excluded.title, root_category = excluded.root_category, price_type = excluded.price_type,
    current_amazon = excluded.current_amazon, current_new = excluded.current_new,
    current_used = excluded.current_used, current_buy_box = excluded.current_buy_box,
    sales_rank = excluded.sales_rank, delta_percent_day = excluded.delta_percent_day,
    delta_percent_week = excluded.delta_percent_week, delta_percent_month = excluded.delta_percent_month,
    delta_percent_quarter = excluded.delta_percent_quarter, creation_date_ms = excluded.creation_date_ms,
    last_update_ms = excluded.last_update_ms, last_seen_ms = excluded.last_seen_ms,
    delta_day = excluded.delta_day, delta_week = excluded.delta_week,
    delta_month = excluded.delta_month, delta_quarter = excluded.delta_quarter,
    raw_json = excluded.raw_json
WHERE excluded.last_seen_ms >= deals.last_seen_ms";

/// The product columns after `(domain, asin)`, in [`ProductRow`](super::ProductRow) order.
pub(crate) const PRODUCT_COLUMNS: &[&str] = &[
    "title",
    "current_amazon",
    "current_new",
    "current_used",
    "current_buy_box",
    "avg30_amazon",
    "avg30_new",
    "avg30_used",
    "avg30_buy_box",
    "avg90_amazon",
    "avg90_new",
    "avg90_used",
    "avg90_buy_box",
    "avg180_amazon",
    "avg180_new",
    "avg180_used",
    "avg180_buy_box",
    "sales_rank",
    "sales_rank_avg90",
    "sales_rank_drops30",
    "sales_rank_drops90",
    "sales_rank_drops180",
    "sales_rank_drops365",
    "offer_count_new",
    "offer_count_used",
    "offer_count_fba",
    "offer_count_fbm",
    "lowest_used_price",
    "lowest_used_seller",
    "lowest_used_condition",
    "lowest_new_price",
    "monthly_sold",
    "keepa_last_update_ms",
    "fetched_at_ms",
    "stage",
    "tokens_charged",
];

/// A product: every column replaced by a fetch at least as new.
pub(crate) fn upsert_product() -> String {
    let cols = PRODUCT_COLUMNS.join(", ");
    let params: Vec<String> = (1..=PRODUCT_COLUMNS.len() + 2)
        .map(|i| format!("${i}"))
        .collect();
    let sets: Vec<String> = PRODUCT_COLUMNS
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO products (domain, asin, {cols}) VALUES ({}) ON CONFLICT (domain, asin) DO UPDATE SET {} WHERE excluded.fetched_at_ms >= products.fetched_at_ms",
        params.join(", "),
        sets.join(", ")
    )
}

/// A product's csv histories: replaced by a fetch at least as new.
pub(crate) const UPSERT_HISTORY: &str =
    "INSERT INTO product_histories (domain, asin, csv, fetched_at_ms) VALUES ($1, $2, $3, $4)
ON CONFLICT (domain, asin) DO UPDATE SET csv = excluded.csv, fetched_at_ms = excluded.fetched_at_ms
WHERE excluded.fetched_at_ms >= product_histories.fetched_at_ms";

/// One page of stored histories, keyset-paged by `(domain, asin)`.
pub(crate) const HISTORY_PAGE: &str = "SELECT domain, asin, csv FROM product_histories \
     WHERE domain > $1 OR (domain = $1 AND asin > $2) ORDER BY domain, asin LIMIT $3";
pub(crate) const COUNT_HISTORIES: &str = "SELECT COUNT(*) FROM product_histories";

/// A rejection: replaced by one at least as new.
pub(crate) const UPSERT_REJECTION: &str =
    "INSERT INTO rejections (domain, asin, stage, reason, rejected_at_ms, expires_at_ms)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (domain, asin) DO UPDATE SET stage = excluded.stage, reason = excluded.reason,
    rejected_at_ms = excluded.rejected_at_ms, expires_at_ms = excluded.expires_at_ms
WHERE excluded.rejected_at_ms >= rejections.rejected_at_ms";

/// A ledger row: the same row again is the same request (unique index over all fields).
pub(crate) const INSERT_REQUEST: &str = "INSERT INTO requests (at_ms, job, stage, endpoint, items, predicted, charged, tokens_left, status)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING";

pub(crate) const UPSERT_CHECKPOINT: &str =
    "INSERT INTO checkpoints (job, value, updated_at_ms) VALUES ($1, $2, $3)
ON CONFLICT (job) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms";

/// A finished feed page: done once, the first record kept.
pub(crate) const INSERT_FEED_PAGE: &str =
    "INSERT INTO feed_pages (job, page, deals, done_at_ms) VALUES ($1, $2, $3, $4)
ON CONFLICT (job, page) DO NOTHING";
pub(crate) const SELECT_FEED_PAGES: &str =
    "SELECT page, deals FROM feed_pages WHERE job = $1 ORDER BY page";

/// A deal as stored before a commit: what decides its alert.
pub(crate) const SELECT_DEAL_BEFORE: &str = "SELECT last_seen_ms, price_type, current_amazon, current_new, current_used, current_buy_box FROM deals WHERE domain = $1 AND asin = $2";

/// An outbox row; the same (alert, deal, kind, version) again is not stored.
pub(crate) const INSERT_ALERT: &str = "INSERT INTO alert_outbox (alert, domain, asin, kind, version, payload, created_ms, next_attempt_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (alert, domain, asin, kind, version) DO NOTHING";

pub(crate) const SELECT_RAW_DEAL: &str =
    "SELECT raw_json FROM deals WHERE domain = $1 AND asin = $2";
pub(crate) const SELECT_CHECKPOINT: &str = "SELECT value FROM checkpoints WHERE job = $1";
pub(crate) const COUNT_DEALS: &str = "SELECT COUNT(*) FROM deals";
pub(crate) const COUNT_PRODUCTS: &str = "SELECT COUNT(*) FROM products";
pub(crate) const COUNT_ACTIVE_REJECTIONS: &str =
    "SELECT COUNT(*) FROM rejections WHERE expires_at_ms > $1";
pub(crate) const ALL_CHECKPOINTS: &str =
    "SELECT job, value, updated_at_ms FROM checkpoints ORDER BY job";
pub(crate) const TOKENS_BETWEEN: &str = "SELECT CAST(COALESCE(SUM(charged), 0) AS BIGINT) FROM requests WHERE at_ms > $1 AND at_ms <= $2";
pub(crate) const DEALS_FIRST_SEEN_BETWEEN: &str =
    "SELECT COUNT(*) FROM deals WHERE first_seen_ms > $1 AND first_seen_ms <= $2";
pub(crate) const LATEST_REQUEST: &str = "SELECT MAX(at_ms) FROM requests";
pub(crate) const TOKENS_TOTAL: &str =
    "SELECT CAST(COALESCE(SUM(charged), 0) AS BIGINT) FROM requests";
pub(crate) const TOKENS_BY_JOB: &str =
    "SELECT job, CAST(COALESCE(SUM(charged), 0) AS BIGINT) FROM requests GROUP BY job ORDER BY job";
pub(crate) const REQUESTS_BY_STATUS: &str =
    "SELECT status, COUNT(*) FROM requests GROUP BY status ORDER BY status";
pub(crate) const STALE_PRODUCTS: &str = "SELECT asin FROM products WHERE domain = $1 AND fetched_at_ms < $2 ORDER BY fetched_at_ms, asin LIMIT $3";

/// `… IN ($first, …)` with `n` placeholders.
pub(crate) fn in_list(first: usize, n: usize) -> String {
    let p: Vec<String> = (first..first + n).map(|i| format!("${i}")).collect();
    p.join(", ")
}

/// How a column of the export is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    /// Unix milliseconds (an integer in CSV and JSON Lines, a UTC
    /// timestamp in Parquet).
    Time,
    /// Unix milliseconds written as an RFC 3339 UTC time in CSV and JSON
    /// Lines (`2026-01-08T00:31:00Z`), a UTC timestamp in Parquet.
    Instant,
    Text,
}

/// The export's columns: `(select expression, output name, kind)`. Product
/// columns that share a deal column's name carry a `product_` prefix.
pub(crate) fn export_columns() -> Vec<(String, String, Kind)> {
    const DEAL: &[(&str, Kind)] = &[
        ("domain", Kind::Int),
        ("asin", Kind::Text),
        ("title", Kind::Text),
        ("root_category", Kind::Int),
        ("price_type", Kind::Int),
        ("current_amazon", Kind::Int),
        ("current_new", Kind::Int),
        ("current_used", Kind::Int),
        ("current_buy_box", Kind::Int),
        ("sales_rank", Kind::Int),
        ("delta_percent_day", Kind::Int),
        ("delta_percent_week", Kind::Int),
        ("delta_percent_month", Kind::Int),
        ("delta_percent_quarter", Kind::Int),
        ("delta_day", Kind::Int),
        ("delta_week", Kind::Int),
        ("delta_month", Kind::Int),
        ("delta_quarter", Kind::Int),
        ("creation_date_ms", Kind::Time),
        ("last_update_ms", Kind::Time),
        ("first_seen_ms", Kind::Time),
        ("last_seen_ms", Kind::Time),
    ];
    let mut out: Vec<(String, String, Kind)> = DEAL
        .iter()
        .map(|(c, k)| (format!("d.{c}"), (*c).to_string(), *k))
        .collect();
    for c in PRODUCT_COLUMNS {
        let kind = if matches!(*c, "title" | "lowest_used_seller" | "stage") {
            Kind::Text
        } else if c.ends_with("_ms") {
            Kind::Time
        } else {
            Kind::Int
        };
        let name = if DEAL.iter().any(|(d, _)| d == c) || *c == "stage" {
            format!("product_{c}")
        } else {
            (*c).to_string()
        };
        out.push((format!("p.{c}"), name, kind));
    }
    out
}

/// One page of the export, keyset-paged by `(domain, asin)`.
pub(crate) fn export_page(columns: &[(String, String, Kind)]) -> String {
    let select: Vec<&str> = columns.iter().map(|(e, _, _)| e.as_str()).collect();
    format!(
        "SELECT {} FROM deals d LEFT JOIN products p ON p.domain = d.domain AND p.asin = d.asin \
         WHERE d.domain > $1 OR (d.domain = $1 AND d.asin > $2) ORDER BY d.domain, d.asin LIMIT $3",
        select.join(", ")
    )
}
