//! How much memory running a model takes: weights, KV cache and working memory, laid
//! out as hearth-model lays them out.

use serde::Serialize;

use crate::facts::{ModelFacts, SourceFormat};

/// Positions one forward step processes at most (`hearth_model`'s chunk).
const CHUNK: usize = hearth_model::MAX_CHUNK;

/// Bytes of one cached key or value element: the KV cache is f16.
const KV_ELEMENT_BYTES: u64 = 2;

/// Heap the tokenizer takes per vocabulary entry (piece strings, the id maps and
/// merge ranks), measured on SmolLM2 (49k) and Gemma 3 (262k) vocabularies.
const TOKENIZER_BYTES_PER_TOKEN: u64 = 240;

/// The process itself: code, thread stacks, allocator and runtime, measured as the
/// peak resident memory of `hearth generate` minus everything counted above (12 MB
/// before weights were repacked; 19 - 37 MB since, on SmolLM2 and Gemma at short and
/// long contexts, on an Intel Xeon; 22 - 63 MB on an AMD EPYC with Linux 6.18, where
/// more pages of the map around the repacked tensors stay resident). 32 MB keeps the
/// estimate within 10% of the measured peak on both.
const RUNTIME_BYTES: u64 = 32 << 20;

/// Memory needed to run a model at a context and batch size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryEstimate {
    /// Positions per sequence.
    pub ctx: usize,
    /// Sequences at once.
    pub batch: usize,
    /// Weights: the whole file is mapped and every page is read, except the tensors
    /// repacked for this CPU's kernels, which count at their packed size.
    pub weights_bytes: u64,
    /// KV cache at half precision; sliding-window layers hold only `window` positions.
    pub kv_cache_bytes: u64,
    /// Activations of one chunk, logits, the tokenizer and the process itself.
    pub working_bytes: u64,
    /// The sum.
    pub total_bytes: u64,
}

/// Estimates the memory `hearth generate` (batch 1) or the server (batch > 1) needs.
pub fn estimate(facts: &ModelFacts, ctx: usize, batch: usize) -> MemoryEstimate {
    // Tensors of the types the packed kernels take are copied into their layout on
    // this CPU (and their mapped pages dropped); the rest is read from the map.
    let resident: u64 = facts
        .tensor_types
        .iter()
        .map(|t| hearth_model::resident_weight_bytes(&t.dtype, t.bytes))
        .sum();
    let weights_bytes = match facts.format {
        SourceFormat::Gguf => {
            facts.file_bytes - facts.weight_bytes.min(facts.file_bytes) + resident
        }
        // Run as a GGUF of the same types: the tensor data (metadata is small).
        SourceFormat::SafetensorsDir => resident,
    };
    let kv_dim = (facts.kv_heads * facts.head_dim) as u64;
    let per_seq: u64 = facts
        .layer_windows
        .iter()
        .map(|w| w.map_or(ctx, |w| w.min(ctx)) as u64 * kv_dim * 2 * KV_ELEMENT_BYTES)
        .sum();
    let kv_cache_bytes = per_seq * batch as u64;
    let rows = (ctx.min(CHUNK) * batch.max(1)) as u64;
    let (d, q, kv, ff) = (
        facts.d_model as u64,
        (facts.heads * facts.head_dim) as u64,
        kv_dim,
        facts.ffn_dim as u64,
    );
    // f32 activations of a chunk: residual, norm, q/k/v, attention, gate/up/act,
    // plus their quantized copies (about a quarter as large).
    let activations = rows * (4 * d + 2 * q + 2 * kv + 3 * ff) * 4 * 5 / 4;
    let logits = facts.vocab_size as u64 * 4 * batch.max(1) as u64;
    let tokenizer = facts.vocab_size as u64 * TOKENIZER_BYTES_PER_TOKEN;
    let working_bytes = activations + logits + tokenizer + RUNTIME_BYTES;
    MemoryEstimate {
        ctx,
        batch,
        weights_bytes,
        kv_cache_bytes,
        working_bytes,
        total_bytes: weights_bytes + kv_cache_bytes + working_bytes,
    }
}
