//! `hearth convert`: GGUF to a Hugging Face style directory and back.

use std::path::PathBuf;

use anyhow::Context;
use hearth_convert::{QuantizeOptions, Scheme};
use hearth_gguf::GgmlType;
use indicatif::{ProgressBar, ProgressStyle};

/// Flags of `hearth convert`.
#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// A .gguf file (or short name) to write as a directory, or a directory
    /// (config.json + *.safetensors + tokenizer.json) to write as a .gguf file.
    pub input: String,
    /// The directory or .gguf file to create.
    pub output: PathBuf,
    /// Element type of the weights written: F32, F16 or BF16.
    #[arg(long, default_value = "F32")]
    pub dtype: String,
}

pub fn run(args: &ConvertArgs) -> anyhow::Result<()> {
    let dtype = match args.dtype.to_ascii_uppercase().as_str() {
        "F32" => GgmlType::F32,
        "F16" => GgmlType::F16,
        "BF16" => GgmlType::BF16,
        other => anyhow::bail!("--dtype {other}: choose F32, F16 or BF16"),
    };
    let input = hearth_hub::resolve(&args.input, &super::pull::progress_bar())?;
    if input.is_dir() {
        let src = super::quantize::open_source(&input)?;
        let opts = QuantizeOptions {
            scheme: Scheme::Uniform(dtype),
            allow_requantize: false,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            operation: "convert".into(),
        };
        let s = super::quantize::write_with_bar(src.as_ref(), &args.output, &opts)?;
        println!(
            "wrote {} ({} tensors, {:.1} MB)",
            args.output.display(),
            s.tensors,
            s.output_bytes as f64 / 1e6
        );
    } else {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let s = hearth_convert::hf_export::export(
            &input,
            &args.output,
            dtype,
            env!("CARGO_PKG_VERSION"),
            &mut |_, _, done, total, name| {
                bar.set_length(total);
                bar.set_position(done);
                bar.set_message(name.to_string());
            },
        )
        .with_context(|| format!("converting {}", input.display()))?;
        bar.finish_and_clear();
        println!(
            "wrote {}/ ({} tensors, {:.1} MB of weights)",
            args.output.display(),
            s.tensors,
            s.weight_bytes as f64 / 1e6
        );
    }
    Ok(())
}
