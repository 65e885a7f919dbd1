//! Throughput measurements of a model: prefill and decode tokens per second, and the
//! machine's memory read bandwidth (decode on CPU is bound by it). Used by
//! `hearth bench`, which puts the peer's figures beside these.

use std::time::Instant;

use hearth_model::Transformer;
use rayon::prelude::*;

use crate::Result;

/// Deterministic pseudo-random prompt ids, avoiding the first `skip` (special) ids.
pub fn bench_tokens(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut s = seed | 1;
    let span = vocab.saturating_sub(1000).max(1) as u64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (1000.min(vocab as u64 - 1) + s % span) as u32
        })
        .collect()
}

/// Tokens per second evaluating `n` prompt tokens from an empty cache.
pub fn prefill_tok_s(model: &Transformer, n: usize) -> Result<f64> {
    let tokens = bench_tokens(n, model.config().vocab_size, 1);
    let mut cache = model.new_cache();
    let t = Instant::now();
    model.forward(&tokens, &mut cache, &[n - 1])?;
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// Tokens per second generating `n` tokens one at a time after a short prompt
/// (sampling excluded: the next input is fixed, as in llama-bench's `tg`).
pub fn decode_tok_s(model: &Transformer, n: usize) -> Result<f64> {
    let vocab = model.config().vocab_size;
    let prompt = bench_tokens(8, vocab, 2);
    let mut cache = model.new_cache();
    model.forward(&prompt, &mut cache, &[prompt.len() - 1])?;
    let next = bench_tokens(n, vocab, 3);
    let t = Instant::now();
    for &id in &next {
        model.forward(&[id], &mut cache, &[0])?;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// Best of `repeats` full reads of a 512 MiB buffer split over the current thread
/// pool, in bytes per second.
pub fn memory_read_bandwidth(repeats: usize) -> f64 {
    let words = 64 << 20; // 512 MiB of u64
    let buf: Vec<u64> = (0..words as u64).collect();
    let mut best = 0f64;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let sum: u64 = buf
            .par_chunks(1 << 16)
            .map(|c| c.iter().fold(0u64, |a, &x| a ^ x))
            .reduce(|| 0, |a, b| a ^ b);
        let secs = t.elapsed().as_secs_f64();
        std::hint::black_box(sum);
        best = best.max((words * 8) as f64 / secs);
    }
    best
}

/// Bytes one decode step must read: every weight once (the tied output head counts
/// once more when it is separate from the embedding lookup, which reads one row).
pub fn weight_bytes_per_token(model: &Transformer) -> u64 {
    model.weight_bytes_per_token()
}

/// One point of the context-length sweep: prefill time and the KV cache it left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContextPoint {
    /// Prompt tokens.
    pub tokens: usize,
    /// Seconds to prefill them from an empty cache.
    pub seconds: f64,
    /// KV bytes held by the full-attention layers.
    pub kv_global_bytes: usize,
    /// KV bytes held by the sliding-window layers.
    pub kv_window_bytes: usize,
    /// KV bytes if every layer attended globally (what the window saves).
    pub kv_all_global_bytes: usize,
}

/// Prefills `n` tokens and reports the time and the KV cache per layer kind.
pub fn context_point(model: &Transformer, n: usize) -> Result<ContextPoint> {
    let cfg = model.config();
    let tokens = bench_tokens(n, cfg.vocab_size, 4);
    let mut cache = model.new_cache();
    let t = Instant::now();
    model.forward(&tokens, &mut cache, &[n - 1])?;
    let seconds = t.elapsed().as_secs_f64();
    let per_layer = cache.bytes_per_layer();
    let (mut global, mut window) = (0, 0);
    for (bytes, spec) in per_layer.iter().zip(&cfg.layers) {
        match spec.window {
            Some(_) => window += bytes,
            None => global += bytes,
        }
    }
    // Full attention keeps every position: n positions of K and V at half precision.
    let all_global = n * cfg.kv_dim() * 2 * 2 * cfg.n_layers();
    Ok(ContextPoint {
        tokens: n,
        seconds,
        kv_global_bytes: global,
        kv_window_bytes: window,
        kv_all_global_bytes: all_global,
    })
}
