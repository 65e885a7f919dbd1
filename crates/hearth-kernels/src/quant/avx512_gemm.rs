//! AVX-512 tiles for Q5_0 and Q8_0 weights against Q8_0 activations: two blocks per
//! 512-bit register.
//!
//! The 256-bit tiles ([`super::avx2_gemm`]) spend five operations on each pair of
//! blocks (the integer sums, their conversion to floats, the scale product, its
//! broadcast, an FMA). Here one `vpdpbusd`, one conversion, one scale product and one
//! FMA serve two pairs: the low half of each register holds block `b`, the high half
//! block `b + 1`, and a scale vector holds `d_b` eight times then `d_{b+1}` eight times.
//! The weights are made unsigned by an offset (Q5_0's own 16; 128 for Q8_0), which the
//! accumulator takes back from the start: `Σ (x + K)·y − K·Σ y` is exact in integers.
//!
//! Each product of a weight row and an activation row depends on those two rows
//! alone, so a row gives the same float alone or anywhere in a batch. The float sum
//! runs over even and odd blocks in separate lanes, a different order from the 256-bit
//! tiles', so results agree with theirs to rounding, not bit for bit.

use std::arch::x86_64::*;

use super::avx2_gemm::{emit, PREFETCH_BYTES, ROWS, TOKEN_CHUNK};
use super::blocks::{BlockQ5_0, BlockQ8_0};

/// Whether this CPU runs the kernels of this module (checked once).
pub fn available() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        super::avx2::available()
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vnni")
    })
}

/// Two `f16` scales as `[d0 × 8, d1 × 8]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn spread_scales(d0: u16, d1: u16) -> __m512 {
    let both = _mm_cvtph_ps(_mm_cvtsi32_si128(
        (u32::from(d0) | (u32::from(d1) << 16)) as i32,
    ));
    let index = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    _mm512_permutexvar_ps(index, _mm512_castps128_ps512(both))
}

/// Two 32-byte halves as one register.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn join(lo: __m256i, hi: __m256i) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
}

/// A weight format for these tiles.
pub(super) trait Wide {
    /// Weight block.
    type W: Copy;
    /// Activation block (always Q8_0 here; named for the shared drivers).
    type A: Copy;
    /// What is added to every weight to make it unsigned.
    const OFFSET: i8;
    /// Blocks `b` and `b + 1` of `w` (the high half zero where `TWO` is false) as
    /// unsigned bytes, and their scales as [`spread_scales`] lays them out.
    ///
    /// # Safety
    /// The CPU has this module's features; `w` holds block `b` (and `b + 1` if `TWO`).
    unsafe fn weight<const TWO: bool>(w: &[Self::W], b: usize) -> (__m512i, __m512);
}

/// Q5_0 weights: the 4-bit halves as ggml packs them, the fifth bit from `qh`.
pub(super) struct Q5_0;

impl Wide for Q5_0 {
    type W = BlockQ5_0;
    type A = BlockQ8_0;
    const OFFSET: i8 = 16;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn weight<const TWO: bool>(w: &[BlockQ5_0], b: usize) -> (__m512i, __m512) {
        let x0 = w.get_unchecked(b);
        let lo = _mm_loadu_si128(x0.qs.as_ptr().cast());
        let (hi, qh1, d1) = if TWO {
            let x1 = w.get_unchecked(b + 1);
            (
                _mm_loadu_si128(x1.qs.as_ptr().cast()),
                u32::from_le_bytes(x1.qh),
                x1.d.to_bits(),
            )
        } else {
            (_mm_setzero_si128(), 0, 0)
        };
        // [qs0, qs0, qs1, qs1] by 128-bit lanes, the second copy of each shifted down by
        // four: low nibbles then high nibbles of each block, ggml's value order.
        let packed = _mm512_castsi256_si512(_mm256_set_m128i(hi, lo));
        let spread = _mm512_shuffle_i64x2::<0b01_01_00_00>(packed, packed);
        let shifted = _mm512_srlv_epi64(spread, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0));
        let low4 = _mm512_and_si512(shifted, _mm512_set1_epi8(0x0F));
        // Bit j of the 64-bit mask is the fifth bit of byte j.
        let fifth = u64::from(u32::from_le_bytes(x0.qh)) | (u64::from(qh1) << 32);
        let q = _mm512_mask_add_epi8(low4, _cvtu64_mask64(fifth), low4, _mm512_set1_epi8(0x10));
        (q, spread_scales(x0.d.to_bits(), d1))
    }
}

/// Q8_0 weights (ggml's quantizer keeps them in [-127, 127]).
pub(super) struct Q8_0;

impl Wide for Q8_0 {
    type W = BlockQ8_0;
    type A = BlockQ8_0;
    const OFFSET: i8 = -128;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn weight<const TWO: bool>(w: &[BlockQ8_0], b: usize) -> (__m512i, __m512) {
        let (x, d) = load_pair::<TWO>(w, b);
        // Flipping the sign bit adds 128 to each byte read as unsigned.
        (_mm512_xor_si512(x, _mm512_set1_epi8(-128)), d)
    }
}

/// Blocks `b` and `b + 1` of Q8_0 rows (the high half zero where `TWO` is false).
///
/// # Safety
/// As [`Wide::weight`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn load_pair<const TWO: bool>(a: &[BlockQ8_0], b: usize) -> (__m512i, __m512) {
    let y0 = a.get_unchecked(b);
    let lo = _mm256_loadu_si256(y0.qs.as_ptr().cast());
    let (hi, d1) = if TWO {
        let y1 = a.get_unchecked(b + 1);
        (_mm256_loadu_si256(y1.qs.as_ptr().cast()), y1.d.to_bits())
    } else {
        (_mm256_setzero_si256(), 0)
    };
    (join(lo, hi), spread_scales(y0.d.to_bits(), d1))
}

/// One step of a tile: blocks `b` (and `b + 1` where `TWO`) of every row pair.
///
/// # Safety
/// As [`Wide::weight`], for every row of `w` and `a`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn step<P: Wide<A = BlockQ8_0>, const RM: usize, const RN: usize, const TWO: bool>(
    w: &[&[P::W]; RM],
    a: &[&[BlockQ8_0]; RN],
    b: usize,
    acc: &mut [[__m512; RN]; RM],
) {
    let ws: [_; RM] = std::array::from_fn(|r| P::weight::<TWO>(w[r], b));
    // The offset is unsigned for `vpdpbusd` (Q8_0's −128 reads as 128).
    let offset = _mm512_set1_epi8(P::OFFSET);
    for t in 0..RN {
        let (y, dy) = load_pair::<TWO>(a[t], b);
        // −K · Σ of each four activations: where every weight row's sums start.
        let start = _mm512_sub_epi32(
            _mm512_setzero_si512(),
            _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset, y),
        );
        for r in 0..RM {
            let (x, dx) = ws[r];
            let sums = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(start, x, y));
            acc[r][t] = _mm512_fmadd_ps(_mm512_mul_ps(dx, dy), sums, acc[r][t]);
        }
    }
}

/// The `RM × RN` products of weight rows `w` and activation rows `a`, `k` blocks each.
///
/// # Safety
/// The CPU has this module's features; every row holds at least `k` blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile<P: Wide<A = BlockQ8_0>, const RM: usize, const RN: usize>(
    w: [&[P::W]; RM],
    a: [&[BlockQ8_0]; RN],
    k: usize,
) -> [[f32; RN]; RM] {
    let mut acc = [[_mm512_setzero_ps(); RN]; RM];
    let ahead = PREFETCH_BYTES / std::mem::size_of::<P::W>();
    let mut b = 0;
    while b + 2 <= k {
        for row in &w {
            // A prefetch never faults; the address may lie past the row.
            _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().wrapping_add(b + ahead).cast());
            _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().wrapping_add(b + ahead + 1).cast());
        }
        step::<P, RM, RN, true>(&w, &a, b, &mut acc);
        b += 2;
    }
    if b < k {
        step::<P, RM, RN, false>(&w, &a, b, &mut acc);
    }
    let mut out = [[0f32; RN]; RM];
    for r in 0..RM {
        for t in 0..RN {
            out[r][t] = _mm512_reduce_add_ps(acc[r][t]);
        }
    }
    out
}

super::avx2_gemm::drivers!(
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    Wide<A = BlockQ8_0>,
    tile,
    row_tile,
    gemm
);
