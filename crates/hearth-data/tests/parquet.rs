#![allow(clippy::unwrap_used)]
//! Parquet input and output: JSONL → Parquet → JSONL keeps every field; a file written by
//! pyarrow (committed fixture) reads as expected; dedup keeps the same ids on Parquet and
//! JSONL inputs; shards appear only under temporary names until complete; malformed
//! Parquet rows and files are reported like JSONL lines.

use std::path::{Path, PathBuf};

use hearth_data::{
    dedup, scan, Compression, DedupConfig, Fields, Format, InputSet, NoProgress, ShardSpec,
    ShardWriter,
};
use serde_json::{json, Value};

fn spec(dir: &Path, max_bytes: u64, compression: Compression) -> ShardSpec {
    ShardSpec {
        dir: dir.to_path_buf(),
        prefix: "part".into(),
        format: Format::Parquet,
        compression,
        max_bytes,
    }
}

/// Every record of `input` as a JSON value, in order, plus the malformed lines.
fn read_all(input: &Path) -> (Vec<Value>, Vec<String>) {
    let inputs = InputSet::discover(input).unwrap();
    let mut out = Vec::new();
    let stats = scan(&inputs, &Fields::default(), |_, batch| {
        for (r, _) in batch {
            out.push(serde_json::from_slice(&r.raw).unwrap());
        }
        Ok(())
    })
    .unwrap();
    let bad = stats.malformed.iter().map(|m| m.to_string()).collect();
    (out, bad)
}

fn records() -> Vec<Value> {
    let mut v = Vec::new();
    for i in 0..300 {
        v.push(json!({
            "id": format!("doc-{i}"),
            "text": format!("Document number {i} says héllo \"quoted\" and\nnew lines."),
            "n": i,
            "score": i as f64 / 7.0,
            "ok": i % 2 == 0,
            "tags": ["a", i % 3],
            "meta": {"src": "web", "depth": {"k": [1, 2.5, null]}},
            "maybe": if i % 5 == 0 { Value::Null } else { json!("x") },
        }));
    }
    // Later records change the schema: a new key, and a typed column getting another kind.
    v.push(json!({"id": "late-1", "text": "t", "n": "not a number", "extra": 1.5}));
    v.push(json!({"id": "late-2", "text": "u", "n": 7, "ppl": 12.25, "domains": {"legal": 0.5}}));
    v
}

/// The value as read back: fields the shard's schema has but the record lacked are null.
fn same_fields(written: &Value, read: &Value) {
    let (w, r) = (written.as_object().unwrap(), read.as_object().unwrap());
    for (k, v) in w {
        assert_eq!(r.get(k), Some(v), "field `{k}` of {written}");
    }
    for (k, v) in r {
        assert!(w.contains_key(k) || v.is_null(), "extra `{k}` in {read}");
    }
}

#[test]
fn jsonl_to_parquet_to_jsonl_keeps_every_field() {
    let tmp = tempfile::tempdir().unwrap();
    for comp in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let dir = tmp.path().join(format!("{comp:?}"));
        let mut w = ShardWriter::new(spec(&dir, 40_000, comp)).unwrap();
        let recs = records();
        for r in &recs {
            w.write(serde_json::to_string(r).unwrap().as_bytes())
                .unwrap();
        }
        let shards = w.finish().unwrap();
        assert!(shards.len() >= 2, "{shards:?}");
        assert!(shards.iter().all(|s| s.extension().unwrap() == "parquet"));
        let (back, bad) = read_all(&dir);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(back.len(), recs.len());
        for (w, r) in recs.iter().zip(&back) {
            same_fields(w, r);
        }
        // And back to JSONL, through the same writer type.
        let jdir = tmp.path().join(format!("{comp:?}-jsonl"));
        let mut j = ShardWriter::new(ShardSpec::new(&jdir)).unwrap();
        for r in &back {
            j.write(serde_json::to_string(r).unwrap().as_bytes())
                .unwrap();
        }
        j.finish().unwrap();
        let (again, _) = read_all(&jdir);
        assert_eq!(again, back);
    }
}

/// After a row group fixed the schema, a record that does not fit starts a new shard, whose
/// schema widens the old one; nothing is lost.
#[test]
fn a_record_that_breaks_the_schema_starts_a_new_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("out");
    let mut w = ShardWriter::new(spec(&dir, u64::MAX, Compression::Zstd)).unwrap();
    let mut recs: Vec<Value> = (0..8200)
        .map(|i| json!({"id": i, "text": format!("t{i}"), "n": i}))
        .collect();
    recs.extend(records().into_iter().rev().take(2).rev());
    recs.push(json!({"id": "last", "text": "v", "n": 8}));
    for r in &recs {
        w.write(r.to_string().as_bytes()).unwrap();
    }
    let shards = w.finish().unwrap();
    // The first shard holds the 8,200 regular records; the break moves the rest on.
    assert_eq!(shards.len(), 2, "{shards:?}");
    assert_eq!(read_all(&shards[1]).0.len(), 3);
    let (back, bad) = read_all(&dir);
    assert!(bad.is_empty());
    assert_eq!(back.len(), recs.len());
    for (w, r) in recs.iter().zip(&back) {
        same_fields(w, r);
    }
}

/// `tests/data/pyarrow.parquet` was written by pyarrow (snappy, dictionary strings, int32,
/// float32, list, struct, nulls); `pyarrow.jsonl` is what its rows must read as.
#[test]
fn reads_a_file_written_by_pyarrow() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let (rows, bad) = read_all(&data.join("pyarrow.parquet"));
    assert!(bad.is_empty(), "{bad:?}");
    let expected: Vec<Value> = std::fs::read_to_string(data.join("pyarrow.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows, expected);
}

fn dup_corpus() -> Vec<Value> {
    let base = [
        "The river flooded the lower part of the town in the spring of that year and the council met.",
        "Farmers in the valley grow wheat, barley and a little fruit for the market every single week.",
        "The old bridge was rebuilt with stone taken from the quarry on the hill above the village.",
        "A new train line now connects the village to the city in under an hour on most weekdays.",
    ];
    let mut v = Vec::new();
    for i in 0..60 {
        let b = base[i % base.len()];
        let text = match i % 3 {
            0 => format!("{b} Item {i} of the list."),
            1 => b.to_string(),
            _ => format!("{b} Item {} of the list.", i - 2),
        };
        v.push(json!({"id": format!("d{i}"), "text": text, "src": i % 4}));
    }
    v
}

fn kept_ids(out: &Path) -> Vec<String> {
    let (recs, _) = read_all(&out.join("kept"));
    recs.iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn dedup_keeps_the_same_ids_on_parquet_and_jsonl() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = dup_corpus();
    let jsonl = tmp.path().join("in.jsonl");
    let lines: Vec<String> = corpus.iter().map(|r| r.to_string()).collect();
    std::fs::write(&jsonl, lines.join("\n") + "\n").unwrap();
    let pq = tmp.path().join("pq");
    let mut w = ShardWriter::new(spec(&pq, u64::MAX, Compression::Zstd)).unwrap();
    for l in &lines {
        w.write(l.as_bytes()).unwrap();
    }
    w.finish().unwrap();

    let cfg = DedupConfig::default();
    let a = tmp.path().join("out-jsonl");
    let ra = dedup(&InputSet::discover(&jsonl).unwrap(), &a, &cfg, &NoProgress).unwrap();
    let b = tmp.path().join("out-pq");
    let pq_cfg = DedupConfig {
        format: Format::Parquet,
        cache_bytes: 0,
        ..DedupConfig::default()
    };
    let rb = dedup(&InputSet::discover(&pq).unwrap(), &b, &pq_cfg, &NoProgress).unwrap();
    assert!(ra.kept < ra.docs_in, "the corpus has duplicates");
    assert_eq!(
        (ra.kept, ra.removed_exact, ra.removed_near),
        (rb.kept, rb.removed_exact, rb.removed_near)
    );
    assert_eq!(kept_ids(&a), kept_ids(&b));
    assert!(rb
        .shards
        .iter()
        .all(|s| s.extension().unwrap() == "parquet"));
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn shards_exist_only_under_temporary_names_until_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("out");
    let mut w = ShardWriter::new(spec(&dir, 1 << 20, Compression::None)).unwrap();
    for r in records().iter().take(20) {
        w.write(r.to_string().as_bytes()).unwrap();
    }
    // Mid-write (a crash here): only the temporary exists, and no reader takes it.
    assert_eq!(names(&dir), [".part-00000.parquet.tmp"]);
    assert!(InputSet::discover(&dir).is_err());
    let shards = w.finish().unwrap();
    assert_eq!(names(&dir), ["part-00000.parquet"]);
    assert_eq!(shards, [dir.join("part-00000.parquet")]);
    assert_eq!(read_all(&dir).0.len(), 20);
}

fn write_parquet(path: &PathBuf, lines: &[&str]) {
    let dir = path.parent().unwrap().join("tmpw");
    let mut w = ShardWriter::new(spec(&dir, u64::MAX, Compression::None)).unwrap();
    for l in lines {
        w.write(l.as_bytes()).unwrap();
    }
    let shards = w.finish().unwrap();
    std::fs::rename(&shards[0], path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_parquet_rows_and_files_are_reported_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir_all(&dir).unwrap();
    write_parquet(&dir.join("a.parquet"), &[r#"{"body":"no text column"}"#]);
    write_parquet(&dir.join("b.parquet"), &[r#"{"text":5}"#, r#"{"text":6}"#]);
    std::fs::write(dir.join("c.parquet"), b"PAR1 this is not parquet").unwrap();
    write_parquet(&dir.join("d.parquet"), &[r#"{"text":"fine","id":"ok"}"#]);
    let (recs, mut bad) = read_all(&dir);
    bad.sort();
    assert_eq!(recs, [json!({"text": "fine", "id": "ok"})]);
    assert_eq!(bad.len(), 4, "{bad:?}");
    assert!(
        bad[0].ends_with("a.parquet:1: missing text field `text`"),
        "{}",
        bad[0]
    );
    assert!(
        bad[1].contains("b.parquet:1: field `text` is not a string"),
        "{}",
        bad[1]
    );
    assert!(bad[2].contains("b.parquet:2:"), "{}", bad[2]);
    assert!(
        bad[3].contains("c.parquet:1: not a readable Parquet file"),
        "{}",
        bad[3]
    );
}
