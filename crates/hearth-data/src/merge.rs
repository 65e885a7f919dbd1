//! The merge step's plumbing: concatenating the per-file outputs of pipeline workers in
//! input order, and summing their stage reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::input::open_reader;
use crate::output::{ShardSpec, ShardWriter};
use crate::stage::StageReport;

/// Concatenates `unit/rel/part-*` of every unit, in order, into the shards of `spec`.
pub(crate) fn concat_outputs(units: &[PathBuf], rel: &Path, spec: ShardSpec) -> Result<()> {
    crate::dedup::remove_old_shards(&spec.dir, "part")?;
    let mut w = ShardWriter::new(spec)?;
    let mut line = Vec::new();
    for u in units {
        let dir = u.join(rel);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut shards: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("part-"))
            })
            .collect();
        shards.sort();
        for s in shards {
            let mut r = open_reader(&s)?;
            loop {
                line.clear();
                let n = std::io::BufRead::read_until(&mut r, b'\n', &mut line)
                    .map_err(|e| Error::io(&s, "read", e))?;
                if n == 0 {
                    break;
                }
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                w.write(&line)?;
            }
        }
    }
    w.finish()?;
    Ok(())
}

pub(crate) fn add_report(sum: &mut StageReport, r: &serde_json::Value) {
    let num = |k: &str| r[k].as_u64().unwrap_or(0);
    sum.stage = "pipeline".into();
    sum.docs_in += num("docs_in");
    sum.kept += num("kept");
    sum.dropped += num("dropped");
    sum.malformed += num("malformed");
    for (field, map) in [("reasons", &mut sum.reasons), ("routes", &mut sum.routes)] {
        if let Some(obj) = r[field].as_object() {
            for (k, v) in obj {
                *map.entry(k.clone()).or_default() += v.as_u64().unwrap_or(0);
            }
        }
    }
    if let Some(ex) = r["malformed_examples"].as_array() {
        for e in ex.iter().filter_map(|e| e.as_str()) {
            if sum.malformed_examples.len() < 20 {
                sum.malformed_examples.push(e.to_string());
            }
        }
    }
    if let Some(h) = r["histogram"].as_array() {
        let mut merged: BTreeMap<usize, u64> = BTreeMap::new();
        for (i, pair) in h.iter().enumerate() {
            merged.insert(i, pair[1].as_u64().unwrap_or(0));
        }
        if sum.histogram.is_empty() {
            sum.histogram = h
                .iter()
                .map(|p| (p[0].as_f64().unwrap_or(f64::INFINITY), 0))
                .collect();
        }
        for (i, n) in merged {
            if let Some(slot) = sum.histogram.get_mut(i) {
                slot.1 += n;
            }
        }
    }
}
