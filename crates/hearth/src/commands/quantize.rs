//! `hearth quantize`: F32/F16/BF16 weights to a quantized GGUF, tensor by tensor.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hearth_convert::{quantize, QuantizeOptions, Scheme, TensorSource};
use indicatif::{ProgressBar, ProgressStyle};

/// Flags of `hearth quantize`.
#[derive(clap::Args, Debug)]
pub struct QuantizeArgs {
    /// The model to quantize: a .gguf file, a Hugging Face style directory, or a short name.
    pub input: String,
    /// The GGUF file to write.
    pub output: PathBuf,
    /// Target type: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K,
    /// Q6_K, or a mixture: Q4_K_M, Q5_K_M.
    #[arg(long = "type", short = 'q')]
    pub scheme: String,
    /// Quantize tensors that are already quantized (loses precision twice).
    #[arg(long)]
    pub allow_requantize: bool,
    /// Afterwards, compare the result with the input on this text (size, perplexity,
    /// top-1 agreement).
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub compare: super::compare::CompareOptions,
}

pub fn run(args: &QuantizeArgs) -> anyhow::Result<()> {
    let scheme: Scheme = args.scheme.parse()?;
    let input = hearth_hub::resolve(&args.input, &super::pull::progress_bar())?;
    let src = open_source(&input)?;
    let opts = QuantizeOptions {
        scheme,
        allow_requantize: args.allow_requantize,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        operation: "quantize".into(),
    };
    let summary = write_with_bar(src.as_ref(), &args.output, &opts)?;
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
    if let Some(text) = &args.report {
        super::compare::report(&input, &args.output, text, &args.compare)?;
    }
    Ok(())
}

/// Opens a GGUF file or a Hugging Face style directory as a tensor source.
pub fn open_source(path: &Path) -> anyhow::Result<Box<dyn TensorSource>> {
    Ok(if path.is_dir() {
        Box::new(
            hearth_convert::hf_import::HfSource::open(path)
                .with_context(|| format!("opening {}", path.display()))?,
        )
    } else {
        Box::new(hearth_convert::GgufSource::open(path)?)
    })
}

/// Runs [`quantize`] with a progress bar on stderr.
pub fn write_with_bar(
    src: &dyn TensorSource,
    out: &Path,
    opts: &QuantizeOptions,
) -> anyhow::Result<hearth_convert::WriteSummary> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let summary = quantize(src, out, opts, &mut |_, _, done, total, name| {
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message(name.to_string());
    })
    .with_context(|| format!("writing {}", out.display()))?;
    bar.finish_and_clear();
    Ok(summary)
}
