//! The perplexity [`Scorer`] behind `hearth data perplexity`: hearth-engine's
//! llama-perplexity protocol on each document, so a document's score equals
//! `hearth perplexity --ctx C` on the same text.

use std::sync::Mutex;

use hearth_data::Scorer;
use hearth_engine::{perplexity, PerplexityConfig};

use crate::commands::Loaded;

/// Fewest tokens a document needs to be scored (a chunk of `ctx` tokens scores its second
/// half, so shorter texts say too little).
pub const MIN_TOKENS: usize = 16;

/// Scores documents with a loaded model, one at a time (the forward pass is itself
/// parallel).
pub struct EngineScorer {
    loaded: Mutex<Loaded>,
    ctx: usize,
}

impl EngineScorer {
    /// A scorer over `loaded` with chunks of at most `ctx` tokens.
    pub fn new(loaded: Loaded, ctx: usize) -> Self {
        EngineScorer {
            loaded: Mutex::new(loaded),
            ctx,
        }
    }

    /// The chunk size used for a document of `n_tokens` tokens: `ctx`, or the whole
    /// document (rounded down to even) when it is shorter; `None` below [`MIN_TOKENS`].
    pub fn ctx_for(&self, n_tokens: usize) -> Option<usize> {
        (n_tokens >= MIN_TOKENS).then(|| self.ctx.min(n_tokens & !1))
    }
}

impl Scorer for EngineScorer {
    fn perplexity(&self, texts: &[&str]) -> hearth_data::Result<Vec<f32>> {
        let m = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let bos = if m.tokenizer.add_bos() {
            m.tokenizer.bos()
        } else {
            None
        };
        let mut out = Vec::with_capacity(texts.len());
        for text in texts {
            let tokens = m
                .tokenizer
                .encode(text, true, false)
                .map_err(|e| hearth_data::Error::Scorer(e.to_string()))?;
            let Some(ctx) = self.ctx_for(tokens.len()) else {
                out.push(f32::NAN);
                continue;
            };
            let cfg = PerplexityConfig { ctx, bos };
            let report = perplexity(&m.model, &tokens, &cfg, |_, _, _| {})
                .map_err(|e| hearth_data::Error::Scorer(e.to_string()))?;
            out.push(report.ppl as f32);
        }
        Ok(out)
    }
}
