//! Encoding f32 values into ggml's storage types and decoding them back, through
//! candle's block types (`k_quants`), row by row in parallel.

use candle_core::quantized::k_quants::{
    BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K,
    BlockQ8K, BlockQ8_0, GgmlType as Block,
};
use half::{bf16, f16};
use hearth_gguf::GgmlType;
use rayon::prelude::*;

use crate::{Error, Result};

/// Types [`encode`] can write.
pub const ENCODABLE: &[GgmlType] = &[
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

fn bad(tensor: &str, what: String) -> Error {
    Error::Tensor {
        tensor: tensor.to_string(),
        what,
    }
}

/// Encodes `values` (rows of `row_len`) as `dtype`. Rows are encoded in parallel.
pub fn encode(tensor: &str, dtype: GgmlType, values: &[f32], row_len: usize) -> Result<Vec<u8>> {
    if row_len == 0
        || !values.len().is_multiple_of(row_len)
        || !row_len.is_multiple_of(dtype.block_len())
    {
        return Err(bad(
            tensor,
            format!(
                "rows of {row_len} values cannot be stored as {dtype} (blocks of {})",
                dtype.block_len()
            ),
        ));
    }
    let row_bytes = row_len / dtype.block_len() * dtype.block_bytes();
    let mut out = vec![0u8; values.len() / row_len * row_bytes];
    let rows = out
        .par_chunks_mut(row_bytes)
        .zip(values.par_chunks(row_len));
    match dtype {
        GgmlType::F32 => rows.for_each(|(o, v)| {
            for (c, x) in o.chunks_exact_mut(4).zip(v) {
                c.copy_from_slice(&x.to_le_bytes());
            }
        }),
        GgmlType::F16 => rows.for_each(|(o, v)| {
            for (c, x) in o.chunks_exact_mut(2).zip(v) {
                c.copy_from_slice(&f16::from_f32(*x).to_le_bytes());
            }
        }),
        GgmlType::BF16 => rows.for_each(|(o, v)| {
            for (c, x) in o.chunks_exact_mut(2).zip(v) {
                c.copy_from_slice(&bf16::from_f32(*x).to_le_bytes());
            }
        }),
        GgmlType::Q4_0 => rows.for_each(|(o, v)| enc::<BlockQ4_0>(v, o)),
        GgmlType::Q4_1 => rows.for_each(|(o, v)| enc::<BlockQ4_1>(v, o)),
        GgmlType::Q5_0 => rows.for_each(|(o, v)| enc::<BlockQ5_0>(v, o)),
        GgmlType::Q5_1 => rows.for_each(|(o, v)| enc::<BlockQ5_1>(v, o)),
        GgmlType::Q8_0 => rows.for_each(|(o, v)| enc::<BlockQ8_0>(v, o)),
        GgmlType::Q2_K => rows.for_each(|(o, v)| enc::<BlockQ2K>(v, o)),
        GgmlType::Q3_K => rows.for_each(|(o, v)| enc::<BlockQ3K>(v, o)),
        GgmlType::Q4_K => rows.for_each(|(o, v)| enc::<BlockQ4K>(v, o)),
        GgmlType::Q5_K => rows.for_each(|(o, v)| enc::<BlockQ5K>(v, o)),
        GgmlType::Q6_K => rows.for_each(|(o, v)| enc::<BlockQ6K>(v, o)),
        other => return Err(bad(tensor, format!("cannot encode {other}"))),
    }
    Ok(out)
}

/// Decodes `bytes` of `dtype` holding `n` values (rows of `row_len`) into f32.
pub fn decode(tensor: &str, dtype: GgmlType, bytes: &[u8], row_len: usize) -> Result<Vec<f32>> {
    let bl = dtype.block_len();
    if row_len == 0 || !row_len.is_multiple_of(bl) {
        return Err(bad(
            tensor,
            format!("rows of {row_len} are not whole {dtype} blocks"),
        ));
    }
    let row_bytes = row_len / bl * dtype.block_bytes();
    if !bytes.len().is_multiple_of(row_bytes) {
        return Err(bad(
            tensor,
            format!("{} bytes are not whole rows of {row_bytes}", bytes.len()),
        ));
    }
    let mut out = vec![0f32; bytes.len() / row_bytes * row_len];
    let rows = out.par_chunks_mut(row_len).zip(bytes.par_chunks(row_bytes));
    match dtype {
        GgmlType::F32 => rows.for_each(|(o, b)| {
            for (x, c) in o.iter_mut().zip(b.chunks_exact(4)) {
                *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }),
        GgmlType::F16 => rows.for_each(|(o, b)| {
            for (x, c) in o.iter_mut().zip(b.chunks_exact(2)) {
                *x = f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }),
        GgmlType::BF16 => rows.for_each(|(o, b)| {
            for (x, c) in o.iter_mut().zip(b.chunks_exact(2)) {
                *x = bf16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }),
        GgmlType::Q4_0 => rows.for_each(|(o, b)| dec::<BlockQ4_0>(b, o)),
        GgmlType::Q4_1 => rows.for_each(|(o, b)| dec::<BlockQ4_1>(b, o)),
        GgmlType::Q5_0 => rows.for_each(|(o, b)| dec::<BlockQ5_0>(b, o)),
        GgmlType::Q5_1 => rows.for_each(|(o, b)| dec::<BlockQ5_1>(b, o)),
        GgmlType::Q8_0 => rows.for_each(|(o, b)| dec::<BlockQ8_0>(b, o)),
        GgmlType::Q2_K => rows.for_each(|(o, b)| dec::<BlockQ2K>(b, o)),
        GgmlType::Q3_K => rows.for_each(|(o, b)| dec::<BlockQ3K>(b, o)),
        GgmlType::Q4_K => rows.for_each(|(o, b)| dec::<BlockQ4K>(b, o)),
        GgmlType::Q5_K => rows.for_each(|(o, b)| dec::<BlockQ5K>(b, o)),
        GgmlType::Q6_K => rows.for_each(|(o, b)| dec::<BlockQ6K>(b, o)),
        GgmlType::Q8_K => rows.for_each(|(o, b)| dec::<BlockQ8K>(b, o)),
        other => return Err(bad(tensor, format!("cannot decode {other}"))),
    }
    Ok(out)
}

/// Blocks of `T` copied out of `bytes` (a copy, so no alignment is assumed).
fn enc<T: Block>(values: &[f32], out: &mut [u8]) {
    let mut blocks = vec![T::zeros(); values.len() / T::BLCK_SIZE];
    T::from_float(values, &mut blocks);
    // SAFETY: candle's blocks are `repr(C)` plain data in ggml's layout without
    // padding (sizes checked in `block_sizes_match_ggml`); we read their bytes.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            blocks.as_ptr().cast::<u8>(),
            std::mem::size_of_val(blocks.as_slice()),
        )
    };
    out.copy_from_slice(bytes);
}

fn dec<T: Block>(bytes: &[u8], out: &mut [f32]) {
    let mut blocks = vec![T::zeros(); out.len() / T::BLCK_SIZE];
    // SAFETY: as in `enc`; any bit pattern is a valid block, and we write exactly
    // the blocks' own byte length into their (aligned) storage.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            blocks.as_mut_ptr().cast::<u8>(),
            std::mem::size_of_val(blocks.as_slice()).min(bytes.len()),
        );
    }
    T::to_float(&blocks, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as f32) * 0.37).sin() * (1.0 + (i % 7) as f32))
            .collect()
    }

    #[test]
    fn block_sizes_match_ggml() {
        fn check<T: Block>(t: GgmlType) {
            assert_eq!(std::mem::size_of::<T>(), t.block_bytes(), "{t}");
            assert_eq!(T::BLCK_SIZE, t.block_len(), "{t}");
        }
        check::<BlockQ4_0>(GgmlType::Q4_0);
        check::<BlockQ4_1>(GgmlType::Q4_1);
        check::<BlockQ5_0>(GgmlType::Q5_0);
        check::<BlockQ5_1>(GgmlType::Q5_1);
        check::<BlockQ8_0>(GgmlType::Q8_0);
        check::<BlockQ2K>(GgmlType::Q2_K);
        check::<BlockQ3K>(GgmlType::Q3_K);
        check::<BlockQ4K>(GgmlType::Q4_K);
        check::<BlockQ5K>(GgmlType::Q5_K);
        check::<BlockQ6K>(GgmlType::Q6_K);
        check::<BlockQ8K>(GgmlType::Q8_K);
    }

    /// Relative RMS error of a round trip, per type: more bits, less error.
    #[test]
    fn round_trip_error_shrinks_with_bits() {
        let v = wave(512 * 4);
        let err = |t: GgmlType| {
            let b = encode("w", t, &v, 512).unwrap();
            assert_eq!(b.len() as u64, t.bytes_for(v.len() as u64).unwrap());
            let back = decode("w", t, &b, 512).unwrap();
            let num: f32 = v.iter().zip(&back).map(|(a, b)| (a - b).powi(2)).sum();
            let den: f32 = v.iter().map(|a| a * a).sum();
            (num / den).sqrt()
        };
        assert_eq!(err(GgmlType::F32), 0.0);
        assert!(err(GgmlType::F16) < 1e-3);
        assert!(err(GgmlType::Q8_0) < 0.01, "{}", err(GgmlType::Q8_0));
        assert!(err(GgmlType::Q6_K) < err(GgmlType::Q4_K));
        assert!(err(GgmlType::Q5_0) < err(GgmlType::Q4_0));
        assert!(err(GgmlType::Q4_K) < 0.1, "{}", err(GgmlType::Q4_K));
    }

    #[test]
    fn misfit_rows_are_errors() {
        let err = encode("blk.0.attn_q.weight", GgmlType::Q4_K, &wave(576), 576).unwrap_err();
        assert!(
            err.to_string().contains("attn_q") && err.to_string().contains("Q4_K"),
            "{err}"
        );
        assert!(decode("x", GgmlType::Q8_0, &[0u8; 33], 32).is_err());
    }
}
