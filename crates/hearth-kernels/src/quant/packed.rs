//! Q5_0 and Q4_1 weights repacked sixteen rows side by side, for AVX-512 products
//! where one `vpdpbusd` advances sixteen rows at once.
//!
//! The tiles of [`super::avx2_gemm`] and [`super::avx512_gemm`] give each (row, token)
//! pair its own register and spend about five operations per pair of blocks. Here
//! lane `r` of a register belongs to row `r` of a group of sixteen: four bytes of each
//! row sit side by side, and one `vpdpbusd` against four activation bytes broadcast to
//! every lane advances all sixteen rows (ggml's `repack.cpp` does the same for Q4_0
//! with eight rows).
//!
//! The float steps are those of the 256-bit kernels and of ggml's AVX2 `vec_dot`:
//! values `4i..4i + 4` of every block feed lane `i` of eight, each lane is scaled by
//! `d_w · d_a` and accumulated block after block, the eight lanes are added in
//! [`super::avx2`]'s `hsum` order, and Q4_1's minimum terms are summed apart and added
//! last. So results equal theirs bit for bit, alone or in any batch.

use half::f16;

use super::blocks::{BlockQ4_1, BlockQ5_0, BlockQ8_0, BlockQ8_1, QK};

/// Rows packed side by side.
pub const GROUP: usize = 16;

/// One block (32 values) of sixteen rows: 384 bytes, six cache lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct GroupBlock {
    /// Register `i`, lane `r`: bytes `4i..4i + 4` of row `r`'s packed nibbles (low
    /// nibbles: values `4i + j`; high nibbles: values `16 + 4i + j`).
    nibbles: [[u8; 64]; 4],
    /// Q5_0: eight little-endian `u64` masks, mask `m` (values `4m..4m + 4`) with bit
    /// `4r + j` the fifth bit of value `4m + j` of row `r`. Q4_1: the rows' minimums
    /// as sixteen little-endian `f32`.
    extra: [u8; 64],
    /// The rows' scales.
    d: [f32; GROUP],
}

const _: () = assert!(std::mem::size_of::<GroupBlock>() == 384);

impl GroupBlock {
    const ZERO: Self = Self {
        nibbles: [[0; 64]; 4],
        extra: [0; 64],
        d: [0.0; GROUP],
    };

    /// Row `lane`'s nibbles into the group.
    fn put_nibbles(&mut self, lane: usize, qs: &[u8; QK / 2]) {
        for i in 0..4 {
            self.nibbles[i][4 * lane..4 * lane + 4].copy_from_slice(&qs[4 * i..4 * i + 4]);
        }
    }

    /// Row `lane`'s nibbles out of the group.
    fn nibbles_of(&self, lane: usize) -> [u8; QK / 2] {
        std::array::from_fn(|b| self.nibbles[b / 4][4 * lane + b % 4])
    }

    #[inline]
    fn fifth_mask(&self, m: usize) -> u64 {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&self.extra[8 * m..8 * m + 8]);
        u64::from_le_bytes(bytes)
    }
}

/// The weight formats that can be packed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackedKind {
    /// Q5_0 weights against Q8_0 activations.
    Q5_0,
    /// Q4_1 weights against Q8_1 activations.
    Q4_1,
}

/// A matrix in groups of [`GROUP`] rows (the last group padded with zero rows).
pub struct PackedMatrix {
    kind: PackedKind,
    blocks: Vec<GroupBlock>,
    rows: usize,
    k: usize,
}

impl std::fmt::Debug for PackedMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, rows, k) = (self.kind, self.rows, self.k);
        write!(f, "PackedMatrix({kind:?}, {rows} rows x {k} blocks)")
    }
}

impl PackedMatrix {
    fn empty(kind: PackedKind, blocks: usize, k: usize) -> Self {
        assert!(
            k > 0 && blocks.is_multiple_of(k),
            "PackedMatrix: not whole rows"
        );
        let rows = blocks / k;
        Self {
            kind,
            blocks: vec![GroupBlock::ZERO; rows.div_ceil(GROUP) * k],
            rows,
            k,
        }
    }

    /// The group block holding block `b` of row `r`, and the row's lane in it.
    fn at(&mut self, r: usize, b: usize) -> (&mut GroupBlock, usize) {
        (&mut self.blocks[(r / GROUP) * self.k + b], r % GROUP)
    }

    /// Packs the Q5_0 rows of `w`, `k` blocks each.
    ///
    /// # Panics
    /// If `k` is 0 or `w` is not a whole number of rows.
    pub fn q5_0(w: &[BlockQ5_0], k: usize) -> Self {
        let mut p = Self::empty(PackedKind::Q5_0, w.len(), k);
        for (i, x) in w.iter().enumerate() {
            let (g, lane) = p.at(i / k, i % k);
            g.put_nibbles(lane, &x.qs);
            let qh = u32::from_le_bytes(x.qh);
            for m in 0..8 {
                let mask = g.fifth_mask(m) | u64::from((qh >> (4 * m)) & 0xF) << (4 * lane);
                g.extra[8 * m..8 * m + 8].copy_from_slice(&mask.to_le_bytes());
            }
            g.d[lane] = x.d.to_f32();
        }
        p
    }

    /// Packs the Q4_1 rows of `w`, `k` blocks each.
    ///
    /// # Panics
    /// If `k` is 0 or `w` is not a whole number of rows.
    pub fn q4_1(w: &[BlockQ4_1], k: usize) -> Self {
        let mut p = Self::empty(PackedKind::Q4_1, w.len(), k);
        for (i, x) in w.iter().enumerate() {
            let (g, lane) = p.at(i / k, i % k);
            g.put_nibbles(lane, &x.qs);
            g.extra[4 * lane..4 * lane + 4].copy_from_slice(&x.m.to_f32().to_le_bytes());
            g.d[lane] = x.d.to_f32();
        }
        p
    }

    /// The weight format.
    pub fn kind(&self) -> PackedKind {
        self.kind
    }

    /// Rows (without the padding).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Blocks per row.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Groups of [`GROUP`] rows.
    pub fn groups(&self) -> usize {
        self.rows.div_ceil(GROUP)
    }

    /// Bytes held.
    pub fn n_bytes(&self) -> usize {
        std::mem::size_of_val(&self.blocks[..])
    }

    fn group_block(&self, r: usize, b: usize) -> (&GroupBlock, usize) {
        (&self.blocks[(r / GROUP) * self.k + b], r % GROUP)
    }

    /// Block `b` of row `r` of a Q5_0 matrix as it was before packing.
    pub fn block_q5_0(&self, r: usize, b: usize) -> BlockQ5_0 {
        let (g, lane) = self.group_block(r, b);
        let qh = (0..8).fold(0u32, |qh, m| {
            qh | ((((g.fifth_mask(m) >> (4 * lane)) & 0xF) as u32) << (4 * m))
        });
        BlockQ5_0 {
            d: f16::from_f32(g.d[lane]),
            qh: qh.to_le_bytes(),
            qs: g.nibbles_of(lane),
        }
    }

    /// Block `b` of row `r` of a Q4_1 matrix as it was before packing.
    pub fn block_q4_1(&self, r: usize, b: usize) -> BlockQ4_1 {
        let (g, lane) = self.group_block(r, b);
        let m = f32::from_le_bytes(std::array::from_fn(|i| g.extra[4 * lane + i]));
        BlockQ4_1 {
            d: f16::from_f32(g.d[lane]),
            m: f16::from_f32(m),
            qs: g.nibbles_of(lane),
        }
    }
}

/// What the packed products need of each activation block besides its bytes.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct ActPrep {
    /// Where lane `i`'s integer sum starts: `−16 · Σ qs[4i..4i + 4]` (Q5_0's
    /// centring) or 0.
    start: [i32; 8],
    /// The block's scale.
    d: f32,
    /// Q8_1's `d · Σ qs` (0 for Q8_0).
    s: f32,
}

/// Activation blocks with 32 signed bytes.
pub trait ActBlock: Copy {
    /// The quantized values.
    fn qs(&self) -> &[i8; QK];
}

impl ActBlock for BlockQ8_0 {
    fn qs(&self) -> &[i8; QK] {
        &self.qs
    }
}

impl ActBlock for BlockQ8_1 {
    fn qs(&self) -> &[i8; QK] {
        &self.qs
    }
}

/// [`ActPrep`] of every Q8_0 block of `a` (for Q5_0 weights), once per input.
pub fn prepare_q8_0(a: &[BlockQ8_0]) -> Vec<ActPrep> {
    a.iter()
        .map(|y| ActPrep {
            start: std::array::from_fn(|i| {
                -16 * y.qs[4 * i..4 * i + 4]
                    .iter()
                    .map(|&q| i32::from(q))
                    .sum::<i32>()
            }),
            d: y.d.to_f32(),
            s: 0.0,
        })
        .collect()
}

/// [`ActPrep`] of every Q8_1 block of `a` (for Q4_1 weights), once per input.
pub fn prepare_q8_1(a: &[BlockQ8_1]) -> Vec<ActPrep> {
    a.iter()
        .map(|y| ActPrep {
            start: [0; 8],
            d: y.d.to_f32(),
            s: y.s.to_f32(),
        })
        .collect()
}

/// Whether [`gemm`] runs on this CPU (AVX-512 F/BW/VL with VNNI, not set aside by
/// `HEARTH_KERNELS`).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return super::use_tiles(super::Tiles::Avx512);
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `out(r, t, Σ w[r] · a[t])` for the rows in groups `groups` of `w` and the
/// activation rows of `a` (Q8_0 blocks for Q5_0 weights, Q8_1 for Q4_1; `prep` from
/// [`prepare_q8_0`] or [`prepare_q8_1`] on `a`).
///
/// # Panics
/// If [`available`] is false, `groups` goes past `w`, or `a` or `prep` is not whole
/// rows of `w.k()` blocks.
pub fn gemm<A: ActBlock>(
    w: &PackedMatrix,
    groups: std::ops::Range<usize>,
    a: &[A],
    prep: &[ActPrep],
    out: &mut impl FnMut(usize, usize, f32),
) {
    assert!(
        a.len().is_multiple_of(w.k) && prep.len() == a.len(),
        "packed gemm: activations are not whole rows"
    );
    assert!(groups.end <= w.groups(), "packed gemm: groups");
    assert!(available(), "packed gemm: the CPU lacks AVX-512 VNNI");
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has the features (checked just above); `a` and `prep` hold
    // whole rows of `k` blocks and every group `k` blocks.
    unsafe {
        match w.kind {
            PackedKind::Q5_0 => x86::gemm::<A, false>(w, groups, a, prep, out),
            PackedKind::Q4_1 => x86::gemm::<A, true>(w, groups, a, prep, out),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{ActBlock, ActPrep, GroupBlock, PackedMatrix, GROUP};
    use crate::quant::avx2_gemm::TOKEN_CHUNK;

    /// Group blocks ahead of the one being read that are prefetched (decoding reads
    /// the weights straight from memory).
    const AHEAD_BLOCKS: usize = 16;

    /// Prefetches the group block [`AHEAD_BLOCKS`] after block `b` of `w`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    fn prefetch(w: &[GroupBlock], b: usize) {
        let ahead: *const u8 = w.as_ptr().wrapping_add(b + AHEAD_BLOCKS).cast();
        for line in 0..6 {
            // A prefetch never faults; the address may lie past the rows.
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * line).cast());
        }
    }

    /// The sixteen rows' values of one group block as unsigned bytes, eight registers
    /// of four values each; Q5_0's fifth bits added unless `MIN` (Q4_1).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    fn unpack<const MIN: bool>(g: &GroupBlock) -> [__m512i; 8] {
        let m4 = _mm512_set1_epi8(0x0F);
        let sixteen = _mm512_set1_epi8(0x10);
        let mut x = [_mm512_setzero_si512(); 8];
        for i in 0..4 {
            // SAFETY: 64 readable bytes, 64-byte aligned.
            let z = unsafe { _mm512_load_si512(g.nibbles[i].as_ptr().cast()) };
            let lo = _mm512_and_si512(z, m4);
            let hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
            if MIN {
                (x[i], x[i + 4]) = (lo, hi);
            } else {
                let (ml, mh) = (g.fifth_mask(i), g.fifth_mask(i + 4));
                x[i] = _mm512_mask_add_epi8(lo, _cvtu64_mask64(ml), lo, sixteen);
                x[i + 4] = _mm512_mask_add_epi8(hi, _cvtu64_mask64(mh), hi, sixteen);
            }
        }
        x
    }

    /// The products of one group's rows with `RN` activation rows, lane by lane: `w`
    /// the group's blocks, `x(b)` block `b`'s values as [`unpack`] gives them.
    ///
    /// # Safety
    /// The CPU has the features; every row of `a` and `p` holds `w.len()` blocks.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn tile<A: ActBlock, const MIN: bool, const RN: usize>(
        w: &[GroupBlock],
        x: impl Fn(usize) -> [__m512i; 8],
        a: [&[A]; RN],
        p: [&[ActPrep]; RN],
    ) -> [__m512; RN] {
        // `acc[t][i]`: lane `i` of the 256-bit kernels, for sixteen rows.
        let mut acc = [[_mm512_setzero_ps(); 8]; RN];
        let mut mins = [_mm512_setzero_ps(); RN];
        for (b, g) in w.iter().enumerate() {
            let x = x(b);
            let dx = _mm512_load_ps(g.d.as_ptr());
            for t in 0..RN {
                let (y, prep) = (a[t].get_unchecked(b).qs(), p[t].get_unchecked(b));
                let scale = _mm512_mul_ps(dx, _mm512_set1_ps(prep.d));
                for (i, acc) in acc[t].iter_mut().enumerate() {
                    let word = y.as_ptr().add(4 * i).cast::<i32>().read_unaligned();
                    let sums = _mm512_dpbusd_epi32(
                        _mm512_set1_epi32(prep.start[i]),
                        x[i],
                        _mm512_set1_epi32(word),
                    );
                    *acc = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(sums), *acc);
                }
                if MIN {
                    let m = _mm512_load_ps(g.extra.as_ptr().cast());
                    let term = _mm512_mul_ps(m, _mm512_set1_ps(prep.s));
                    mins[t] = _mm512_add_ps(mins[t], term);
                }
            }
        }
        // `hsum`'s order, ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), then the
        // minimum terms (+0 for Q5_0, as the 256-bit kernels add).
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
    /// `groups` lies within `w`.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
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
        // A group's values, unpacked once for every activation row of a chunk (from
        // and into registers when one step covers the chunk).
        let mut x: Vec<[__m512i; 8]> = Vec::new();
        let mut t0 = 0;
        while t0 < n {
            let t1 = (t0 + TOKEN_CHUNK).min(n);
            let reuse = t1 - t0 > 2;
            for g in groups.clone() {
                let wg = w.blocks.get_unchecked(g * k..(g + 1) * k);
                if reuse {
                    x.clear();
                    x.extend(wg.iter().enumerate().map(|(b, blk)| {
                        prefetch(wg, b);
                        unpack::<MIN>(blk)
                    }));
                }
                let direct = |b: usize| {
                    prefetch(wg, b);
                    unpack::<MIN>(wg.get_unchecked(b))
                };
                let live = (w.rows - g * GROUP).min(GROUP);
                let (ap, pp) = (arow, prow);
                let mut t = t0;
                while t < t1 {
                    let step = (t1 - t).min(2);
                    let sums: &[__m512] = match (reuse, step) {
                        (true, 1) => {
                            &tile::<A, MIN, 1>(wg, |b| *x.get_unchecked(b), [ap(t)], [pp(t)])
                        }
                        (true, _) => &tile::<A, MIN, 2>(
                            wg,
                            |b| *x.get_unchecked(b),
                            [ap(t), ap(t + 1)],
                            [pp(t), pp(t + 1)],
                        ),
                        (false, 1) => &tile::<A, MIN, 1>(wg, direct, [ap(t)], [pp(t)]),
                        (false, _) => {
                            &tile::<A, MIN, 2>(wg, direct, [ap(t), ap(t + 1)], [pp(t), pp(t + 1)])
                        }
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
}
