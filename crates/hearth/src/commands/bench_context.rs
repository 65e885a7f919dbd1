//! `hearth bench --context 512,...,8192`: prefill time and KV cache memory per prompt
//! length, split between full-attention and sliding-window layers, so the cost of long
//! context (and what the window saves) is visible; `--plot FILE.svg` draws both.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use hearth_engine::bench::{self, ContextPoint};
use hearth_model::Transformer;

const MB: f64 = 1024.0 * 1024.0;

/// Runs the sweep and prints the table (or JSON), writing the plot when asked.
pub fn run(
    model: &Transformer,
    lengths: &[usize],
    plot: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let ctx = model.config().context_length;
    if let Some(&n) = lengths.iter().find(|&&n| n == 0 || n > ctx) {
        anyhow::bail!("--context {n}: lengths must be between 1 and the model's context ({ctx})");
    }
    let mut points = Vec::with_capacity(lengths.len());
    for &n in lengths {
        eprintln!("context {n}: prefilling");
        points.push(bench::context_point(model, n)?);
    }
    if let Some(path) = plot {
        std::fs::write(path, svg(&points, model.config().sliding_window()))
            .with_context(|| format!("writing the plot to {}", path.display()))?;
        eprintln!("plot written to {}", path.display());
    }
    if json {
        let rows: Vec<serde_json::Value> = points
            .iter()
            .map(|p| {
                serde_json::json!({
                    "tokens": p.tokens,
                    "prefill_seconds": p.seconds,
                    "prefill_tok_s": p.tokens as f64 / p.seconds,
                    "kv_global_bytes": p.kv_global_bytes,
                    "kv_window_bytes": p.kv_window_bytes,
                    "kv_all_global_bytes": p.kv_all_global_bytes,
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "context": rows }));
        return Ok(());
    }
    let cfg = model.config();
    let windowed = cfg.layers.iter().filter(|l| l.window.is_some()).count();
    println!(
        "{} layers: {} full attention, {} sliding window{}",
        cfg.n_layers(),
        cfg.n_layers() - windowed,
        windowed,
        cfg.sliding_window()
            .map_or(String::new(), |w| format!(" ({w} positions)"))
    );
    println!(
        "{:>8} {:>10} {:>9} {:>14} {:>14} {:>11} {:>16}",
        "tokens", "prefill s", "tok/s", "KV global MB", "KV window MB", "KV MB", "all-global KV MB"
    );
    for p in &points {
        println!(
            "{:>8} {:>10.2} {:>9.1} {:>14.1} {:>14.1} {:>11.1} {:>16.1}",
            p.tokens,
            p.seconds,
            p.tokens as f64 / p.seconds,
            p.kv_global_bytes as f64 / MB,
            p.kv_window_bytes as f64 / MB,
            (p.kv_global_bytes + p.kv_window_bytes) as f64 / MB,
            p.kv_all_global_bytes as f64 / MB,
        );
    }
    Ok(())
}

/// Two side-by-side line charts: prefill seconds, and KV MB (global layers, window
/// layers, and all layers global) against prompt length.
fn svg(points: &[ContextPoint], window: Option<usize>) -> String {
    let (w, h, pad) = (360.0, 260.0, 48.0);
    let xmax = points.iter().map(|p| p.tokens).max().unwrap_or(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{h}" font-family="sans-serif" font-size="11">"#,
        2.0 * w
    );
    let series_time = [(
        "prefill seconds",
        "#1f77b4",
        points.iter().map(|p| p.seconds).collect::<Vec<_>>(),
    )];
    let kv =
        |f: fn(&ContextPoint) -> usize| points.iter().map(|p| f(p) as f64 / MB).collect::<Vec<_>>();
    let series_kv = [
        (
            "KV, full-attention layers",
            "#d62728",
            kv(|p| p.kv_global_bytes),
        ),
        (
            "KV, sliding-window layers",
            "#2ca02c",
            kv(|p| p.kv_window_bytes),
        ),
        (
            "KV if every layer were global",
            "#7f7f7f",
            kv(|p| p.kv_all_global_bytes),
        ),
    ];
    let title_kv = match window {
        Some(w) => format!("KV cache MB (window {w})"),
        None => "KV cache MB".to_string(),
    };
    for (i, (title, series)) in [
        ("prefill seconds", &series_time[..]),
        (title_kv.as_str(), &series_kv[..]),
    ]
    .into_iter()
    .enumerate()
    {
        let x0 = i as f64 * w;
        let ymax = series
            .iter()
            .flat_map(|(_, _, v)| v.iter().copied())
            .fold(0f64, f64::max)
            .max(1e-9);
        let px = |t: usize| x0 + pad + (t as f64 / xmax) * (w - 2.0 * pad);
        let py = |v: f64| h - pad - (v / ymax) * (h - 2.0 * pad);
        let _ = write!(
            s,
            r#"<text x="{}" y="16" text-anchor="middle" font-size="13">{title}</text><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="black"/><text x="{}" y="{}" text-anchor="middle">prompt tokens</text><text x="{}" y="{}" text-anchor="end">{ymax:.1}</text><text x="{}" y="{}" text-anchor="end">0</text>"#,
            x0 + w / 2.0,
            x0 + pad,
            h - pad,
            x0 + w - pad,
            h - pad,
            x0 + pad,
            pad,
            x0 + pad,
            h - pad,
            x0 + w / 2.0,
            h - 10.0,
            x0 + pad - 4.0,
            pad + 4.0,
            x0 + pad - 4.0,
            h - pad,
        );
        for p in points {
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
                px(p.tokens),
                h - pad + 14.0,
                p.tokens
            );
        }
        for (k, (name, color, v)) in series.iter().enumerate() {
            let pts: Vec<String> = points
                .iter()
                .zip(v)
                .map(|(p, &y)| format!("{:.1},{:.1}", px(p.tokens), py(y)))
                .collect();
            let _ = write!(
                s,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/><text x="{}" y="{}" fill="{color}">{name}</text>"#,
                pts.join(" "),
                x0 + pad + 6.0,
                pad + 12.0 + 14.0 * k as f64
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_has_a_line_per_series_through_every_point() {
        let points: Vec<ContextPoint> = [512, 1024, 2048]
            .iter()
            .map(|&n| ContextPoint {
                tokens: n,
                seconds: n as f64 / 100.0,
                kv_global_bytes: n * 1000,
                kv_window_bytes: 512 * 1000,
                kv_all_global_bytes: n * 4000,
            })
            .collect();
        let s = svg(&points, Some(512));
        assert_eq!(s.matches("<polyline").count(), 4);
        assert!(s.contains("window 512"));
        for line in s.split("<polyline").skip(1) {
            let pts = line
                .split("points=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            assert_eq!(pts.split(' ').count(), 3, "{pts}");
        }
    }
}
