//! Gemma 3: five sliding-window layers for each global one, local RoPE base 10,000,
//! per-head RMS norms on queries and keys, norms after attention and feed-forward,
//! GELU-tanh gating, embeddings scaled by `sqrt(d_model)` and tied to the output.
//!
//! What the metadata does not say is fixed here, as in the reference implementations.

use hearth_gguf::GgufFile;
use hearth_kernels::RopeStyle;

use super::Common;
use crate::{Activation, Error, LayerSpec, ModelConfig, Result};

/// Every `PATTERN`-th layer is global; the others use the sliding window.
const PATTERN: usize = 6;
/// RoPE base of the sliding-window layers.
const LOCAL_ROPE_BASE: f32 = 10_000.0;

pub(crate) fn config(f: &GgufFile, arch: &str) -> Result<ModelConfig> {
    let c = Common::read(f, arch)?;
    let window = f.u64(&format!("{arch}.attention.sliding_window"))? as usize;
    if window == 0 {
        return Err(Error::BadConfig {
            path: f.path().to_path_buf(),
            what: "sliding window of 0 positions".into(),
        });
    }
    let pattern = f
        .u64_opt(&format!("{arch}.attention.sliding_window_pattern"))?
        .map_or(PATTERN, |p| p as usize)
        .max(1);
    let layers = (0..c.n_layers)
        .map(|i| {
            if (i + 1) % pattern == 0 {
                LayerSpec { rope_base: c.rope_base, rope_pos_scale: c.rope_pos_scale, window: None }
            } else {
                LayerSpec { rope_base: LOCAL_ROPE_BASE, rope_pos_scale: 1.0, window: Some(window) }
            }
        })
        .collect();
    Ok(ModelConfig {
        architecture: arch.to_string(),
        d_model: c.d_model,
        n_heads: c.n_heads,
        n_kv_heads: c.n_kv_heads,
        head_dim: c.head_dim,
        ffn_dim: c.ffn_dim,
        vocab_size: c.vocab_size,
        context_length: c.context_length,
        rms_eps: c.rms_eps,
        rope_style: RopeStyle::Neox,
        rope_dim: c.rope_dim,
        layers,
        activation: Activation::GeluTanh,
        embed_scale: Some((c.d_model as f32).sqrt()),
        qk_norm: true,
        post_norms: true,
        attn_scale: 1.0 / (c.head_dim as f32).sqrt(),
    })
}
