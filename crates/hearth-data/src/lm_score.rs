//! CCNet-style scoring with an n-gram model: each document's perplexity is written to a
//! field (rounded to 0.1, as CCNet does) and documents are routed into buckets by
//! percentile cut-offs: with the default percentiles 30 and 60, `head` (perplexity below
//! the 30th percentile), `middle` (below the 60th) and `tail` (the rest), compared with
//! `<` as CCNet's `PerplexityBucket` does. Nothing is dropped.
//!
//! Cut-offs come from a file of a previous run ([`Cutoffs`], `cutoffs.json`), so a new
//! corpus is judged against a reference distribution as in CCNet, or are computed on the
//! run's own documents (nearest-rank percentiles over every score, in input order, so the
//! result does not depend on sharding or threads): the stage then only scores, and
//! [`write_buckets`] routes the scored records in a second pass.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::Value;

use crate::dedup::remove_old_shards;
use crate::error::{Error, Result};
use crate::input::{Compression, InputSet};
use crate::ngram::NgramLm;
use crate::output::{write_atomic, Format, ShardSpec, ShardWriter};
use crate::perplexity::percentile;
use crate::record::{Fields, Record};
use crate::scan::scan;
use crate::stage::{Stage, Verdict};

/// Percentile cut-offs between perplexity buckets (`cutoffs.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cutoffs {
    /// The field the scores are in.
    pub field: String,
    /// The percentiles (ascending, in 0..100).
    pub percentiles: Vec<f64>,
    /// The perplexity at each percentile.
    pub values: Vec<f64>,
    /// Documents the values were computed on.
    pub docs: u64,
    /// Documents per bucket in the run that wrote the file.
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
}

/// Checks percentiles for `--buckets`: ascending, strictly inside 0..100.
pub fn check_percentiles(p: &[f64]) -> Result<()> {
    let ok = !p.is_empty()
        && p.iter().all(|x| *x > 0.0 && *x < 100.0)
        && p.windows(2).all(|w| w[0] < w[1]);
    if ok {
        Ok(())
    } else {
        Err(Error::Param {
            name: "buckets",
            what: format!("{p:?}: need ascending percentiles strictly between 0 and 100"),
        })
    }
}

impl Cutoffs {
    /// Cut-offs at `percentiles` of `values` (nearest rank, non-finite values ignored).
    pub fn compute(field: &str, percentiles: &[f64], values: &[f64]) -> Result<Cutoffs> {
        check_percentiles(percentiles)?;
        let mut out = Vec::with_capacity(percentiles.len());
        for &p in percentiles {
            out.push(percentile(values, p).ok_or(Error::Param {
                name: "buckets",
                what: "no scored document to compute cut-offs on".into(),
            })?);
        }
        Ok(Cutoffs {
            field: field.to_string(),
            percentiles: percentiles.to_vec(),
            values: out,
            docs: values.len() as u64,
            counts: BTreeMap::new(),
        })
    }

    /// Reads `cutoffs.json` written by an earlier run.
    pub fn load(path: &Path) -> Result<Cutoffs> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
        let c: Cutoffs = serde_json::from_slice(&bytes).map_err(|e| Error::Model {
            path: path.to_path_buf(),
            what: format!("not a cutoffs file: {e}"),
        })?;
        let sorted = c.values.windows(2).all(|w| w[0] <= w[1]);
        if c.values.len() != c.percentiles.len() || !sorted {
            return Err(Error::Model {
                path: path.to_path_buf(),
                what: "needs one ascending value per percentile".into(),
            });
        }
        check_percentiles(&c.percentiles)?;
        Ok(c)
    }

    /// The bucket names: `head`, `middle`, `tail` for two cut-offs, else `bucket-0`, ...
    pub fn names(&self) -> Vec<String> {
        if self.values.len() == 2 {
            ["head", "middle", "tail"].map(String::from).to_vec()
        } else {
            (0..=self.values.len())
                .map(|i| format!("bucket-{i}"))
                .collect()
        }
    }

    /// The bucket of a perplexity: the first whose cut-off it is below.
    pub fn bucket(&self, ppl: f64) -> String {
        let i = self
            .values
            .iter()
            .position(|&c| ppl < c)
            .unwrap_or(self.values.len());
        self.names().swap_remove(i)
    }
}

/// Scores records with an n-gram model into a field; routes them to buckets when the
/// cut-offs are known. Keeps every record.
pub struct LmScoreStage {
    /// The model.
    pub lm: Arc<NgramLm>,
    /// The field the perplexity goes to.
    pub field: String,
    /// Cut-offs for routing (`None`: score only).
    pub cutoffs: Option<Cutoffs>,
}

/// A perplexity rounded to one decimal, as CCNet writes it.
pub fn round_ppl(ppl: f64) -> f64 {
    (ppl * 10.0).round() / 10.0
}

impl Stage for LmScoreStage {
    fn name(&self) -> &str {
        "lm-score"
    }

    fn judge(&self, records: &[Record]) -> Result<Vec<Verdict>> {
        Ok(records
            .par_iter()
            .map(|r| {
                let ppl = round_ppl(self.lm.perplexity(&r.text));
                Verdict {
                    keep: true,
                    fields: vec![(self.field.clone(), Value::from(ppl))],
                    routes: self.cutoffs.iter().map(|c| c.bucket(ppl)).collect(),
                    value: Some(ppl),
                    ..Verdict::default()
                }
            })
            .collect())
    }

    fn histogram_edges(&self) -> Vec<f64> {
        vec![10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0]
    }
}

/// Where [`write_buckets`] writes.
#[derive(Debug, Clone)]
pub struct BucketOutput {
    /// `DIR`: buckets go to `DIR/routes/NAME/`, the cut-offs to `DIR/cutoffs.json`.
    pub dir: std::path::PathBuf,
    /// Shard format.
    pub format: Format,
    /// Shard compression.
    pub compression: Compression,
    /// Bytes per shard.
    pub shard_bytes: u64,
}

/// The second pass when cut-offs are computed on the run: reads the scored records of
/// `scored`, computes the cut-offs at `percentiles` of `field` (or takes `given`), and
/// writes each record, unchanged, to `DIR/routes/BUCKET/`. Records without a numeric
/// `field` go to `DIR/routes/unscored/`. Returns the cut-offs with their counts, also
/// written to `DIR/cutoffs.json`.
pub fn write_buckets(
    scored: &InputSet,
    fields: &Fields,
    field: &str,
    percentiles: &[f64],
    given: Option<Cutoffs>,
    out: &BucketOutput,
) -> Result<Cutoffs> {
    let value_of = |r: &Record| -> Result<Option<f64>> {
        let v: Value = serde_json::from_slice(&r.raw)?;
        Ok(v.get(field).and_then(Value::as_f64))
    };
    let mut cutoffs = match given {
        Some(c) => c,
        None => {
            let mut values = Vec::new();
            scan(scored, fields, |_, batch| {
                for (r, _) in &batch {
                    values.extend(value_of(r)?);
                }
                Ok(())
            })?;
            Cutoffs::compute(field, percentiles, &values)?
        }
    };
    let mut names = cutoffs.names();
    names.push("unscored".into());
    let mut writers = BTreeMap::new();
    for name in &names {
        let dir = out.dir.join("routes").join(name);
        remove_old_shards(&dir, "part")?;
        let w = ShardWriter::new(ShardSpec {
            dir,
            prefix: "part".into(),
            format: out.format,
            compression: out.compression,
            max_bytes: out.shard_bytes,
        })?;
        writers.insert(name.clone(), w);
    }
    scan(scored, fields, |_, batch| {
        for (r, _) in &batch {
            let name = match value_of(r)? {
                Some(x) => cutoffs.bucket(x),
                None => "unscored".to_string(),
            };
            if let Some(w) = writers.get_mut(&name) {
                w.write(&r.raw)?;
            }
        }
        Ok(())
    })?;
    cutoffs.counts.clear();
    for (name, w) in writers {
        let n = w.records();
        w.finish()?;
        if n > 0 || name != "unscored" {
            cutoffs.counts.insert(name, n);
        }
    }
    let unscored = out.dir.join("routes").join("unscored");
    if !cutoffs.counts.contains_key("unscored") {
        let _ = std::fs::remove_dir(&unscored);
    }
    write_atomic(
        &out.dir.join("cutoffs.json"),
        &serde_json::to_vec_pretty(&cutoffs)?,
    )?;
    Ok(cutoffs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_ccnet_comparisons() {
        let c = Cutoffs::compute(
            "p",
            &[30.0, 60.0],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
        )
        .unwrap();
        assert_eq!(c.values, [3.0, 6.0]);
        assert_eq!(c.bucket(2.9), "head");
        assert_eq!(c.bucket(3.0), "middle");
        assert_eq!(c.bucket(6.0), "tail");
        assert!(check_percentiles(&[60.0, 30.0]).is_err());
        assert!(check_percentiles(&[0.0]).is_err());
        let four = Cutoffs::compute("p", &[25.0, 50.0, 75.0], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(four.bucket(10.0), "bucket-3");
    }
}
