//! `hearth finetune`: LoRA supervised fine-tuning on a JSONL/JSON data set, writing a
//! PEFT adapter and a GGUF LoRA adapter, with checkpoints to resume from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use candle_core::DType;
use hearth_tokenizer::chat::ChatTemplate;
use hearth_tokenizer::Tokenizer;
use hearth_train::checkpoint::{latest_checkpoint, resume};
use hearth_train::encode::{encode, Encoded};
use hearth_train::export::{self, Origin};
use hearth_train::optim::AdamWConfig;
use hearth_train::{eval_loss, lora, LoraConfig, TrainConfig, TrainModel, Trainer};
use indicatif::{ProgressBar, ProgressStyle};

use super::ModelArgs;

/// Flags of `hearth finetune`.
#[derive(clap::Args, Debug)]
pub struct FinetuneArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Training data: JSONL or a JSON array; chat `messages`, ShareGPT
    /// `conversations`, `prompt`/`response`, `prompt`/`completion` or Alpaca
    /// `instruction`/`input`/`output` records.
    #[arg(long)]
    pub data: PathBuf,
    /// Validation data in the same layouts: loss before, during and after training.
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Output directory: adapter_config.json, adapter_model.safetensors (PEFT),
    /// adapter.gguf (GGUF LoRA) and checkpoint-N/ directories.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Optimizer steps (default: three epochs, as TRL).
    #[arg(long)]
    pub steps: Option<usize>,
    /// LoRA rank r.
    #[arg(long, default_value_t = 16)]
    pub rank: usize,
    /// LoRA alpha (the update is scaled by alpha / r).
    #[arg(long, default_value_t = 32.0)]
    pub alpha: f32,
    /// Dropout on the adapters' inputs.
    #[arg(long, default_value_t = 0.1)]
    pub dropout: f32,
    /// Adapted layers: comma-separated (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj) or `all`.
    #[arg(long, default_value = "q_proj,v_proj")]
    pub targets: String,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// Sequences per micro-batch.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    /// Linear warm-up steps (default: 3% of the steps).
    #[arg(long)]
    pub warmup: Option<usize>,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Clip gradients to this global norm (0: no clipping).
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// Longest sequence in tokens; longer conversations are cut.
    #[arg(long, default_value_t = 1024)]
    pub max_len: usize,
    /// Seed of initialisation, shuffling and dropout.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Validation loss every N steps (0: only before and after).
    #[arg(long, default_value_t = 0)]
    pub eval_every: usize,
    /// A checkpoint every N steps (0: only at the end).
    #[arg(long, default_value_t = 0)]
    pub save_every: usize,
    /// Continue from a checkpoint directory, or without a value from the latest
    /// checkpoint under --output (same settings; --steps may grow).
    #[arg(long, num_args = 0..=1)]
    pub resume: Option<Option<PathBuf>>,
    /// Print the result as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

/// Reads and encodes an SFT data set (shared with `hearth distill`).
pub(crate) fn load_set(
    path: &Path,
    tok: &Tokenizer,
    tpl: &ChatTemplate,
    max_len: usize,
) -> anyhow::Result<Vec<Encoded>> {
    let examples = hearth_train::data::load_examples(path)?;
    let mut out = Vec::with_capacity(examples.len());
    for (i, e) in examples.iter().enumerate() {
        let enc = encode(tok, tpl, e, max_len)
            .with_context(|| format!("{}: record {}", path.display(), i + 1))?;
        out.push(enc);
    }
    let empty = out.iter().filter(|e| e.n_targets() == 0).count();
    if empty > 0 {
        eprintln!(
            "{}: {empty} of {} records keep no assistant token within {max_len} tokens and are skipped",
            path.display(),
            out.len()
        );
    }
    out.retain(|e| e.n_targets() > 0);
    anyhow::ensure!(!out.is_empty(), "{}: nothing to learn from", path.display());
    Ok(out)
}

/// A progress bar over optimizer steps (shared with `hearth distill`).
pub(crate) fn bar(steps: usize, at: usize) -> ProgressBar {
    let bar = ProgressBar::new(steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  {elapsed} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(at as u64);
    bar
}

pub fn run(args: &FinetuneArgs) -> anyhow::Result<()> {
    // candle runs element-wise ops on its own pool of spinning workers, beside the
    // rayon threads of its matrix products; on 2 shared cores the spinning cost more
    // than it saved (3 SmolLM2 steps: 30 s with it, 19-20 s without). The products,
    // the bulk of the work, still use every thread. Set CANDLE_NUM_THREADS to override.
    // Set before any other thread could read the environment.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    super::set_threads(args.model.threads)?;
    let (path, file) = args.model.open_file()?;
    let tok = Tokenizer::from_gguf(&file)
        .with_context(|| format!("{}: reading the tokenizer", path.display()))?;
    let arch = hearth_model::config_from_gguf(&file)?.architecture;
    let tpl = super::chat::template_from(&tok, &arch)?;
    let train = load_set(&args.data, &tok, &tpl, args.max_len)?;
    let val = match &args.val {
        Some(p) => Some(load_set(p, &tok, &tpl, args.max_len)?),
        None => None,
    };
    let per_step = args.batch_size.max(1) * args.grad_accum.max(1);
    let steps = args
        .steps
        .unwrap_or_else(|| (3 * train.len()).div_ceil(per_step).max(1));
    let lora_cfg = LoraConfig {
        rank: args.rank,
        alpha: args.alpha,
        dropout: args.dropout,
        targets: lora::parse_targets(&args.targets)?,
    };
    let cfg = TrainConfig {
        steps,
        batch_size: args.batch_size,
        grad_accum: args.grad_accum,
        warmup: args.warmup.unwrap_or((steps * 3).div_ceil(100)),
        seed: args.seed,
        optim: AdamWConfig {
            lr: args.lr,
            weight_decay: args.weight_decay,
            max_grad_norm: args.max_grad_norm,
            ..AdamWConfig::default()
        },
    };
    if args.output.join(export::PEFT_WEIGHTS).exists() && args.resume.is_none() {
        anyhow::bail!(
            "{} holds an adapter already: choose a new directory, or --resume",
            args.output.display()
        );
    }
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(format!("dequantizing {} for training", path.display()));
    let model = TrainModel::from_gguf(file.clone(), DType::F32)?;
    spinner.finish_and_clear();
    let mut trainer = match &args.resume {
        None => Trainer::new(&model, lora_cfg.clone(), cfg.clone(), train.clone())?,
        Some(dir) => {
            let dir = match dir {
                Some(d) => d.clone(),
                None => latest_checkpoint(&args.output)?.with_context(|| {
                    format!("no checkpoint under {} to resume", args.output.display())
                })?,
            };
            eprintln!("resuming from {}", dir.display());
            resume(&model, &dir, lora_cfg.clone(), cfg.clone(), train.clone())?
        }
    };
    eprintln!(
        "{} training / {} validation conversations, {} trainable parameters ({}), {steps} steps of {per_step} sequences",
        train.len(),
        val.as_ref().map_or(0, Vec::len),
        trainer.lora().n_params(),
        args.targets,
    );
    let val_loss = |lora: Option<&hearth_train::LoraParams>| -> anyhow::Result<Option<f32>> {
        val.as_ref()
            .map(|v| eval_loss(&model, lora, v, args.batch_size))
            .transpose()
            .map_err(Into::into)
    };
    let val_before = val_loss(None)?;
    if let Some(l) = val_before {
        eprintln!("validation loss before: {l:.4}");
    }
    let pb = bar(steps, trainer.progress().step);
    let (start, mut tokens) = (Instant::now(), 0usize);
    let (mut first, mut last) = (None, None);
    while !trainer.done() {
        let r = trainer.step()?;
        tokens += r.tokens;
        first.get_or_insert(r.loss);
        last = Some(r.loss);
        pb.set_message(format!(
            "loss {:.4}  lr {:.2e}  {:.0} tok/s",
            r.loss,
            r.lr,
            tokens as f64 / start.elapsed().as_secs_f64()
        ));
        pb.inc(1);
        if args.eval_every > 0 && r.step.is_multiple_of(args.eval_every) && !trainer.done() {
            if let Some(l) = val_loss(Some(trainer.lora()))? {
                pb.println(format!("step {}: validation loss {l:.4}", r.step));
            }
        }
        if args.save_every > 0 && r.step.is_multiple_of(args.save_every) && !trainer.done() {
            trainer.save_checkpoint(&args.output)?;
        }
    }
    pb.finish();
    let seconds = start.elapsed().as_secs_f64();
    let checkpoint = trainer.save_checkpoint(&args.output)?;
    let val_after = val_loss(Some(trainer.lora()))?;
    let mut data_files = vec![args.data.clone()];
    data_files.extend(args.val.clone());
    let origin = Origin {
        base: &path,
        data: &data_files,
        tool_version: env!("CARGO_PKG_VERSION"),
    };
    let record = export::provenance(&file, &origin, parameters(args, &cfg))?;
    let base_name = file
        .str_opt("general.name")?
        .map(str::to_string)
        .unwrap_or_else(|| args.model.model.clone());
    let adapter = export::to_adapter(
        trainer.lora(),
        model.config(),
        Some(base_name),
        Some(record),
    )?;
    let (peft, gguf) = export::write_adapters(&args.output, &adapter, model.config())?;
    let tps = if seconds > 0.0 {
        tokens as f64 / seconds
    } else {
        0.0
    };
    if let (Some(b), Some(a)) = (val_before, val_after) {
        eprintln!("validation loss: {b:.4} -> {a:.4}");
    }
    eprintln!(
        "{} steps in {seconds:.1}s ({tps:.0} tokens/s); adapter in {} (PEFT) and {} (GGUF)",
        trainer.progress().step,
        args.output.display(),
        gguf.display()
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "val_loss_before": val_before,
                "val_loss_after": val_after,
                "train_loss_first": first,
                "train_loss_last": last,
                "steps": trainer.progress().step,
                "adapter_path": args.output,
                "peft_weights": peft,
                "gguf_adapter": gguf,
                "checkpoint": checkpoint,
                "trainable_params": trainer.lora().n_params(),
                "train_examples": train.len(),
                "val_examples": val.as_ref().map(Vec::len),
                "tokens": tokens,
                "seconds": seconds,
                "tokens_per_s": tps,
            })
        );
    }
    Ok(())
}

/// The hyper-parameters the provenance record lists.
fn parameters(args: &FinetuneArgs, cfg: &TrainConfig) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        p.insert(k.to_string(), v);
    };
    put("method", "lora-sft".into());
    put("rank", args.rank.to_string());
    put("alpha", args.alpha.to_string());
    put("dropout", args.dropout.to_string());
    put("targets", args.targets.clone());
    put("lr", args.lr.to_string());
    put("steps", cfg.steps.to_string());
    put("batch_size", cfg.batch_size.to_string());
    put("grad_accum", cfg.grad_accum.to_string());
    put("warmup", cfg.warmup.to_string());
    put("weight_decay", args.weight_decay.to_string());
    put("max_grad_norm", args.max_grad_norm.to_string());
    put("max_len", args.max_len.to_string());
    put("seed", cfg.seed.to_string());
    put("schedule", "cosine".into());
    put("optimizer", "adamw".into());
    if let Some(q) = &args.model.quantize {
        put("base_quantized_to", q.clone());
    }
    p
}
