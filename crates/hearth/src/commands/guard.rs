//! `hearth guard scan|redact|moderate FILE`: the PII filter and the term-list moderation
//! on the command line, line by line.

use std::io::{BufRead, BufReader, Write};

use anyhow::Context;
use hearth_guard::moderation::{Moderator, TermList};
use hearth_guard::{Anonymizer, Finding, Operator, PiiKind, Scanner};

/// A `--kinds` selection of PII kinds.
#[derive(Debug, Clone)]
pub struct KindList(pub Vec<PiiKind>);

/// Parses a `--kinds` value (see [`PiiKind::parse_list`]) for clap.
pub fn parse_kinds(list: &str) -> Result<KindList, String> {
    PiiKind::parse_list(list).map(KindList)
}

/// Flags of `hearth guard`.
#[derive(clap::Args, Debug)]
pub struct GuardArgs {
    #[command(subcommand)]
    pub command: GuardCommand,
}

/// The `hearth guard` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum GuardCommand {
    /// Print the personal data and secrets found in each line of FILE.
    Scan(ScanArgs),
    /// Write FILE to stdout with personal data and secrets replaced, line for line.
    Redact(RedactArgs),
    /// Print the content categories each line of FILE is flagged for (term lists).
    Moderate(ModerateArgs),
    /// Precision and recall of the moderation term lists on OpenAI's labelled samples.
    EvalModeration(super::guard_eval::EvalModerationArgs),
    /// Span-level precision and recall of the PII recognizers on presidio-evaluator's
    /// synthetic set.
    EvalPii(super::guard_eval::EvalPiiArgs),
    /// Train a moderation probe (logistic regression over the model's hidden states) on
    /// labelled samples, for `hearth serve --moderation-probe`.
    TrainProbe(super::guard_probe::TrainProbeArgs),
}

/// Flags of `hearth guard scan`.
#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// The text file to read (`-` for stdin).
    pub file: String,
    /// One JSON object per finding: {"line", "kind", "start", "end", "score"} (byte
    /// offsets within the line; lines count from 1).
    #[arg(long)]
    pub json: bool,
    /// The kinds to look for: labels (`EMAIL,PERSON,ADDRESS`), `default` (every kind but
    /// names and addresses) or `all`, comma-separated.
    #[arg(long, default_value = "default", value_parser = parse_kinds)]
    pub kinds: KindList,
}

/// Flags of `hearth guard moderate`.
#[derive(clap::Args, Debug)]
pub struct ModerateArgs {
    /// The text file to read (`-` for stdin).
    pub file: String,
    /// One JSON object per line: {"line", "flagged", "categories": [...], "scores": {...}}
    /// with every category's score; without it, only flagged lines are printed.
    #[arg(long)]
    pub json: bool,
    /// Extra `.terms` files to load beside the built-in lists.
    #[arg(long = "terms")]
    pub terms: Vec<std::path::PathBuf>,
}

/// How `hearth guard redact` replaces what it finds.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorChoice {
    /// `*` for every character.
    Mask,
    /// `<PHONE_1>`, numbered per distinct value within the line.
    Placeholder,
    /// `<PHONE:hex>`, a keyed HMAC-SHA256 (needs --key).
    Hash,
}

/// Flags of `hearth guard redact`.
#[derive(clap::Args, Debug)]
pub struct RedactArgs {
    /// The text file to read (`-` for stdin).
    pub file: String,
    /// How findings are replaced.
    #[arg(long, value_enum, default_value = "placeholder")]
    pub operator: OperatorChoice,
    /// The key for `--operator hash`.
    #[arg(long, env = "HEARTH_GUARD_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// The kinds to look for: labels (`EMAIL,PERSON,ADDRESS`), `default` (every kind but
    /// names and addresses) or `all`, comma-separated.
    #[arg(long, default_value = "default", value_parser = parse_kinds)]
    pub kinds: KindList,
}

pub fn run(args: &GuardArgs) -> anyhow::Result<()> {
    match &args.command {
        GuardCommand::Scan(a) => scan(a),
        GuardCommand::Redact(a) => redact(a),
        GuardCommand::Moderate(a) => moderate(a),
        GuardCommand::EvalModeration(a) => super::guard_eval::eval_moderation(a),
        GuardCommand::EvalPii(a) => super::guard_eval::eval_pii(a),
        GuardCommand::TrainProbe(a) => super::guard_probe::train_probe(a),
    }
}

fn open(file: &str) -> anyhow::Result<Box<dyn BufRead>> {
    if file == "-" {
        return Ok(Box::new(BufReader::new(std::io::stdin())));
    }
    let f = std::fs::File::open(file).with_context(|| format!("{file}: opening"))?;
    Ok(Box::new(BufReader::new(f)))
}

/// Calls `each` with every line of `file` (without its line ending) and the ending
/// itself, so output keeps the input's line structure. Invalid UTF-8 is read lossily.
fn for_each_line(
    file: &str,
    mut each: impl FnMut(usize, &str, &[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut reader = open(file)?;
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("{file}: reading"))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        let body_len = buf.len()
            - if buf.ends_with(b"\r\n") {
                2
            } else {
                usize::from(buf.ends_with(b"\n"))
            };
        let (body, ending) = buf.split_at(body_len);
        let line = String::from_utf8_lossy(body);
        each(number, &line, ending)?;
    }
}

fn moderate(args: &ModerateArgs) -> anyhow::Result<()> {
    let mut list = TermList::builtin();
    for path in &args.terms {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: reading", path.display()))?;
        list.extend(TermList::parse(&path.display().to_string(), &text)?);
    }
    let moderator = Moderator::new(&list)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for_each_line(&args.file, |number, line, _| {
        let m = moderator.moderate(line);
        let flagged: Vec<&str> = m.categories.flagged().map(|c| c.name()).collect();
        if args.json {
            let scores: serde_json::Map<String, serde_json::Value> = m
                .scores
                .iter()
                .map(|(c, s)| {
                    (
                        c.name().to_string(),
                        serde_json::json!((s * 1000.0).round() / 1000.0),
                    )
                })
                .collect();
            let obj = serde_json::json!({
                "line": number,
                "flagged": m.flagged,
                "categories": flagged,
                "scores": scores,
            });
            writeln!(out, "{obj}")?;
        } else if m.flagged {
            let (top, score) = m.scores.top();
            writeln!(
                out,
                "{number}: {} (top {top} {score:.2})",
                flagged.join(", ")
            )?;
        }
        Ok(())
    })?;
    out.flush()?;
    Ok(())
}

fn scan(args: &ScanArgs) -> anyhow::Result<()> {
    let scanner = Scanner::with_kinds(&args.kinds.0);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for_each_line(&args.file, |number, line, _| {
        for f in scanner.scan(line) {
            write_finding(&mut out, number, line, &f, args.json)?;
        }
        Ok(())
    })?;
    out.flush()?;
    Ok(())
}

fn write_finding(
    out: &mut impl Write,
    number: usize,
    line: &str,
    f: &Finding,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let obj = serde_json::json!({
            "line": number,
            "kind": f.kind.label(),
            "start": f.span.start,
            "end": f.span.end,
            "score": f.score,
        });
        writeln!(out, "{obj}")?;
    } else {
        let text = f.text(line).unwrap_or_default();
        writeln!(
            out,
            "{number}:{}-{} {:<15} {:.2} {text:?}",
            f.span.start,
            f.span.end,
            f.kind.label(),
            f.score
        )?;
    }
    Ok(())
}

fn redact(args: &RedactArgs) -> anyhow::Result<()> {
    let operator = match (args.operator, &args.key) {
        (OperatorChoice::Mask, _) => Operator::Mask {
            ch: '*',
            keep_length: true,
        },
        (OperatorChoice::Placeholder, _) => Operator::Placeholder,
        (OperatorChoice::Hash, Some(key)) if !key.is_empty() => Operator::Hash {
            key: key.as_bytes().to_vec(),
            hex_len: 16,
        },
        (OperatorChoice::Hash, _) => {
            anyhow::bail!("--operator hash needs --key (or HEARTH_GUARD_KEY)")
        }
    };
    let scanner = Scanner::with_kinds(&args.kinds.0);
    let anonymizer = Anonymizer::new(operator);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for_each_line(&args.file, |number, line, ending| {
        let findings = scanner.scan(line);
        let redacted = anonymizer
            .anonymize(line, &findings, None)
            .with_context(|| format!("{}: line {number}", args.file))?;
        out.write_all(redacted.as_bytes())?;
        out.write_all(ending)?;
        Ok(())
    })?;
    out.flush()?;
    Ok(())
}
