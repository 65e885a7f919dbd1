//! `hearth data filter|classify|perplexity|redact`: one record stage over the input.

use std::path::PathBuf;

use anyhow::Context;
use hearth_data::{
    run_stage, DomainClassifier, DomainConfig, DomainStage, FieldThreshold, InputSet,
    PerplexityFilter, PiiRedactor, QualityConfig, QualityFilter, Stage, StageOutput, StageReport,
};
use hearth_guard::Operator;

use super::scorer::EngineScorer;
use super::{set_threads, BarProgress, IoArgs};
use crate::commands::ModelArgs;

/// Flags of `hearth data filter`.
#[derive(clap::Args, Debug)]
pub struct FilterArgs {
    #[command(flatten)]
    pub io: IoArgs,
    /// A TOML file of quality bounds (fields of hearth_data::QualityConfig; a missing
    /// field keeps Gopher's default, `false`/absent rules stay as documented).
    #[arg(long)]
    pub rules: Option<PathBuf>,
}

/// Flags of `hearth data classify`.
#[derive(clap::Args, Debug)]
pub struct ClassifyArgs {
    #[command(flatten)]
    pub io: IoArgs,
    /// A TOML file of domain keyword lists (default: the built-in English and Chinese
    /// lists for medical, legal, finance, code and education).
    #[arg(long)]
    pub domains: Option<PathBuf>,
}

/// Flags of `hearth data perplexity`.
#[derive(clap::Args, Debug)]
pub struct PerplexityArgs {
    #[command(flatten)]
    pub io: IoArgs,
    /// A short name (smollm2-135m, gemma3-270m), a local .gguf path, or a repo id.
    #[arg(long, short = 'm', default_value = crate::commands::DEFAULT_MODEL)]
    pub model: String,
    /// Keep documents whose perplexity is at most this (default: keep every scored one).
    #[arg(long, conflicts_with = "keep_percentile")]
    pub max_ppl: Option<f32>,
    /// Keep the P% of scored documents with the lowest perplexity: scores go to
    /// DIR/scored first, then DIR/kept and DIR/dropped split them at the cutoff.
    #[arg(long, value_name = "P")]
    pub keep_percentile: Option<f64>,
    /// Tokens per chunk (as `hearth perplexity --ctx`); shorter documents are one chunk.
    #[arg(long, default_value_t = 512)]
    pub ctx: usize,
    /// The field the score is written to.
    #[arg(long, default_value = "ppl")]
    pub field: String,
}

/// Flags of `hearth data redact`.
#[derive(clap::Args, Debug)]
pub struct RedactArgs {
    #[command(flatten)]
    pub io: IoArgs,
    /// How findings are replaced.
    #[arg(long, value_enum, default_value_t = RedactOperator::Placeholder)]
    pub operator: RedactOperator,
    /// The HMAC key for `--operator hash`.
    #[arg(long, env = "HEARTH_GUARD_KEY")]
    pub key: Option<String>,
    /// The PII kinds to redact: labels (`EMAIL,PERSON,ADDRESS`), `default` (every kind
    /// but names and addresses) or `all`, comma-separated.
    #[arg(long, default_value = "default", value_parser = crate::commands::guard::parse_kinds)]
    pub kinds: crate::commands::guard::KindList,
}

/// Redaction operators usable in data runs.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum RedactOperator {
    /// `*` for every character.
    Mask,
    /// `<EMAIL_1>`, numbered per distinct value within the document.
    Placeholder,
    /// `<EMAIL:hex>`, a keyed HMAC-SHA256 (needs --key).
    Hash,
}

pub fn filter(a: &FilterArgs) -> anyhow::Result<()> {
    let config = match &a.rules {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read the rules", p.display()))?;
            toml::from_str::<QualityConfig>(&text)
                .with_context(|| format!("{}: bad quality rules", p.display()))?
        }
        None => QualityConfig::default(),
    };
    run(&a.io, &QualityFilter { config })
}

pub fn classify(a: &ClassifyArgs) -> anyhow::Result<()> {
    let cfg = match &a.domains {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read the domain lists", p.display()))?;
            DomainConfig::from_toml(&text, p)?
        }
        None => DomainConfig::builtin(),
    };
    let classifier = DomainClassifier::new(&cfg)?;
    run(&a.io, &DomainStage { classifier })
}

pub fn perplexity(a: &PerplexityArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.ctx >= 16, "--ctx must be at least 16");
    let model = ModelArgs {
        model: a.model.clone(),
        threads: a.io.threads,
        quantize: None,
    };
    let scorer = EngineScorer::new(model.load()?, a.ctx);
    let stage = PerplexityFilter {
        scorer: &scorer,
        max_ppl: a.max_ppl.unwrap_or(f32::INFINITY),
        field: a.field.clone(),
    };
    // The model load set up the thread pool already.
    let Some(p) = a.keep_percentile else {
        return run_stage_and_print(&a.io, &stage);
    };
    anyhow::ensure!(
        (0.0..=100.0).contains(&p),
        "--keep-percentile must be in 0..=100"
    );
    let scored = a.io.output.join("scored");
    let first = IoArgs {
        output: scored.clone(),
        json: false,
        ..a.io.clone()
    };
    let inputs = InputSet::discover(&first.input)?;
    let out = stage_output(&first);
    run_stage(
        &inputs,
        &first.fields(),
        &stage,
        &out,
        &BarProgress::default(),
    )?;
    let kept = InputSet::discover(&scored.join("kept"))?;
    let mut values = Vec::new();
    hearth_data::scan(&kept, &a.io.fields(), |_, batch| {
        for (r, _) in batch {
            let v: serde_json::Value = serde_json::from_slice(&r.raw)?;
            values.extend(v.get(&a.field).and_then(serde_json::Value::as_f64));
        }
        Ok(())
    })?;
    let cutoff = hearth_data::percentile(&values, p).context("no document could be scored")?;
    eprintln!("perplexity cutoff at the {p}th percentile: {cutoff:.4}");
    let second = IoArgs {
        input: scored.join("kept"),
        ..a.io.clone()
    };
    let threshold = FieldThreshold {
        field: a.field.clone(),
        max: cutoff,
    };
    run_stage_and_print(&second, &threshold)
}

fn stage_output(io: &IoArgs) -> StageOutput {
    StageOutput {
        dir: io.output.clone(),
        format: io.format(),
        compression: io.compression(),
        shard_bytes: io.shard_mib.max(1) << 20,
    }
}

pub fn redact(a: &RedactArgs) -> anyhow::Result<()> {
    let operator = match a.operator {
        RedactOperator::Mask => Operator::Mask {
            ch: '*',
            keep_length: true,
        },
        RedactOperator::Placeholder => Operator::Placeholder,
        RedactOperator::Hash => {
            let key = a
                .key
                .as_ref()
                .context("--operator hash needs --key (or HEARTH_GUARD_KEY)")?;
            Operator::Hash {
                key: key.as_bytes().to_vec(),
                hex_len: 12,
            }
        }
    };
    run(&a.io, &PiiRedactor::new(operator)?.with_kinds(&a.kinds.0))
}

fn run(io: &IoArgs, stage: &dyn Stage) -> anyhow::Result<()> {
    set_threads(io.threads)?;
    run_stage_and_print(io, stage)
}

fn run_stage_and_print(io: &IoArgs, stage: &dyn Stage) -> anyhow::Result<()> {
    let inputs = InputSet::discover(&io.input)?;
    let out = stage_output(io);
    let report = run_stage(&inputs, &io.fields(), stage, &out, &BarProgress::default())
        .with_context(|| format!("{} of {}", stage.name(), io.input.display()))?;
    if io.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(r: &StageReport) {
    let row = |k: &str, v: String| println!("{k:<28} {v:>10}");
    row("stage", r.stage.clone());
    row("documents in", r.docs_in.to_string());
    row("kept", r.kept.to_string());
    row("dropped", r.dropped.to_string());
    row("malformed lines", r.malformed.to_string());
    for (k, v) in &r.reasons {
        row(&format!("  reason {k}"), v.to_string());
    }
    for (k, v) in &r.routes {
        row(&format!("  route {k}"), v.to_string());
    }
    for (edge, n) in &r.histogram {
        row(&format!("  value <= {edge}"), n.to_string());
    }
    for m in &r.malformed_examples {
        eprintln!("malformed: {m}");
    }
}
