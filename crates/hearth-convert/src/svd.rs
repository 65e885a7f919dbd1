//! Singular value decomposition of a weight matrix in f64, for low-rank compression.
//!
//! `W` (rows × cols) is decomposed through the symmetric eigenproblem of its smaller
//! Gram matrix (`W·Wᵀ` or `Wᵀ·W`, size `m = min(rows, cols)`): its eigenvalues are the
//! squared singular values and its eigenvectors one side's singular vectors; the other
//! side follows as `W·v / σ` (or `Wᵀ·u / σ`). The eigenproblem is solved by Householder
//! reduction to tridiagonal form and the implicit QL method with Wilkinson-style shifts
//! (O(m³), about a second for m = 640 on one core). Squaring the matrix costs accuracy
//! only for singular values far below the largest (relative error about
//! `ε·σ₀²/σᵢ²`), which are the ones compression throws away.

use rayon::prelude::*;

use crate::{Error, Result};

/// The singular values of a matrix and its leading singular vectors.
#[derive(Debug, Clone)]
pub struct Svd {
    /// Every singular value (`min(rows, cols)` of them), largest first.
    pub values: Vec<f64>,
    rows: usize,
    cols: usize,
    /// `kept` left vectors of `rows` values each.
    left: Vec<f64>,
    /// `kept` right vectors of `cols` values each.
    right: Vec<f64>,
    kept: usize,
}

impl Svd {
    /// How many leading singular vector pairs are kept.
    pub fn kept(&self) -> usize {
        self.kept
    }

    /// Left singular vector `i` (`rows` values).
    pub fn left(&self, i: usize) -> &[f64] {
        &self.left[i * self.rows..(i + 1) * self.rows]
    }

    /// Right singular vector `i` (`cols` values).
    pub fn right(&self, i: usize) -> &[f64] {
        &self.right[i * self.cols..(i + 1) * self.cols]
    }

    /// The factors of the best rank-`rank` approximation `W ≈ B·A`, the singular
    /// values split evenly between them: `A = √Σ·Vᵀ` (rank × cols, row-major) and
    /// `B = U·√Σ` (rows × rank, row-major). `rank` is at most [`kept`](Self::kept).
    pub fn factors(&self, rank: usize) -> (Vec<f32>, Vec<f32>) {
        let rank = rank.min(self.kept);
        let mut a = Vec::with_capacity(rank * self.cols);
        for i in 0..rank {
            let s = self.values[i].sqrt();
            a.extend(self.right(i).iter().map(|&v| (v * s) as f32));
        }
        let mut b = vec![0f32; self.rows * rank];
        for i in 0..rank {
            let s = self.values[i].sqrt();
            for (r, &u) in self.left(i).iter().enumerate() {
                b[r * rank + i] = (u * s) as f32;
            }
        }
        (a, b)
    }
}

/// The smallest rank whose singular values keep at least `energy` (0 < energy ≤ 1)
/// of the sum of all squared singular values.
pub fn rank_for_energy(values: &[f64], energy: f64) -> usize {
    let total: f64 = values.iter().map(|s| s * s).sum();
    let mut acc = 0.0;
    for (i, s) in values.iter().enumerate() {
        acc += s * s;
        if acc >= energy * total * (1.0 - 1e-12) {
            return i + 1;
        }
    }
    values.len()
}

/// The SVD of `w` (`rows` × `cols`, row-major), keeping the leading `keep` singular
/// vector pairs (fewer when the matrix is smaller). `name` labels errors.
pub fn svd(name: &str, w: &[f32], rows: usize, cols: usize, keep: usize) -> Result<Svd> {
    decompose(name, w, rows, cols, Some(keep))
}

/// Only the singular values of `w`, largest first (cheaper: no vectors).
pub fn singular_values(name: &str, w: &[f32], rows: usize, cols: usize) -> Result<Vec<f64>> {
    Ok(decompose(name, w, rows, cols, None)?.values)
}

fn decompose(name: &str, w: &[f32], rows: usize, cols: usize, keep: Option<usize>) -> Result<Svd> {
    let bad = |what: String| Error::Tensor {
        tensor: name.to_string(),
        what,
    };
    if rows == 0 || cols == 0 || w.len() != rows * cols {
        return Err(bad(format!(
            "{} values cannot be a {rows} × {cols} matrix",
            w.len()
        )));
    }
    if w.iter().any(|v| !v.is_finite()) {
        return Err(bad("holds NaN or infinite values".into()));
    }
    // Rows of the smaller side: `wide` when W's rows are the short side.
    let wide = rows <= cols;
    let (m, len) = if wide { (rows, cols) } else { (cols, rows) };
    let mut short = vec![0f64; m * len];
    if wide {
        short.iter_mut().zip(w).for_each(|(d, &s)| *d = s as f64);
    } else {
        for (r, row) in w.chunks_exact(cols).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                short[c * rows + r] = v as f64;
            }
        }
    }
    let mut gram = vec![0f64; m * m];
    gram.par_chunks_mut(m).enumerate().for_each(|(i, g)| {
        let xi = &short[i * len..(i + 1) * len];
        for (j, gj) in g.iter_mut().enumerate().take(i + 1) {
            *gj = dot(xi, &short[j * len..(j + 1) * len]);
        }
    });
    for i in 0..m {
        for j in i + 1..m {
            gram[i * m + j] = gram[j * m + i];
        }
    }
    let want = keep.map(|k| k.min(m));
    let (eig, vecs) = symmetric_eigen(gram, m, want.is_some())
        .ok_or_else(|| bad("the eigenvalue iteration did not converge".into()))?;
    let values: Vec<f64> = eig.iter().map(|&l| l.max(0.0).sqrt()).collect();
    let kept = want.unwrap_or(0);
    // `vecs` rows are eigenvectors of the short side; derive the long side.
    let mut short_vecs = Vec::with_capacity(kept * m);
    let mut long_vecs = vec![0f64; kept * len];
    let tiny = values.first().copied().unwrap_or(0.0) * 1e-12;
    long_vecs
        .par_chunks_mut(len)
        .enumerate()
        .for_each(|(i, out)| {
            let s = values[i];
            if s <= tiny {
                return;
            }
            let v = &vecs[i * m..(i + 1) * m];
            for (k, &vk) in v.iter().enumerate() {
                let row = &short[k * len..(k + 1) * len];
                out.iter_mut().zip(row).for_each(|(o, &x)| *o += vk * x);
            }
            out.iter_mut().for_each(|o| *o /= s);
        });
    for i in 0..kept {
        short_vecs.extend_from_slice(&vecs[i * m..(i + 1) * m]);
    }
    let (left, right) = if wide {
        (short_vecs, long_vecs)
    } else {
        (long_vecs, short_vecs)
    };
    Ok(Svd {
        values,
        rows,
        cols,
        left,
        right,
        kept,
    })
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Eigenvalues (descending) of the symmetric `n × n` matrix `a` (row-major), and with
/// `vectors` the matching unit eigenvectors as rows of an `n × n` array. `None` when
/// the QL iteration fails to converge.
fn symmetric_eigen(mut a: Vec<f64>, n: usize, vectors: bool) -> Option<(Vec<f64>, Vec<f64>)> {
    let mut d = vec![0f64; n];
    let mut e = vec![0f64; n];
    tridiagonalize(&mut a, n, &mut d, &mut e, vectors);
    // After the reduction, column j of `a` holds the j-th basis vector; the QL
    // rotations combine pairs of basis vectors, which is cheaper on rows.
    let mut z = vec![0f64; if vectors { n * n } else { 0 }];
    if vectors {
        for i in 0..n {
            for j in 0..n {
                z[j * n + i] = a[i * n + j];
            }
        }
    }
    drop(a);
    ql_implicit(&mut d, &mut e, &mut z, n, vectors)?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[j].total_cmp(&d[i]));
    let values = order.iter().map(|&i| d[i]).collect();
    let mut sorted = Vec::with_capacity(z.len());
    if vectors {
        for &i in &order {
            sorted.extend_from_slice(&z[i * n..(i + 1) * n]);
        }
    }
    Some((values, sorted))
}

/// Householder reduction of the symmetric `a` to tridiagonal form: diagonal `d`,
/// sub-diagonal `e[1..]`. With `vectors`, `a` ends as the orthogonal transformation.
fn tridiagonalize(a: &mut [f64], n: usize, d: &mut [f64], e: &mut [f64], vectors: bool) {
    let at = |i: usize, j: usize| i * n + j;
    for j in 0..n {
        d[j] = a[at(n - 1, j)];
    }
    for i in (1..n).rev() {
        let scale: f64 = d[..i].iter().map(|x| x.abs()).sum();
        let mut h = 0.0;
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = a[at(i - 1, j)];
                a[at(i, j)] = 0.0;
                a[at(j, i)] = 0.0;
            }
        } else {
            for x in &mut d[..i] {
                *x /= scale;
                h += *x * *x;
            }
            let mut f = d[i - 1];
            let g = if f > 0.0 { -h.sqrt() } else { h.sqrt() };
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            e[..i].iter_mut().for_each(|x| *x = 0.0);
            for j in 0..i {
                f = d[j];
                a[at(j, i)] = f;
                let mut g = e[j] + a[at(j, j)] * f;
                for k in j + 1..i {
                    g += a[at(k, j)] * d[k];
                    e[k] += a[at(k, j)] * f;
                }
                e[j] = g;
            }
            f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                let (f, g) = (d[j], e[j]);
                for k in j..i {
                    a[at(k, j)] -= f * e[k] + g * d[k];
                }
                d[j] = a[at(i - 1, j)];
                a[at(i, j)] = 0.0;
            }
        }
        d[i] = h;
    }
    if vectors {
        for i in 0..n - 1 {
            a[at(n - 1, i)] = a[at(i, i)];
            a[at(i, i)] = 1.0;
            let h = d[i + 1];
            if h != 0.0 {
                for k in 0..=i {
                    d[k] = a[at(k, i + 1)] / h;
                }
                for j in 0..=i {
                    let g: f64 = (0..=i).map(|k| a[at(k, i + 1)] * a[at(k, j)]).sum();
                    for k in 0..=i {
                        a[at(k, j)] -= g * d[k];
                    }
                }
            }
            for k in 0..=i {
                a[at(k, i + 1)] = 0.0;
            }
        }
        for j in 0..n {
            d[j] = a[at(n - 1, j)];
            a[at(n - 1, j)] = 0.0;
        }
        a[at(n - 1, n - 1)] = 1.0;
    } else {
        // The loop left `h` in `d`; the tridiagonal's diagonal is `a`'s diagonal.
        for j in 0..n {
            d[j] = a[at(j, j)];
        }
    }
    e[0] = 0.0;
}

/// Eigenvalues (into `d`) of the symmetric tridiagonal matrix `d`, `e[1..]` by the
/// implicit QL method; with `vectors`, the rows of `z` are rotated alongside.
fn ql_implicit(d: &mut [f64], e: &mut [f64], z: &mut [f64], n: usize, vectors: bool) -> Option<()> {
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let eps = f64::EPSILON;
    let (mut f, mut tst1) = (0f64, 0f64);
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * tst1 {
            m += 1;
        }
        if m > l {
            let mut iterations = 0;
            loop {
                iterations += 1;
                if iterations > 60 {
                    return None;
                }
                let g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let r = p.hypot(1.0).copysign(p);
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let h = g - d[l];
                d[l + 2..n].iter_mut().for_each(|x| *x -= h);
                f += h;
                p = d[m];
                let (mut c, mut c2, mut c3) = (1f64, 1f64, 1f64);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0f64, 0f64);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    let g = c * e[i];
                    let h = c * p;
                    let r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    if vectors {
                        let (lo, hi) = z.split_at_mut((i + 1) * n);
                        let (zi, zi1) = (&mut lo[i * n..], &mut hi[..n]);
                        for (a, b) in zi.iter_mut().zip(zi1.iter_mut()) {
                            let h = *b;
                            *b = s * *a + c * h;
                            *a = c * *a - s * h;
                        }
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
    Some(())
}

#[cfg(test)]
#[path = "svd_tests.rs"]
mod tests;
