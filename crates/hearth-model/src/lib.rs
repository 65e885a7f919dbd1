//! Model architectures over memory-mapped GGUF weights: configuration from metadata,
//! weight loading, quantized matrix products, the KV cache and the forward pass.
//!
//! Model code knows nothing of HTTP, scheduling, sampling or files it did not load.
//! Key design choice: weights are never copied or dequantized: they stay in the
//! memory map and are read block by block by the matmul kernels (`qmatmul`), the one
//! seam a faster kernel replaces. Architectures are descriptions (`arch/`): one file
//! per family turns metadata into a [`ModelConfig`]; one transformer runs them all.

mod act_quant;
mod arch;
mod config;
mod error;
pub mod hf_names;
mod kv_cache;
mod linear;
pub mod lora;
pub mod paged;
mod qmatmul;
pub mod tiny;
mod transformer;

pub use arch::{config_from_gguf, supported_architectures};
pub use config::{Activation, LayerSpec, ModelConfig};
pub use error::{Error, Result};
pub use hearth_kernels::RopeStyle;
pub use kv_cache::KvCache;
pub use linear::{low_rank_names, LOW_RANK_A, LOW_RANK_B};
pub use lora::{LoraAdapter, LoraTensor, ModelLora};
pub use paged::{PagedKv, RaggedBatch, SeqSlice, WindowTable};
pub use qmatmul::{resident_weight_bytes, QMatrix};

/// The instruction set the quantized matrix products use on this CPU (`"avx-vnni"`,
/// `"avx2"` or `"scalar"`).
pub fn kernel_isa() -> &'static str {
    hearth_kernels::quant::gemm_kernel()
}
pub use transformer::{Transformer, MAX_CHUNK};
