//! `hearth data ...`: build clean training sets (see hearth-data): dedup, quality filter,
//! domain classification, perplexity filter, PII redaction.

mod dedup;
mod lm;
mod run;
mod scorer;
mod stages;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use hearth_data::{Compression, Fields, Format, Progress};
use indicatif::{ProgressBar, ProgressStyle};

/// Flags of `hearth data`.
#[derive(clap::Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

/// The `hearth data` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum DataCommand {
    /// Remove exact and near duplicates (MinHash-LSH, verified by exact Jaccard).
    Dedup(dedup::DedupArgs),
    /// Drop documents failing Gopher/C4-style quality rules (each rule counted).
    Filter(stages::FilterArgs),
    /// Label documents with domains (keyword lists) and route them to per-domain outputs.
    Classify(stages::ClassifyArgs),
    /// Score documents with a language model and keep those under a perplexity threshold.
    Perplexity(stages::PerplexityArgs),
    /// Redact personal data and secrets in the text field (hearth-guard).
    Redact(stages::RedactArgs),
    /// Train a CCNet-style n-gram model (modified Kneser-Ney) on reference text: lm.bin
    /// (and optionally ARPA).
    TrainLm(lm::TrainLmArgs),
    /// Score documents with an n-gram model (lm.bin or ARPA), CCNet-style, and route them
    /// to head / middle / tail by perplexity percentiles.
    LmScore(lm::LmScoreArgs),
    /// Run a pipeline file (whole, one `--shard i/N` worker, or the `--merge` step).
    Run(run::RunArgs),
}

/// Where records come from and which fields they use.
#[derive(clap::Args, Debug, Clone)]
pub struct IoArgs {
    /// A .jsonl / .jsonl.gz / .jsonl.zst / .parquet file, or a directory of them (read in
    /// sorted order; a Parquet row reads as the JSON object of its columns).
    #[arg(long, short = 'i')]
    pub input: PathBuf,
    /// The output directory.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// JSON field holding the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// JSON field holding the document id (records without it get FILE:LINE).
    #[arg(long, default_value = "id")]
    pub id_field: String,
    /// Format of the output shards.
    #[arg(long, value_enum, default_value_t = OutFormat::Jsonl)]
    pub output_format: OutFormat,
    /// Compression of the output shards (for Parquet: the page codec).
    #[arg(long, value_enum, default_value_t = OutCompression::None)]
    pub compression: OutCompression,
    /// Size of an output shard in MiB (of records as JSON, before compression).
    #[arg(long, default_value_t = 256)]
    pub shard_mib: u64,
    /// Worker threads (default: all cores).
    #[arg(long, short = 't')]
    pub threads: Option<usize>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Output format on the command line.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum OutFormat {
    /// JSON lines (.jsonl, .jsonl.gz, .jsonl.zst).
    Jsonl,
    /// Parquet (.parquet): one column per field, schema from the first row group.
    Parquet,
}

/// Output compression on the command line.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum OutCompression {
    /// Plain .jsonl.
    None,
    /// .jsonl.gz.
    Gzip,
    /// .jsonl.zst.
    Zstd,
}

pub fn run(args: &DataArgs) -> anyhow::Result<()> {
    match &args.command {
        DataCommand::Dedup(a) => dedup::run(a),
        DataCommand::Filter(a) => stages::filter(a),
        DataCommand::Classify(a) => stages::classify(a),
        DataCommand::Perplexity(a) => stages::perplexity(a),
        DataCommand::Redact(a) => stages::redact(a),
        DataCommand::TrainLm(a) => lm::train(a),
        DataCommand::LmScore(a) => lm::score(a),
        DataCommand::Run(a) => run::run(a),
    }
}

pub(crate) fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
    if let Some(n) = threads {
        anyhow::ensure!(n > 0, "--threads must be at least 1");
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("setting up the thread pool")?;
    }
    Ok(())
}

impl IoArgs {
    pub(crate) fn fields(&self) -> Fields {
        Fields {
            text: self.text_field.clone(),
            id: self.id_field.clone(),
        }
    }

    pub(crate) fn format(&self) -> Format {
        match self.output_format {
            OutFormat::Jsonl => Format::Jsonl,
            OutFormat::Parquet => Format::Parquet,
        }
    }

    pub(crate) fn compression(&self) -> Compression {
        match self.compression {
            OutCompression::None => Compression::None,
            OutCompression::Gzip => Compression::Gzip,
            OutCompression::Zstd => Compression::Zstd,
        }
    }
}

/// [`Progress`] drawn with indicatif on stderr, one bar per phase.
#[derive(Default)]
pub(crate) struct BarProgress {
    bar: Mutex<Option<ProgressBar>>,
}

impl BarProgress {
    fn with_bar(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        // A poisoned lock only means another thread panicked mid-draw: keep drawing.
        let mut guard = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard);
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Progress for BarProgress {
    fn phase(&self, name: &str, total: Option<u64>) {
        let bar = match total {
            Some(t) => ProgressBar::new(t).with_style(
                style("{msg} [{bar:30}] {human_pos}/{human_len} docs {per_sec} eta {eta}")
                    .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner()
                .with_style(style("{spinner} {msg} {human_pos} docs {per_sec}")),
        };
        bar.set_message(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.with_bar(|slot| {
            if let Some(old) = slot.replace(bar) {
                old.finish_and_clear();
            }
        });
    }

    fn advance(&self, n: u64) {
        self.with_bar(|slot| {
            if let Some(bar) = slot {
                bar.inc(n);
            }
        });
    }

    fn finish_phase(&self) {
        self.with_bar(|slot| {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        });
    }
}
