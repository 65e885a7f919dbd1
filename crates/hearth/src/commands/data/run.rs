//! `hearth data run PIPELINE.toml`: the whole pipeline in one process, or one `--shard i/N`
//! worker, or the `--merge` step.

use std::path::PathBuf;

use anyhow::Context;
use hearth_data::{Pipeline, PipelineReport, Scorer};

use super::scorer::EngineScorer;
use super::{set_threads, BarProgress};
use crate::commands::ModelArgs;

/// Flags of `hearth data run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The pipeline file (TOML; see hearth_data::PipelineConfig).
    pub pipeline: PathBuf,
    /// Run only worker i of N (0-based): the record stages on input files i, i+N, ...
    /// Finished files are skipped, so a rerun resumes.
    #[arg(long, value_name = "I/N", conflicts_with = "merge")]
    pub shard: Option<String>,
    /// Run only the merge step (after every worker finished).
    #[arg(long)]
    pub merge: bool,
    /// Model for a perplexity stage.
    #[arg(long, short = 'm', default_value = crate::commands::DEFAULT_MODEL)]
    pub model: String,
    /// Tokens per chunk for a perplexity stage.
    #[arg(long, default_value_t = 512)]
    pub ctx: usize,
    /// Worker threads (default: all cores).
    #[arg(long, short = 't')]
    pub threads: Option<usize>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_shard(s: &str) -> anyhow::Result<(usize, usize)> {
    let (i, n) = s
        .split_once('/')
        .with_context(|| format!("--shard {s}: expected I/N, like 0/4"))?;
    let i: usize = i
        .trim()
        .parse()
        .with_context(|| format!("--shard {s}: bad I"))?;
    let n: usize = n
        .trim()
        .parse()
        .with_context(|| format!("--shard {s}: bad N"))?;
    anyhow::ensure!(n > 0 && i < n, "--shard {s}: need 0 <= I < N");
    Ok((i, n))
}

pub fn run(a: &RunArgs) -> anyhow::Result<()> {
    let pipeline = Pipeline::load(&a.pipeline)?;
    let progress = BarProgress::default();
    let worker = match (&a.shard, a.merge) {
        (_, true) => None,
        (Some(s), false) => Some(parse_shard(s)?),
        (None, false) => Some((0, 1)),
    };
    if let Some((i, n)) = worker {
        let scorer: Option<EngineScorer> = if pipeline.needs_scorer() {
            let m = ModelArgs {
                model: a.model.clone(),
                threads: a.threads,
                quantize: None,
            };
            Some(EngineScorer::new(m.load()?, a.ctx))
        } else {
            set_threads(a.threads)?;
            None
        };
        let done =
            pipeline.run_worker(i, n, scorer.as_ref().map(|s| s as &dyn Scorer), &progress)?;
        eprintln!("worker {i}/{n}: {done} input files processed (finished ones skipped)");
    } else {
        set_threads(a.threads)?;
    }
    if a.merge || a.shard.is_none() {
        let report = pipeline.merge(&progress)?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_table(&report);
        }
    }
    Ok(())
}

fn print_table(r: &PipelineReport) {
    let row = |k: &str, v: String| println!("{k:<32} {v:>10}");
    let s = &r.stages;
    row("input files", r.files.to_string());
    row("documents in", s.docs_in.to_string());
    row("malformed lines", s.malformed.to_string());
    row("kept after record stages", s.kept.to_string());
    row("dropped", s.dropped.to_string());
    for (k, v) in &s.reasons {
        row(&format!("  {k}"), v.to_string());
    }
    for (k, v) in &s.routes {
        row(&format!("  route {k}"), v.to_string());
    }
    for (edge, n) in &s.histogram {
        row(&format!("  value <= {edge}"), n.to_string());
    }
    if let Some(d) = &r.dedup {
        row("dedup: removed exact", d.removed_exact.to_string());
        row("dedup: removed near", d.removed_near.to_string());
        row("dedup: kept", d.kept.to_string());
        for (size, n) in &d.cluster_sizes {
            row(&format!("  clusters of size {size}"), n.to_string());
        }
    }
}
