//! Gemma 3: five sliding-window layers for each global one, local RoPE base 10,000,
//! per-head RMS norms on queries and keys, norms after attention and feed-forward,
//! GELU-tanh gating, embeddings scaled by `sqrt(d_model)` and tied to the output.
//!
//! What the metadata does not say is fixed here, as in the reference implementations.

use hearth_gguf::{GgufFile, Value};
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
    let local = || LayerSpec {
        rope_base: LOCAL_ROPE_BASE,
        rope_pos_scale: 1.0,
        window: Some(window),
    };
    let global = || LayerSpec {
        rope_base: c.rope_base,
        rope_pos_scale: c.rope_pos_scale,
        window: None,
    };
    // Newer converters write the pattern as a period or as one flag per layer.
    let key = format!("{arch}.attention.sliding_window_pattern");
    let is_local: Vec<bool> = match f.get(&key) {
        Some(Value::Array(flags)) if flags.len() == c.n_layers => {
            flags.iter().map(|v| v.as_bool().unwrap_or(false)).collect()
        }
        Some(v) if v.as_u64().is_some() => {
            let period = v.as_u64().unwrap_or(PATTERN as u64).max(1) as usize;
            (0..c.n_layers)
                .map(|i| !(i + 1).is_multiple_of(period))
                .collect()
        }
        Some(v) => {
            return Err(Error::BadConfig {
                path: f.path().to_path_buf(),
                what: format!(
                    "`{key}` should be a period or one flag per layer, found {}",
                    v.type_name()
                ),
            })
        }
        None => (0..c.n_layers)
            .map(|i| !(i + 1).is_multiple_of(PATTERN))
            .collect(),
    };
    let layers = is_local
        .iter()
        .map(|&l| if l { local() } else { global() })
        .collect();
    Ok(ModelConfig {
        rope_style: RopeStyle::Neox,
        layers,
        activation: Activation::GeluTanh,
        embed_scale: Some((c.d_model as f32).sqrt()),
        qk_norm: true,
        post_norms: true,
        ..c.llama_style(arch)
    })
}
