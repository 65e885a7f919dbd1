//! `hearth guard eval-moderation` and `hearth guard eval-pii`: precision and recall of the
//! term lists on OpenAI's labelled moderation samples, and of the PII recognizers on
//! presidio-evaluator's synthetic set, printed beside the published bars.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use hearth_guard::moderation::{
    merge_scores, Category, LlamaGuardPrompt, LlamaGuardVerdict, MergeRule, Moderator, Role,
    TermList, Thresholds,
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
}

impl MergeChoice {
    fn rule(self) -> MergeRule {
        match self {
            MergeChoice::Max => MergeRule::Max,
            MergeChoice::Weighted => MergeRule::Weighted { judge_weight: 0.6 },
            MergeChoice::JudgeOnly => MergeRule::JudgeOnly,
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
const LABELS: [(&str, Category); 8] = [
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
struct Confusion {
    tp: usize,
    fp: usize,
    fn_: usize,
    tn: usize,
}

impl Confusion {
    fn add(&mut self, truth: bool, predicted: bool) {
        match (truth, predicted) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }
    fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    fn recall(&self) -> f64 {
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

pub fn eval_moderation(args: &EvalModerationArgs) -> anyhow::Result<()> {
    let list = load_lists(args)?;
    let moderator = Moderator::new(&list)?.with_thresholds(Thresholds::uniform(args.threshold));
    let text = std::fs::read_to_string(&args.data)
        .with_context(|| format!("{}: reading", args.data.display()))?;
    let mut overall = Confusion::default();
    let mut per_label = [Confusion::default(); LABELS.len()];
    let mut n = 0;
    let mut errors = (Vec::new(), Vec::new());
    let replies = match &args.judge_replies {
        Some(path) => Some(load_replies(path)?),
        None => None,
    };
    let (mut merged, mut unreadable, mut missing) = (0, 0, 0);
    let mut prompts = match &args.write_judge_prompts {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("{}: creating", path.display()))?,
        )),
        None => None,
    };
    let judge_prompt = LlamaGuardPrompt::default();
    for (i, line) in text.lines().enumerate() {
        let keep = match args.split {
            Split::All => true,
            Split::Dev => i % 2 == 0,
            Split::Test => i % 2 == 1,
        };
        let judged = replies.as_ref().is_some_and(|r| r.contains_key(&(i + 1)));
        if !keep || line.trim().is_empty() || (args.only_judged && !judged) {
            continue;
        }
        let row: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", args.data.display(), i + 1))?;
        let prompt = row["prompt"].as_str().with_context(|| {
            format!(
                "{}:{}: no string field `prompt`",
                args.data.display(),
                i + 1
            )
        })?;
        if let Some(out) = prompts.as_mut() {
            let p = judge_prompt.build(&[(Role::User, prompt)], Role::User);
            writeln!(out, "{}", serde_json::json!({"line": i + 1, "prompt": p}))?;
        }
        let mut verdict = moderator.moderate(prompt);
        if let Some(replies) = &replies {
            match replies.get(&(i + 1)).map(|r| LlamaGuardVerdict::parse(r)) {
                Some(Ok(judged)) => {
                    let scores = merge_scores(&verdict.scores, &judged.scores(), args.merge.rule());
                    verdict = moderator.verdict(scores, verdict.matches);
                    merged += 1;
                }
                Some(Err(_)) => unreadable += 1,
                None => missing += 1,
            }
        }
        let mut any = false;
        for (j, (key, category)) in LABELS.iter().enumerate() {
            let truth = row[*key].as_i64() == Some(1);
            any |= truth;
            per_label[j].add(truth, verdict.categories.get(*category));
        }
        overall.add(any, verdict.flagged);
        let short = || {
            prompt
                .chars()
                .take(160)
                .collect::<String>()
                .replace('\n', " ")
        };
        if any && !verdict.flagged {
            errors.0.push(short());
        } else if !any && verdict.flagged {
            let why: Vec<String> = verdict
                .matches
                .iter()
                .map(|m| format!("{}:{}", m.category, &prompt[m.span.clone()]))
                .collect();
            errors.1.push(format!("{} <= {why:?}", short()));
        }
        n += 1;
    }
    println!(
        "OpenAI moderation samples ({:?}): {n} texts, {} labelled flagged; {} term-list entries, threshold {}",
        args.split,
        overall.tp + overall.fn_,
        list.entries.len(),
        args.threshold
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
    if replies.is_some() {
        println!(
            "judge: {merged} replies merged ({:?}), {unreadable} unreadable and {missing} missing (term lists alone there)",
            args.merge
        );
    }
    if let Some(mut out) = prompts {
        out.flush()?;
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
            let hit_overlap = gold
                .iter()
                .position(|(t, g)| t == name && g.start < f.span.end && f.span.start < g.end);
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
            if let Some(j) = hit_overlap {
                o.tp += 1;
                matched_gold[j] = true;
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
    for (label, table) in [("missed", &misses), ("false hits", &false_hits)] {
        for (name, m) in table {
            if args.misses > 0 {
                eprintln!("{name} {label}: {:?}", &m[..m.len().min(args.misses)]);
            }
        }
    }
    Ok(())
}
