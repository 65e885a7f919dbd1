use half::f16;

use super::*;

/// SplitMix64: small, fixed-seed, good enough for test data.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn half(&mut self, scale: f32) -> f16 {
        f16::from_f32(self.unit() * scale)
    }
}

/// How to fill a block's integer payload.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fill {
    Random,
    Min,
    Max,
}

fn fill_u8(rng: &mut Rng, fill: Fill) -> u8 {
    match fill {
        Fill::Random => rng.byte(),
        Fill::Min => 0,
        Fill::Max => 0xFF,
    }
}

fn fill_i8(rng: &mut Rng, fill: Fill) -> i8 {
    match fill {
        Fill::Random => rng.byte() as i8,
        Fill::Min => -128,
        Fill::Max => 127,
    }
}

pub(crate) fn q4_1(rng: &mut Rng, fill: Fill) -> BlockQ4_1 {
    BlockQ4_1 {
        d: rng.half(0.1),
        m: rng.half(0.5),
        qs: std::array::from_fn(|_| fill_u8(rng, fill)),
    }
}

pub(crate) fn q5_0(rng: &mut Rng, fill: Fill, fill_h: Fill) -> BlockQ5_0 {
    BlockQ5_0 {
        d: rng.half(0.1),
        qh: std::array::from_fn(|_| fill_u8(rng, fill_h)),
        qs: std::array::from_fn(|_| fill_u8(rng, fill)),
    }
}

pub(crate) fn q8_0(rng: &mut Rng, fill: Fill) -> BlockQ8_0 {
    BlockQ8_0 {
        d: rng.half(0.05),
        qs: std::array::from_fn(|_| fill_i8(rng, fill)),
    }
}

/// A Q8_0 block as ggml's quantizer makes them: values in [-127, 127].
pub(crate) fn q8_0_ggml(rng: &mut Rng, fill: Fill) -> BlockQ8_0 {
    let mut b = q8_0(rng, fill);
    b.qs.iter_mut().for_each(|q| *q = (*q).max(-127));
    b
}

pub(crate) fn q8_1(rng: &mut Rng, fill: Fill) -> BlockQ8_1 {
    let d = rng.half(0.05);
    let qs: [i8; QK] = std::array::from_fn(|_| fill_i8(rng, fill));
    let sum: i32 = qs.iter().map(|&q| i32::from(q)).sum();
    BlockQ8_1 {
        d,
        s: f16::from_f32(d.to_f32() * sum as f32),
        qs,
    }
}

/// Σ |per-block term|: the scale that float summation-order rounding is relative to.
fn magnitude_q4_1(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    x.iter()
        .zip(y)
        .map(|(bx, by)| {
            scalar::vec_dot_q4_1_q8_1(&[*bx], &[*by]).abs() + (bx.m.to_f32() * by.s.to_f32()).abs()
        })
        .sum()
}

fn magnitude_q5_0(x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
    x.iter()
        .zip(y)
        .map(|(bx, by)| scalar::vec_dot_q5_0_q8_0(&[*bx], &[*by]).abs())
        .sum()
}

pub(crate) fn close(got: f32, want: f32, magnitude: f32) -> bool {
    (got - want).abs() <= 1e-5 * magnitude.max(want.abs()) + f32::MIN_POSITIVE
}

const FILLS: [Fill; 3] = [Fill::Random, Fill::Min, Fill::Max];

#[test]
fn q4_1_matches_reference() {
    let mut rng = Rng(1);
    for n in [0, 1, 2, 3, 7, 18, 48, 64] {
        for fx in FILLS {
            for fy in FILLS {
                let x: Vec<_> = (0..n).map(|_| q4_1(&mut rng, fx)).collect();
                let y: Vec<_> = (0..n).map(|_| q8_1(&mut rng, fy)).collect();
                let want = scalar::vec_dot_q4_1_q8_1(&x, &y);
                let got = vec_dot_q4_1_q8_1(&x, &y);
                let mag = magnitude_q4_1(&x, &y);
                assert!(
                    close(got, want, mag),
                    "n={n} {fx:?} {fy:?}: {got} vs {want} (|·| {mag})"
                );
            }
        }
    }
}

#[test]
fn q5_0_matches_reference() {
    let mut rng = Rng(2);
    for n in [0, 1, 2, 3, 7, 20, 64] {
        for fx in FILLS {
            for fh in FILLS {
                for fy in FILLS {
                    let x: Vec<_> = (0..n).map(|_| q5_0(&mut rng, fx, fh)).collect();
                    let y: Vec<_> = (0..n).map(|_| q8_0(&mut rng, fy)).collect();
                    let want = scalar::vec_dot_q5_0_q8_0(&x, &y);
                    let got = vec_dot_q5_0_q8_0(&x, &y);
                    let mag = magnitude_q5_0(&x, &y);
                    assert!(
                        close(got, want, mag),
                        "n={n} {fx:?} {fh:?} {fy:?}: {got} vs {want} (|·| {mag})"
                    );
                }
            }
        }
    }
}

/// With unit scales the sums are small integers, so every order gives the same float.
#[test]
fn integer_sums_are_exact() {
    let mut rng = Rng(3);
    let one = f16::from_f32(1.0);
    for fill in FILLS {
        let x: Vec<_> = (0..9)
            .map(|_| BlockQ4_1 {
                d: one,
                m: one,
                ..q4_1(&mut rng, fill)
            })
            .collect();
        let y: Vec<_> = (0..9)
            .map(|_| BlockQ8_1 {
                d: one,
                s: one,
                ..q8_1(&mut rng, fill)
            })
            .collect();
        assert_eq!(vec_dot_q4_1_q8_1(&x, &y), scalar::vec_dot_q4_1_q8_1(&x, &y));
        let x: Vec<_> = (0..9)
            .map(|_| BlockQ5_0 {
                d: one,
                ..q5_0(&mut rng, fill, fill)
            })
            .collect();
        let y: Vec<_> = (0..9)
            .map(|_| BlockQ8_0 {
                d: one,
                ..q8_0(&mut rng, fill)
            })
            .collect();
        assert_eq!(vec_dot_q5_0_q8_0(&x, &y), scalar::vec_dot_q5_0_q8_0(&x, &y));
    }
}

/// Hand-computed values pin the layouts: nibble order, fifth-bit order, centring.
#[test]
fn known_values() {
    let one = f16::from_f32(1.0);
    // q[j] = j % 16 for j < 16 (low nibbles), 15 - j % 16 for j ≥ 16 (high nibbles).
    let qs: [u8; 16] = std::array::from_fn(|j| j as u8 | ((15 - j as u8) << 4));
    let y = BlockQ8_1 {
        d: one,
        s: f16::from_f32(2.0),
        qs: std::array::from_fn(|j| j as i8),
    };
    let x = BlockQ4_1 {
        d: f16::from_f32(0.5),
        m: f16::from_f32(3.0),
        qs,
    };
    let want: i32 = (0..32)
        .map(|j| if j < 16 { j * j } else { (15 - (j - 16)) * j })
        .sum();
    let want = 0.5 * want as f32 + 6.0;
    assert_eq!(scalar::vec_dot_q4_1_q8_1(&[x], &[y]), want);
    assert_eq!(vec_dot_q4_1_q8_1(&[x], &[y]), want);

    // Fifth bit set for j = 0 and j = 31 only; all nibbles zero.
    let x = BlockQ5_0 {
        d: one,
        qh: [0x01, 0, 0, 0x80],
        qs: [0; 16],
    };
    let y = BlockQ8_0 {
        d: one,
        qs: std::array::from_fn(|j| j as i8),
    };
    // q - 16 is 0 at j = 0 and 31, -16 elsewhere.
    let want = (1..31).map(|j| -16 * j).sum::<i32>() as f32;
    assert_eq!(scalar::vec_dot_q5_0_q8_0(&[x], &[y]), want);
    assert_eq!(vec_dot_q5_0_q8_0(&[x], &[y]), want);
}

#[test]
fn cast_checks_length_and_alignment() {
    let storage = [0u16; 64];
    // SAFETY: u16 has no padding; reading its bytes is fine.
    let bytes = unsafe { std::slice::from_raw_parts(storage.as_ptr().cast::<u8>(), 128) };
    assert_eq!(BlockQ4_1::cast_slice(&bytes[..100]).map(|b| b.len()), Ok(5));
    assert_eq!(BlockQ8_1::cast_slice(&bytes[..108]).map(|b| b.len()), Ok(3));
    assert_eq!(
        BlockQ8_0::cast_slice(&bytes[..35]),
        Err(CastError::Length { len: 35, block: 34 })
    );
    assert_eq!(
        BlockQ5_0::cast_slice(&bytes[1..23]),
        Err(CastError::Alignment { align: 2 })
    );
    let blocks = [BlockQ8_0::default(); 2];
    assert_eq!(BlockQ8_0::as_bytes(&blocks).len(), 68);
    assert_eq!(
        BlockQ8_0::cast_slice(BlockQ8_0::as_bytes(&blocks)),
        Ok(&blocks[..])
    );
}

#[test]
#[should_panic(expected = "block counts differ")]
fn length_mismatch_panics() {
    vec_dot_q5_0_q8_0(&[BlockQ5_0::default()], &[]);
}

/// Runs `gemm` and checks every product against `dot`, bit for bit, for shapes that
/// exercise every tile size, both row remainders and odd block counts.
fn check_gemm<W: Copy, A: Copy>(
    mut wb: impl FnMut(&mut Rng) -> W,
    mut ab: impl FnMut(&mut Rng) -> A,
    gemm: impl Fn(&[W], &[A], usize, &mut dyn FnMut(usize, usize, f32)),
    dot: impl Fn(&[W], &[A]) -> f32,
) {
    let mut rng = Rng(7);
    for (rows, n, k) in [
        (1, 1, 1),
        (2, 5, 3),
        (5, 7, 2),
        (3, 70, 4),
        (4, 4, 20),
        (6, 9, 7),
    ] {
        let w: Vec<W> = (0..rows * k).map(|_| wb(&mut rng)).collect();
        let a: Vec<A> = (0..n * k).map(|_| ab(&mut rng)).collect();
        let mut seen = vec![0u32; rows * n];
        gemm(&w, &a, k, &mut |r, t, v| {
            seen[r * n + t] += 1;
            let want = dot(&w[r * k..(r + 1) * k], &a[t * k..(t + 1) * k]);
            assert_eq!(v.to_bits(), want.to_bits(), "({r}, {t}) of {rows}x{n}x{k}");
        });
        assert!(seen.iter().all(|&c| c == 1), "{rows}x{n}x{k}: {seen:?}");
    }
}

thread_local! {
    /// The widest tiles a test lets the products use (to check the narrower ones too).
    pub(crate) static WIDEST: std::cell::Cell<Tiles> = const { std::cell::Cell::new(Tiles::Avx512) };
}

/// On a CPU with AVX-VNNI, the plain AVX2 tiles are checked as well.
#[test]
fn gemm_matches_dot_products() {
    for widest in [Tiles::Vnni, Tiles::Avx2] {
        WIDEST.with(|f| f.set(widest));
        gemm_products_equal_dots();
    }
    WIDEST.with(|f| f.set(Tiles::Avx512));
}

fn gemm_products_equal_dots() {
    check_gemm(
        |r| q4_1(r, Fill::Random),
        |r| q8_1(r, Fill::Random),
        |w, a, k, out| gemm_q4_1_q8_1(w, a, k, &mut |r, t, v| out(r, t, v)),
        vec_dot_q4_1_q8_1,
    );
    check_gemm(
        |r| q5_0(r, Fill::Random, Fill::Random),
        |r| q8_0(r, Fill::Random),
        |w, a, k, out| gemm_q5_0_q8_0(w, a, k, &mut |r, t, v| out(r, t, v)),
        vec_dot_q5_0_q8_0,
    );
    check_gemm(
        |r| q8_0_ggml(r, Fill::Random),
        |r| q8_0_ggml(r, Fill::Random),
        |w, a, k, out| gemm_q8_0_q8_0(w, a, k, &mut |r, t, v| out(r, t, v)),
        vec_dot_q8_0_q8_0,
    );
}

/// The tiles on this CPU against the portable reference, with extreme fills and odd
/// block counts.
#[test]
fn gemm_matches_reference_at_extremes() {
    let mut rng = Rng(9);
    for n in [1, 2, 3, 7, 20, 64] {
        for fx in FILLS {
            for fy in FILLS {
                let x: Vec<_> = (0..n).map(|_| q5_0(&mut rng, fx, fx)).collect();
                let y: Vec<_> = (0..n).map(|_| q8_0_ggml(&mut rng, fy)).collect();
                let want = scalar::vec_dot_q5_0_q8_0(&x, &y);
                let mut got = f32::NAN;
                gemm_q5_0_q8_0(&x, &y, n, &mut |_, _, v| got = v);
                let mag = magnitude_q5_0(&x, &y);
                assert!(
                    close(got, want, mag),
                    "Q5_0 n={n} {fx:?} {fy:?}: {got} vs {want}"
                );

                let x: Vec<_> = (0..n).map(|_| q8_0_ggml(&mut rng, fx)).collect();
                let want = scalar::vec_dot_q8_0_q8_0(&x, &y);
                gemm_q8_0_q8_0(&x, &y, n, &mut |_, _, v| got = v);
                let mag: f32 = x
                    .iter()
                    .zip(&y)
                    .map(|(bx, by)| scalar::vec_dot_q8_0_q8_0(&[*bx], &[*by]).abs())
                    .sum();
                assert!(
                    close(got, want, mag),
                    "Q8_0 n={n} {fx:?} {fy:?}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn q8_0_simd_matches_scalar() {
    let mut rng = Rng(3);
    for fill in [Fill::Random, Fill::Min, Fill::Max] {
        // Q8_0 values are in [-127, 127] (ggml's quantizer: d = amax / 127); the
        // sign trick, as ggml's and candle's, relies on it.
        let mut block = |fill| {
            let mut b = q8_0(&mut rng, fill);
            b.qs.iter_mut().for_each(|q| *q = (*q).max(-127));
            b
        };
        let w: Vec<BlockQ8_0> = (0..40).map(|_| block(fill)).collect();
        let a: Vec<BlockQ8_0> = (0..40).map(|_| block(Fill::Random)).collect();
        let (got, want) = (vec_dot_q8_0_q8_0(&w, &a), scalar::vec_dot_q8_0_q8_0(&w, &a));
        assert!(
            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
            "{got} {want}"
        );
    }
}

#[test]
fn activation_quantization_simd_matches_scalar() {
    let mut rng = Rng(11);
    for case in 0..200 {
        let mut xs: Vec<f32> = (0..32).map(|_| rng.unit() * 3.0).collect();
        if case % 5 == 0 {
            // Exact ties: max 127 makes the multiplier 1.
            xs[0] = 127.0;
            xs[1] = 2.5;
            xs[2] = -0.5;
        }
        if case == 7 {
            xs.fill(0.0);
        }
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        let (da, sa) = quantize_q8_32(&xs, &mut a);
        let (db, sb) = scalar::quantize_q8_32(&xs, &mut b);
        assert_eq!((a, da.to_bits(), sa), (b, db.to_bits(), sb), "case {case}");
    }
}

fn q4k(rng: &mut Rng) -> BlockQ4K {
    BlockQ4K {
        d: rng.half(0.01),
        dmin: rng.half(0.01),
        scales: std::array::from_fn(|_| rng.byte()),
        qs: std::array::from_fn(|_| rng.byte()),
    }
}

fn q6k(rng: &mut Rng) -> BlockQ6K {
    BlockQ6K {
        ql: std::array::from_fn(|_| rng.byte()),
        qh: std::array::from_fn(|_| rng.byte()),
        scales: std::array::from_fn(|_| rng.byte() as i8),
        d: rng.half(0.01),
    }
}

fn q8k(rng: &mut Rng) -> BlockQ8K {
    let qs: [i8; QK_K] = std::array::from_fn(|_| (rng.byte() as i8).max(-127));
    BlockQ8K {
        d: rng.unit() * 0.01,
        qs,
        bsums: std::array::from_fn(|j| qs[16 * j..16 * j + 16].iter().map(|&q| i16::from(q)).sum()),
    }
}

/// Every product of the tiled K-quant kernels is its single-row product, and close to
/// the portable reference.
fn check_kgemm<W: Copy>(
    mut wb: impl FnMut(&mut Rng) -> W,
    gemm: impl Fn(&[W], &[BlockQ8K], usize, &mut dyn FnMut(usize, usize, f32)),
    reference: impl Fn(&[W], &[BlockQ8K]) -> f32,
) {
    let mut rng = Rng(5);
    for (rows, n, k) in [(1, 1, 1), (3, 5, 2), (2, 37, 3)] {
        let w: Vec<W> = (0..rows * k).map(|_| wb(&mut rng)).collect();
        let a: Vec<BlockQ8K> = (0..n * k).map(|_| q8k(&mut rng)).collect();
        let mut seen = vec![0u32; rows * n];
        gemm(&w, &a, k, &mut |r, t, v| {
            seen[r * n + t] += 1;
            let (wr, at) = (&w[r * k..(r + 1) * k], &a[t * k..(t + 1) * k]);
            let mut single = f32::NAN;
            gemm(wr, at, k, &mut |_, _, s| single = s);
            assert_eq!(
                v.to_bits(),
                single.to_bits(),
                "({r}, {t}) of {rows}x{n}x{k}"
            );
            let want = reference(wr, at);
            assert!(
                (v - want).abs() <= 1e-4 * want.abs().max(1.0),
                "{v} vs {want}"
            );
            // Every wider kernel computes the 256-bit kernel's integers and floats.
            let mut narrow = f32::NAN;
            WIDEST.with(|f| f.set(Tiles::Avx2));
            gemm(wr, at, k, &mut |_, _, s| narrow = s);
            WIDEST.with(|f| f.set(Tiles::Avx512));
            assert_eq!(v.to_bits(), narrow.to_bits(), "({r}, {t}): wide vs AVX2");
        });
        assert!(seen.iter().all(|&c| c == 1), "{rows}x{n}x{k}: {seen:?}");
    }
}

#[test]
fn k_quant_gemm_matches_reference() {
    check_kgemm(
        q4k,
        |w, a, k, out| gemm_q4k_q8k(w, a, k, &mut |r, t, v| out(r, t, v)),
        vec_dot_q4k_q8k,
    );
    check_kgemm(
        q6k,
        |w, a, k, out| gemm_q6k_q8k(w, a, k, &mut |r, t, v| out(r, t, v)),
        vec_dot_q6k_q8k,
    );
}

#[test]
fn q8k_quantization_simd_matches_scalar() {
    let mut rng = Rng(13);
    for case in 0..50 {
        let mut xs: Vec<f32> = (0..QK_K).map(|_| rng.unit() * 2.0).collect();
        match case {
            0 => xs.fill(0.0),
            1 => {
                // A tie of magnitudes: the first one's sign wins.
                xs[10] = -3.0;
                xs[20] = 3.0;
            }
            2 => xs[0] = 127.0,
            _ => {}
        }
        let zero = BlockQ8K {
            d: 0.0,
            qs: [0; QK_K],
            bsums: [0; 16],
        };
        let (mut a, mut b) = (zero, zero);
        quantize_q8k_256(&xs, &mut a);
        scalar::quantize_q8k_256(&xs, &mut b);
        assert_eq!(a.d.to_bits(), b.d.to_bits(), "case {case}");
        assert_eq!((a.qs, a.bsums), (b.qs, b.bsums), "case {case}");
    }
}
