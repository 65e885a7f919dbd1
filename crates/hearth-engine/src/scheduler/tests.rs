//! Scheduler tests against a fake model that keeps its "KV" (the token at each
//! position) in the planned blocks and predicts from what it reads back, so a wrong
//! block table, a corrupted shared block or a bad prefix hit changes the output.

use std::collections::HashMap;

use super::*;
use crate::rng::Rng;

const VOCAB: u32 = 1000;
const STOP: u32 = 3;

/// The fake model's next token: a function of the whole context.
fn next_token(ctx: &[u32]) -> u32 {
    let mut h = 0x243f_6a88_85a3_08d3u64;
    for &t in ctx {
        h = (h ^ t as u64).wrapping_mul(0x0100_0000_01b3).rotate_left(23);
    }
    10 + (h % (VOCAB as u64 - 10)) as u32
}

/// What `req` yields alone, computed directly.
fn solo(req: &Request) -> Vec<u32> {
    let mut toks = req.prompt.clone();
    let mut out = Vec::new();
    while out.len() < req.max_new_tokens {
        let t = next_token(&toks);
        toks.push(t);
        out.push(t);
        if req.stop_token_ids.contains(&t) {
            break;
        }
    }
    out
}

/// Paged "KV" of the fake model: the token stored at each slot of each block.
struct FakeModel {
    bs: usize,
    kv: Vec<Option<u32>>,
    wkv: Vec<Option<u32>>,
    window: Option<usize>,
}

impl FakeModel {
    fn new(s: &Scheduler) -> Self {
        let bs = s.kv().block_size();
        Self {
            bs,
            kv: vec![None; s.kv().n_blocks() * bs],
            wkv: vec![None; s.window_kv().map_or(0, |w| w.n_blocks() * bs)],
            window: s.config.window,
        }
    }

    fn slot(&self, table: &[BlockId], first: usize, p: usize) -> usize {
        table[p / self.bs - first].index() * self.bs + p % self.bs
    }

    fn step(&mut self, s: &Scheduler, plan: &StepPlan) -> Vec<(SeqId, Option<u32>)> {
        for e in &plan.entries {
            let toks = s.tokens(e.seq).unwrap();
            assert_eq!(e.positions_start, e.tokens.start);
            for p in e.tokens.clone() {
                let i = self.slot(&e.block_table, 0, p);
                self.kv[i] = Some(toks[p]);
                if let Some(w) = &e.window_table {
                    let i = self.slot(w.blocks(), w.first_block(), p);
                    self.wkv[i] = Some(toks[p]);
                }
            }
        }
        let mut out = Vec::new();
        for e in &plan.entries {
            if !e.needs_logits {
                out.push((e.seq, None));
                continue;
            }
            let end = e.tokens.end;
            let ctx: Vec<u32> = (0..end)
                .map(|p| self.kv[self.slot(&e.block_table, 0, p)].unwrap())
                .collect();
            if let (Some(w), Some(window)) = (&e.window_table, self.window) {
                for p in (end + 1).saturating_sub(window)..end {
                    let got = self.wkv[self.slot(w.blocks(), w.first_block(), p)];
                    assert_eq!(got, Some(ctx[p]), "windowed KV of {} at {p}", e.seq);
                }
            }
            out.push((e.seq, Some(next_token(&ctx))));
        }
        out
    }
}

fn config(budget: usize) -> SchedulerConfig {
    SchedulerConfig {
        max_running: 8,
        max_queued_requests: 64,
        max_queued_prompt_tokens: 1 << 20,
        step_token_budget: budget,
        max_context: 4096,
        window: None,
    }
}

fn sched(cfg: SchedulerConfig, blocks: usize, cache: bool) -> Scheduler {
    Scheduler::new(cfg, BlockManager::new(16, blocks, cache).unwrap(), None).unwrap()
}

fn prompt(rng: &mut Rng, len: usize) -> Vec<u32> {
    (0..len).map(|_| 10 + (rng.next_u64() % 900) as u32).collect()
}

fn req(prompt: Vec<u32>, max_new: usize) -> Request {
    Request {
        prompt,
        max_new_tokens: max_new,
        stop_token_ids: vec![STOP],
        cache_salt: 0,
    }
}

/// Runs requests arriving at given steps to the end, checking the plan's rules every
/// step; returns each request's generated tokens, in order.
fn drive(s: &mut Scheduler, arrivals: Vec<(usize, Request)>) -> Vec<Vec<u32>> {
    let mut model = FakeModel::new(s);
    let mut ids = Vec::new();
    let mut outputs: HashMap<SeqId, Vec<u32>> = HashMap::new();
    let n = arrivals.len();
    let mut pending = arrivals.into_iter().peekable();
    for step in 0..100_000 {
        while let Some((_, r)) = pending.next_if(|(at, _)| *at <= step) {
            ids.push(s.add(r).unwrap());
        }
        if pending.peek().is_none() && s.is_idle() {
            break;
        }
        let decoding: Vec<SeqId> = s
            .running
            .iter()
            .copied()
            .filter(|id| s.remaining(*id) == Some(1))
            .collect();
        let plan = s.schedule().unwrap();
        assert!(plan.num_tokens() <= s.config.step_token_budget);
        // Every decoding sequence not preempted is planned, before any prefill.
        let n_decode = decoding.iter().filter(|d| !plan.preempted.contains(d)).count();
        for (i, e) in plan.entries.iter().enumerate() {
            assert_eq!(decoding.contains(&e.seq), i < n_decode, "step {step}: {e:?}");
        }
        let results = model.step(s, &plan);
        for (id, t) in &results {
            if let Some(t) = t {
                outputs.entry(*id).or_default().push(*t);
            }
        }
        let done = s.on_step_done(&results).unwrap();
        for (id, _) in &done.finished {
            assert!(!s.contains(*id) && !s.kv().contains(*id), "finished leave at once");
        }
        s.check_invariants().unwrap();
    }
    assert!(s.is_idle(), "did not finish");
    assert_eq!(ids.len(), n);
    ids.iter()
        .map(|id| outputs.remove(id).unwrap_or_default())
        .collect()
}

#[test]
fn batch_matches_solo_and_respects_budget() {
    let mut rng = Rng::seeded(1);
    let reqs: Vec<(usize, Request)> = (0..12)
        .map(|i| (i * 3, req(prompt(&mut rng, 5 + 37 * i), 20 + i)))
        .collect();
    for cache in [false, true] {
        let mut s = sched(config(48), 512, cache);
        let outs = drive(&mut s, reqs.clone());
        for ((_, r), out) in reqs.iter().zip(outs) {
            assert_eq!(out, solo(r));
        }
        assert_eq!(s.stats().preemptions, 0);
        assert_eq!(s.kv().free_blocks(), 512);
    }
}
