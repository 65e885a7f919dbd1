//! Llama and its many descendants (SmolLM, Mistral without sliding window, ...):
//! pre-norm blocks, grouped-query attention, RoPE on adjacent pairs, SwiGLU.

use hearth_gguf::GgufFile;
use hearth_kernels::RopeStyle;

use super::Common;
use crate::{Activation, LayerSpec, ModelConfig, Result};

pub(crate) fn config(f: &GgufFile, arch: &str) -> Result<ModelConfig> {
    let c = Common::read(f, arch)?;
    let layer = LayerSpec {
        rope_base: c.rope_base,
        rope_pos_scale: c.rope_pos_scale,
        window: None,
    };
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
        rope_style: RopeStyle::Normal,
        rope_dim: c.rope_dim,
        layers: vec![layer; c.n_layers],
        activation: Activation::Silu,
        embed_scale: None,
        qk_norm: false,
        post_norms: false,
        attn_scale: 1.0 / (c.head_dim as f32).sqrt(),
    })
}
