//! Dot products and `y += a·x` between `f32` rows and half-precision cache rows, with
//! the conversion fused into the loop (F16C on x86-64, picked at run time).

use half::f16;

/// `Σ a[i] · b[i]`.
#[inline]
pub(super) fn dot(a: &[f32], b: &[f16]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if crate::quant::has_avx2() {
        // SAFETY: the CPU supports AVX2, FMA and F16C (checked just above).
        return unsafe { x86::dot(a, b) };
    }
    scalar_dot(a, b)
}

/// `y[i] += alpha · x[i]`.
#[inline]
pub(super) fn axpy(alpha: f32, x: &[f16], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    #[cfg(target_arch = "x86_64")]
    if crate::quant::has_avx2() {
        // SAFETY: as in `dot`.
        return unsafe { x86::axpy(alpha, x, y) };
    }
    scalar_axpy(alpha, x, y)
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

    /// The scalar path's numerics exactly: eight lanes of separately rounded products
    /// and sums (no FMA), lanes added in order, then the tail.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot(a: &[f32], b: &[f16]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        while i + 8 <= n {
            acc = _mm256_add_ps(
                acc,
                _mm256_mul_ps(_mm256_loadu_ps(pa.add(i)), load8(pb.add(i))),
            );
            i += 8;
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
        let mut s: f32 = lanes.iter().sum();
        while i < n {
            s += a[i] * b[i].to_f32();
            i += 1;
        }
        s
    }

    /// `y += alpha · x` with the product and the sum rounded separately, as the scalar
    /// path does.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn axpy(alpha: f32, x: &[f16], y: &mut [f32]) {
        let n = x.len().min(y.len());
        let (px, py) = (x.as_ptr(), y.as_mut_ptr());
        let a = _mm256_set1_ps(alpha);
        let mut i = 0;
        while i + 8 <= n {
            let r = _mm256_add_ps(
                _mm256_loadu_ps(py.add(i)),
                _mm256_mul_ps(a, load8(px.add(i))),
            );
            _mm256_storeu_ps(py.add(i), r);
            i += 8;
        }
        while i < n {
            y[i] += alpha * x[i].to_f32();
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_and_scalar_agree_bit_for_bit() {
        for n in [1, 7, 8, 15, 16, 17, 64, 256, 259] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 19) as f32 - 9.0) / 7.0).collect();
            let b: Vec<f16> = (0..n)
                .map(|i| f16::from_f32(((i * 11 % 23) as f32 - 11.0) / 5.0))
                .collect();
            let (got, want) = (dot(&a, &b), scalar_dot(&a, &b));
            assert!(
                (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                "{n}: {got} {want}"
            );
            let mut y1 = a.clone();
            let mut y2 = a.clone();
            axpy(0.37, &b, &mut y1);
            scalar_axpy(0.37, &b, &mut y2);
            for (p, q) in y1.iter().zip(&y2) {
                assert!((p - q).abs() <= 1e-5 * q.abs().max(1.0));
            }
        }
    }
}
