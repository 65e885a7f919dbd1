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

mod half_dot;

/// Attention of one query token over positions `lo..=hi` of `kv`.
///
/// `q` holds every query head (`n_heads * head_dim`), `out` receives the same shape.
/// `scores` is scratch space reused between calls. The query heads that share a KV
/// head are handled together, so each cached key and value row is read once per
/// group. The query and the softmax weights are rounded to half precision before
/// meeting the half-precision cache, exactly where ggml converts them, so long
/// generations track llama.cpp's.
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
    // Scores key by key (`group` per key, one per head), then the group's rounded queries.
    scores.resize(group * (n + hd), 0.0);
    let (rows, qs) = scores.split_at_mut(group * n);
    for g in 0..shape.n_kv_heads {
        let heads = g * group..(g + 1) * group;
        for (d, &s) in qs.iter_mut().zip(&q[heads.start * hd..heads.end * hd]) {
            *d = f16::from_f32(s).to_f32();
        }
        let key = |j: usize| &kv.key(lo + j)[g * hd..(g + 1) * hd];
        for (p, at_keys) in rows.chunks_mut(2 * group).enumerate() {
            let j = 2 * p;
            if at_keys.len() == 2 * group {
                half_dot::dots_pair(qs, key(j), key(j + 1), at_keys);
            } else {
                half_dot::dots(qs, key(j), at_keys);
            }
            for s in at_keys.iter_mut() {
                *s *= shape.scale;
            }
        }
        for h in 0..group {
            let max = rows[h..]
                .iter()
                .step_by(group)
                .fold(f32::NEG_INFINITY, |m, &s| m.max(s));
            let mut sum = 0f32;
            for s in rows[h..].iter_mut().step_by(group) {
                *s = (*s - max).exp();
                sum += *s;
            }
            let inv = 1.0 / sum;
            for s in rows[h..].iter_mut().step_by(group) {
                *s = f16::from_f32(*s * inv).to_f32();
            }
        }
        let values: Vec<&[f16]> = (0..n)
            .map(|j| &kv.value(lo + j)[g * hd..(g + 1) * hd])
            .collect();
        half_dot::weighted_sums(rows, &values, &mut out[heads.start * hd..heads.end * hd]);
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
