//! LoRA adapters: low-rank deltas `ΔW = scale · B · A` on a model's weight matrices.
//!
//! [`LoraAdapter`] is the one in-memory form, read from and written to both formats
//! in use: PEFT directories (`adapter_config.json` + `adapter_model.safetensors`,
//! Hugging Face names and layout) and llama.cpp's GGUF LoRA files (`general.type =
//! adapter`, tensors `blk.N.attn_q.weight.lora_a` / `.lora_b`). Its tensors are keyed
//! by the base tensor's GGUF name and laid out as the GGUF base weight is, so for
//! llama a PEFT `lora_B` of `q_proj`/`k_proj` gets the same row permutation the
//! converter gave the base weight ([`crate::hf_names`]).
//!
//! [`ModelLora`] is an adapter checked against one model and indexed per layer, ready
//! for the forward pass, which adds `scale · B (A x)` (in f32) to the quantized base
//! product of the rows of the sequences that use it.

mod apply;
mod gguf;
mod peft;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use apply::ModelLora;
pub(crate) use apply::RowLoras;

use crate::{Error, ModelConfig, Result};

/// A weight matrix of a block that can carry a LoRA delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proj {
    /// Query projection (`attn_q`, `q_proj`).
    Q,
    /// Key projection (`attn_k`, `k_proj`).
    K,
    /// Value projection (`attn_v`, `v_proj`).
    V,
    /// Attention output (`attn_output`, `o_proj`).
    O,
    /// Feed-forward gate (`ffn_gate`, `gate_proj`).
    Gate,
    /// Feed-forward up (`ffn_up`, `up_proj`).
    Up,
    /// Feed-forward down (`ffn_down`, `down_proj`).
    Down,
}

impl Proj {
    /// Every projection, in index order.
    pub const ALL: [Proj; 7] = [
        Proj::Q,
        Proj::K,
        Proj::V,
        Proj::O,
        Proj::Gate,
        Proj::Up,
        Proj::Down,
    ];

    /// The GGUF tensor stem (`attn_q`).
    pub fn gguf(self) -> &'static str {
        match self {
            Proj::Q => "attn_q",
            Proj::K => "attn_k",
            Proj::V => "attn_v",
            Proj::O => "attn_output",
            Proj::Gate => "ffn_gate",
            Proj::Up => "ffn_up",
            Proj::Down => "ffn_down",
        }
    }

    /// The Hugging Face module name (`q_proj`), as PEFT's `target_modules` spell it.
    pub fn hf(self) -> &'static str {
        match self {
            Proj::Q => "q_proj",
            Proj::K => "k_proj",
            Proj::V => "v_proj",
            Proj::O => "o_proj",
            Proj::Gate => "gate_proj",
            Proj::Up => "up_proj",
            Proj::Down => "down_proj",
        }
    }

    /// `(rows, cols)` = `(outputs, inputs)` of this matrix in a model of `cfg`.
    pub fn shape(self, cfg: &ModelConfig) -> (usize, usize) {
        let (d, q, kv, ff) = (cfg.d_model, cfg.q_dim(), cfg.kv_dim(), cfg.ffn_dim);
        match self {
            Proj::Q => (q, d),
            Proj::K | Proj::V => (kv, d),
            Proj::O => (d, q),
            Proj::Gate | Proj::Up => (ff, d),
            Proj::Down => (d, ff),
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Which weight of the model a LoRA tensor pair changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A projection of block `layer`.
    Block {
        /// The block.
        layer: usize,
        /// The matrix.
        proj: Proj,
    },
    /// The token embedding table (`token_embd.weight`, `[vocab, d_model]`).
    Embedding,
    /// The output head (`output.weight`, `lm_head`).
    Output,
}

impl Target {
    /// Parses a GGUF base tensor name (`blk.3.attn_q.weight`).
    pub fn parse(name: &str) -> Option<Target> {
        match name {
            "token_embd.weight" => return Some(Target::Embedding),
            "output.weight" => return Some(Target::Output),
            _ => {}
        }
        let rest = name.strip_prefix("blk.")?.strip_suffix(".weight")?;
        let (layer, stem) = rest.split_once('.')?;
        let layer = layer.parse().ok()?;
        let proj = Proj::ALL.into_iter().find(|p| p.gguf() == stem)?;
        Some(Target::Block { layer, proj })
    }

    /// `(rows, cols)` of the base weight in a model of `cfg`, `None` when the model
    /// has no such layer.
    pub fn shape(self, cfg: &ModelConfig) -> Option<(usize, usize)> {
        match self {
            Target::Block { layer, proj } => (layer < cfg.n_layers()).then(|| proj.shape(cfg)),
            Target::Embedding | Target::Output => Some((cfg.vocab_size, cfg.d_model)),
        }
    }
}

/// One low-rank pair: `ΔW = scale · B · A` for a base weight `W` of `rows` outputs by
/// `cols` inputs, in the GGUF base weight's layout (the embedding table counts as
/// `[vocab, d_model]`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoraTensor {
    /// Rows (outputs) of the base weight.
    pub rows: usize,
    /// Columns (inputs) of the base weight.
    pub cols: usize,
    /// The rank `r`.
    pub rank: usize,
    /// `A`, `rank` rows of `cols` values.
    pub a: Vec<f32>,
    /// `B`, `rows` rows of `rank` values.
    pub b: Vec<f32>,
    /// The factor of the product (PEFT: `lora_alpha / r`, or `/ √r` with rsLoRA).
    pub scale: f32,
}

impl LoraTensor {
    /// Checks that `a` and `b` have the lengths the dimensions say; `what` names the
    /// offending sizes otherwise.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.rank == 0 || self.rows == 0 || self.cols == 0 {
            return Err(format!(
                "empty pair: rank {}, rows {}, cols {}",
                self.rank, self.rows, self.cols
            ));
        }
        if self.a.len() != self.rank * self.cols || self.b.len() != self.rows * self.rank {
            return Err(format!(
                "A has {} values (expected rank {} x {} inputs), B has {} (expected {} outputs x rank)",
                self.a.len(),
                self.rank,
                self.cols,
                self.b.len(),
                self.rows
            ));
        }
        if !self.scale.is_finite() {
            return Err(format!("scale {} is not finite", self.scale));
        }
        Ok(())
    }

    /// The full delta `scale · B · A`, `rows` rows of `cols` (for merging).
    pub fn delta(&self) -> Vec<f32> {
        let mut out = vec![0.0f32; self.rows * self.cols];
        for (r, row) in out.chunks_exact_mut(self.cols).enumerate() {
            for k in 0..self.rank {
                let w = self.scale * self.b[r * self.rank + k];
                if w != 0.0 {
                    let a = &self.a[k * self.cols..(k + 1) * self.cols];
                    row.iter_mut().zip(a).for_each(|(o, &x)| *o += w * x);
                }
            }
        }
        out
    }
}

/// A LoRA adapter in memory (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct LoraAdapter {
    /// `general.architecture` of the base model it was trained on (`llama`).
    pub architecture: String,
    /// The base model's name or hub id, when the file says.
    pub base_model: Option<String>,
    /// The pairs, keyed by the GGUF name of the base weight (`blk.0.attn_q.weight`).
    pub tensors: BTreeMap<String, LoraTensor>,
    /// The file or directory it was read from (for error messages).
    pub source: Option<PathBuf>,
    /// Where the adapter came from (base model and data hashes, hyper-parameters),
    /// written under [`hearth_lineage::METADATA_KEY`] in both formats: the
    /// safetensors metadata and `adapter_config.json` of PEFT, a GGUF key.
    pub provenance: Option<hearth_lineage::Provenance>,
}

const IN_MEMORY: &str = "(in memory)";

impl LoraAdapter {
    /// An adapter with no pairs for models of `architecture`.
    pub fn new(architecture: impl Into<String>) -> Self {
        Self {
            architecture: architecture.into(),
            base_model: None,
            tensors: BTreeMap::new(),
            source: None,
            provenance: None,
        }
    }

    /// Reads an adapter: a directory is read as PEFT, a file as GGUF LoRA. `base` is
    /// the model it will be used with (PEFT's layout depends on its head counts), and
    /// the adapter is checked against it.
    pub fn open(path: impl AsRef<Path>, base: &ModelConfig) -> Result<Self> {
        let path = path.as_ref();
        let a = if path.is_dir() {
            Self::read_peft(path, base)?
        } else {
            Self::read_gguf_lora(path)?
        };
        a.check(base)?;
        Ok(a)
    }

    /// Reads a PEFT adapter directory for a base model of `base`.
    pub fn read_peft(dir: impl AsRef<Path>, base: &ModelConfig) -> Result<Self> {
        peft::read(dir.as_ref(), base)
    }

    /// Writes the adapter as a PEFT directory (created if absent):
    /// `adapter_config.json` and `adapter_model.safetensors` (F32), in Hugging Face
    /// layout for a base model of `base`.
    pub fn write_peft(&self, dir: impl AsRef<Path>, base: &ModelConfig) -> Result<()> {
        self.check(base)?;
        peft::write(self, dir.as_ref(), base)
    }

    /// Reads a llama.cpp GGUF LoRA file.
    pub fn read_gguf_lora(path: impl AsRef<Path>) -> Result<Self> {
        gguf::read(path.as_ref())
    }

    /// Writes the adapter as a llama.cpp GGUF LoRA file (F32 tensors). GGUF has one
    /// `alpha` per file: a pair whose scale differs from `alpha / rank` has the
    /// difference folded into its `B`.
    pub fn write_gguf_lora(&self, path: impl AsRef<Path>) -> Result<()> {
        gguf::write(self, path.as_ref())
    }

    /// The path errors name.
    pub(crate) fn origin(&self) -> PathBuf {
        self.source
            .clone()
            .unwrap_or_else(|| PathBuf::from(IN_MEMORY))
    }

    pub(crate) fn error(&self, what: impl Into<String>) -> Error {
        Error::Adapter {
            path: self.origin(),
            what: what.into(),
        }
    }

    /// Checks the adapter against a model of `cfg`: same architecture, every tensor a
    /// weight hearth can change, shapes equal to the model's.
    pub fn check(&self, cfg: &ModelConfig) -> Result<()> {
        if self.architecture != cfg.architecture {
            return Err(self.error(format!(
                "made for a `{}` model, the base model is `{}`",
                self.architecture, cfg.architecture
            )));
        }
        if self.tensors.is_empty() {
            return Err(self.error("it has no LoRA tensors"));
        }
        for (name, t) in &self.tensors {
            let target = Target::parse(name).ok_or_else(|| {
                self.error(format!(
                    "tensor `{name}` cannot take a LoRA delta (hearth applies LoRA to the \
                     q/k/v/o and gate/up/down projections, the token embedding and the output head)"
                ))
            })?;
            let (rows, cols) = target.shape(cfg).ok_or_else(|| {
                self.error(format!(
                    "tensor `{name}`: the base model has {} layers",
                    cfg.n_layers()
                ))
            })?;
            if (t.rows, t.cols) != (rows, cols) {
                return Err(self.error(format!(
                    "tensor `{name}`: the adapter changes a [{} x {}] weight, the base model's is \
                     [{rows} x {cols}] (wrong base model?)",
                    t.rows, t.cols
                )));
            }
            t.check()
                .map_err(|w| self.error(format!("tensor `{name}`: {w}")))?;
        }
        Ok(())
    }

    /// A random adapter for `cfg` on the given projections of every layer: `A` of
    /// Kaiming-like magnitude, `B ~ N(0, b_std)` (a trained-looking, non-trivial delta;
    /// `b_std = 0` gives PEFT's initial, zero delta). Deterministic in `seed`.
    pub fn random(
        cfg: &ModelConfig,
        projs: &[Proj],
        rank: usize,
        alpha: f32,
        b_std: f32,
        seed: u64,
    ) -> Self {
        let mut rng = Normal::new(seed);
        let mut out = Self::new(cfg.architecture.clone());
        for layer in 0..cfg.n_layers() {
            for &p in projs {
                let (rows, cols) = p.shape(cfg);
                let a_std = 1.0 / (cols as f32).sqrt();
                out.tensors.insert(
                    format!("blk.{layer}.{}.weight", p.gguf()),
                    LoraTensor {
                        rows,
                        cols,
                        rank,
                        a: (0..rank * cols).map(|_| rng.next() * a_std).collect(),
                        b: (0..rows * rank).map(|_| rng.next() * b_std).collect(),
                        scale: alpha / rank as f32,
                    },
                );
            }
        }
        out
    }
}

/// Standard normal samples from a seeded generator (Box-Muller over splitmix64).
struct Normal(u64);

impl Normal {
    fn new(seed: u64) -> Self {
        Self(seed ^ 0x5851_F42D_4C95_7F2D)
    }

    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn next(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}

#[cfg(test)]
mod tests;

/// Floating-point element types adapter tensors are stored in.
#[derive(Clone, Copy)]
enum Float {
    F32,
    F16,
    BF16,
}

/// Little-endian `kind` values in `bytes`, as f32.
fn floats(bytes: &[u8], kind: Float) -> Vec<f32> {
    match kind {
        Float::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Float::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Float::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
    }
}
