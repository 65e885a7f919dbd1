#![allow(clippy::unwrap_used)]
//! `forward_paged` over ragged batches equals `forward` on each sequence alone: one
//! sequence in several steps, several sequences arriving at different steps with
//! prefill chunks beside decode tokens in scrambled blocks, sliding-window tables that
//! dropped old blocks, shared prefix blocks; and bad batches are errors, not panics.

use hearth_gguf::GgmlType;
use hearth_model::tiny::{TinySpec, VOCAB};
use hearth_model::{Error, PagedKv, RaggedBatch, SeqSlice, Transformer, WindowTable};

const TOL: f32 = 1e-4;

fn model(spec: &TinySpec) -> (Transformer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    spec.write(&p).unwrap();
    (Transformer::open(&p).unwrap(), dir)
}

fn tokens(n: usize, seed: usize) -> Vec<u32> {
    (0..n)
        .map(|i| ((i * 37 + seed * 101 + 11) % VOCAB) as u32)
        .collect()
}

/// Logits after every position of `toks`, one sequence through `forward`.
fn reference(m: &Transformer, toks: &[u32]) -> Vec<f32> {
    let mut cache = m.new_cache();
    let want: Vec<usize> = (0..toks.len()).collect();
    m.forward(toks, &mut cache, &want).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Block ids handed out in a scrambled order, so no table is contiguous.
fn scrambled(n: usize, seed: u64) -> Vec<u32> {
    let mut ids: Vec<u32> = (0..n as u32).collect();
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for i in (1..ids.len()).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ids.swap(i, (s >> 33) as usize % (i + 1));
    }
    ids
}

/// One sequence as a test engine tracks it.
struct Seq {
    toks: Vec<u32>,
    want: Vec<f32>,
    done: usize,
    table: Vec<u32>,
    window: Option<WindowTable>,
}

/// A minimal engine: free lists, tables, window dropping, reference checks.
struct Sim<'a> {
    m: &'a Transformer,
    kv: PagedKv,
    free: Vec<u32>,
    wfree: Vec<u32>,
    drop_window: bool,
    /// Most window blocks any sequence held.
    max_window_blocks: usize,
    /// Most logical blocks any window table had dropped.
    max_dropped: usize,
}

impl<'a> Sim<'a> {
    fn new(m: &'a Transformer, bs: usize, blocks: usize, wblocks: usize, drop: bool) -> Self {
        Self {
            m,
            kv: PagedKv::new(m.config(), bs, blocks, wblocks).unwrap(),
            free: scrambled(blocks, 1),
            wfree: scrambled(wblocks, 2),
            drop_window: drop,
            max_window_blocks: 0,
            max_dropped: 0,
        }
    }

    fn seq(&self, toks: Vec<u32>) -> Seq {
        Seq {
            want: reference(self.m, &toks),
            toks,
            done: 0,
            table: Vec::new(),
            window: self
                .m
                .config()
                .sliding_window()
                .map(|_| WindowTable::default()),
        }
    }

    /// Runs `n` new tokens of each listed sequence as one batch and checks every
    /// sequence's logits against its reference.
    fn step(&mut self, seqs: &mut [Seq], plan: &[(usize, usize)]) {
        let bs = self.kv.block_size();
        let mut batch = RaggedBatch::default();
        for &(i, n) in plan {
            let s = &mut seqs[i];
            let end = s.done + n;
            while s.table.len() < end.div_ceil(bs) {
                s.table.push(self.free.pop().unwrap());
            }
            if let (Some(t), Some(w)) = (&mut s.window, self.m.config().sliding_window()) {
                if self.drop_window {
                    let keep_from = (s.done + 1).saturating_sub(w) / bs;
                    while t.first_block < keep_from {
                        self.wfree.insert(0, t.blocks.remove(0));
                        t.first_block += 1;
                    }
                }
                while t.first_block + t.blocks.len() < end.div_ceil(bs) {
                    t.blocks.push(self.wfree.pop().unwrap());
                }
                self.max_window_blocks = self.max_window_blocks.max(t.blocks.len());
                self.max_dropped = self.max_dropped.max(t.first_block);
            }
            let start = batch.tokens.len();
            batch.tokens.extend_from_slice(&s.toks[s.done..end]);
            batch.seqs.push(SeqSlice {
                range: start..batch.tokens.len(),
                start_pos: s.done,
                block_table: s.table.clone(),
                window_table: s.window.clone(),
                logits: true,
                adapter: None,
            });
        }
        let got = self.m.forward_paged(&batch, &mut self.kv).unwrap();
        let v = self.m.config().vocab_size;
        assert_eq!(got.len(), plan.len() * v);
        for (row, &(i, n)) in got.chunks_exact(v).zip(plan) {
            let s = &mut seqs[i];
            s.done += n;
            let want = &s.want[(s.done - 1) * v..s.done * v];
            let diff = max_diff(row, want);
            assert!(diff < TOL, "seq {i} at {}: max diff {diff}", s.done);
        }
    }
}

#[test]
fn one_sequence_in_steps_equals_forward() {
    for spec in [TinySpec::llama(), TinySpec::gemma3()] {
        let (m, _dir) = model(&spec);
        let mut sim = Sim::new(&m, 4, 32, 32, false);
        let mut seqs = vec![sim.seq(tokens(47, 0))];
        for n in [5, 1, 17, 1, 1, 20, 1, 1] {
            sim.step(&mut seqs, &[(0, n)]);
        }
        assert_eq!(seqs[0].done, 47);
    }
}

/// Sequences arrive one per step, prefill in chunks of up to `chunk` tokens, then
/// decode their last `decode` tokens one at a time, all in the same batches.
fn run_mixed(sim: &mut Sim<'_>, lens: &[usize], chunk: usize, decode: usize) {
    let mut seqs: Vec<Seq> = lens
        .iter()
        .enumerate()
        .map(|(i, &n)| sim.seq(tokens(n, i + 1)))
        .collect();
    let mut step = 0;
    while seqs.iter().any(|s| s.done < s.toks.len()) {
        let plan: Vec<(usize, usize)> = seqs
            .iter()
            .enumerate()
            .filter(|&(i, s)| i <= step && s.done < s.toks.len())
            .map(|(i, s)| {
                let prompt = s.toks.len().saturating_sub(decode);
                let n = if s.done < prompt {
                    chunk.min(prompt - s.done)
                } else {
                    1
                };
                (i, n)
            })
            .collect();
        if !plan.is_empty() {
            sim.step(&mut seqs, &plan);
        }
        step += 1;
    }
}

#[test]
fn batch_invariance_with_scrambled_blocks() {
    for spec in [
        TinySpec::llama(),
        TinySpec::gemma3(),
        TinySpec::llama().with_dtype(GgmlType::Q4_K),
        TinySpec::gemma3().with_dtype(GgmlType::Q8_0),
    ] {
        let (m, _dir) = model(&spec);
        let mut sim = Sim::new(&m, 4, 96, 96, false);
        run_mixed(&mut sim, &[45, 12, 60, 9, 41], 13, 6);
    }
}

#[test]
fn window_tables_that_dropped_old_blocks() {
    let (m, _dir) = model(&TinySpec::gemma3());
    // Window 16 with blocks of 4 (and of 5, which does not divide it): a sequence
    // needs at most ceil(16 / bs) + 1 blocks before its step plus the step's own.
    for bs in [4, 5] {
        let mut sim = Sim::new(&m, bs, 96, 48, true);
        run_mixed(&mut sim, &[70, 44, 53, 5, 66, 41], 9, 8);
        assert!(sim.max_dropped >= 8, "dropped {}", sim.max_dropped);
        assert!(
            sim.max_window_blocks <= 16usize.div_ceil(bs) + 1 + 9usize.div_ceil(bs),
            "held {}",
            sim.max_window_blocks
        );
    }
    // A whole prefill longer than the window in one step, then decode.
    let mut sim = Sim::new(&m, 4, 32, 32, true);
    let mut seqs = vec![sim.seq(tokens(48, 9))];
    for n in [40, 1, 1, 1, 5] {
        sim.step(&mut seqs, &[(0, n)]);
    }
}

#[test]
fn shared_prefix_blocks_equal_separate_computation() {
    for spec in [TinySpec::llama(), TinySpec::gemma3()] {
        let (m, _dir) = model(&spec);
        let windowed = m.config().sliding_window().is_some();
        let bs = 4;
        let mut kv = PagedKv::new(m.config(), bs, 64, 64).unwrap();
        let prefix = tokens(24, 3);
        let a: Vec<u32> = prefix.iter().copied().chain(tokens(20, 4)).collect();
        let b: Vec<u32> = prefix.iter().copied().chain(tokens(23, 5)).collect();
        let (want_a, want_b) = (reference(&m, &a), reference(&m, &b));
        let v = m.config().vocab_size;
        let ids = scrambled(64, 7);
        let a_table = ids[..11].to_vec();
        let a_window = windowed.then(|| WindowTable {
            first_block: 0,
            blocks: ids[20..31].to_vec(),
        });
        // Step 1: A prefills its first 40 tokens, prefix included.
        let step1 = RaggedBatch {
            tokens: a[..40].to_vec(),
            seqs: vec![SeqSlice {
                range: 0..40,
                start_pos: 0,
                block_table: a_table.clone(),
                window_table: a_window.clone(),
                logits: true,
                adapter: None,
            }],
        };
        let got = m.forward_paged(&step1, &mut kv).unwrap();
        assert!(max_diff(&got, &want_a[39 * v..40 * v]) < TOL);
        // Step 2: B reuses A's six full prefix blocks and computes only its own tail,
        // beside A's next decode token.
        let mut b_table = a_table[..6].to_vec();
        b_table.extend_from_slice(&ids[40..46]);
        let b_window = a_window.as_ref().map(|w| {
            let mut blocks = w.blocks[..6].to_vec();
            blocks.extend_from_slice(&ids[50..56]);
            WindowTable {
                first_block: 0,
                blocks,
            }
        });
        let mut tokens2 = vec![a[40]];
        tokens2.extend_from_slice(&b[24..]);
        let step2 = RaggedBatch {
            tokens: tokens2,
            seqs: vec![
                SeqSlice {
                    range: 0..1,
                    start_pos: 40,
                    block_table: a_table.clone(),
                    window_table: a_window.clone(),
                    logits: true,
                    adapter: None,
                },
                SeqSlice {
                    range: 1..24,
                    start_pos: 24,
                    block_table: b_table,
                    window_table: b_window,
                    logits: true,
                    adapter: None,
                },
            ],
        };
        let got = m.forward_paged(&step2, &mut kv).unwrap();
        assert!(max_diff(&got[..v], &want_a[40 * v..41 * v]) < TOL);
        assert!(max_diff(&got[v..], &want_b[46 * v..47 * v]) < TOL);
    }
}

fn one_seq(tokens: Vec<u32>, start_pos: usize, table: Vec<u32>) -> RaggedBatch {
    RaggedBatch {
        seqs: vec![SeqSlice {
            range: 0..tokens.len(),
            start_pos,
            block_table: table,
            window_table: None,
            logits: true,
            adapter: None,
        }],
        tokens,
    }
}

#[test]
fn invalid_batches_are_errors() {
    let (m, _dir) = model(&TinySpec::llama());
    let mut kv = PagedKv::new(m.config(), 4, 8, 0).unwrap();
    let err = |b: &RaggedBatch, kv: &mut PagedKv| m.forward_paged(b, kv).unwrap_err();

    let e = err(&one_seq(tokens(5, 0), 0, vec![0, 8]), &mut kv);
    assert!(matches!(e, Error::BlockOutOfRange { block: 8, .. }), "{e}");
    let e = err(&one_seq(tokens(5, 0), 0, vec![0]), &mut kv);
    assert!(
        matches!(e, Error::BlockTableTooShort { need_to: 2, .. }),
        "{e}"
    );
    let e = err(&one_seq(tokens(1, 0), 8, vec![0, 1]), &mut kv);
    assert!(matches!(e, Error::BlockTableTooShort { .. }), "{e}");
    let e = err(&one_seq(vec![VOCAB as u32], 0, vec![0]), &mut kv);
    assert!(matches!(e, Error::TokenOutOfRange { .. }), "{e}");
    let e = err(&one_seq(tokens(1, 0), 2048, vec![0; 513]), &mut kv);
    assert!(matches!(e, Error::ContextLengthExceeded { .. }), "{e}");
    // A table naming the same block twice makes two positions share a slot.
    let e = err(&one_seq(tokens(6, 0), 0, vec![3, 3]), &mut kv);
    assert!(matches!(e, Error::KvSlotConflict { block: 3, .. }), "{e}");
    // A llama has no windowed layers.
    let mut b = one_seq(tokens(2, 0), 0, vec![0]);
    b.seqs[0].window_table = Some(WindowTable::default());
    let e = err(&b, &mut kv);
    assert!(matches!(e, Error::WindowTableMismatch { .. }), "{e}");

    // Ranges: a gap, an overlap, an empty one, one past the end, tokens left over.
    let two = |r0: std::ops::Range<usize>, r1: std::ops::Range<usize>, n: usize| RaggedBatch {
        tokens: tokens(n, 1),
        seqs: [(r0, 0u32), (r1, 4)]
            .into_iter()
            .map(|(range, b)| SeqSlice {
                range,
                start_pos: 0,
                block_table: (b..b + 4).collect(),
                window_table: None,
                logits: true,
                adapter: None,
            })
            .collect(),
    };
    for (r0, r1, n) in [
        (0..2, 3..5, 5),
        (0..3, 2..5, 5),
        (0..2, 2..2, 2),
        (0..2, 2..6, 5),
        (0..2, 2..4, 5),
        (1..2, 2..4, 4),
    ] {
        let e = err(&two(r0.clone(), r1.clone(), n), &mut kv);
        assert!(
            matches!(e, Error::BadBatchRange { .. }),
            "{r0:?} {r1:?}: {e}"
        );
    }
    // Two sequences writing into one block.
    let mut b = two(0..2, 2..4, 4);
    b.seqs[1].block_table = vec![0];
    let e = err(&b, &mut kv);
    assert!(matches!(e, Error::KvSlotConflict { seq: 1, .. }), "{e}");
    // Storage laid out for another model.
    let (g, _gdir) = model(&TinySpec::gemma3());
    let mut gkv = PagedKv::new(g.config(), 4, 8, 8).unwrap();
    let e = err(&one_seq(tokens(2, 0), 0, vec![0]), &mut gkv);
    assert!(matches!(e, Error::BadKvLayout { .. }), "{e}");
    assert!(PagedKv::new(m.config(), 0, 8, 0).is_err());
    assert!(PagedKv::new(m.config(), usize::MAX / 2, 8, 0).is_err());

    // Gemma: a missing window table, one that dropped a block the step still needs.
    let e = g
        .forward_paged(&one_seq(tokens(2, 0), 0, vec![0]), &mut gkv)
        .unwrap_err();
    assert!(matches!(e, Error::WindowTableMismatch { .. }), "{e}");
    let mut b = one_seq(tokens(1, 0), 20, vec![0, 1, 2, 3, 4, 5]);
    b.seqs[0].window_table = Some(WindowTable {
        first_block: 2,
        blocks: vec![0, 1, 2, 3],
    });
    let e = g.forward_paged(&b, &mut gkv).unwrap_err();
    assert!(
        matches!(
            e,
            Error::BlockTableTooShort {
                window: true,
                need_from: 1,
                ..
            }
        ),
        "{e}"
    );
    // The same table from block 1 is fine.
    b.seqs[0].window_table = Some(WindowTable {
        first_block: 1,
        blocks: vec![0, 1, 2, 3, 4],
    });
    assert_eq!(g.forward_paged(&b, &mut gkv).unwrap().len(), VOCAB);

    // After all those errors the storage still works, and an empty batch is fine.
    let mut sim = Sim::new(&m, 4, 16, 0, false);
    let mut seqs = vec![sim.seq(tokens(9, 2))];
    sim.step(&mut seqs, &[(0, 9)]);
    assert!(m
        .forward_paged(&RaggedBatch::default(), &mut kv)
        .unwrap()
        .is_empty());
}

#[test]
fn storage_is_allocated_once_and_addressable() {
    let (g, _dir) = model(&TinySpec::gemma3());
    let cfg = g.config();
    let kv = PagedKv::new(cfg, 16, 10, 3).unwrap();
    let (global, window) = PagedKv::block_bytes(cfg, 16);
    assert_eq!(kv.bytes(), 10 * global + 3 * window);
    assert_eq!(global, 16 * cfg.kv_dim() * 4);
    assert_eq!(window, 5 * 16 * cfg.kv_dim() * 4);
    let global_layer = (0..cfg.n_layers()).find(|&l| !kv.is_windowed(l)).unwrap();
    let window_layer = (0..cfg.n_layers()).find(|&l| kv.is_windowed(l)).unwrap();
    assert_eq!(kv.key(global_layer, 9, 15).unwrap().len(), cfg.kv_dim());
    assert!(kv.key(global_layer, 10, 0).is_none());
    assert!(kv.value(window_layer, 2, 0).is_some());
    assert!(kv.value(window_layer, 3, 0).is_none());
    assert!(kv.key(0, 0, 16).is_none());
    assert!(kv.key(99, 0, 0).is_none());
}

/// Rough timing, not a check: one 64-token prefill plus 8 decode tokens (each after
/// 32 positions of context), as one `forward_paged` step against nine `forward` calls.
/// `cargo test --release -p hearth-model --test paged -- --ignored --nocapture`
#[test]
#[ignore]
fn timing_prefill_plus_decodes() {
    use std::time::Instant;
    for spec in [
        TinySpec::llama(),
        TinySpec::llama().with_dtype(GgmlType::Q4_K),
        TinySpec::gemma3(),
    ] {
        let (m, _dir) = model(&spec);
        let windowed = m.config().sliding_window().is_some();
        let bs = 16;
        let mut kv = PagedKv::new(m.config(), bs, 64, 64).unwrap();
        let table = |s: u32| -> Vec<u32> { (s * 4..s * 4 + 4).collect() };
        let window = |s: u32| {
            windowed.then(|| WindowTable {
                first_block: 0,
                blocks: table(s),
            })
        };
        let ctx: Vec<Vec<u32>> = (0..8).map(|i| tokens(33, i + 20)).collect();
        let mut caches = Vec::new();
        for (i, c) in ctx.iter().enumerate() {
            let mut b = one_seq(c[..32].to_vec(), 0, table(i as u32 + 1));
            b.seqs[0].window_table = window(i as u32 + 1);
            m.forward_paged(&b, &mut kv).unwrap();
            let mut cache = m.new_cache();
            m.forward(&c[..32], &mut cache, &[]).unwrap();
            caches.push(cache);
        }
        let prompt = tokens(64, 99);
        let mut batch = one_seq(prompt.clone(), 0, (40..44).collect());
        batch.seqs[0].window_table = windowed.then(|| WindowTable {
            first_block: 0,
            blocks: (40..44).collect(),
        });
        for (i, c) in ctx.iter().enumerate() {
            let s = i as u32 + 1;
            batch.tokens.push(c[32]);
            batch.seqs.push(SeqSlice {
                range: 64 + i..65 + i,
                start_pos: 32,
                block_table: table(s),
                window_table: window(s),
                logits: true,
                adapter: None,
            });
        }
        let (mut paged, mut plain) = (Vec::new(), Vec::new());
        for _ in 0..15 {
            let t = Instant::now();
            let got = m.forward_paged(&batch, &mut kv).unwrap();
            paged.push(t.elapsed().as_secs_f64() * 1e3);
            let mut cs = caches.clone();
            let t = Instant::now();
            let mut want = m.forward(&prompt, &mut m.new_cache(), &[63]).unwrap();
            for (c, cache) in ctx.iter().zip(&mut cs) {
                want.extend(m.forward(&c[32..], cache, &[0]).unwrap());
            }
            plain.push(t.elapsed().as_secs_f64() * 1e3);
            assert!(max_diff(&got, &want) < TOL);
        }
        paged.sort_by(f64::total_cmp);
        plain.sort_by(f64::total_cmp);
        println!(
            "{} {}: forward_paged {:.2} ms, forward x9 {:.2} ms (medians of 15)",
            spec.arch, spec.dtype, paged[7], plain[7]
        );
    }
}
