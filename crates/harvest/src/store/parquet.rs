//! The Parquet writer of the exports: the `parquet` crate's schema and
//! column writers (no Arrow), snappy-compressed.
//!
//! Types, as Arrow (pyarrow, pandas, polars) reads them: integers are
//! `INT64` (`int64`); times are `INT64` annotated `TIMESTAMP(MILLIS,
//! isAdjustedToUTC)` (`timestamp[ms, tz=UTC]`); text is `BYTE_ARRAY`
//! annotated `STRING` (`string`). Every column is `OPTIONAL`: a NULL (what
//! the store holds for Keepa's `-1`/`-2`) is a Parquet null.

use std::io::Write;
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use super::export::Cell;
use super::sql::Kind;

/// Rows buffered per row group (bounded memory: about 60 columns of 8
/// bytes, plus the titles).
const ROW_GROUP: usize = 32_768;

/// One column's buffered values: the non-null values and one definition
/// level per row (1 present, 0 null).
enum Buffer {
    Int(Vec<i64>, Vec<i16>),
    Text(Vec<ByteArray>, Vec<i16>),
}

/// Writes rows of `Cell`s as one Parquet file, a row group at a time.
pub(crate) struct ParquetWriter<'a> {
    writer: SerializedFileWriter<&'a mut (dyn Write + Send)>,
    buffers: Vec<Buffer>,
    rows: usize,
}

impl<'a> ParquetWriter<'a> {
    /// Starts the file: the schema of `columns` (name, kind), in order.
    pub(crate) fn new(
        columns: &[(String, Kind)],
        out: &'a mut (dyn Write + Send),
    ) -> std::io::Result<Self> {
        let mut fields = Vec::with_capacity(columns.len());
        for (name, kind) in columns {
            let (physical, logical) = match kind {
                Kind::Int => (Physical::INT64, None),
                Kind::Time | Kind::Instant => (
                    Physical::INT64,
                    Some(LogicalType::timestamp(true, TimeUnit::MILLIS)),
                ),
                Kind::Text => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
            };
            let field = Type::primitive_type_builder(name, physical)
                .with_repetition(Repetition::OPTIONAL)
                .with_logical_type(logical)
                .build()
                .map_err(io)?;
            fields.push(Arc::new(field));
        }
        let schema = Type::group_type_builder("keepa_harvest")
            .with_fields(fields)
            .build()
            .map_err(io)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("keepa-harvest {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer =
            SerializedFileWriter::new(out, Arc::new(schema), Arc::new(props)).map_err(io)?;
        let buffers = columns
            .iter()
            .map(|(_, kind)| match kind {
                Kind::Text => Buffer::Text(Vec::new(), Vec::new()),
                _ => Buffer::Int(Vec::new(), Vec::new()),
            })
            .collect();
        Ok(ParquetWriter {
            writer,
            buffers,
            rows: 0,
        })
    }

    /// Adds one row (one cell per column, in schema order); a cell of the
    /// wrong kind is written as null.
    pub(crate) fn row(&mut self, cells: Vec<Cell>) -> std::io::Result<()> {
        for (buffer, cell) in self.buffers.iter_mut().zip(cells) {
            match (buffer, cell) {
                (Buffer::Int(values, defs), Cell::Int(v)) => {
                    values.push(v);
                    defs.push(1);
                }
                (Buffer::Text(values, defs), Cell::Text(s)) => {
                    values.push(ByteArray::from(s.into_bytes()));
                    defs.push(1);
                }
                (Buffer::Int(_, defs) | Buffer::Text(_, defs), _) => defs.push(0),
            }
        }
        self.rows += 1;
        if self.rows >= ROW_GROUP {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the buffered rows as one row group.
    fn flush(&mut self) -> std::io::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut group = self.writer.next_row_group().map_err(io)?;
        let mut buffers = self.buffers.iter_mut();
        while let Some(mut column) = group.next_column().map_err(io)? {
            let Some(buffer) = buffers.next() else {
                return Err(std::io::Error::other("more Parquet columns than buffers"));
            };
            match buffer {
                Buffer::Int(values, defs) => {
                    column
                        .typed::<Int64Type>()
                        .write_batch(values, Some(defs), None)
                        .map_err(io)?;
                    values.clear();
                    defs.clear();
                }
                Buffer::Text(values, defs) => {
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(values, Some(defs), None)
                        .map_err(io)?;
                    values.clear();
                    defs.clear();
                }
            }
            column.close().map_err(io)?;
        }
        group.close().map_err(io)?;
        self.rows = 0;
        Ok(())
    }

    /// Writes what is buffered and the footer; the file is complete.
    pub(crate) fn finish(mut self) -> std::io::Result<()> {
        self.flush()?;
        self.writer.close().map_err(io)?;
        Ok(())
    }
}

/// A Parquet error as an IO error, keeping the kind of one that was IO
/// (a closed pipe stays `BrokenPipe`).
fn io(e: ParquetError) -> std::io::Error {
    if let ParquetError::External(inner) = &e {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return std::io::Error::new(io.kind(), e.to_string());
        }
    }
    std::io::Error::other(e.to_string())
}
