//! The packed Q5_0 and Q4_1 products on AVX2: each group of sixteen rows as two halves
//! of eight, one row per 32-bit lane, the integer sums by `vpmaddubsw` + `vpmaddwd`.
//!
//! Q8_0 has no kernel here: its values plus 128 would saturate `vpmaddubsw`.

use std::arch::x86_64::*;

use super::{ActBlock, ActPrep, GroupBlock, PackedMatrix, GROUP};
use crate::quant::avx2::bytes_from_bits;
use crate::quant::avx2_gemm::TOKEN_CHUNK;

/// Rows per half group.
const HALF: usize = GROUP / 2;

/// Group blocks ahead of the one being read that are prefetched.
const AHEAD_BLOCKS: usize = 16;

/// One block of eight rows, ready for products.
#[derive(Clone, Copy)]
struct Unpacked {
    /// Values `4i..4i + 4` of every row in register `i`, as unsigned bytes.
    x: [__m256i; 8],
    /// The rows' scales.
    d: __m256,
    /// The rows' minimums (Q4_1; zero for Q5_0).
    m: __m256,
}

/// Half `h` of group block `g`: rows `8h..8h + 8`; Q5_0's fifth bits added unless
/// `MIN` (Q4_1).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn unpack<const MIN: bool>(g: &GroupBlock, h: usize) -> Unpacked {
    let m4 = _mm256_set1_epi8(0x0F);
    let sixteen = _mm256_set1_epi8(0x10);
    let mut x = [_mm256_setzero_si256(); 8];
    let fifth = |m: usize| {
        let bits = (g.fifth_mask(m) >> (32 * h)) as u32;
        _mm256_and_si256(bytes_from_bits(bits.to_le_bytes()), sixteen)
    };
    for i in 0..4 {
        // SAFETY: 32 readable bytes of the 64 (`h` is 0 or 1).
        let z = unsafe { _mm256_loadu_si256(g.nibbles[i][32 * h..].as_ptr().cast()) };
        let lo = _mm256_and_si256(z, m4);
        let hi = _mm256_and_si256(_mm256_srli_epi16(z, 4), m4);
        if MIN {
            (x[i], x[i + 4]) = (lo, hi);
        } else {
            x[i] = _mm256_or_si256(lo, fifth(i));
            x[i + 4] = _mm256_or_si256(hi, fifth(i + 4));
        }
    }
    // SAFETY: `d` holds 16 floats and `extra` 64 bytes; 8 of each are read.
    let (d, m) = unsafe {
        let m = if MIN {
            _mm256_loadu_ps(g.extra.as_ptr().cast::<f32>().add(HALF * h))
        } else {
            _mm256_setzero_ps()
        };
        (_mm256_loadu_ps(g.d[HALF * h..].as_ptr()), m)
    };
    Unpacked { x, d, m }
}

/// The products of eight rows with one activation row over `k` blocks, lane by lane:
/// the blocks unpacked here if `DIRECT`, else read from `x`.
///
/// # Safety
/// The CPU supports AVX2, FMA and F16C; `group` (or `x`, unless `DIRECT`) and `a` and
/// `p` hold `k` blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile<A: ActBlock, const MIN: bool, const DIRECT: bool>(
    k: usize,
    group: &[GroupBlock],
    h: usize,
    x: &[Unpacked],
    a: &[A],
    p: &[ActPrep],
) -> __m256 {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); 8];
    let mut mins = _mm256_setzero_ps();
    for b in 0..k {
        let unpacked;
        let w = if DIRECT {
            let ahead: *const u8 = group.as_ptr().wrapping_add(b + AHEAD_BLOCKS).cast();
            for line in 0..6 {
                // A prefetch never faults; the address may lie past the rows.
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * line).cast());
            }
            unpacked = unpack::<MIN>(group.get_unchecked(b), h);
            &unpacked
        } else {
            x.get_unchecked(b)
        };
        let (y, prep) = (a.get_unchecked(b).qs(), p.get_unchecked(b));
        let scale = _mm256_mul_ps(w.d, _mm256_set1_ps(prep.d));
        for (i, acc) in acc.iter_mut().enumerate() {
            let word = _mm256_set1_epi32(y.as_ptr().add(4 * i).cast::<i32>().read_unaligned());
            let sums = _mm256_madd_epi16(_mm256_maddubs_epi16(w.x[i], word), ones);
            let sums = if MIN {
                sums
            } else {
                _mm256_add_epi32(sums, _mm256_set1_epi32(prep.start[i]))
            };
            *acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sums), *acc);
        }
        if MIN {
            mins = _mm256_add_ps(mins, _mm256_mul_ps(w.m, _mm256_set1_ps(prep.s)));
        }
    }
    // `hsum`'s order, then the minimum terms (+0 for Q5_0, as the tiles add).
    let (l, add) = (&acc, _mm256_add_ps);
    let lanes = add(
        add(add(l[0], l[4]), add(l[2], l[6])),
        add(add(l[1], l[5]), add(l[3], l[7])),
    );
    add(lanes, mins)
}

/// See [`super::gemm`].
///
/// # Safety
/// The CPU supports AVX2, FMA and F16C; `a` and `prep` hold whole rows of `w.k()`
/// blocks; `groups` lies within `w`, a Q5_0 (or, if `MIN`, Q4_1) matrix.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn gemm<A: ActBlock, const MIN: bool>(
    w: &PackedMatrix,
    groups: std::ops::Range<usize>,
    a: &[A],
    prep: &[ActPrep],
    out: &mut impl FnMut(usize, usize, f32),
) {
    let k = w.k;
    let n = a.len() / k;
    let arow = |t: usize| a.get_unchecked(t * k..(t + 1) * k);
    let prow = |t: usize| prep.get_unchecked(t * k..(t + 1) * k);
    let mut x: Vec<Unpacked> = Vec::new();
    let mut t0 = 0;
    while t0 < n {
        let t1 = (t0 + TOKEN_CHUNK).min(n);
        let reuse = t1 - t0 > 1;
        for g in groups.clone() {
            let group = w.blocks.get_unchecked(g * k..(g + 1) * k);
            let live = (w.rows - g * GROUP).min(GROUP);
            for h in 0..2 {
                if h * HALF >= live {
                    break;
                }
                if reuse {
                    x.clear();
                    x.extend(group.iter().map(|blk| unpack::<MIN>(blk, h)));
                }
                for t in t0..t1 {
                    let sums = if reuse {
                        tile::<A, MIN, false>(k, group, h, &x, arow(t), prow(t))
                    } else {
                        tile::<A, MIN, true>(k, group, h, &x, arow(t), prow(t))
                    };
                    let mut lanes = [0f32; HALF];
                    _mm256_storeu_ps(lanes.as_mut_ptr(), sums);
                    let rows = (live - h * HALF).min(HALF);
                    for (lane, &v) in lanes[..rows].iter().enumerate() {
                        out(g * GROUP + h * HALF + lane, t, v);
                    }
                }
            }
        }
        t0 = t1;
    }
}
