//! Q5_0, Q4_1 and Q8_0 weights repacked sixteen rows side by side, for AVX-512
//! products where one `vpdpbusd` advances sixteen rows at once (and AVX2 ones for Q5_0
//! and Q4_1, eight rows per instruction).
//!
//! The tiles of `avx2_gemm` give each (row, token) pair its own register and spend
//! about five operations per pair of blocks. Here
//! lane `r` of a register belongs to row `r` of a group of sixteen: four bytes of each
//! row sit side by side, and one `vpdpbusd` against four activation bytes broadcast to
//! every lane advances all sixteen rows (ggml's `repack.cpp` does the same for Q4_0
//! with eight rows).
//!
//! The float steps are those of the 256-bit kernels and of ggml's AVX2 `vec_dot`:
//! values `4i..4i + 4` of every block feed lane `i` of eight, each lane is scaled by
//! `d_w · d_a` and accumulated block after block, the eight lanes are added in
//! `avx2::hsum`'s order, and Q4_1's minimum terms are summed apart and added
//! last. So results equal theirs bit for bit, alone or in any batch. (Q8_0 weights are
//! stored plus 128, unsigned, and each lane starts from `−128 · Σ` of its four
//! activations, the same integers as the 256-bit kernels' sign trick.)

use half::f16;

use super::blocks::{BlockQ4_1, BlockQ5_0, BlockQ8_0, BlockQ8_1, QK};

/// Rows packed side by side.
pub const GROUP: usize = 16;

#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_avx2;

#[cfg(all(test, target_arch = "x86_64"))]
mod tests;

/// One block (32 values) of sixteen Q5_0 or Q4_1 rows: 384 bytes, six cache lines.
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

/// One block (32 values) of sixteen Q8_0 rows: 544 bytes, the size of the rows' own
/// blocks.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct ByteBlock {
    /// Register `i`, lane `r`: values `4i..4i + 4` of row `r`, plus 128.
    values: [[u8; 64]; 8],
    /// The rows' scales (`f16` bits).
    d: [u16; GROUP],
}

const _: () = assert!(std::mem::size_of::<ByteBlock>() == 544);

impl ByteBlock {
    const ZERO: Self = Self {
        values: [[128; 64]; 8],
        d: [0; GROUP],
    };
}

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
    /// Q8_0 weights against Q8_0 activations.
    Q8_0,
}

/// A matrix in groups of [`GROUP`] rows (the last group padded with zero rows).
pub struct PackedMatrix {
    kind: PackedKind,
    /// Q5_0 and Q4_1 groups (empty for Q8_0).
    blocks: Vec<GroupBlock>,
    /// Q8_0 groups (empty otherwise).
    bytes: Vec<ByteBlock>,
    rows: usize,
    k: usize,
}

impl std::fmt::Debug for PackedMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, rows, k) = (self.kind, self.rows, self.k);
        write!(f, "PackedMatrix({kind:?}, {rows} rows x {k} blocks)")
    }
}

/// Rows packed between two calls of a packing progress callback.
pub const PROGRESS_ROWS: usize = 1024;

/// The rows of `w` (`k` blocks each) packed group by group, `put` writing a row's
/// block into its lane; `done(rows)` after every [`PROGRESS_ROWS`] rows and at the end.
/// Memory is written group by group, so a caller that drops the source's pages behind
/// never holds both copies whole.
fn pack_groups<B, G: Copy>(
    w: &[B],
    k: usize,
    zero: G,
    put: impl Fn(&mut G, usize, &B),
    done: &mut dyn FnMut(usize),
) -> (Vec<G>, usize) {
    assert!(
        k > 0 && w.len().is_multiple_of(k),
        "PackedMatrix: not whole rows"
    );
    let rows = w.len() / k;
    let mut out = Vec::with_capacity(rows.div_ceil(GROUP) * k);
    for (g, group_rows) in w.chunks(GROUP * k).enumerate() {
        let start = out.len();
        out.extend(std::iter::repeat_n(zero, k));
        for (lane, row) in group_rows.chunks_exact(k).enumerate() {
            for (block, x) in out[start..].iter_mut().zip(row) {
                put(block, lane, x);
            }
        }
        let packed = ((g + 1) * GROUP).min(rows);
        if packed.is_multiple_of(PROGRESS_ROWS) || packed == rows {
            done(packed);
        }
    }
    (out, rows)
}

impl PackedMatrix {
    /// Packs the Q5_0 rows of `w`, `k` blocks each.
    ///
    /// # Panics
    /// If `k` is 0 or `w` is not a whole number of rows.
    pub fn q5_0(w: &[BlockQ5_0], k: usize) -> Self {
        Self::q5_0_with_progress(w, k, &mut |_| {})
    }

    /// [`PackedMatrix::q5_0`], calling `done(rows)` as the rows are packed (every
    /// [`PROGRESS_ROWS`] and at the end).
    pub fn q5_0_with_progress(w: &[BlockQ5_0], k: usize, done: &mut dyn FnMut(usize)) -> Self {
        let put = |g: &mut GroupBlock, lane: usize, x: &BlockQ5_0| {
            g.put_nibbles(lane, &x.qs);
            let qh = u32::from_le_bytes(x.qh);
            for m in 0..8 {
                let mask = g.fifth_mask(m) | u64::from((qh >> (4 * m)) & 0xF) << (4 * lane);
                g.extra[8 * m..8 * m + 8].copy_from_slice(&mask.to_le_bytes());
            }
            g.d[lane] = x.d.to_f32();
        };
        let (blocks, rows) = pack_groups(w, k, GroupBlock::ZERO, put, done);
        Self {
            kind: PackedKind::Q5_0,
            blocks,
            bytes: Vec::new(),
            rows,
            k,
        }
    }

    /// Packs the Q4_1 rows of `w`, `k` blocks each.
    ///
    /// # Panics
    /// If `k` is 0 or `w` is not a whole number of rows.
    pub fn q4_1(w: &[BlockQ4_1], k: usize) -> Self {
        Self::q4_1_with_progress(w, k, &mut |_| {})
    }

    /// [`PackedMatrix::q4_1`] with progress, as [`PackedMatrix::q5_0_with_progress`].
    pub fn q4_1_with_progress(w: &[BlockQ4_1], k: usize, done: &mut dyn FnMut(usize)) -> Self {
        let put = |g: &mut GroupBlock, lane: usize, x: &BlockQ4_1| {
            g.put_nibbles(lane, &x.qs);
            g.extra[4 * lane..4 * lane + 4].copy_from_slice(&x.m.to_f32().to_le_bytes());
            g.d[lane] = x.d.to_f32();
        };
        let (blocks, rows) = pack_groups(w, k, GroupBlock::ZERO, put, done);
        Self {
            kind: PackedKind::Q4_1,
            blocks,
            bytes: Vec::new(),
            rows,
            k,
        }
    }

    /// Packs the Q8_0 rows of `w`, `k` blocks each (values in [-127, 127], as ggml's
    /// quantizer makes them).
    ///
    /// # Panics
    /// If `k` is 0 or `w` is not a whole number of rows.
    pub fn q8_0(w: &[BlockQ8_0], k: usize) -> Self {
        Self::q8_0_with_progress(w, k, &mut |_| {})
    }

    /// [`PackedMatrix::q8_0`] with progress, as [`PackedMatrix::q5_0_with_progress`].
    pub fn q8_0_with_progress(w: &[BlockQ8_0], k: usize, done: &mut dyn FnMut(usize)) -> Self {
        let put = |g: &mut ByteBlock, lane: usize, x: &BlockQ8_0| {
            for (i, word) in x.qs.chunks_exact(4).enumerate() {
                let plus_128 = word.iter().map(|&q| (q as u8) ^ 0x80);
                for (dst, v) in g.values[i][4 * lane..4 * lane + 4].iter_mut().zip(plus_128) {
                    *dst = v;
                }
            }
            g.d[lane] = x.d.to_bits();
        };
        let (bytes, rows) = pack_groups(w, k, ByteBlock::ZERO, put, done);
        Self {
            kind: PackedKind::Q8_0,
            blocks: Vec::new(),
            bytes,
            rows,
            k,
        }
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

    /// Row `r` dequantized into `out` (`k · 32` values), as ggml's `dequantize_row`
    /// does: `d · (q − 16)` for Q5_0, `d · q + m` for Q4_1, `d · q` for Q8_0.
    ///
    /// # Panics
    /// If `r` is past the rows or `out` is not one row long.
    pub fn row(&self, r: usize, out: &mut [f32]) {
        assert!(
            r < self.rows && out.len() == self.k * QK,
            "PackedMatrix::row: row {r} into {} values",
            out.len()
        );
        for (b, o) in out.chunks_exact_mut(QK).enumerate() {
            match self.kind {
                PackedKind::Q5_0 => {
                    let x = self.block_q5_0(r, b);
                    let (d, qh) = (x.d.to_f32(), u32::from_le_bytes(x.qh));
                    for (j, v) in o.iter_mut().enumerate() {
                        let nibble = if j < 16 {
                            x.qs[j] & 0xF
                        } else {
                            x.qs[j - 16] >> 4
                        };
                        let q = i32::from(nibble) | ((((qh >> j) & 1) as i32) << 4);
                        *v = (q - 16) as f32 * d;
                    }
                }
                PackedKind::Q4_1 => {
                    let x = self.block_q4_1(r, b);
                    let (d, m) = (x.d.to_f32(), x.m.to_f32());
                    for (j, v) in o.iter_mut().enumerate() {
                        let q = if j < 16 {
                            x.qs[j] & 0xF
                        } else {
                            x.qs[j - 16] >> 4
                        };
                        *v = f32::from(q) * d + m;
                    }
                }
                PackedKind::Q8_0 => {
                    let x = self.block_q8_0(r, b);
                    let d = x.d.to_f32();
                    for (v, &q) in o.iter_mut().zip(&x.qs) {
                        *v = f32::from(q) * d;
                    }
                }
            }
        }
    }

    /// Block `b` of row `r` of a Q8_0 matrix as it was before packing.
    pub fn block_q8_0(&self, r: usize, b: usize) -> BlockQ8_0 {
        let (g, lane) = (&self.bytes[(r / GROUP) * self.k + b], r % GROUP);
        BlockQ8_0 {
            d: f16::from_bits(g.d[lane]),
            qs: std::array::from_fn(|j| (g.values[j / 4][4 * lane + j % 4] ^ 0x80) as i8),
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

/// [`ActPrep`] of every Q8_0 block of `a` for weights of kind `kind` (Q5_0 or Q8_0),
/// once per input.
///
/// # Panics
/// If `kind` is Q4_1 (whose activations are Q8_1: [`prepare_q8_1`]).
pub fn prepare_q8_0(a: &[BlockQ8_0], kind: PackedKind) -> Vec<ActPrep> {
    let offset = match kind {
        PackedKind::Q5_0 => 16,
        PackedKind::Q8_0 => 128,
        PackedKind::Q4_1 => panic!("prepare_q8_0: Q4_1 weights take Q8_1 activations"),
    };
    a.iter()
        .map(|y| ActPrep {
            start: std::array::from_fn(|i| {
                -offset
                    * y.qs[4 * i..4 * i + 4]
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

/// Whether [`gemm`] runs on this CPU for weights of kind `kind`: AVX-512 F/BW/VL with
/// VNNI for every kind, AVX2 + FMA + F16C for Q5_0 and Q4_1 (as `HEARTH_KERNELS`
/// allows).
pub fn available(kind: PackedKind) -> bool {
    #[cfg(target_arch = "x86_64")]
    return super::use_tiles(super::Tiles::Avx512)
        || (kind != PackedKind::Q8_0 && super::use_tiles(super::Tiles::Avx2));
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = kind;
        false
    }
}

/// `out(r, t, Σ w[r] · a[t])` for the rows in groups `groups` of `w` and the
/// activation rows of `a` (Q8_0 blocks for Q5_0 and Q8_0 weights, Q8_1 for Q4_1;
/// `prep` from [`prepare_q8_0`] or [`prepare_q8_1`] on `a`).
///
/// # Panics
/// If [`available`] is false for `w`'s kind, `groups` goes past `w`, or `a` or `prep`
/// is not whole rows of `w.k()` blocks.
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
    assert!(
        available(w.kind),
        "packed gemm: the CPU lacks the instructions for {:?}",
        w.kind
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has the features (checked just above: AVX-512 with VNNI, or
    // AVX2 + FMA + F16C for Q5_0 and Q4_1); `a` and `prep` hold whole rows of `k`
    // blocks and every group `k` blocks.
    unsafe {
        if super::use_tiles(super::Tiles::Avx512) {
            match w.kind {
                PackedKind::Q5_0 => x86::gemm::<A, { x86::Q5_0 }>(w, groups, a, prep, out),
                PackedKind::Q4_1 => x86::gemm::<A, { x86::Q4_1 }>(w, groups, a, prep, out),
                PackedKind::Q8_0 => x86::gemm::<A, { x86::Q8_0 }>(w, groups, a, prep, out),
            }
        } else if w.kind == PackedKind::Q4_1 {
            x86_avx2::gemm::<A, true>(w, groups, a, prep, out)
        } else {
            x86_avx2::gemm::<A, false>(w, groups, a, prep, out)
        }
    }
}
