//! `hearth compress --sweep`: parameters and bytes saved against perplexity lost, for
//! a list of ranks (or energies).
//!
//! Each chosen matrix is decomposed once; its factors up to the largest rank any sweep
//! point writes for it are kept in memory (at most the size of the dense matrices in
//! f32, since larger pairs are not written). Each point then writes a compressed file
//! to the temp directory, scores it against the source with [`crate::compare()`], and
//! deletes it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::compare::{compare, CompareConfig};
use crate::compress::{candidates, worth_it, write_factored, CompressOptions, Plan, RankChoice};
use crate::source::{GgufSource, TensorSource};
use crate::svd::svd;
use crate::Result;

/// One point of a sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    /// `rank 64` or `energy 0.9`.
    pub setting: String,
    /// Matrices written as pairs.
    pub factored: usize,
    /// Chosen matrices left dense (pair not smaller).
    pub kept_dense: usize,
    /// Mean rank of the factored matrices (0 when none).
    pub mean_rank: f64,
    /// Parameters of the compressed model.
    pub params: u64,
    /// Parameters saved against the source, as a percentage of its parameters.
    pub params_saved_pct: f64,
    /// Bytes of the compressed file.
    pub bytes: u64,
    /// Bytes saved against the source, as a percentage of its size.
    pub bytes_saved_pct: f64,
    /// Perplexity of the compressed model.
    pub ppl: f64,
    /// Perplexity change against the source, in percent.
    pub ppl_delta_pct: f64,
    /// Fraction of positions where both models' most likely token agrees.
    pub top1_agreement: f64,
}

/// Outcome of [`sweep`].
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    /// The source file.
    pub source: String,
    /// Its parameters.
    pub params: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its perplexity on the text.
    pub ppl: f64,
    /// Positions scored per model.
    pub scored_tokens: usize,
    /// The points, in the order given.
    pub points: Vec<SweepPoint>,
}

/// Progress of a sweep: (stage message, done, of total).
pub type SweepProgress<'a> = &'a mut dyn FnMut(&str, usize, usize);

/// Scores `points` (each with `opts`' targets and factor type) against the source at
/// `path` on `text`.
pub fn sweep(
    path: &Path,
    points: &[RankChoice],
    opts: &CompressOptions,
    text: &str,
    cfg: &CompareConfig,
    progress: SweepProgress<'_>,
) -> Result<SweepReport> {
    for p in points {
        CompressOptions {
            choice: *p,
            ..opts.clone()
        }
        .validate()?;
    }
    let src = GgufSource::open(path)?;
    let cands = candidates(&src, &opts.targets);
    if cands.is_empty() {
        return Err(crate::Error::InvalidArgument(format!(
            "{}: no tensor matches the targets (blk.N.attn_q.weight, ...)",
            path.display()
        )));
    }
    // Per candidate: its singular values and factors at the largest rank needed.
    let mut cached = Vec::with_capacity(cands.len());
    for (k, c) in cands.iter().enumerate() {
        let name = &src.tensors()[c.index].name;
        progress(&format!("decomposing {name}"), k, cands.len());
        let w = src.read_f32(c.index)?;
        let full = svd(name, &w, c.rows, c.cols, c.rows.min(c.cols))?;
        let ranks: Vec<Option<usize>> = points
            .iter()
            .map(|p| {
                let r = p.rank_for(&full.values, c.rows, c.cols, opts.dtype);
                worth_it(c, r, opts.force).then_some(r.min(c.rows.min(c.cols)))
            })
            .collect();
        let max = ranks.iter().flatten().copied().max().unwrap_or(0);
        let (a, b) = full.factors(max);
        let total: f64 = full.values.iter().map(|v| v * v).sum();
        let prefix: Vec<f64> = full
            .values
            .iter()
            .scan(0.0, |acc, v| {
                *acc += v * v;
                Some(*acc / total.max(f64::MIN_POSITIVE))
            })
            .collect();
        cached.push((ranks, a, b, max, prefix));
    }
    let tmp = temp_path(path);
    let mut out = Vec::with_capacity(points.len());
    let mut reference: Option<(f64, usize)> = None;
    for (pi, p) in points.iter().enumerate() {
        let ranks: Vec<Option<usize>> = cached.iter().map(|c| c.0[pi]).collect();
        let plan = Plan {
            cands: &cands,
            ranks: &ranks,
        };
        let popts = CompressOptions {
            choice: *p,
            ..opts.clone()
        };
        progress(&format!("writing {}", p.label()), pi, points.len());
        let bytes = write_factored(
            &src,
            &tmp,
            &plan,
            &popts,
            &mut |k, rank| {
                let (_, a, b, max, _) = &cached[k];
                let cols = cands[k].cols;
                let a = a[..rank * cols].to_vec();
                let b = b
                    .chunks_exact(*max)
                    .flat_map(|row| row[..rank].iter().copied())
                    .collect();
                Ok((a, b))
            },
            &mut |_, _, _, _, _| {},
        );
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let energies: Vec<f64> = cached
            .iter()
            .zip(&ranks)
            .map(|(c, r)| r.map_or(1.0, |r| c.4[r - 1]))
            .collect();
        let summary = plan.summary(&src, bytes, &energies);
        let label = p.label();
        let report = compare(path, &tmp, text, cfg, |done, total| {
            progress(&format!("scoring {label}"), done, total)
        });
        let _ = std::fs::remove_file(&tmp);
        let report = report?;
        reference.get_or_insert((report.reference.ppl, report.scored_tokens));
        let factored: Vec<usize> = ranks.iter().flatten().copied().collect();
        out.push(SweepPoint {
            setting: label,
            factored: factored.len(),
            kept_dense: ranks.len() - factored.len(),
            mean_rank: if factored.is_empty() {
                0.0
            } else {
                factored.iter().sum::<usize>() as f64 / factored.len() as f64
            },
            params: summary.params_after,
            params_saved_pct: pct(summary.params_before, summary.params_after),
            bytes,
            bytes_saved_pct: pct(summary.bytes_before, bytes),
            ppl: report.candidate.ppl,
            ppl_delta_pct: report.ppl_delta_pct,
            top1_agreement: report.top1_agreement,
        });
    }
    let (ppl, scored_tokens) = reference.unwrap_or((f64::NAN, 0));
    Ok(SweepReport {
        source: path.display().to_string(),
        params: src.tensors().iter().map(|t| t.n_elements()).sum(),
        bytes: src.file().file_len(),
        ppl,
        scored_tokens,
        points: out,
    })
}

fn pct(before: u64, after: u64) -> f64 {
    (before as f64 - after as f64) / before.max(1) as f64 * 100.0
}

fn temp_path(src: &Path) -> PathBuf {
    let stem = src
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    std::env::temp_dir().join(format!("{stem}.sweep.hearth-{}.gguf", std::process::id()))
}
