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

/// `ys[h · d + i] = Σ_j weights[j · G + h] · xs[j][i]` for the `G = ys.len() / d` rows
/// of `ys` (`d` values each) and the `xs.len()` rows `xs` (`d` halves each), summed in
/// the order of `j` from zero with each product and sum rounded (the scalar path's `y +=
/// a · x` for every row of `xs` in turn onto zeroed `ys`), the sums held in registers
/// across the rows.
pub(super) fn weighted_sums(weights: &[f32], xs: &[&[f16]], ys: &mut [f32]) {
    let d = xs.first().map_or(0, |x| x.len());
    let g = ys.len().checked_div(d).unwrap_or(0);
    debug_assert_eq!(weights.len(), xs.len() * g);
    ys.fill(0.0);
    #[cfg(target_arch = "x86_64")]
    if crate::quant::has_avx2() {
        let wide = crate::quant::has_avx512();
        let mut h = 0;
        while h < g {
            let rows = &mut ys[h * d..];
            // SAFETY: the CPU supports AVX2, FMA and F16C (checked just above), and
            // AVX-512 F where `wide`; `rows` holds at least `G · d` values, every row
            // of `xs` `d` values and `weights` `xs.len() · g`.
            unsafe {
                match (wide, g - h) {
                    (false, 1) => x86::weighted_sums::<1>(weights, g, h, xs, rows),
                    (false, 2) => x86::weighted_sums::<2>(weights, g, h, xs, rows),
                    (false, 3) => x86::weighted_sums::<3>(weights, g, h, xs, rows),
                    (false, _) => x86::weighted_sums::<4>(weights, g, h, xs, rows),
                    (true, 1) => x86::weighted_sums_wide::<1>(weights, g, h, xs, rows),
                    (true, 2) => x86::weighted_sums_wide::<2>(weights, g, h, xs, rows),
                    (true, 3) => x86::weighted_sums_wide::<3>(weights, g, h, xs, rows),
                    (true, _) => x86::weighted_sums_wide::<4>(weights, g, h, xs, rows),
                }
            }
            h += 4;
        }
        return;
    }
    for (x, w) in xs.iter().zip(weights.chunks_exact(g.max(1))) {
        for (&a, y) in w.iter().zip(ys.chunks_exact_mut(d)) {
            scalar_axpy(a, x, y);
        }
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

    /// [`super::weighted_sums`] for heads `h0..h0 + G` of `g` (rows `0..G` of `ys`),
    /// eight values at a time, the sums held in registers across the rows of `xs`.
    ///
    /// SAFETY: the CPU supports AVX2, FMA and F16C; `ys` holds `G · d` values, every
    /// row of `xs` `d`, `weights` `xs.len() · g`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn weighted_sums<const G: usize>(
        weights: &[f32],
        g: usize,
        h0: usize,
        xs: &[&[f16]],
        ys: &mut [f32],
    ) {
        let d = xs[0].len();
        let mut i = 0;
        while i + 8 <= d {
            let mut y = [_mm256_setzero_ps(); G];
            for (x, w) in xs.iter().zip(weights.chunks_exact(g)) {
                let v = load8(x.as_ptr().add(i));
                for (h, y) in y.iter_mut().enumerate() {
                    let a = _mm256_set1_ps(*w.get_unchecked(h0 + h));
                    *y = _mm256_add_ps(*y, _mm256_mul_ps(a, v));
                }
            }
            for (h, y) in y.iter().enumerate() {
                _mm256_storeu_ps(ys.as_mut_ptr().add(h * d + i), *y);
            }
            i += 8;
        }
        tail::<G>(weights, g, h0, xs, ys, i);
    }

    /// [`weighted_sums`] sixteen values at a time.
    ///
    /// SAFETY: as [`weighted_sums`], and the CPU supports AVX-512 F.
    #[target_feature(enable = "avx2,fma,f16c,avx512f")]
    pub(super) unsafe fn weighted_sums_wide<const G: usize>(
        weights: &[f32],
        g: usize,
        h0: usize,
        xs: &[&[f16]],
        ys: &mut [f32],
    ) {
        let d = xs[0].len();
        let mut i = 0;
        while i + 16 <= d {
            let mut y = [_mm512_setzero_ps(); G];
            for (x, w) in xs.iter().zip(weights.chunks_exact(g)) {
                let v = _mm512_cvtph_ps(_mm256_loadu_si256(x.as_ptr().add(i).cast()));
                for (h, y) in y.iter_mut().enumerate() {
                    let a = _mm512_set1_ps(*w.get_unchecked(h0 + h));
                    *y = _mm512_add_ps(*y, _mm512_mul_ps(a, v));
                }
            }
            for (h, y) in y.iter().enumerate() {
                _mm512_storeu_ps(ys.as_mut_ptr().add(h * d + i), *y);
            }
            i += 16;
        }
        tail::<G>(weights, g, h0, xs, ys, i);
    }

    /// The values from `i` on, one at a time.
    fn tail<const G: usize>(
        weights: &[f32],
        g: usize,
        h0: usize,
        xs: &[&[f16]],
        ys: &mut [f32],
        i: usize,
    ) {
        let d = xs[0].len();
        for (x, w) in xs.iter().zip(weights.chunks_exact(g)) {
            for j in i..d {
                let v = x[j].to_f32();
                for h in 0..G {
                    ys[h * d + j] += w[h0 + h] * v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel this CPU has (AVX-512, then AVX2 alone) against the scalar path.
    #[test]
    fn simd_and_scalar_agree() {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::quant::tests::WIDEST;
            use crate::quant::Tiles;
            for widest in [Tiles::Avx512, Tiles::Avx2] {
                WIDEST.with(|w| w.set(widest));
                agree();
            }
            WIDEST.with(|w| w.set(Tiles::Avx512));
        }
        #[cfg(not(target_arch = "x86_64"))]
        agree();
    }

    fn agree() {
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
                // Weighted sums over three rows equal three scalar `y += a·x` onto zeros.
                let xs: Vec<Vec<f16>> = (0..3)
                    .map(|j| {
                        b.iter()
                            .map(|v| f16::from_f32(v.to_f32() * (j as f32 - 0.7)))
                            .collect()
                    })
                    .collect();
                let refs: Vec<&[f16]> = xs.iter().map(|x| &x[..]).collect();
                let weights: Vec<f32> = (0..3 * rows).map(|i| 0.3 - 0.07 * i as f32).collect();
                let mut got = vec![f32::NAN; rows * n];
                weighted_sums(&weights, &refs, &mut got);
                let mut want = vec![0f32; rows * n];
                for (x, w) in refs.iter().zip(weights.chunks_exact(rows)) {
                    for (&a, y) in w.iter().zip(want.chunks_exact_mut(n)) {
                        scalar_axpy(a, x, y);
                    }
                }
                assert_eq!(got, want, "weighted sums {n} x {rows}");
            }
        }
    }
}
