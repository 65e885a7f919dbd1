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
#[cfg(target_arch = "x86_64")]
mod avx2_gemm;
#[cfg(target_arch = "x86_64")]
mod avx2_kquants;
#[cfg(target_arch = "x86_64")]
mod avx512_kquants;
mod kquants;
pub mod packed;

#[cfg(test)]
pub(crate) mod tests;

pub use blocks::{
    BlockQ4K, BlockQ4_1, BlockQ5_0, BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1, CastError,
    QuantBlock, QK, QK_K,
};
pub use kquants::{vec_dot_q4k_q8k, vec_dot_q6k_q8k};

/// Whether the dot products run a SIMD kernel on this CPU, and which: `"avx2"` or
/// `"scalar"`.
pub fn simd_kernel() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        return "avx2";
    }
    "scalar"
}

/// Whether the AVX2 + FMA + F16C kernels run on this CPU (checked once).
#[inline]
pub(crate) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    return avx2::available();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the AVX-512 kernels run here (on this CPU and allowed by
/// `HEARTH_KERNELS`).
#[inline]
pub(crate) fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return use_tiles(Tiles::Avx512);
    #[cfg(not(target_arch = "x86_64"))]
    false
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

/// The widest kernels allowed: those named by `HEARTH_KERNELS` (`avx2`, `avx-vnni`;
/// anything else, or nothing, allows every kernel the CPU has), so a machine can
/// stand in for one without the wider instructions. Tests set it per thread instead.
#[cfg(target_arch = "x86_64")]
fn widest_allowed() -> Tiles {
    #[cfg(test)]
    return tests::WIDEST.with(|f| f.get());
    #[cfg(not(test))]
    {
        static CAP: std::sync::OnceLock<Tiles> = std::sync::OnceLock::new();
        *CAP.get_or_init(|| match std::env::var("HEARTH_KERNELS").as_deref() {
            Ok("avx2") => Tiles::Avx2,
            Ok("avx-vnni") => Tiles::Vnni,
            _ => Tiles::Avx512,
        })
    }
}

/// The tiled kernels, narrowest first.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tiles {
    /// AVX2 + FMA + F16C.
    Avx2,
    /// AVX-VNNI on 256-bit registers.
    Vnni,
    /// AVX-512 with VNNI: packed weights, K-quants and attention on 512-bit registers
    /// (unpacked Q4_1, Q5_0 and Q8_0 rows use [`Tiles::Vnni`]).
    Avx512,
}

/// Whether the tiles `t` run here (on this CPU and allowed by [`widest_allowed`]).
#[cfg(target_arch = "x86_64")]
pub(crate) fn use_tiles(t: Tiles) -> bool {
    t <= widest_allowed()
        && match t {
            Tiles::Avx2 => avx2::available(),
            Tiles::Vnni => avx2::vnni_available(),
            Tiles::Avx512 => avx2::avx512_available(),
        }
}

/// The instruction set the tiled products use on this CPU: `"avx-512 vnni"`,
/// `"avx-vnni"`, `"avx2"` or `"scalar"`.
pub fn gemm_kernel() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if use_tiles(Tiles::Avx512) {
        return "avx-512 vnni";
    }
    #[cfg(target_arch = "x86_64")]
    if use_tiles(Tiles::Vnni) {
        return "avx-vnni";
    }
    simd_kernel()
}

macro_rules! gemm_fn {
    ($(#[$doc:meta])* $name:ident, $w:ty, $a:ty, $pair:ident, $dot:path) => {
        $(#[$doc])*
        ///
        /// `w` holds `rows` weight rows and `a` holds `n` activation rows, `k` blocks
        /// each; `out(r, t, v)` receives every product once. Results are bit-identical
        /// to the single-row dot product's, so a row's result is the same alone and in
        /// a batch.
        ///
        /// # Panics
        /// If `k` is 0 or either slice is not a whole number of rows.
        pub fn $name(w: &[$w], a: &[$a], k: usize, out: &mut impl FnMut(usize, usize, f32)) {
            assert!(
                k > 0 && w.len().is_multiple_of(k) && a.len().is_multiple_of(k),
                concat!(stringify!($name), ": slices are not whole rows")
            );
            let (rows, n) = (w.len() / k, a.len() / k);
            #[cfg(target_arch = "x86_64")]
            if use_tiles(Tiles::Vnni) {
                // SAFETY: the CPU supports AVX2, FMA, F16C and AVX-VNNI (checked just
                // above), and the slices hold `rows · k` and `n · k` blocks.
                return unsafe {
                    avx2_gemm::gemm_vnni::<avx2_gemm::$pair>(w, a, k, rows, n, out)
                };
            }
            #[cfg(target_arch = "x86_64")]
            if use_tiles(Tiles::Avx2) {
                // SAFETY: the CPU supports AVX2, FMA and F16C (checked just above),
                // and the slices hold `rows · k` and `n · k` blocks.
                return unsafe { avx2_gemm::gemm::<avx2_gemm::$pair>(w, a, k, rows, n, out) };
            }
            for r in 0..rows {
                for t in 0..n {
                    out(r, t, $dot(&w[r * k..(r + 1) * k], &a[t * k..(t + 1) * k]));
                }
            }
        }
    };
}

gemm_fn!(
    /// Every product of Q4_1 weight rows with Q8_1 activation rows.
    gemm_q4_1_q8_1, BlockQ4_1, BlockQ8_1, Q4_1, vec_dot_q4_1_q8_1
);
gemm_fn!(
    /// Every product of Q5_0 weight rows with Q8_0 activation rows.
    gemm_q5_0_q8_0, BlockQ5_0, BlockQ8_0, Q5_0, vec_dot_q5_0_q8_0
);
gemm_fn!(
    /// Every product of Q8_0 weight rows with Q8_0 activation rows.
    gemm_q8_0_q8_0, BlockQ8_0, BlockQ8_0, Q8_0, vec_dot_q8_0_q8_0
);

/// `Σ_j w[j] · a[j]` for Q8_0 weights `x` and Q8_0 activations `y` of equal length.
///
/// # Panics
/// If `x` and `y` differ in length.
pub fn vec_dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    assert_eq!(x.len(), y.len(), "vec_dot_q8_0_q8_0: block counts differ");
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU supports AVX2, FMA and F16C (checked just above).
        return unsafe { avx2_gemm::dot::<avx2_gemm::Q8_0>(x, y) };
    }
    scalar::vec_dot_q8_0_q8_0(x, y)
}

/// Quantizes 32 activations to signed bytes as ggml's `quantize_row_q8_0/1` do:
/// `d = max|x| / 127`, each value times `127 / max|x|` rounded to nearest, ties to
/// even. Writes the bytes to `qs` and returns `d` and the sum of the quants.
///
/// # Panics
/// If `xs` or `qs` does not hold exactly 32 values.
pub fn quantize_q8_32(xs: &[f32], qs: &mut [u8]) -> (f32, i32) {
    assert!(
        xs.len() == QK && qs.len() == QK,
        "quantize_q8_32: 32 values"
    );
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU supports AVX2, FMA and F16C (checked just above), and both
        // slices hold 32 values.
        return unsafe { avx2::quantize_q8_32(xs, qs) };
    }
    scalar::quantize_q8_32(xs, qs)
}

macro_rules! kgemm_fn {
    ($(#[$doc:meta])* $name:ident, $w:ty, $simd:ident, $dot:path) => {
        $(#[$doc])*
        ///
        /// `w` holds weight rows and `a` activation rows, `k` blocks each; `out(r, t,
        /// v)` receives every product once. With AVX2 or AVX-512 the results are
        /// bit-identical to candle's single-row kernels; the portable path is [`vec_dot_q4k_q8k`]'s reference.
        ///
        /// # Panics
        /// If `k` is 0 or either slice is not a whole number of rows.
        pub fn $name(w: &[$w], a: &[BlockQ8K], k: usize, out: &mut impl FnMut(usize, usize, f32)) {
            assert!(
                k > 0 && w.len().is_multiple_of(k) && a.len().is_multiple_of(k),
                concat!(stringify!($name), ": slices are not whole rows")
            );
            #[cfg(target_arch = "x86_64")]
            if use_tiles(Tiles::Avx512) {
                // SAFETY: the CPU supports AVX2, FMA, F16C, AVX-512 F/BW/VL and VNNI
                // (checked just above), and the slices are whole rows of `k` blocks.
                return unsafe { avx512_kquants::$simd(w, a, k, out) };
            }
            #[cfg(target_arch = "x86_64")]
            if use_tiles(Tiles::Avx2) {
                // SAFETY: the CPU supports AVX2, FMA and F16C (checked just above),
                // and the slices are whole rows of `k` blocks.
                return unsafe { avx2_kquants::$simd(w, a, k, out) };
            }
            for r in 0..w.len() / k {
                for t in 0..a.len() / k {
                    out(r, t, $dot(&w[r * k..(r + 1) * k], &a[t * k..(t + 1) * k]));
                }
            }
        }
    };
}

kgemm_fn!(
    /// Every product of Q4_K weight rows with Q8_K activation rows.
    gemm_q4k_q8k, BlockQ4K, gemm_q4k, vec_dot_q4k_q8k
);
kgemm_fn!(
    /// Every product of Q6_K weight rows with Q8_K activation rows.
    gemm_q6k_q8k, BlockQ6K, gemm_q6k, vec_dot_q6k_q8k
);

/// Quantizes 256 activations to a Q8_K block as ggml's `quantize_row_q8_K_ref`: the
/// value of largest magnitude (the first one on ties) sets `iscale = -127 / max`,
/// values times `iscale` rounded to nearest (ties to even) and capped at 127,
/// `d = 1 / iscale`, and the sum of each 16 quants.
///
/// # Panics
/// If `xs` does not hold exactly 256 values.
pub fn quantize_q8k_256(xs: &[f32], out: &mut BlockQ8K) {
    assert_eq!(xs.len(), QK_K, "quantize_q8k_256: 256 values");
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU supports AVX2, FMA and F16C (checked just above); `xs`
        // holds 256 values.
        return unsafe { avx2::quantize_q8k_256(xs, out) };
    }
    scalar::quantize_q8k_256(xs, out)
}
