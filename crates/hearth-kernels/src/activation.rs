use half::f16;

/// GELU with the tanh approximation (what Gemma uses).
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + 0.044_715 * x * x)).tanh())
}

/// `gate[i] = gelu_tanh(gate[i]) * up[i]`, with the GELU evaluated at half precision
/// (input and result rounded to f16) as ggml's CPU backend does through its table, so
/// results agree with llama.cpp's to the bit pattern of that table.
pub fn gelu_tanh_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = if x <= -10.0 {
            0.0
        } else if x >= 10.0 {
            x * u
        } else {
            let xh = f16::from_f32(x).to_f32();
            f16::from_f32(gelu_tanh(xh)).to_f32() * u
        };
    }
}

/// `gate[i] = silu(gate[i]) * up[i]` (SwiGLU, llama's gating). `exp` is the correctly
/// rounded one: ggml's vector `ggml_v_expf` here measured worse against the golden
/// outputs (see the `num` branch notes).
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// `exp(x)` exactly as ggml's AVX2+FMA `ggml_v_expf` (one lane): a range reduction by
/// `ln 2` and a degree-5 polynomial, within about 1.5 ulp of the true value.
pub fn ggml_expf(x: f32) -> f32 {
    let c = f32::from_bits;
    let r = c(0x4b40_0000); // 0x1.8p23
    let z = x.mul_add(c(0x3fb8_aa3b), r);
    let n = z - r;
    let b = (-n).mul_add(c(0x35bf_be8e), (-n).mul_add(c(0x3f31_7200), x));
    let e = z.to_bits().wrapping_shl(23);
    let k = c(e.wrapping_add(1f32.to_bits()));
    let u = b * b;
    let j = c(0x3c07_2010)
        .mul_add(b, c(0x3d2b_9f17))
        .mul_add(u, c(0x3e2a_af33).mul_add(b, c(0x3eff_fedb)))
        .mul_add(u, c(0x3f7f_fff6) * b);
    if n.abs() <= 126.0 {
        return k.mul_add(j, k);
    }
    let g: u32 = if n <= 0.0 { 0x8200_0000 } else { 0 };
    let s1 = c(g.wrapping_add(0x7f00_0000));
    let s2 = c(e.wrapping_sub(g));
    if n.abs() > 192.0 {
        s1 * s1
    } else {
        s2.mul_add(j, s2) * s1
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
        for x in [-100.0f32, -20.0, -1.0, -0.1, 0.0, 0.3, 1.0, 5.0, 80.0] {
            let (a, b) = (ggml_expf(x), x.exp());
            assert!((a - b).abs() <= 4.0 * f32::EPSILON * b, "{x}: {a} vs {b}");
        }
        assert_eq!(ggml_expf(-200.0), 0.0);
        assert!(ggml_expf(200.0).is_infinite());
    }
}
