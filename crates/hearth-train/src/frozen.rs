//! The frozen base model: GGUF weights dequantized once into dense tensors, and the
//! linear layer over them as a custom autograd op.
//!
//! Why a custom op: candle's quantized `QMatMul` detaches its output from the graph
//! without an error, and a plain `matmul` against a constant weight still computes
//! (and throws away) the weight's gradient in backward, doubling its cost. The op here
//! passes gradients to its input only: `dx = dy · W`.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor};
use hearth_gguf::GgufFile;
use hearth_model::{ModelConfig, QMatrix};

use crate::{Error, Result};

/// `y = x Wᵀ` against a weight that receives no gradient.
#[derive(Debug, Clone)]
pub(crate) struct Frozen {
    /// `[out, in]`.
    pub w: Tensor,
}

impl Frozen {
    /// Applies the layer to `x` (`[..., in]`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
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

impl CustomOp1 for Frozen {
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
#[derive(Debug)]
pub(crate) struct FrozenBlock {
    pub attn_norm: Tensor,
    pub q: Frozen,
    pub k: Frozen,
    pub v: Frozen,
    pub o: Frozen,
    pub q_norm: Option<Tensor>,
    pub k_norm: Option<Tensor>,
    pub post_attn_norm: Option<Tensor>,
    pub ffn_norm: Tensor,
    pub gate: Frozen,
    pub up: Frozen,
    pub down: Frozen,
    pub post_ffn_norm: Option<Tensor>,
}

/// Every weight of the base model, dense.
#[derive(Debug)]
pub(crate) struct FrozenWeights {
    pub embed: Tensor,
    pub blocks: Vec<FrozenBlock>,
    pub out_norm: Tensor,
    pub output: Frozen,
}

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

    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Frozen> {
        Ok(Frozen {
            w: self.dense(name, rows, cols)?,
        })
    }

    fn vector(&self, name: &str, len: usize) -> Result<Tensor> {
        Ok(self.dense(name, 1, len)?.reshape(len)?)
    }

    fn opt(&self, name: &str, len: usize, on: bool) -> Result<Option<Tensor>> {
        on.then(|| self.vector(name, len)).transpose()
    }
}

impl FrozenWeights {
    /// Dequantizes every weight of `file` (names and shapes as the inference
    /// `Transformer` reads them) into tensors of `dtype`.
    pub fn load(file: &Arc<GgufFile>, cfg: &ModelConfig, dtype: DType) -> Result<Self> {
        let rd = Reader { file, dtype };
        let (d, q, kv, ff, hd) = (
            cfg.d_model,
            cfg.q_dim(),
            cfg.kv_dim(),
            cfg.ffn_dim,
            cfg.head_dim,
        );
        let embed = rd.dense("token_embd.weight", cfg.vocab_size, d)?;
        let output = match file.tensor("output.weight") {
            Some(_) => rd.matrix("output.weight", cfg.vocab_size, d)?,
            None => Frozen { w: embed.clone() },
        };
        let mut blocks = Vec::with_capacity(cfg.n_layers());
        for i in 0..cfg.n_layers() {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            blocks.push(FrozenBlock {
                attn_norm: rd.vector(&n("attn_norm"), d)?,
                q: rd.matrix(&n("attn_q"), q, d)?,
                k: rd.matrix(&n("attn_k"), kv, d)?,
                v: rd.matrix(&n("attn_v"), kv, d)?,
                o: rd.matrix(&n("attn_output"), d, q)?,
                q_norm: rd.opt(&n("attn_q_norm"), hd, cfg.qk_norm)?,
                k_norm: rd.opt(&n("attn_k_norm"), hd, cfg.qk_norm)?,
                post_attn_norm: rd.opt(&n("post_attention_norm"), d, cfg.post_norms)?,
                ffn_norm: rd.vector(&n("ffn_norm"), d)?,
                gate: rd.matrix(&n("ffn_gate"), ff, d)?,
                up: rd.matrix(&n("ffn_up"), ff, d)?,
                down: rd.matrix(&n("ffn_down"), d, ff)?,
                post_ffn_norm: rd.opt(&n("post_ffw_norm"), d, cfg.post_norms)?,
            });
        }
        Ok(Self {
            embed,
            blocks,
            out_norm: rd.vector("output_norm.weight", d)?,
            output,
        })
    }
}
