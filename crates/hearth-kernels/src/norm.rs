/// RMS normalisation of `x` into `out`, scaled element-wise by `weight`, rounded as
/// ggml does: squares in f32 summed in f64, then `(x * scale) * w`.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let scale = inv_rms(x, eps);
    for ((o, &xi), &w) in out.iter_mut().zip(x).zip(weight) {
        *o = xi * scale * w;
    }
}

/// RMS normalisation in place.
pub fn rms_norm_in_place(x: &mut [f32], weight: &[f32], eps: f32) {
    let scale = inv_rms(x, eps);
    for (xi, &w) in x.iter_mut().zip(weight) {
        *xi = *xi * scale * w;
    }
}

fn inv_rms(x: &[f32], eps: f32) -> f32 {
    // Accumulate in f64 as ggml does for the mean of squares.
    let sum: f64 = x.iter().map(|&v| (v * v) as f64).sum();
    let mean = (sum / x.len().max(1) as f64) as f32;
    1.0 / (mean + eps).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_rms_after_norm() {
        let x = [1.0, -2.0, 3.0, -4.0];
        let mut out = [0.0; 4];
        rms_norm(&x, &[1.0; 4], 0.0, &mut out);
        let rms = (out.iter().map(|v| v * v).sum::<f32>() / 4.0).sqrt();
        assert!((rms - 1.0).abs() < 1e-6);
        let mut y = x;
        rms_norm_in_place(&mut y, &[2.0; 4], 0.0);
        for (a, b) in y.iter().zip(out) {
            assert!((a - 2.0 * b).abs() < 1e-6);
        }
    }
}
