//! Quantization of activations (the `src1` of ggml's `mul_mat`) to the weight type's
//! dot-product format, bit for bit as llama.cpp's CPU backend does it on x86 (AVX2):
//!
//! - Q8_0 and Q8_1 (`quantize_row_q8_0` / `quantize_row_q8_1` in
//!   `ggml-cpu/arch/x86/quants.c`): `d = max / 127`, multiplier `127 / max` (not
//!   `1 / d`), rounding to nearest with ties to even (`_mm256_round_ps`), and for Q8_1
//!   `s = fp16(d · Σq)` rounded once from f32.
//! - Q8_K (`quantize_row_q8_K_ref`): the signed value of largest magnitude (first one
//!   wins) sets `iscale = -127 / max`, rounding with ties to even (`nearest_int`),
//!   `d = 1 / iscale`.
//!
//! candle's `from_float` differs in the multiplier, the tie rule and (Q8_1) the
//! rounding of `s`; each difference is tiny, but llama.cpp's outputs are only
//! reproducible when every activation quantizes to the same integers.

use candle_core::quantized::k_quants::GgmlType as Block;
use candle_core::quantized::GgmlDType;
use half::f16;

/// Bytes of one Q8_0 block: `d: f16, qs: [i8; 32]`.
const Q8_0_BYTES: usize = 34;
/// Bytes of one Q8_1 block: `d: f16, s: f16, qs: [i8; 32]`.
const Q8_1_BYTES: usize = 36;
/// Bytes of one Q8_K block: `d: f32, qs: [i8; 256], bsums: [i16; 16]`.
const Q8_K_BYTES: usize = 292;

/// Quantizes `x` into `out` (blocks of the activation type `V`) as llama.cpp does;
/// types without a replica here (f32, f16, bf16) use candle's conversion.
pub(crate) fn quantize<V: Block>(x: &[f32], out: &mut [V]) {
    let bytes_per_block = std::mem::size_of::<V>();
    let expected = match V::DTYPE {
        GgmlDType::Q8_0 => Q8_0_BYTES,
        GgmlDType::Q8_1 => Q8_1_BYTES,
        GgmlDType::Q8K => Q8_K_BYTES,
        _ => return V::from_float(x, out),
    };
    assert_eq!(
        bytes_per_block,
        expected,
        "unexpected {:?} block layout",
        V::DTYPE
    );
    assert_eq!(
        x.len(),
        out.len() * V::BLCK_SIZE,
        "activation length does not fill the blocks"
    );
    // SAFETY: the activation block types are `repr(C)` plain-old-data structs of
    // exactly `expected` bytes (checked above) with ggml's layouts, so every byte
    // pattern written below is a valid value, and the slice covers `out` exactly.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut u8, std::mem::size_of_val(out))
    };
    match V::DTYPE {
        GgmlDType::Q8_0 => {
            for (b, xs) in bytes.chunks_exact_mut(Q8_0_BYTES).zip(x.chunks_exact(32)) {
                let (d, _) = q8_block(xs, &mut b[2..]);
                b[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
            }
        }
        GgmlDType::Q8_1 => {
            for (b, xs) in bytes.chunks_exact_mut(Q8_1_BYTES).zip(x.chunks_exact(32)) {
                let (d, sum) = q8_block(xs, &mut b[4..]);
                b[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
                b[2..4].copy_from_slice(&f16::from_f32(d * sum as f32).to_le_bytes());
            }
        }
        _ => {
            for (b, xs) in bytes.chunks_exact_mut(Q8_K_BYTES).zip(x.chunks_exact(256)) {
                q8k_block(xs, b);
            }
        }
    }
}

/// One 32-value Q8_0/Q8_1 block: writes the quants to `qs` and returns the f32 scale
/// and the sum of the quants.
fn q8_block(xs: &[f32], qs: &mut [u8]) -> (f32, i32) {
    hearth_kernels::quant::quantize_q8_32(xs, qs)
}

/// One 256-value Q8_K block into its 292 bytes.
fn q8k_block(xs: &[f32], b: &mut [u8]) {
    let mut q = hearth_kernels::quant::BlockQ8K {
        d: 0.0,
        qs: [0; 256],
        bsums: [0; 16],
    };
    hearth_kernels::quant::quantize_q8k_256(xs, &mut q);
    b[..4].copy_from_slice(&q.d.to_le_bytes());
    for (dst, &qi) in b[4..260].iter_mut().zip(&q.qs) {
        *dst = qi as u8;
    }
    for (dst, s) in b[260..].chunks_exact_mut(2).zip(q.bsums) {
        dst.copy_from_slice(&s.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::k_quants::{BlockQ8K, BlockQ8_0, BlockQ8_1};

    use super::*;

    /// Away from ties, the replica and candle give the same blocks.
    fn same_as_candle<V: Block + PartialEq + std::fmt::Debug>() {
        let x: Vec<f32> = (0..512)
            .map(|i| ((i * 37 % 101) as f32 * 0.173).sin() * 3.1)
            .collect();
        let n = x.len() / V::BLCK_SIZE;
        let mut a = vec![V::zeros(); n];
        let mut b = vec![V::zeros(); n];
        quantize(&x, &mut a);
        V::from_float(&x, &mut b);
        let (mut fa, mut fb) = (vec![0f32; x.len()], vec![0f32; x.len()]);
        V::to_float(&a, &mut fa);
        V::to_float(&b, &mut fb);
        for (p, q) in fa.iter().zip(&fb) {
            assert!((p - q).abs() <= 1e-6 * p.abs().max(1.0), "{p} vs {q}");
        }
    }

    #[test]
    fn agrees_with_candle_away_from_ties() {
        same_as_candle::<BlockQ8_0>();
        same_as_candle::<BlockQ8_1>();
        same_as_candle::<BlockQ8K>();
    }

    #[test]
    fn ties_round_to_even() {
        // max 127 → multiplier 1: 2.5 → 2, -0.5 → 0, 1.5 → 2.
        let mut x = vec![0f32; 32];
        x[..4].copy_from_slice(&[127.0, 2.5, -0.5, 1.5]);
        let mut b = vec![BlockQ8_0::zeros(); 1];
        quantize(&x, &mut b);
        let mut f = vec![0f32; 32];
        BlockQ8_0::to_float(&b, &mut f);
        assert_eq!(&f[..4], &[127.0, 2.0, 0.0, 2.0]);
    }
}
