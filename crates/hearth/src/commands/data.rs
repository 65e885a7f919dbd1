//! `hearth data ...`: build clean training sets (dedup today; see hearth-data).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use hearth_data::{
    Compression, DedupConfig, DedupReport, Fields, InputSet, LshParams, NearDedupConfig, Progress,
    Shingle,
};
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
    Dedup(DedupArgs),
}

/// Where records come from and which fields they use.
#[derive(clap::Args, Debug)]
pub struct IoArgs {
    /// A .jsonl / .jsonl.gz / .jsonl.zst file, or a directory of them (read in sorted order).
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
    /// Compression of the output shards.
    #[arg(long, value_enum, default_value_t = OutCompression::None)]
    pub compression: OutCompression,
    /// Size of an output shard in MiB (of JSONL, before compression).
    #[arg(long, default_value_t = 256)]
    pub shard_mib: u64,
    /// Worker threads (default: all cores).
    #[arg(long, short = 't')]
    pub threads: Option<usize>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
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

/// Flags of `hearth data dedup`.
#[derive(clap::Args, Debug)]
pub struct DedupArgs {
    #[command(flatten)]
    pub io: IoArgs,
    /// Shingle size (words, or characters with --char-shingles).
    #[arg(long, default_value_t = 5)]
    pub ngram: usize,
    /// Shingle on characters instead of words.
    #[arg(long)]
    pub char_shingles: bool,
    /// Number of MinHash permutations.
    #[arg(long, default_value_t = 128)]
    pub num_perm: usize,
    /// Minimum exact Jaccard similarity of near duplicates.
    #[arg(long, default_value_t = 0.8)]
    pub threshold: f64,
    /// LSH bands (with --rows; default: chosen from the threshold, favouring recall).
    #[arg(long, requires = "rows")]
    pub bands: Option<usize>,
    /// LSH rows per band (with --bands).
    #[arg(long, requires = "bands")]
    pub rows: Option<usize>,
    /// Seed of the MinHash functions.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Only exact dedup (normalised text), no MinHash.
    #[arg(long, conflicts_with = "no_exact")]
    pub exact_only: bool,
    /// Skip exact dedup (near dedup still removes exact copies, as Jaccard 1).
    #[arg(long)]
    pub no_exact: bool,
    /// Keep raw input lines in memory between passes up to this many MiB; a larger input
    /// is re-read from disk (0: always re-read).
    #[arg(long, default_value_t = 1024)]
    pub cache_mib: u64,
}

pub fn run(args: &DataArgs) -> anyhow::Result<()> {
    match &args.command {
        DataCommand::Dedup(a) => dedup(a),
    }
}

fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
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
    fn fields(&self) -> Fields {
        Fields {
            text: self.text_field.clone(),
            id: self.id_field.clone(),
        }
    }

    fn compression(&self) -> Compression {
        match self.compression {
            OutCompression::None => Compression::None,
            OutCompression::Gzip => Compression::Gzip,
            OutCompression::Zstd => Compression::Zstd,
        }
    }
}

fn dedup(a: &DedupArgs) -> anyhow::Result<()> {
    set_threads(a.io.threads)?;
    let inputs = InputSet::discover(&a.io.input)?;
    let lsh = match (a.bands, a.rows) {
        (Some(b), Some(r)) => Some(LshParams::new(b, r, a.num_perm)?),
        _ => None,
    };
    let cfg = DedupConfig {
        fields: a.io.fields(),
        exact: !a.no_exact,
        near: (!a.exact_only).then(|| NearDedupConfig {
            shingle: if a.char_shingles {
                Shingle::Chars(a.ngram)
            } else {
                Shingle::Words(a.ngram)
            },
            num_perm: a.num_perm,
            threshold: a.threshold,
            lsh,
            seed: a.seed,
        }),
        compression: a.io.compression(),
        shard_bytes: a.io.shard_mib.max(1) << 20,
        cache_bytes: a.cache_mib << 20,
    };
    let start = Instant::now();
    let report = hearth_data::dedup(&inputs, &a.io.output, &cfg, &BarProgress::default())
        .with_context(|| format!("dedup of {}", a.io.input.display()))?;
    let secs = start.elapsed().as_secs_f64();
    if a.io.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_dedup_table(&report, secs);
    }
    Ok(())
}

fn print_dedup_table(r: &DedupReport, secs: f64) {
    let row = |k: &str, v: String| println!("{k:<24} {v:>12}");
    row("documents in", r.docs_in.to_string());
    row("kept", r.kept.to_string());
    row("removed (exact)", r.removed_exact.to_string());
    row("removed (near)", r.removed_near.to_string());
    row("malformed lines", r.malformed.to_string());
    row("clusters (size >= 2)", r.clusters.to_string());
    if let Some(l) = r.lsh {
        row("lsh bands x rows", format!("{} x {}", l.bands, l.rows));
        row("candidate pairs", r.candidate_pairs.to_string());
        row("verified pairs", r.verified_pairs.to_string());
    }
    row("seconds", format!("{secs:.3}"));
    row("documents / s", format!("{:.0}", r.docs_in as f64 / secs.max(1e-9)));
    for m in &r.malformed_examples {
        eprintln!("malformed: {m}");
    }
}

/// [`Progress`] drawn with indicatif on stderr, one bar per phase.
#[derive(Default)]
struct BarProgress {
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
