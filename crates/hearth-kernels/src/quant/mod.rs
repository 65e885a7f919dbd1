//! Dot products of ggml quantized blocks: weights in Q4_1 or Q5_0 against activations
//! quantized to Q8_1 or Q8_0, as ggml pairs them.
//!
//! Each product has a portable reference in [`scalar`] and, on x86-64, an AVX2 + FMA
//! kernel picked at run time (the CPU check runs once). Both give the same integer
//! block sums; results differ only by float summation order.

mod blocks;
pub mod scalar;

#[cfg(target_arch = "x86_64")]
mod avx2;

#[cfg(test)]
mod tests;

pub use blocks::{BlockQ4_1, BlockQ5_0, BlockQ8_0, BlockQ8_1, CastError, QuantBlock, QK};

/// Whether the dot products run a SIMD kernel on this CPU, and which: `"avx2"` or
/// `"scalar"`.
pub fn simd_kernel() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        return "avx2";
    }
    "scalar"
}

/// `Σ_j w[j] · a[j]` for Q4_1 weights `x` and Q8_1 activations `y` of equal length.
///
/// # Panics
/// If `x` and `y` differ in length.
#[inline]
pub fn vec_dot_q4_1_q8_1(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    assert_eq!(x.len(), y.len(), "vec_dot_q4_1_q8_1: block counts differ");
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU supports AVX2, FMA and F16C (checked just above).
        return unsafe { avx2::vec_dot_q4_1_q8_1(x, y) };
    }
    scalar::vec_dot_q4_1_q8_1(x, y)
}

/// `Σ_j w[j] · a[j]` for Q5_0 weights `x` and Q8_0 activations `y` of equal length.
///
/// # Panics
/// If `x` and `y` differ in length.
#[inline]
pub fn vec_dot_q5_0_q8_0(x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
    assert_eq!(x.len(), y.len(), "vec_dot_q5_0_q8_0: block counts differ");
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU supports AVX2, FMA and F16C (checked just above).
        return unsafe { avx2::vec_dot_q5_0_q8_0(x, y) };
    }
    scalar::vec_dot_q5_0_q8_0(x, y)
}
