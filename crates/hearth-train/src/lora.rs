//! LoRA settings and trainable parameters: for each targeted linear layer `W` a pair
//! `A` (`[r, in]`, Kaiming-uniform as PEFT initialises it) and `B` (`[out, r]`, zero),
//! so `W x + (alpha / r) B A x` starts as the base model.
//!
//! Row order: the frozen weights are GGUF's, whose llama query/key rows are permuted
//! relative to Hugging Face's; `B` of `q_proj`/`k_proj` is kept in GGUF order here and
//! reordered only when written in PEFT format.

use candle_core::{DType, Device, Tensor, Var};
use hearth_model::ModelConfig;

use crate::rng::Rng;
use crate::{Error, Result};

/// A linear layer of a block that LoRA can adapt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Query projection.
    Q,
    /// Key projection.
    K,
    /// Value projection.
    V,
    /// Attention output projection.
    O,
    /// Feed-forward gate.
    Gate,
    /// Feed-forward up projection.
    Up,
    /// Feed-forward down projection.
    Down,
}

impl Target {
    /// Every target, in block order.
    pub const ALL: [Target; 7] = [
        Target::Q,
        Target::K,
        Target::V,
        Target::O,
        Target::Gate,
        Target::Up,
        Target::Down,
    ];

    /// The PEFT / Hugging Face module name (`q_proj`, ...).
    pub fn peft_name(self) -> &'static str {
        match self {
            Target::Q => "q_proj",
            Target::K => "k_proj",
            Target::V => "v_proj",
            Target::O => "o_proj",
            Target::Gate => "gate_proj",
            Target::Up => "up_proj",
            Target::Down => "down_proj",
        }
    }

    /// The GGUF tensor stem (`attn_q`, ...).
    pub fn gguf_name(self) -> &'static str {
        match self {
            Target::Q => "attn_q",
            Target::K => "attn_k",
            Target::V => "attn_v",
            Target::O => "attn_output",
            Target::Gate => "ffn_gate",
            Target::Up => "ffn_up",
            Target::Down => "ffn_down",
        }
    }

    /// `(out, in)` of this layer in a model.
    pub fn shape(self, cfg: &ModelConfig) -> (usize, usize) {
        let (d, q, kv, ff) = (cfg.d_model, cfg.q_dim(), cfg.kv_dim(), cfg.ffn_dim);
        match self {
            Target::Q => (q, d),
            Target::K | Target::V => (kv, d),
            Target::O => (d, q),
            Target::Gate | Target::Up => (ff, d),
            Target::Down => (d, ff),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Parses `q_proj,v_proj` (PEFT or GGUF names) or `all` / `all-linear`.
pub fn parse_targets(s: &str) -> Result<Vec<Target>> {
    if matches!(s.trim(), "all" | "all-linear") {
        return Ok(Target::ALL.to_vec());
    }
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let t = Target::ALL
            .into_iter()
            .find(|t| t.peft_name() == name || t.gguf_name() == name)
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown LoRA target `{name}` (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, or all)"
                ))
            })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.is_empty() {
        return Err(Error::Config("no LoRA targets".into()));
    }
    out.sort();
    Ok(out)
}

/// LoRA hyper-parameters (defaults as the seed config: r 16, alpha 32,
/// dropout 0.1 on `q_proj` and `v_proj`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoraConfig {
    /// Rank `r`.
    pub rank: usize,
    /// Scale numerator: the update is multiplied by `alpha / r`.
    pub alpha: f32,
    /// Dropout probability on the adapter's input while training.
    pub dropout: f32,
    /// Adapted layers (in every block).
    pub targets: Vec<Target>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            rank: 16,
            alpha: 32.0,
            dropout: 0.1,
            targets: vec![Target::Q, Target::V],
        }
    }
}

impl LoraConfig {
    /// `alpha / r`.
    pub fn scale(&self) -> f32 {
        self.alpha / self.rank as f32
    }

    /// Fails on a zero rank or a dropout outside `[0, 1)`.
    pub fn check(&self) -> Result<()> {
        if self.rank == 0 {
            return Err(Error::Config("LoRA rank must be at least 1".into()));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Config(format!(
                "dropout {} must be in [0, 1)",
                self.dropout
            )));
        }
        if self.targets.is_empty() {
            return Err(Error::Config("no LoRA targets".into()));
        }
        Ok(())
    }
}

/// The trainable pair of one layer.
#[derive(Debug)]
pub struct LoraPair {
    /// Block index.
    pub layer: usize,
    /// Which linear layer.
    pub target: Target,
    /// `[r, in]`.
    pub a: Var,
    /// `[out, r]` (GGUF row order).
    pub b: Var,
}

/// Every trainable pair of a model.
#[derive(Debug)]
pub struct LoraParams {
    config: LoraConfig,
    /// Per block, per target index.
    slots: Vec<[Option<LoraPair>; 7]>,
}

impl LoraParams {
    /// Fresh adapters for `model` (`A` random from `seed`, `B` zero) with values of
    /// `dtype` (the training model's).
    pub fn new(config: LoraConfig, model: &ModelConfig, seed: u64, dtype: DType) -> Result<Self> {
        config.check()?;
        let mut rng = Rng::new(seed, 0x10_4A);
        let r = config.rank;
        let mut slots = Vec::with_capacity(model.n_layers());
        for layer in 0..model.n_layers() {
            let mut row: [Option<LoraPair>; 7] = Default::default();
            for &target in &config.targets {
                let (out, inp) = target.shape(model);
                // kaiming_uniform_(a = sqrt(5)) bounds A by 1 / sqrt(fan_in).
                let bound = 1.0 / (inp as f32).sqrt();
                let a: Vec<f32> = (0..r * inp)
                    .map(|_| (rng.next_f32() * 2.0 - 1.0) * bound)
                    .collect();
                let a = Tensor::from_vec(a, (r, inp), &Device::Cpu)?.to_dtype(dtype)?;
                let a = Var::from_tensor(&a)?;
                let b = Var::zeros((out, r), dtype, &Device::Cpu)?;
                row[target.index()] = Some(LoraPair {
                    layer,
                    target,
                    a,
                    b,
                });
            }
            slots.push(row);
        }
        Ok(Self { config, slots })
    }

    /// The settings.
    pub fn config(&self) -> &LoraConfig {
        &self.config
    }

    /// The pair adapting `target` of block `layer`, if any.
    pub fn get(&self, layer: usize, target: Target) -> Option<&LoraPair> {
        self.slots.get(layer)?[target.index()].as_ref()
    }

    /// Every pair, block by block.
    pub fn pairs(&self) -> impl Iterator<Item = &LoraPair> {
        self.slots.iter().flat_map(|s| s.iter().flatten())
    }

    /// Every trainable variable with a stable name (`blk.0.attn_q.lora_a`), in order.
    pub fn named_vars(&self) -> Vec<(String, &Var)> {
        self.pairs()
            .flat_map(|p| {
                let stem = format!("blk.{}.{}", p.layer, p.target.gguf_name());
                [
                    (format!("{stem}.lora_a"), &p.a),
                    (format!("{stem}.lora_b"), &p.b),
                ]
            })
            .collect()
    }

    /// Number of trainable values.
    pub fn n_params(&self) -> usize {
        self.named_vars()
            .iter()
            .map(|(_, v)| v.as_tensor().elem_count())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(parse_targets("all").unwrap().len(), 7);
        assert_eq!(
            parse_targets("v_proj, q_proj,attn_q").unwrap(),
            vec![Target::Q, Target::V]
        );
        assert!(parse_targets("qproj").is_err());
    }
}
