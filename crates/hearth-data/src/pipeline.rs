//! Pipelines from a TOML file: record stages run per input file by `--shard i/N` workers
//! (any number, on any machines sharing the output directory), then a merge step that
//! concatenates the per-file outputs in input order and runs dedup over the whole.
//!
//! ```toml
//! input = "raw/"            # a file or a directory (relative to this file)
//! output = "clean/"
//! output_format = "jsonl"  # or "parquet" (final shards; compression = page codec)
//! [[stages]]
//! kind = "quality"          # QualityConfig fields may follow
//! [[stages]]
//! kind = "domains"          # lists = "domains.toml" (default: built-in lists)
//! [[stages]]
//! kind = "redact"           # operator = "placeholder" | "mask"
//! [[stages]]
//! kind = "lm-score"         # lm = "lm.bin"; field = "ccnet_ppl"; buckets = [30, 60];
//!                           # cutoffs = "cutoffs.json" (absent: computed at merge)
//! [[stages]]
//! kind = "dedup"            # must be last: runs in the merge step
//! threshold = 0.8
//! ```
//!
//! The unit of work is one input file: worker `i` takes files `i, i+N, i+2N, ...` and
//! writes `OUT/work/file-NNNNN/`, marked `DONE` only when complete, so a rerun skips
//! finished files and redoes interrupted ones. Since each file's output depends only on
//! that file, and the merge reads files in input order, the result is byte-identical for
//! any `N`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::chain::Chain;
use crate::dedup::{dedup, DedupConfig, DedupReport, NearDedupConfig};
use crate::domains::{DomainClassifier, DomainConfig};
use crate::error::{Error, Result};
use crate::input::{Compression, InputSet};
use crate::lm_score::{check_percentiles, write_buckets, BucketOutput, Cutoffs, LmScoreStage};
use crate::merge::{add_report, concat_outputs};
use crate::minhash::Shingle;
use crate::ngram::load_lm;
use crate::output::{write_atomic, Format, ShardSpec};
use crate::perplexity::{PerplexityFilter, Scorer};
use crate::pii::PiiRedactor;
use crate::progress::Progress;
use crate::quality::QualityConfig;
use crate::record::Fields;
use crate::stage::{run_stage, Stage, StageOutput, StageReport};
use crate::stages::{DomainStage, QualityFilter};

/// A pipeline file.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Input file or directory (relative to the pipeline file).
    pub input: PathBuf,
    /// Output directory (relative to the pipeline file).
    pub output: PathBuf,
    /// Field holding the text.
    #[serde(default = "default_text")]
    pub text_field: String,
    /// Field holding the id.
    #[serde(default = "default_id")]
    pub id_field: String,
    /// Output compression: "none", "gzip" or "zstd" (of the whole JSONL shard, or of the
    /// Parquet pages).
    #[serde(default = "default_compression")]
    pub compression: String,
    /// Output format of the final shards: "jsonl" or "parquet" (the per-file work area is
    /// always JSONL).
    #[serde(default = "default_format")]
    pub output_format: String,
    /// MiB of JSONL per output shard.
    #[serde(default = "default_shard_mib")]
    pub shard_mib: u64,
    /// The stages, in order.
    pub stages: Vec<StageConfig>,
}

fn default_text() -> String {
    "text".into()
}
fn default_id() -> String {
    "id".into()
}
fn default_compression() -> String {
    "none".into()
}
fn default_format() -> String {
    "jsonl".into()
}
fn default_shard_mib() -> u64 {
    256
}

/// One stage of a pipeline file.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StageConfig {
    /// Gopher/C4 quality rules.
    Quality(Box<QualityConfig>),
    /// Domain labels and routes.
    Domains {
        /// A TOML keyword-list file (default: built-in lists).
        #[serde(default)]
        lists: Option<PathBuf>,
    },
    /// PII redaction: operator "placeholder" or "mask".
    Redact {
        /// The operator.
        #[serde(default = "default_operator")]
        operator: String,
        /// PII kinds to look for: labels, `default` or `all` (comma-separated; default
        /// `default`, i.e. no names or addresses).
        #[serde(default)]
        kinds: Option<String>,
    },
    /// Perplexity filter (needs a scorer from the caller).
    Perplexity {
        /// Keep records at or under this perplexity (absent: keep all scored).
        #[serde(default)]
        max_ppl: Option<f32>,
        /// The field the score goes to.
        #[serde(default = "default_ppl_field")]
        field: String,
    },
    /// CCNet-style n-gram perplexity into a field, with head / middle / tail routes.
    #[serde(rename = "lm-score", alias = "lm_score")]
    LmScore {
        /// The model: `lm.bin` from `hearth data train-lm`, or an ARPA file.
        lm: PathBuf,
        /// The field the perplexity goes to.
        #[serde(default = "default_lm_field")]
        field: String,
        /// Percentiles between buckets (two: head, middle, tail).
        #[serde(default = "default_buckets")]
        buckets: Vec<f64>,
        /// `cutoffs.json` of a reference run: routes are decided per record. Absent: the
        /// merge step computes them over every kept record and routes there.
        #[serde(default)]
        cutoffs: Option<PathBuf>,
    },
    /// Exact + near dedup over everything kept (must be the last stage).
    Dedup {
        /// Jaccard threshold.
        #[serde(default = "default_threshold")]
        threshold: f64,
        /// Words per shingle.
        #[serde(default = "default_ngram")]
        ngram: usize,
        /// MinHash permutations.
        #[serde(default = "default_num_perm")]
        num_perm: usize,
        /// Hash seed.
        #[serde(default = "default_seed")]
        seed: u64,
    },
}

fn default_operator() -> String {
    "placeholder".into()
}
fn default_ppl_field() -> String {
    "ppl".into()
}
fn default_lm_field() -> String {
    "ccnet_ppl".into()
}
fn default_buckets() -> Vec<f64> {
    vec![30.0, 60.0]
}
fn default_threshold() -> f64 {
    0.8
}
fn default_ngram() -> usize {
    5
}
fn default_num_perm() -> usize {
    128
}
fn default_seed() -> u64 {
    1
}

/// A loaded pipeline: its config with paths resolved against the file's directory.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The config.
    pub config: PipelineConfig,
    base: PathBuf,
}

/// What the merge step reports (also `OUT/report.json`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PipelineReport {
    /// Input files processed.
    pub files: usize,
    /// The record stages, summed over files.
    pub stages: StageReport,
    /// The dedup step, when configured.
    pub dedup: Option<DedupReport>,
}

impl Pipeline {
    /// Reads a pipeline file.
    pub fn load(path: &Path) -> Result<Pipeline> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
        let config: PipelineConfig = toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            what: e.to_string(),
        })?;
        let dedups = config
            .stages
            .iter()
            .filter(|s| matches!(s, StageConfig::Dedup { .. }))
            .count();
        let dedup_last = matches!(config.stages.last(), Some(StageConfig::Dedup { .. }));
        if dedups > 1 || (dedups == 1 && !dedup_last) {
            return Err(Error::Config {
                path: path.to_path_buf(),
                what: "`dedup` may appear once, as the last stage".into(),
            });
        }
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Pipeline { config, base })
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    /// The output directory.
    pub fn output_dir(&self) -> PathBuf {
        self.resolve(&self.config.output)
    }

    /// Whether a stage needs a [`Scorer`].
    pub fn needs_scorer(&self) -> bool {
        self.config
            .stages
            .iter()
            .any(|s| matches!(s, StageConfig::Perplexity { .. }))
    }

    fn fields(&self) -> Fields {
        Fields {
            text: self.config.text_field.clone(),
            id: self.config.id_field.clone(),
        }
    }

    fn compression(&self) -> Result<Compression> {
        match self.config.compression.as_str() {
            "none" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            other => Err(Error::Param {
                name: "compression",
                what: format!("`{other}` is not none, gzip or zstd"),
            }),
        }
    }

    fn format(&self) -> Result<Format> {
        match self.config.output_format.as_str() {
            "jsonl" => Ok(Format::Jsonl),
            "parquet" => Ok(Format::Parquet),
            other => Err(Error::Param {
                name: "output_format",
                what: format!("`{other}` is not jsonl or parquet"),
            }),
        }
    }

    fn record_stages<'a>(&self, scorer: Option<&'a dyn Scorer>) -> Result<Chain<'a>> {
        let mut stages: Vec<Box<dyn Stage + 'a>> = Vec::new();
        for s in &self.config.stages {
            match s {
                StageConfig::Quality(q) => stages.push(Box::new(QualityFilter {
                    config: (**q).clone(),
                })),
                StageConfig::Domains { lists } => {
                    let cfg = match lists {
                        Some(p) => {
                            let p = self.resolve(p);
                            let text = std::fs::read_to_string(&p)
                                .map_err(|e| Error::io(&p, "read", e))?;
                            DomainConfig::from_toml(&text, &p)?
                        }
                        None => DomainConfig::builtin(),
                    };
                    let classifier = DomainClassifier::new(&cfg)?;
                    stages.push(Box::new(DomainStage { classifier }));
                }
                StageConfig::Redact { operator, kinds } => {
                    let op = match operator.as_str() {
                        "placeholder" => hearth_guard::Operator::Placeholder,
                        "mask" => hearth_guard::Operator::Mask {
                            ch: '*',
                            keep_length: true,
                        },
                        other => {
                            return Err(Error::Param {
                                name: "operator",
                                what: format!("`{other}` is not placeholder or mask"),
                            })
                        }
                    };
                    let kinds = match kinds {
                        Some(list) => hearth_guard::PiiKind::parse_list(list).map_err(|what| {
                            Error::Param {
                                name: "kinds",
                                what,
                            }
                        })?,
                        None => hearth_guard::PiiKind::DEFAULT.to_vec(),
                    };
                    stages.push(Box::new(PiiRedactor::new(op)?.with_kinds(&kinds)));
                }
                StageConfig::Perplexity { max_ppl, field } => {
                    let scorer = scorer.ok_or(Error::Param {
                        name: "perplexity",
                        what: "the pipeline has a perplexity stage but no model was given".into(),
                    })?;
                    stages.push(Box::new(PerplexityFilter {
                        scorer,
                        max_ppl: max_ppl.unwrap_or(f32::INFINITY),
                        field: field.clone(),
                    }));
                }
                StageConfig::LmScore {
                    lm,
                    field,
                    buckets,
                    cutoffs,
                } => {
                    check_percentiles(buckets)?;
                    let cutoffs = match cutoffs {
                        Some(p) => Some(Cutoffs::load(&self.resolve(p))?),
                        None => None,
                    };
                    stages.push(Box::new(LmScoreStage {
                        lm: Arc::new(load_lm(&self.resolve(lm))?),
                        field: field.clone(),
                        cutoffs,
                    }));
                }
                StageConfig::Dedup { .. } => {}
            }
        }
        Ok(Chain::new(stages))
    }

    /// Runs worker `shard` of `of`: the record stages on files `shard, shard+of, ...`
    /// not yet marked done. Returns how many files it processed (skipped ones excluded).
    pub fn run_worker(
        &self,
        shard: usize,
        of: usize,
        scorer: Option<&dyn Scorer>,
        progress: &dyn Progress,
    ) -> Result<usize> {
        if of == 0 || shard >= of {
            return Err(Error::Param {
                name: "shard",
                what: format!("{shard}/{of}: need 0 <= i < N"),
            });
        }
        let inputs = InputSet::discover(&self.resolve(&self.config.input))?;
        let chain = self.record_stages(scorer)?;
        let out = self.output_dir();
        let mut done = 0;
        for (fi, file) in inputs.files().iter().enumerate().skip(shard).step_by(of) {
            let unit = unit_dir(&out, fi);
            if unit.join("DONE").exists() {
                tracing::info!("{}: done already, skipped", file.display());
                continue;
            }
            if unit.exists() {
                std::fs::remove_dir_all(&unit).map_err(|e| Error::io(&unit, "clear", e))?;
            }
            let stage_out = StageOutput {
                dir: unit.clone(),
                format: Format::Jsonl,
                compression: Compression::None,
                shard_bytes: u64::MAX,
            };
            let one = InputSet::from_files(vec![file.clone()]);
            run_stage(&one, &self.fields(), &chain, &stage_out, progress)?;
            write_atomic(&unit.join("DONE"), file.to_string_lossy().as_bytes())?;
            done += 1;
        }
        Ok(done)
    }

    /// The merge step: checks every file is done, concatenates the per-file outputs in
    /// input order into `OUT/kept`, `OUT/dropped`, `OUT/routes/*`, sums the reports, and
    /// runs dedup over `OUT/kept` into `OUT/dedup/` when configured.
    pub fn merge(&self, progress: &dyn Progress) -> Result<PipelineReport> {
        let inputs = InputSet::discover(&self.resolve(&self.config.input))?;
        let out = self.output_dir();
        let n = inputs.files().len();
        let missing: Vec<String> = (0..n)
            .filter(|&fi| !unit_dir(&out, fi).join("DONE").exists())
            .map(|fi| inputs.files()[fi].display().to_string())
            .collect();
        if !missing.is_empty() {
            return Err(Error::Input {
                path: out,
                what: format!(
                    "{} input files are not processed yet: {}",
                    missing.len(),
                    missing.join(", ")
                ),
            });
        }
        let units: Vec<PathBuf> = (0..n).map(|fi| unit_dir(&out, fi)).collect();
        let mut outputs = vec![PathBuf::from("kept"), PathBuf::from("dropped")];
        let mut route_names = std::collections::BTreeSet::new();
        for u in &units {
            if let Ok(rd) = std::fs::read_dir(u.join("routes")) {
                for e in rd.flatten() {
                    route_names.insert(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
        outputs.extend(route_names.iter().map(|r| Path::new("routes").join(r)));
        let compression = self.compression()?;
        let format = self.format()?;
        for rel in &outputs {
            let spec = ShardSpec {
                dir: out.join(rel),
                prefix: "part".into(),
                format,
                compression,
                max_bytes: self.config.shard_mib << 20,
            };
            concat_outputs(&units, rel, spec)?;
        }
        let mut malformed = Vec::new();
        for u in &units {
            if let Ok(bytes) = std::fs::read(u.join("malformed.jsonl")) {
                malformed.extend_from_slice(&bytes);
            }
        }
        write_atomic(&out.join("malformed.jsonl"), &malformed)?;
        let mut report = PipelineReport {
            files: n,
            ..PipelineReport::default()
        };
        for u in &units {
            let path = u.join("report.json");
            let text = std::fs::read(&path).map_err(|e| Error::io(&path, "read", e))?;
            let r: serde_json::Value = serde_json::from_slice(&text)?;
            add_report(&mut report.stages, &r);
        }
        for s in &self.config.stages {
            if let StageConfig::LmScore {
                field,
                buckets,
                cutoffs: None,
                ..
            } = s
            {
                let kept = out.join("kept");
                if !has_files(&kept) {
                    continue;
                }
                let bucket_out = BucketOutput {
                    dir: out.clone(),
                    format,
                    compression,
                    shard_bytes: self.config.shard_mib << 20,
                };
                let c = write_buckets(
                    &InputSet::discover(&kept)?,
                    &self.fields(),
                    field,
                    buckets,
                    None,
                    &bucket_out,
                )?;
                for (k, v) in c.counts {
                    *report.stages.routes.entry(k).or_default() += v;
                }
            }
        }
        if let Some(StageConfig::Dedup {
            threshold,
            ngram,
            num_perm,
            seed,
        }) = self.config.stages.last()
        {
            let cfg = DedupConfig {
                fields: self.fields(),
                near: Some(NearDedupConfig {
                    shingle: Shingle::Words(*ngram),
                    num_perm: *num_perm,
                    threshold: *threshold,
                    lsh: None,
                    seed: *seed,
                }),
                format,
                compression,
                shard_bytes: self.config.shard_mib << 20,
                ..DedupConfig::default()
            };
            let kept = out.join("kept");
            if has_files(&kept) {
                report.dedup = Some(dedup(
                    &InputSet::discover(&kept)?,
                    &out.join("dedup"),
                    &cfg,
                    progress,
                )?);
            }
        }
        write_atomic(
            &out.join("report.json"),
            &serde_json::to_vec_pretty(&report)?,
        )?;
        Ok(report)
    }
}

fn has_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}

fn unit_dir(out: &Path, file_index: usize) -> PathBuf {
    out.join("work").join(format!("file-{file_index:05}"))
}
