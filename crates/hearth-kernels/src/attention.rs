use half::f16;

/// Head layout of one attention layer.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (a divisor of `n_heads`: grouped-query attention).
    pub n_kv_heads: usize,
    /// Dimensions per head.
    pub head_dim: usize,
    /// Factor applied to `q·k` before the softmax.
    pub scale: f32,
}

/// Read access to the cached keys and values of one sequence in one layer, stored at
/// half precision (as llama.cpp's default cache is).
pub trait KvView: Sync {
    /// Keys of all KV heads at `pos` (`n_kv_heads * head_dim` values).
    fn key(&self, pos: usize) -> &[f16];
    /// Values of all KV heads at `pos`.
    fn value(&self, pos: usize) -> &[f16];
}

fn dot_f16(a: &[f32], b: &[f16]) -> f32 {
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

fn axpy_f16(alpha: f32, x: &[f16], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi.to_f32();
    }
}

/// Attention of one query token over positions `lo..=hi` of `kv`.
///
/// `q` holds every query head (`n_heads * head_dim`), `out` receives the same shape.
/// `scores` is scratch space reused between calls. The query and the softmax weights
/// are rounded to half precision before meeting the half-precision cache, exactly
/// where ggml converts them, so long generations track llama.cpp's.
pub fn attend(
    q: &[f32],
    kv: &impl KvView,
    lo: usize,
    hi: usize,
    shape: &AttentionShape,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let hd = shape.head_dim;
    let group = shape.n_heads / shape.n_kv_heads;
    let n = hi + 1 - lo;
    scores.resize(n, 0.0);
    for h in 0..shape.n_heads {
        let kvh = h / group;
        let mut qh = [0f32; 512];
        let qh = &mut qh[..hd];
        for (d, &s) in qh.iter_mut().zip(&q[h * hd..(h + 1) * hd]) {
            *d = f16::from_f32(s).to_f32();
        }
        let qh = &*qh;
        let mut max = f32::NEG_INFINITY;
        for (j, s) in scores.iter_mut().enumerate() {
            let k = &kv.key(lo + j)[kvh * hd..(kvh + 1) * hd];
            *s = dot_f16(qh, k) * shape.scale;
            max = max.max(*s);
        }
        let mut sum = 0f32;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            sum += *s;
        }
        let oh = &mut out[h * hd..(h + 1) * hd];
        oh.fill(0.0);
        let inv = 1.0 / sum;
        for (j, &s) in scores.iter().enumerate() {
            let v = &kv.value(lo + j)[kvh * hd..(kvh + 1) * hd];
            axpy_f16(f16::from_f32(s * inv).to_f32(), v, oh);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flat {
        k: Vec<f16>,
        v: Vec<f16>,
        dim: usize,
    }

    impl KvView for Flat {
        fn key(&self, pos: usize) -> &[f16] {
            &self.k[pos * self.dim..(pos + 1) * self.dim]
        }
        fn value(&self, pos: usize) -> &[f16] {
            &self.v[pos * self.dim..(pos + 1) * self.dim]
        }
    }

    #[test]
    fn matches_naive_softmax_with_grouped_heads() {
        let shape = AttentionShape { n_heads: 4, n_kv_heads: 2, head_dim: 3, scale: 0.5 };
        let dim = 6;
        let n = 5;
        let kv = Flat {
            k: (0..n * dim).map(|i| f16::from_f32(((i * 7) % 11) as f32 / 11.0 - 0.5)).collect(),
            v: (0..n * dim).map(|i| f16::from_f32(((i * 5) % 13) as f32 / 13.0)).collect(),
            dim,
        };
        let q: Vec<f32> = (0..12).map(|i| (i as f32 * 0.3).sin()).collect();
        let mut out = vec![0.0; 12];
        attend(&q, &kv, 1, 3, &shape, &mut Vec::new(), &mut out);
        for h in 0..4 {
            let kvh = h / 2;
            let s: Vec<f32> = (1..=3)
                .map(|p| {
                    (0..3).map(|d| q[h * 3 + d] * kv.key(p)[kvh * 3 + d].to_f32()).sum::<f32>() * 0.5
                })
                .collect();
            let z: f32 = s.iter().map(|x| x.exp()).sum();
            for d in 0..3 {
                let want: f32 =
                    (0..3).map(|j| s[j].exp() / z * kv.value(j + 1)[kvh * 3 + d].to_f32()).sum();
                assert!((out[h * 3 + d] - want).abs() < 2e-3);
            }
        }
    }
}
