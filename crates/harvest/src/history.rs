//! A product's stored `csv` histories (kept with `keep_history = true`)
//! decoded into long rows, one per point, for `export --history`.
//!
//! Guarantees: decoding is `keepa::model`'s ([`History`]), times convert
//! only through `keepa::time`; a sentinel (`-1` no data, `-2` unknown) is
//! `None`, never a number; a series that cannot be decoded is skipped
//! with a message naming it, never a panic and never a guess.

use keepa::model::{CsvType, History};

/// One point of one history: the value in force from `time_ms` until the
/// next point of the same series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPoint {
    /// Which history (Keepa's csv type; its name is [`CsvType::keepa_name`]).
    pub series: CsvType,
    /// When the value began, Unix milliseconds (UTC; a whole Keepa minute).
    pub time_ms: i64,
    /// The value: prices in cents (the shipping types: price plus
    /// shipping, as [`History::points`]), ranks, counts, rating × 10;
    /// `None` for Keepa's `-1` (no offer, out of stock) and `-2` (unknown).
    pub value: Option<i64>,
}

/// A product's decoded histories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Every point, series in Keepa's index order, each oldest first.
    pub points: Vec<HistoryPoint>,
    /// The series left out, each with why (an index Keepa has not defined,
    /// a length that is not a multiple of the type's stride).
    pub skipped: Vec<String>,
}

/// The stored text is not `csv`'s JSON shape (an array of integer arrays
/// or `null`s).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored csv is not an array of integer arrays: {0}")]
pub struct NotCsv(pub String);

/// Decodes the `csv` JSON array stored for one product.
pub fn decode(csv_json: &str) -> Result<Decoded, NotCsv> {
    let raw: Vec<Option<Vec<i64>>> =
        serde_json::from_str(csv_json).map_err(|e| NotCsv(e.to_string()))?;
    let mut out = Decoded::default();
    for (index, series) in raw.iter().enumerate() {
        let Some(series) = series else { continue };
        let Some(ty) = CsvType::from_index(index) else {
            out.skipped.push(format!(
                "csv index {index} is not a type Keepa documents ({} entries)",
                series.len()
            ));
            continue;
        };
        match History::decode(ty, series) {
            Ok(h) => out
                .points
                .extend(h.points().into_iter().map(|(t, v)| HistoryPoint {
                    series: ty,
                    time_ms: t.to_unix_ms(),
                    value: v.known(),
                })),
            Err(e) => out.skipped.push(e.to_string()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs_triples_and_sentinels() {
        // AMAZON: two points, the second out of stock; SALES (index 3);
        // BUY_BOX_SHIPPING (18): price + shipping.
        let mut csv = vec![serde_json::Value::Null; 19];
        csv[0] = serde_json::json!([0, 1999, 60, -1]);
        csv[3] = serde_json::json!([1, 5000, 2, -2]);
        csv[18] = serde_json::json!([10, 1500, 399]);
        let d = decode(&serde_json::Value::Array(csv).to_string()).unwrap();
        assert!(d.skipped.is_empty());
        let epoch = 1_293_840_000_000; // 2011-01-01T00:00Z
        assert_eq!(
            d.points,
            vec![
                HistoryPoint {
                    series: CsvType::Amazon,
                    time_ms: epoch,
                    value: Some(1999)
                },
                HistoryPoint {
                    series: CsvType::Amazon,
                    time_ms: epoch + 3_600_000,
                    value: None
                },
                HistoryPoint {
                    series: CsvType::Sales,
                    time_ms: epoch + 60_000,
                    value: Some(5000)
                },
                HistoryPoint {
                    series: CsvType::Sales,
                    time_ms: epoch + 120_000,
                    value: None
                },
                HistoryPoint {
                    series: CsvType::BuyBoxShipping,
                    time_ms: epoch + 600_000,
                    value: Some(1899)
                },
            ]
        );
    }

    #[test]
    fn bad_series_are_skipped_and_named_bad_json_is_an_error() {
        let d = decode("[[1,2,3],null,[5,6]]").unwrap();
        assert_eq!(d.points.len(), 1);
        assert_eq!(d.points[0].series, CsvType::Used);
        assert_eq!(
            d.skipped,
            ["AMAZON history has 3 entries, not a multiple of 2"]
        );
        let mut long = vec![serde_json::Value::Null; 37];
        long[36] = serde_json::json!([1, 2]);
        let d = decode(&serde_json::Value::Array(long).to_string()).unwrap();
        assert!(d.points.is_empty());
        assert_eq!(d.skipped.len(), 1, "{:?}", d.skipped);
        assert!(decode("{\"a\":1}").is_err());
        assert!(decode("[[1.5]]").is_err());
    }
}
