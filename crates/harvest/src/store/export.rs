//! Export: every stored deal joined with its product, as CSV or JSON lines.

use sqlx::{AssertSqlSafe, Row};

use super::sql::{self, Kind};
use super::{classify, ExportFormat, Pool, Store, StoreError};

/// Rows per page of [`Store::export`].
const EXPORT_PAGE: i64 = 1000;

impl Store {
    /// Writes every stored deal joined with its product's fields to `out`,
    /// ordered by `(domain, asin)`, a page at a time (memory stays bounded);
    /// returns the rows written. Columns: the deal's, then the product's
    /// (empty/`null` when no product is stored); a product column sharing a
    /// deal column's name is prefixed `product_`.
    pub async fn export(
        &self,
        format: ExportFormat,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<u64, StoreError> {
        let columns = sql::export_columns();
        let page_sql = sql::export_page(&columns);
        let db = &self.db;
        let q = |e: sqlx::Error| classify(db, "read deals for export", &e);
        let w = |source: std::io::Error| StoreError::Write {
            db: db.clone(),
            source,
        };
        if format == ExportFormat::Csv {
            let header: Vec<String> = columns.iter().map(|(_, n, _)| csv_field(n)).collect();
            writeln!(out, "{}", header.join(",")).map_err(w)?;
        }
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
                            Kind::Int => row
                                .try_get::<Option<i64>, _>(i)
                                .map_err(q)?
                                .map_or(Cell::Null, Cell::Int),
                            Kind::Text => row
                                .try_get::<Option<String>, _>(i)
                                .map_err(q)?
                                .map_or(Cell::Null, Cell::Text),
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
            for cells in &page {
                match format {
                    ExportFormat::Csv => {
                        let fields: Vec<String> = cells
                            .iter()
                            .map(|c| match c {
                                Cell::Null => String::new(),
                                Cell::Int(n) => n.to_string(),
                                Cell::Text(s) => csv_field(s),
                            })
                            .collect();
                        writeln!(out, "{}", fields.join(",")).map_err(w)?;
                    }
                    ExportFormat::Jsonl => {
                        let mut obj = serde_json::Map::with_capacity(columns.len());
                        for ((_, name, _), c) in columns.iter().zip(cells) {
                            let v = match c {
                                Cell::Null => serde_json::Value::Null,
                                Cell::Int(n) => serde_json::Value::from(*n),
                                Cell::Text(s) => serde_json::Value::from(s.as_str()),
                            };
                            obj.insert(name.clone(), v);
                        }
                        let line = serde_json::Value::Object(obj).to_string();
                        writeln!(out, "{line}").map_err(w)?;
                    }
                }
                written += 1;
            }
            if !full {
                break;
            }
        }
        out.flush().map_err(w)?;
        Ok(written)
    }
}

/// One exported value.
enum Cell {
    Null,
    Int(i64),
    Text(String),
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
}
