//! L2-regularised logistic regression by Newton's method, for the probe's heads.

use super::ProbeHead;
use crate::error::{Error, Result};

/// Newton iterations at most; logistic regression with an L2 term converges in ~10.
const MAX_NEWTON_STEPS: usize = 50;
/// Stop when no weight moves by more than this.
const NEWTON_TOLERANCE: f64 = 1e-7;

/// `v` centred and scaled, in double precision.
pub(super) fn standardised(v: &[f32], center: &[f32], scale: &[f32]) -> Vec<f64> {
    v.iter()
        .zip(center.iter().zip(scale))
        .map(|(x, (c, s))| f64::from((x - c) / s))
        .collect()
}

/// Per-feature mean and standard deviation (a constant feature gets scale 1).
pub(super) fn standardisation(features: &[Vec<f32>], dim: usize) -> (Vec<f32>, Vec<f32>) {
    let n = features.len().max(1) as f64;
    let mut mean = vec![0f64; dim];
    for v in features {
        for (m, x) in mean.iter_mut().zip(v) {
            *m += f64::from(*x);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0f64; dim];
    for v in features {
        for ((s, x), m) in var.iter_mut().zip(v).zip(&mean) {
            *s += (f64::from(*x) - m).powi(2);
        }
    }
    let scale = var
        .iter()
        .map(|s| match (s / n).sqrt() {
            sd if sd > 1e-6 => sd as f32,
            _ => 1.0,
        })
        .collect();
    (mean.iter().map(|&m| m as f32).collect(), scale)
}

/// Fits one head by Newton's method on `sum log-loss + l2/2 |w|^2` (bias unpenalised).
pub(super) fn logistic_head(label: &str, z: &[Vec<f64>], y: &[bool], l2: f64) -> Result<ProbeHead> {
    let d = z.first().map_or(0, Vec::len);
    let k = d + 1; // weights, then the bias
    let mut beta = vec![0f64; k];
    for _ in 0..MAX_NEWTON_STEPS {
        let mut grad = vec![0f64; k];
        let mut hess = vec![0f64; k * k];
        for (row, &t) in z.iter().zip(y) {
            let s: f64 = row.iter().zip(&beta).map(|(x, b)| x * b).sum::<f64>() + beta[d];
            let p = 1.0 / (1.0 + (-s).exp());
            let r = p - f64::from(u8::from(t));
            let w = (p * (1.0 - p)).max(1e-12);
            for i in 0..k {
                let xi = if i < d { row[i] } else { 1.0 };
                grad[i] += r * xi;
                let wx = w * xi;
                let hrow = &mut hess[i * k..i * k + i + 1];
                for (j, h) in hrow.iter_mut().enumerate() {
                    *h += wx * if j < d { row[j] } else { 1.0 };
                }
            }
        }
        for i in 0..d {
            grad[i] += l2 * beta[i];
            hess[i * k + i] += l2;
        }
        let step = cholesky_solve(&mut hess, k, &grad).ok_or_else(|| Error::Probe {
            problem: format!("the `{label}` head's system is singular"),
        })?;
        let mut moved = 0f64;
        for (b, s) in beta.iter_mut().zip(&step) {
            *b -= s;
            moved = moved.max(s.abs());
        }
        if moved < NEWTON_TOLERANCE {
            break;
        }
    }
    Ok(ProbeHead {
        label: label.to_string(),
        weights: beta[..d].iter().map(|&b| b as f32).collect(),
        bias: beta[d] as f32,
    })
}

/// Solves `A x = b` for symmetric positive definite `A` (`k * k`, lower triangle filled,
/// overwritten by its Cholesky factor); `None` when `A` is not positive definite.
fn cholesky_solve(a: &mut [f64], k: usize, b: &[f64]) -> Option<Vec<f64>> {
    for j in 0..k {
        let mut d = a[j * k + j];
        for p in 0..j {
            d -= a[j * k + p] * a[j * k + p];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[j * k + j] = d;
        for i in j + 1..k {
            let mut s = a[i * k + j];
            for p in 0..j {
                s -= a[i * k + p] * a[j * k + p];
            }
            a[i * k + j] = s / d;
        }
    }
    let mut x = b.to_vec();
    for i in 0..k {
        for p in 0..i {
            x[i] -= a[i * k + p] * x[p];
        }
        x[i] /= a[i * k + i];
    }
    for i in (0..k).rev() {
        for p in i + 1..k {
            x[i] -= a[p * k + i] * x[p];
        }
        x[i] /= a[i * k + i];
    }
    Some(x)
}
