//! Matrix products against weights stored in ggml block formats, read straight from
//! the memory map. Activations are quantized to the weight type's dot-product format
//! (Q8_0, Q8_1 or Q8_K) as ggml does, so results match llama.cpp's numerics.
//!
//! This is the seam a faster kernel replaces; the block formats and most dot products
//! come from candle's `k_quants`. Q4_1 and Q5_0 weights, for which candle has only
//! scalar code, go through `hearth_kernels::quant`'s SIMD dot products instead.

use std::sync::Arc;

use candle_core::quantized::k_quants::{
    BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K,
    BlockQ8K, BlockQ8_0, BlockQ8_1, GgmlType as Block,
};
use half::{bf16, f16};
use hearth_gguf::{GgmlType, GgufFile, TensorInfo};
use hearth_kernels::quant::packed::{self, PackedKind, PackedMatrix};
use hearth_kernels::quant::{self, QuantBlock};
use rayon::prelude::*;

use crate::{act_quant, Error, Result};

/// A 2-D weight `[rows, cols]` (ggml dims `[cols, rows]`) in the memory map.
#[derive(Clone)]
pub struct QMatrix {
    file: Arc<GgufFile>,
    info: TensorInfo,
    rows: usize,
    cols: usize,
    /// Q5_0 or Q4_1 weights repacked sixteen rows side by side, where the CPU has
    /// the kernel (AVX-512 VNNI); the mapped bytes are then only read for
    /// [`QMatrix::row`].
    packed: Option<Arc<PackedMatrix>>,
}

impl std::fmt::Debug for QMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "QMatrix({} {}x{} {})",
            self.info.name, self.rows, self.cols, self.info.dtype
        )
    }
}

/// Raw pointer that rayon tasks may share to write disjoint elements.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: every task writes a disjoint set of indices, and the buffer outlives the scope.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// Element `i` (a method, so closures capture the whole `Send` wrapper).
    ///
    /// SAFETY: the caller keeps `i` in bounds and writes each index from one task only.
    unsafe fn write(self, i: usize, v: f32) {
        *self.0.add(i) = v;
    }
}

macro_rules! dispatch {
    ($dtype:expr, $f:ident, $($args:expr),*) => {
        match $dtype {
            GgmlType::F32 => $f::<f32>($($args),*),
            GgmlType::F16 => $f::<f16>($($args),*),
            GgmlType::BF16 => $f::<bf16>($($args),*),
            GgmlType::Q4_0 => $f::<BlockQ4_0>($($args),*),
            GgmlType::Q4_1 => $f::<BlockQ4_1>($($args),*),
            GgmlType::Q5_0 => $f::<BlockQ5_0>($($args),*),
            GgmlType::Q5_1 => $f::<BlockQ5_1>($($args),*),
            GgmlType::Q8_0 => $f::<BlockQ8_0>($($args),*),
            GgmlType::Q2_K => $f::<BlockQ2K>($($args),*),
            GgmlType::Q3_K => $f::<BlockQ3K>($($args),*),
            GgmlType::Q4_K => $f::<BlockQ4K>($($args),*),
            GgmlType::Q5_K => $f::<BlockQ5K>($($args),*),
            GgmlType::Q6_K => $f::<BlockQ6K>($($args),*),
            GgmlType::Q8_K => $f::<BlockQ8K>($($args),*),
            // Rejected in `QMatrix::new`.
            _ => unreachable!("unsupported weight type"),
        }
    };
}

/// Whether matrices of this type can be multiplied.
pub(crate) fn supported(dtype: GgmlType) -> bool {
    !matches!(
        dtype,
        GgmlType::Q8_1
            | GgmlType::I8
            | GgmlType::I16
            | GgmlType::I32
            | GgmlType::I64
            | GgmlType::F64
    )
}

fn blocks<T: Block>(bytes: &[u8]) -> &[T] {
    debug_assert_eq!(bytes.as_ptr() as usize % std::mem::align_of::<T>(), 0);
    // SAFETY: the block structs are `repr(C)` with the exact ggml layouts (checked
    // against `GgmlType::block_bytes` in `QMatrix::new`), any bit pattern is valid for
    // them, and GGUF data offsets are aligned to at least 32 bytes.
    unsafe {
        std::slice::from_raw_parts(
            bytes.as_ptr() as *const T,
            bytes.len() / std::mem::size_of::<T>(),
        )
    }
}

fn block_size_matches<T: Block>(dtype: GgmlType) -> bool {
    std::mem::size_of::<T>() * dtype.block_len() / T::BLCK_SIZE == dtype.block_bytes()
}

impl QMatrix {
    /// Wraps a 2-D tensor of `file` as a matrix of `rows` outputs by `cols` inputs.
    pub fn new(file: &Arc<GgufFile>, info: &TensorInfo, rows: usize, cols: usize) -> Result<Self> {
        let bad = |what: String| Error::BadTensor {
            path: file.path().to_path_buf(),
            tensor: info.name.clone(),
            what,
        };
        if info.dims.first() != Some(&(cols as u64)) || info.n_elements() != (rows * cols) as u64 {
            return Err(bad(format!(
                "shape {:?}, expected [{cols}, {rows}]",
                info.dims
            )));
        }
        if !supported(info.dtype) || !dispatch!(info.dtype, block_size_matches, info.dtype) {
            return Err(bad(format!(
                "type {} cannot be used as a weight matrix",
                info.dtype
            )));
        }
        if !cols.is_multiple_of(dispatch!(info.dtype, vec_block_len,)) {
            return Err(bad(format!(
                "row length {cols} is not a multiple of the activation block"
            )));
        }
        let packed = pack(file, info, cols).map(Arc::new);
        Ok(Self {
            file: file.clone(),
            info: info.clone(),
            rows,
            cols,
            packed,
        })
    }

    /// Output dimension.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input dimension.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Storage type.
    pub fn dtype(&self) -> GgmlType {
        self.info.dtype
    }

    /// Bytes of the weight data.
    pub fn n_bytes(&self) -> u64 {
        self.info.n_bytes()
    }

    /// `out[t][r] = Σ_c W[r][c] · x[t][c]` for `n = x.len() / cols` input rows.
    pub fn matmul(&self, x: &[f32], out: &mut [f32]) {
        matmul_many(&mut [(self, out)], x);
    }

    /// The tiled kernel for this matrix's type, when there is one and the bytes can be
    /// viewed as its blocks.
    fn fast_kernel(&self) -> Option<Fast> {
        let data = self.file.tensor_data(&self.info);
        if let Some(p) = &self.packed {
            return Some(Fast::Packed(p.kind()));
        }
        let fits = match self.info.dtype {
            GgmlType::Q4_1 => quant::BlockQ4_1::cast_slice(data).is_ok(),
            GgmlType::Q5_0 => quant::BlockQ5_0::cast_slice(data).is_ok(),
            GgmlType::Q8_0 => quant::BlockQ8_0::cast_slice(data).is_ok(),
            GgmlType::Q4_K => quant::BlockQ4K::cast_slice(data).is_ok(),
            GgmlType::Q6_K => quant::BlockQ6K::cast_slice(data).is_ok(),
            _ => false,
        };
        fits.then_some(match self.info.dtype {
            GgmlType::Q4_1 => Fast::Q4_1,
            GgmlType::Q5_0 => Fast::Q5_0,
            GgmlType::Q8_0 => Fast::Q8_0,
            GgmlType::Q4_K => Fast::Q4K,
            _ => Fast::Q6K,
        })
    }

    /// Dequantizes row `r` into `out` (`cols` values): embedding lookups.
    pub fn row(&self, r: usize, out: &mut [f32]) {
        if let Some(p) = &self.packed {
            // The mapped pages were released after packing; reading them back would
            // fault them (and their read-ahead) in again.
            return p.row(r, out);
        }
        let data = self.file.tensor_data(&self.info);
        let row_bytes = data.len() / self.rows;
        let bytes = &data[r * row_bytes..(r + 1) * row_bytes];
        dispatch!(self.info.dtype, dequantize, bytes, out)
    }
}

/// Bytes that `bytes` of 2-D weights of type `dtype` (a GGUF type name such as `Q4_1`)
/// take in memory once loaded on this CPU: repacked for the packed kernels where
/// those run (Q5_0 and Q4_1 groups hold `f32` scales: 384 bytes per 16 blocks of 352
/// or 320; Q8_0 keeps its size), else the mapped bytes themselves.
pub fn resident_weight_bytes(dtype: &str, bytes: u64) -> u64 {
    let (kind, block_bytes, packed_bytes) = match dtype {
        "Q5_0" => (PackedKind::Q5_0, 22, 24),
        "Q4_1" => (PackedKind::Q4_1, 20, 24),
        "Q8_0" => (PackedKind::Q8_0, 34, 34),
        _ => return bytes,
    };
    if packed::available(kind) {
        bytes / block_bytes * packed_bytes
    } else {
        bytes
    }
}

/// `info`'s weights repacked for the packed kernels, where they run on this CPU and
/// the type has one; the mapped pages are released behind.
fn pack(file: &GgufFile, info: &TensorInfo, cols: usize) -> Option<PackedMatrix> {
    let kind = match info.dtype {
        GgmlType::Q5_0 => PackedKind::Q5_0,
        GgmlType::Q4_1 => PackedKind::Q4_1,
        GgmlType::Q8_0 => PackedKind::Q8_0,
        _ => return None,
    };
    if !packed::available(kind) {
        return None;
    }
    let data = file.tensor_data(info);
    let k = cols / quant::QK;
    // The packed copy replaces the mapped pages for products: they are dropped behind
    // the packing, so both are never held whole.
    let row_bytes = k * info.dtype.block_bytes();
    let mut released = 0;
    let done = &mut |rows: usize| {
        file.release_tensor_pages(info, released..rows * row_bytes);
        released = rows * row_bytes;
    };
    let packed = match info.dtype {
        GgmlType::Q5_0 => {
            PackedMatrix::q5_0_with_progress(quant::BlockQ5_0::cast_slice(data).ok()?, k, done)
        }
        GgmlType::Q4_1 => {
            PackedMatrix::q4_1_with_progress(quant::BlockQ4_1::cast_slice(data).ok()?, k, done)
        }
        GgmlType::Q8_0 => {
            PackedMatrix::q8_0_with_progress(quant::BlockQ8_0::cast_slice(data).ok()?, k, done)
        }
        _ => None?,
    };
    // Once more over the whole tensor: pages the kernel mapped again around the released
    // ranges (fault-around, large folios on newer kernels) are dropped too.
    file.release_tensor_pages(info, 0..info.n_bytes() as usize);
    Some(packed)
}

fn vec_block_len<T: Block>() -> usize {
    T::VecDotType::BLCK_SIZE.max(T::BLCK_SIZE)
}

fn dequantize<T: Block>(bytes: &[u8], out: &mut [f32]) {
    T::to_float(blocks::<T>(bytes), out)
}

/// Rows per task: enough to amortise scheduling, few enough to balance threads.
fn rows_per_task(rows: usize) -> usize {
    let tasks = rayon::current_num_threads() * 8;
    rows.div_ceil(tasks).clamp(4, 256)
}

fn matmul_typed<T: Block>(
    data: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    n: usize,
    out: &mut [f32],
) {
    let w = blocks::<T>(data);
    let wpr = cols / T::BLCK_SIZE;
    let xpr = cols / T::VecDotType::BLCK_SIZE;
    let mut xq = vec![T::VecDotType::zeros(); n * xpr];
    if n > 1 {
        xq.par_chunks_mut(xpr)
            .zip(x.par_chunks(cols))
            .for_each(|(q, xr)| act_quant::quantize(xr, q));
    } else {
        act_quant::quantize(x, &mut xq);
    }
    let step = rows_per_task(rows);
    let ptr = OutPtr(out.as_mut_ptr());
    (0..rows.div_ceil(step)).into_par_iter().for_each(|task| {
        for r in task * step..((task + 1) * step).min(rows) {
            let wr = &w[r * wpr..(r + 1) * wpr];
            for t in 0..n {
                let v = T::vec_dot(cols, wr, &xq[t * xpr..(t + 1) * xpr]);
                // SAFETY: (t, r) pairs are disjoint across tasks and within bounds.
                unsafe { ptr.write(t * rows + r, v) };
            }
        }
    });
}

// candle's activation blocks and ours share ggml's layout: `repr(C)`, no padding.
const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == std::mem::size_of::<quant::BlockQ8_0>());
const _: () = assert!(std::mem::size_of::<BlockQ8_1>() == std::mem::size_of::<quant::BlockQ8_1>());

/// The bytes of candle's Q8_0 activation blocks.
fn q8_0_bytes(q: &[BlockQ8_0]) -> &[u8] {
    // SAFETY: `BlockQ8_0` is `repr(C)` {f16, [i8; 32]}, 34 bytes without padding, so
    // every byte is initialised; `u8` needs no alignment; the lifetime is `q`'s.
    unsafe { std::slice::from_raw_parts(q.as_ptr().cast::<u8>(), std::mem::size_of_val(q)) }
}

const _: () = assert!(std::mem::size_of::<BlockQ8K>() == std::mem::size_of::<quant::BlockQ8K>());
const _: () = assert!(std::mem::size_of::<BlockQ4K>() == std::mem::size_of::<quant::BlockQ4K>());
const _: () = assert!(std::mem::size_of::<BlockQ6K>() == std::mem::size_of::<quant::BlockQ6K>());

/// The bytes of candle's Q8_K activation blocks.
fn q8k_bytes(q: &[BlockQ8K]) -> &[u8] {
    // SAFETY: `BlockQ8K` is `repr(C)` {f32, [i8; 256], [i16; 16]}, 292 bytes without
    // padding, so every byte is initialised; `u8` needs no alignment.
    unsafe { std::slice::from_raw_parts(q.as_ptr().cast::<u8>(), std::mem::size_of_val(q)) }
}

/// The bytes of candle's Q8_1 activation blocks.
fn q8_1_bytes(q: &[BlockQ8_1]) -> &[u8] {
    // SAFETY: `BlockQ8_1` is `repr(C)` {f16, f16, [i8; 32]}, 36 bytes without padding,
    // so every byte is initialised; `u8` needs no alignment; the lifetime is `q`'s.
    unsafe { std::slice::from_raw_parts(q.as_ptr().cast::<u8>(), std::mem::size_of_val(q)) }
}

/// The weight types with a tiled kernel in `hearth_kernels`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fast {
    Q4_1,
    Q5_0,
    /// Through [`QMatrix::packed`].
    Packed(PackedKind),
    Q8_0,
    Q4K,
    Q6K,
}

/// The input rows quantized once for every activation format the kernels need.
#[derive(Default)]
struct Activations {
    q8_0: Vec<BlockQ8_0>,
    /// What the packed Q5_0 products need of each `q8_0` block.
    q8_0_prep: Vec<packed::ActPrep>,
    /// What the packed Q8_0 products need of each `q8_0` block.
    q8_0_prep_q8_0: Vec<packed::ActPrep>,
    /// What the packed products need of each `q8_1` block.
    q8_1_prep: Vec<packed::ActPrep>,
    q8_1: Vec<BlockQ8_1>,
    q8k: Vec<BlockQ8K>,
}

fn quantize_rows<V: Block>(x: &[f32], n: usize, cols: usize) -> Vec<V> {
    let per_row = cols / V::BLCK_SIZE;
    let mut q = vec![V::zeros(); n * per_row];
    if n > 1 {
        q.par_chunks_mut(per_row)
            .zip(x.par_chunks(cols))
            .for_each(|(q, xr)| act_quant::quantize(xr, q));
    } else {
        act_quant::quantize(x, &mut q);
    }
    q
}

impl Activations {
    fn new(x: &[f32], n: usize, cols: usize, kinds: &[Fast]) -> Self {
        let mut a = Self::default();
        let has = |f: fn(&Fast) -> bool| kinds.iter().any(f);
        if has(|k| {
            matches!(
                k,
                Fast::Q5_0
                    | Fast::Q8_0
                    | Fast::Packed(PackedKind::Q5_0)
                    | Fast::Packed(PackedKind::Q8_0)
            )
        }) {
            a.q8_0 = quantize_rows(x, n, cols);
        }
        let blocks = quant::BlockQ8_0::cast_slice(q8_0_bytes(&a.q8_0)).unwrap_or(&[]);
        if has(|k| *k == Fast::Packed(PackedKind::Q5_0)) {
            a.q8_0_prep = packed::prepare_q8_0(blocks, PackedKind::Q5_0);
        }
        if has(|k| *k == Fast::Packed(PackedKind::Q8_0)) {
            a.q8_0_prep_q8_0 = packed::prepare_q8_0(blocks, PackedKind::Q8_0);
        }
        if has(|k| matches!(k, Fast::Q4_1 | Fast::Packed(PackedKind::Q4_1))) {
            a.q8_1 = quantize_rows(x, n, cols);
        }
        if has(|k| *k == Fast::Packed(PackedKind::Q4_1)) {
            if let Ok(blocks) = quant::BlockQ8_1::cast_slice(q8_1_bytes(&a.q8_1)) {
                a.q8_1_prep = packed::prepare_q8_1(blocks);
            }
        }
        if kinds.iter().any(|k| matches!(k, Fast::Q4K | Fast::Q6K)) {
            a.q8k = quantize_rows(x, n, cols);
        }
        a
    }
}

/// Rows `r0..r1` of `m` (of kind `kind`) against every activation row, each product
/// handed to `write(r, t, v)` with `r` counted from `r0`.
fn gemm_rows(
    m: &QMatrix,
    kind: Fast,
    acts: &Activations,
    r0: usize,
    r1: usize,
    write: &mut impl FnMut(usize, usize, f32),
) {
    fn rows_of<W: QuantBlock>(data: &[u8], per_row: usize, r0: usize, r1: usize) -> &[W] {
        // `fast_kernel` checked the cast.
        W::cast_slice(data).map_or(&[], |w| &w[r0 * per_row..r1 * per_row])
    }
    let data = m.file.tensor_data(&m.info);
    match kind {
        Fast::Packed(kind) => {
            let Some(w) = &m.packed else { return };
            // Tasks of packed matrices start on a group (see `matmul_many`).
            let groups = r0 / packed::GROUP..r1.div_ceil(packed::GROUP);
            let write = &mut |r, t, v| write(r - r0, t, v);
            match kind {
                PackedKind::Q5_0 | PackedKind::Q8_0 => {
                    let a = quant::BlockQ8_0::cast_slice(q8_0_bytes(&acts.q8_0)).unwrap_or(&[]);
                    let prep = match kind {
                        PackedKind::Q5_0 => &acts.q8_0_prep,
                        _ => &acts.q8_0_prep_q8_0,
                    };
                    packed::gemm(w, groups, a, prep, write)
                }
                PackedKind::Q4_1 => {
                    let a = quant::BlockQ8_1::cast_slice(q8_1_bytes(&acts.q8_1)).unwrap_or(&[]);
                    packed::gemm(w, groups, a, &acts.q8_1_prep, write)
                }
            }
        }
        Fast::Q4_1 | Fast::Q5_0 | Fast::Q8_0 => {
            let k = m.cols / quant::QK;
            let a8_0 = quant::BlockQ8_0::cast_slice(q8_0_bytes(&acts.q8_0)).unwrap_or(&[]);
            match kind {
                Fast::Q4_1 => {
                    let a = quant::BlockQ8_1::cast_slice(q8_1_bytes(&acts.q8_1)).unwrap_or(&[]);
                    quant::gemm_q4_1_q8_1(rows_of(data, k, r0, r1), a, k, write)
                }
                Fast::Q5_0 => quant::gemm_q5_0_q8_0(rows_of(data, k, r0, r1), a8_0, k, write),
                _ => quant::gemm_q8_0_q8_0(rows_of(data, k, r0, r1), a8_0, k, write),
            }
        }
        Fast::Q4K | Fast::Q6K => {
            let k = m.cols / quant::QK_K;
            let a = quant::BlockQ8K::cast_slice(q8k_bytes(&acts.q8k)).unwrap_or(&[]);
            if kind == Fast::Q4K {
                quant::gemm_q4k_q8k(rows_of(data, k, r0, r1), a, k, write)
            } else {
                quant::gemm_q6k_q8k(rows_of(data, k, r0, r1), a, k, write)
            }
        }
    }
}

/// Several matrices with the same input width applied to the same rows `x` in one
/// parallel pass: the input is quantized once per activation format, and the rows of
/// all matrices are split among the threads together (one synchronisation instead of
/// one per matrix: q/k/v, gate/up). `jobs[i].1` receives `n × rows_i` values.
///
/// # Panics
/// If the matrices differ in input width or an output has the wrong length.
pub fn matmul_many(jobs: &mut [(&QMatrix, &mut [f32])], x: &[f32]) {
    let Some(cols) = jobs.first().map(|(m, _)| m.cols) else {
        return;
    };
    assert!(
        jobs.iter().all(|(m, _)| m.cols == cols),
        "matmul_many: widths differ"
    );
    let n = x.len() / cols;
    for (m, out) in jobs.iter() {
        assert_eq!(out.len(), n * m.rows, "matmul_many: output length");
    }
    let kinds: Vec<Option<Fast>> = jobs.iter().map(|(m, _)| m.fast_kernel()).collect();
    for ((m, out), kind) in jobs.iter_mut().zip(&kinds) {
        if kind.is_none() {
            let data = m.file.tensor_data(&m.info);
            dispatch!(m.info.dtype, matmul_typed, data, m.rows, m.cols, x, n, out);
        }
    }
    let fast: Vec<Fast> = kinds.iter().flatten().copied().collect();
    if fast.is_empty() {
        return;
    }
    let acts = Activations::new(x, n, cols, &fast);
    let mut tasks = Vec::new();
    for (j, ((m, _), kind)) in jobs.iter().zip(&kinds).enumerate() {
        if let Some(kind) = kind {
            let mut step = rows_per_task(m.rows);
            if matches!(kind, Fast::Packed(_)) {
                step = step.next_multiple_of(packed::GROUP);
            }
            tasks.extend(
                (0..m.rows)
                    .step_by(step)
                    .map(|r0| (j, *kind, r0, (r0 + step).min(m.rows))),
            );
        }
    }
    let ptrs: Vec<OutPtr> = jobs
        .iter_mut()
        .map(|(_, o)| OutPtr(o.as_mut_ptr()))
        .collect();
    let mats: Vec<&QMatrix> = jobs.iter().map(|(m, _)| *m).collect();
    tasks.into_par_iter().for_each(|(j, kind, r0, r1)| {
        let (m, ptr) = (mats[j], ptrs[j]);
        gemm_rows(m, kind, &acts, r0, r1, &mut |r, t, v| {
            // SAFETY: (t, r0 + r) pairs are disjoint across tasks and within `n × rows`
            // of output `j`, which outlives the parallel loop.
            unsafe { ptr.write(t * m.rows + r0 + r, v) };
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1) with a few outliers, like activations.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let v = (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
                if i % 97 == 0 {
                    v * 20.0
                } else {
                    v
                }
            })
            .collect()
    }

    fn as_blocks<B: QuantBlock>(bytes: &[u8]) -> &[B] {
        B::cast_slice(bytes).unwrap()
    }

    /// The tiled K-quant products equal candle's own vec_dot bit for bit.
    #[test]
    fn k_quant_kernels_equal_candle() {
        let cols = 512;
        let w = values(3 * cols, 1);
        let x = values(5 * cols, 2);
        let mut xq = vec![BlockQ8K::zeros(); 5 * cols / 256];
        act_quant::quantize(&x, &mut xq);
        let xa = quant::BlockQ8K::cast_slice(q8k_bytes(&xq)).unwrap();
        fn check<T: Block<VecDotType = BlockQ8K>, W: QuantBlock>(
            w: &[f32],
            xq: &[BlockQ8K],
            xa: &[quant::BlockQ8K],
            cols: usize,
            gemm: impl Fn(&[W], &[quant::BlockQ8K], usize, &mut dyn FnMut(usize, usize, f32)),
        ) {
            let k = cols / 256;
            let mut wq = vec![T::zeros(); w.len() / 256];
            T::from_float(w, &mut wq);
            // SAFETY: candle's K-quant blocks are repr(C) without padding.
            let bytes = unsafe {
                std::slice::from_raw_parts(wq.as_ptr().cast::<u8>(), std::mem::size_of_val(&wq[..]))
            };
            let ww = W::cast_slice(bytes).unwrap();
            let mut n = 0;
            gemm(ww, xa, k, &mut |r, t, v| {
                let want = T::vec_dot(cols, &wq[r * k..(r + 1) * k], &xq[t * k..(t + 1) * k]);
                assert_eq!(v.to_bits(), want.to_bits(), "({r}, {t}): {v} vs {want}");
                n += 1;
            });
            assert_eq!(n, 15);
        }
        check::<BlockQ4K, quant::BlockQ4K>(&w, &xq, xa, cols, |w, a, k, out| {
            quant::gemm_q4k_q8k(w, a, k, &mut |r, t, v| out(r, t, v))
        });
        check::<BlockQ6K, quant::BlockQ6K>(&w, &xq, xa, cols, |w, a, k, out| {
            quant::gemm_q6k_q8k(w, a, k, &mut |r, t, v| out(r, t, v))
        });
    }

    /// Our kernels read candle's blocks with the same meaning as candle's own vec_dot.
    #[test]
    fn kernels_agree_with_candle() {
        let cols = 640;
        for seed in 0..8 {
            let (w, a) = (values(cols, seed), values(cols, seed + 100));
            let mut wq = vec![BlockQ4_1::zeros(); cols / 32];
            let mut aq = vec![BlockQ8_1::zeros(); cols / 32];
            BlockQ4_1::from_float(&w, &mut wq);
            BlockQ8_1::from_float(&a, &mut aq);
            let want = BlockQ4_1::vec_dot(cols, &wq, &aq);
            // SAFETY: candle's BlockQ4_1 is repr(C) {f16, f16, [u8; 16]}, no padding.
            let wb = unsafe { std::slice::from_raw_parts(wq.as_ptr().cast::<u8>(), wq.len() * 20) };
            let got = quant::vec_dot_q4_1_q8_1(as_blocks(wb), as_blocks(q8_1_bytes(&aq)));
            assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                "Q4_1 {got} vs {want}"
            );

            let mut wq = vec![BlockQ5_0::zeros(); cols / 32];
            let mut aq = vec![BlockQ8_0::zeros(); cols / 32];
            BlockQ5_0::from_float(&w, &mut wq);
            BlockQ8_0::from_float(&a, &mut aq);
            let want = BlockQ5_0::vec_dot(cols, &wq, &aq);
            // SAFETY: candle's BlockQ5_0 is repr(C) {f16, [u8; 4], [u8; 16]}, no padding.
            let wb = unsafe { std::slice::from_raw_parts(wq.as_ptr().cast::<u8>(), wq.len() * 22) };
            let got = quant::vec_dot_q5_0_q8_0(as_blocks(wb), as_blocks(q8_0_bytes(&aq)));
            assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                "Q5_0 {got} vs {want}"
            );
        }
    }
}
