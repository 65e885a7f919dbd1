//! The packed products on AVX-512 with VNNI.

use std::arch::x86_64::*;

use super::{ActBlock, ActPrep, ByteBlock, GroupBlock, PackedMatrix, GROUP};
use crate::quant::avx2_gemm::TOKEN_CHUNK;

/// Weight formats, as the `KIND` parameter of the functions here.
pub(super) const Q5_0: u8 = 0;
pub(super) const Q4_1: u8 = 1;
pub(super) const Q8_0: u8 = 2;

/// Group blocks ahead of the one being read that are prefetched (decoding reads the
/// weights straight from memory).
const AHEAD_BLOCKS: usize = 16;

/// One block of sixteen rows, ready for products.
#[derive(Clone, Copy)]
struct Unpacked {
    /// Values `4i..4i + 4` of every row in register `i`, as unsigned bytes.
    x: [__m512i; 8],
    /// The rows' scales.
    d: __m512,
    /// The rows' minimums (Q4_1; zero otherwise).
    m: __m512,
}

/// The group blocks of one group of rows, in one of the two layouts.
#[derive(Clone, Copy)]
struct Group<'a> {
    nibbles: &'a [GroupBlock],
    bytes: &'a [ByteBlock],
}

impl Group<'_> {
    /// Prefetches the group block [`AHEAD_BLOCKS`] after block `b`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    fn prefetch<const KIND: u8>(&self, b: usize) {
        let (ahead, lines): (*const u8, usize) = if KIND == Q8_0 {
            (self.bytes.as_ptr().wrapping_add(b + AHEAD_BLOCKS).cast(), 9)
        } else {
            (
                self.nibbles.as_ptr().wrapping_add(b + AHEAD_BLOCKS).cast(),
                6,
            )
        };
        for line in 0..lines {
            // A prefetch never faults; the address may lie past the rows.
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * line).cast());
        }
    }

    /// Block `b` of the sixteen rows, ready for products.
    ///
    /// # Safety
    /// The CPU has the features; the group holds block `b` in `KIND`'s layout.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn unpack<const KIND: u8>(&self, b: usize) -> Unpacked {
        if KIND == Q8_0 {
            let g = self.bytes.get_unchecked(b);
            return Unpacked {
                x: std::array::from_fn(|i| _mm512_loadu_si512(g.values[i].as_ptr().cast())),
                d: _mm512_cvtph_ps(_mm256_load_si256(g.d.as_ptr().cast())),
                m: _mm512_setzero_ps(),
            };
        }
        let g = self.nibbles.get_unchecked(b);
        let m4 = _mm512_set1_epi8(0x0F);
        let sixteen = _mm512_set1_epi8(0x10);
        let mut x = [_mm512_setzero_si512(); 8];
        for i in 0..4 {
            let z = _mm512_load_si512(g.nibbles[i].as_ptr().cast());
            let lo = _mm512_and_si512(z, m4);
            let hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
            if KIND == Q5_0 {
                let (ml, mh) = (g.fifth_mask(i), g.fifth_mask(i + 4));
                x[i] = _mm512_mask_add_epi8(lo, _cvtu64_mask64(ml), lo, sixteen);
                x[i + 4] = _mm512_mask_add_epi8(hi, _cvtu64_mask64(mh), hi, sixteen);
            } else {
                (x[i], x[i + 4]) = (lo, hi);
            }
        }
        let m = if KIND == Q4_1 {
            _mm512_load_ps(g.extra.as_ptr().cast())
        } else {
            _mm512_setzero_ps()
        };
        Unpacked {
            x,
            d: _mm512_load_ps(g.d.as_ptr()),
            m,
        }
    }
}

/// The products of one group's rows with `RN` activation rows over `k` blocks, lane by
/// lane: the blocks unpacked here if `DIRECT`, else read from `x` (unpacked before).
///
/// # Safety
/// The CPU has the features; `group` (or `x`, unless `DIRECT`) and every row of `a`
/// and `p` hold `k` blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile<A: ActBlock, const KIND: u8, const RN: usize, const DIRECT: bool>(
    k: usize,
    group: Group<'_>,
    x: &[Unpacked],
    a: [&[A]; RN],
    p: [&[ActPrep]; RN],
) -> [__m512; RN] {
    // `acc[t][i]`: lane `i` of the 256-bit kernels, for sixteen rows.
    let mut acc = [[_mm512_setzero_ps(); 8]; RN];
    let mut mins = [_mm512_setzero_ps(); RN];
    for b in 0..k {
        let unpacked;
        let w = if DIRECT {
            group.prefetch::<KIND>(b);
            unpacked = group.unpack::<KIND>(b);
            &unpacked
        } else {
            x.get_unchecked(b)
        };
        for t in 0..RN {
            let (y, prep) = (a[t].get_unchecked(b).qs(), p[t].get_unchecked(b));
            let scale = _mm512_mul_ps(w.d, _mm512_set1_ps(prep.d));
            for (i, acc) in acc[t].iter_mut().enumerate() {
                let word = y.as_ptr().add(4 * i).cast::<i32>().read_unaligned();
                let sums = _mm512_dpbusd_epi32(
                    _mm512_set1_epi32(prep.start[i]),
                    w.x[i],
                    _mm512_set1_epi32(word),
                );
                *acc = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(sums), *acc);
            }
            if KIND == Q4_1 {
                mins[t] = _mm512_add_ps(mins[t], _mm512_mul_ps(w.m, _mm512_set1_ps(prep.s)));
            }
        }
    }
    // `hsum`'s order, ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), then the
    // minimum terms (+0 for the others, as the 256-bit kernels add).
    std::array::from_fn(|t| {
        let (l, add) = (&acc[t], _mm512_add_ps);
        let lanes = add(
            add(add(l[0], l[4]), add(l[2], l[6])),
            add(add(l[1], l[5]), add(l[3], l[7])),
        );
        add(lanes, mins[t])
    })
}

/// See [`super::gemm`].
///
/// # Safety
/// The CPU has the features; `a` and `prep` hold whole rows of `w.k()` blocks;
/// `groups` lies within `w`, whose layout is `KIND`'s.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn gemm<A: ActBlock, const KIND: u8>(
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
    // A group's blocks, unpacked once for every activation row of a chunk (from and
    // into registers when one step covers the chunk).
    let mut x: Vec<Unpacked> = Vec::new();
    let mut t0 = 0;
    while t0 < n {
        let t1 = (t0 + TOKEN_CHUNK).min(n);
        // Q8_0 blocks need no unpacking (their loads are all there is to it), so they
        // are always read in place.
        let reuse = t1 - t0 > 2 && KIND != Q8_0;
        for g in groups.clone() {
            let blocks = g * k..(g + 1) * k;
            let group = if KIND == Q8_0 {
                Group {
                    nibbles: &[],
                    bytes: w.bytes.get_unchecked(blocks),
                }
            } else {
                Group {
                    nibbles: w.blocks.get_unchecked(blocks),
                    bytes: &[],
                }
            };
            if reuse {
                x.clear();
                x.extend((0..k).map(|b| {
                    group.prefetch::<KIND>(b);
                    group.unpack::<KIND>(b)
                }));
            }
            let live = (w.rows - g * GROUP).min(GROUP);
            let mut t = t0;
            while t < t1 {
                let step = (t1 - t).min(2);
                let (a2, p2) = ([arow(t), arow(t + step - 1)], [prow(t), prow(t + step - 1)]);
                let (a1, p1) = ([a2[0]], [p2[0]]);
                let sums: &[__m512] = match (reuse, step) {
                    (true, 1) => &tile::<A, KIND, 1, false>(k, group, &x, a1, p1),
                    (true, _) => &tile::<A, KIND, 2, false>(k, group, &x, a2, p2),
                    (false, 1) => &tile::<A, KIND, 1, true>(k, group, &x, a1, p1),
                    (false, _) => &tile::<A, KIND, 2, true>(k, group, &x, a2, p2),
                };
                for (i, s) in sums.iter().enumerate() {
                    let mut lanes = [0f32; GROUP];
                    _mm512_storeu_ps(lanes.as_mut_ptr(), *s);
                    for (lane, &v) in lanes[..live].iter().enumerate() {
                        out(g * GROUP + lane, t + i, v);
                    }
                }
                t += step;
            }
        }
        t0 = t1;
    }
}
