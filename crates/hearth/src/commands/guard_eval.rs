//! `hearth guard eval-moderation` and `hearth guard eval-pii`: precision and recall of the
//! term lists on OpenAI's labelled moderation samples, and of the PII recognizers on
//! presidio-evaluator's synthetic set, printed beside the published bars.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::Context;
use hearth_guard::moderation::{
    merge_scores, Category, CategoryFlags, LlamaGuardVerdict, MergeRule, Moderator, TermList,
    Thresholds,
};
use hearth_guard::{PiiKind, Scanner};

/// Flags of `hearth guard eval-moderation`.
#[derive(clap::Args, Debug)]
pub struct EvalModerationArgs {
    /// `samples-1680.jsonl` from openai/moderation-api-release (one JSON object per line:
    /// `prompt` and 0/1 labels S, H, V, HR, SH, S3, H2, V2).
    #[arg(long)]
    pub data: PathBuf,
    /// Extra `.terms` files to load beside (or, with --no-builtin, instead of) the
    /// built-in lists.
    #[arg(long = "terms")]
    pub terms: Vec<PathBuf>,
    /// npm `naughty-words` JSON files (CC-BY-4.0, LDNOOBW and contributors) to load; each
    /// term counts for --naughty-category with --naughty-weight.
    #[arg(long = "naughty-words")]
    pub naughty_words: Vec<PathBuf>,
    /// The category the naughty-words terms count for.
    #[arg(long, default_value = "sexual")]
    pub naughty_category: String,
    /// The weight of each naughty-words term.
    #[arg(long, default_value_t = 0.3)]
    pub naughty_weight: f32,
    /// Leave out the built-in English and Chinese lists.
    #[arg(long)]
    pub no_builtin: bool,
    /// Flagging threshold for every category.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Which samples to score: `all`, `dev` (even lines, for working on lists) or `test`
    /// (odd lines, held out).
    #[arg(long, value_enum, default_value = "all")]
    pub split: Split,
    /// Print up to this many missed and wrongly flagged samples (on stderr, truncated;
    /// the texts are offensive).
    #[arg(long, default_value_t = 0)]
    pub show_errors: usize,
    /// Write the Llama-Guard-style judge prompt of every selected sample to this file as
    /// JSON lines (`{"line": N, "prompt": "..."}`), to run through a served model.
    #[arg(long)]
    pub write_judge_prompts: Option<PathBuf>,
    /// The judge's replies as JSON lines (`{"line": N, "reply": "unsafe\nS1"}`), e.g. a
    /// served model's answers to --write-judge-prompts; merged with the term lists.
    #[arg(long)]
    pub judge_replies: Option<PathBuf>,
    /// How judge scores merge with term-list scores.
    #[arg(long, value_enum, default_value = "max")]
    pub merge: MergeChoice,
    /// Score only the samples that have a line in --judge-replies (a subset the judge
    /// got through), so term lists, judge and merged are compared on the same texts.
    #[arg(long, requires = "judge_replies")]
    pub only_judged: bool,
    /// Write every selected sample as a chat fine-tuning record for `hearth finetune`:
    /// the judge prompt as the user turn and the verdict its labels call for (`safe`, or
    /// `unsafe` and the hazard codes) as the assistant's. Use `--split dev` only, so the
    /// held-out half stays unseen.
    #[arg(long)]
    pub write_judge_training: Option<PathBuf>,
    /// Score a running server's `POST /v1/moderations` instead of the local lists
    /// (e.g. `hearth serve --moderation-judge`): `http://host:port`.
    #[arg(long, conflicts_with_all = ["judge_replies", "terms", "naughty_words", "no_builtin"])]
    pub url: Option<String>,
    /// API key for --url.
    #[arg(long, requires = "url")]
    pub key: Option<String>,
    /// Requests in flight at once with --url (the server batches them).
    #[arg(long, default_value_t = 4, requires = "url")]
    pub concurrency: usize,
}

/// The `--merge` choices (see `hearth_guard::moderation::MergeRule`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeChoice {
    /// The higher score of the two.
    Max,
    /// 0.4 × terms + 0.6 × judge: the judge can overrule a term match.
    Weighted,
    /// The judge alone (term lists only where the judge gave no readable reply).
    JudgeOnly,
    /// The higher score, the judge's only where the term lists scored above zero.
    Confirm,
}

impl MergeChoice {
    pub(crate) fn rule(self) -> MergeRule {
        match self {
            MergeChoice::Max => MergeRule::Max,
            MergeChoice::Weighted => MergeRule::Weighted { judge_weight: 0.6 },
            MergeChoice::JudgeOnly => MergeRule::JudgeOnly,
            MergeChoice::Confirm => MergeRule::Confirm,
        }
    }
}

/// Judge replies by sample line number (from 1).
fn load_replies(path: &std::path::Path) -> anyhow::Result<HashMap<usize, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("{}: reading", path.display()))?;
    let mut replies = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
        let (Some(n), Some(reply)) = (row["line"].as_u64(), row["reply"].as_str()) else {
            anyhow::bail!(
                "{}:{}: expected {{\"line\": N, \"reply\": \"...\"}}",
                path.display(),
                i + 1
            );
        };
        replies.insert(n as usize, reply.to_string());
    }
    Ok(replies)
}

/// A half of the samples.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Every sample.
    All,
    /// Samples on even lines (0, 2, ...), to look at while writing lists.
    Dev,
    /// Samples on odd lines, held out.
    Test,
}

/// The dataset's label keys and the category each one stands for.
pub(crate) const LABELS: [(&str, Category); 8] = [
    ("S", Category::Sexual),
    ("H", Category::Hate),
    ("V", Category::Violence),
    ("HR", Category::Harassment),
    ("SH", Category::SelfHarm),
    ("S3", Category::SexualMinors),
    ("H2", Category::HateThreatening),
    ("V2", Category::ViolenceGraphic),
];

/// True/false positives and false negatives of one binary decision.
#[derive(Default, Debug, Clone, Copy)]
pub(crate) struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    pub tn: usize,
}

impl Confusion {
    pub fn add(&mut self, truth: bool, predicted: bool) {
        match (truth, predicted) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn load_lists(args: &EvalModerationArgs) -> anyhow::Result<TermList> {
    let mut list = if args.no_builtin {
        TermList::default()
    } else {
        TermList::builtin()
    };
    for path in &args.terms {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: reading", path.display()))?;
        list.extend(TermList::parse(&path.display().to_string(), &text)?);
    }
    let category = Category::from_name(&args.naughty_category).with_context(|| {
        format!(
            "--naughty-category `{}` is not one of OpenAI's category names",
            args.naughty_category
        )
    })?;
    for path in &args.naughty_words {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: reading", path.display()))?;
        list.extend(TermList::from_naughty_words_json(
            &path.display().to_string(),
            &text,
            category,
            args.naughty_weight,
        )?);
    }
    Ok(list)
}

/// One labelled sample of the selected split.
pub(crate) struct Sample {
    /// Its line in the file, from 1.
    pub line: usize,
    /// The text.
    pub prompt: String,
    /// The labels, in [`LABELS`] order.
    pub truth: [bool; LABELS.len()],
}

impl Sample {
    /// The categories it is labelled with.
    pub fn categories(&self) -> Vec<Category> {
        LABELS
            .iter()
            .zip(self.truth)
            .filter(|(_, t)| *t)
            .map(|((_, c), _)| *c)
            .collect()
    }
}

/// A moderation decision for one sample, and why (for --show-errors).
pub(crate) struct Prediction {
    pub flagged: bool,
    pub categories: CategoryFlags,
    pub why: String,
}

/// The samples of `split` in `data` (OpenAI's `samples-1680.jsonl` format); with
/// `only_judged`, only those `judged` holds a reply for.
pub(crate) fn read_samples(
    data: &std::path::Path,
    split: Split,
    judged: Option<&HashMap<usize, String>>,
    only_judged: bool,
) -> anyhow::Result<Vec<Sample>> {
    let text =
        std::fs::read_to_string(data).with_context(|| format!("{}: reading", data.display()))?;
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let keep = match split {
            Split::All => true,
            Split::Dev => i % 2 == 0,
            Split::Test => i % 2 == 1,
        };
        let has_reply = judged.is_some_and(|r| r.contains_key(&(i + 1)));
        if !keep || line.trim().is_empty() || (only_judged && !has_reply) {
            continue;
        }
        let row: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", data.display(), i + 1))?;
        let prompt = row["prompt"]
            .as_str()
            .with_context(|| format!("{}:{}: no string field `prompt`", data.display(), i + 1))?;
        let mut truth = [false; LABELS.len()];
        for (t, (key, _)) in truth.iter_mut().zip(LABELS) {
            *t = row[key].as_i64() == Some(1);
        }
        samples.push(Sample {
            line: i + 1,
            prompt: prompt.to_string(),
            truth,
        });
    }
    Ok(samples)
}

/// The term lists' decisions, merged with the judge's replies where there are some.
fn predict_locally(
    args: &EvalModerationArgs,
    moderator: &Moderator,
    samples: &[Sample],
    replies: Option<&HashMap<usize, String>>,
) -> Vec<Prediction> {
    let (mut merged, mut unreadable, mut missing) = (0, 0, 0);
    let out = samples
        .iter()
        .map(|s| {
            let mut verdict = moderator.moderate(&s.prompt);
            if let Some(replies) = replies {
                match replies.get(&s.line).map(|r| LlamaGuardVerdict::parse(r)) {
                    Some(Ok(judged)) => {
                        let scores =
                            merge_scores(&verdict.scores, &judged.scores(), args.merge.rule());
                        verdict = moderator.verdict(scores, verdict.matches);
                        merged += 1;
                    }
                    Some(Err(_)) => unreadable += 1,
                    None => missing += 1,
                }
            }
            let why: Vec<String> = verdict
                .matches
                .iter()
                .map(|m| format!("{}:{}", m.category, &s.prompt[m.span.clone()]))
                .collect();
            Prediction {
                flagged: verdict.flagged,
                categories: verdict.categories,
                why: format!("{why:?}"),
            }
        })
        .collect();
    if replies.is_some() {
        println!(
            "judge: {merged} replies merged ({:?}), {unreadable} unreadable and {missing} missing (term lists alone there)",
            args.merge
        );
    }
    out
}

pub fn eval_moderation(args: &EvalModerationArgs) -> anyhow::Result<()> {
    let replies = match &args.judge_replies {
        Some(path) => Some(load_replies(path)?),
        None => None,
    };
    let samples = read_samples(&args.data, args.split, replies.as_ref(), args.only_judged)?;
    if let Some(path) = &args.write_judge_prompts {
        super::guard_judge::write_prompts(path, &samples)?;
    }
    if let Some(path) = &args.write_judge_training {
        super::guard_judge::write_training(path, &samples)?;
    }
    let (predictions, source) = match &args.url {
        Some(url) => {
            let endpoint = hearth_redteam::Endpoint::parse(url, args.key.clone())?;
            let (p, model) =
                super::guard_judge::predict_remotely(&endpoint, &samples, args.concurrency)?;
            (p, format!("{} (model {model})", endpoint.display_url()))
        }
        None => {
            let list = load_lists(args)?;
            let moderator =
                Moderator::new(&list)?.with_thresholds(Thresholds::uniform(args.threshold));
            let source = format!(
                "{} term-list entries, threshold {}",
                list.entries.len(),
                args.threshold
            );
            (
                predict_locally(args, &moderator, &samples, replies.as_ref()),
                source,
            )
        }
    };
    let mut overall = Confusion::default();
    let mut per_label = [Confusion::default(); LABELS.len()];
    let mut errors = (Vec::new(), Vec::new());
    for (s, p) in samples.iter().zip(&predictions) {
        let mut any = false;
        for (j, (_, category)) in LABELS.iter().enumerate() {
            any |= s.truth[j];
            per_label[j].add(s.truth[j], p.categories.get(*category));
        }
        overall.add(any, p.flagged);
        let short = || {
            s.prompt
                .chars()
                .take(160)
                .collect::<String>()
                .replace('\n', " ")
        };
        if any && !p.flagged {
            errors.0.push(short());
        } else if !any && p.flagged {
            errors.1.push(format!("{} <= {}", short(), p.why));
        }
    }
    println!(
        "OpenAI moderation samples ({:?}): {} texts, {} labelled flagged; {source}",
        args.split,
        samples.len(),
        overall.tp + overall.fn_,
    );
    println!(
        "{:<22} {:>6} {:>6} {:>6} {:>5} {:>5} {:>5}",
        "label", "P", "R", "F1", "TP", "FP", "FN"
    );
    let row = |name: &str, c: &Confusion| {
        println!(
            "{name:<22} {:>6.3} {:>6.3} {:>6.3} {:>5} {:>5} {:>5}",
            c.precision(),
            c.recall(),
            c.f1(),
            c.tp,
            c.fp,
            c.fn_
        );
    };
    row("flagged (any)", &overall);
    for (j, (key, category)) in LABELS.iter().enumerate() {
        row(&format!("{} ({key})", category.name()), &per_label[j]);
    }
    println!("bar (Llama Guard rail, flagged): P 0.730 R 0.660");
    for (label, list) in [("missed", &errors.0), ("wrongly flagged", &errors.1)] {
        for e in list.iter().take(args.show_errors) {
            eprintln!("{label}: {e}");
        }
    }
    Ok(())
}

/// Flags of `hearth guard eval-pii`.
#[derive(clap::Args, Debug)]
pub struct EvalPiiArgs {
    /// `data/synth_dataset_v2.json` from the presidio-evaluator 0.3.2 source package
    /// (`pip download --no-deps --no-binary :all: presidio-evaluator==0.3.2`).
    #[arg(long)]
    pub data: PathBuf,
    /// Print up to this many missed gold values and false hits per type (on stderr).
    #[arg(long, default_value_t = 0)]
    pub misses: usize,
    /// The kinds to look for: labels (`EMAIL,PERSON`), `default` (all but names and
    /// addresses) or `all`.
    #[arg(long, default_value = "all", value_parser = super::guard::parse_kinds)]
    pub kinds: super::guard::KindList,
}

/// The dataset's entity types we claim, and our kinds that count as each.
const PII_TYPES: [(&str, &[PiiKind]); 7] = [
    ("CREDIT_CARD", &[PiiKind::CreditCard]),
    ("EMAIL_ADDRESS", &[PiiKind::Email]),
    ("IBAN_CODE", &[PiiKind::Iban]),
    ("IP_ADDRESS", &[PiiKind::Ipv4, PiiKind::Ipv6]),
    ("PHONE_NUMBER", &[PiiKind::Phone]),
    ("PERSON", &[PiiKind::Person]),
    ("STREET_ADDRESS", &[PiiKind::Address]),
];

pub fn eval_pii(args: &EvalPiiArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.data)
        .with_context(|| format!("{}: reading", args.data.display()))?;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text)
        .with_context(|| format!("{}: expected a JSON array", args.data.display()))?;
    let scanner = Scanner::with_kinds(&args.kinds.0);
    // Per type: exact-span and overlapping-span confusion (tn unused).
    let mut exact: BTreeMap<&str, Confusion> = BTreeMap::new();
    let mut overlap: BTreeMap<&str, Confusion> = BTreeMap::new();
    let mut unclaimed: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut misses: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut overlap_misses: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut false_hits: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let full = row["full_text"]
            .as_str()
            .with_context(|| format!("{}: record {i}: no `full_text`", args.data.display()))?;
        // Gold spans are character offsets (Python); convert to bytes.
        let byte_at: Vec<usize> = full
            .char_indices()
            .map(|(b, _)| b)
            .chain(std::iter::once(full.len()))
            .collect();
        let mut gold: Vec<(&str, std::ops::Range<usize>)> = Vec::new();
        for s in row["spans"].as_array().into_iter().flatten() {
            let ty = s["entity_type"].as_str().unwrap_or_default();
            let (Some(a), Some(b)) = (s["start_position"].as_u64(), s["end_position"].as_u64())
            else {
                anyhow::bail!(
                    "{}: record {i}: span without positions",
                    args.data.display()
                );
            };
            let (a, b) = (a as usize, b as usize);
            if b > byte_at.len() - 1 || a > b {
                anyhow::bail!(
                    "{}: record {i}: span {a}..{b} outside the text",
                    args.data.display()
                );
            }
            if let Some((name, _)) = PII_TYPES.iter().find(|(t, _)| *t == ty) {
                gold.push((name, byte_at[a]..byte_at[b]));
            }
        }
        let found = scanner.scan(full);
        let mut matched_gold = vec![false; gold.len()];
        for f in &found {
            let Some((name, _)) = PII_TYPES.iter().find(|(_, ks)| ks.contains(&f.kind)) else {
                *unclaimed.entry(f.kind.label()).or_default() += 1;
                continue;
            };
            let hit_exact = gold.iter().position(|(t, g)| t == name && *g == f.span);
            // Every gold span of the type that the finding overlaps counts as found (an
            // address found whole recalls each piece the set splits it into).
            let overlapped: Vec<usize> = gold
                .iter()
                .enumerate()
                .filter(|(_, (t, g))| t == name && g.start < f.span.end && f.span.start < g.end)
                .map(|(j, _)| j)
                .collect();
            let e = exact.entry(name).or_default();
            if hit_exact.is_some() {
                e.tp += 1
            } else {
                e.fp += 1;
                let around =
                    &full[full.floor_char_boundary(f.span.start.saturating_sub(30))..f.span.end];
                false_hits.entry(name).or_default().push(around.to_string());
            }
            let o = overlap.entry(name).or_default();
            if !overlapped.is_empty() {
                o.tp += 1;
                for j in overlapped {
                    matched_gold[j] = true;
                }
            } else {
                o.fp += 1;
            }
        }
        for (j, (name, g)) in gold.iter().enumerate() {
            if !found.iter().any(|f| f.span == *g) {
                exact.entry(name).or_default().fn_ += 1;
                misses
                    .entry(name)
                    .or_default()
                    .push(full[g.clone()].to_string());
            }
            if !matched_gold[j] {
                overlap.entry(name).or_default().fn_ += 1;
                let around = &full[full.floor_char_boundary(g.start.saturating_sub(40))
                    ..full.ceil_char_boundary((g.end + 20).min(full.len()))];
                overlap_misses
                    .entry(name)
                    .or_default()
                    .push(around.to_string());
            }
        }
    }
    println!(
        "presidio-evaluator synth_dataset_v2: {} records",
        rows.len()
    );
    println!(
        "{:<14} {:>5} | {:>6} {:>6} | {:>6} {:>6}",
        "type", "gold", "P", "R", "P~", "R~"
    );
    let mut total_e = Confusion::default();
    let mut total_o = Confusion::default();
    for (name, kinds) in PII_TYPES {
        if !kinds.iter().any(|k| args.kinds.0.contains(k)) {
            continue;
        }
        let e = exact.get(name).copied().unwrap_or_default();
        let o = overlap.get(name).copied().unwrap_or_default();
        println!(
            "{name:<14} {:>5} | {:>6.3} {:>6.3} | {:>6.3} {:>6.3}",
            e.tp + e.fn_,
            e.precision(),
            e.recall(),
            o.precision(),
            o.recall()
        );
        for (t, c) in [(&mut total_e, e), (&mut total_o, o)] {
            t.tp += c.tp;
            t.fp += c.fp;
            t.fn_ += c.fn_;
        }
    }
    println!(
        "{:<14} {:>5} | {:>6.3} {:>6.3} | {:>6.3} {:>6.3}",
        "claimed types",
        total_e.tp + total_e.fn_,
        total_e.precision(),
        total_e.recall(),
        total_o.precision(),
        total_o.recall()
    );
    println!("P/R: exact span; P~/R~: overlapping span of the same type.");
    println!("Presidio defaults on this set (all its types): P 0.733 R 0.646");
    if !unclaimed.is_empty() {
        println!("findings of kinds the set does not label: {unclaimed:?}");
    }
    for (label, table) in [
        ("missed", &misses),
        ("missed even at overlap (in context)", &overlap_misses),
        ("false hits", &false_hits),
    ] {
        for (name, m) in table {
            if args.misses > 0 {
                eprintln!("{name} {label}: {:?}", &m[..m.len().min(args.misses)]);
            }
        }
    }
    Ok(())
}
