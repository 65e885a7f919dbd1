//! The model's weights: GGUF weights dequantized once into dense tensors, each either
//! frozen (LoRA's base, a distillation student's embeddings) or trainable (a
//! [`Var`], for a distillation student), and the linear layer over them.
//!
//! A frozen linear layer is a custom autograd op. Why: candle's quantized `QMatMul`
//! detaches its output from the graph without an error, and a plain `matmul` against
//! a constant weight still computes (and throws away) the weight's gradient in
//! backward, doubling its cost. The op passes gradients to its input only:
//! `dx = dy · W`. A trainable layer is a plain `matmul`, which reaches both.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor, Var};
use hearth_gguf::GgufFile;
use hearth_model::{ModelConfig, QMatrix};

use crate::rng::Rng;
use crate::{Error, Result};

/// `y = x Wᵀ`; `W` receives a gradient only when it is a variable.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    /// `[out, in]`.
    pub w: Tensor,
}

impl Linear {
    /// Applies the layer to `x` (`[n, in]`, or `[..., in]` when frozen).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.w.is_variable() {
            return Ok(x.matmul(&self.w.t()?)?);
        }
        Ok(x.contiguous()?.apply_op1(self.clone())?)
    }

    fn out_shape(&self, dims: &[usize]) -> (usize, Vec<usize>) {
        let (out, inp) = self.w.dims2().unwrap_or((0, 0));
        let n = dims.iter().product::<usize>() / inp.max(1);
        let mut d = dims.to_vec();
        if let Some(last) = d.last_mut() {
            *last = out;
        }
        (n, d)
    }
}

impl CustomOp1 for Linear {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (a, b) = l
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("frozen-linear: input not contiguous".into()))?;
        let inp = self.w.dims2()?.1;
        let (n, dims) = self.out_shape(l.dims());
        let x = match s {
            CpuStorage::F32(v) => Tensor::from_slice(&v[a..b], (n, inp), &Device::Cpu)?,
            CpuStorage::F64(v) => Tensor::from_slice(&v[a..b], (n, inp), &Device::Cpu)?,
            _ => {
                return Err(candle_core::Error::Msg(
                    "frozen-linear: f32 or f64 only".into(),
                ))
            }
        };
        let y = x.matmul(&self.w.t()?)?.flatten_all()?;
        let storage = match s {
            CpuStorage::F64(_) => CpuStorage::F64(y.to_vec1()?),
            _ => CpuStorage::F32(y.to_vec1()?),
        };
        Ok((storage, Shape::from(dims)))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let out = self.w.dims2()?.0;
        let n = grad.elem_count() / out.max(1);
        let dx = grad.contiguous()?.reshape((n, out))?.matmul(&self.w)?;
        Ok(Some(dx.reshape(arg.shape())?))
    }
}

/// The weights of one block.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub attn_norm: Tensor,
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub q_norm: Option<Tensor>,
    pub k_norm: Option<Tensor>,
    pub post_attn_norm: Option<Tensor>,
    pub ffn_norm: Tensor,
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
    pub post_ffn_norm: Option<Tensor>,
}

/// Every weight of a model, dense.
#[derive(Debug, Clone)]
pub(crate) struct Weights {
    pub embed: Tensor,
    pub blocks: Vec<Block>,
    pub out_norm: Tensor,
    pub output: Linear,
    /// The output head is the token embedding (no `output.weight`).
    pub tied: bool,
}

/// Reads the GGUF tensor `name` as `[rows, cols]` (`rows == 1`: a vector).
type Source<'a> = dyn FnMut(&str, usize, usize) -> Result<Tensor> + 'a;

struct Reader<'a> {
    file: &'a Arc<GgufFile>,
    dtype: DType,
}

impl Reader<'_> {
    fn dense(&self, name: &str, rows: usize, cols: usize) -> Result<Tensor> {
        let info = self.file.tensor(name).ok_or_else(|| {
            Error::Model(hearth_model::Error::MissingTensor {
                path: self.file.path().to_path_buf(),
                tensor: name.to_string(),
            })
        })?;
        let m = QMatrix::new(self.file, info, rows, cols)?;
        let mut v = vec![0f32; rows * cols];
        for (r, row) in v.chunks_exact_mut(cols).enumerate() {
            m.row(r, row);
        }
        Ok(Tensor::from_vec(v, (rows, cols), &Device::Cpu)?.to_dtype(self.dtype)?)
    }
}

impl Weights {
    /// Dequantizes every weight of `file` (names and shapes as the inference
    /// `Transformer` reads them) into tensors of `dtype`.
    pub fn load(file: &Arc<GgufFile>, cfg: &ModelConfig, dtype: DType) -> Result<Self> {
        let rd = Reader { file, dtype };
        let tied = file.tensor("output.weight").is_none();
        Self::build(cfg, tied, &mut |name, rows, cols| {
            rd.dense(name, rows, cols)
        })
    }

    /// Random weights for `cfg` as `hearth_model::tiny` draws them: normal matrices
    /// scaled by `1 / sqrt(in)`, embeddings of unit scale, norms of one.
    pub fn random(cfg: &ModelConfig, tied: bool, seed: u64, dtype: DType) -> Result<Self> {
        let mut rng = Rng::new(seed, 0x1A17);
        Self::build(cfg, tied, &mut |name, rows, cols| {
            let v: Vec<f32> = if rows == 1 {
                vec![1.0; cols]
            } else {
                let scale = if name == "token_embd.weight" {
                    1.0
                } else {
                    1.0 / (cols as f32).sqrt()
                };
                (0..rows * cols).map(|_| rng.normal() * scale).collect()
            };
            Ok(Tensor::from_vec(v, (rows, cols), &Device::Cpu)?.to_dtype(dtype)?)
        })
    }

    fn build(cfg: &ModelConfig, tied: bool, src: &mut Source<'_>) -> Result<Self> {
        let (d, q, kv, ff, hd) = (
            cfg.d_model,
            cfg.q_dim(),
            cfg.kv_dim(),
            cfg.ffn_dim,
            cfg.head_dim,
        );
        let mut g = Get { src };
        let embed = (g.src)("token_embd.weight", cfg.vocab_size, d)?;
        let output = match tied {
            true => Linear { w: embed.clone() },
            false => g.matrix("output.weight", cfg.vocab_size, d)?,
        };
        let mut blocks = Vec::with_capacity(cfg.n_layers());
        for i in 0..cfg.n_layers() {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            blocks.push(Block {
                attn_norm: g.vector(&n("attn_norm"), d)?,
                q: g.matrix(&n("attn_q"), q, d)?,
                k: g.matrix(&n("attn_k"), kv, d)?,
                v: g.matrix(&n("attn_v"), kv, d)?,
                o: g.matrix(&n("attn_output"), d, q)?,
                q_norm: g.opt(&n("attn_q_norm"), hd, cfg.qk_norm)?,
                k_norm: g.opt(&n("attn_k_norm"), hd, cfg.qk_norm)?,
                post_attn_norm: g.opt(&n("post_attention_norm"), d, cfg.post_norms)?,
                ffn_norm: g.vector(&n("ffn_norm"), d)?,
                gate: g.matrix(&n("ffn_gate"), ff, d)?,
                up: g.matrix(&n("ffn_up"), ff, d)?,
                down: g.matrix(&n("ffn_down"), d, ff)?,
                post_ffn_norm: g.opt(&n("post_ffw_norm"), d, cfg.post_norms)?,
            });
        }
        Ok(Self {
            embed,
            blocks,
            out_norm: g.vector("output_norm.weight", d)?,
            output,
            tied,
        })
    }

    /// Keeps the blocks at `layers` (in that order), dropping the others.
    pub fn select_layers(&self, layers: &[usize]) -> Result<Self> {
        let blocks = layers
            .iter()
            .map(|&l| {
                self.blocks.get(l).cloned().ok_or_else(|| {
                    Error::Config(format!(
                        "layer {l} does not exist (the model has {})",
                        self.blocks.len()
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            blocks,
            ..self.clone()
        })
    }

    /// Every tensor with its GGUF name, in the order a GGUF file lists them (the tied
    /// head left out): `[out, in]` matrices and vectors.
    pub fn named(&mut self) -> Vec<(String, &mut Tensor)> {
        let mut out = vec![("token_embd.weight".to_string(), &mut self.embed)];
        out.push(("output_norm.weight".into(), &mut self.out_norm));
        if !self.tied {
            out.push(("output.weight".into(), &mut self.output.w));
        }
        for (i, b) in self.blocks.iter_mut().enumerate() {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            out.push((n("attn_norm"), &mut b.attn_norm));
            out.push((n("attn_q"), &mut b.q.w));
            out.push((n("attn_k"), &mut b.k.w));
            out.push((n("attn_v"), &mut b.v.w));
            out.push((n("attn_output"), &mut b.o.w));
            out.push((n("ffn_norm"), &mut b.ffn_norm));
            out.push((n("ffn_gate"), &mut b.gate.w));
            out.push((n("ffn_up"), &mut b.up.w));
            out.push((n("ffn_down"), &mut b.down.w));
            let opts = [
                ("attn_q_norm", &mut b.q_norm),
                ("attn_k_norm", &mut b.k_norm),
                ("post_attention_norm", &mut b.post_attn_norm),
                ("post_ffw_norm", &mut b.post_ffn_norm),
            ];
            for (s, t) in opts {
                if let Some(t) = t.as_mut() {
                    out.push((n(s), t));
                }
            }
        }
        out
    }

    /// Turns every tensor whose name `train` accepts into a variable (a copy, so the
    /// weights this model was cloned from stay as they are) and returns them by name.
    /// A tied head follows the embedding.
    pub fn make_trainable(&mut self, train: impl Fn(&str) -> bool) -> Result<Vec<(String, Var)>> {
        let mut vars = Vec::new();
        for (name, t) in self.named() {
            if train(&name) {
                let v = Var::from_tensor(&t.detach())?;
                *t = v.as_tensor().clone();
                vars.push((name, v));
            }
        }
        if self.tied {
            self.output.w = self.embed.clone();
        }
        Ok(vars)
    }
}

/// Reads named tensors from a [`Source`].
struct Get<'a, 'b> {
    src: &'a mut Source<'b>,
}

impl Get<'_, '_> {
    fn matrix(&mut self, name: &str, rows: usize, cols: usize) -> Result<Linear> {
        Ok(Linear {
            w: (self.src)(name, rows, cols)?,
        })
    }

    fn vector(&mut self, name: &str, len: usize) -> Result<Tensor> {
        Ok((self.src)(name, 1, len)?.reshape(len)?)
    }

    fn opt(&mut self, name: &str, len: usize, on: bool) -> Result<Option<Tensor>> {
        on.then(|| self.vector(name, len)).transpose()
    }
}
