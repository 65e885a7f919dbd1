//! GGUF files: a bounds-checked, memory-mapped reader and a streaming writer.
//!
//! This crate depends on nothing of ours and on no tensor library: it knows the
//! container format (header, metadata, tensor directory, aligned data) and the byte
//! sizes of ggml's block types, nothing about what the tensors mean.
//!
//! Key design choice: the reader never trusts a length from the file. Every string,
//! array and tensor extent is checked against the bytes actually present before
//! anything is allocated, so a truncated or corrupt file gives an [`Error`] naming the
//! file, the offset or tensor, and the problem, never a panic or an abort.

mod dtype;
mod error;
mod reader;
mod value;
mod writer;

pub use dtype::GgmlType;
pub use error::{Error, Result};
pub use reader::{GgufFile, TensorInfo};
pub use value::{Value, ValueType};
pub use writer::{GgufWriter, TensorSpec, TensorToWrite};

/// The four magic bytes that open every GGUF file.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Data alignment when the file does not set `general.alignment`.
pub const DEFAULT_ALIGNMENT: u64 = 32;
