use hearth_kernels::RopeStyle;

/// The gated activation of the feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `silu(gate) * up` (llama).
    Silu,
    /// `gelu_tanh(gate) * up` (Gemma).
    GeluTanh,
}

/// Per-layer attention settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSpec {
    /// RoPE frequency base of this layer.
    pub rope_base: f32,
    /// Linear RoPE scaling: positions are multiplied by this (1.0 = none).
    pub rope_pos_scale: f32,
    /// `Some(w)`: a query attends only to the last `w` positions (itself included).
    pub window: Option<usize>,
}

/// Everything the forward pass needs to know about a model, read from its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// `general.architecture`.
    pub architecture: String,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads.
    pub n_kv_heads: usize,
    /// Dimensions per head.
    pub head_dim: usize,
    /// Hidden width of the feed-forward block.
    pub ffn_dim: usize,
    /// Vocabulary size (rows of the embedding table).
    pub vocab_size: usize,
    /// Maximum positions the model was trained for.
    pub context_length: usize,
    /// Epsilon of every RMS norm.
    pub rms_eps: f32,
    /// How RoPE pairs dimensions.
    pub rope_style: RopeStyle,
    /// Dimensions per head that rotate.
    pub rope_dim: usize,
    /// One entry per block.
    pub layers: Vec<LayerSpec>,
    /// Feed-forward gating.
    pub activation: Activation,
    /// Factor applied to token embeddings (Gemma: `sqrt(d_model)`).
    pub embed_scale: Option<f32>,
    /// RMS norm of each query and key head before RoPE (Gemma 3).
    pub qk_norm: bool,
    /// RMS norms after the attention and feed-forward blocks (Gemma 2/3).
    pub post_norms: bool,
    /// Factor applied to `q·k`.
    pub attn_scale: f32,
}

impl ModelConfig {
    /// Width of all query heads together.
    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }

    /// Width of all key (or value) heads together.
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// Number of blocks.
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// The sliding window, if any layer has one.
    pub fn sliding_window(&self) -> Option<usize> {
        self.layers.iter().filter_map(|l| l.window).max()
    }
}
