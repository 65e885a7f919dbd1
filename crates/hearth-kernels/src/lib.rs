//! CPU kernels on plain `f32` slices: RMS normalisation, rotary embeddings,
//! activations, softmax and attention.
//!
//! This crate depends on no tensor library and nothing of ours, so each kernel can be
//! tested and benchmarked alone. Key design choice: kernels take slices and sizes,
//! never own memory, and leave threading to the caller, who knows the batch shape.

mod activation;
mod attention;
mod norm;
mod rope;

pub use activation::{gelu_tanh, gelu_tanh_mul, silu_mul};
pub use attention::{attend, AttentionShape, KvView};
pub use norm::{rms_norm, rms_norm_in_place};
pub use rope::{rope_in_place, RopeStyle};

/// Dot product of two equal-length slices.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorise.
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    s
}

/// `y += alpha * x`.
#[inline]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}
