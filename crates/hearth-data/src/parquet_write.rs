//! Writing records (JSON objects) as Parquet: the sink behind a Parquet [`crate::ShardWriter`].
//!
//! **Schema.** Rows are buffered up to a row group (8,192 rows or 32 MiB of JSON); the
//! first row group of a shard fixes the shard's schema from the rows it holds: one
//! nullable column per key, in order of first appearance, typed by the values seen:
//! all strings → `Utf8`; all integers (fitting `i64`, written without `.`/`e`) → `Int64`;
//! all other numbers → `Float64`; all booleans → `Boolean`; anything else (arrays,
//! objects, a mix of kinds, integers too large, only nulls) → `Utf8` holding the value's
//! exact JSON text, marked with field metadata `hearth.json = "true"` so that hearth reads
//! it back as JSON (other readers see a string). A row that lacks a column gets a null
//! there; reading gives `null` back for it (Parquet has no "absent").
//!
//! A later row that does not fit the schema (a new key, or a value of another kind in a
//! typed column) ends the shard: the rows before it are written, the file is completed and
//! renamed, and the next shard's schema is inferred again, starting from the previous
//! one, so every value is written exactly and schemas only widen (each column changes at
//! most once, to JSON text). Duplicate keys in one object keep the last value.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as Codec, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::value::RawValue;

use crate::input::Compression;
use crate::parquet_read::JSON_COLUMN_KEY;

/// Rows per row group.
const GROUP_ROWS: usize = 8192;
/// JSON bytes per row group.
const GROUP_BYTES: u64 = 32 << 20;

/// The kind of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    Float,
    Bool,
    Json,
}

/// The kind a raw JSON value asks for (`None` for `null`).
fn kind_of(raw: &str) -> Option<Kind> {
    match raw.as_bytes().first() {
        Some(b'"') => Some(Kind::Str),
        Some(b't' | b'f') => Some(Kind::Bool),
        Some(b'n') => None,
        Some(b'[' | b'{') | None => Some(Kind::Json),
        Some(_) => {
            if raw.contains(['.', 'e', 'E']) {
                Some(Kind::Float)
            } else if raw.parse::<i64>().is_ok() {
                Some(Kind::Int)
            } else {
                Some(Kind::Json)
            }
        }
    }
}

fn merge(a: Option<Kind>, b: Option<Kind>) -> Option<Kind> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(x), Some(y)) if x == y => Some(x),
        _ => Some(Kind::Json),
    }
}

/// A column of the schema being written (carried from one shard to the next).
#[derive(Debug, Clone)]
pub(crate) struct Col {
    name: String,
    kind: Option<Kind>,
}

impl Col {
    fn accepts(&self, raw: &str) -> bool {
        match kind_of(raw) {
            None => true,
            Some(k) => self.kind == Some(k) || self.kind == Some(Kind::Json),
        }
    }
}

/// One buffered row: its members (key, raw JSON value), last value per key.
type Row = Vec<(String, Box<RawValue>)>;

/// Parses a record line into a [`Row`].
pub(crate) fn parse_row(json: &[u8]) -> serde_json::Result<Row> {
    let members: Vec<(String, Box<RawValue>)> = serde_json::from_slice::<OrderedMembers>(json)?.0;
    let mut row: Row = Vec::with_capacity(members.len());
    for (k, v) in members {
        match row.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => row.push((k, v)),
        }
    }
    Ok(row)
}

struct OrderedMembers(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for OrderedMembers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedMembers;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OrderedMembers, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    out.push((k, map.next_value::<Box<RawValue>>()?));
                }
                Ok(OrderedMembers(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The Parquet page codec for a shard compression setting.
fn codec(c: Compression) -> Codec {
    match c {
        Compression::None => Codec::UNCOMPRESSED,
        Compression::Gzip => Codec::GZIP(GzipLevel::default()),
        Compression::Zstd => Codec::ZSTD(ZstdLevel::default()),
    }
}

/// An open Parquet shard: rows buffered until a row group is full, then written.
pub(crate) struct ParquetSink {
    file: Option<BufWriter<File>>,
    writer: Option<ArrowWriter<BufWriter<File>>>,
    /// The columns: fixed once `writer` exists; before, the starting point of inference.
    cols: Vec<Col>,
    index: HashMap<String, usize>,
    pending: Vec<Row>,
    pending_bytes: u64,
    codec: Codec,
}

impl ParquetSink {
    /// A sink writing to `file`, whose schema starts from `base` (the previous shard's).
    pub(crate) fn new(file: BufWriter<File>, compression: Compression, base: Vec<Col>) -> Self {
        let cols = base;
        let index = cols
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        ParquetSink {
            file: Some(file),
            writer: None,
            cols,
            index,
            pending: Vec::new(),
            pending_bytes: 0,
            codec: codec(compression),
        }
    }

    /// Whether `row` can go in this shard (always, before its schema is fixed).
    pub(crate) fn fits(&self, row: &Row) -> bool {
        self.writer.is_none()
            || row.iter().all(|(k, v)| {
                self.index
                    .get(k)
                    .is_some_and(|&i| self.cols[i].accepts(v.get()))
            })
    }

    /// Buffers `row` (of `bytes` JSON bytes); writes a row group when the buffer is full.
    pub(crate) fn push(&mut self, row: Row, bytes: u64) -> parquet::errors::Result<()> {
        self.pending.push(row);
        self.pending_bytes += bytes;
        if self.pending.len() >= GROUP_ROWS || self.pending_bytes >= GROUP_BYTES {
            self.write_group()?;
        }
        Ok(())
    }

    /// The schema so far, to start the next shard's inference from.
    pub(crate) fn columns(&self) -> Vec<Col> {
        let mut cols = self.cols.clone();
        if self.writer.is_none() {
            infer(&mut cols, &self.pending);
        }
        cols
    }

    /// Writes what is buffered and completes the file; returns it for syncing.
    pub(crate) fn finish(mut self) -> parquet::errors::Result<File> {
        self.write_group()?;
        let buf = match self.writer.take() {
            Some(w) => w.into_inner()?,
            // No row at all: an empty file with the (empty) schema is still valid Parquet.
            None => {
                let file = self.file.take().ok_or_else(|| {
                    parquet::errors::ParquetError::General("sink already finished".into())
                })?;
                let schema = Arc::new(Schema::empty());
                ArrowWriter::try_new(file, schema, None)?.into_inner()?
            }
        };
        buf.into_inner()
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e.into_error())))
    }

    fn write_group(&mut self) -> parquet::errors::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.writer.is_none() {
            infer(&mut self.cols, &self.pending);
            self.index = self
                .cols
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.clone(), i))
                .collect();
            let file = self.file.take().ok_or_else(|| {
                parquet::errors::ParquetError::General("sink already finished".into())
            })?;
            let props = WriterProperties::builder()
                .set_compression(self.codec)
                .set_max_row_group_row_count(Some(usize::MAX))
                .build();
            self.writer = Some(ArrowWriter::try_new(file, self.schema(), Some(props))?);
        }
        let rows = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let batch = self.batch(&rows)?;
        if let Some(w) = self.writer.as_mut() {
            w.write(&batch)?;
            w.flush()?;
        }
        Ok(())
    }

    fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .cols
            .iter()
            .map(|c| match c.kind {
                Some(Kind::Str) => Field::new(&c.name, DataType::Utf8, true),
                Some(Kind::Int) => Field::new(&c.name, DataType::Int64, true),
                Some(Kind::Float) => Field::new(&c.name, DataType::Float64, true),
                Some(Kind::Bool) => Field::new(&c.name, DataType::Boolean, true),
                Some(Kind::Json) | None => Field::new(&c.name, DataType::Utf8, true)
                    .with_metadata([(JSON_COLUMN_KEY.to_string(), "true".to_string())].into()),
            })
            .collect();
        Arc::new(Schema::new(fields))
    }

    fn batch(&self, rows: &[Row]) -> parquet::errors::Result<RecordBatch> {
        let bad = |what: String| parquet::errors::ParquetError::General(what);
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.cols.len());
        for c in &self.cols {
            let values = rows.iter().map(|r| {
                r.iter()
                    .find(|(k, _)| *k == c.name)
                    .map(|(_, v)| v.get())
                    .filter(|v| kind_of(v).is_some())
            });
            let array: ArrayRef = match c.kind {
                Some(Kind::Str) => {
                    let mut b = StringBuilder::new();
                    for v in values {
                        match v {
                            Some(v) => b.append_value(
                                serde_json::from_str::<String>(v)
                                    .map_err(|e| bad(format!("`{}`: {e}", c.name)))?,
                            ),
                            None => b.append_null(),
                        }
                    }
                    Arc::new(b.finish())
                }
                Some(Kind::Int) => {
                    let mut b = Int64Builder::new();
                    for v in values {
                        b.append_option(v.and_then(|v| v.parse::<i64>().ok()));
                    }
                    Arc::new(b.finish())
                }
                Some(Kind::Float) => {
                    let mut b = Float64Builder::new();
                    for v in values {
                        b.append_option(v.and_then(|v| v.parse::<f64>().ok()));
                    }
                    Arc::new(b.finish())
                }
                Some(Kind::Bool) => {
                    let mut b = BooleanBuilder::new();
                    for v in values {
                        b.append_option(v.map(|v| v == "true"));
                    }
                    Arc::new(b.finish())
                }
                Some(Kind::Json) | None => {
                    let mut b = StringBuilder::new();
                    for v in values {
                        b.append_option(v);
                    }
                    Arc::new(b.finish())
                }
            };
            arrays.push(array);
        }
        RecordBatch::try_new(self.schema(), arrays).map_err(Into::into)
    }
}

/// Widens `cols` with every key and value of `rows`.
fn infer(cols: &mut Vec<Col>, rows: &[Row]) {
    let mut index: HashMap<String, usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), i))
        .collect();
    for row in rows {
        for (k, v) in row {
            let i = *index.entry(k.clone()).or_insert_with(|| {
                cols.push(Col {
                    name: k.clone(),
                    kind: None,
                });
                cols.len() - 1
            });
            cols[i].kind = merge(cols[i].kind, kind_of(v.get()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_values() {
        assert_eq!(kind_of("\"a\""), Some(Kind::Str));
        assert_eq!(kind_of("12"), Some(Kind::Int));
        assert_eq!(kind_of("-1.5e3"), Some(Kind::Float));
        assert_eq!(kind_of("99999999999999999999"), Some(Kind::Json));
        assert_eq!(kind_of("true"), Some(Kind::Bool));
        assert_eq!(kind_of("null"), None);
        assert_eq!(kind_of("[1]"), Some(Kind::Json));
        assert_eq!(merge(Some(Kind::Int), Some(Kind::Float)), Some(Kind::Json));
        assert_eq!(merge(None, Some(Kind::Float)), Some(Kind::Float));
    }

    #[test]
    fn duplicate_keys_keep_the_last() {
        let row = parse_row(br#"{"a":1,"b":2,"a":3}"#).unwrap();
        let flat: Vec<(&str, &str)> = row.iter().map(|(k, v)| (k.as_str(), v.get())).collect();
        assert_eq!(flat, [("a", "3"), ("b", "2")]);
    }
}
