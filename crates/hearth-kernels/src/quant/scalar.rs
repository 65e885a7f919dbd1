//! Portable reference dot products, written for clarity; ggml's `_generic` kernels.

use super::blocks::{BlockQ4_1, BlockQ5_0, BlockQ8_0, BlockQ8_1, QK};

/// `Σ_blocks d_x d_y Σ_j q_x[j] q_y[j] + m_x s_y`.
pub fn vec_dot_q4_1_q8_1(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    let mut sum = 0f32;
    for (bx, by) in x.iter().zip(y) {
        let mut sumi = 0i32;
        for j in 0..QK / 2 {
            let lo = i32::from(bx.qs[j] & 0x0F);
            let hi = i32::from(bx.qs[j] >> 4);
            sumi += lo * i32::from(by.qs[j]) + hi * i32::from(by.qs[j + QK / 2]);
        }
        sum += sumi as f32 * (bx.d.to_f32() * by.d.to_f32()) + bx.m.to_f32() * by.s.to_f32();
    }
    sum
}

/// `Σ_blocks d_x d_y Σ_j (q_x[j] - 16) q_y[j]`.
pub fn vec_dot_q5_0_q8_0(x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
    let mut sum = 0f32;
    for (bx, by) in x.iter().zip(y) {
        let qh = u32::from_le_bytes(bx.qh);
        let mut sumi = 0i32;
        for j in 0..QK / 2 {
            let h0 = ((qh >> j) & 1) as u8;
            let h1 = ((qh >> (j + 16)) & 1) as u8;
            let lo = i32::from((bx.qs[j] & 0x0F) | (h0 << 4)) - 16;
            let hi = i32::from((bx.qs[j] >> 4) | (h1 << 4)) - 16;
            sumi += lo * i32::from(by.qs[j]) + hi * i32::from(by.qs[j + QK / 2]);
        }
        sum += sumi as f32 * (bx.d.to_f32() * by.d.to_f32());
    }
    sum
}

/// `Σ_blocks d_x d_y Σ_j q_x[j] q_y[j]`.
pub fn vec_dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    let mut sum = 0f32;
    for (bx, by) in x.iter().zip(y) {
        let sumi: i32 = bx
            .qs
            .iter()
            .zip(&by.qs)
            .map(|(&a, &b)| i32::from(a) * i32::from(b))
            .sum();
        sum += sumi as f32 * (bx.d.to_f32() * by.d.to_f32());
    }
    sum
}

/// [`super::quantize_q8_32`], one value at a time.
pub fn quantize_q8_32(xs: &[f32], qs: &mut [u8]) -> (f32, i32) {
    let max = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = max / 127.0;
    let id = if max != 0.0 { 127.0 / max } else { 0.0 };
    let mut sum = 0;
    for (q, &v) in qs.iter_mut().zip(xs) {
        let i = (v * id).round_ties_even() as i32;
        sum += i;
        *q = i.clamp(-128, 127) as i8 as u8;
    }
    (d, sum)
}

/// [`super::quantize_q8k_256`], one value at a time.
pub fn quantize_q8k_256(xs: &[f32], out: &mut super::BlockQ8K) {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in xs {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        out.d = 0.0;
        out.qs = [0; 256];
        out.bsums = [0; 16];
        return;
    }
    let iscale = -127.0 / max;
    for (q, &v) in out.qs.iter_mut().zip(xs) {
        *q = ((iscale * v).round_ties_even() as i32).min(127) as i8;
    }
    for (j, s) in out.bsums.iter_mut().enumerate() {
        *s = out.qs[16 * j..16 * j + 16]
            .iter()
            .map(|&q| i16::from(q))
            .sum();
    }
    out.d = 1.0 / iscale;
}
