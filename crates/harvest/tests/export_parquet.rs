//! The Parquet export read back with the `parquet` crate's own reader
//! (schema types, nulls for Keepa's `-1`, values equal to the JSON Lines
//! export), and the history export of a product equal to its csv decoded
//! by `keepa::model`, in CSV and Parquet; on SQLite, and on PostgreSQL
//! when `KEEPA_HARVEST_TEST_PG` is set.

mod store_common;

use harvest::store::{Batch, ExportFormat, Store};
use keepa::model::{CsvType, Deal, Product};
use parquet::basic::{LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::Value;
use store_common::{deal, parse_csv, product};

/// A product as Keepa sends it: AMAZON with an out-of-stock point (-1),
/// NEW, SALES with an unknown point (-2), BUY_BOX_SHIPPING triples.
const PRODUCT_JSON: &str = r#"{"asin":"B0HIST0001","domainId":1,"csv":[
  [7000000,1999,7001440,-1,7002880,1899],
  [7000000,1500],
  null,
  [7000000,52000,7000060,-2,7000120,48000],
  null,null,null,null,null,null,null,null,null,null,null,null,null,null,
  [7000000,1450,399,7000500,-1,-1]
]}"#;

/// Writes the Parquet `bytes` to a file and opens it with the crate's reader.
fn reader(bytes: Vec<u8>) -> SerializedFileReader<std::fs::File> {
    let dir = store_common::temp_dir();
    let path = dir.join("export.parquet");
    std::fs::write(&path, bytes).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir); // the open handle keeps the data
    SerializedFileReader::new(file).expect("a valid Parquet file")
}

/// `(name, physical type, logical type, repetition)` of every column.
fn schema(r: &SerializedFileReader<std::fs::File>) -> Vec<(String, Physical, Option<LogicalType>)> {
    let descr = r.metadata().file_metadata().schema_descr_ptr();
    descr
        .columns()
        .iter()
        .map(|c| {
            let basic = c.self_type().get_basic_info();
            assert_eq!(basic.repetition(), Repetition::OPTIONAL, "{}", c.name());
            (
                c.name().to_string(),
                c.physical_type(),
                basic.logical_type_ref().cloned(),
            )
        })
        .collect()
}

fn rows(r: &SerializedFileReader<std::fs::File>) -> Vec<Vec<(String, Field)>> {
    r.get_row_iter(None)
        .unwrap()
        .map(|row| {
            row.unwrap()
                .get_column_iter()
                .map(|(n, f)| (n.clone(), f.clone()))
                .collect()
        })
        .collect()
}

fn timestamp_ms() -> Option<LogicalType> {
    Some(LogicalType::timestamp(true, TimeUnit::MILLIS))
}

async fn export_bytes(store: &Store, format: ExportFormat, history: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if history {
        store.export_history(format, &mut out).await.unwrap();
    } else {
        store.export(format, &mut out).await.unwrap();
    }
    out
}

pub async fn parquet_has_the_documented_types_nulls_and_values(db: &str) {
    let store = Store::open(db).await.unwrap();
    // A deal as Keepa sends it, with -1 (no used offer) and -2 (unknown
    // rank): read by `extract` as the pipeline does.
    let keepa_deal: Deal = serde_json::from_str(
        r#"{"asin":"B0SENTINEL","title":"No used offer","current":[2500,-1,-1,-2],
            "deltaPercent":[[0,0,0,0],[0,0,-1,0]],"lastUpdate":7000000,"creationDate":6999000}"#,
    )
    .unwrap();
    let item = harvest::extract::deal(&keepa_deal, 1, 2, 1_767_830_000_000).unwrap();
    assert_eq!(item.row.current_used, None, "-1 is no value, not a price");
    let batch = Batch {
        deals: vec![deal("B000000001", 1_767_830_000_000), item.row],
        products: vec![product("B000000001", 1_767_830_100_000, "offers")],
        ..Default::default()
    };
    store.commit(batch).await.unwrap();

    let r = reader(export_bytes(&store, ExportFormat::Parquet, false).await);
    let columns = schema(&r);
    let jsonl = String::from_utf8(export_bytes(&store, ExportFormat::Jsonl, false).await).unwrap();
    let json: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let csv = String::from_utf8(export_bytes(&store, ExportFormat::Csv, false).await).unwrap();
    assert_eq!(
        columns.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        parse_csv(&csv)[0],
        "the same columns as CSV, in order"
    );
    assert_eq!(json[0].as_object().unwrap().len(), columns.len());
    for (name, physical, logical) in &columns {
        let text = [
            "asin",
            "title",
            "product_title",
            "lowest_used_seller",
            "product_stage",
        ];
        if text.contains(&name.as_str()) {
            assert_eq!(
                (*physical, logical.clone()),
                (Physical::BYTE_ARRAY, Some(LogicalType::String)),
                "{name}"
            );
        } else if name.ends_with("_ms") {
            assert_eq!(
                (*physical, logical.clone()),
                (Physical::INT64, timestamp_ms()),
                "{name}"
            );
        } else {
            assert_eq!(
                (*physical, logical.clone()),
                (Physical::INT64, None),
                "{name}"
            );
        }
    }

    let table = rows(&r);
    assert_eq!(table.len(), 2);
    for (prow, jrow) in table.iter().zip(&json) {
        for (name, field) in prow {
            let expected = &jrow[name];
            match field {
                Field::Null => assert!(expected.is_null(), "{name}: {expected}"),
                Field::Long(n) | Field::TimestampMillis(n) => {
                    assert_eq!(expected.as_i64(), Some(*n), "{name}")
                }
                Field::Str(s) => assert_eq!(expected.as_str(), Some(s.as_str()), "{name}"),
                other => panic!("{name}: unexpected field {other:?}"),
            }
        }
    }
    let field = |row: usize, name: &str| {
        table[row]
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| f.clone())
            .unwrap()
    };
    assert_eq!(
        field(0, "current_used"),
        Field::Long(1299),
        "cents, as an integer"
    );
    assert_eq!(
        field(0, "first_seen_ms"),
        Field::TimestampMillis(1_767_830_000_000)
    );
    assert_eq!(field(1, "asin"), Field::Str("B0SENTINEL".into()));
    assert_eq!(field(1, "current_amazon"), Field::Long(2500));
    assert_eq!(
        field(1, "current_used"),
        Field::Null,
        "Keepa's -1 is a null"
    );
    assert_eq!(field(1, "sales_rank"), Field::Null, "Keepa's -2 is a null");
    assert_eq!(field(1, "avg90_used"), Field::Null, "no product stored");
    store.close().await;
}

/// The long rows `keepa::model` decodes from a product's csv:
/// `(series, time in Unix ms, value)`, in Keepa's index order.
fn decoded(p: &Product) -> Vec<(String, i64, Option<i64>)> {
    let mut out = Vec::new();
    for ty in CsvType::ALL {
        if let Some(h) = p.history(ty).unwrap() {
            for (t, v) in h.points() {
                out.push((ty.keepa_name().to_string(), t.to_unix_ms(), v.known()));
            }
        }
    }
    out
}

pub async fn history_export_equals_the_decoded_csv(db: &str) {
    let store = Store::open(db).await.unwrap();
    let keepa_product: Product = serde_json::from_str(PRODUCT_JSON).unwrap();
    let mut with_history = product("B0HIST0001", 2_000, "stats");
    with_history.history_csv = Some(serde_json::to_string(&keepa_product.csv).unwrap());
    let without = product("B0NOHIST01", 2_000, "stats");
    assert!(store.count_histories().await.unwrap() == 0);
    store
        .commit(Batch {
            products: vec![with_history.clone(), without],
            ..Default::default()
        })
        .await
        .unwrap();
    // An older fetch does not replace the history; a newer one without a
    // history leaves it as it was.
    let mut older = with_history.clone();
    older.fetched_at_ms = 1_000;
    older.history_csv = Some("[[1,2]]".into());
    let mut newer_without = with_history.clone();
    newer_without.fetched_at_ms = 3_000;
    newer_without.history_csv = None;
    for p in [older, newer_without] {
        store
            .commit(Batch {
                products: vec![p],
                ..Default::default()
            })
            .await
            .unwrap();
    }
    assert_eq!(store.count_histories().await.unwrap(), 1);

    let expected = decoded(&keepa_product);
    assert_eq!(expected.len(), 3 + 1 + 3 + 2);
    assert!(expected.iter().any(|e| e.2.is_none()), "sentinels present");

    // CSV: time as RFC 3339 UTC, null as an empty field.
    let csv = String::from_utf8(export_bytes(&store, ExportFormat::Csv, true).await).unwrap();
    let table = parse_csv(&csv);
    assert_eq!(table[0], ["asin", "domain", "series", "time", "value"]);
    let want: Vec<Vec<String>> = expected
        .iter()
        .map(|(s, t, v)| {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(*t as u64);
            vec![
                "B0HIST0001".to_string(),
                "1".to_string(),
                s.clone(),
                humantime::format_rfc3339_seconds(at).to_string(),
                v.map_or(String::new(), |v| v.to_string()),
            ]
        })
        .collect();
    assert_eq!(&table[1..], &want[..]);

    // Parquet: the same rows, typed.
    let r = reader(export_bytes(&store, ExportFormat::Parquet, true).await);
    assert_eq!(
        schema(&r),
        vec![
            (
                "asin".into(),
                Physical::BYTE_ARRAY,
                Some(LogicalType::String)
            ),
            ("domain".into(), Physical::INT64, None),
            (
                "series".into(),
                Physical::BYTE_ARRAY,
                Some(LogicalType::String)
            ),
            ("time".into(), Physical::INT64, timestamp_ms()),
            ("value".into(), Physical::INT64, None),
        ]
    );
    let got: Vec<(String, i64, Option<i64>)> = rows(&r)
        .into_iter()
        .map(|row| {
            let f: Vec<Field> = row.into_iter().map(|(_, f)| f).collect();
            assert_eq!(f[0], Field::Str("B0HIST0001".into()));
            assert_eq!(f[1], Field::Long(1));
            let (Field::Str(series), Field::TimestampMillis(t)) = (&f[2], &f[3]) else {
                panic!("series and time: {f:?}");
            };
            let value = match &f[4] {
                Field::Long(v) => Some(*v),
                Field::Null => None,
                other => panic!("value: {other:?}"),
            };
            (series.clone(), *t, value)
        })
        .collect();
    assert_eq!(got, expected);
    store.close().await;
}

pub async fn a_malformed_stored_series_is_skipped_and_named(db: &str) {
    let store = Store::open(db).await.unwrap();
    let mut p = product("B0BADHIST1", 2_000, "stats");
    p.history_csv = Some("[[7000000,1999,7000001],[7000000,1500]]".into());
    let mut q = product("B0BADHIST2", 2_000, "stats");
    q.history_csv = Some("not json".into());
    store
        .commit(Batch {
            products: vec![p, q],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    let done = store
        .export_history(ExportFormat::Jsonl, &mut out)
        .await
        .unwrap();
    assert_eq!(
        (done.products, done.rows),
        (2, 1),
        "the good NEW series only"
    );
    assert_eq!(done.skipped.len(), 2, "{:?}", done.skipped);
    assert!(done.skipped[0].starts_with("B0BADHIST1 (domain 1): AMAZON history has 3 entries"));
    assert!(done.skipped[1].starts_with("B0BADHIST2 (domain 1): stored csv is not"));
    let line: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(line["series"], "NEW");
    assert_eq!(line["time"], "2024-04-23T02:40:00Z");
    assert_eq!(line["value"], 1500);
    store.close().await;
}

macro_rules! suite {
    ($fixture:ident: $($name:ident),*) => {
        mod $fixture {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(fx) = crate::store_common::$fixture().await else { return };
                    crate::$name(&fx.db).await;
                    fx.cleanup().await;
                }
            )*
        }
    };
}

suite!(sqlite: parquet_has_the_documented_types_nulls_and_values,
    history_export_equals_the_decoded_csv, a_malformed_stored_series_is_skipped_and_named);
suite!(postgres: parquet_has_the_documented_types_nulls_and_values,
    history_export_equals_the_decoded_csv, a_malformed_stored_series_is_skipped_and_named);
