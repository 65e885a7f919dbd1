//! One file per model family: each turns GGUF metadata into a [`ModelConfig`].
//! Adding a family means one file here and one line in [`REGISTRY`].

mod gemma3;
mod llama;

use hearth_gguf::GgufFile;

use hearth_kernels::RopeStyle;

use crate::{Activation, Error, LayerSpec, ModelConfig, Result};

type ConfigFn = fn(&GgufFile, &str) -> Result<ModelConfig>;

/// `general.architecture` value → config reader.
const REGISTRY: &[(&str, ConfigFn)] = &[("llama", llama::config), ("gemma3", gemma3::config)];

/// Names of the architectures this build runs.
pub fn supported_architectures() -> Vec<&'static str> {
    REGISTRY.iter().map(|(n, _)| *n).collect()
}

/// Reads the config of whatever architecture the file declares.
pub fn config_from_gguf(f: &GgufFile) -> Result<ModelConfig> {
    let arch = f.str("general.architecture")?;
    let (_, read) = REGISTRY.iter().find(|(n, _)| *n == arch).ok_or_else(|| {
        Error::UnsupportedArchitecture {
            path: f.path().to_path_buf(),
            arch: arch.to_string(),
        }
    })?;
    read(f, arch)
}

/// Metadata shared by every decoder-only family, read under `<arch>.`.
pub(crate) struct Common {
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub ffn_dim: usize,
    pub context_length: usize,
    pub rms_eps: f32,
    pub rope_base: f32,
    pub rope_dim: usize,
    pub rope_pos_scale: f32,
    pub vocab_size: usize,
}

impl Common {
    /// The plain pre-norm decoder these values describe: every layer global, RoPE on
    /// adjacent pairs, SwiGLU, no extra norms. Families override what differs.
    pub fn llama_style(&self, arch: &str) -> ModelConfig {
        let layer = LayerSpec {
            rope_base: self.rope_base,
            rope_pos_scale: self.rope_pos_scale,
            window: None,
        };
        ModelConfig {
            architecture: arch.to_string(),
            d_model: self.d_model,
            n_heads: self.n_heads,
            n_kv_heads: self.n_kv_heads,
            head_dim: self.head_dim,
            ffn_dim: self.ffn_dim,
            vocab_size: self.vocab_size,
            context_length: self.context_length,
            rms_eps: self.rms_eps,
            rope_style: RopeStyle::Normal,
            rope_dim: self.rope_dim,
            layers: vec![layer; self.n_layers],
            activation: Activation::Silu,
            embed_scale: None,
            qk_norm: false,
            post_norms: false,
            attn_scale: 1.0 / (self.head_dim as f32).sqrt(),
        }
    }

    pub fn read(f: &GgufFile, arch: &str) -> Result<Self> {
        let key = |k: &str| format!("{arch}.{k}");
        let bad = |what: String| Error::BadConfig {
            path: f.path().to_path_buf(),
            what,
        };
        let d_model = f.u64(&key("embedding_length"))? as usize;
        let n_layers = f.u64(&key("block_count"))? as usize;
        let n_heads = f.u64(&key("attention.head_count"))? as usize;
        let n_kv_heads = f
            .u64_opt(&key("attention.head_count_kv"))?
            .map_or(n_heads, |v| v as usize);
        if n_heads == 0 || n_kv_heads == 0 || !n_heads.is_multiple_of(n_kv_heads) {
            return Err(bad(format!(
                "{n_heads} query heads cannot share {n_kv_heads} key/value heads"
            )));
        }
        let head_dim = match f.u64_opt(&key("attention.key_length"))? {
            Some(v) => v as usize,
            None => d_model / n_heads,
        };
        let rope_dim = f
            .u64_opt(&key("rope.dimension_count"))?
            .map_or(head_dim, |v| v as usize);
        if rope_dim > head_dim || !rope_dim.is_multiple_of(2) || rope_dim > 512 {
            return Err(bad(format!(
                "rope dimension {rope_dim} does not fit head size {head_dim}"
            )));
        }
        let rope_pos_scale = match f.str_opt(&key("rope.scaling.type"))? {
            None | Some("none") => 1.0,
            Some("linear") => {
                let factor = f.f64_opt(&key("rope.scaling.factor"))?.unwrap_or(1.0);
                if factor <= 0.0 {
                    return Err(bad(format!(
                        "rope scaling factor {factor} must be positive"
                    )));
                }
                (1.0 / factor) as f32
            }
            Some(other) => return Err(bad(format!("rope scaling `{other}` is not supported"))),
        };
        let embd = f
            .tensor("token_embd.weight")
            .ok_or_else(|| Error::MissingTensor {
                path: f.path().to_path_buf(),
                tensor: "token_embd.weight".into(),
            })?;
        let vocab_size = embd.dims.get(1).copied().unwrap_or(0) as usize;
        Ok(Self {
            d_model,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn_dim: f.u64(&key("feed_forward_length"))? as usize,
            context_length: f.u64(&key("context_length"))? as usize,
            rms_eps: f.f64(&key("attention.layer_norm_rms_epsilon"))? as f32,
            rope_base: f.f64_opt(&key("rope.freq_base"))?.unwrap_or(10_000.0) as f32,
            rope_dim,
            rope_pos_scale,
            vocab_size,
        })
    }
}
