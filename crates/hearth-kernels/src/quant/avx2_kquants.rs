//! Tiled AVX2 products of Q4_K and Q6_K weight rows with Q8_K activation rows.
//!
//! One weight super-block is unpacked (nibbles, high bits, sub-block scales) once
//! for `RN` activation rows. Per pair the integer sums are exact and the float steps
//! are those of candle's (ggml's) single-row AVX2 kernels, in the same order, so the
//! results are bit-identical to theirs.

use std::arch::x86_64::*;

use super::avx2::hsum;
use super::avx2_gemm::PREFETCH_BYTES;
use super::blocks::{BlockQ4K, BlockQ6K, BlockQ8K, QK_K};
use super::kquants::q4k_scales_mins;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load(p: &[i8]) -> __m256i {
    debug_assert!(p.len() >= 32);
    // SAFETY: at least 32 readable bytes; the load is unaligned.
    unsafe { _mm256_loadu_si256(p.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_u(p: &[u8]) -> __m256i {
    debug_assert!(p.len() >= 32);
    // SAFETY: as in `load`.
    unsafe { _mm256_loadu_si256(p.as_ptr().cast()) }
}

/// `m_j · (bsum_2j + bsum_2j+1)` for the eight sub-blocks of a Q4_K block with
/// minimums `mins` (as `i16`), in four float lanes (pairs of sub-blocks).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn min_sums(mins: __m128i, y: &BlockQ8K) -> __m128 {
    // SAFETY: `bsums` is 16 readable i16s; the load is unaligned.
    let q8sums = unsafe { _mm256_loadu_si256(y.bsums.as_ptr().cast()) };
    let q8s = _mm_hadd_epi16(
        _mm256_extracti128_si256(q8sums, 0),
        _mm256_extracti128_si256(q8sums, 1),
    );
    _mm_cvtepi32_ps(_mm_madd_epi16(mins, q8s))
}

/// The four float lanes of the minimum terms added up.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum4(v: __m128) -> f32 {
    let m = _mm_add_ps(v, _mm_movehl_ps(v, v));
    _mm_cvtss_f32(_mm_add_ss(m, _mm_movehdup_ps(m)))
}

/// The Q4_K products of one weight row with `RN` activation rows over `k` blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn tile_q4k<const RN: usize>(w: &[BlockQ4K], a: [&[BlockQ8K]; RN], k: usize) -> [f32; RN] {
    let m4 = _mm256_set1_epi8(0xF);
    let mut acc = [_mm256_setzero_ps(); RN];
    let mut acc_m = [_mm_setzero_ps(); RN];
    let ahead = PREFETCH_BYTES / std::mem::size_of::<BlockQ4K>();
    for b in 0..k {
        // A prefetch never faults; the address may lie past the row.
        _mm_prefetch::<_MM_HINT_T0>(w.as_ptr().wrapping_add(b + ahead).cast());
        let x = &w[b];
        let (sc, mn) = q4k_scales_mins(&x.scales);
        let (xd, xmin) = (x.d.to_f32(), x.dmin.to_f32());
        let mins = _mm_cvtepu8_epi16(_mm_set_epi64x(0, i64::from_le_bytes(mn)));
        let mut q4 = [[_mm256_setzero_si256(); 2]; QK_K / 64];
        let mut scale = [[_mm256_setzero_si256(); 2]; QK_K / 64];
        for j in 0..QK_K / 64 {
            let bits = load_u(&x.qs[32 * j..]);
            q4[j] = [
                _mm256_and_si256(bits, m4),
                _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4),
            ];
            scale[j] = [
                _mm256_set1_epi16(i16::from(sc[2 * j])),
                _mm256_set1_epi16(i16::from(sc[2 * j + 1])),
            ];
        }
        for t in 0..RN {
            let y = &a[t][b];
            let d = y.d * xd;
            let dmin = -y.d * xmin;
            acc_m[t] = _mm_fmadd_ps(_mm_set1_ps(dmin), min_sums(mins, y), acc_m[t]);
            let mut sumi = _mm256_setzero_si256();
            for j in 0..QK_K / 64 {
                let pl = _mm256_maddubs_epi16(q4[j][0], load(&y.qs[64 * j..]));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scale[j][0], pl));
                let ph = _mm256_maddubs_epi16(q4[j][1], load(&y.qs[64 * j + 32..]));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scale[j][1], ph));
            }
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc[t]);
        }
    }
    std::array::from_fn(|t| hsum(acc[t]) + hsum4(acc_m[t]))
}

/// The Q6_K products of one weight row with `RN` activation rows over `k` blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn tile_q6k<const RN: usize>(w: &[BlockQ6K], a: [&[BlockQ8K]; RN], k: usize) -> [f32; RN] {
    let m4 = _mm256_set1_epi8(0xF);
    let m2 = _mm256_set1_epi8(3);
    let m32s = _mm256_set1_epi8(32);
    let mut acc = [_mm256_setzero_ps(); RN];
    let ahead = PREFETCH_BYTES / std::mem::size_of::<BlockQ6K>();
    for b in 0..k {
        // As in `tile_q4k`.
        _mm_prefetch::<_MM_HINT_T0>(w.as_ptr().wrapping_add(b + ahead).cast());
        let x = &w[b];
        let xd = x.d.to_f32();
        let mut q6 = [[_mm256_setzero_si256(); 4]; QK_K / 128];
        let mut scale = [[_mm256_setzero_si256(); 4]; QK_K / 128];
        for (j, (q6j, sj)) in q6.iter_mut().zip(&mut scale).enumerate() {
            let bits1 = load_u(&x.ql[64 * j..]);
            let bits2 = load_u(&x.ql[64 * j + 32..]);
            let bits_h = load_u(&x.qh[32 * j..]);
            let high = |shift: i32| {
                let h = match shift {
                    0 => bits_h,
                    2 => _mm256_srli_epi16(bits_h, 2),
                    4 => _mm256_srli_epi16(bits_h, 4),
                    _ => _mm256_srli_epi16(bits_h, 6),
                };
                _mm256_slli_epi16(_mm256_and_si256(h, m2), 4)
            };
            *q6j = [
                _mm256_or_si256(_mm256_and_si256(bits1, m4), high(0)),
                _mm256_or_si256(_mm256_and_si256(bits2, m4), high(2)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits1, 4), m4), high(4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits2, 4), m4), high(6)),
            ];
            for (g, s) in sj.iter_mut().enumerate() {
                let is = 8 * j + 2 * g;
                *s = _mm256_set_m128i(
                    _mm_set1_epi16(i16::from(x.scales[is + 1])),
                    _mm_set1_epi16(i16::from(x.scales[is])),
                );
            }
        }
        for t in 0..RN {
            let y = &a[t][b];
            let d = y.d * xd;
            let mut sumi = _mm256_setzero_si256();
            for j in 0..QK_K / 128 {
                let mut p = [_mm256_setzero_si256(); 4];
                for (g, pg) in p.iter_mut().enumerate() {
                    let q8 = load(&y.qs[128 * j + 32 * g..]);
                    let centred = _mm256_sub_epi16(
                        _mm256_maddubs_epi16(q6[j][g], q8),
                        _mm256_maddubs_epi16(m32s, q8),
                    );
                    *pg = _mm256_madd_epi16(scale[j][g], centred);
                }
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p[0], p[1]));
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p[2], p[3]));
            }
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc[t]);
        }
    }
    std::array::from_fn(|t| hsum(acc[t]))
}

/// The whole-product function `$name` over a one-row tile `$tile::<RN>` (`RN` up to
/// `$most`, at most 8) for weights `$w`, with `$features` enabled.
macro_rules! kgemm {
    ($features:literal, $most:literal, $name:ident, $tile:ident, $w:ty) => {
        /// `out(r, t, Σ w[r] · a[t])` for the rows of `w` and `a`, `k` blocks each.
        ///
        /// # Safety
        /// The CPU supports every feature the function enables; `w` and `a` hold whole
        /// rows of `k` blocks.
        #[target_feature(enable = $features)]
        pub(super) unsafe fn $name(
            w: &[$w],
            a: &[BlockQ8K],
            k: usize,
            out: &mut impl FnMut(usize, usize, f32),
        ) {
            const TOKEN_CHUNK: usize = 32;
            let (rows, n) = (w.len() / k, a.len() / k);
            let arow = |t: usize| &a[t * k..(t + 1) * k];
            let mut t0 = 0;
            while t0 < n {
                let t1 = (t0 + TOKEN_CHUNK).min(n);
                for r in 0..rows {
                    let wr = &w[r * k..(r + 1) * k];
                    let mut t = t0;
                    while t < t1 {
                        let step = (t1 - t).min($most);
                        let rows = |i: usize| arow(t + i);
                        let v: &[f32] = match step {
                            1 => &$tile::<1>(wr, [arow(t)], k),
                            2 => &$tile::<2>(wr, [arow(t), arow(t + 1)], k),
                            3 => &$tile::<3>(wr, [arow(t), arow(t + 1), arow(t + 2)], k),
                            4 => &$tile::<4>(wr, std::array::from_fn(rows), k),
                            5 => &$tile::<5>(wr, std::array::from_fn(rows), k),
                            6 => &$tile::<6>(wr, std::array::from_fn(rows), k),
                            7 => &$tile::<7>(wr, std::array::from_fn(rows), k),
                            _ => &$tile::<8>(wr, std::array::from_fn(rows), k),
                        };
                        for (i, &x) in v.iter().enumerate() {
                            out(r, t + i, x);
                        }
                        t += step;
                    }
                }
                t0 = t1;
            }
        }
    };
}

pub(super) use kgemm;

kgemm!("avx2,fma,f16c", 4, gemm_q4k, tile_q4k, BlockQ4K);
kgemm!("avx2,fma,f16c", 4, gemm_q6k, tile_q6k, BlockQ6K);
