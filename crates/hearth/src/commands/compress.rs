//! `hearth compress`: projection matrices replaced by low-rank SVD factors, or a sweep
//! of ranks reporting parameters saved against perplexity lost (table and SVG plot).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use hearth_convert::{
    compress, parse_targets, sweep, CompareConfig, CompressOptions, CompressSummary, GgufSource,
    RankChoice, SweepReport,
};
use hearth_gguf::GgmlType;
use indicatif::{ProgressBar, ProgressStyle};

/// Flags of `hearth compress`.
#[derive(clap::Args, Debug)]
pub struct CompressArgs {
    /// The model to compress: a .gguf file or a short name.
    pub input: String,
    /// The GGUF file to write (not with --sweep). Only hearth runs it: llama.cpp has no
    /// low-rank tensor pairs.
    pub output: Option<PathBuf>,
    /// Keep this many singular values of every chosen matrix.
    #[arg(long, conflicts_with_all = ["energy", "sweep"])]
    pub rank: Option<usize>,
    /// Per matrix, the smallest rank keeping this fraction (0-1] of the squared
    /// singular values.
    #[arg(long, conflicts_with = "sweep")]
    pub energy: Option<f64>,
    /// Write nothing; score each of these ranks (16,32,64) or energies (0.5,0.9) on
    /// --text and report parameters saved against perplexity lost.
    #[arg(long, value_delimiter = ',', requires = "text")]
    pub sweep: Vec<String>,
    /// The projections to factor: q,k,v,o,gate,up,down, attn, mlp or all.
    #[arg(long, default_value = "attn")]
    pub targets: String,
    /// Type of the factors: q8_0 (ranks a multiple of 32; the fastest and smallest),
    /// f16 or f32.
    #[arg(long = "type", default_value = "q8_0")]
    pub dtype: String,
    /// Factor matrices even when the pair is not smaller than the matrix.
    #[arg(long)]
    pub force: bool,
    /// Write each product B·A back as a dense matrix of the weight's own type: a file
    /// llama.cpp and other runtimes load, with the approximation's quality but no
    /// smaller than the source.
    #[arg(long, conflicts_with = "sweep")]
    pub densify: bool,
    /// Afterwards, compare the result with the input on this text.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The text a --sweep scores.
    #[arg(long)]
    pub text: Option<PathBuf>,
    /// With --sweep, draw perplexity against parameters and bytes saved into this SVG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub compare: super::compare::CompareOptions,
}

fn factor_type(s: &str) -> anyhow::Result<GgmlType> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "f16" => GgmlType::F16,
        "f32" => GgmlType::F32,
        "q8_0" => GgmlType::Q8_0,
        other => bail!("factor type `{other}` is not one of f16, f32, q8_0"),
    })
}

/// `64` is a rank, `0.9` an energy.
fn parse_point(s: &str) -> anyhow::Result<RankChoice> {
    let s = s.trim();
    if let Ok(r) = s.parse::<usize>() {
        return Ok(RankChoice::Rank(r));
    }
    match s.parse::<f64>() {
        Ok(e) if e > 0.0 && e <= 1.0 => Ok(RankChoice::Energy(e)),
        _ => bail!("`{s}` is neither a rank (an integer) nor an energy in (0, 1]"),
    }
}

pub fn run(args: &CompressArgs) -> anyhow::Result<()> {
    let input = hearth_hub::resolve(&args.input, &super::pull::progress_bar())?;
    let mut opts = CompressOptions {
        choice: RankChoice::Rank(1),
        targets: parse_targets(&args.targets)?,
        dtype: factor_type(&args.dtype)?,
        force: args.force,
        densify: args.densify,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    if !args.sweep.is_empty() {
        if args.output.is_some() {
            bail!("--sweep writes no model: drop the output path");
        }
        let points = args
            .sweep
            .iter()
            .map(|s| parse_point(s))
            .collect::<anyhow::Result<Vec<_>>>()?;
        return run_sweep(&input, &points, &opts, args);
    }
    opts.choice = match (args.rank, args.energy) {
        (Some(r), None) => RankChoice::Rank(r),
        (None, Some(e)) => RankChoice::Energy(e),
        _ => bail!("give --rank R, --energy E or --sweep LIST"),
    };
    let Some(output) = &args.output else {
        bail!("give the GGUF file to write after the input");
    };
    let src = GgufSource::open(&input)?;
    let bar = bar();
    let summary = compress(&src, output, &opts, &mut |_, _, done, total, name| {
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message(name.to_string());
    })
    .with_context(|| format!("writing {}", output.display()))?;
    bar.finish_and_clear();
    if args.compare.json && args.report.is_none() {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(output, &summary, args.densify);
    }
    if let Some(text) = &args.report {
        super::compare::report(&input, output, text, &args.compare)?;
    }
    Ok(())
}

fn bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn print_summary(output: &Path, s: &CompressSummary, densified: bool) {
    println!("| matrices | shape (out × in) | factored | ranks (min / mean / max) | energy kept (mean) | kept dense |");
    println!("|---|---|---:|---|---:|---:|");
    let mut groups: BTreeMap<(String, usize, usize), Vec<_>> = BTreeMap::new();
    for t in &s.tensors {
        let stem = t.name.split('.').nth(2).unwrap_or(&t.name).to_string();
        groups.entry((stem, t.rows, t.cols)).or_default().push(t);
    }
    for ((stem, rows, cols), ts) in &groups {
        let ranks: Vec<usize> = ts.iter().filter_map(|t| t.rank).collect();
        let (lo, hi) = (ranks.iter().min(), ranks.iter().max());
        let range = match (lo, hi) {
            (Some(lo), Some(hi)) => format!(
                "{lo} / {:.1} / {hi}",
                ranks.iter().sum::<usize>() as f64 / ranks.len() as f64
            ),
            _ => "-".into(),
        };
        let energy = ts.iter().map(|t| t.energy_kept).sum::<f64>() / ts.len() as f64;
        println!(
            "| {stem} | {rows} × {cols} | {} | {range} | {energy:.4} | {} |",
            ranks.len(),
            ts.len() - ranks.len()
        );
    }
    if let Some(t) = s.tensors.iter().find(|t| t.rank.is_none()) {
        println!(
            "\nkept dense: a pair of rank ≥ in·out/(in+out) (= {:.1} for {}) is not smaller than the matrix",
            t.break_even(),
            t.name
        );
    }
    let note = if densified {
        "products written back dense: any GGUF runtime loads it"
    } else {
        "hearth only: llama.cpp cannot load low-rank pairs"
    };
    println!(
        "\nwrote {}: {} → {} parameters ({:+.2}%), {:.1} → {:.1} MB ({note})",
        output.display(),
        s.params_before,
        s.params_after,
        (s.params_after as f64 / s.params_before.max(1) as f64 - 1.0) * 100.0,
        s.bytes_before as f64 / 1e6,
        s.bytes_after as f64 / 1e6,
    );
}

fn run_sweep(
    input: &Path,
    points: &[RankChoice],
    opts: &CompressOptions,
    args: &CompressArgs,
) -> anyhow::Result<()> {
    let Some(text_path) = &args.text else {
        bail!("--sweep needs --text FILE to score");
    };
    let text = std::fs::read_to_string(text_path)
        .with_context(|| format!("{}: cannot read the text", text_path.display()))?;
    let cfg = CompareConfig {
        ctx: args.compare.ctx,
        max_tokens: args.compare.max_tokens,
    };
    let mut err = std::io::stderr();
    let report = sweep(
        input,
        points,
        opts,
        &text,
        &cfg,
        &mut |stage, done, total| {
            let _ = write!(err, "\r\x1b[2K[{done}/{total}] {stage}");
            let _ = err.flush();
        },
    )?;
    eprintln!();
    if let Some(path) = &args.plot {
        std::fs::write(path, svg(&report))
            .with_context(|| format!("writing the plot to {}", path.display()))?;
        eprintln!("plot written to {}", path.display());
    }
    if args.compare.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "source {}: {} parameters, {:.1} MB, perplexity {:.4} ({} tokens scored)\n",
        report.source,
        report.params,
        report.bytes as f64 / 1e6,
        report.ppl,
        report.scored_tokens
    );
    println!("| setting | factored | kept dense | mean rank | parameters | params saved | size (MB) | bytes saved | perplexity | Δ ppl | top-1 agree |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in &report.points {
        println!(
            "| {} | {} | {} | {:.1} | {} | {:.1}% | {:.1} | {:.1}% | {:.4} | {:+.2}% | {:.1}% |",
            p.setting,
            p.factored,
            p.kept_dense,
            p.mean_rank,
            p.params,
            p.params_saved_pct,
            p.bytes as f64 / 1e6,
            p.bytes_saved_pct,
            p.ppl,
            p.ppl_delta_pct,
            p.top1_agreement * 100.0
        );
    }
    Ok(())
}

/// Perplexity (log scale, the source's as a dashed line) against parameters saved
/// and against bytes saved (%), one point per sweep setting, labelled on the first.
fn svg(r: &SweepReport) -> String {
    let (w, h, pad) = (640.0, 380.0, 60.0);
    let xs = |f: fn(&hearth_convert::SweepPoint) -> f64| r.points.iter().map(f).collect::<Vec<_>>();
    let series = [
        ("parameters saved", "#1f77b4", xs(|p| p.params_saved_pct)),
        ("bytes saved", "#d62728", xs(|p| p.bytes_saved_pct)),
    ];
    let all_x = series.iter().flat_map(|s| s.2.iter().copied());
    let xmin = all_x.clone().fold(0f64, f64::min).floor();
    let xmax = all_x.fold(1f64, f64::max).ceil();
    let logs = r.points.iter().map(|p| p.ppl).chain([r.ppl]);
    let logs: Vec<f64> = logs
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(f64::log10)
        .collect();
    let ymin = logs
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .floor()
        .min(0.0);
    let ymax = logs
        .iter()
        .copied()
        .fold(1f64, f64::max)
        .ceil()
        .max(ymin + 1.0);
    let px = |x: f64| pad + (x - xmin) / (xmax - xmin) * (w - 2.0 * pad);
    let py = |ppl: f64| {
        let y = ppl.max(f64::MIN_POSITIVE).log10().clamp(ymin, ymax);
        h - pad - (y - ymin) / (ymax - ymin) * (h - 2.0 * pad)
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11"><text x="{}" y="18" text-anchor="middle" font-size="13">{}: perplexity against size saved</text><line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{}" stroke="black"/><text x="{}" y="{}" text-anchor="middle">% saved against the source</text><text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">perplexity (log scale)</text><text x="{pad}" y="{}" text-anchor="middle">{xmin:.0}</text><text x="{}" y="{}" text-anchor="middle">{xmax:.0}</text>"#,
        w / 2.0,
        xml_escape(r.source.rsplit('/').next().unwrap_or(&r.source)),
        h - pad,
        w - pad,
        h - pad,
        h - pad,
        w / 2.0,
        h - 14.0,
        h / 2.0,
        h / 2.0,
        h - pad + 14.0,
        w - pad,
        h - pad + 14.0,
    );
    for e in ymin as i32..=ymax as i32 {
        let y = py(10f64.powi(e));
        let _ = write!(
            s,
            r##"<text x="{}" y="{:.1}" text-anchor="end">{}</text><line x1="{pad}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#dddddd"/>"##,
            pad - 4.0,
            y + 4.0,
            10f64.powi(e),
            w - pad
        );
    }
    let y = py(r.ppl);
    let _ = write!(
        s,
        r##"<line x1="{pad}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#555555" stroke-dasharray="4 3"/><text x="{}" y="{:.1}" text-anchor="end" fill="#555555">source {:.2}</text>"##,
        w - pad,
        w - pad,
        y - 4.0,
        r.ppl
    );
    for (k, (name, color, x)) in series.iter().enumerate() {
        let mut order: Vec<usize> = (0..x.len()).collect();
        order.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
        let pts: Vec<String> = order
            .iter()
            .map(|&i| format!("{:.1},{:.1}", px(x[i]), py(r.points[i].ppl)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/><text x="{}" y="{}" fill="{color}">{name}</text>"#,
            pts.join(" "),
            pad + 8.0,
            pad + 12.0 + 14.0 * k as f64
        );
        for (&x, p) in x.iter().zip(&r.points) {
            let (cx, cy) = (px(x), py(p.ppl));
            let _ = write!(
                s,
                r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="3" fill="{color}"/>"#
            );
            if k == 0 {
                let _ = write!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" fill="{color}">{}</text>"#,
                    cx + 5.0,
                    cy - 5.0,
                    xml_escape(&p.setting)
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_points_parse_as_ranks_or_energies() {
        assert_eq!(parse_point("64").unwrap(), RankChoice::Rank(64));
        assert_eq!(parse_point(" 0.9").unwrap(), RankChoice::Energy(0.9));
        assert!(parse_point("1.5").is_err());
        assert!(parse_point("x").is_err());
    }

    #[test]
    fn plot_has_a_point_per_setting_in_each_series() {
        let point = |setting: &str, saved: f64, delta: f64| hearth_convert::SweepPoint {
            setting: setting.into(),
            factored: 4,
            kept_dense: 0,
            mean_rank: 8.0,
            params: 100,
            params_saved_pct: saved,
            bytes: 100,
            bytes_saved_pct: saved / 2.0,
            ppl: 10.0,
            ppl_delta_pct: delta,
            top1_agreement: 0.9,
        };
        let r = SweepReport {
            source: "/m/a<b>.gguf".into(),
            params: 1000,
            bytes: 1000,
            ppl: 9.0,
            scored_tokens: 10,
            points: vec![point("rank 16", 30.0, 50.0), point("rank 64", 10.0, 5.0)],
        };
        let s = svg(&r);
        assert_eq!(s.matches("<polyline").count(), 2);
        assert_eq!(s.matches("<circle").count(), 4);
        assert!(s.contains("rank 16") && s.contains("a&lt;b&gt;.gguf"));
    }
}
