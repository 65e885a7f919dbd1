//! The training forward pass: the same decoder as hearth-model's inference
//! `Transformer` (same weights in GGUF layout, same RoPE pairing and angles, same
//! norms, windows and activations), written with candle tensor ops so autograd
//! reaches the LoRA parameters of every layer.
//!
//! A batch is packed: several sequences side by side in one row of tokens, each with
//! its own positions; linear layers see all tokens at once, attention runs per
//! sequence. Logits are computed only where loss is taken.

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor, D};
use hearth_gguf::GgufFile;
use hearth_model::{Activation, ModelConfig, RopeStyle};

use crate::lora::{LoraParams, Target};
use crate::rng::Rng;
use crate::weights::{Linear, Weights};
use crate::{Error, Result};

/// Sequences packed into one forward pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Packed {
    /// All tokens, sequence after sequence.
    pub tokens: Vec<u32>,
    /// `(start, len)` of each sequence in `tokens`.
    pub seqs: Vec<(usize, usize)>,
    /// `(row, target)`: the logits after token `row` should predict `target`.
    pub targets: Vec<(usize, u32)>,
}

impl Packed {
    /// Appends a sequence; `mask[i]` marks token `i` as a target.
    pub fn push(&mut self, tokens: &[u32], mask: &[bool]) {
        let start = self.tokens.len();
        for (i, &t) in tokens.iter().enumerate().skip(1) {
            if mask.get(i).copied().unwrap_or(false) {
                self.targets.push((start + i - 1, t));
            }
        }
        self.tokens.extend_from_slice(tokens);
        self.seqs.push((start, tokens.len()));
    }
}

/// Dropout on the adapters' inputs: probability and the generator of the masks.
#[derive(Debug)]
pub struct Dropout<'a> {
    /// Probability of zeroing an input.
    pub p: f32,
    /// Mask source.
    pub rng: &'a mut Rng,
}

/// A model whose forward pass is differentiable: with respect to LoRA parameters
/// over frozen weights (fine-tuning), or to its own trainable weights (a
/// distillation student, see [`crate::distill`]).
#[derive(Debug)]
pub struct TrainModel {
    config: ModelConfig,
    file: Arc<GgufFile>,
    pub(crate) w: Weights,
    dtype: DType,
}

impl TrainModel {
    /// Loads `path` with weights dequantized to `dtype` (F32 to train, F64 for
    /// gradient checks).
    pub fn load(path: &Path, dtype: DType) -> Result<Self> {
        Self::from_gguf(Arc::new(GgufFile::open(path)?), dtype)
    }

    /// Builds the model over an opened file (which may have been quantized while
    /// loading: training then runs against the quantized weights' values).
    pub fn from_gguf(file: Arc<GgufFile>, dtype: DType) -> Result<Self> {
        let config = hearth_model::config_from_gguf(&file)?;
        if !matches!(dtype, DType::F32 | DType::F64) {
            return Err(Error::Config(format!(
                "training runs in f32 or f64, not {dtype:?}"
            )));
        }
        let w = Weights::load(&file, &config, dtype)?;
        Ok(Self {
            config,
            file,
            w,
            dtype,
        })
    }

    /// A model of `config` over weights built elsewhere; `file` is where its
    /// tokenizer and metadata come from.
    pub(crate) fn from_weights(
        config: ModelConfig,
        file: Arc<GgufFile>,
        w: Weights,
        dtype: DType,
    ) -> Self {
        Self {
            config,
            file,
            w,
            dtype,
        }
    }

    /// The base model's configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The base model's file.
    pub fn gguf(&self) -> &Arc<GgufFile> {
        &self.file
    }

    /// The tensors' element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Sum over `batch.targets` of the cross-entropy of the target token (a scalar).
    pub fn loss_sum(
        &self,
        batch: &Packed,
        lora: Option<&LoraParams>,
        dropout: Option<Dropout<'_>>,
    ) -> Result<Tensor> {
        let rows: Vec<u32> = batch.targets.iter().map(|&(r, _)| r as u32).collect();
        let tgt: Vec<u32> = batch.targets.iter().map(|&(_, t)| t).collect();
        let logits = self.logits_at(batch, &rows, lora, dropout)?;
        cross_entropy_sum(&logits, &tgt)
    }

    /// Logits (`[rows.len(), vocab]`) after the tokens at `rows` of the batch.
    pub fn logits_at(
        &self,
        batch: &Packed,
        rows: &[u32],
        lora: Option<&LoraParams>,
        dropout: Option<Dropout<'_>>,
    ) -> Result<Tensor> {
        let h = self.hidden(batch, lora, dropout)?;
        let idx = Tensor::from_slice(rows, rows.len(), &Device::Cpu)?;
        self.w.output.forward(&h.index_select(&idx, 0)?)
    }

    /// Greedy continuation of `prompt` until an id in `stop` or `max_new` tokens (the
    /// stop token is not returned). Recomputes the whole sequence each step: for tests
    /// and small checks, not for serving.
    pub fn greedy(
        &self,
        prompt: &[u32],
        max_new: usize,
        stop: &[u32],
        lora: Option<&LoraParams>,
    ) -> Result<Vec<u32>> {
        let mut seq = prompt.to_vec();
        let mut out = Vec::new();
        for _ in 0..max_new {
            let mut b = Packed::default();
            b.push(&seq, &[]);
            let last = seq.len() as u32 - 1;
            let logits = self.logits_at(&b, &[last], lora, None)?;
            let next = logits.flatten_all()?.argmax(0)?.to_scalar::<u32>()?;
            if stop.contains(&next) {
                break;
            }
            out.push(next);
            seq.push(next);
        }
        Ok(out)
    }

    /// Final normalised hidden states, one row per token of the batch.
    pub fn hidden(
        &self,
        batch: &Packed,
        lora: Option<&LoraParams>,
        mut dropout: Option<Dropout<'_>>,
    ) -> Result<Tensor> {
        let cfg = &self.config;
        if let Some(&t) = batch.tokens.iter().find(|&&t| t as usize >= cfg.vocab_size) {
            return Err(Error::Model(hearth_model::Error::TokenOutOfRange {
                id: t,
                vocab_size: cfg.vocab_size,
            }));
        }
        if let Some(&(_, len)) = batch.seqs.iter().find(|s| s.1 > cfg.context_length) {
            return Err(Error::Model(hearth_model::Error::ContextLengthExceeded {
                needed: len,
                max: cfg.context_length,
            }));
        }
        let n = batch.tokens.len();
        let ids = Tensor::from_slice(&batch.tokens, n, &Device::Cpu)?;
        let mut x = self.w.embed.index_select(&ids, 0)?;
        if let Some(s) = cfg.embed_scale {
            x = x.affine(s as f64, 0.0)?;
        }
        let pos: Vec<usize> = batch.seqs.iter().flat_map(|&(_, len)| 0..len).collect();
        let mut ropes: Vec<((u32, u32), (Tensor, Tensor))> = Vec::new();
        for l in 0..cfg.n_layers() {
            let spec = &cfg.layers[l];
            let key = (spec.rope_base.to_bits(), spec.rope_pos_scale.to_bits());
            if !ropes.iter().any(|(k, _)| *k == key) {
                let t = self.rope_tables(&pos, spec.rope_base, spec.rope_pos_scale)?;
                ropes.push((key, t));
            }
            let (cos, sin) = ropes
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, t)| t)
                .ok_or_else(|| Error::Config("rope table".into()))?;
            let mut lin = Lin {
                lora,
                layer: l,
                dropout: dropout.as_mut(),
            };
            x = self.block(l, &x, batch, cos, sin, &mut lin)?;
        }
        rms_norm(&x, &self.w.out_norm, cfg.rms_eps)
    }

    /// cos/sin (`[n, 1, rope_dim / 2]`) of every row's position, computed as
    /// `hearth_kernels::rope_in_place` does (repeated multiplication in f32).
    fn rope_tables(&self, pos: &[usize], base: f32, scale: f32) -> Result<(Tensor, Tensor)> {
        let rd = self.config.rope_dim;
        let half = rd / 2;
        let theta_scale = base.powf(-2.0 / rd as f32);
        let mut cos = Vec::with_capacity(pos.len() * half);
        let mut sin = Vec::with_capacity(pos.len() * half);
        for &p in pos {
            let mut theta = p as f32 * scale;
            for _ in 0..half {
                cos.push(theta.cos());
                sin.push(theta.sin());
                theta *= theta_scale;
            }
        }
        let t = |v: Vec<f32>| -> Result<Tensor> {
            Ok(Tensor::from_vec(v, (pos.len(), 1, half), &Device::Cpu)?.to_dtype(self.dtype)?)
        };
        Ok((t(cos)?, t(sin)?))
    }

    fn block(
        &self,
        l: usize,
        x: &Tensor,
        batch: &Packed,
        cos: &Tensor,
        sin: &Tensor,
        lin: &mut Lin<'_, '_>,
    ) -> Result<Tensor> {
        let cfg = &self.config;
        let b = &self.w.blocks[l];
        let n = x.dim(0)?;
        let (hd, nh, nkv) = (cfg.head_dim, cfg.n_heads, cfg.n_kv_heads);
        let h = rms_norm(x, &b.attn_norm, cfg.rms_eps)?;
        let mut q = lin.apply(&b.q, Target::Q, &h)?.reshape((n, nh, hd))?;
        let mut k = lin.apply(&b.k, Target::K, &h)?.reshape((n, nkv, hd))?;
        let v = lin.apply(&b.v, Target::V, &h)?.reshape((n, nkv, hd))?;
        if let (Some(qn), Some(kn)) = (&b.q_norm, &b.k_norm) {
            q = rms_norm(&q, qn, cfg.rms_eps)?;
            k = rms_norm(&k, kn, cfg.rms_eps)?;
        }
        let q = rope(&q, cos, sin, cfg.rope_style, cfg.rope_dim)?;
        let k = rope(&k, cos, sin, cfg.rope_style, cfg.rope_dim)?;
        let window = cfg.layers[l].window;
        let mut outs = Vec::with_capacity(batch.seqs.len());
        for &(start, len) in &batch.seqs {
            let qs = q.narrow(0, start, len)?.transpose(0, 1)?.contiguous()?;
            let ks = expand_kv(&k.narrow(0, start, len)?, nh)?;
            let vs = expand_kv(&v.narrow(0, start, len)?, nh)?;
            let scores = qs
                .matmul(&ks.t()?)?
                .affine(cfg.attn_scale as f64, 0.0)?
                .broadcast_add(&self.mask(len, window)?)?;
            let p = softmax_last(&scores)?;
            let o = p.matmul(&vs)?.transpose(0, 1)?.reshape((len, nh * hd))?;
            outs.push(o);
        }
        let attn = Tensor::cat(&outs, 0)?;
        let mut o = lin.apply(&b.o, Target::O, &attn)?;
        if let Some(w) = &b.post_attn_norm {
            o = rms_norm(&o, w, cfg.rms_eps)?;
        }
        let x = x.add(&o)?;
        let h = rms_norm(&x, &b.ffn_norm, cfg.rms_eps)?;
        let g = lin.apply(&b.gate, Target::Gate, &h)?;
        let u = lin.apply(&b.up, Target::Up, &h)?;
        let a = match cfg.activation {
            Activation::Silu => g.silu()?,
            Activation::GeluTanh => g.gelu()?,
        };
        let mut o = lin.apply(&b.down, Target::Down, &a.mul(&u)?)?;
        if let Some(w) = &b.post_ffn_norm {
            o = rms_norm(&o, w, cfg.rms_eps)?;
        }
        Ok(x.add(&o)?)
    }

    /// Additive causal mask (`[len, len]`), limited to the last `window` positions.
    fn mask(&self, len: usize, window: Option<usize>) -> Result<Tensor> {
        let mut m = vec![0f32; len * len];
        for i in 0..len {
            for j in 0..len {
                let far = window.is_some_and(|w| i >= j + w);
                if j > i || far {
                    m[i * len + j] = f32::NEG_INFINITY;
                }
            }
        }
        Ok(Tensor::from_vec(m, (len, len), &Device::Cpu)?.to_dtype(self.dtype)?)
    }
}

/// Applies a linear layer plus its adapter, if any.
struct Lin<'a, 'b> {
    lora: Option<&'a LoraParams>,
    layer: usize,
    dropout: Option<&'a mut Dropout<'b>>,
}

impl Lin<'_, '_> {
    fn apply(&mut self, w: &Linear, target: Target, x: &Tensor) -> Result<Tensor> {
        let y = w.forward(x)?;
        let Some(lora) = self.lora else {
            return Ok(y);
        };
        let Some(pair) = lora.get(self.layer, target) else {
            return Ok(y);
        };
        let xin = match self.dropout.as_mut().filter(|d| d.p > 0.0) {
            Some(d) => {
                let keep = 1.0 - d.p;
                let m: Vec<f32> = (0..x.elem_count())
                    .map(|_| {
                        if d.rng.next_f32() < d.p {
                            0.0
                        } else {
                            1.0 / keep
                        }
                    })
                    .collect();
                let m = Tensor::from_vec(m, x.shape(), &Device::Cpu)?.to_dtype(x.dtype())?;
                x.mul(&m)?
            }
            None => x.clone(),
        };
        let delta = xin
            .matmul(&pair.a.t()?)?
            .matmul(&pair.b.t()?)?
            .affine(lora.config().scale() as f64, 0.0)?;
        Ok(y.add(&delta)?)
    }
}

/// `log Σ exp` over each row of `x` (`[n, v]` → `[n, 1]`), shifted by the row maximum.
pub(crate) fn log_sum_exp(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(1)?.detach();
    Ok(x.broadcast_sub(&max)?
        .exp()?
        .sum_keepdim(1)?
        .log()?
        .add(&max)?)
}

/// Sum over rows of `-log softmax(logits)[target]` (a scalar).
pub(crate) fn cross_entropy_sum(logits: &Tensor, targets: &[u32]) -> Result<Tensor> {
    let tgt = Tensor::from_slice(targets, (targets.len(), 1), &Device::Cpu)?;
    let picked = logits.gather(&tgt, 1)?;
    Ok(log_sum_exp(logits)?.sub(&picked)?.sum_all()?)
}

/// RMS norm over the last dimension with weight `w`.
fn rms_norm(x: &Tensor, w: &Tensor, eps: f32) -> Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let inv = ms.affine(1.0, eps as f64)?.sqrt()?.recip()?;
    Ok(x.broadcast_mul(&inv)?.broadcast_mul(w)?)
}

/// Softmax over the last dimension (the shift by the row maximum is a constant).
fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

/// `[n, kv_heads, hd]` → `[heads, n, hd]`, each key/value head shared by
/// `heads / kv_heads` consecutive query heads.
fn expand_kv(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (n, kvh, hd) = x.dims3()?;
    let t = x.transpose(0, 1)?.contiguous()?;
    if kvh == heads {
        return Ok(t);
    }
    let group = heads / kvh;
    Ok(t.unsqueeze(1)?
        .broadcast_as((kvh, group, n, hd))?
        .reshape((heads, n, hd))?)
}

/// Rotates the first `rope_dim` dimensions of every head (`x`: `[n, heads, hd]`).
fn rope(
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    style: RopeStyle,
    rope_dim: usize,
) -> Result<Tensor> {
    let (n, h, hd) = x.dims3()?;
    let half = rope_dim / 2;
    let rot = x.narrow(2, 0, rope_dim)?;
    let (x0, x1) = match style {
        RopeStyle::Normal => {
            let r = rot.reshape((n, h, half, 2))?;
            (
                r.narrow(3, 0, 1)?.squeeze(3)?,
                r.narrow(3, 1, 1)?.squeeze(3)?,
            )
        }
        RopeStyle::Neox => (rot.narrow(2, 0, half)?, rot.narrow(2, half, half)?),
    };
    let y0 = x0.broadcast_mul(cos)?.sub(&x1.broadcast_mul(sin)?)?;
    let y1 = x0.broadcast_mul(sin)?.add(&x1.broadcast_mul(cos)?)?;
    let rotated = match style {
        RopeStyle::Normal => Tensor::stack(&[y0, y1], 3)?.reshape((n, h, rope_dim))?,
        RopeStyle::Neox => Tensor::cat(&[y0, y1], 2)?,
    };
    if rope_dim == hd {
        return Ok(rotated);
    }
    Ok(Tensor::cat(
        &[rotated, x.narrow(2, rope_dim, hd - rope_dim)?],
        2,
    )?)
}
