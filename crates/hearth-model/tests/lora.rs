#![allow(clippy::unwrap_used)]
//! LoRA at inference on tiny F32 models: a forward with an adapter equals a forward
//! on a model whose weights had `scale·B·A` added in f32; a zero-B adapter is exactly
//! the base; in a ragged batch every sequence gets its own adapter (or none) and the
//! same logits as when run alone.

use std::path::Path;
use std::sync::Arc;

use hearth_gguf::{GgmlType, GgufFile, GgufWriter, TensorToWrite};
use hearth_model::lora::{LoraTensor, Proj};
use hearth_model::tiny::{TinySpec, VOCAB};
use hearth_model::{LoraAdapter, PagedKv, RaggedBatch, SeqSlice, Transformer, WindowTable};

fn tokens(n: usize, seed: usize) -> Vec<u32> {
    (0..n)
        .map(|i| ((i * 37 + seed * 101 + 11) % VOCAB) as u32)
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// An adapter on every projection and, for models with an untied head, on the
/// embedding and the head. (With a tied head, PEFT's embedding delta changes the
/// input side only, which merged weights cannot express.)
fn full_adapter(m: &Transformer, b_std: f32, seed: u64) -> LoraAdapter {
    let cfg = m.config();
    let mut a = LoraAdapter::random(cfg, &Proj::ALL, 4, 8.0, b_std, seed);
    let mut targets = vec![];
    if m.gguf().tensor("output.weight").is_some() {
        targets = vec!["token_embd.weight", "output.weight"];
    }
    for (i, name) in targets.into_iter().enumerate() {
        let r = LoraAdapter::random(cfg, &[Proj::Q], 3, 1.5, b_std, seed + 10 + i as u64);
        let q = &r.tensors["blk.0.attn_q.weight"];
        // Reuse the random numbers with the head's shape.
        let (rows, cols) = (cfg.vocab_size, cfg.d_model);
        let cycle = |v: &[f32], n: usize| v.iter().cycle().take(n).copied().collect::<Vec<_>>();
        a.tensors.insert(
            name.into(),
            LoraTensor {
                rows,
                cols,
                rank: 3,
                a: cycle(&q.a, 3 * cols),
                b: cycle(&q.b, rows * 3),
                scale: 0.5,
            },
        );
    }
    a
}

/// Writes `base` with the adapter's deltas added to its (F32) weights.
fn merge_f32(base: &Path, a: &LoraAdapter, out: &Path) {
    let f = GgufFile::open(base).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in f.metadata() {
        w.metadata(k.clone(), v.clone());
    }
    for t in f.tensors() {
        let mut data = f.tensor_data(t).to_vec();
        if let Some(l) = a.tensors.get(&t.name) {
            assert_eq!(t.dtype, GgmlType::F32);
            let delta = l.delta();
            for (c, d) in data.chunks_exact_mut(4).zip(delta) {
                let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]) + d;
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
        w.tensor(TensorToWrite {
            name: t.name.clone(),
            dims: t.dims.clone(),
            dtype: t.dtype,
            data,
        });
    }
    w.write(out).unwrap();
}

fn all_logits(m: &Transformer, toks: &[u32], lora: Option<&hearth_model::ModelLora>) -> Vec<f32> {
    let want: Vec<usize> = (0..toks.len()).collect();
    m.forward_with(toks, &mut m.new_cache(), &want, lora)
        .unwrap()
}

#[test]
fn adapter_equals_merged_f32_weights() {
    for spec in [TinySpec::llama(), TinySpec::gemma3()] {
        let dir = tempfile::tempdir().unwrap();
        let base_path = dir.path().join("base.gguf");
        spec.write(&base_path).unwrap();
        let base = Transformer::open(&base_path).unwrap();
        let adapter = full_adapter(&base, 0.05, 1);
        let merged_path = dir.path().join("merged.gguf");
        merge_f32(&base_path, &adapter, &merged_path);
        let merged = Transformer::open(&merged_path).unwrap();
        let lora = base.bind_lora("a", &adapter).unwrap();
        let toks = tokens(40, 1);
        let plain = all_logits(&base, &toks, None);
        let with = all_logits(&base, &toks, Some(&lora));
        let want = all_logits(&merged, &toks, None);
        let d = max_diff(&with, &want);
        let moved = max_diff(&plain, &want);
        let top = want.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        eprintln!(
            "{}: |adapter - merged| = {d:.2e}, |base - merged| = {moved:.2e}, max |logit| {top:.1}",
            spec.arch
        );
        assert!(
            moved > 0.05,
            "{}: the adapter should change the logits",
            spec.arch
        );
        // Keys and values are cached at f16 in both runs: a tiny difference in the f32
        // sums can round a cached value the other way.
        assert!(
            d < 1e-4 * top.max(1.0),
            "{}: adapter vs merged {d}",
            spec.arch
        );
    }
}

#[test]
fn zero_b_adapter_is_the_base_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    TinySpec::llama().write(&p).unwrap();
    let m = Transformer::open(&p).unwrap();
    let zero = m.bind_lora("zero", &full_adapter(&m, 0.0, 2)).unwrap();
    let toks = tokens(20, 2);
    assert_eq!(
        all_logits(&m, &toks, Some(&zero)),
        all_logits(&m, &toks, None)
    );
}

/// Three sequences with adapters A, none and B in one paged step equal each alone.
#[test]
fn ragged_batch_applies_each_sequences_adapter() {
    for spec in [TinySpec::llama(), TinySpec::gemma3()] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        spec.write(&p).unwrap();
        let m = Transformer::open(&p).unwrap();
        let a = Arc::new(m.bind_lora("a", &full_adapter(&m, 0.05, 3)).unwrap());
        let b = Arc::new(m.bind_lora("b", &full_adapter(&m, 0.05, 4)).unwrap());
        let bs = 16;
        let windowed = m.config().sliding_window().is_some();
        let mut kv = PagedKv::new(m.config(), bs, 16, if windowed { 16 } else { 0 }).unwrap();
        let seqs = [
            (tokens(21, 5), Some(a.clone())),
            (tokens(9, 6), None),
            (tokens(17, 7), Some(b.clone())),
        ];
        let mut batch = RaggedBatch::default();
        for (i, (t, ad)) in seqs.iter().enumerate() {
            let start = batch.tokens.len();
            batch.tokens.extend_from_slice(t);
            let blocks: Vec<u32> = (i as u32 * 4..i as u32 * 4 + 4).collect();
            batch.seqs.push(SeqSlice {
                range: start..batch.tokens.len(),
                start_pos: 0,
                block_table: blocks.clone(),
                window_table: windowed.then_some(WindowTable {
                    first_block: 0,
                    blocks,
                }),
                logits: true,
                adapter: ad.clone(),
            });
        }
        let got = m.forward_paged(&batch, &mut kv).unwrap();
        let v = m.config().vocab_size;
        for (i, (t, ad)) in seqs.iter().enumerate() {
            let alone = m
                .forward_with(t, &mut m.new_cache(), &[t.len() - 1], ad.as_deref())
                .unwrap();
            let d = max_diff(&got[i * v..(i + 1) * v], &alone);
            assert!(d < 1e-4, "{} seq {i}: {d}", spec.arch);
        }
        // And the adapters really differ from each other.
        let (t, _) = &seqs[0];
        let with_b = m
            .forward_with(t, &mut m.new_cache(), &[t.len() - 1], Some(&b))
            .unwrap();
        assert!(max_diff(&got[..v], &with_b) > 0.01);
    }
}
