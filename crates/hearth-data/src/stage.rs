//! Record-at-a-time stages (quality filter, domain classifier, perplexity filter, PII
//! redaction) and the runner that streams records through one of them.
//!
//! The runner reads batches, asks the stage for a [`Verdict`] per record, and writes each
//! record (its raw line, plus any fields the stage set) to `DIR/kept/` or `DIR/dropped/`
//! (dropped records carry a `drop_reasons` field: nothing vanishes), and to
//! `DIR/routes/NAME/` for every route the stage names. Counters per reason and per route,
//! and a histogram when the stage gives one, go to `DIR/report.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Value;

use crate::dedup::remove_old_shards;
use crate::error::{Error, Result};
use crate::input::{Compression, InputSet};
use crate::output::{write_atomic, Format, ShardSpec, ShardWriter};
use crate::progress::Progress;
use crate::record::{Fields, Malformed, Record};
use crate::scan::scan;

/// What a stage decides for one record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Whether the record goes to `kept/` (else `dropped/`).
    pub keep: bool,
    /// Why (rule names, ...): each is counted in the report; dropped records carry them.
    pub reasons: Vec<String>,
    /// Fields to set on the record (a score, labels, ...), in order.
    pub fields: Vec<(String, Value)>,
    /// A replacement for the record's text (redaction), if any.
    pub text: Option<String>,
    /// Extra outputs the record is also written to (`routes/NAME/`).
    pub routes: Vec<String>,
    /// A value for the report's histogram (a perplexity, ...).
    pub value: Option<f64>,
}

/// One stage of a pipeline that judges records independently of each other.
pub trait Stage: Sync {
    /// Name used in logs and the report.
    fn name(&self) -> &str;
    /// Verdicts for a batch of records, one per record, in order. Batches let a stage
    /// score many texts at once (a model); per-record stages map in parallel.
    fn judge(&self, records: &[Record]) -> Result<Vec<Verdict>>;
    /// Histogram bucket edges for [`Verdict::value`] (empty: no histogram).
    fn histogram_edges(&self) -> Vec<f64> {
        Vec::new()
    }
}

/// Where a stage writes.
#[derive(Debug, Clone)]
pub struct StageOutput {
    /// The output directory.
    pub dir: PathBuf,
    /// Format of the shards.
    pub format: Format,
    /// Compression of the shards.
    pub compression: Compression,
    /// Bytes of JSONL per shard.
    pub shard_bytes: u64,
}

/// What a stage run did. Written to `DIR/report.json`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StageReport {
    /// The stage's name.
    pub stage: String,
    /// Valid records read.
    pub docs_in: u64,
    /// Records written to `kept/`.
    pub kept: u64,
    /// Records written to `dropped/`.
    pub dropped: u64,
    /// Reason → records it applied to (a record may count under several).
    pub reasons: BTreeMap<String, u64>,
    /// Route → records written there.
    pub routes: BTreeMap<String, u64>,
    /// Histogram of the stage's values: `(upper edge, count)`, last edge `+inf`.
    pub histogram: Vec<(f64, u64)>,
    /// Lines that gave no record (all in `malformed.jsonl`).
    pub malformed: u64,
    /// The first few malformed lines as `file:line: problem`.
    pub malformed_examples: Vec<String>,
}

/// Streams `inputs` through `stage` into `out`.
pub fn run_stage(
    inputs: &InputSet,
    fields: &Fields,
    stage: &dyn Stage,
    out: &StageOutput,
    progress: &dyn Progress,
) -> Result<StageReport> {
    let spec = |dir: PathBuf| -> Result<ShardWriter> {
        remove_old_shards(&dir, "part")?;
        ShardWriter::new(ShardSpec {
            dir,
            prefix: "part".into(),
            format: out.format,
            compression: out.compression,
            max_bytes: out.shard_bytes,
        })
    };
    let mut kept = spec(out.dir.join("kept"))?;
    let mut dropped = spec(out.dir.join("dropped"))?;
    let mut routes: BTreeMap<String, ShardWriter> = BTreeMap::new();
    let edges = stage.histogram_edges();
    let mut report = StageReport {
        stage: stage.name().to_string(),
        histogram: edges
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .map(|e| (e, 0))
            .collect(),
        ..StageReport::default()
    };
    progress.phase(stage.name(), None);
    let stats = scan(inputs, fields, |_, batch| {
        let records: Vec<Record> = batch.into_iter().map(|(r, _)| r).collect();
        let verdicts = stage.judge(&records)?;
        if verdicts.len() != records.len() {
            return Err(Error::Param {
                name: "stage",
                what: format!(
                    "stage `{}` gave {} verdicts for {} records",
                    stage.name(),
                    verdicts.len(),
                    records.len()
                ),
            });
        }
        let lines: Vec<Result<Vec<u8>>> = records
            .par_iter()
            .zip(&verdicts)
            .map(|(r, v)| output_line(r, v, fields))
            .collect();
        for (line, v) in lines.into_iter().zip(&verdicts) {
            let line = line?;
            for reason in &v.reasons {
                *report.reasons.entry(reason.clone()).or_default() += 1;
            }
            if let Some(x) = v.value {
                if let Some(slot) = report.histogram.iter_mut().find(|(e, _)| x <= *e) {
                    slot.1 += 1;
                }
            }
            for route in &v.routes {
                if !routes.contains_key(route) {
                    let w = spec(out.dir.join("routes").join(safe_name(route)))?;
                    routes.insert(route.clone(), w);
                }
                if let Some(w) = routes.get_mut(route) {
                    w.write(&line)?;
                }
                *report.routes.entry(route.clone()).or_default() += 1;
            }
            if v.keep {
                kept.write(&line)?;
            } else {
                dropped.write(&line)?;
            }
        }
        progress.advance(records.len() as u64);
        Ok(())
    })?;
    progress.finish_phase();
    report.docs_in = stats.records;
    report.kept = kept.records();
    report.dropped = dropped.records();
    report.malformed = stats.malformed.len() as u64;
    report.malformed_examples = stats
        .malformed
        .iter()
        .take(20)
        .map(|m| m.to_string())
        .collect();
    kept.finish()?;
    dropped.finish()?;
    for (_, w) in routes {
        w.finish()?;
    }
    if edges.is_empty() {
        report.histogram.clear();
    }
    write_malformed(&out.dir, &stats.malformed)?;
    write_atomic(
        &out.dir.join("report.json"),
        &serde_json::to_vec_pretty(&report)?,
    )?;
    Ok(report)
}

/// The record's line with the verdict applied: the raw line itself when nothing changes.
fn output_line(r: &Record, v: &Verdict, fields: &Fields) -> Result<Vec<u8>> {
    if v.fields.is_empty() && v.text.is_none() && v.keep {
        return Ok(r.raw.clone());
    }
    let text = v.text.as_ref().map(|t| Value::String(t.clone()));
    let reasons = (!v.keep).then(|| serde_json::json!(v.reasons));
    let mut set: Vec<(&str, &Value)> = Vec::new();
    if let Some(t) = &text {
        set.push((fields.text.as_str(), t));
    }
    set.extend(v.fields.iter().map(|(k, val)| (k.as_str(), val)));
    if let Some(reasons) = &reasons {
        set.push(("drop_reasons", reasons));
    }
    r.raw_with(&set)
}

/// A route name usable as a directory name.
fn safe_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "_".into()
    } else {
        s
    }
}

pub(crate) fn write_malformed(out_dir: &Path, malformed: &[Malformed]) -> Result<()> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, "create", e))?;
    let mut buf = Vec::new();
    for m in malformed {
        serde_json::to_writer(&mut buf, m)?;
        buf.push(b'\n');
    }
    write_atomic(&out_dir.join("malformed.jsonl"), &buf)
}
