use super::*;

/// Deterministic values in [-1, 1).
fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// `Σ_{i<rank} σᵢ uᵢ vᵢᵀ` in f64, row-major.
fn approx(svd: &Svd, rows: usize, cols: usize, rank: usize) -> Vec<f64> {
    let mut out = vec![0f64; rows * cols];
    for i in 0..rank {
        let (u, v, s) = (svd.left(i), svd.right(i), svd.values[i]);
        for r in 0..rows {
            for c in 0..cols {
                out[r * cols + c] += s * u[r] * v[c];
            }
        }
    }
    out
}

fn frobenius_sq(w: &[f32], a: &[f64]) -> f64 {
    w.iter().zip(a).map(|(&x, y)| (x as f64 - y).powi(2)).sum()
}

#[test]
fn eckart_young_holds_on_random_matrices() {
    for (rows, cols, seed) in [(37, 23, 1), (23, 37, 2), (64, 64, 3), (1, 9, 4)] {
        let w = random(rows * cols, seed);
        let m = rows.min(cols);
        let svd = svd("w", &w, rows, cols, m).unwrap();
        assert_eq!(svd.values.len(), m);
        assert!(svd.values.windows(2).all(|p| p[0] >= p[1]), "descending");
        let total: f64 = w.iter().map(|&x| (x as f64).powi(2)).sum();
        let sum_sq: f64 = svd.values.iter().map(|s| s * s).sum();
        assert!(
            (total - sum_sq).abs() <= 1e-9 * total,
            "{total} vs {sum_sq}"
        );
        for rank in [0, 1, m / 2, m.saturating_sub(1), m] {
            let err = frobenius_sq(&w, &approx(&svd, rows, cols, rank));
            let discarded: f64 = svd.values[rank..].iter().map(|s| s * s).sum();
            assert!(
                (err - discarded).abs() <= 1e-9 * total,
                "{rows}x{cols} rank {rank}: error {err}, discarded {discarded}"
            );
        }
        // Singular vectors are orthonormal on both sides.
        for i in 0..m {
            for j in 0..m {
                let want = if i == j { 1.0 } else { 0.0 };
                let lu = dot(svd.left(i), svd.left(j));
                let rv = dot(svd.right(i), svd.right(j));
                assert!(
                    (lu - want).abs() < 1e-9 && (rv - want).abs() < 1e-9,
                    "({i},{j})"
                );
            }
        }
    }
}

/// `Q = I - 2 x xᵀ / |x|²`, an orthogonal matrix, row-major.
fn reflector(n: usize, seed: u64) -> Vec<f64> {
    let x: Vec<f64> = random(n, seed).iter().map(|&v| v as f64).collect();
    let nn = dot(&x, &x);
    let mut q = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            q[i * n + j] = f64::from(u8::from(i == j)) - 2.0 * x[i] * x[j] / nn;
        }
    }
    q
}

#[test]
fn recovers_known_singular_values() {
    let (rows, cols) = (30, 20);
    let want: Vec<f64> = (0..cols).map(|i| 10.0 / (1.0 + i as f64)).collect();
    let (qu, qv) = (reflector(rows, 7), reflector(cols, 8));
    // W = Qu[:, :cols] · diag(want) · Qvᵀ
    let mut w = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let v: f64 = (0..cols)
                .map(|k| qu[r * rows + k] * want[k] * qv[c * cols + k])
                .sum();
            w[r * cols + c] = v as f32;
        }
    }
    let got = singular_values("w", &w, rows, cols).unwrap();
    for (g, s) in got.iter().zip(&want) {
        assert!((g - s).abs() < 1e-5 * s.max(1.0), "{g} vs {s}");
    }
    let full = svd("w", &w, rows, cols, 3).unwrap();
    assert_eq!(full.kept(), 3);
    for (a, b) in full.values.iter().zip(&got) {
        assert!((a - b).abs() < 1e-9 * b.max(1.0));
    }
}

#[test]
fn factors_multiply_back_to_the_approximation() {
    let (rows, cols) = (12, 18);
    let w = random(rows * cols, 11);
    let svd = svd("w", &w, rows, cols, 12).unwrap();
    for rank in [3, 12] {
        let (a, b) = svd.factors(rank);
        assert_eq!((a.len(), b.len()), (rank * cols, rows * rank));
        let want = approx(&svd, rows, cols, rank);
        for r in 0..rows {
            for c in 0..cols {
                let v: f64 = (0..rank)
                    .map(|k| b[r * rank + k] as f64 * a[k * cols + c] as f64)
                    .sum();
                assert!((v - want[r * cols + c]).abs() < 1e-5, "({r},{c})");
            }
        }
    }
}

#[test]
fn energy_picks_the_smallest_rank_that_keeps_it() {
    let values = [3.0, 2.0, 1.0]; // squares 9, 4, 1 of 14
    assert_eq!(rank_for_energy(&values, 0.5), 1);
    assert_eq!(rank_for_energy(&values, 9.0 / 14.0), 1);
    assert_eq!(rank_for_energy(&values, 0.65), 2);
    assert_eq!(rank_for_energy(&values, 13.0 / 14.0), 2);
    assert_eq!(rank_for_energy(&values, 0.95), 3);
    assert_eq!(rank_for_energy(&values, 1.0), 3);
}

#[test]
fn rejects_bad_input() {
    let mut w = random(6, 1);
    assert!(svd("w", &w, 2, 2, 1).is_err(), "wrong length");
    w[3] = f32::NAN;
    let e = svd("blk.0.attn_q.weight", &w, 2, 3, 1).unwrap_err();
    assert!(e.to_string().contains("blk.0.attn_q.weight"), "{e}");
}
