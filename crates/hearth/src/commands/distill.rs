//! `hearth distill`: knowledge distillation of a smaller student from a teacher with
//! the same tokenizer, on plain text and/or SFT data, with the teacher's top-k logits
//! cached on disk, and an optional baseline trained on hard labels only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use candle_core::DType;
use hearth_convert::source::sha256_files;
use hearth_convert::Scheme;
use hearth_engine::{perplexity, PerplexityConfig};
use hearth_gguf::GgufFile;
use hearth_model::Transformer;
use hearth_tokenizer::Tokenizer;
use hearth_train::distill::{
    self, load_or_build, CacheHeader, CacheOrigin, Distiller, KdLoss, Student, StudentShape,
    TopKCache,
};
use hearth_train::encode::{text_windows, Encoded};
use hearth_train::export::{self, Origin};
use hearth_train::optim::AdamWConfig;
use hearth_train::{TrainConfig, TrainModel};
use indicatif::ProgressBar;

use super::ModelArgs;

/// Flags of `hearth distill`.
#[derive(clap::Args, Debug)]
pub struct DistillArgs {
    /// The teacher (`--model`): a short name, a .gguf path or a repo id.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Training data (repeatable): plain text files, cut into --seq-len windows, or
    /// SFT data (.jsonl/.json in the layouts `hearth finetune` reads; loss on the
    /// assistant's tokens).
    #[arg(long, required = true, num_args = 1..)]
    pub data: Vec<PathBuf>,
    /// Held-out plain text: perplexity of teacher and students (before and after).
    #[arg(long)]
    pub val: PathBuf,
    /// The student GGUF to write (the baseline, if any, goes beside it as
    /// NAME.baseline.gguf).
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Student blocks taken from the teacher: `half` (every other: 0,2,4,...) or a
    /// list like `0,2,4,6`.
    #[arg(long, default_value = "half", conflicts_with_all = ["student_config", "student_model"])]
    pub student_layers: String,
    /// A randomly initialised student instead: `layers=N,d_model=D,ffn=F,heads=H,kv_heads=K,head_dim=E`
    /// (any subset; the rest as the teacher).
    #[arg(long)]
    pub student_config: Option<String>,
    /// Start from an existing GGUF model with the teacher's tokenizer instead.
    #[arg(long, conflicts_with = "student_config")]
    pub student_model: Option<PathBuf>,
    /// Train the token embeddings (and output head) too; by default they stay frozen
    /// as in DistilBERT (random students always train them).
    #[arg(long)]
    pub train_embeddings: bool,
    /// Weight of the KL term; 1 - alpha weighs cross-entropy on the hard labels.
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f64,
    /// Temperature of teacher and student distributions in the KL term.
    #[arg(long, default_value_t = 2.0)]
    pub temperature: f64,
    /// Multiply the KL term by T² (Hinton et al.'s convention, which keeps gradient
    /// sizes as T changes). Off by default, as TRL's GKDTrainer and Axolotl's KD do.
    #[arg(long)]
    pub kd_scale_t2: bool,
    /// Teacher tokens kept per position; the KL runs on the teacher's top-k
    /// probabilities renormalised.
    #[arg(long, default_value_t = 32)]
    pub top_k: usize,
    /// The teacher's top-k cache (default: OUTPUT.topk); reused when it matches the
    /// teacher, k and data, rebuilt otherwise.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Tokens per window of plain-text data.
    #[arg(long, default_value_t = 128)]
    pub seq_len: usize,
    /// Longest SFT conversation in tokens.
    #[arg(long, default_value_t = 1024)]
    pub max_len: usize,
    /// Optimizer steps.
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Sequences per micro-batch.
    #[arg(long, default_value_t = 4)]
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    /// Peak learning rate (AdamW).
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// Linear warm-up steps (default: 5% of the steps).
    #[arg(long)]
    pub warmup: Option<usize>,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Clip gradients to this global norm (0: no clipping).
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// Seed of shuffling (and of random initialisation).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output weight type: F32, F16, Q8_0, Q4_K_M, ...
    #[arg(long = "type", short = 'q', default_value = "F32")]
    pub scheme: String,
    /// Tokens per perplexity chunk on --val (llama-perplexity's protocol).
    #[arg(long, default_value_t = 512)]
    pub ppl_ctx: usize,
    /// Also train the same student (same initialisation, data order and steps) on
    /// hard labels only, and report both.
    #[arg(long)]
    pub baseline_hard_labels: bool,
    /// Print the result as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

/// Training data: text windows and encoded SFT conversations.
fn load_data(args: &DistillArgs, file: &GgufFile, tok: &Tokenizer) -> anyhow::Result<Vec<Encoded>> {
    let mut out = Vec::new();
    for p in &args.data {
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "jsonl" | "json") {
            let arch = hearth_model::config_from_gguf(file)?.architecture;
            let tpl = super::chat::template_from(tok, &arch)?;
            out.extend(super::finetune::load_set(p, tok, &tpl, args.max_len)?);
        } else {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read the text", p.display()))?;
            let w = text_windows(tok, &text, args.seq_len)?;
            anyhow::ensure!(!w.is_empty(), "{}: no text to learn from", p.display());
            out.extend(w);
        }
    }
    Ok(out)
}

/// The student as the flags ask, and the teacher's dequantized weights dropped.
fn build_student(args: &DistillArgs, file: &Arc<GgufFile>) -> anyhow::Result<Student> {
    if let Some(spec) = &args.student_config {
        let shape: StudentShape = spec.parse()?;
        return Ok(Student::from_shape(
            file.clone(),
            &shape,
            args.seed,
            DType::F32,
        )?);
    }
    if let Some(p) = &args.student_model {
        let s = Arc::new(GgufFile::open(p)?);
        return Ok(Student::from_model(
            file,
            s,
            args.train_embeddings,
            DType::F32,
        )?);
    }
    let spinner = ProgressBar::new_spinner();
    spinner.set_message("dequantizing the teacher's weights for the student");
    let teacher = TrainModel::from_gguf(file.clone(), DType::F32)?;
    spinner.finish_and_clear();
    let layers = distill::parse_layers(&args.student_layers, teacher.config().n_layers())?;
    Ok(Student::from_layers(
        &teacher,
        &layers,
        args.train_embeddings,
    )?)
}

/// Perplexity of a GGUF model on `tokens` (llama-perplexity's protocol).
fn ppl(model: &Transformer, tok: &Tokenizer, tokens: &[u32], ctx: usize) -> anyhow::Result<f64> {
    let cfg = PerplexityConfig {
        ctx,
        bos: if tok.add_bos() { tok.bos() } else { None },
    };
    Ok(perplexity(model, tokens, &cfg, |_, _, _| {})?.ppl)
}

/// Writes `student` and measures the file's perplexity with the inference path.
fn write_and_score(
    student: &Student,
    out: &Path,
    scheme: Scheme,
    record: &hearth_lineage::Provenance,
    score: &dyn Fn(&Transformer) -> anyhow::Result<f64>,
) -> anyhow::Result<f64> {
    distill::write_student(student, out, scheme, record)
        .with_context(|| format!("writing {}", out.display()))?;
    let m = Transformer::open(out).with_context(|| format!("loading {}", out.display()))?;
    score(&m)
}

/// Results of one training run.
struct Run {
    steps: usize,
    tokens: usize,
    seconds: f64,
    first: Option<f64>,
    last: Option<f64>,
}

impl Run {
    fn tokens_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.tokens as f64 / self.seconds
        } else {
            0.0
        }
    }
}

fn train(
    label: &str,
    student: &Student,
    data: &[Encoded],
    cache: Option<&TopKCache>,
    loss: KdLoss,
    cfg: &TrainConfig,
) -> anyhow::Result<Run> {
    let mut d = Distiller::new(student, data, cache, loss, cfg.clone())?;
    let pb = super::finetune::bar(cfg.steps, 0);
    pb.set_prefix(label.to_string());
    let start = Instant::now();
    let mut run = Run {
        steps: 0,
        tokens: 0,
        seconds: 0.0,
        first: None,
        last: None,
    };
    while !d.done() {
        let r = d.step()?;
        run.tokens += r.tokens;
        run.first.get_or_insert(r.loss);
        run.last = Some(r.loss);
        pb.set_message(format!(
            "{label}: loss {:.4} (kl {:.4}, ce {:.4})  {:.0} tok/s",
            r.loss,
            r.kl,
            r.ce,
            run.tokens as f64 / start.elapsed().as_secs_f64()
        ));
        pb.inc(1);
    }
    pb.finish();
    run.steps = d.steps_done();
    run.seconds = start.elapsed().as_secs_f64();
    Ok(run)
}

fn teacher_cache(
    args: &DistillArgs,
    path: &Path,
    teacher: &Transformer,
    data: &[Encoded],
) -> anyhow::Result<TopKCache> {
    let mut sha = sha256_files(&[path.to_path_buf()])?;
    if let Some(q) = &args.model.quantize {
        sha = format!("{sha}+quantize={q}");
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let want = CacheHeader::expected(&name, &sha, teacher.config().vocab_size, args.top_k, data);
    let cache_path = args
        .cache
        .clone()
        .unwrap_or_else(|| args.output.with_extension("topk"));
    let pb = ProgressBar::new(data.len() as u64);
    pb.set_message("teacher top-k");
    let (cache, origin) = load_or_build(&cache_path, teacher, want, data, &mut |done, _| {
        pb.set_position(done as u64)
    })?;
    pb.finish_and_clear();
    match origin {
        CacheOrigin::Reused => eprintln!("teacher top-k: reused {}", cache_path.display()),
        CacheOrigin::Built => eprintln!("teacher top-k: built {}", cache_path.display()),
        CacheOrigin::Rebuilt(why) => {
            eprintln!("teacher top-k: rebuilt {} ({why})", cache_path.display())
        }
    }
    Ok(cache)
}

pub fn run(args: &DistillArgs) -> anyhow::Result<()> {
    // As in `finetune`: no spinning element-wise pool beside the matmul threads.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    super::set_threads(args.model.threads)?;
    let scheme: Scheme = args.scheme.parse()?;
    let loss = KdLoss {
        alpha: args.alpha,
        temperature: args.temperature,
        scale_t2: args.kd_scale_t2,
    };
    loss.check()?;
    let (path, file) = args.model.open_file()?;
    let tok = Tokenizer::from_gguf(&file)
        .with_context(|| format!("{}: reading the tokenizer", path.display()))?;
    let data = load_data(args, &file, &tok)?;
    let val_text = std::fs::read_to_string(&args.val)
        .with_context(|| format!("{}: cannot read the held-out text", args.val.display()))?;
    let val = tok.encode(&val_text, true, false)?;
    let student = build_student(args, &file)?;
    let teacher = Transformer::from_gguf(file.clone())?;
    let score = |m: &Transformer| ppl(m, &tok, &val, args.ppl_ctx);
    let cache = match loss.alpha > 0.0 {
        true => Some(teacher_cache(args, &path, &teacher, &data)?),
        false => None,
    };
    let teacher_ppl = score(&teacher)?;
    drop(teacher);
    let baseline = match args.baseline_hard_labels {
        true => Some(student.fork()?),
        false => None,
    };
    let cfg = TrainConfig {
        steps: args.steps,
        batch_size: args.batch_size,
        grad_accum: args.grad_accum,
        warmup: args.warmup.unwrap_or(args.steps.div_ceil(20)),
        seed: args.seed,
        optim: AdamWConfig {
            lr: args.lr,
            weight_decay: args.weight_decay,
            max_grad_norm: args.max_grad_norm,
            ..AdamWConfig::default()
        },
    };
    let cfg_student = student.model.config();
    eprintln!(
        "teacher {} layers, student {} layers ({}; {} parameters, {} trainable); {} sequences, {} steps of {}",
        hearth_model::config_from_gguf(&file)?.n_layers(),
        cfg_student.n_layers(),
        student.init,
        student.n_params(),
        student.n_trainable(),
        data.len(),
        cfg.steps,
        cfg.batch_size * cfg.grad_accum
    );
    let mut record = record(args, &path, &file, &student, &cfg, &loss)?;
    let init_path = args.output.with_extension("init.tmp.gguf");
    // Every perplexity is the written file's, in the output type (F32 runs through
    // plain dot products; Q8_0 and the other quantized types through the fast kernels).
    let before = write_and_score(&student, &init_path, scheme, &record, &score);
    let _ = std::fs::remove_file(&init_path);
    let before = before?;
    eprintln!("held-out perplexity: teacher {teacher_ppl:.3}, student before training {before:.3}");
    let kd = train("kd", &student, &data, cache.as_ref(), loss, &cfg)?;
    let after = write_and_score(&student, &args.output, scheme, &record, &score)?;
    let mut base = None;
    if let Some(b) = &baseline {
        let run = train("hard", b, &data, None, KdLoss::HARD_LABELS, &cfg)?;
        record
            .parameters
            .insert("loss".into(), "hard-labels (baseline)".into());
        let out = baseline_path(&args.output);
        let p = write_and_score(b, &out, scheme, &record, &score)?;
        base = Some((run, out, p));
    }
    report(
        args,
        teacher_ppl,
        before,
        (&kd, after),
        base.as_ref(),
        &student,
    );
    Ok(())
}

/// `student.gguf` → `student.baseline.gguf`.
fn baseline_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "student".into());
    out.with_file_name(format!("{stem}.baseline.gguf"))
}

fn record(
    args: &DistillArgs,
    path: &Path,
    file: &GgufFile,
    student: &Student,
    cfg: &TrainConfig,
    loss: &KdLoss,
) -> anyhow::Result<hearth_lineage::Provenance> {
    let mut p = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        p.insert(k.to_string(), v);
    };
    put("method", "logit-distillation".into());
    put(
        "loss",
        format!(
            "alpha*KL(teacher_T||student_T){} + (1-alpha)*CE",
            if loss.scale_t2 { "*T^2" } else { "" }
        ),
    );
    put("alpha", loss.alpha.to_string());
    put("temperature", loss.temperature.to_string());
    put("kd_scale_t2", loss.scale_t2.to_string());
    put("top_k", args.top_k.to_string());
    put("student_init", student.init.clone());
    put(
        "student_layers",
        student.model.config().n_layers().to_string(),
    );
    put("train_embeddings", args.train_embeddings.to_string());
    put("steps", cfg.steps.to_string());
    put("batch_size", cfg.batch_size.to_string());
    put("grad_accum", cfg.grad_accum.to_string());
    put("warmup", cfg.warmup.to_string());
    put("lr", args.lr.to_string());
    put("weight_decay", args.weight_decay.to_string());
    put("max_grad_norm", args.max_grad_norm.to_string());
    put("seq_len", args.seq_len.to_string());
    put("seed", cfg.seed.to_string());
    put("optimizer", "adamw".into());
    put("schedule", "cosine".into());
    put("type", args.scheme.clone());
    let origin = Origin {
        base: path,
        data: &args.data,
        tool_version: env!("CARGO_PKG_VERSION"),
    };
    let mut rec = export::provenance(file, &origin, p)?;
    rec.operation = "distill".into();
    Ok(rec)
}

fn report(
    args: &DistillArgs,
    teacher_ppl: f64,
    before: f64,
    kd: (&Run, f64),
    baseline: Option<&(Run, PathBuf, f64)>,
    student: &Student,
) {
    let (run, after) = kd;
    eprintln!(
        "kd: {} steps in {:.1}s ({:.0} tokens/s); held-out perplexity {before:.3} -> {after:.3} (teacher {teacher_ppl:.3}); wrote {}",
        run.steps,
        run.seconds,
        run.tokens_per_s(),
        args.output.display()
    );
    if let Some((b, path, p)) = baseline {
        eprintln!(
            "hard labels: {} steps in {:.1}s ({:.0} tokens/s); held-out perplexity {before:.3} -> {p:.3}; wrote {}",
            b.steps,
            b.seconds,
            b.tokens_per_s(),
            path.display()
        );
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "teacher_ppl": teacher_ppl,
                "student_ppl_before": before,
                "student_ppl_after": after,
                "baseline_ppl_after": baseline.map(|b| b.2),
                "steps": run.steps,
                "student_path": args.output,
                "baseline_path": baseline.map(|b| &b.1),
                "student_layers": student.model.config().n_layers(),
                "student_params": student.n_params(),
                "trainable_params": student.n_trainable(),
                "train_loss_first": run.first,
                "train_loss_last": run.last,
                "baseline_loss_first": baseline.and_then(|b| b.0.first),
                "baseline_loss_last": baseline.and_then(|b| b.0.last),
                "tokens": run.tokens,
                "seconds": run.seconds,
                "tokens_per_s": run.tokens_per_s(),
                "baseline_tokens_per_s": baseline.map(|b| b.0.tokens_per_s()),
                "alpha": args.alpha,
                "temperature": args.temperature,
                "kd_scale_t2": args.kd_scale_t2,
                "top_k": args.top_k,
            })
        );
    }
}
