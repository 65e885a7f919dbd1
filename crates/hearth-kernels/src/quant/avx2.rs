//! AVX2 + FMA + F16C dot products, after ggml's x86 kernels.
//!
//! Each block's 32 products are formed with `_mm256_maddubs_epi16` (unsigned bytes ×
//! signed bytes → pairwise-summed `i16`), widened with `_mm256_madd_epi16` against ones
//! to eight `i32` partial sums, converted to `f32`, and accumulated with one FMA by the
//! block's combined scale. The integer part is exact; only the float accumulation
//! order differs from the scalar reference.

use std::arch::x86_64::*;

use super::blocks::{BlockQ4_1, BlockQ5_0, BlockQ8_0, BlockQ8_1};

/// Whether this CPU runs the kernels of this module (checked once).
pub fn available() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    })
}

/// Whether this CPU also has AVX-VNNI (`vpdpbusd` on 256-bit registers; checked once).
pub fn vnni_available() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| available() && is_x86_feature_detected!("avxvnni"))
}

/// Whether this CPU also has AVX-512 F/BW/VL with VNNI (the packed kernels, the K-quant
/// and attention paths on 512-bit registers; checked once).
pub fn avx512_available() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        available()
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vnni")
    })
}

/// Sum of the eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// The 16 packed bytes as 32 values in `[0, 15]`: low nibbles first, then high.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn nibbles(qs: &[u8; 16]) -> __m256i {
    // SAFETY: `qs` is 16 readable bytes; the load is unaligned.
    let packed = unsafe { _mm_loadu_si128(qs.as_ptr().cast()) };
    let both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

/// Byte `i` is `0xFF` where bit `i` of the little-endian `bits` is set, else 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn bytes_from_bits(bits: [u8; 4]) -> __m256i {
    // Spread byte k of the word over bytes 8k..8k+8, then test bit (i mod 8) of each
    // byte by setting every other bit and comparing with all-ones.
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(i32::from_le_bytes(bits)),
        _mm256_set_epi64x(
            0x0303030303030303,
            0x0202020202020202,
            0x0101010101010101,
            0,
        ),
    );
    let others = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe);
    _mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi64x(-1))
}

/// The 32 signed bytes of an activation block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load_q8(qs: &[i8; 32]) -> __m256i {
    // SAFETY: `qs` is 32 readable bytes; the load is unaligned.
    unsafe { _mm256_loadu_si256(qs.as_ptr().cast()) }
}

/// Four `f16` (as two little-endian pairs of bits) to `f32`: `[a0, a1, b0, b1]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn halves(a: [u16; 2], b: [u16; 2]) -> __m128 {
    let a = i32::from(a[0]) | (i32::from(a[1]) << 16);
    let b = i32::from(b[0]) | (i32::from(b[1]) << 16);
    _mm_cvtph_ps(_mm_set_epi32(0, 0, b, a))
}

/// One Q4_1 block against one Q8_1 block: the block's eight `i32` partial sums as
/// `f32`, and the vector `[d_x d_y, m_x s_y, ·, ·]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn block_q4_1(bx: &BlockQ4_1, by: &BlockQ8_1) -> (__m256, __m128) {
    let s = halves(
        [bx.d.to_bits(), bx.m.to_bits()],
        [by.d.to_bits(), by.s.to_bits()],
    );
    // [dx, mx, dy, sy] * [dy, sy, dy, sy]
    let scales = _mm_mul_ps(s, _mm_movehl_ps(s, s));
    // Nibbles are unsigned, activations signed: exactly maddubs' operand types, and
    // 2 · 15 · 128 cannot saturate an i16.
    let pairs = _mm256_maddubs_epi16(nibbles(&bx.qs), load_q8(&by.qs));
    let sums = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
    (_mm256_cvtepi32_ps(sums), scales)
}

/// AVX2 [`super::vec_dot_q4_1_q8_1`] over `min(x.len(), y.len())` blocks.
///
/// One accumulator, blocks in order, minimum terms summed apart and added last:
/// ggml's AVX2 kernel's float order, so results track llama.cpp's bit for bit where
/// it runs that kernel.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C ([`available`]).
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot_q4_1_q8_1(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut mins = _mm_setzero_ps();
    for (bx, by) in x.iter().zip(y) {
        let (p, s) = block_q4_1(bx, by);
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(s), p, acc);
        mins = _mm_add_ps(mins, s);
    }
    // Lane 1 of `mins` holds Σ m_x s_y.
    let mins = _mm_cvtss_f32(_mm_movehdup_ps(mins));
    hsum(acc) + mins
}

/// One Q5_0 block against one Q8_0 block: the block's eight `i32` partial sums as `f32`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn block_q5_0(bx: &BlockQ5_0, by: &BlockQ8_0) -> __m256 {
    // q = nibble | fifth bit << 4, in [0, 31], unsigned for maddubs. The centred value
    // is q - 16, so subtract 16 · Σ pairs of y: exact for every i8 activation,
    // including -128 (ggml's sign trick instead assumes activations above -128).
    let high = _mm256_and_si256(bytes_from_bits(bx.qh), _mm256_set1_epi8(0x10));
    let q = _mm256_or_si256(nibbles(&bx.qs), high);
    let y = load_q8(&by.qs);
    // |2 · 31 · 128| and the difference below stay well inside i16.
    let pairs = _mm256_sub_epi16(
        _mm256_maddubs_epi16(q, y),
        _mm256_maddubs_epi16(_mm256_set1_epi8(16), y),
    );
    _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}

/// AVX2 [`super::vec_dot_q5_0_q8_0`] over `min(x.len(), y.len())` blocks, in
/// ggml's AVX2 float order (one accumulator, blocks in order).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C ([`available`]).
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot_q5_0_q8_0(x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (bx, by) in x.iter().zip(y) {
        let s = halves([bx.d.to_bits(), 0], [by.d.to_bits(), 0]);
        let d = _mm_mul_ps(s, _mm_movehl_ps(s, s));
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(d), block_q5_0(bx, by), acc);
    }
    hsum(acc)
}

/// AVX2 [`super::quantize_q8_32`]: ggml's `quantize_row_q8_0` for one block.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C ([`available`]); `xs` and `qs` hold 32
/// values each.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn quantize_q8_32(xs: &[f32], qs: &mut [u8]) -> (f32, i32) {
    let p = xs.as_ptr();
    let v = [
        _mm256_loadu_ps(p),
        _mm256_loadu_ps(p.add(8)),
        _mm256_loadu_ps(p.add(16)),
        _mm256_loadu_ps(p.add(24)),
    ];
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_andnot_ps(sign, v[0]);
    for x in &v[1..] {
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, *x));
    }
    let h = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
    let h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    let h = _mm_max_ss(h, _mm_movehdup_ps(h));
    let max = _mm_cvtss_f32(h);
    let d = max / 127.0;
    let id = _mm256_set1_ps(if max != 0.0 { 127.0 / max } else { 0.0 });
    let q = v.map(|x| {
        _mm256_cvtps_epi32(_mm256_round_ps(
            _mm256_mul_ps(x, id),
            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
        ))
    });
    let sum = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    let s = _mm_add_epi32(
        _mm256_extracti128_si256(sum, 1),
        _mm256_castsi256_si128(sum),
    );
    let s = _mm_hadd_epi32(s, s);
    let s = _mm_hadd_epi32(s, s);
    // Pack to i16 then i8 (saturating), and undo the lane interleaving of the packs.
    let w = _mm256_packs_epi32(q[0], q[1]);
    let w2 = _mm256_packs_epi32(q[2], q[3]);
    let b = _mm256_packs_epi16(w, w2);
    let b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(qs.as_mut_ptr().cast(), b);
    (d, _mm_cvtsi128_si32(s))
}

/// AVX2 [`super::quantize_q8k_256`].
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C ([`available`]); `xs` holds 256 values.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn quantize_q8k_256(xs: &[f32], out: &mut super::BlockQ8K) {
    let p = xs.as_ptr();
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_setzero_ps();
    for i in 0..32 {
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(p.add(8 * i))));
    }
    let h = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
    let h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    let amax = _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
    if amax == 0.0 {
        out.d = 0.0;
        out.qs = [0; 256];
        out.bsums = [0; 16];
        return;
    }
    // The first value of that magnitude gives the sign, as the scalar scan does.
    let max = xs.iter().copied().find(|v| v.abs() == amax).unwrap_or(amax);
    let iscale = -127.0 / max;
    let scale = _mm256_set1_ps(iscale);
    let cap = _mm256_set1_epi32(127);
    let perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for g in 0..8 {
        let q: [__m256i; 4] = std::array::from_fn(|i| {
            let v = _mm256_mul_ps(scale, _mm256_loadu_ps(p.add(32 * g + 8 * i)));
            let r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm256_min_epi32(_mm256_cvtps_epi32(r), cap)
        });
        // Sums of each 16 quants: lanes of q[0] + q[1] and of q[2] + q[3].
        for (half, pair) in [(0, (q[0], q[1])), (1, (q[2], q[3]))] {
            let s = _mm256_add_epi32(pair.0, pair.1);
            let s = _mm_add_epi32(_mm256_extracti128_si256(s, 1), _mm256_castsi256_si128(s));
            let s = _mm_hadd_epi32(s, s);
            let s = _mm_hadd_epi32(s, s);
            out.bsums[2 * g + half] = _mm_cvtsi128_si32(s) as i16;
        }
        let w = _mm256_packs_epi32(q[0], q[1]);
        let w2 = _mm256_packs_epi32(q[2], q[3]);
        let b = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w, w2), perm);
        _mm256_storeu_si256(out.qs.as_mut_ptr().add(32 * g).cast(), b);
    }
    out.d = 1.0 / iscale;
}
