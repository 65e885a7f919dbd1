//! The decoder-only transformer that runs every architecture in `arch/`.

use std::path::Path;
use std::sync::Arc;

use hearth_gguf::GgufFile;
use hearth_kernels::{self as k, AttentionShape};
use rayon::prelude::*;

use half::f16;

use crate::kv_cache::{KvCache, StepKv};
use crate::linear::{self, Linear};
use crate::lora::{ModelLora, Proj, RowLoras};
use crate::{arch, Activation, Error, ModelConfig, QMatrix, Result};

/// Most positions one internal forward step processes; longer inputs are split.
pub const MAX_CHUNK: usize = 512;

struct Block {
    attn_norm: Vec<f32>,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    post_attn_norm: Option<Vec<f32>>,
    ffn_norm: Vec<f32>,
    gate: Linear,
    up: Linear,
    down: Linear,
    post_ffn_norm: Option<Vec<f32>>,
}

/// A loaded model: config plus weights in the memory map.
pub struct Transformer {
    config: ModelConfig,
    file: Arc<GgufFile>,
    embed: QMatrix,
    blocks: Vec<Block>,
    out_norm: Vec<f32>,
    output: QMatrix,
}

impl std::fmt::Debug for Transformer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transformer")
            .field("config", &self.config)
            .finish()
    }
}

struct Loader<'a> {
    file: &'a Arc<GgufFile>,
}

impl Loader<'_> {
    fn missing(&self, name: &str) -> Error {
        Error::MissingTensor {
            path: self.file.path().to_path_buf(),
            tensor: name.to_string(),
        }
    }

    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<QMatrix> {
        let info = self.file.tensor(name).ok_or_else(|| self.missing(name))?;
        QMatrix::new(self.file, info, rows, cols)
    }

    /// A block's projection: dense, or the low-rank pair that replaces it.
    fn linear(&self, name: &str, rows: usize, cols: usize) -> Result<Linear> {
        Linear::load(self.file, name, rows, cols)
    }

    /// A small vector (norm weights), dequantized once: these are a few KB.
    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        let info = self.file.tensor(name).ok_or_else(|| self.missing(name))?;
        let m = QMatrix::new(self.file, info, 1, len)?;
        let mut v = vec![0.0; len];
        m.row(0, &mut v);
        Ok(v)
    }
}

impl Transformer {
    /// Opens a GGUF model file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_gguf(Arc::new(GgufFile::open(path)?))
    }

    /// Builds the model over an already opened file.
    pub fn from_gguf(file: Arc<GgufFile>) -> Result<Self> {
        let config = arch::config_from_gguf(&file)?;
        let ld = Loader { file: &file };
        let (d, q, kv, ff) = (
            config.d_model,
            config.q_dim(),
            config.kv_dim(),
            config.ffn_dim,
        );
        let hd = config.head_dim;
        let embed = ld.matrix("token_embd.weight", config.vocab_size, d)?;
        let output = match file.tensor("output.weight") {
            Some(_) => ld.matrix("output.weight", config.vocab_size, d)?,
            None => embed.clone(),
        };
        let mut blocks = Vec::with_capacity(config.n_layers());
        for i in 0..config.n_layers() {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            let opt = |s: &str, len: usize, on: bool| -> Result<Option<Vec<f32>>> {
                if on {
                    ld.vector(&n(s), len).map(Some)
                } else {
                    Ok(None)
                }
            };
            blocks.push(Block {
                attn_norm: ld.vector(&n("attn_norm"), d)?,
                wq: ld.linear(&n("attn_q"), q, d)?,
                wk: ld.linear(&n("attn_k"), kv, d)?,
                wv: ld.linear(&n("attn_v"), kv, d)?,
                wo: ld.linear(&n("attn_output"), d, q)?,
                q_norm: opt("attn_q_norm", hd, config.qk_norm)?,
                k_norm: opt("attn_k_norm", hd, config.qk_norm)?,
                post_attn_norm: opt("post_attention_norm", d, config.post_norms)?,
                ffn_norm: ld.vector(&n("ffn_norm"), d)?,
                gate: ld.linear(&n("ffn_gate"), ff, d)?,
                up: ld.linear(&n("ffn_up"), ff, d)?,
                down: ld.linear(&n("ffn_down"), d, ff)?,
                post_ffn_norm: opt("post_ffw_norm", d, config.post_norms)?,
            });
        }
        let out_norm = ld.vector("output_norm.weight", d)?;
        Ok(Self {
            config,
            file,
            embed,
            blocks,
            out_norm,
            output,
        })
    }

    /// The model's configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The GGUF file the weights live in.
    pub fn gguf(&self) -> &Arc<GgufFile> {
        &self.file
    }

    /// Bytes of weights a decode step reads: every matrix of every block, the norms,
    /// and the output head (the embedding lookup reads one row, counted as nothing).
    pub fn weight_bytes_per_token(&self) -> u64 {
        let blocks: u64 = self
            .blocks
            .iter()
            .map(|b| {
                [&b.wq, &b.wk, &b.wv, &b.wo, &b.gate, &b.up, &b.down]
                    .iter()
                    .map(|m| m.n_bytes())
                    .sum::<u64>()
            })
            .sum();
        blocks + self.output.n_bytes()
    }

    /// A fresh, empty KV cache for one sequence.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(&self.config)
    }

    /// Runs `tokens` after what `cache` holds, and returns the logits (vocab-sized
    /// rows) after each position listed in `want` (indices into `tokens`).
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache, want: &[usize]) -> Result<Vec<f32>> {
        self.forward_with(tokens, cache, want, None)
    }

    /// [`forward`](Self::forward) with a LoRA adapter on every position (`None`: the
    /// base model). A cache must hold positions computed with the same adapter.
    pub fn forward_with(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        want: &[usize],
        lora: Option<&ModelLora>,
    ) -> Result<Vec<f32>> {
        in_pool(|| {
            let hidden = self.hidden_with(tokens, cache, want, lora)?;
            Ok(self.logits_with(&hidden, &RowLoras::single(lora, 0..want.len())))
        })
    }

    /// Like [`forward`](Self::forward) but returns final normalised hidden states
    /// (`d_model` per wanted position); [`logits`](Self::logits) finishes the job,
    /// which lets callers bound the memory of many logit rows.
    pub fn forward_hidden(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        want: &[usize],
    ) -> Result<Vec<f32>> {
        in_pool(|| self.hidden_with(tokens, cache, want, None))
    }

    fn hidden_with(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        want: &[usize],
        lora: Option<&ModelLora>,
    ) -> Result<Vec<f32>> {
        let d = self.config.d_model;
        let needed = cache.len() + tokens.len();
        if needed > self.config.context_length {
            return Err(Error::ContextLengthExceeded {
                needed,
                max: self.config.context_length,
            });
        }
        self.check_tokens(tokens)?;
        let mut out = vec![0.0; want.len() * d];
        for (c, chunk) in tokens.chunks(MAX_CHUNK).enumerate() {
            let base = c * MAX_CHUNK;
            let x = self.run_chunk(chunk, cache, &RowLoras::single(lora, 0..chunk.len()));
            for (w, &idx) in want.iter().enumerate() {
                if idx >= base && idx < base + chunk.len() {
                    let row = &x[(idx - base) * d..(idx - base + 1) * d];
                    self.final_norm(row, &mut out[w * d..(w + 1) * d]);
                }
            }
        }
        Ok(out)
    }

    /// The residual stream of a fresh sequence after each of `depths` blocks (1 to the
    /// number of blocks), every row normalised as the last block's output is: one vector
    /// of `tokens.len() * d_model` values per depth. Features for probes, which often read
    /// a middle block better than the last; blocks deeper than the deepest asked for are
    /// not run.
    pub fn hidden_at_depths(&self, tokens: &[u32], depths: &[usize]) -> Result<Vec<Vec<f32>>> {
        let layers = self.blocks.len();
        if let Some(&depth) = depths.iter().find(|&&d| d == 0 || d > layers) {
            return Err(Error::BadDepth { depth, layers });
        }
        if tokens.len() > self.config.context_length {
            return Err(Error::ContextLengthExceeded {
                needed: tokens.len(),
                max: self.config.context_length,
            });
        }
        self.check_tokens(tokens)?;
        let d = self.config.d_model;
        let deepest = depths.iter().copied().max().unwrap_or(0);
        let none = RowLoras::none();
        in_pool(|| {
            let mut cache = self.new_cache();
            let mut out = vec![Vec::with_capacity(tokens.len() * d); depths.len()];
            let mut normed = vec![0.0; d];
            for chunk in tokens.chunks(MAX_CHUNK) {
                let n = chunk.len();
                let mut x = self.embed_rows(chunk, &none);
                let start = cache.len();
                let mut h = vec![0.0; n * d];
                for l in 0..deepest {
                    self.attn_input(l, &x, &mut h);
                    let attn = self.attention(l, &h, start, &mut cache, &none);
                    self.finish_layer(l, attn, &mut x, &mut h, &none);
                    for (k, _) in depths.iter().enumerate().filter(|(_, &at)| at == l + 1) {
                        for row in x.chunks_exact(d) {
                            self.final_norm(row, &mut normed);
                            out[k].extend_from_slice(&normed);
                        }
                    }
                }
                cache.advance(n);
            }
            Ok(out)
        })
    }

    /// Logits for normalised hidden states (`d_model` values each).
    pub fn logits(&self, hidden: &[f32]) -> Vec<f32> {
        self.logits_with(hidden, &RowLoras::none())
    }

    /// [`logits`](Self::logits) with the output-head deltas of each row's adapter.
    pub(crate) fn logits_with(&self, hidden: &[f32], lora: &RowLoras) -> Vec<f32> {
        let n = hidden.len() / self.config.d_model;
        let mut logits = vec![0.0; n * self.config.vocab_size];
        self.output.matmul(hidden, &mut logits);
        lora.add(ModelLora::output, hidden, &mut logits);
        logits
    }

    /// Fails on a token id outside the vocabulary.
    pub(crate) fn check_tokens(&self, tokens: &[u32]) -> Result<()> {
        match tokens
            .iter()
            .find(|&&t| t as usize >= self.config.vocab_size)
        {
            Some(&id) => Err(Error::TokenOutOfRange {
                id,
                vocab_size: self.config.vocab_size,
            }),
            None => Ok(()),
        }
    }

    /// The final RMS norm of one hidden row.
    pub(crate) fn final_norm(&self, row: &[f32], out: &mut [f32]) {
        k::rms_norm(row, &self.out_norm, self.config.rms_eps, out);
    }

    /// Embeddings of `tokens` (`d_model` each), scaled as the architecture asks.
    pub(crate) fn embed_rows(&self, tokens: &[u32], lora: &RowLoras) -> Vec<f32> {
        let d = self.config.d_model;
        let mut x = vec![0.0; tokens.len() * d];
        for (row, &t) in x.chunks_exact_mut(d).zip(tokens) {
            self.embed.row(t as usize, row);
        }
        // The delta changes the table, so it comes before the architecture's scaling.
        lora.add_embedding(tokens, &mut x);
        if let Some(s) = self.config.embed_scale {
            x.iter_mut().for_each(|v| *v *= s);
        }
        x
    }

    /// Layer `l`'s attention input: the residual stream `x`, normalised, into `h`.
    pub(crate) fn attn_input(&self, l: usize, x: &[f32], h: &mut [f32]) {
        norm_rows(x, &self.blocks[l].attn_norm, self.config.rms_eps, h);
    }

    /// Head layout of every attention layer.
    pub(crate) fn attn_shape(&self) -> AttentionShape {
        let cfg = &self.config;
        AttentionShape {
            n_heads: cfg.n_heads,
            n_kv_heads: cfg.n_kv_heads,
            head_dim: cfg.head_dim,
            scale: cfg.attn_scale,
        }
    }

    /// Layer `l` after attention: output projection (and post-norm) added to `x`,
    /// then the feed-forward block added to `x`; `h` is scratch of `x`'s size.
    pub(crate) fn finish_layer(
        &self,
        l: usize,
        attn: Vec<f32>,
        x: &mut [f32],
        h: &mut [f32],
        lora: &RowLoras,
    ) {
        let cfg = &self.config;
        let blk = &self.blocks[l];
        let n = x.len() / cfg.d_model;
        let mut o = vec![0.0; n * cfg.d_model];
        blk.wo.matmul(&attn, &mut o);
        lora.add(|m| m.proj(l, Proj::O), &attn, &mut o);
        drop(attn);
        if let Some(w) = &blk.post_attn_norm {
            norm_rows_in_place(&mut o, w, cfg.rms_eps);
        }
        add(x, &o);
        norm_rows(x, &blk.ffn_norm, cfg.rms_eps, h);
        let mut g = vec![0.0; n * cfg.ffn_dim];
        let mut u = vec![0.0; n * cfg.ffn_dim];
        linear::matmul_many(&mut [(&blk.gate, &mut g[..]), (&blk.up, &mut u[..])], h);
        lora.add(|m| m.proj(l, Proj::Gate), h, &mut g);
        lora.add(|m| m.proj(l, Proj::Up), h, &mut u);
        match cfg.activation {
            Activation::Silu => k::silu_mul(&mut g, &u),
            Activation::GeluTanh => k::gelu_tanh_mul(&mut g, &u),
        }
        blk.down.matmul(&g, &mut o);
        lora.add(|m| m.proj(l, Proj::Down), &g, &mut o);
        if let Some(w) = &blk.post_ffn_norm {
            norm_rows_in_place(&mut o, w, cfg.rms_eps);
        }
        add(x, &o);
    }

    fn run_chunk(&self, tokens: &[u32], cache: &mut KvCache, lora: &RowLoras) -> Vec<f32> {
        let (n, d) = (tokens.len(), self.config.d_model);
        let mut x = self.embed_rows(tokens, lora);
        let start = cache.len();
        let mut h = vec![0.0; n * d];
        for l in 0..self.blocks.len() {
            self.attn_input(l, &x, &mut h);
            let attn = self.attention(l, &h, start, cache, lora);
            self.finish_layer(l, attn, &mut x, &mut h, lora);
        }
        cache.advance(n);
        x
    }

    /// Layer `l`'s queries, keys and values for the normalised rows `h`: projected,
    /// head-normalised, rotated to position `pos(i)` for row `i`; keys and values
    /// rounded to half precision for the cache.
    pub(crate) fn project_qkv(
        &self,
        l: usize,
        h: &[f32],
        pos: impl Fn(usize) -> usize + Sync,
        lora: &RowLoras,
    ) -> Qkv {
        let cfg = &self.config;
        let blk = &self.blocks[l];
        let spec = &cfg.layers[l];
        let n = h.len() / cfg.d_model;
        let (qd, kvd, hd) = (cfg.q_dim(), cfg.kv_dim(), cfg.head_dim);
        let mut q = vec![0.0; n * qd];
        let mut kk = vec![0.0; n * kvd];
        let mut v = vec![0.0; n * kvd];
        linear::matmul_many(
            &mut [
                (&blk.wq, &mut q[..]),
                (&blk.wk, &mut kk[..]),
                (&blk.wv, &mut v[..]),
            ],
            h,
        );
        lora.add(|m| m.proj(l, Proj::Q), h, &mut q);
        lora.add(|m| m.proj(l, Proj::K), h, &mut kk);
        lora.add(|m| m.proj(l, Proj::V), h, &mut v);
        let rope = |rows: &mut [f32], width: usize, norm: &Option<Vec<f32>>| {
            rows.par_chunks_mut(width).enumerate().for_each(|(i, row)| {
                if let Some(w) = norm {
                    row.chunks_exact_mut(hd)
                        .for_each(|head| k::rms_norm_in_place(head, w, cfg.rms_eps));
                }
                let p = pos(i) as f32 * spec.rope_pos_scale;
                k::rope_in_place(row, hd, cfg.rope_dim, p, spec.rope_base, cfg.rope_style);
            });
        };
        rope(&mut q, qd, &blk.q_norm);
        rope(&mut kk, kvd, &blk.k_norm);
        Qkv {
            q,
            k: kk.iter().map(|&x| f16::from_f32(x)).collect(),
            v: v.iter().map(|&x| f16::from_f32(x)).collect(),
        }
    }

    /// Projects, normalises, rotates and caches q/k/v, then attends; returns the
    /// concatenated heads (`n * q_dim`).
    fn attention(
        &self,
        l: usize,
        h: &[f32],
        start: usize,
        cache: &mut KvCache,
        lora: &RowLoras,
    ) -> Vec<f32> {
        let cfg = &self.config;
        let spec = &cfg.layers[l];
        let n = h.len() / cfg.d_model;
        let qd = cfg.q_dim();
        let Qkv { q, k: kh, v: vh } = self.project_qkv(l, h, |i| start + i, lora);
        let layer = StepKv {
            cached: &cache.layers[l],
            start,
            k: &kh,
            v: &vh,
        };
        let shape = self.attn_shape();
        let mut out = vec![0.0; n * qd];
        out.par_chunks_mut(qd)
            .zip(q.par_chunks(qd))
            .enumerate()
            .for_each_init(Vec::new, |scores, (i, (o, qi))| {
                let pos = start + i;
                let lo = spec.window.map_or(0, |w| (pos + 1).saturating_sub(w));
                k::attend(qi, &layer, lo, pos, &shape, scores, o);
            });
        cache.layers[l].store(start, &kh, &vh);
        out
    }
}

/// Runs `f` on a thread of rayon's pool, the caller waiting, unless it already runs on
/// one. A forward pass has several parallel loops per layer; started from a thread
/// outside the pool, each would be handed over to the pool and waited for (two context
/// switches each, some 150 per decoded token); started from a pool thread, they split
/// among the pool's threads directly.
pub(crate) fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    let mut out = None;
    rayon::scope(|_| out = Some(f()));
    match out {
        Some(r) => r,
        None => unreachable!("rayon::scope returned before running its closure"),
    }
}

/// One layer's projections for a run of rows.
pub(crate) struct Qkv {
    /// Queries, `q_dim` per row.
    pub q: Vec<f32>,
    /// Keys at half precision, `kv_dim` per row.
    pub k: Vec<f16>,
    /// Values at half precision, `kv_dim` per row.
    pub v: Vec<f16>,
}

fn norm_rows(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let d = w.len();
    out.par_chunks_mut(d)
        .zip(x.par_chunks(d))
        .for_each(|(o, r)| k::rms_norm(r, w, eps, o));
}

fn norm_rows_in_place(x: &mut [f32], w: &[f32], eps: f32) {
    x.par_chunks_mut(w.len())
        .for_each(|r| k::rms_norm_in_place(r, w, eps));
}

fn add(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}
