//! ggml's quantized block layouts, byte for byte, and checked casts from raw bytes.

use half::f16;

/// Values per block for every format here (ggml's `QK4_1`, `QK5_0`, `QK8_0`, `QK8_1`).
pub const QK: usize = 32;

/// 32 weights as 4-bit unsigned values with a scale and a minimum:
/// `w[j] = d * q[j] + m`. Byte `j` of `qs` holds `q[j]` in its low nibble and
/// `q[j + 16]` in its high nibble.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// Packed nibbles.
    pub qs: [u8; QK / 2],
}

/// 32 weights as 5-bit values centred on zero: `w[j] = d * (q[j] - 16)`. The low four
/// bits are packed as in [`BlockQ4_1`]; bit `j` of the little-endian `qh` is the fifth
/// bit of `q[j]`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: f16,
    /// Fifth bits, one per value.
    pub qh: [u8; 4],
    /// Packed low nibbles.
    pub qs: [u8; QK / 2],
}

/// 32 activations as signed bytes with a scale: `x[j] = d * qs[j]`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: f16,
    /// Quantized values.
    pub qs: [i8; QK],
}

/// 32 activations as signed bytes with a scale and `s = d * Σ qs`, which lets a
/// [`BlockQ4_1`] dot product apply its minimum once per block.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct BlockQ8_1 {
    /// Scale.
    pub d: f16,
    /// `d` times the sum of `qs`.
    pub s: f16,
    /// Quantized values.
    pub qs: [i8; QK],
}

const _: () = assert!(std::mem::size_of::<BlockQ4_1>() == 20);
const _: () = assert!(std::mem::size_of::<BlockQ5_0>() == 22);
const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == 34);
const _: () = assert!(std::mem::size_of::<BlockQ8_1>() == 36);
const _: () = assert!(std::mem::align_of::<BlockQ4_1>() == 2);
const _: () = assert!(std::mem::align_of::<BlockQ5_0>() == 2);
const _: () = assert!(std::mem::align_of::<BlockQ8_0>() == 2);
const _: () = assert!(std::mem::align_of::<BlockQ8_1>() == 2);

/// Why bytes could not be viewed as blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CastError {
    /// The length is not a multiple of the block size.
    Length {
        /// Bytes given.
        len: usize,
        /// Bytes per block.
        block: usize,
    },
    /// The start is not aligned for the block type.
    Alignment {
        /// Required alignment in bytes.
        align: usize,
    },
}

impl std::fmt::Display for CastError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Length { len, block } => {
                write!(
                    f,
                    "{len} bytes are not a whole number of {block}-byte blocks"
                )
            }
            Self::Alignment { align } => write!(f, "block data is not {align}-byte aligned"),
        }
    }
}

impl std::error::Error for CastError {}

/// Values per super-block of the K-quant formats (ggml's `QK_K`).
pub const QK_K: usize = 256;

/// 256 weights in eight sub-blocks of 32, 4 bits each, with 6-bit sub-block scales
/// and minimums packed in `scales` (ggml's `block_q4_K`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ4K {
    /// Super-block scale of the sub-block scales.
    pub d: f16,
    /// Super-block scale of the sub-block minimums.
    pub dmin: f16,
    /// Packed 6-bit scales and minimums.
    pub scales: [u8; 12],
    /// Packed nibbles.
    pub qs: [u8; QK_K / 2],
}

/// 256 weights in sixteen sub-blocks of 16, 6 bits each (low 4 in `ql`, high 2 in
/// `qh`), with signed 8-bit sub-block scales (ggml's `block_q6_K`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ6K {
    /// Low nibbles.
    pub ql: [u8; QK_K / 2],
    /// High bit pairs.
    pub qh: [u8; QK_K / 4],
    /// Sub-block scales.
    pub scales: [i8; QK_K / 16],
    /// Super-block scale.
    pub d: f16,
}

/// 256 activations as signed bytes with an `f32` scale and the sums of each 16
/// (ggml's `block_q8_K`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ8K {
    /// Scale.
    pub d: f32,
    /// Quants.
    pub qs: [i8; QK_K],
    /// Sums of each 16 quants.
    pub bsums: [i16; QK_K / 16],
}

const _: () = assert!(std::mem::size_of::<BlockQ4K>() == 144);
const _: () = assert!(std::mem::size_of::<BlockQ6K>() == 210);
const _: () = assert!(std::mem::size_of::<BlockQ8K>() == 292);

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::BlockQ4_1 {}
    impl Sealed for super::BlockQ5_0 {}
    impl Sealed for super::BlockQ8_0 {}
    impl Sealed for super::BlockQ8_1 {}
    impl Sealed for super::BlockQ4K {}
    impl Sealed for super::BlockQ6K {}
    impl Sealed for super::BlockQ8K {}
}

/// A ggml block type: `repr(C)`, no padding, valid for every bit pattern.
///
/// Sealed: the casts below are sound only for the types of this module.
pub trait QuantBlock: sealed::Sealed + Copy + Send + Sync + Sized + 'static {
    /// Views `bytes` as blocks, checking length and alignment.
    fn cast_slice(bytes: &[u8]) -> Result<&[Self], CastError> {
        let block = std::mem::size_of::<Self>();
        let align = std::mem::align_of::<Self>();
        if !bytes.len().is_multiple_of(block) {
            return Err(CastError::Length {
                len: bytes.len(),
                block,
            });
        }
        if !(bytes.as_ptr() as usize).is_multiple_of(align) {
            return Err(CastError::Alignment { align });
        }
        // SAFETY: length and alignment are checked above; `Self` is one of this
        // module's `repr(C)` structs of `f16`/`u8`/`i8` fields without padding (sizes
        // asserted), so every byte pattern is a valid value, and the lifetime is tied
        // to `bytes`.
        Ok(unsafe {
            std::slice::from_raw_parts(bytes.as_ptr().cast::<Self>(), bytes.len() / block)
        })
    }

    /// The blocks' bytes.
    fn as_bytes(blocks: &[Self]) -> &[u8] {
        // SAFETY: the block types have no padding, so all `size_of_val` bytes are
        // initialised; `u8` has alignment 1; the lifetime is tied to `blocks`.
        unsafe {
            std::slice::from_raw_parts(blocks.as_ptr().cast::<u8>(), std::mem::size_of_val(blocks))
        }
    }
}

impl QuantBlock for BlockQ4_1 {}
impl QuantBlock for BlockQ5_0 {}
impl QuantBlock for BlockQ8_0 {}
impl QuantBlock for BlockQ8_1 {}
impl QuantBlock for BlockQ4K {}
impl QuantBlock for BlockQ6K {}
impl QuantBlock for BlockQ8K {}
