//! Llama and its many descendants (SmolLM, Mistral without sliding window, ...):
//! pre-norm blocks, grouped-query attention, RoPE on adjacent pairs, SwiGLU.

use hearth_gguf::GgufFile;

use super::Common;
use crate::{ModelConfig, Result};

pub(crate) fn config(f: &GgufFile, arch: &str) -> Result<ModelConfig> {
    Ok(Common::read(f, arch)?.llama_style(arch))
}
