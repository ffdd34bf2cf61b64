//! Export: every stored deal joined with its product, and the stored
//! products' csv histories in long format, as CSV, JSON Lines or Parquet.

use std::io::Write;

use sqlx::{AssertSqlSafe, Row};

use super::parquet::ParquetWriter;
use super::sql::{self, Kind};
use super::{classify, ExportFormat, Pool, Store, StoreError};
use crate::history;

/// Rows per page of [`Store::export`].
const EXPORT_PAGE: i64 = 1000;

/// Products per page of [`Store::export_history`] (each holds up to a few
/// thousand points).
const HISTORY_PAGE: i64 = 100;

/// The columns of [`Store::export_history`].
const HISTORY_COLUMNS: [(&str, Kind); 5] = [
    ("asin", Kind::Text),
    ("domain", Kind::Int),
    ("series", Kind::Text),
    ("time", Kind::Instant),
    ("value", Kind::Int),
];

/// What [`Store::export_history`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryExport {
    /// Products with a stored history.
    pub products: u64,
    /// Rows (points) written.
    pub rows: u64,
    /// What was left out, each naming the product and the series (a
    /// series Keepa sent malformed, an index it has not documented).
    pub skipped: Vec<String>,
}

impl Store {
    /// Writes every stored deal joined with its product's fields to `out`,
    /// ordered by `(domain, asin)`, a page at a time (memory stays bounded);
    /// returns the rows written. Columns: the deal's, then the product's
    /// (empty/`null` when no product is stored); a product column sharing a
    /// deal column's name is prefixed `product_`. Times (`*_ms`) are Unix
    /// milliseconds in CSV and JSON Lines, UTC timestamps in Parquet.
    pub async fn export(
        &self,
        format: ExportFormat,
        out: &mut (dyn Write + Send),
    ) -> Result<u64, StoreError> {
        let columns = sql::export_columns();
        let page_sql = sql::export_page(&columns);
        let db = &self.db;
        let q = |e: sqlx::Error| classify(db, "read deals for export", &e);
        let names: Vec<(String, Kind)> = columns.iter().map(|(_, n, k)| (n.clone(), *k)).collect();
        let mut sink = Sink::open(format, names, out).map_err(|e| self.write_error(e))?;
        let mut written = 0u64;
        let mut after: (i64, String) = (0, String::new());
        loop {
            let mut page: Vec<Vec<Cell>> = Vec::new();
            with_pool!(self, p => {
                let rows = sqlx::query(AssertSqlSafe(page_sql.as_str()))
                    .bind(after.0)
                    .bind(after.1.as_str())
                    .bind(EXPORT_PAGE)
                    .fetch_all(p)
                    .await
                    .map_err(q)?;
                for row in rows {
                    let mut cells = Vec::with_capacity(columns.len());
                    for (i, (_, _, kind)) in columns.iter().enumerate() {
                        cells.push(match kind {
                            Kind::Text => row
                                .try_get::<Option<String>, _>(i)
                                .map_err(q)?
                                .map_or(Cell::Null, Cell::Text),
                            _ => row
                                .try_get::<Option<i64>, _>(i)
                                .map_err(q)?
                                .map_or(Cell::Null, Cell::Int),
                        });
                    }
                    page.push(cells);
                }
            });
            let full = page.len() as i64 == EXPORT_PAGE;
            if let Some(last) = page.last() {
                if let (Cell::Int(d), Cell::Text(a)) = (&last[0], &last[1]) {
                    after = (*d, a.clone());
                }
            }
            for cells in page {
                sink.row(cells).map_err(|e| self.write_error(e))?;
                written += 1;
            }
            if !full {
                break;
            }
        }
        sink.finish().map_err(|e| self.write_error(e))?;
        Ok(written)
    }

    /// Products with a stored csv history (`keep_history`).
    pub async fn count_histories(&self) -> Result<u64, StoreError> {
        let n: i64 = with_pool!(self, p => {
            sqlx::query_scalar(sql::COUNT_HISTORIES).fetch_one(p).await
        })
        .map_err(|e| classify(&self.db, "count product histories", &e))?;
        Ok(n.max(0) as u64)
    }

    /// Writes the stored products' csv histories in long format, one row
    /// per point: `asin`, `domain`, `series` (Keepa's csv type name, e.g.
    /// `NEW`, `SALES`), `time` (when the value began: RFC 3339 UTC in CSV
    /// and JSON Lines, a UTC timestamp in Parquet), `value` (cents, rank,
    /// count; null for Keepa's `-1`/`-2`). Products in `(domain, asin)`
    /// order, series in Keepa's index order, points oldest first, exactly
    /// as [`history::decode`] reads them. A series that cannot be decoded
    /// is left out and named in [`HistoryExport::skipped`].
    pub async fn export_history(
        &self,
        format: ExportFormat,
        out: &mut (dyn Write + Send),
    ) -> Result<HistoryExport, StoreError> {
        let db = &self.db;
        let q = |e: sqlx::Error| classify(db, "read product histories for export", &e);
        let names = HISTORY_COLUMNS
            .iter()
            .map(|(n, k)| ((*n).to_string(), *k))
            .collect();
        let mut sink = Sink::open(format, names, out).map_err(|e| self.write_error(e))?;
        let mut done = HistoryExport::default();
        let mut after: (i64, String) = (0, String::new());
        loop {
            let page: Vec<(i64, String, String)> = with_pool!(self, p => {
                sqlx::query_as(sql::HISTORY_PAGE)
                    .bind(after.0)
                    .bind(after.1.as_str())
                    .bind(HISTORY_PAGE)
                    .fetch_all(p)
                    .await
                    .map_err(q)?
            });
            let full = page.len() as i64 == HISTORY_PAGE;
            if let Some((d, a, _)) = page.last() {
                after = (*d, a.clone());
            }
            for (domain, asin, csv) in page {
                done.products += 1;
                let decoded = match history::decode(&csv) {
                    Ok(d) => d,
                    Err(e) => {
                        done.skipped.push(format!("{asin} (domain {domain}): {e}"));
                        continue;
                    }
                };
                for why in decoded.skipped {
                    done.skipped
                        .push(format!("{asin} (domain {domain}): {why}"));
                }
                for point in decoded.points {
                    let cells = vec![
                        Cell::Text(asin.clone()),
                        Cell::Int(domain),
                        Cell::Text(point.series.keepa_name().to_string()),
                        Cell::Int(point.time_ms),
                        point.value.map_or(Cell::Null, Cell::Int),
                    ];
                    sink.row(cells).map_err(|e| self.write_error(e))?;
                    done.rows += 1;
                }
            }
            if !full {
                break;
            }
        }
        sink.finish().map_err(|e| self.write_error(e))?;
        Ok(done)
    }

    fn write_error(&self, source: std::io::Error) -> StoreError {
        StoreError::Write {
            db: self.db.clone(),
            source,
        }
    }
}

/// One exported value.
pub(super) enum Cell {
    Null,
    Int(i64),
    Text(String),
}

/// Where exported rows go, in the chosen format.
enum Sink<'a> {
    /// CSV or JSON Lines.
    Text {
        json: bool,
        columns: Vec<(String, Kind)>,
        out: &'a mut (dyn Write + Send),
    },
    Parquet(ParquetWriter<'a>),
}

impl<'a> Sink<'a> {
    /// Starts the output (the CSV header, the Parquet schema).
    fn open(
        format: ExportFormat,
        columns: Vec<(String, Kind)>,
        out: &'a mut (dyn Write + Send),
    ) -> std::io::Result<Self> {
        Ok(match format {
            ExportFormat::Csv => {
                let header: Vec<String> = columns.iter().map(|(n, _)| csv_field(n)).collect();
                writeln!(out, "{}", header.join(","))?;
                Sink::Text {
                    json: false,
                    columns,
                    out,
                }
            }
            ExportFormat::Jsonl => Sink::Text {
                json: true,
                columns,
                out,
            },
            ExportFormat::Parquet => Sink::Parquet(ParquetWriter::new(&columns, out)?),
        })
    }

    /// Writes one row, a cell per column.
    fn row(&mut self, cells: Vec<Cell>) -> std::io::Result<()> {
        match self {
            Sink::Parquet(p) => p.row(cells),
            Sink::Text {
                json: false,
                columns,
                out,
            } => {
                let fields: Vec<String> = columns
                    .iter()
                    .zip(&cells)
                    .map(|((_, kind), c)| match (c, kind) {
                        (Cell::Null, _) => String::new(),
                        (Cell::Int(n), Kind::Instant) => rfc3339(*n),
                        (Cell::Int(n), _) => n.to_string(),
                        (Cell::Text(s), _) => csv_field(s),
                    })
                    .collect();
                writeln!(out, "{}", fields.join(","))
            }
            Sink::Text {
                json: true,
                columns,
                out,
            } => {
                let mut obj = serde_json::Map::with_capacity(columns.len());
                for ((name, kind), c) in columns.iter().zip(cells) {
                    let v = match (c, kind) {
                        (Cell::Null, _) => serde_json::Value::Null,
                        (Cell::Int(n), Kind::Instant) => serde_json::Value::from(rfc3339(n)),
                        (Cell::Int(n), _) => serde_json::Value::from(n),
                        (Cell::Text(s), _) => serde_json::Value::from(s),
                    };
                    obj.insert(name.clone(), v);
                }
                writeln!(out, "{}", serde_json::Value::Object(obj))
            }
        }
    }

    /// Completes the output (the Parquet footer) and flushes it.
    fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::Parquet(p) => p.finish(),
            Sink::Text { out, .. } => out.flush(),
        }
    }
}

/// Unix milliseconds as RFC 3339 UTC (`2026-01-08T00:31:00Z`, milliseconds
/// shown only when not zero); outside years 1970–9999, which no Keepa time
/// reaches, the integer itself.
fn rfc3339(ms: i64) -> String {
    const YEAR_10000_MS: i64 = 253_402_300_800_000;
    if !(0..YEAR_10000_MS).contains(&ms) {
        return ms.to_string();
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
    if ms % 1000 == 0 {
        humantime::format_rfc3339_seconds(t).to_string()
    } else {
        humantime::format_rfc3339_millis(t).to_string()
    }
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn instants_are_rfc3339_utc_and_out_of_range_stays_an_integer() {
        assert_eq!(rfc3339(1_293_840_000_000), "2011-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_293_840_000_250), "2011-01-01T00:00:00.250Z");
        assert_eq!(rfc3339(-1), "-1");
        assert_eq!(rfc3339(i64::MAX), i64::MAX.to_string());
    }
}
