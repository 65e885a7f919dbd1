//! `hearth compress`: chosen projection matrices replaced by low-rank pairs.
//!
//! Each chosen weight `W` (out × in, any type we load) is decoded to f32 and
//! decomposed by SVD ([`crate::svd`]); its top `rank` singular triplets become two thin
//! factors `A = √Σ·Vᵀ` (rank × in) and `B = U·√Σ` (out × rank), written instead of `W`
//! under the names [`hearth_model::low_rank_names`] gives; hearth-model applies them as
//! `y = B (A x)`. A matrix whose factors would not be smaller than `W` (rank ≥
//! in·out/(in+out)) keeps its dense form. Everything else is copied byte for byte. The
//! output streams one tensor at a time; `--energy` first reads every chosen matrix
//! once to rank it by its singular values. llama.cpp has no such tensor pairs and
//! cannot load these files.

use std::collections::BTreeMap;
use std::path::Path;

use hearth_gguf::{GgmlType, GgufWriter, TensorSpec, Value};
use hearth_lineage::METADATA_KEY;
use hearth_model::lora::Proj;
use rayon::prelude::*;
use serde::Serialize;

use crate::source::{GgufSource, TensorSource};
use crate::svd::{rank_for_energy, singular_values, svd};
use crate::write_gguf::{provenance_of, ProgressFn};
use crate::{codec, Error, Result};

/// Prefix of the metadata keys that record each factored tensor's rank
/// (`hearth.low_rank.blk.0.attn_q.weight` → 64).
pub const RANK_KEY_PREFIX: &str = "hearth.low_rank.";

/// How the rank of each matrix is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RankChoice {
    /// The same rank for every matrix.
    Rank(usize),
    /// Per matrix, the smallest rank keeping this fraction of the squared singular
    /// values (0 < energy ≤ 1).
    Energy(f64),
}

impl RankChoice {
    /// Checks the value against the factor type (Q8_0 rows come in blocks of 32).
    pub fn validate(self, dtype: GgmlType) -> Result<()> {
        match self {
            RankChoice::Rank(0) => Err(Error::InvalidArgument(
                "rank 0 keeps nothing: give a rank of 1 or more".into(),
            )),
            RankChoice::Rank(r) if dtype == GgmlType::Q8_0 && !r.is_multiple_of(32) => {
                Err(Error::InvalidArgument(format!(
                    "rank {r} is not a multiple of 32, the row block of Q8_0 factors \
                     (choose another rank or --type f16)"
                )))
            }
            RankChoice::Energy(e) if !(e > 0.0 && e <= 1.0) => {
                Err(Error::InvalidArgument(format!(
                    "energy {e} must be in (0, 1]: the fraction of squared singular values kept"
                )))
            }
            _ => Ok(()),
        }
    }

    /// `rank 64` or `energy 0.9`.
    pub fn label(self) -> String {
        match self {
            RankChoice::Rank(r) => format!("rank {r}"),
            RankChoice::Energy(e) => format!("energy {e}"),
        }
    }

    /// The rank for a matrix of `rows` × `cols` with these singular values
    /// (`values` only read for an energy), rounded up to the factor type's block.
    pub fn rank_for(self, values: &[f64], rows: usize, cols: usize, dtype: GgmlType) -> usize {
        let m = rows.min(cols);
        match self {
            RankChoice::Rank(r) => r.min(m),
            RankChoice::Energy(e) => {
                let r = rank_for_energy(values, e);
                let block = if dtype == GgmlType::Q8_0 { 32 } else { 1 };
                r.div_ceil(block) * block
            }
        }
    }
}

/// Parses `q,k,v,o,gate,up,down`, `attn`, `mlp` or `all` (combinable with commas).
pub fn parse_targets(s: &str) -> Result<Vec<Proj>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let add: &[Proj] = match part {
            "q" => &[Proj::Q],
            "k" => &[Proj::K],
            "v" => &[Proj::V],
            "o" => &[Proj::O],
            "gate" => &[Proj::Gate],
            "up" => &[Proj::Up],
            "down" => &[Proj::Down],
            "attn" => &[Proj::Q, Proj::K, Proj::V, Proj::O],
            "mlp" => &[Proj::Gate, Proj::Up, Proj::Down],
            "all" => &Proj::ALL,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown target `{other}` in `{s}`: use q, k, v, o, gate, up, down, attn, mlp or all"
                )))
            }
        };
        for p in add {
            if !out.contains(p) {
                out.push(*p);
            }
        }
    }
    Ok(out)
}

/// Settings of [`compress`].
#[derive(Debug, Clone)]
pub struct CompressOptions {
    /// How ranks are chosen.
    pub choice: RankChoice,
    /// The projections to factor.
    pub targets: Vec<Proj>,
    /// Type of the factors: F32, F16 or Q8_0.
    pub dtype: GgmlType,
    /// Factor even matrices whose pair is not smaller than the matrix (tests).
    pub force: bool,
    /// Write each product `B·A` back as a dense matrix of the weight's own type (a
    /// file other runtimes load, with the low-rank approximation's quality and the
    /// source's size).
    pub densify: bool,
    /// Tool version for the provenance record.
    pub tool_version: String,
}

impl CompressOptions {
    /// Checks the options before any work.
    pub fn validate(&self) -> Result<()> {
        if !matches!(self.dtype, GgmlType::F32 | GgmlType::F16 | GgmlType::Q8_0) {
            return Err(Error::InvalidArgument(format!(
                "factor type {} is not one of f32, f16, q8_0",
                self.dtype
            )));
        }
        if self.targets.is_empty() {
            return Err(Error::InvalidArgument("no target matrices chosen".into()));
        }
        self.choice.validate(self.factor_type())
    }

    /// The type the factors are stored in (F32 while densifying: they are not
    /// written).
    pub fn factor_type(&self) -> GgmlType {
        if self.densify {
            GgmlType::F32
        } else {
            self.dtype
        }
    }
}

/// What happened to one chosen matrix.
#[derive(Debug, Clone, Serialize)]
pub struct FactoredTensor {
    /// GGUF name of the dense weight.
    pub name: String,
    /// Output dimension.
    pub rows: usize,
    /// Input dimension.
    pub cols: usize,
    /// The rank written, or `None` when the matrix stayed dense.
    pub rank: Option<usize>,
    /// Fraction of the squared singular values the written rank keeps (1 when dense).
    pub energy_kept: f64,
}

impl FactoredTensor {
    /// The rank from which a pair is no smaller than the matrix.
    pub fn break_even(&self) -> f64 {
        (self.rows * self.cols) as f64 / (self.rows + self.cols) as f64
    }
}

/// Outcome of [`compress`].
#[derive(Debug, Clone, Serialize)]
pub struct CompressSummary {
    /// Every chosen matrix, factored or kept.
    pub tensors: Vec<FactoredTensor>,
    /// Parameters of the source.
    pub params_before: u64,
    /// Parameters of the output.
    pub params_after: u64,
    /// Bytes of the source file.
    pub bytes_before: u64,
    /// Bytes of the output file.
    pub bytes_after: u64,
}

/// One chosen matrix of the source: its index and shape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub index: usize,
    pub rows: usize,
    pub cols: usize,
}

/// The source's tensors that `targets` chooses (`blk.N.<stem>.weight`, 2-D).
pub(crate) fn candidates(src: &GgufSource, targets: &[Proj]) -> Vec<Candidate> {
    src.tensors()
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            t.dims.len() == 2
                && t.name.starts_with("blk.")
                && targets
                    .iter()
                    .any(|p| t.name.ends_with(&format!(".{}.weight", p.gguf())))
        })
        .map(|(index, t)| Candidate {
            index,
            cols: t.dims[0] as usize,
            rows: t.dims[1] as usize,
        })
        .collect()
}

/// Whether a pair of rank `rank` is worth writing for this matrix.
pub(crate) fn worth_it(c: &Candidate, rank: usize, force: bool) -> bool {
    force || rank * (c.rows + c.cols) < c.rows * c.cols
}

/// Writes `src` with the chosen matrices factored to `out`.
pub fn compress(
    src: &GgufSource,
    out: &Path,
    opts: &CompressOptions,
    progress: ProgressFn<'_>,
) -> Result<CompressSummary> {
    opts.validate()?;
    let cands = candidates(src, &opts.targets);
    if cands.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{}: no tensor matches the targets (blk.N.attn_q.weight, ...)",
            src.path().display()
        )));
    }
    // Ranks first: the header names every tensor's shape before any data.
    let mut ranks = Vec::with_capacity(cands.len());
    for (k, c) in cands.iter().enumerate() {
        let name = &src.tensors()[c.index].name;
        let values = match opts.choice {
            RankChoice::Rank(_) => Vec::new(),
            RankChoice::Energy(_) => {
                progress(k, cands.len(), 0, 0, &format!("ranking {name}"));
                singular_values(name, &src.read_f32(c.index)?, c.rows, c.cols)?
            }
        };
        let r = opts
            .choice
            .rank_for(&values, c.rows, c.cols, opts.factor_type());
        ranks.push(worth_it(c, r, opts.force).then_some(r.min(c.rows.min(c.cols))));
    }
    let plan = Plan {
        cands: &cands,
        ranks: &ranks,
    };
    let mut energies = vec![1.0; cands.len()];
    let summary = write_factored(
        src,
        out,
        &plan,
        opts,
        &mut |k, rank| {
            let c = &cands[k];
            let name = &src.tensors()[c.index].name;
            let s = svd(name, &src.read_f32(c.index)?, c.rows, c.cols, rank)?;
            let kept: f64 = s.values[..rank].iter().map(|v| v * v).sum();
            let total: f64 = s.values.iter().map(|v| v * v).sum();
            energies[k] = if total > 0.0 { kept / total } else { 1.0 };
            Ok(s.factors(rank))
        },
        progress,
    )?;
    let mut summary = plan.summary(src, summary, &energies);
    if opts.densify {
        summary.params_after = summary.params_before;
    }
    Ok(summary)
}

/// Which candidates get which rank.
pub(crate) struct Plan<'a> {
    pub cands: &'a [Candidate],
    pub ranks: &'a [Option<usize>],
}

impl Plan<'_> {
    /// The plan's entry for source tensor `i`: (candidate index, rank) when factored.
    fn factored(&self, i: usize) -> Option<(usize, usize)> {
        let k = self.cands.iter().position(|c| c.index == i)?;
        self.ranks[k].map(|r| (k, r))
    }

    pub(crate) fn summary(
        &self,
        src: &GgufSource,
        bytes_after: u64,
        energies: &[f64],
    ) -> CompressSummary {
        let params_before: u64 = src.tensors().iter().map(|t| t.n_elements()).sum();
        let mut saved = 0u64;
        let tensors = self
            .cands
            .iter()
            .zip(self.ranks)
            .zip(energies)
            .map(|((c, r), &e)| {
                let dense = (c.rows * c.cols) as u64;
                saved += r.map_or(0, |r| dense.saturating_sub((r * (c.rows + c.cols)) as u64));
                FactoredTensor {
                    name: src.tensors()[c.index].name.clone(),
                    rows: c.rows,
                    cols: c.cols,
                    rank: *r,
                    energy_kept: if r.is_some() { e } else { 1.0 },
                }
            })
            .collect();
        let forced: u64 = self
            .cands
            .iter()
            .zip(self.ranks)
            .filter_map(|(c, r)| {
                r.map(|r| ((r * (c.rows + c.cols)) as u64).saturating_sub((c.rows * c.cols) as u64))
            })
            .sum();
        CompressSummary {
            tensors,
            params_before,
            params_after: params_before - saved + forced,
            bytes_before: src.file().file_len(),
            bytes_after,
        }
    }
}

/// The factors `(A, B)` of candidate `k` at `rank`, row-major f32.
pub(crate) type FactorFn<'a> = &'a mut dyn FnMut(usize, usize) -> Result<(Vec<f32>, Vec<f32>)>;

/// Writes `src` to `out` with the plan's matrices replaced by the pairs `factors`
/// gives; returns the output's size in bytes.
pub(crate) fn write_factored(
    src: &GgufSource,
    out: &Path,
    plan: &Plan<'_>,
    opts: &CompressOptions,
    factors: FactorFn<'_>,
    progress: ProgressFn<'_>,
) -> Result<u64> {
    let mut metadata = src.metadata()?;
    let mut parameters = BTreeMap::from([("targets".to_string(), targets_label(&opts.targets))]);
    if opts.densify {
        parameters.insert("densify".into(), "true".into());
    } else {
        parameters.insert("type".into(), opts.dtype.name().to_string());
    }
    match opts.choice {
        RankChoice::Rank(r) => parameters.insert("rank".into(), r.to_string()),
        RankChoice::Energy(e) => parameters.insert("energy".into(), e.to_string()),
    };
    let provenance = provenance_of(src, &metadata, "compress", parameters, &opts.tool_version)?;
    metadata.retain(|(k, _)| k != METADATA_KEY && !k.starts_with(RANK_KEY_PREFIX));
    let mut w = GgufWriter::new();
    for (k, v) in metadata {
        w.metadata(k, v);
    }
    w.metadata(METADATA_KEY, Value::String(provenance.to_json()));
    // (source index, which part: 0 dense, 1 A, 2 B) per written tensor.
    let mut parts = Vec::new();
    let mut specs = Vec::new();
    for (i, t) in src.tensors().iter().enumerate() {
        match plan.factored(i) {
            None => {
                parts.push((i, 0u8));
                specs.push(TensorSpec {
                    name: t.name.clone(),
                    dims: t.dims.clone(),
                    dtype: t.dtype,
                });
            }
            Some((_, rank)) => {
                w.metadata(
                    format!("{RANK_KEY_PREFIX}{}", t.name),
                    Value::U32(rank as u32),
                );
                if opts.densify {
                    parts.push((i, 3u8));
                    specs.push(TensorSpec {
                        name: t.name.clone(),
                        dims: t.dims.clone(),
                        dtype: t.dtype,
                    });
                    continue;
                }
                let (an, bn) = hearth_model::low_rank_names(&t.name);
                parts.extend([(i, 1u8), (i, 2u8)]);
                specs.push(TensorSpec {
                    name: an,
                    dims: vec![t.dims[0], rank as u64],
                    dtype: opts.dtype,
                });
                specs.push(TensorSpec {
                    name: bn,
                    dims: vec![rank as u64, t.dims[1]],
                    dtype: opts.dtype,
                });
            }
        }
    }
    let total: u64 = src.tensors().iter().map(|t| t.n_elements() * 4).sum();
    let mut done = 0u64;
    let mut pending_b: Option<Vec<f32>> = None;
    w.write_streamed::<Error>(out, &specs, |j, spec| {
        let (i, part) = parts[j];
        let t = &src.tensors()[i];
        let data = match (part, plan.factored(i)) {
            (1, Some((k, rank))) => {
                let (a, b) = factors(k, rank)?;
                pending_b = Some(b);
                codec::encode(&spec.name, spec.dtype, &a, t.dims[0] as usize)?
            }
            (2, Some((_, rank))) => {
                let b = pending_b.take().unwrap_or_default();
                codec::encode(&spec.name, spec.dtype, &b, rank)?
            }
            (3, Some((k, rank))) => {
                let (a, b) = factors(k, rank)?;
                let w = product(&b, &a, rank, t.dims[0] as usize);
                codec::encode(&spec.name, spec.dtype, &w, t.dims[0] as usize)?
            }
            _ => src.raw(i).map(<[u8]>::to_vec).ok_or_else(|| {
                Error::format(src.path(), format!("tensor `{}` unreadable", t.name))
            })?,
        };
        if part != 1 {
            done += t.n_elements() * 4;
            progress(j + 1, specs.len(), done, total, &t.name);
        }
        Ok(data)
    })?;
    Ok(std::fs::metadata(out).map_err(Error::io(out))?.len())
}

/// `B·A` for `b` (rows × rank) and `a` (rank × cols), row-major.
fn product(b: &[f32], a: &[f32], rank: usize, cols: usize) -> Vec<f32> {
    let mut w = vec![0f32; b.len() / rank.max(1) * cols];
    w.par_chunks_mut(cols)
        .zip(b.par_chunks(rank))
        .for_each(|(row, br)| {
            for (&bk, ak) in br.iter().zip(a.chunks_exact(cols)) {
                row.iter_mut().zip(ak).for_each(|(x, &y)| *x += bk * y);
            }
        });
    w
}

/// `attn_q,attn_k` for the provenance record.
fn targets_label(targets: &[Proj]) -> String {
    targets
        .iter()
        .map(|p| p.gguf())
        .collect::<Vec<_>>()
        .join(",")
}
