//! A projection weight of a block: one dense matrix `W`, or a low-rank pair written by
//! `hearth compress` that stands for `W ≈ B·A` and is applied as `y = B (A x)`, two
//! products through the same kernels (the pair is never multiplied back together).
//!
//! A pair replaces the tensor `blk.N.attn_q.weight` by `blk.N.attn_q.weight.lowrank_a`
//! (`A`, rank × in: ggml dims `[in, rank]`) and `blk.N.attn_q.weight.lowrank_b` (`B`,
//! out × rank: ggml dims `[rank, out]`).

use std::sync::Arc;

use hearth_gguf::GgufFile;

use crate::qmatmul::{self, QMatrix};
use crate::{Error, Result};

/// Suffix of the first factor (`A`, applied to the input) of a low-rank pair.
pub const LOW_RANK_A: &str = "lowrank_a";
/// Suffix of the second factor (`B`, producing the output) of a low-rank pair.
pub const LOW_RANK_B: &str = "lowrank_b";

/// The names of the factors `(A, B)` that replace the weight `name`.
pub fn low_rank_names(name: &str) -> (String, String) {
    (
        format!("{name}.{LOW_RANK_A}"),
        format!("{name}.{LOW_RANK_B}"),
    )
}

/// A weight applied to activations: dense, or as two thin factors.
#[derive(Clone, Debug)]
pub(crate) enum Linear {
    Dense(QMatrix),
    LowRank { a: QMatrix, b: QMatrix },
}

impl Linear {
    /// The weight `name` of `rows` outputs by `cols` inputs: the tensor itself, or its
    /// low-rank pair when the file has that instead.
    pub fn load(file: &Arc<GgufFile>, name: &str, rows: usize, cols: usize) -> Result<Self> {
        if let Some(info) = file.tensor(name) {
            return Ok(Linear::Dense(QMatrix::new(file, info, rows, cols)?));
        }
        let (an, bn) = low_rank_names(name);
        let missing = || Error::MissingTensor {
            path: file.path().to_path_buf(),
            tensor: name.to_string(),
        };
        let (Some(a), Some(b)) = (file.tensor(&an), file.tensor(&bn)) else {
            return Err(missing());
        };
        let rank = a.dims.get(1).copied().unwrap_or(0) as usize;
        if rank == 0 || a.dims.len() != 2 {
            return Err(Error::BadTensor {
                path: file.path().to_path_buf(),
                tensor: an,
                what: format!("shape {:?} is not a 2-D factor of rank 1 or more", a.dims),
            });
        }
        Ok(Linear::LowRank {
            a: QMatrix::new(file, a, rank, cols)?,
            b: QMatrix::new(file, b, rows, rank)?,
        })
    }

    /// Input dimension.
    pub fn cols(&self) -> usize {
        match self {
            Linear::Dense(m) => m.cols(),
            Linear::LowRank { a, .. } => a.cols(),
        }
    }

    /// Bytes of weight data read per product.
    pub fn n_bytes(&self) -> u64 {
        match self {
            Linear::Dense(m) => m.n_bytes(),
            Linear::LowRank { a, b } => a.n_bytes() + b.n_bytes(),
        }
    }

    /// `out = x · Wᵀ` for `x.len() / cols` input rows.
    pub fn matmul(&self, x: &[f32], out: &mut [f32]) {
        matmul_many(&mut [(self, out)], x);
    }
}

/// Several weights with the same input width applied to the same rows `x`: the dense
/// matrices and the first factors of the pairs go through one
/// [`qmatmul::matmul_many`] pass, then each pair's second factor.
///
/// # Panics
/// If the weights differ in input width or an output has the wrong length.
pub(crate) fn matmul_many(jobs: &mut [(&Linear, &mut [f32])], x: &[f32]) {
    let Some(cols) = jobs.first().map(|(l, _)| l.cols()) else {
        return;
    };
    let n = x.len() / cols;
    let mut mids: Vec<Vec<f32>> = jobs
        .iter()
        .map(|(l, _)| match l {
            Linear::Dense(_) => Vec::new(),
            Linear::LowRank { a, .. } => vec![0.0; n * a.rows()],
        })
        .collect();
    {
        let mut first: Vec<(&QMatrix, &mut [f32])> = jobs
            .iter_mut()
            .zip(mids.iter_mut())
            .map(|((l, out), mid)| match l {
                Linear::Dense(m) => (m, &mut **out),
                Linear::LowRank { a, .. } => (a, &mut mid[..]),
            })
            .collect();
        qmatmul::matmul_many(&mut first, x);
    }
    for ((l, out), mid) in jobs.iter_mut().zip(&mids) {
        if let Linear::LowRank { b, .. } = l {
            b.matmul(mid, out);
        }
    }
}
