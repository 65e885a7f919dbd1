//! Reading Parquet files as records: each row becomes the JSON object a JSONL line would
//! hold (columns in schema order), so every later step (field picking, dedup, stages,
//! writers) sees Parquet input exactly as it sees JSONL.
//!
//! Reading streams one record batch at a time (at most `batch_lines` rows, decoded from one
//! row group), so memory is bounded by a row group's column chunks, not by the file. A
//! row's "line" number is its 1-based row index in the file.
//!
//! Column types map to JSON as follows: strings (and binary holding UTF-8) to strings,
//! integers and floats to numbers (NaN and infinities to `null`), booleans, nulls, lists
//! to arrays, structs and maps to objects, dictionary columns to their values, decimals
//! to strings, and dates, times, timestamps and durations to their stored integer. A
//! string column whose field metadata has `hearth.json = "true"` (written by
//! [`crate::ShardWriter`] for nested or mixed-type fields) holds JSON text and is emitted
//! as that JSON. A column of any other type makes the file unreadable, with its name and
//! type in the message, rather than dropping data silently.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::mpsc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type,
    UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};
use crate::input::{LineBatch, RawLine};
use crate::record::Malformed;

/// Field-metadata key marking a string column that holds JSON text.
pub const JSON_COLUMN_KEY: &str = "hearth.json";

/// Whether a file name ends in `.parquet` (any case).
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// Reads file number `fi` (`path`) into `batch`, sending full batches on `tx`. Returns
/// `false` when the receiver is gone (stop reading).
pub(crate) fn read_file(
    path: &Path,
    fi: u32,
    batch_lines: usize,
    batch: &mut LineBatch,
    tx: &mpsc::SyncSender<Result<LineBatch>>,
) -> bool {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            let _ = tx.send(Err(Error::io(path, "open", e)));
            return false;
        }
    };
    let unreadable = |line: u64, problem: String| Malformed {
        file: path.to_path_buf(),
        line,
        problem,
    };
    let reader = match ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(batch_lines).build())
    {
        Ok(r) => r,
        Err(e) => {
            batch
                .unreadable
                .push(unreadable(1, format!("not a readable Parquet file: {e}")));
            return true;
        }
    };
    let mut row = 0u64;
    for rb in reader {
        let rb = match rb {
            Ok(rb) => rb,
            Err(e) => {
                batch.unreadable.push(unreadable(
                    row + 1,
                    format!("file unreadable from here on: {e}"),
                ));
                return true;
            }
        };
        let lines = match rows_as_json(&rb) {
            Ok(l) => l,
            Err(what) => {
                batch.unreadable.push(unreadable(row + 1, what));
                return true;
            }
        };
        for bytes in lines {
            row += 1;
            batch.lines.push(RawLine {
                file: fi,
                line: row,
                bytes,
            });
            if batch.lines.len() >= batch_lines && tx.send(Ok(std::mem::take(batch))).is_err() {
                return false;
            }
        }
    }
    true
}

/// One column ready to print: its name as JSON, whether it holds JSON text, its values.
struct Column {
    key: Vec<u8>,
    json_text: bool,
    array: ArrayRef,
}

/// Every row of `rb` as a JSON object, or what makes the batch unprintable.
pub(crate) fn rows_as_json(rb: &RecordBatch) -> std::result::Result<Vec<Vec<u8>>, String> {
    let schema = rb.schema();
    let mut cols = Vec::with_capacity(rb.num_columns());
    for (field, array) in schema.fields().iter().zip(rb.columns()) {
        let array = flatten_dictionary(array)?;
        check_type(field.name(), array.data_type())?;
        let mut key = Vec::new();
        write_str(&mut key, field.name());
        key.push(b':');
        cols.push(Column {
            key,
            json_text: is_json_column(field) && is_string(array.data_type()),
            array,
        });
    }
    let mut rows = Vec::with_capacity(rb.num_rows());
    for r in 0..rb.num_rows() {
        let mut out = Vec::with_capacity(64 * cols.len());
        out.push(b'{');
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&c.key);
            if c.json_text && c.array.is_valid(r) {
                out.extend_from_slice(string_at(c.array.as_ref(), r).unwrap_or("null").as_bytes());
            } else {
                write_value(c.array.as_ref(), r, &mut out);
            }
        }
        out.push(b'}');
        rows.push(out);
    }
    Ok(rows)
}

fn is_json_column(field: &Field) -> bool {
    field.metadata().get(JSON_COLUMN_KEY).map(String::as_str) == Some("true")
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// A dictionary column as a plain column of its values; a temporal column as its stored
/// integers.
fn flatten_dictionary(array: &ArrayRef) -> std::result::Result<ArrayRef, String> {
    let as_int = match array.data_type() {
        DataType::Date32 | DataType::Time32(_) => Some(DataType::Int32),
        DataType::Date64
        | DataType::Timestamp(..)
        | DataType::Time64(_)
        | DataType::Duration(_) => Some(DataType::Int64),
        _ => None,
    };
    if let Some(t) = as_int {
        let data = array
            .to_data()
            .into_builder()
            .data_type(t)
            .build()
            .map_err(|e| format!("reading a temporal column: {e}"))?;
        return Ok(arrow_array::make_array(data));
    }
    match array.as_any_dictionary_opt() {
        Some(d) => {
            let keys = arrow_array::UInt64Array::from_iter(
                d.normalized_keys()
                    .into_iter()
                    .enumerate()
                    .map(|(i, k)| array.is_valid(i).then_some(k as u64)),
            );
            arrow_select::take::take(d.values().as_ref(), &keys, None)
                .map_err(|e| format!("reading a dictionary column: {e}"))
        }
        None => Ok(array.clone()),
    }
}

/// Fails for a type (at any depth) that has no JSON form here.
fn check_type(name: &str, t: &DataType) -> std::result::Result<(), String> {
    use DataType as D;
    match t {
        D::Null
        | D::Boolean
        | D::Int8
        | D::Int16
        | D::Int32
        | D::Int64
        | D::UInt8
        | D::UInt16
        | D::UInt32
        | D::UInt64
        | D::Float16
        | D::Float32
        | D::Float64
        | D::Utf8
        | D::LargeUtf8
        | D::Utf8View
        | D::Binary
        | D::LargeBinary
        | D::BinaryView
        | D::FixedSizeBinary(_)
        | D::Date32
        | D::Date64
        | D::Timestamp(..)
        | D::Time32(_)
        | D::Time64(_)
        | D::Duration(_)
        | D::Decimal128(..)
        | D::Decimal256(..) => Ok(()),
        D::List(f) | D::LargeList(f) | D::FixedSizeList(f, _) => check_type(name, f.data_type()),
        D::Struct(fs) => fs.iter().try_for_each(|f| check_type(name, f.data_type())),
        D::Map(f, _) => check_type(name, f.data_type()),
        other => Err(format!(
            "column `{name}` has type {other}, which has no JSON form here"
        )),
    }
}

fn string_at(a: &dyn Array, r: usize) -> Option<&str> {
    match a.data_type() {
        DataType::Utf8 => Some(a.as_string::<i32>().value(r)),
        DataType::LargeUtf8 => Some(a.as_string::<i64>().value(r)),
        DataType::Utf8View => Some(a.as_string_view().value(r)),
        _ => None,
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_num(out: &mut Vec<u8>, n: impl std::fmt::Display) {
    let _ = write!(out, "{n}");
}

fn write_float<F: serde::Serialize>(out: &mut Vec<u8>, x: F, finite: bool) {
    if finite {
        let _ = serde_json::to_writer(&mut *out, &x);
    } else {
        out.extend_from_slice(b"null");
    }
}

fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(s) => write_str(out, s),
        Err(_) => {
            out.push(b'[');
            for (i, x) in b.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_num(out, x);
            }
            out.push(b']');
        }
    }
}

fn write_items(out: &mut Vec<u8>, items: &dyn Array) {
    out.push(b'[');
    for i in 0..items.len() {
        if i > 0 {
            out.push(b',');
        }
        write_value(items, i, out);
    }
    out.push(b']');
}

/// Writes row `r` of `a` as JSON (types already checked by [`check_type`]).
fn write_value(a: &dyn Array, r: usize, out: &mut Vec<u8>) {
    use DataType as D;
    if a.is_null(r) {
        out.extend_from_slice(b"null");
        return;
    }
    match a.data_type() {
        D::Boolean => out.extend_from_slice(if a.as_boolean().value(r) {
            b"true"
        } else {
            b"false"
        }),
        D::Int8 => write_num(out, a.as_primitive::<Int8Type>().value(r)),
        D::Int16 => write_num(out, a.as_primitive::<Int16Type>().value(r)),
        D::Int32 => write_num(out, a.as_primitive::<Int32Type>().value(r)),
        D::Int64 => write_num(out, a.as_primitive::<Int64Type>().value(r)),
        D::UInt8 => write_num(out, a.as_primitive::<UInt8Type>().value(r)),
        D::UInt16 => write_num(out, a.as_primitive::<UInt16Type>().value(r)),
        D::UInt32 => write_num(out, a.as_primitive::<UInt32Type>().value(r)),
        D::UInt64 => write_num(out, a.as_primitive::<UInt64Type>().value(r)),
        D::Float16 => {
            let x = a.as_primitive::<Float16Type>().value(r).to_f32();
            write_float(out, x, x.is_finite())
        }
        D::Float32 => {
            let x = a.as_primitive::<Float32Type>().value(r);
            write_float(out, x, x.is_finite())
        }
        D::Float64 => {
            let x = a.as_primitive::<Float64Type>().value(r);
            write_float(out, x, x.is_finite())
        }
        D::Utf8 | D::LargeUtf8 | D::Utf8View => write_str(out, string_at(a, r).unwrap_or("")),
        D::Binary => write_bytes(out, a.as_binary::<i32>().value(r)),
        D::LargeBinary => write_bytes(out, a.as_binary::<i64>().value(r)),
        D::BinaryView => write_bytes(out, a.as_binary_view().value(r)),
        D::FixedSizeBinary(_) => write_bytes(out, a.as_fixed_size_binary().value(r)),
        D::Date32 | D::Time32(_) => write_num(
            out,
            a.to_data().buffers()[0].typed_data::<i32>()[a.offset() + r],
        ),
        D::Date64 | D::Timestamp(..) | D::Time64(_) | D::Duration(_) => write_num(
            out,
            a.to_data().buffers()[0].typed_data::<i64>()[a.offset() + r],
        ),
        D::Decimal128(..) => write_str(
            out,
            &a.as_primitive::<arrow_array::types::Decimal128Type>()
                .value_as_string(r),
        ),
        D::Decimal256(..) => write_str(
            out,
            &a.as_primitive::<arrow_array::types::Decimal256Type>()
                .value_as_string(r),
        ),
        D::List(_) => write_items(out, a.as_list::<i32>().value(r).as_ref()),
        D::LargeList(_) => write_items(out, a.as_list::<i64>().value(r).as_ref()),
        D::FixedSizeList(..) => write_items(out, a.as_fixed_size_list().value(r).as_ref()),
        D::Struct(fields) => {
            let s = a.as_struct();
            out.push(b'{');
            for (i, (f, col)) in fields.iter().zip(s.columns()).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, f.name());
                out.push(b':');
                write_value(col.as_ref(), r, out);
            }
            out.push(b'}');
        }
        D::Map(..) => {
            let entries = a.as_map().value(r);
            let (keys, values) = (entries.column(0), entries.column(1));
            out.push(b'{');
            for i in 0..entries.len() {
                if i > 0 {
                    out.push(b',');
                }
                match string_at(keys.as_ref(), i) {
                    Some(k) => write_str(out, k),
                    None => {
                        let mut k = Vec::new();
                        write_value(keys.as_ref(), i, &mut k);
                        write_str(out, &String::from_utf8_lossy(&k));
                    }
                }
                out.push(b':');
                write_value(values.as_ref(), i, out);
            }
            out.push(b'}');
        }
        _ => out.extend_from_slice(b"null"),
    }
}
