//! Perplexity by llama.cpp's `llama-perplexity` protocol, so numbers compare directly.

use hearth_model::Transformer;

use crate::{Error, Result};

/// Logit rows computed at once: bounds memory to `LOGIT_ROWS * vocab` floats.
const LOGIT_ROWS: usize = 32;

/// Settings of a perplexity run.
#[derive(Debug, Clone)]
pub struct PerplexityConfig {
    /// Tokens per chunk (`n_ctx`).
    pub ctx: usize,
    /// Put BOS at the start of each chunk (when the model adds BOS).
    pub bos: Option<u32>,
}

/// Outcome of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct PerplexityReport {
    /// Tokens in the whole text.
    pub n_tokens: usize,
    /// Chunks evaluated.
    pub n_chunks: usize,
    /// Predictions scored.
    pub scored_tokens: usize,
    /// Mean negative log-likelihood (nats).
    pub mean_nll: f64,
    /// `exp(mean_nll)`.
    pub ppl: f64,
}

/// Scores `tokens` (the whole text, BOS already added when the model adds it) in
/// non-overlapping chunks of `ctx` tokens; within each chunk, the predictions of
/// positions `ctx/2+1 .. ctx-1` count. `progress(chunk, running_ppl)` is called
/// after each chunk.
pub fn perplexity(
    model: &Transformer,
    tokens: &[u32],
    cfg: &PerplexityConfig,
    mut progress: impl FnMut(usize, usize, f64),
) -> Result<PerplexityReport> {
    let ctx = cfg.ctx;
    if ctx < 4 {
        return Err(Error::InvalidArgument(format!(
            "perplexity context {ctx} is too small (4 or more)"
        )));
    }
    let n_chunks = tokens.len() / ctx;
    if n_chunks == 0 {
        return Err(Error::InvalidArgument(format!(
            "the text has {} tokens, fewer than one chunk of {ctx}: use a smaller --ctx or a longer text",
            tokens.len()
        )));
    }
    let vocab = model.config().vocab_size;
    let first = ctx / 2;
    let (mut nll, mut count) = (0f64, 0usize);
    let mut cache = model.new_cache();
    for c in 0..n_chunks {
        let mut chunk = tokens[c * ctx..(c + 1) * ctx].to_vec();
        if let Some(bos) = cfg.bos {
            chunk[0] = bos;
        }
        cache.clear();
        let want: Vec<usize> = (first..ctx - 1).collect();
        let hidden = model.forward_hidden(&chunk, &mut cache, &want)?;
        let d = model.config().d_model;
        for (rows, positions) in hidden.chunks(LOGIT_ROWS * d).zip(want.chunks(LOGIT_ROWS)) {
            let logits = model.logits(rows);
            for (row, &j) in logits.chunks_exact(vocab).zip(positions) {
                nll -= log_softmax_at(row, chunk[j + 1] as usize);
                count += 1;
            }
        }
        progress(c + 1, n_chunks, (nll / count as f64).exp());
    }
    let mean_nll = nll / count as f64;
    Ok(PerplexityReport {
        n_tokens: tokens.len(),
        n_chunks,
        scored_tokens: count,
        mean_nll,
        ppl: mean_nll.exp(),
    })
}

/// `log softmax(row)[id]`, accumulated in f64.
pub fn log_softmax_at(row: &[f32], id: usize) -> f64 {
    let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
    row[id] as f64 - max - sum.ln()
}
