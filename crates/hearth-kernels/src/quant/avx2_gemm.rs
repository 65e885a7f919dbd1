//! Tiled AVX2 products of many weight rows with many activation rows.
//!
//! A tile of `RM` weight rows by `RN` activation rows walks the blocks once: each
//! weight block is unpacked once for `RN` activation rows, and each activation block
//! is loaded (and its scale converted) once for `RM` weight rows. Per pair of rows the
//! float operations are exactly those of the single-row dot products (one
//! accumulator, blocks in order, the same scale products), so a tile's results are
//! bit-identical to [`super::avx2`]'s and to candle's for Q8_0.

use std::arch::x86_64::*;

use half::f16;

use super::avx2::{bytes_from_bits, hsum, load_q8, nibbles};
use super::blocks::{BlockQ4_1, BlockQ5_0, BlockQ8_0, BlockQ8_1};

/// `f16` bits to `f32` through F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn half_to_f32(h: f16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(h.to_bits()))))
}

/// One weight format paired with its activation format.
pub(super) trait Pair {
    /// Weight block.
    type W: Copy;
    /// Activation block.
    type A: Copy;
    /// Whether blocks carry a minimum term (`m_x · s_y`, summed apart).
    const MIN: bool;
    /// A weight block ready for products, its scale and its minimum.
    ///
    /// # Safety
    /// The CPU supports AVX2, FMA and F16C.
    unsafe fn weight(w: &Self::W) -> (__m256i, __m256i, f32, f32);
    /// An activation block ready for products, its scale and its sum term.
    ///
    /// # Safety
    /// As [`Pair::weight`].
    unsafe fn act(a: &Self::A) -> (__m256i, __m256i, f32, f32);
    /// The block's eight partial sums as floats.
    ///
    /// # Safety
    /// As [`Pair::weight`].
    unsafe fn dot(w: (__m256i, __m256i), a: (__m256i, __m256i)) -> __m256;
    /// [`Pair::act`] for [`Pair::dot_vnni`].
    ///
    /// # Safety
    /// The CPU supports AVX2, FMA, F16C and AVX-VNNI.
    unsafe fn act_vnni(a: &Self::A) -> (__m256i, __m256i, f32, f32);
    /// [`Pair::dot`] with AVX-VNNI's `vpdpbusd` (bytes to `i32` in one instruction): the
    /// same integer sums in the same lanes, so the same floats.
    ///
    /// # Safety
    /// As [`Pair::act_vnni`].
    unsafe fn dot_vnni(w: (__m256i, __m256i), a: (__m256i, __m256i)) -> __m256;
}

/// `Σ` of four `u8 · i8` products per `i32` lane, added to `acc`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
fn dpbusd(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
    _mm256_dpbusd_avx_epi32(acc, u, s)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn pair_sums(pairs: __m256i) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}

/// Q4_1 weights, Q8_1 activations.
pub(super) struct Q4_1;

impl Pair for Q4_1 {
    type W = BlockQ4_1;
    type A = BlockQ8_1;
    const MIN: bool = true;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn weight(w: &BlockQ4_1) -> (__m256i, __m256i, f32, f32) {
        let q = nibbles(&w.qs);
        (q, q, half_to_f32(w.d), half_to_f32(w.m))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn act(a: &BlockQ8_1) -> (__m256i, __m256i, f32, f32) {
        let y = load_q8(&a.qs);
        (y, y, half_to_f32(a.d), half_to_f32(a.s))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot(w: (__m256i, __m256i), a: (__m256i, __m256i)) -> __m256 {
        pair_sums(_mm256_maddubs_epi16(w.0, a.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    unsafe fn act_vnni(a: &BlockQ8_1) -> (__m256i, __m256i, f32, f32) {
        Self::act(a)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    unsafe fn dot_vnni(w: (__m256i, __m256i), a: (__m256i, __m256i)) -> __m256 {
        _mm256_cvtepi32_ps(dpbusd(_mm256_setzero_si256(), w.0, a.0))
    }
}

/// Q5_0 weights, Q8_0 activations.
pub(super) struct Q5_0;

impl Pair for Q5_0 {
    type W = BlockQ5_0;
    type A = BlockQ8_0;
    const MIN: bool = false;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn weight(w: &BlockQ5_0) -> (__m256i, __m256i, f32, f32) {
        let high = _mm256_and_si256(bytes_from_bits(w.qh), _mm256_set1_epi8(0x10));
        let q = _mm256_or_si256(nibbles(&w.qs), high);
        (q, q, half_to_f32(w.d), 0.0)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn act(a: &BlockQ8_0) -> (__m256i, __m256i, f32, f32) {
        let y = load_q8(&a.qs);
        // The centring term 16 · Σ pairs of y, shared by every weight row.
        let y16 = _mm256_maddubs_epi16(_mm256_set1_epi8(16), y);
        (y, y16, half_to_f32(a.d), 0.0)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot(w: (__m256i, __m256i), a: (__m256i, __m256i)) -> __m256 {
        pair_sums(_mm256_sub_epi16(_mm256_maddubs_epi16(w.0, a.0), a.1))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    unsafe fn act_vnni(a: &BlockQ8_0) -> (__m256i, __m256i, f32, f32) {
        let y = load_q8(&a.qs);
        // −16 · Σ of each four y, the accumulator every weight row starts from.
        let y16 = dpbusd(_mm256_setzero_si256(), _mm256_set1_epi8(16), y);
        (
            y,
            _mm256_sub_epi32(_mm256_setzero_si256(), y16),
            half_to_f32(a.d),
            0.0,
        )
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    unsafe fn dot_vnni(w: (__m256i, __m256i), a: (__m256i, __m256i)) -> __m256 {
        _mm256_cvtepi32_ps(dpbusd(a.1, w.0, a.0))
    }
}

/// Q8_0 weights, Q8_0 activations (candle's sign trick and order: weights must be in
/// [-127, 127], as ggml's quantizer makes them).
pub(super) struct Q8_0;

impl Pair for Q8_0 {
    type W = BlockQ8_0;
    type A = BlockQ8_0;
    const MIN: bool = false;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn weight(w: &BlockQ8_0) -> (__m256i, __m256i, f32, f32) {
        let x = load_q8(&w.qs);
        (_mm256_sign_epi8(x, x), x, half_to_f32(w.d), 0.0)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn act(a: &BlockQ8_0) -> (__m256i, __m256i, f32, f32) {
        let y = load_q8(&a.qs);
        (y, y, half_to_f32(a.d), 0.0)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot(w: (__m256i, __m256i), a: (__m256i, __m256i)) -> __m256 {
        pair_sums(_mm256_maddubs_epi16(w.0, _mm256_sign_epi8(a.0, w.1)))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    unsafe fn act_vnni(a: &BlockQ8_0) -> (__m256i, __m256i, f32, f32) {
        Self::act(a)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    unsafe fn dot_vnni(w: (__m256i, __m256i), a: (__m256i, __m256i)) -> __m256 {
        let sy = _mm256_sign_epi8(a.0, w.1);
        _mm256_cvtepi32_ps(dpbusd(_mm256_setzero_si256(), w.0, sy))
    }
}

/// One product of a weight row and an activation row over `min` of their lengths.
///
/// # Safety
/// The CPU supports AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot<P: Pair>(w: &[P::W], a: &[P::A]) -> f32 {
    tile::<P, 1, 1>([w], [a], w.len().min(a.len()))[0][0]
}

/// Activation rows walked per pass over the weight rows: their blocks stay in cache.
pub(super) const TOKEN_CHUNK: usize = 64;

/// Weight rows per tile.
const ROWS: usize = 4;

/// How far ahead of the block being read the weights are prefetched, in bytes. Decoding
/// reads every weight once per token, straight from memory; without software prefetch
/// the kernels waited on it (measured, 2 threads: SmolLM2 decode 60 → 120 tok/s and
/// Gemma 36 → 52 tok/s at 8 KiB; 1 KiB gave 77 and 40, 16 KiB 89 and 45).
pub(super) const PREFETCH_BYTES: usize = 8192;

/// The tile, row and whole-product functions for one instruction set: `$features`
/// enabled, products through `P::$dot` on activations from `P::$act`.
macro_rules! tiled {
    ($features:literal, $tile:ident, $row_tile:ident, $gemm:ident, $act:ident, $dot:ident) => {
        /// The `RM × RN` products of weight rows `w` and activation rows `a`, `k` blocks each.
        ///
        /// # Safety
        /// The CPU supports AVX2, FMA and F16C; every row holds at least `k` blocks.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn $tile<P: Pair, const RM: usize, const RN: usize>(
            w: [&[P::W]; RM],
            a: [&[P::A]; RN],
            k: usize,
        ) -> [[f32; RN]; RM] {
            let mut acc = [[_mm256_setzero_ps(); RN]; RM];
            let mut mins = [[0f32; RN]; RM];
            let ahead = PREFETCH_BYTES / std::mem::size_of::<P::W>();
            for b in 0..k {
                for row in &w {
                    // A prefetch never faults; the address may lie past the row.
                    _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().wrapping_add(b + ahead).cast());
                }
                let ws: [_; RM] = std::array::from_fn(|r| P::weight(w[r].get_unchecked(b)));
                for t in 0..RN {
                    let (y0, y1, dy, sy) = P::$act(a[t].get_unchecked(b));
                    for r in 0..RM {
                        let (x0, x1, dx, mx) = ws[r];
                        let p = P::$dot((x0, x1), (y0, y1));
                        acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dx * dy), p, acc[r][t]);
                        if P::MIN {
                            mins[r][t] += mx * sy;
                        }
                    }
                }
            }
            let mut out = [[0f32; RN]; RM];
            for r in 0..RM {
                for t in 0..RN {
                    out[r][t] = hsum(acc[r][t]) + mins[r][t];
                }
            }
            out
        }

        /// `out(r, t, Σ w[r] · a[t])` for `rows` weight rows of `k` blocks in `w` and `n`
        /// activation rows of `k` blocks in `a`.
        ///
        /// # Safety
        /// The CPU supports AVX2, FMA and F16C; `w` holds `rows · k` blocks and `a` `n · k`.
        #[target_feature(enable = $features)]
        pub(super) unsafe fn $gemm<P: Pair>(
            w: &[P::W],
            a: &[P::A],
            k: usize,
            rows: usize,
            n: usize,
            out: &mut impl FnMut(usize, usize, f32),
        ) {
            let wrow = |r: usize| w.get_unchecked(r * k..(r + 1) * k);
            let mut t0 = 0;
            while t0 < n {
                let t1 = (t0 + TOKEN_CHUNK).min(n);
                let mut r = 0;
                while r + ROWS <= rows {
                    let ws: [&[P::W]; ROWS] = std::array::from_fn(|i| wrow(r + i));
                    $row_tile::<P, ROWS>(ws, a, k, r, t0, t1, out);
                    r += ROWS;
                }
                while r < rows {
                    $row_tile::<P, 1>([wrow(r)], a, k, r, t0, t1, out);
                    r += 1;
                }
                t0 = t1;
            }
        }

        /// Weight rows `ws` (the first is row `r`) against activation rows `t0..t1`, up to
        /// four at a time.
        ///
        /// # Safety
        /// As [`gemm`].
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn $row_tile<P: Pair, const RM: usize>(
            ws: [&[P::W]; RM],
            a: &[P::A],
            k: usize,
            r: usize,
            t0: usize,
            t1: usize,
            out: &mut impl FnMut(usize, usize, f32),
        ) {
            let arow = |t: usize| a.get_unchecked(t * k..(t + 1) * k);
            let mut t = t0;
            while t < t1 {
                let step = (t1 - t).min(4);
                match step {
                    1 => emit(r, t, $tile::<P, RM, 1>(ws, [arow(t)], k), out),
                    2 => emit(r, t, $tile::<P, RM, 2>(ws, [arow(t), arow(t + 1)], k), out),
                    3 => emit(
                        r,
                        t,
                        $tile::<P, RM, 3>(ws, [arow(t), arow(t + 1), arow(t + 2)], k),
                        out,
                    ),
                    _ => emit(
                        r,
                        t,
                        $tile::<P, RM, 4>(ws, [arow(t), arow(t + 1), arow(t + 2), arow(t + 3)], k),
                        out,
                    ),
                }
                t += step;
            }
        }
    };
}

tiled!("avx2,fma,f16c", tile, row_tile, gemm, act, dot);
tiled!(
    "avx2,fma,f16c,avxvnni",
    tile_vnni,
    row_tile_vnni,
    gemm_vnni,
    act_vnni,
    dot_vnni
);

#[inline]
fn emit<const RM: usize, const RN: usize>(
    r0: usize,
    t0: usize,
    v: [[f32; RN]; RM],
    out: &mut impl FnMut(usize, usize, f32),
) {
    for (r, row) in v.iter().enumerate() {
        for (t, &x) in row.iter().enumerate() {
            out(r0 + r, t0 + t, x);
        }
    }
}
