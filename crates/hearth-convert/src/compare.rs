//! Quality of a converted model against its source: size, compression, perplexity of
//! both by llama-perplexity's protocol (as `hearth_engine::perplexity` computes it),
//! and how often their most likely next token agrees.

use std::path::Path;
use std::sync::Arc;

use hearth_engine::log_softmax_at;
use hearth_gguf::GgufFile;
use hearth_model::Transformer;
use hearth_tokenizer::Tokenizer;
use serde::Serialize;

use crate::{Error, Result};

/// Logit rows computed at once, bounding memory to this many vocabulary rows.
const LOGIT_ROWS: usize = 32;

/// Settings of a comparison.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    /// Tokens per chunk (`n_ctx` of llama-perplexity).
    pub ctx: usize,
    /// Score only the first chunks covering this many tokens (`None`: the whole text).
    pub max_tokens: Option<usize>,
}

/// One model's side of a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct ModelScore {
    /// The file.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Perplexity.
    pub ppl: f64,
    /// Mean negative log-likelihood (nats).
    pub mean_nll: f64,
}

/// Outcome of [`compare`].
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    /// The reference (source) model.
    pub reference: ModelScore,
    /// The model judged against it.
    pub candidate: ModelScore,
    /// `reference.bytes / candidate.bytes`.
    pub compression_ratio: f64,
    /// `candidate.ppl - reference.ppl`.
    pub ppl_delta: f64,
    /// The delta as a percentage of the reference perplexity.
    pub ppl_delta_pct: f64,
    /// Fraction of scored positions where both models' most likely token is the same.
    pub top1_agreement: f64,
    /// Positions scored.
    pub scored_tokens: usize,
    /// Tokens per chunk.
    pub ctx: usize,
    /// Chunks evaluated.
    pub chunks: usize,
}

struct Side {
    model: Transformer,
    bytes: u64,
    path: String,
}

fn open(path: &Path) -> Result<(Side, Tokenizer)> {
    let file = Arc::new(GgufFile::open(path)?);
    let tok = Tokenizer::from_gguf(&file)?;
    let bytes = file.file_len();
    Ok((
        Side {
            model: Transformer::from_gguf(file)?,
            bytes,
            path: path.display().to_string(),
        },
        tok,
    ))
}

/// Scores `reference` and `candidate` (GGUF files) on `text`, chunk by chunk, in
/// lockstep.
pub fn compare(
    reference: &Path,
    candidate: &Path,
    text: &str,
    cfg: &CompareConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<CompareReport> {
    let (a, tok) = open(reference)?;
    let (b, _) = open(candidate)?;
    let vocab = a.model.config().vocab_size;
    if b.model.config().vocab_size != vocab {
        return Err(Error::InvalidArgument(format!(
            "{} has {} tokens and {} has {vocab}: not the same vocabulary",
            b.path,
            b.model.config().vocab_size,
            a.path
        )));
    }
    let ctx = cfg.ctx;
    if ctx < 4 {
        return Err(Error::InvalidArgument(format!(
            "context {ctx} is too small (4 or more)"
        )));
    }
    let tokens = tok.encode(text, true, false)?;
    let usable = cfg.max_tokens.map_or(tokens.len(), |m| m.min(tokens.len()));
    let n_chunks = usable / ctx;
    if n_chunks == 0 {
        return Err(Error::InvalidArgument(format!(
            "{usable} tokens are fewer than one chunk of {ctx}: use a smaller --ctx or more text"
        )));
    }
    let bos = if tok.add_bos() { tok.bos() } else { None };
    let first = ctx / 2;
    let (mut nll_a, mut nll_b, mut agree, mut count) = (0f64, 0f64, 0usize, 0usize);
    let (mut ca, mut cb) = (a.model.new_cache(), b.model.new_cache());
    let want: Vec<usize> = (first..ctx - 1).collect();
    for c in 0..n_chunks {
        let mut chunk = tokens[c * ctx..(c + 1) * ctx].to_vec();
        if let Some(bos) = bos {
            chunk[0] = bos;
        }
        ca.clear();
        cb.clear();
        let ha = a.model.forward_hidden(&chunk, &mut ca, &want)?;
        let hb = b.model.forward_hidden(&chunk, &mut cb, &want)?;
        let (da, db) = (a.model.config().d_model, b.model.config().d_model);
        for (k, positions) in want.chunks(LOGIT_ROWS).enumerate() {
            let ra = &ha[k * LOGIT_ROWS * da..(k * LOGIT_ROWS + positions.len()) * da];
            let rb = &hb[k * LOGIT_ROWS * db..(k * LOGIT_ROWS + positions.len()) * db];
            let (la, lb) = (a.model.logits(ra), b.model.logits(rb));
            for ((rowa, rowb), &j) in la
                .chunks_exact(vocab)
                .zip(lb.chunks_exact(vocab))
                .zip(positions)
            {
                let next = chunk[j + 1] as usize;
                nll_a -= log_softmax_at(rowa, next);
                nll_b -= log_softmax_at(rowb, next);
                agree += usize::from(argmax(rowa) == argmax(rowb));
                count += 1;
            }
        }
        progress(c + 1, n_chunks);
    }
    let score = |s: &Side, nll: f64| ModelScore {
        path: s.path.clone(),
        bytes: s.bytes,
        ppl: (nll / count as f64).exp(),
        mean_nll: nll / count as f64,
    };
    let (ra, rb) = (score(&a, nll_a), score(&b, nll_b));
    Ok(CompareReport {
        compression_ratio: ra.bytes as f64 / rb.bytes.max(1) as f64,
        ppl_delta: rb.ppl - ra.ppl,
        ppl_delta_pct: (rb.ppl - ra.ppl) / ra.ppl * 100.0,
        top1_agreement: agree as f64 / count as f64,
        scored_tokens: count,
        ctx,
        chunks: n_chunks,
        reference: ra,
        candidate: rb,
    })
}

fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}
