//! `hearth data dedup`.

use std::time::Instant;

use anyhow::Context;
use hearth_data::{DedupConfig, DedupReport, InputSet, LshParams, NearDedupConfig, Shingle};

use super::{set_threads, BarProgress, IoArgs};

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

pub fn run(a: &DedupArgs) -> anyhow::Result<()> {
    set_threads(a.io.threads)?;
    let inputs = InputSet::discover(&a.io.input)?;
    let lsh = match (a.bands, a.rows) {
        (Some(b), Some(r)) => Some(LshParams::new(b, r, a.num_perm)?),
        _ => None,
    };
    let cfg = DedupConfig {
        fields: a.io.fields(),
        exact: !a.no_exact,
        near: (!a.exact_only).then_some(NearDedupConfig {
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
        format: a.io.format(),
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
    row(
        "documents / s",
        format!("{:.0}", r.docs_in as f64 / secs.max(1e-9)),
    );
    for m in &r.malformed_examples {
        eprintln!("malformed: {m}");
    }
}
