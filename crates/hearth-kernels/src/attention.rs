use half::f16;

use crate::ggml_expf;

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

/// Sum of eight lanes in the order of llamafile's and ggml's AVX `hsum`:
/// `((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))`.
fn hsum8(l: &[f32; 8]) -> f32 {
    let a = [l[0] + l[4], l[1] + l[5], l[2] + l[6], l[3] + l[7]];
    (a[0] + a[2]) + (a[1] + a[3])
}

/// Dot product accumulated as llamafile's tinyBLAS does for f16 operands on AVX2:
/// lane `i % 8` gathers the fused products of element `i`, then [`hsum8`].
fn dot_f16(a: &[f32], b: &[f16]) -> f32 {
    let mut acc = [0f32; 8];
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for l in 0..8 {
            acc[l] = ca[l].mul_add(cb[l].to_f32(), acc[l]);
        }
    }
    let mut s = hsum8(&acc);
    let tail = a.len() - a.len() % 8;
    for i in tail..a.len() {
        s += a[i] * b[i].to_f32();
    }
    s
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
        // ggml_vec_soft_max_f32: exponentials by ggml's vector exp, summed eight
        // cache slots at a time in f32 and across groups in f64.
        let mut sum = 0f64;
        let mut lanes = [0f32; 8];
        for (j, s) in scores.iter_mut().enumerate() {
            let pos = lo + j;
            *s = ggml_expf(*s - max);
            lanes[pos % 8] = *s;
            if pos % 8 == 7 || pos == hi {
                sum += hsum8(&lanes) as f64;
                lanes = [0f32; 8];
            }
        }
        let inv = (1.0 / sum) as f32;
        // Weights in f16 (ggml converts them for the f16 value cache); the weighted
        // sum over positions accumulates in eight lanes by cache slot, as tinyBLAS.
        let oh = &mut out[h * hd..(h + 1) * hd];
        let mut acc = vec![[0f32; 8]; hd];
        for (j, &s) in scores.iter().enumerate() {
            let p = f16::from_f32(s * inv).to_f32();
            let lane = (lo + j) % 8;
            let v = &kv.value(lo + j)[kvh * hd..(kvh + 1) * hd];
            for (a, x) in acc.iter_mut().zip(v) {
                a[lane] = p.mul_add(x.to_f32(), a[lane]);
            }
        }
        for (o, a) in oh.iter_mut().zip(&acc) {
            *o = hsum8(a);
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
        let shape = AttentionShape {
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 3,
            scale: 0.5,
        };
        let dim = 6;
        let n = 5;
        let kv = Flat {
            k: (0..n * dim)
                .map(|i| f16::from_f32(((i * 7) % 11) as f32 / 11.0 - 0.5))
                .collect(),
            v: (0..n * dim)
                .map(|i| f16::from_f32(((i * 5) % 13) as f32 / 13.0))
                .collect(),
            dim,
        };
        let q: Vec<f32> = (0..12).map(|i| (i as f32 * 0.3).sin()).collect();
        let mut out = vec![0.0; 12];
        attend(&q, &kv, 1, 3, &shape, &mut Vec::new(), &mut out);
        for h in 0..4 {
            let kvh = h / 2;
            let s: Vec<f32> = (1..=3)
                .map(|p| {
                    (0..3)
                        .map(|d| q[h * 3 + d] * kv.key(p)[kvh * 3 + d].to_f32())
                        .sum::<f32>()
                        * 0.5
                })
                .collect();
            let z: f32 = s.iter().map(|x| x.exp()).sum();
            for d in 0..3 {
                let want: f32 = (0..3)
                    .map(|j| s[j].exp() / z * kv.value(j + 1)[kvh * 3 + d].to_f32())
                    .sum();
                assert!((out[h * 3 + d] - want).abs() < 2e-3);
            }
        }
    }
}
