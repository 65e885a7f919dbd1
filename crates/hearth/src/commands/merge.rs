//! `hearth merge`: a LoRA adapter folded into the base model's weights.

use std::path::PathBuf;

use hearth_convert::{merge, MergeOptions};

/// Flags of `hearth merge`.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The base model: a .gguf file or a short name.
    #[arg(long, short = 'm', default_value = super::DEFAULT_MODEL)]
    pub model: String,
    /// The adapter: a PEFT directory or a GGUF LoRA file.
    #[arg(long)]
    pub lora: PathBuf,
    /// The GGUF file to write.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Output type (F32, F16, Q8_0, Q4_K_M, ...); by default every tensor keeps its
    /// type and the changed ones are quantized again to it.
    #[arg(long = "type", short = 'q')]
    pub scheme: Option<String>,
}

pub fn run(args: &MergeArgs) -> anyhow::Result<()> {
    let base = hearth_hub::resolve(&args.model, &super::pull::progress_bar())?;
    let opts = MergeOptions {
        scheme: args.scheme.as_deref().map(str::parse).transpose()?,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let bar = indicatif::ProgressBar::new(0);
    let summary = merge(
        &base,
        &args.lora,
        &args.output,
        &opts,
        &mut |_, _, done, total, _| {
            bar.set_length(total);
            bar.set_position(done);
        },
    )?;
    bar.finish_and_clear();
    let types: Vec<String> = summary
        .types
        .iter()
        .map(|(t, n)| format!("{n} {t}"))
        .collect();
    println!(
        "wrote {} ({} tensors: {}; {:.1} MB)",
        args.output.display(),
        summary.tensors,
        types.join(", "),
        summary.output_bytes as f64 / 1e6
    );
    Ok(())
}
