//! `hearth data train-lm` and `hearth data lm-score`: CCNet-style n-gram perplexity
//! (see hearth_data's `NgramLm` and `LmScoreStage`).

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use hearth_data::{
    check_percentiles, is_parquet, load_lm, run_stage, write_arpa, write_buckets, BucketOutput,
    Compression, Cutoffs, InputSet, KneserNeyTrainer, LmScoreStage, NgramLm, StageOutput,
};

use super::{set_threads, BarProgress, IoArgs};

/// Flags of `hearth data train-lm`.
#[derive(clap::Args, Debug)]
pub struct TrainLmArgs {
    /// Reference text: a plain-text file (one sentence or paragraph per line), or a
    /// .jsonl / .jsonl.gz / .jsonl.zst / .parquet file or directory (each record's text
    /// field, split into lines).
    #[arg(long, short = 'i')]
    pub input: PathBuf,
    /// The model file to write (lm.bin).
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Order of the model (1..=5).
    #[arg(long, default_value_t = 5)]
    pub order: usize,
    /// Drop n-grams of order 2 and up seen at most this many times (0: keep all).
    #[arg(long, default_value_t = 0)]
    pub prune: u32,
    /// Also write the model as an ARPA file here.
    #[arg(long)]
    pub arpa: Option<PathBuf>,
    /// JSON field holding the text (JSONL/Parquet input).
    #[arg(long, default_value = "text")]
    pub text_field: String,
}

/// Flags of `hearth data lm-score`.
#[derive(clap::Args, Debug)]
pub struct LmScoreArgs {
    #[command(flatten)]
    pub io: IoArgs,
    /// The n-gram model: lm.bin from `hearth data train-lm`, or an ARPA file.
    #[arg(long)]
    pub lm: PathBuf,
    /// The field the perplexity is written to.
    #[arg(long, default_value = "ccnet_ppl")]
    pub field: String,
    /// Percentiles between buckets: two give head / middle / tail (CCNet: 30,60).
    #[arg(long, value_delimiter = ',', default_value = "30,60")]
    pub buckets: Vec<f64>,
    /// cutoffs.json of an earlier run (a reference distribution); default: computed on
    /// this run's documents, and written to DIR/cutoffs.json.
    #[arg(long, conflicts_with = "buckets")]
    pub cutoffs: Option<PathBuf>,
}

fn is_records(p: &std::path::Path) -> bool {
    p.is_dir() || is_parquet(p) || Compression::from_path(p).is_some()
}

pub fn train(a: &TrainLmArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut t = KneserNeyTrainer::new(a.order)?;
    if is_records(&a.input) {
        let inputs = InputSet::discover(&a.input)?;
        let fields = hearth_data::Fields {
            text: a.text_field.clone(),
            id: "id".into(),
        };
        let stats = hearth_data::scan(&inputs, &fields, |_, batch| {
            for (r, _) in batch {
                for line in r.text.split('\n') {
                    t.add_line(line)?;
                }
            }
            Ok(())
        })?;
        if !stats.malformed.is_empty() {
            eprintln!("{} malformed records skipped", stats.malformed.len());
        }
    } else {
        let f = std::fs::File::open(&a.input)
            .with_context(|| format!("{}: cannot open", a.input.display()))?;
        for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
            let line = line.with_context(|| {
                format!("{}: line {}: not UTF-8 text", a.input.display(), i + 1)
            })?;
            t.add_line(&line)?;
        }
    }
    let (sentences, tokens) = t.counted();
    let model = t.build(a.prune)?;
    let lm = NgramLm::from_model(&model, &a.output)?;
    lm.save(&a.output)?;
    if let Some(p) = &a.arpa {
        hearth_data::write_atomic(p, write_arpa(&model).as_bytes())?;
    }
    let row = |k: &str, v: String| println!("{k:<24} {v:>12}");
    row("sentences", sentences.to_string());
    row("tokens", tokens.to_string());
    row("vocabulary", lm.vocab().len().to_string());
    for (i, o) in model.orders.iter().enumerate() {
        row(&format!("{}-grams", i + 1), o.len().to_string());
    }
    let size = std::fs::metadata(&a.output).map(|m| m.len()).unwrap_or(0);
    row("lm.bin bytes", size.to_string());
    row("seconds", format!("{:.3}", start.elapsed().as_secs_f64()));
    Ok(())
}

pub fn score(a: &LmScoreArgs) -> anyhow::Result<()> {
    set_threads(a.io.threads)?;
    check_percentiles(&a.buckets)?;
    let lm = Arc::new(load_lm(&a.lm)?);
    let given = match &a.cutoffs {
        Some(p) => Some(Cutoffs::load(p)?),
        None => None,
    };
    let inputs = InputSet::discover(&a.io.input)?;
    let in_bytes: u64 = inputs
        .files()
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let stage = LmScoreStage {
        lm,
        field: a.field.clone(),
        cutoffs: given.clone(),
    };
    let out = StageOutput {
        dir: a.io.output.clone(),
        format: a.io.format(),
        compression: a.io.compression(),
        shard_bytes: a.io.shard_mib.max(1) << 20,
    };
    let start = Instant::now();
    let report = run_stage(
        &inputs,
        &a.io.fields(),
        &stage,
        &out,
        &BarProgress::default(),
    )
    .with_context(|| format!("lm-score of {}", a.io.input.display()))?;
    let secs = start.elapsed().as_secs_f64();
    let bucket_out = BucketOutput {
        dir: a.io.output.clone(),
        format: out.format,
        compression: out.compression,
        shard_bytes: out.shard_bytes,
    };
    let cutoffs = match given {
        // Routes were written by the stage; record the cut-offs used and the counts.
        Some(mut c) => {
            c.counts = report.routes.clone();
            hearth_data::write_atomic(
                &a.io.output.join("cutoffs.json"),
                &serde_json::to_vec_pretty(&c)?,
            )?;
            c
        }
        None => write_buckets(
            &InputSet::discover(&a.io.output.join("kept"))?,
            &a.io.fields(),
            &a.field,
            &a.buckets,
            None,
            &bucket_out,
        )?,
    };
    if a.io.json {
        let v = serde_json::json!({"report": report, "cutoffs": cutoffs, "seconds": secs});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let row = |k: &str, v: String| println!("{k:<28} {v:>12}");
    row("documents in", report.docs_in.to_string());
    row("malformed lines", report.malformed.to_string());
    for (p, v) in cutoffs.percentiles.iter().zip(&cutoffs.values) {
        row(&format!("cutoff at p{p}"), format!("{v:.1}"));
    }
    for (k, v) in &cutoffs.counts {
        row(&format!("  bucket {k}"), v.to_string());
    }
    row("scoring seconds", format!("{secs:.3}"));
    row(
        "documents / s",
        format!("{:.0}", report.docs_in as f64 / secs.max(1e-9)),
    );
    row(
        "input MB / s",
        format!("{:.2}", in_bytes as f64 / 1e6 / secs.max(1e-9)),
    );
    for m in &report.malformed_examples {
        eprintln!("malformed: {m}");
    }
    Ok(())
}
