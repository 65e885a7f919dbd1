//! Tiny models with random weights, written as real GGUF files: every architecture,
//! every weight type, with a byte-level BPE vocabulary, so tests of the whole stack
//! (model, tokenizer, engine, server) run in seconds without downloading anything.

use std::path::Path;

use candle_core::quantized::k_quants::{
    BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K,
    BlockQ8K, BlockQ8_0, GgmlType as Block,
};
use half::{bf16, f16};
use hearth_gguf::{GgmlType, GgufWriter, TensorToWrite, Value};

use crate::{Error, Result};

/// Shape and type of a tiny model.
#[derive(Debug, Clone)]
pub struct TinySpec {
    /// `llama` or `gemma3`.
    pub arch: &'static str,
    /// Type of every weight matrix (norms stay F32).
    pub dtype: GgmlType,
    /// Residual width (a multiple of 256 for K-quant types).
    pub d_model: usize,
    /// Blocks.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads.
    pub n_kv_heads: usize,
    /// Dimensions per head.
    pub head_dim: usize,
    /// Feed-forward width.
    pub ffn_dim: usize,
    /// Context length.
    pub context_length: usize,
    /// Sliding window (gemma3 only).
    pub sliding_window: usize,
    /// Seed of the random weights.
    pub seed: u64,
}

impl TinySpec {
    /// A llama with grouped-query attention.
    pub fn llama() -> Self {
        Self {
            arch: "llama",
            dtype: GgmlType::F32,
            d_model: 256,
            n_layers: 2,
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 64,
            ffn_dim: 512,
            context_length: 2048,
            sliding_window: 0,
            seed: 7,
        }
    }

    /// A gemma3 with six layers (five local, one global) and a 16-position window.
    pub fn gemma3() -> Self {
        Self {
            arch: "gemma3",
            n_layers: 6,
            n_kv_heads: 1,
            sliding_window: 16,
            ..Self::llama()
        }
    }

    /// The same model with weights stored as `dtype`.
    pub fn with_dtype(mut self, dtype: GgmlType) -> Self {
        self.dtype = dtype;
        self
    }

    /// Writes the model to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut w = GgufWriter::new();
        let a = self.arch;
        let u = |v: usize| Value::U32(v as u32);
        w.metadata("general.architecture", Value::String(a.into()))
            .metadata("general.name", Value::String(format!("tiny-{a}")))
            .metadata("general.license", Value::String("apache-2.0".into()))
            .metadata(format!("{a}.context_length"), u(self.context_length))
            .metadata(format!("{a}.embedding_length"), u(self.d_model))
            .metadata(format!("{a}.block_count"), u(self.n_layers))
            .metadata(format!("{a}.feed_forward_length"), u(self.ffn_dim))
            .metadata(format!("{a}.attention.head_count"), u(self.n_heads))
            .metadata(format!("{a}.attention.head_count_kv"), u(self.n_kv_heads))
            .metadata(format!("{a}.attention.key_length"), u(self.head_dim))
            .metadata(format!("{a}.attention.value_length"), u(self.head_dim))
            .metadata(
                format!("{a}.attention.layer_norm_rms_epsilon"),
                Value::F32(1e-6),
            )
            .metadata(format!("{a}.rope.freq_base"), Value::F32(10_000.0));
        if a == "gemma3" {
            w.metadata(
                format!("{a}.attention.sliding_window"),
                u(self.sliding_window),
            );
        }
        add_byte_vocab(&mut w);
        let mut rng = Rng(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let (d, q, kv, ff) = (
            self.d_model,
            self.n_heads * self.head_dim,
            self.n_kv_heads * self.head_dim,
            self.ffn_dim,
        );
        let mut tensors = vec![
            self.matrix(&mut rng, "token_embd.weight", VOCAB, d, 1.0)?,
            norm(&mut rng, "output_norm.weight", d),
        ];
        if a != "gemma3" {
            // Untied head (gemma3 always ties): logits of order one, a spread-out distribution.
            tensors.push(self.matrix(
                &mut rng,
                "output.weight",
                VOCAB,
                d,
                1.0 / (d as f32).sqrt(),
            )?);
        }
        for i in 0..self.n_layers {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            let scale = 1.0 / (d as f32).sqrt();
            tensors.push(norm(&mut rng, &n("attn_norm"), d));
            tensors.push(self.matrix(&mut rng, &n("attn_q"), q, d, scale)?);
            tensors.push(self.matrix(&mut rng, &n("attn_k"), kv, d, scale)?);
            tensors.push(self.matrix(&mut rng, &n("attn_v"), kv, d, scale)?);
            tensors.push(self.matrix(
                &mut rng,
                &n("attn_output"),
                d,
                q,
                1.0 / (q as f32).sqrt(),
            )?);
            tensors.push(norm(&mut rng, &n("ffn_norm"), d));
            tensors.push(self.matrix(&mut rng, &n("ffn_gate"), ff, d, scale)?);
            tensors.push(self.matrix(&mut rng, &n("ffn_up"), ff, d, scale)?);
            tensors.push(self.matrix(&mut rng, &n("ffn_down"), d, ff, 1.0 / (ff as f32).sqrt())?);
            if a == "gemma3" {
                tensors.push(norm(&mut rng, &n("attn_q_norm"), self.head_dim));
                tensors.push(norm(&mut rng, &n("attn_k_norm"), self.head_dim));
                tensors.push(norm(&mut rng, &n("post_attention_norm"), d));
                tensors.push(norm(&mut rng, &n("post_ffw_norm"), d));
            }
        }
        for t in tensors {
            w.tensor(t);
        }
        Ok(w.write(path)?)
    }

    fn matrix(
        &self,
        rng: &mut Rng,
        name: &str,
        rows: usize,
        cols: usize,
        scale: f32,
    ) -> Result<TensorToWrite> {
        let values: Vec<f32> = (0..rows * cols).map(|_| rng.normal() * scale).collect();
        let fits = cols.is_multiple_of(self.dtype.block_len());
        let data = quantize(self.dtype, &values)
            .filter(|_| fits)
            .ok_or_else(|| Error::BadTensor {
                path: Default::default(),
                tensor: name.to_string(),
                what: format!("cannot write {} with rows of {cols}", self.dtype),
            })?;
        Ok(TensorToWrite {
            name: name.into(),
            dims: vec![cols as u64, rows as u64],
            dtype: self.dtype,
            data,
        })
    }
}

/// Token count of the tiny vocabulary: 256 bytes plus `<|endoftext|>`.
pub const VOCAB: usize = 257;

fn norm(rng: &mut Rng, name: &str, len: usize) -> TensorToWrite {
    let data = (0..len)
        .flat_map(|_| (1.0 + 0.1 * rng.normal()).to_le_bytes())
        .collect();
    TensorToWrite {
        name: name.into(),
        dims: vec![len as u64],
        dtype: GgmlType::F32,
        data,
    }
}

/// GPT-2's byte-to-character mapping, the vocabulary of a byte-level BPE.
fn byte_tokens() -> Vec<String> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut extra = 0;
    (0..256u32)
        .map(|b| {
            let c = if printable(b) {
                b
            } else {
                extra += 1;
                255 + extra
            };
            char::from_u32(c).map(String::from).unwrap_or_default()
        })
        .collect()
}

fn add_byte_vocab(w: &mut GgufWriter) {
    let mut tokens: Vec<Value> = byte_tokens().into_iter().map(Value::String).collect();
    tokens.push(Value::String("<|endoftext|>".into()));
    let mut types = vec![Value::I32(1); 256];
    types.push(Value::I32(3));
    w.metadata("tokenizer.ggml.model", Value::String("gpt2".into()))
        .metadata("tokenizer.ggml.pre", Value::String("gpt-2".into()))
        .metadata("tokenizer.ggml.tokens", Value::Array(tokens))
        .metadata("tokenizer.ggml.token_type", Value::Array(types))
        .metadata(
            "tokenizer.ggml.merges",
            Value::Array(vec![Value::String("Ġ t".into())]),
        )
        .metadata("tokenizer.ggml.bos_token_id", Value::U32(256))
        .metadata("tokenizer.ggml.eos_token_id", Value::U32(256))
        .metadata("tokenizer.ggml.add_bos_token", Value::Bool(false))
        .metadata(
            "tokenizer.chat_template",
            Value::String(
                "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}\
                 {% if add_generation_prompt %}<|assistant|>{% endif %}"
                    .into(),
            ),
        );
}

/// Encodes `values` as `dtype` blocks, or `None` when the length does not fit its blocks.
pub fn quantize(dtype: GgmlType, values: &[f32]) -> Option<Vec<u8>> {
    fn enc<T: Block>(values: &[f32]) -> Option<Vec<u8>> {
        if !values.len().is_multiple_of(T::BLCK_SIZE) {
            return None;
        }
        let mut blocks = vec![T::zeros(); values.len() / T::BLCK_SIZE];
        T::from_float(values, &mut blocks);
        let n = std::mem::size_of_val(blocks.as_slice());
        // SAFETY: the blocks are plain `repr(C)` data; we copy out their bytes.
        let bytes = unsafe { std::slice::from_raw_parts(blocks.as_ptr() as *const u8, n) };
        Some(bytes.to_vec())
    }
    match dtype {
        GgmlType::F32 => Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        GgmlType::F16 => Some(
            values
                .iter()
                .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                .collect(),
        ),
        GgmlType::BF16 => Some(
            values
                .iter()
                .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
                .collect(),
        ),
        GgmlType::Q4_0 => enc::<BlockQ4_0>(values),
        GgmlType::Q4_1 => enc::<BlockQ4_1>(values),
        GgmlType::Q5_0 => enc::<BlockQ5_0>(values),
        GgmlType::Q5_1 => enc::<BlockQ5_1>(values),
        GgmlType::Q8_0 => enc::<BlockQ8_0>(values),
        GgmlType::Q2_K => enc::<BlockQ2K>(values),
        GgmlType::Q3_K => enc::<BlockQ3K>(values),
        GgmlType::Q4_K => enc::<BlockQ4K>(values),
        GgmlType::Q5_K => enc::<BlockQ5K>(values),
        GgmlType::Q6_K => enc::<BlockQ6K>(values),
        GgmlType::Q8_K => enc::<BlockQ8K>(values),
        _ => None,
    }
}

/// xorshift64* with a Box-Muller normal: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn uniform(&mut self) -> f32 {
        ((self.next() >> 40) as f32 + 0.5) / (1u64 << 24) as f32
    }

    fn normal(&mut self) -> f32 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }
}
