//! AVX-512 products of Q4_K and Q6_K weight rows with Q8_K activation rows.
//!
//! The integer work of [`super::avx2_kquants`] on 512-bit registers: 64 values per
//! `vpmaddubsw`, and the sub-block scales applied and summed by one `vpdpwssd` (where
//! the 256-bit kernels need a `vpmaddwd` and an add for every 32 values). The sixteen
//! `i32` lanes are folded to eight before the float steps, each lane holding the same
//! integer as the 256-bit kernel's lane, so the float steps and the results are
//! theirs, bit for bit.

use std::arch::x86_64::*;

use super::avx2::hsum;
use super::avx2_gemm::PREFETCH_BYTES;
use super::avx2_kquants::{hsum4, kgemm, min_sums};
use super::blocks::{BlockQ4K, BlockQ6K, BlockQ8K, QK_K};
use super::kquants::q4k_scales_mins;

/// The 64 activations at `qs[at..]`.
///
/// # Safety
/// `at + 64 <= qs.len()`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn load64(qs: &[i8], at: usize) -> __m512i {
    _mm512_loadu_si512(qs.as_ptr().add(at).cast())
}

/// The sixteen `i32` lanes folded to eight (lane `l` plus lane `l + 8`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn fold(v: __m512i) -> __m256i {
    _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v))
}

/// `i16` lanes that repeat `scales[first + m / per]` for lane `m` of 32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn spread_i16(scales: __m512i, first: i16, per: i16) -> __m512i {
    let lanes: [i16; 32] = std::array::from_fn(|m| first + m as i16 / per);
    // SAFETY: 32 i16 are 64 readable bytes.
    let index = unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) };
    _mm512_permutexvar_epi16(index, scales)
}

/// The Q4_K products of one weight row with `RN` activation rows over `k` blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn tile_q4k<const RN: usize>(w: &[BlockQ4K], a: [&[BlockQ8K]; RN], k: usize) -> [f32; RN] {
    let m4 = _mm512_set1_epi8(0xF);
    // The low nibbles of 32 bytes, then their high nibbles: sub-blocks 2j and 2j + 1.
    let nibble_shift = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0);
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
        let sc16 =
            _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_set_epi64x(0, i64::from_le_bytes(sc))));
        let mut q4 = [_mm512_setzero_si512(); QK_K / 64];
        let mut scale = [_mm512_setzero_si512(); QK_K / 64];
        for j in 0..QK_K / 64 {
            // SAFETY: `qs` holds 128 bytes; bytes 32j..32j + 32 are read.
            let bits = unsafe { _mm256_loadu_si256(x.qs.as_ptr().add(32 * j).cast()) };
            let both = _mm512_broadcast_i64x4(bits);
            q4[j] = _mm512_and_si512(_mm512_srlv_epi64(both, nibble_shift), m4);
            scale[j] = spread_i16(sc16, 2 * j as i16, 16);
        }
        for t in 0..RN {
            let y = &a[t][b];
            let d = y.d * xd;
            let dmin = -y.d * xmin;
            acc_m[t] = _mm_fmadd_ps(_mm_set1_ps(dmin), min_sums(mins, y), acc_m[t]);
            let mut sumi = _mm512_setzero_si512();
            for j in 0..QK_K / 64 {
                // SAFETY: `qs` holds 256 values.
                let q8 = unsafe { load64(&y.qs, 64 * j) };
                let p = _mm512_maddubs_epi16(q4[j], q8);
                sumi = _mm512_dpwssd_epi32(sumi, p, scale[j]);
            }
            let sumi = fold(sumi);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc[t]);
        }
    }
    std::array::from_fn(|t| hsum(acc[t]) + hsum4(acc_m[t]))
}

/// The Q6_K products of one weight row with `RN` activation rows over `k` blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn tile_q6k<const RN: usize>(w: &[BlockQ6K], a: [&[BlockQ8K]; RN], k: usize) -> [f32; RN] {
    let m4 = _mm512_set1_epi8(0xF);
    let m2 = _mm512_set1_epi8(3);
    let m32s = _mm512_set1_epi8(32);
    // High bit pairs of groups 0 and 1 (shifts 0, 2), then of groups 2 and 3 (4, 6).
    let high_shift = [
        _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0),
        _mm512_set_epi64(6, 6, 6, 6, 4, 4, 4, 4),
    ];
    let mut acc = [_mm256_setzero_ps(); RN];
    let ahead = PREFETCH_BYTES / std::mem::size_of::<BlockQ6K>();
    for b in 0..k {
        // As in `tile_q4k`.
        _mm_prefetch::<_MM_HINT_T0>(w.as_ptr().wrapping_add(b + ahead).cast());
        let x = &w[b];
        let xd = x.d.to_f32();
        // SAFETY: `scales` is 16 readable bytes.
        let sc16 = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(unsafe {
            _mm_loadu_si128(x.scales.as_ptr().cast())
        }));
        // Chunk 2j + h holds values 128j + 64h .. + 64: groups 2h and 2h + 1 of 32.
        let mut q6 = [_mm512_setzero_si512(); QK_K / 64];
        let mut scale = [_mm512_setzero_si512(); QK_K / 64];
        for j in 0..QK_K / 128 {
            // SAFETY: `ql` holds 128 bytes and `qh` 64; the loads are unaligned.
            let low = unsafe { _mm512_loadu_si512(x.ql.as_ptr().add(64 * j).cast()) };
            let bits_h = unsafe { _mm256_loadu_si256(x.qh.as_ptr().add(32 * j).cast()) };
            let high = _mm512_broadcast_i64x4(bits_h);
            for h in 0..2 {
                let nib = if h == 0 {
                    low
                } else {
                    _mm512_srli_epi16(low, 4)
                };
                let hi2 = _mm512_and_si512(_mm512_srlv_epi64(high, high_shift[h]), m2);
                q6[2 * j + h] =
                    _mm512_or_si512(_mm512_and_si512(nib, m4), _mm512_slli_epi16(hi2, 4));
                // Each 16 values (a 128-bit lane of products) has its own scale.
                scale[2 * j + h] = spread_i16(sc16, (8 * j + 4 * h) as i16, 8);
            }
        }
        for t in 0..RN {
            let y = &a[t][b];
            let d = y.d * xd;
            let mut sumi = _mm512_setzero_si512();
            for (c, (q, s)) in q6.iter().zip(&scale).enumerate() {
                // SAFETY: `qs` holds 256 values.
                let q8 = unsafe { load64(&y.qs, 64 * c) };
                let centred =
                    _mm512_sub_epi16(_mm512_maddubs_epi16(*q, q8), _mm512_maddubs_epi16(m32s, q8));
                sumi = _mm512_dpwssd_epi32(sumi, centred, *s);
            }
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(fold(sumi)), acc[t]);
        }
    }
    std::array::from_fn(|t| hsum(acc[t]))
}

kgemm!(
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    8,
    gemm_q4k,
    tile_q4k,
    BlockQ4K
);
kgemm!(
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    8,
    gemm_q6k,
    tile_q6k,
    BlockQ6K
);
