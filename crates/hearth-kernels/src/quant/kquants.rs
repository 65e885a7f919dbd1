//! Portable reference products of the K-quant formats (Q4_K, Q6_K) with Q8_K
//! activations, and the sub-block scale unpacking they share with the SIMD kernels.

use super::blocks::{BlockQ4K, BlockQ6K, BlockQ8K, QK_K};

/// The eight 6-bit scales and eight 6-bit minimums packed in a Q4_K block's 12 bytes
/// (ggml's `get_scale_min_k4` for every sub-block at once).
pub(super) fn q4k_scales_mins(packed: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    const KMASK1: u32 = 0x3f3f_3f3f;
    const KMASK2: u32 = 0x0f0f_0f0f;
    const KMASK3: u32 = 0x0303_0303;
    let word =
        |i: usize| u32::from_le_bytes([packed[i], packed[i + 1], packed[i + 2], packed[i + 3]]);
    let (u0, u1, u2) = (word(0), word(4), word(8));
    let u3 = ((u2 >> 4) & KMASK2) | (((u1 >> 6) & KMASK3) << 4);
    let scales_hi = (u2 & KMASK2) | (((u0 >> 6) & KMASK3) << 4);
    let mins_lo = u1 & KMASK1;
    let scales_lo = u0 & KMASK1;
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    sc[..4].copy_from_slice(&scales_lo.to_le_bytes());
    sc[4..].copy_from_slice(&scales_hi.to_le_bytes());
    mn[..4].copy_from_slice(&mins_lo.to_le_bytes());
    mn[4..].copy_from_slice(&u3.to_le_bytes());
    (sc, mn)
}

/// `Σ_blocks d_x d_y Σ_j sc_j Σ q·y − dmin_x d_y Σ_j m_j Σ y`.
pub fn vec_dot_q4k_q8k(x: &[BlockQ4K], y: &[BlockQ8K]) -> f32 {
    let mut sum = 0f32;
    for (bx, by) in x.iter().zip(y) {
        let (sc, mn) = q4k_scales_mins(&bx.scales);
        let (mut dots, mut mins) = (0i32, 0i32);
        for j in 0..QK_K / 64 {
            let q = &bx.qs[32 * j..32 * j + 32];
            let ys = &by.qs[64 * j..64 * j + 64];
            let lo: i32 = (0..32)
                .map(|l| i32::from(q[l] & 0xF) * i32::from(ys[l]))
                .sum();
            let hi: i32 = (0..32)
                .map(|l| i32::from(q[l] >> 4) * i32::from(ys[32 + l]))
                .sum();
            dots += i32::from(sc[2 * j]) * lo + i32::from(sc[2 * j + 1]) * hi;
        }
        for (j, &m) in mn.iter().enumerate() {
            mins += i32::from(m) * (i32::from(by.bsums[2 * j]) + i32::from(by.bsums[2 * j + 1]));
        }
        sum += bx.d.to_f32() * by.d * dots as f32 - bx.dmin.to_f32() * by.d * mins as f32;
    }
    sum
}

/// `Σ_blocks d_x d_y Σ_sub sc_sub Σ (q − 32)·y`.
pub fn vec_dot_q6k_q8k(x: &[BlockQ6K], y: &[BlockQ8K]) -> f32 {
    let mut sum = 0f32;
    for (bx, by) in x.iter().zip(y) {
        let mut dots = 0i32;
        for n in 0..QK_K / 128 {
            let (ql, qh) = (&bx.ql[64 * n..], &bx.qh[32 * n..]);
            let (sc, ys) = (&bx.scales[8 * n..], &by.qs[128 * n..]);
            for l in 0..32 {
                let is = l / 16;
                let q = [
                    (ql[l] & 0xF) | ((qh[l] & 3) << 4),
                    (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4),
                    (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                    (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
                ];
                for (g, &qg) in q.iter().enumerate() {
                    let v = (i32::from(qg) - 32) * i32::from(ys[l + 32 * g]);
                    dots += i32::from(sc[is + 2 * g]) * v;
                }
            }
        }
        sum += bx.d.to_f32() * by.d * dots as f32;
    }
    sum
}
