//! Packing and the packed products against the 256-bit kernels and the scalar
//! reference.

use super as packed;
use super::super::tests::{close, q4_1, q5_0, q8_0_ggml, q8_1, Fill, Rng, WIDEST};
use super::super::{scalar, vec_dot_q4_1_q8_1, vec_dot_q5_0_q8_0, vec_dot_q8_0_q8_0, Tiles, QK};

/// Runs the packed products of `w` (its original blocks `orig`, `k` per row) with
/// activations `a` and checks each against the 256-bit kernel's `dot` bit for bit, the
/// scalar `reference` to rounding, and the same product computed alone.
fn check_packed<W: Copy, A: packed::ActBlock>(
    w: &packed::PackedMatrix,
    orig: &[W],
    a: &[A],
    prep: &[packed::ActPrep],
    dot: impl Fn(&[W], &[A]) -> f32,
    reference: impl Fn(&[W], &[A]) -> f32,
) {
    let (rows, k) = (w.rows(), w.k());
    let n = a.len() / k;
    let mut got = vec![f32::NAN; rows * n];
    let mut seen = vec![0u32; rows * n];
    packed::gemm(w, 0..w.groups(), a, prep, &mut |r, t, v| {
        got[r * n + t] = v;
        seen[r * n + t] += 1;
    });
    assert!(seen.iter().all(|&c| c == 1), "{rows}x{n}x{k}: {seen:?}");
    for r in 0..rows {
        for t in 0..n {
            let (wr, at) = (&orig[r * k..(r + 1) * k], &a[t * k..(t + 1) * k]);
            let v = got[r * n + t];
            let want = dot(wr, at);
            assert_eq!(v.to_bits(), want.to_bits(), "({r}, {t}): {v} vs {want}");
            let exact = reference(wr, at);
            let mag: f32 = (0..k)
                .map(|b| reference(&wr[b..=b], &at[b..=b]).abs())
                .sum();
            assert!(close(v, exact, mag), "({r}, {t}): {v} vs {exact}");
            let mut alone = f32::NAN;
            let g = r / packed::GROUP;
            packed::gemm(
                w,
                g..g + 1,
                at,
                &prep[t * k..(t + 1) * k],
                &mut |rr, _, s| {
                    if rr == r {
                        alone = s;
                    }
                },
            );
            assert_eq!(v.to_bits(), alone.to_bits(), "({r}, {t}) alone");
        }
    }
}

/// Packing keeps every block; the packed products equal the 256-bit kernels' bit for
/// bit, and each row gives the same float alone and in a batch.
#[test]
fn packed_round_trips_and_multiplies() {
    let mut rng = Rng(11);
    for (rows, n, k) in [(37, 6, 5), (16, 1, 20), (3, 9, 2)] {
        let w5: Vec<_> = (0..rows * k)
            .map(|_| q5_0(&mut rng, Fill::Random, Fill::Random))
            .collect();
        let w4: Vec<_> = (0..rows * k)
            .map(|_| q4_1(&mut rng, Fill::Random))
            .collect();
        let w8: Vec<_> = (0..rows * k)
            .map(|_| q8_0_ggml(&mut rng, Fill::Random))
            .collect();
        let p5 = packed::PackedMatrix::q5_0(&w5, k);
        let p4 = packed::PackedMatrix::q4_1(&w4, k);
        let p8 = packed::PackedMatrix::q8_0(&w8, k);
        for r in 0..rows {
            for b in 0..k {
                assert_eq!(p5.block_q5_0(r, b), w5[r * k + b], "Q5_0 row {r} block {b}");
                assert_eq!(p4.block_q4_1(r, b), w4[r * k + b], "Q4_1 row {r} block {b}");
                assert_eq!(p8.block_q8_0(r, b), w8[r * k + b], "Q8_0 row {r} block {b}");
            }
        }
        // Dequantized rows equal ggml's formulas.
        let mut row = vec![0f32; k * QK];
        let nibble = |qs: &[u8; 16], j: usize| if j < 16 { qs[j] & 0xF } else { qs[j - 16] >> 4 };
        for r in [0, rows - 1] {
            p5.row(r, &mut row);
            for (j, &v) in row.iter().enumerate() {
                let x = &w5[r * k + j / QK];
                let high = ((u32::from_le_bytes(x.qh) >> (j % QK)) & 1) as i32;
                let q = i32::from(nibble(&x.qs, j % QK)) | (high << 4);
                assert_eq!(v, (q - 16) as f32 * x.d.to_f32(), "Q5_0 row {r} value {j}");
            }
            p4.row(r, &mut row);
            for (j, &v) in row.iter().enumerate() {
                let x = &w4[r * k + j / QK];
                let want = f32::from(nibble(&x.qs, j % QK)) * x.d.to_f32() + x.m.to_f32();
                assert_eq!(v, want, "Q4_1 row {r} value {j}");
            }
            p8.row(r, &mut row);
            for (j, &v) in row.iter().enumerate() {
                let x = &w8[r * k + j / QK];
                assert_eq!(
                    v,
                    f32::from(x.qs[j % QK]) * x.d.to_f32(),
                    "Q8_0 row {r} value {j}"
                );
            }
        }
        let a0: Vec<_> = (0..n * k)
            .map(|_| q8_0_ggml(&mut rng, Fill::Random))
            .collect();
        let a1: Vec<_> = (0..n * k).map(|_| q8_1(&mut rng, Fill::Random)).collect();
        let prep5 = packed::prepare_q8_0(&a0, packed::PackedKind::Q5_0);
        let prep4 = packed::prepare_q8_1(&a1);
        let prep8 = packed::prepare_q8_0(&a0, packed::PackedKind::Q8_0);
        // Every kernel this CPU has: AVX-512, then AVX2 (Q5_0 and Q4_1 only).
        for widest in [Tiles::Avx512, Tiles::Avx2] {
            WIDEST.with(|f| f.set(widest));
            use packed::PackedKind as K;
            if packed::available(K::Q5_0) {
                let (dot, reference) = (vec_dot_q5_0_q8_0, scalar::vec_dot_q5_0_q8_0);
                check_packed(&p5, &w5, &a0, &prep5, dot, reference);
            }
            if packed::available(K::Q4_1) {
                let (dot, reference) = (vec_dot_q4_1_q8_1, scalar::vec_dot_q4_1_q8_1);
                check_packed(&p4, &w4, &a1, &prep4, dot, reference);
            }
            if packed::available(K::Q8_0) {
                let (dot, reference) = (vec_dot_q8_0_q8_0, scalar::vec_dot_q8_0_q8_0);
                check_packed(&p8, &w8, &a0, &prep8, dot, reference);
            }
        }
        WIDEST.with(|f| f.set(Tiles::Avx512));
    }
}
