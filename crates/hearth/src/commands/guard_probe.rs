//! `hearth guard train-probe`: a moderation probe (logistic regression over the model's
//! pooled hidden states) trained on labelled samples, for `hearth serve
//! --moderation-probe`.

use std::path::PathBuf;

use anyhow::Context;
use hearth_engine::pooled::{mean_hidden, model_identity, MEAN_POOLING};
use hearth_guard::moderation::{ModerationProbe, Moderator, ProbeFeatures, ProbeFit, ProbeLabels};
use indicatif::{ProgressBar, ProgressStyle};

use super::guard_eval::{read_samples, Confusion, Split};
use super::ModelArgs;

/// Flags of `hearth guard train-probe`.
#[derive(clap::Args, Debug)]
pub struct TrainProbeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Labelled samples in the format of OpenAI's `samples-1680.jsonl` (`prompt`, and the
    /// labels `S H V HR SH S3 H2 V2` as 0 or 1).
    #[arg(long)]
    pub data: PathBuf,
    /// Which samples to train on (`dev`: even lines, so `eval-moderation --split test`
    /// stays held out).
    #[arg(long, value_enum, default_value = "dev")]
    pub split: Split,
    /// Where to write the probe (JSON).
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// L2 penalty on the weights (scikit-learn's 1/C); larger is smoother.
    #[arg(long, default_value_t = 100.0)]
    pub l2: f64,
    /// Probability of the flagged head at which a text is flagged.
    #[arg(long, default_value_t = 0.7)]
    pub threshold: f32,
    /// Below this probability of the flagged head, the probe overrules the other sources:
    /// their scores are capped at it (0: no veto).
    #[arg(long, default_value_t = 0.2)]
    pub veto: f32,
    /// Read the hidden states after this many blocks (default: all, the final ones).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Tokens of each text the model reads at most.
    #[arg(long, default_value_t = 384)]
    pub max_tokens: usize,
    /// Cross-validation folds for the held-out report (0: skip it).
    #[arg(long, default_value_t = 10)]
    pub folds: usize,
}

/// Precision and recall of `predicted` against `truth`, as a table cell.
fn score(truth: &[bool], predicted: impl Iterator<Item = bool>) -> String {
    let mut c = Confusion::default();
    truth.iter().zip(predicted).for_each(|(&t, p)| c.add(t, p));
    format!(
        "P {:.3} R {:.3} ({} TP, {} FP, {} FN)",
        c.precision(),
        c.recall(),
        c.tp,
        c.fp,
        c.fn_
    )
}

/// Runs `hearth guard train-probe`.
pub fn train_probe(args: &TrainProbeArgs) -> anyhow::Result<()> {
    if args.max_tokens == 0 {
        anyhow::bail!("--max-tokens must be at least 1");
    }
    // Settings are checked before the model reads a single text.
    let fit = ProbeFit {
        l2: args.l2,
        threshold: args.threshold,
        veto_below: args.veto,
    };
    fit.check().context("--l2, --threshold and --veto")?;
    let samples = read_samples(&args.data, args.split, None, false)?;
    if args.folds == 1 || args.folds > samples.len() {
        anyhow::bail!(
            "--folds {}: 0 (no report) or 2 to {} (the samples of the split)",
            args.folds,
            samples.len()
        );
    }
    if samples.is_empty() {
        anyhow::bail!(
            "{}: no samples in the {:?} split",
            args.data.display(),
            args.split
        );
    }
    let labels: Vec<ProbeLabels> = samples
        .iter()
        .map(|s| ProbeLabels {
            flagged: s.truth.iter().any(|&t| t),
            categories: s.categories(),
        })
        .collect();
    let flagged = labels.iter().filter(|l| l.flagged).count();
    if flagged == 0 || flagged == samples.len() {
        anyhow::bail!(
            "{}: {flagged} of {} samples are flagged: the probe needs both kinds",
            args.data.display(),
            samples.len()
        );
    }
    let loaded = args.model.load()?;
    let layers = loaded.model.config().layers.len();
    if let Some(depth) = args.depth.filter(|d| !(1..=layers).contains(d)) {
        anyhow::bail!("--depth {depth}: the model has {layers} blocks (1 to {layers})");
    }
    let bar = ProgressBar::new(samples.len() as u64).with_style(
        ProgressStyle::with_template("features {bar:30} {pos}/{len} texts, {eta} left")
            .expect("a valid template"),
    );
    let mut features = Vec::with_capacity(samples.len());
    for s in &samples {
        features.push(
            mean_hidden(
                &loaded.model,
                &loaded.tokenizer,
                &s.prompt,
                args.max_tokens,
                args.depth,
            )
            .with_context(|| format!("{}:{}: running the model", args.data.display(), s.line))?,
        );
        bar.inc(1);
    }
    bar.finish_and_clear();
    let spec = ProbeFeatures {
        model: model_identity(&loaded.model),
        dim: loaded.model.config().d_model,
        max_tokens: args.max_tokens,
        pooling: MEAN_POOLING.to_string(),
        depth: args.depth,
    };
    let probe = ModerationProbe::fit(spec, &features, &labels, &fit)?;
    let tmp = args.output.with_extension("json.partial");
    std::fs::write(&tmp, probe.to_json())
        .and_then(|()| std::fs::rename(&tmp, &args.output))
        .with_context(|| format!("{}: writing", args.output.display()))?;
    println!(
        "probe: {} texts ({flagged} flagged), {} features, heads: flagged, {}; written to {}",
        samples.len(),
        probe.features.dim,
        probe
            .categories
            .iter()
            .map(|h| h.label.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        args.output.display()
    );
    if args.folds >= 2 {
        let oof = ModerationProbe::out_of_fold(&features, &labels, &fit, args.folds)?;
        let truth: Vec<bool> = labels.iter().map(|l| l.flagged).collect();
        let moderator = Moderator::builtin();
        let lists: Vec<bool> = samples
            .iter()
            .map(|s| moderator.moderate(&s.prompt).flagged)
            .collect();
        let probe_says = oof.iter().map(|&p| p >= args.threshold);
        let either = lists.iter().zip(probe_says.clone()).map(|(l, p)| *l || p);
        let served = either
            .clone()
            .zip(&oof)
            .map(|(flag, &p)| flag && p >= args.veto);
        println!(
            "held out ({}-fold cross-validation, threshold {}, veto below {}):",
            args.folds, args.threshold, args.veto
        );
        let rows = [
            ("term lists alone", score(&truth, lists.iter().copied())),
            ("probe alone", score(&truth, probe_says)),
            ("lists or probe", score(&truth, either)),
            ("lists or probe, vetoed", score(&truth, served)),
        ];
        for (name, cell) in rows {
            println!("  {name:<24}{cell}");
        }
    }
    Ok(())
}
