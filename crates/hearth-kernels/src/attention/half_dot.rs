//! Dot products and `y += a·x` between `f32` rows and half-precision cache rows, with
//! the conversion fused into the loop (F16C or AVX-512 on x86-64, picked at run time).
//! Every path has the scalar path's numerics exactly.

use half::f16;

/// `out[h] = Σ_i qs[h · d + i] · b[i]` for the `out.len()` rows of `qs` (each of `d =
/// b.len()` values): the scalar path's
/// numerics for every row, reading and converting `b` once.
#[inline]
pub(super) fn dots(qs: &[f32], b: &[f16], out: &mut [f32]) {
    debug_assert_eq!(qs.len(), b.len() * out.len());
    #[cfg(target_arch = "x86_64")]
    if crate::quant::has_avx2() {
        let d = b.len();
        let mut h = 0;
        while h < out.len() {
            let rows = &qs[h * d..];
            // SAFETY: the CPU supports AVX2, FMA and F16C (checked just above);
            // `rows` holds at least `G · d` values.
            unsafe {
                match out.len() - h {
                    1 => out[h] = x86::dots::<1>(rows, b)[0],
                    2 => out[h..h + 2].copy_from_slice(&x86::dots::<2>(rows, b)),
                    3 => out[h..h + 3].copy_from_slice(&x86::dots::<3>(rows, b)),
                    _ => out[h..h + 4].copy_from_slice(&x86::dots::<4>(rows, b)),
                }
            }
            h += 4;
        }
        return;
    }
    for (o, q) in out.iter_mut().zip(qs.chunks_exact(b.len())) {
        *o = scalar_dot(q, b);
    }
}

/// [`dots`] for two keys: `out[..G]` against `b0`, `out[G..]` against `b1`, where `G`
/// is the number of rows of `qs`.
#[inline]
pub(super) fn dots_pair(qs: &[f32], b0: &[f16], b1: &[f16], out: &mut [f32]) {
    let g = out.len() / 2;
    debug_assert!(b0.len() == b1.len() && qs.len() == b0.len() * g);
    #[cfg(target_arch = "x86_64")]
    if crate::quant::has_avx512() {
        let d = b0.len();
        let mut h = 0;
        while h < g {
            let rows = &qs[h * d..];
            // SAFETY: the CPU supports AVX-512 F (checked just above) and AVX2, FMA and
            // F16C (implied by the check); `rows` holds at least `G · d` values.
            let pair: &[[f32; 2]] = unsafe {
                match g - h {
                    1 => &x86::dots_pair::<1>(rows, b0, b1),
                    2 => &x86::dots_pair::<2>(rows, b0, b1),
                    3 => &x86::dots_pair::<3>(rows, b0, b1),
                    _ => &x86::dots_pair::<4>(rows, b0, b1),
                }
            };
            for (i, [v0, v1]) in pair.iter().enumerate() {
                (out[h + i], out[g + h + i]) = (*v0, *v1);
            }
            h += 4;
        }
        return;
    }
    let (o0, o1) = out.split_at_mut(g);
    dots(qs, b0, o0);
    dots(qs, b1, o1);
}

/// `ys[h · d + i] += alphas[h] · x[i]` for every row of `ys` (each of `d = x.len()`
/// values): the scalar path's
/// numerics for every row, reading and converting `x` once.
#[inline]
pub(super) fn axpys(alphas: &[f32], x: &[f16], ys: &mut [f32]) {
    debug_assert_eq!(ys.len(), x.len() * alphas.len());
    #[cfg(target_arch = "x86_64")]
    if crate::quant::has_avx2() {
        let d = x.len();
        let wide = crate::quant::has_avx512();
        let mut h = 0;
        while h < alphas.len() {
            let (a, rows) = (&alphas[h..], &mut ys[h * d..]);
            // SAFETY: the CPU supports AVX2, FMA and F16C (checked just above), and
            // AVX-512 F where `wide`; `rows` holds at least `G · d` values.
            unsafe {
                match (wide, alphas.len() - h) {
                    (false, 1) => x86::axpys::<1>(a, x, rows),
                    (false, 2) => x86::axpys::<2>(a, x, rows),
                    (false, 3) => x86::axpys::<3>(a, x, rows),
                    (false, _) => x86::axpys::<4>(a, x, rows),
                    (true, 1) => x86::axpys_wide::<1>(a, x, rows),
                    (true, 2) => x86::axpys_wide::<2>(a, x, rows),
                    (true, 3) => x86::axpys_wide::<3>(a, x, rows),
                    (true, _) => x86::axpys_wide::<4>(a, x, rows),
                }
            }
            h += 4;
        }
        return;
    }
    for (&a, y) in alphas.iter().zip(ys.chunks_exact_mut(x.len())) {
        scalar_axpy(a, x, y);
    }
}

pub(super) fn scalar_dot(a: &[f32], b: &[f16]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l].to_f32();
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..a.len() {
        s += a[i] * b[i].to_f32();
    }
    s
}

pub(super) fn scalar_axpy(alpha: f32, x: &[f16], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi.to_f32();
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use half::f16;

    /// Eight halves at `p` as eight floats.
    ///
    /// SAFETY: `p..p + 8` is readable.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(p: *const f16) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
    }

    /// The dot products of the first `G` rows of `qs` (each `b.len()` long) with `b`,
    /// with the scalar path's numerics exactly: eight lanes of separately rounded
    /// products and sums (no FMA), lanes added in order, then the tail.
    ///
    /// SAFETY: the CPU supports AVX2, FMA and F16C; `qs` holds `G · b.len()` values.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dots<const G: usize>(qs: &[f32], b: &[f16]) -> [f32; G] {
        let n = b.len();
        let (pq, pb) = (qs.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); G];
        let mut i = 0;
        while i + 8 <= n {
            let k = load8(pb.add(i));
            for (h, acc) in acc.iter_mut().enumerate() {
                *acc = _mm256_add_ps(*acc, _mm256_mul_ps(_mm256_loadu_ps(pq.add(h * n + i)), k));
            }
            i += 8;
        }
        std::array::from_fn(|h| {
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), acc[h]);
            let mut s: f32 = lanes.iter().sum();
            for j in i..n {
                s += qs[h * n + j] * b[j].to_f32();
            }
            s
        })
    }

    /// [`dots`] of the first `G` rows of `qs` with two keys at once: each 512-bit
    /// register holds a row's eight lanes against `b0`, then against `b1`.
    ///
    /// SAFETY: the CPU supports AVX-512 F, AVX2, FMA and F16C; `qs` holds
    /// `G · b0.len()` values; `b1` is as long as `b0`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f")]
    pub(super) unsafe fn dots_pair<const G: usize>(
        qs: &[f32],
        b0: &[f16],
        b1: &[f16],
    ) -> [[f32; 2]; G] {
        let n = b0.len();
        let (pq, p0, p1) = (qs.as_ptr(), b0.as_ptr(), b1.as_ptr());
        let mut acc = [_mm512_setzero_ps(); G];
        let mut i = 0;
        while i + 8 <= n {
            let halves = _mm256_set_m128i(
                _mm_loadu_si128(p1.add(i).cast()),
                _mm_loadu_si128(p0.add(i).cast()),
            );
            let k = _mm512_cvtph_ps(halves);
            for (h, acc) in acc.iter_mut().enumerate() {
                let q = _mm256_castps_pd(_mm256_loadu_ps(pq.add(h * n + i)));
                let q = _mm512_castpd_ps(_mm512_broadcast_f64x4(q));
                *acc = _mm512_add_ps(*acc, _mm512_mul_ps(q, k));
            }
            i += 8;
        }
        std::array::from_fn(|h| {
            let mut lanes = [0f32; 16];
            _mm512_storeu_ps(lanes.as_mut_ptr(), acc[h]);
            let q = &qs[h * n..(h + 1) * n];
            [(&lanes[..8], b0), (&lanes[8..], b1)].map(|(lanes, b)| {
                let mut s: f32 = lanes.iter().sum();
                for j in i..n {
                    s += q[j] * b[j].to_f32();
                }
                s
            })
        })
    }

    /// [`axpys`] sixteen values at a time.
    ///
    /// SAFETY: as [`axpys`], and the CPU supports AVX-512 F.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f")]
    pub(super) unsafe fn axpys_wide<const G: usize>(alphas: &[f32], x: &[f16], ys: &mut [f32]) {
        let n = x.len();
        let (px, py) = (x.as_ptr(), ys.as_mut_ptr());
        let a: [__m512; G] = std::array::from_fn(|h| _mm512_set1_ps(alphas[h]));
        let mut i = 0;
        while i + 16 <= n {
            let v = _mm512_cvtph_ps(_mm256_loadu_si256(px.add(i).cast()));
            for (h, a) in a.iter().enumerate() {
                let y = py.add(h * n + i);
                _mm512_storeu_ps(y, _mm512_add_ps(_mm512_loadu_ps(y), _mm512_mul_ps(*a, v)));
            }
            i += 16;
        }
        for j in i..n {
            let v = x[j].to_f32();
            for h in 0..G {
                ys[h * n + j] += alphas[h] * v;
            }
        }
    }

    /// `y += alpha · x` into the first `G` rows of `ys` (each `x.len()` long) with the
    /// first `G` of `alphas`, the product and the sum rounded separately as the scalar
    /// path does.
    ///
    /// SAFETY: the CPU supports AVX2, FMA and F16C; `ys` holds `G · x.len()` values
    /// and `alphas` `G`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn axpys<const G: usize>(alphas: &[f32], x: &[f16], ys: &mut [f32]) {
        let n = x.len();
        let (px, py) = (x.as_ptr(), ys.as_mut_ptr());
        let a: [__m256; G] = std::array::from_fn(|h| _mm256_set1_ps(alphas[h]));
        let mut i = 0;
        while i + 8 <= n {
            let v = load8(px.add(i));
            for (h, a) in a.iter().enumerate() {
                let y = py.add(h * n + i);
                _mm256_storeu_ps(y, _mm256_add_ps(_mm256_loadu_ps(y), _mm256_mul_ps(*a, v)));
            }
            i += 8;
        }
        for j in i..n {
            let v = x[j].to_f32();
            for h in 0..G {
                ys[h * n + j] += alphas[h] * v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_and_scalar_agree() {
        for n in [1, 7, 8, 15, 16, 17, 64, 256, 259] {
            for rows in 1..=6 {
                let a: Vec<f32> = (0..rows * n)
                    .map(|i| ((i * 37 % 19) as f32 - 9.0) / 7.0)
                    .collect();
                let b: Vec<f16> = (0..n)
                    .map(|i| f16::from_f32(((i * 11 % 23) as f32 - 11.0) / 5.0))
                    .collect();
                let mut got = vec![0f32; rows];
                dots(&a, &b, &mut got);
                let b1: Vec<f16> = b.iter().rev().copied().collect();
                let mut pair = vec![0f32; 2 * rows];
                dots_pair(&a, &b, &b1, &mut pair);
                for (h, &g) in got.iter().enumerate() {
                    let want = scalar_dot(&a[h * n..(h + 1) * n], &b);
                    assert_eq!(g.to_bits(), want.to_bits(), "{n}: {g} {want}");
                    assert_eq!(pair[h].to_bits(), want.to_bits(), "{n}: pair {h}");
                    let want1 = scalar_dot(&a[h * n..(h + 1) * n], &b1);
                    assert_eq!(pair[rows + h].to_bits(), want1.to_bits(), "{n}: pair {h}'");
                }
                let alphas: Vec<f32> = (0..rows).map(|h| 0.37 - 0.1 * h as f32).collect();
                let mut y1 = a.clone();
                let mut y2 = a.clone();
                axpys(&alphas, &b, &mut y1);
                for (h, y) in y2.chunks_exact_mut(n).enumerate() {
                    scalar_axpy(alphas[h], &b, y);
                }
                assert_eq!(y1, y2, "{n} x {rows}");
            }
        }
    }
}
