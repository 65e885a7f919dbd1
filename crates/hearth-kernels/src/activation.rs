use half::f16;

/// GELU with the tanh approximation (what Gemma uses).
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + 0.044_715 * x * x)).tanh())
}

/// GELU of every half-precision input, rounded to half precision: ggml's table.
fn gelu_table() -> &'static [f16] {
    static TABLE: std::sync::OnceLock<Vec<f16>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|bits| f16::from_f32(gelu_tanh(f16::from_bits(bits).to_f32())))
            .collect()
    })
}

/// `gate[i] = gelu_tanh(gate[i]) * up[i]`, with the GELU evaluated at half precision
/// (input and result rounded to f16) as ggml's CPU backend does through its table, so
/// results agree with llama.cpp's to the bit pattern of that table.
pub fn gelu_tanh_mul(gate: &mut [f32], up: &[f32]) {
    let table = gelu_table();
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = if x <= -10.0 {
            0.0
        } else if x >= 10.0 {
            x * u
        } else {
            table[usize::from(f16::from_f32(x).to_bits())].to_f32() * u
        };
    }
}

/// `gate[i] = silu(gate[i]) * up[i]` (SwiGLU, llama's gating).
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert!((gelu_tanh(1.0) - 0.841_192).abs() < 1e-5);
        assert_eq!(gelu_tanh(0.0), 0.0);
        let mut g = [1.0f32, -1.0];
        silu_mul(&mut g, &[2.0, 1.0]);
        assert!((g[0] - 2.0 * 0.731_058_6).abs() < 1e-5);
        assert!((g[1] + 0.268_941_4).abs() < 1e-5);
    }

    #[test]
    fn table_equals_evaluating_at_half_precision() {
        let xs: Vec<f32> = (-1990..1990).map(|i| i as f32 * 0.005 + 0.0007).collect();
        let mut g = xs.clone();
        gelu_tanh_mul(&mut g, &vec![1.5; xs.len()]);
        for (x, got) in xs.iter().zip(g) {
            let xh = f16::from_f32(*x).to_f32();
            let want = f16::from_f32(gelu_tanh(xh)).to_f32() * 1.5;
            assert_eq!(got.to_bits(), want.to_bits(), "{x}");
        }
    }
}
