//! One module per subcommand, plus the flags and loading they share.

pub mod bench;
pub mod bench_context;
pub mod bench_serve;
pub mod chat;
pub mod compare;
pub mod compress;
pub mod convert;
pub mod data;
pub mod distill;
pub mod eval;
pub mod finetune;
pub mod generate;
pub mod guard;
pub mod guard_eval;
pub mod guard_judge;
pub mod guard_probe;
pub mod inspect;
pub mod keys;
pub mod merge;
pub mod perplexity;
pub mod pull;
pub mod quantize;
pub mod redteam;
pub mod serve;
pub mod tokenize;

use std::sync::Arc;

use anyhow::Context;
use hearth_gguf::GgufFile;
use hearth_model::Transformer;
use hearth_tokenizer::Tokenizer;

/// The model most commands use when none is named: small, instruction-tuned, Apache-2.0.
pub const DEFAULT_MODEL: &str = "smollm2-135m";

/// `--model` and `--threads`, shared by every compute command.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// A short name (gemma3-270m, smollm2-135m), a local .gguf path, or a Hugging Face repo id.
    #[arg(long, short = 'm', default_value = DEFAULT_MODEL, env = "HEARTH_MODEL")]
    pub model: String,
    /// Worker threads (default: all cores).
    #[arg(long, short = 't')]
    pub threads: Option<usize>,
    /// Quantize an F32/F16/BF16 model (or directory) while loading: Q8_0, Q4_K_M, ...
    #[arg(long)]
    pub quantize: Option<String>,
}

/// A model and its tokenizer, loaded from one file.
pub struct Loaded {
    pub model: Transformer,
    pub tokenizer: Tokenizer,
}

impl Loaded {
    /// Reads a LoRA adapter (PEFT directory or GGUF LoRA file) for this model.
    pub fn lora(
        &self,
        path: Option<&std::path::Path>,
    ) -> anyhow::Result<Option<Arc<hearth_model::ModelLora>>> {
        let Some(path) = path else { return Ok(None) };
        let adapter = hearth_model::LoraAdapter::open(path, self.model.config())?;
        let name = path
            .file_stem()
            .map_or_else(|| "lora".into(), |s| s.to_string_lossy().into_owned());
        Ok(Some(Arc::new(self.model.bind_lora(name, &adapter)?)))
    }
}

impl ModelArgs {
    /// Sets the thread pool, resolves the model (fetching it if needed) and loads it.
    pub fn load(&self) -> anyhow::Result<Loaded> {
        set_threads(self.threads)?;
        let (path, file) = self.open_file()?;
        let tokenizer = Tokenizer::from_gguf(&file)
            .with_context(|| format!("{}: reading the tokenizer", path.display()))?;
        let model = Transformer::from_gguf(file)?;
        Ok(Loaded { model, tokenizer })
    }

    /// Resolves the model (fetching it if needed) and opens its file, quantized
    /// while loading if `--quantize` asks; returns the resolved path too.
    pub fn open_file(&self) -> anyhow::Result<(std::path::PathBuf, Arc<GgufFile>)> {
        let path = hearth_hub::resolve(&self.model, &pull::progress_bar())?;
        let file = Arc::new(match &self.quantize {
            None => GgufFile::open(&path)?,
            Some(t) => {
                let src = quantize::open_source(&path)?;
                let bar = indicatif::ProgressBar::new(0);
                let file = hearth_convert::quantize_for_loading(
                    src.as_ref(),
                    t.parse()?,
                    &mut |_, _, done, total, _| {
                        bar.set_length(total);
                        bar.set_position(done);
                    },
                )
                .with_context(|| format!("quantizing {} to {t} while loading", path.display()))?;
                bar.finish_and_clear();
                file
            }
        });
        Ok((path, file))
    }

    /// Resolves and opens only the tokenizer (no weights touched).
    pub fn load_tokenizer(&self) -> anyhow::Result<Tokenizer> {
        let path = hearth_hub::resolve(&self.model, &pull::progress_bar())?;
        let file = GgufFile::open(&path)?;
        Tokenizer::from_gguf(&file)
            .with_context(|| format!("{}: reading the tokenizer", path.display()))
    }
}

fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
    let n = match threads {
        Some(0) => anyhow::bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .context("setting up the thread pool")
}
