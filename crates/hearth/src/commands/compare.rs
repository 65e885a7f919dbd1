//! `hearth compare`: a converted model against its source on a text.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hearth_convert::{compare, CompareConfig};

/// Scoring flags shared by `compare` and `quantize --report`.
#[derive(clap::Args, Debug, Clone)]
pub struct CompareOptions {
    /// Tokens per perplexity chunk.
    #[arg(long, default_value_t = 512)]
    pub ctx: usize,
    /// Score only the first this many tokens of the text (whole chunks).
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Print the comparison as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `hearth compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// The reference model (the source).
    pub reference: String,
    /// The model to judge against it.
    pub candidate: String,
    /// The text to score.
    #[arg(long = "text", short = 'f')]
    pub text: PathBuf,
    #[command(flatten)]
    pub options: CompareOptions,
}

pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    let bar = super::pull::progress_bar();
    let a = hearth_hub::resolve(&args.reference, &bar)?;
    let b = hearth_hub::resolve(&args.candidate, &bar)?;
    report(&a, &b, &args.text, &args.options)
}

/// Compares two GGUF files on a text file and prints the table (or JSON).
pub fn report(a: &Path, b: &Path, text: &Path, opts: &CompareOptions) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(text)
        .with_context(|| format!("{}: cannot read the text", text.display()))?;
    let cfg = CompareConfig {
        ctx: opts.ctx,
        max_tokens: opts.max_tokens,
    };
    let mut err = std::io::stderr();
    let r = compare(a, b, &text, &cfg, |done, total| {
        let _ = write!(err, "\r[chunk {done}/{total}]");
        let _ = err.flush();
    })?;
    eprintln!();
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("| model | size (MB) | perplexity |");
    println!("|---|---:|---:|");
    for s in [&r.reference, &r.candidate] {
        println!(
            "| {} | {:.1} | {:.4} |",
            s.path,
            s.bytes as f64 / 1e6,
            s.ppl
        );
    }
    println!();
    println!("compression ratio  {:.2}x", r.compression_ratio);
    println!(
        "perplexity delta   {:+.4} ({:+.2}%)",
        r.ppl_delta, r.ppl_delta_pct
    );
    println!("top-1 agreement    {:.2}%", r.top1_agreement * 100.0);
    println!(
        "scored             {} tokens in {} chunks of {}",
        r.scored_tokens, r.chunks, r.ctx
    );
    Ok(())
}
