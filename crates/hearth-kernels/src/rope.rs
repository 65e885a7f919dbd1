/// How a rotary embedding pairs up the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs `(x[2i], x[2i+1])`: llama as stored in GGUF.
    Normal,
    /// Split halves `(x[i], x[i + d/2])`: GPT-NeoX, Gemma.
    Neox,
}

/// Rotates every head of `x` (`n_heads` heads of `head_dim`) for position `pos`
/// (already multiplied by any linear position scaling).
///
/// Only the first `rope_dim` dimensions of each head rotate. The angle for pair `i`
/// is `pos * base^(-2i/rope_dim)`, computed by repeated multiplication in `f32` the
/// way ggml does, so positions far into the context round as the reference does.
pub fn rope_in_place(
    x: &mut [f32],
    head_dim: usize,
    rope_dim: usize,
    pos: f32,
    base: f32,
    style: RopeStyle,
) {
    let half = rope_dim / 2;
    let theta_scale = base.powf(-2.0 / rope_dim as f32);
    let mut cs = [(0f32, 0f32); 256];
    let mut theta = pos;
    for c in cs.iter_mut().take(half) {
        *c = (theta.cos(), theta.sin());
        theta *= theta_scale;
    }
    for head in x.chunks_exact_mut(head_dim) {
        for (i, &(cos, sin)) in cs.iter().take(half).enumerate() {
            let (a, b) = match style {
                RopeStyle::Normal => (2 * i, 2 * i + 1),
                RopeStyle::Neox => (i, i + half),
            };
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0 * cos - x1 * sin;
            head[b] = x0 * sin + x1 * cos;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_zero_is_identity_and_norm_is_kept() {
        let orig: Vec<f32> = (0..16).map(|i| i as f32 * 0.1 - 0.7).collect();
        let mut x = orig.clone();
        rope_in_place(&mut x, 8, 8, 0.0, 10_000.0, RopeStyle::Neox);
        assert_eq!(x, orig);
        for style in [RopeStyle::Normal, RopeStyle::Neox] {
            let mut x = orig.clone();
            rope_in_place(&mut x, 8, 8, 37.0, 10_000.0, style);
            let n0: f32 = orig.iter().map(|v| v * v).sum();
            let n1: f32 = x.iter().map(|v| v * v).sum();
            assert!((n0 - n1).abs() < 1e-4);
            assert_ne!(x, orig);
        }
    }

    #[test]
    fn relative_positions_give_equal_scores() {
        // q·k after rotation depends only on the distance between positions.
        let q: Vec<f32> = (0..8).map(|i| (i as f32).sin()).collect();
        let k: Vec<f32> = (0..8).map(|i| (i as f32).cos()).collect();
        let score = |pq: f32, pk: f32| {
            let (mut a, mut b) = (q.clone(), k.clone());
            rope_in_place(&mut a, 8, 8, pq, 100.0, RopeStyle::Normal);
            rope_in_place(&mut b, 8, 8, pk, 100.0, RopeStyle::Normal);
            crate::dot(&a, &b)
        };
        assert!((score(5.0, 2.0) - score(13.0, 10.0)).abs() < 1e-4);
    }
}
