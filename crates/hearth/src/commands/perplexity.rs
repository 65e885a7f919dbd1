//! `hearth perplexity`: llama-perplexity's protocol on a text file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use hearth_engine::{perplexity, PerplexityConfig};

use super::ModelArgs;

/// Flags of `hearth perplexity`.
#[derive(clap::Args, Debug)]
pub struct PerplexityArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The text file to score.
    #[arg(long, short = 'f')]
    pub file: PathBuf,
    /// Tokens per chunk.
    #[arg(long, default_value_t = 512)]
    pub ctx: usize,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &PerplexityArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("{}: cannot read the text", args.file.display()))?;
    let m = args.model.load()?;
    let tokens = m.tokenizer.encode(&text, true, false)?;
    let cfg = PerplexityConfig {
        ctx: args.ctx,
        bos: if m.tokenizer.add_bos() {
            m.tokenizer.bos()
        } else {
            None
        },
    };
    let mut err = std::io::stderr();
    let report = perplexity(&m.model, &tokens, &cfg, |done, total, ppl| {
        let _ = write!(err, "[{done}/{total}] {ppl:.4} ");
        let _ = err.flush();
    })?;
    eprintln!();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "file": args.file, "n_ctx": args.ctx, "n_tokens": report.n_tokens,
                "n_chunks": report.n_chunks, "scored_tokens": report.scored_tokens,
                "mean_nll": report.mean_nll, "ppl": report.ppl,
            })
        );
    } else {
        println!(
            "Final estimate: PPL = {:.4} ({} chunks of {}, {} tokens scored)",
            report.ppl, report.n_chunks, args.ctx, report.scored_tokens
        );
    }
    Ok(())
}
