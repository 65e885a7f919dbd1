//! Scheduler tests against a fake model that keeps its "KV" (the token at each
//! position) in the planned blocks and predicts from what it reads back, so a wrong
//! block table, a corrupted shared block or a bad prefix hit changes the output.

use std::collections::HashMap;

use super::*;
use crate::prefix_cache::PrefixCacheStats;
use crate::rng::Rng;
use crate::BlockId;

const VOCAB: u32 = 1000;
const STOP: u32 = 3;

/// The fake model's next token: a function of the whole context.
fn next_token(ctx: &[u32]) -> u32 {
    let mut h = 0x243f_6a88_85a3_08d3u64;
    for &t in ctx {
        h = (h ^ t as u64)
            .wrapping_mul(0x0100_0000_01b3)
            .rotate_left(23);
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
        // Every planned token reads its window back from the windowed blocks.
        for e in &plan.entries {
            if let (Some(w), Some(window)) = (&e.window_table, self.window) {
                for p in e.tokens.clone() {
                    for q in (p + 1).saturating_sub(window)..=p {
                        let want = Some(s.tokens(e.seq).unwrap()[q]);
                        let got = self.wkv[self.slot(w.blocks(), w.first_block(), q)];
                        assert_eq!(got, want, "windowed KV of {} at {q} for {p}", e.seq);
                    }
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
    (0..len)
        .map(|_| 10 + (rng.next_u64() % 900) as u32)
        .collect()
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
        let n_decode = decoding
            .iter()
            .filter(|d| !plan.preempted.contains(d))
            .count();
        for (i, e) in plan.entries.iter().enumerate() {
            assert_eq!(
                decoding.contains(&e.seq),
                i < n_decode,
                "step {step}: {e:?}"
            );
        }
        let results = model.step(s, &plan);
        for (id, t) in &results {
            if let Some(t) = t {
                outputs.entry(*id).or_default().push(*t);
            }
        }
        let done = s.on_step_done(&results).unwrap();
        for (id, _) in &done.finished {
            assert!(
                !s.contains(*id) && !s.kv().contains(*id),
                "finished leave at once"
            );
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
    let system = prompt(&mut rng, 40);
    // Odd requests share a 40-token "system prompt", so the cache has work to do.
    let reqs: Vec<(usize, Request)> = (0..12)
        .map(|i| {
            let own = prompt(&mut rng, 5 + 37 * i);
            let p = if i % 2 == 1 {
                [system.clone(), own].concat()
            } else {
                own
            };
            (i * 3, req(p, 20 + i))
        })
        .collect();
    for cache in [false, true] {
        let mut s = sched(config(48), 512, cache);
        let outs = drive(&mut s, reqs.clone());
        for ((_, r), out) in reqs.iter().zip(outs) {
            assert_eq!(out, solo(r));
        }
        assert_eq!(s.stats().preemptions, 0);
        assert_eq!(s.stats().prefix_cache.hit_tokens > 0, cache);
        assert_eq!(s.kv().free_blocks(), 512);
    }
}

#[test]
fn long_prompt_never_stalls_running_streams() {
    let mut s = sched(config(32), 512, false);
    let mut rng = Rng::seeded(2);
    let a = s.add(req(prompt(&mut rng, 8), 200)).unwrap();
    let b = s.add(req(prompt(&mut rng, 8), 200)).unwrap();
    let mut model = FakeModel::new(&s);
    for _ in 0..2 {
        let plan = s.schedule().unwrap();
        let r = model.step(&s, &plan);
        s.on_step_done(&r).unwrap();
    }
    let long = s.add(req(prompt(&mut rng, 1000), 5)).unwrap();
    let mut chunks = 0;
    while s.seqs[&long].computed < 1000 {
        let plan = s.schedule().unwrap();
        assert_eq!(plan.entries[0].seq, a);
        assert_eq!(plan.entries[1].seq, b);
        assert_eq!(plan.entries[0].tokens.len(), 1);
        assert!(plan.entries[0].needs_logits);
        assert_eq!(plan.entries[2].seq, long);
        assert_eq!(plan.entries[2].tokens.len(), 30.min(1000 - 30 * chunks));
        assert_eq!(
            plan.num_tokens(),
            plan.entries.len().max(2) + plan.entries[2].tokens.len() - 1
        );
        assert_eq!(
            plan.entries[2].needs_logits,
            plan.entries[2].tokens.end == 1000
        );
        let r = model.step(&s, &plan);
        s.on_step_done(&r).unwrap();
        chunks += 1;
    }
    assert_eq!(chunks, 34);
    assert_eq!(s.generated(long).unwrap().len(), 1);
}

#[test]
fn new_requests_join_next_step_and_finished_leave() {
    let mut s = sched(config(64), 64, false);
    let mut model = FakeModel::new(&s);
    let a = s.add(req(vec![11; 5], 3)).unwrap();
    let plan = s.schedule().unwrap();
    let b = s.add(req(vec![12; 5], 1)).unwrap();
    let r = model.step(&s, &plan);
    s.on_step_done(&r).unwrap();
    let plan = s.schedule().unwrap();
    let seqs: Vec<SeqId> = plan.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![a, b]);
    let r = model.step(&s, &plan);
    let done = s.on_step_done(&r).unwrap();
    assert_eq!(done.finished, vec![(b, FinishReason::Length)]);
    assert!(!s.contains(b));
    let plan = s.schedule().unwrap();
    let seqs: Vec<SeqId> = plan.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![a]);
    // A stop token finishes with Stop.
    let r = vec![(a, Some(STOP))];
    let done = s.on_step_done(&r).unwrap();
    assert_eq!(done.finished, vec![(a, FinishReason::Stop)]);
    assert!(s.is_idle());
    assert_eq!(s.kv().free_blocks(), 64);
    assert_eq!(s.stats().generated_tokens, 4);
    assert_eq!(s.stats().prompt_tokens, 10);
}

#[test]
fn admission_errors_at_the_exact_limits() {
    // Two batch slots plus two queued: the fifth request is refused, before and after
    // the first two start running.
    let cfg = SchedulerConfig {
        max_running: 2,
        max_queued_requests: 2,
        ..config(32)
    };
    let mut s = sched(cfg, 64, false);
    for _ in 0..4 {
        s.add(req(vec![10; 4], 5)).unwrap();
    }
    let e = s.add(req(vec![10; 1], 1)).unwrap_err();
    let limit_2 = matches!(
        e,
        Error::Overloaded {
            what: "queued requests",
            limit: 2
        }
    );
    assert!(limit_2, "{e}");
    let mut model = FakeModel::new(&s);
    let plan = s.schedule().unwrap();
    assert_eq!(plan.entries.len(), 2);
    let r = model.step(&s, &plan);
    s.on_step_done(&r).unwrap();
    assert_eq!((s.stats().running, s.stats().waiting), (2, 2));
    assert!(matches!(
        s.add(req(vec![10; 1], 1)),
        Err(Error::Overloaded { .. })
    ));
    // Queued prompt tokens: exactly at the limit is accepted, one more is refused.
    let cfg = SchedulerConfig {
        max_queued_prompt_tokens: 30,
        ..config(32)
    };
    let mut s = sched(cfg, 64, false);
    s.add(req(vec![10; 10], 1)).unwrap();
    s.add(req(vec![10; 20], 1)).unwrap();
    let e = s.add(req(vec![10; 1], 1)).unwrap_err();
    let limit_30 = matches!(
        e,
        Error::Overloaded {
            what: "queued prompt tokens",
            limit: 30
        }
    );
    assert!(limit_30, "{e}");
    let mut s = sched(
        SchedulerConfig {
            max_context: 100,
            ..config(32)
        },
        64,
        false,
    );
    s.add(req(vec![10; 90], 10)).unwrap();
    let e = s.add(req(vec![10; 90], 11)).unwrap_err();
    assert!(matches!(
        e,
        Error::ContextLengthExceeded {
            prompt_tokens: 90,
            max_new_tokens: 11,
            limit: 100
        }
    ));
    let e = s.add(req(vec![10; 101], 1)).unwrap_err();
    assert!(matches!(e, Error::ContextLengthExceeded { .. }));
    // The whole pool (4 blocks of 16) also bounds one sequence.
    let mut s = sched(config(32), 4, false);
    assert!(matches!(
        s.add(req(vec![10; 60], 5)),
        Err(Error::ContextLengthExceeded { limit: 64, .. })
    ));
    assert!(s.add(req(vec![], 5)).is_err());
    assert!(s.add(req(vec![1], 0)).is_err());
    assert!(s.is_idle());
}

#[test]
fn preempts_the_youngest_and_all_finish_as_alone() {
    let mut rng = Rng::seeded(3);
    let reqs: Vec<(usize, Request)> = (0..8)
        .map(|i| (i, req(prompt(&mut rng, 20 + 9 * i), 60)))
        .collect();
    for cache in [false, true] {
        // 16 blocks of 16 tokens: two or three of these at once.
        let mut s = sched(config(32), 16, cache);
        let outs = drive(&mut s, reqs.clone());
        for ((_, r), out) in reqs.iter().zip(outs) {
            assert_eq!(out, solo(r));
        }
        assert!(s.stats().preemptions > 0);
        assert_eq!(s.kv().free_blocks(), 16);
    }
    // The victim is the youngest running sequence.
    let mut s = sched(config(8), 4, false);
    let mut model = FakeModel::new(&s);
    let ids: Vec<SeqId> = (0..2)
        .map(|i| s.add(req(vec![20 + i; 16], 40)).unwrap())
        .collect();
    let mut victims = Vec::new();
    while s.contains(ids[0]) {
        let plan = s.schedule().unwrap();
        victims.extend(plan.preempted.iter().copied());
        let r = model.step(&s, &plan);
        s.on_step_done(&r).unwrap();
    }
    assert!(!victims.is_empty() && victims.iter().all(|v| *v == ids[1]));
}

#[test]
fn prefix_cache_reuses_shared_prefix_and_respects_salt() {
    let mut rng = Rng::seeded(4);
    let shared = prompt(&mut rng, 64);
    let with_tail = |tail: u32| {
        let mut p = shared.clone();
        p.extend([tail, tail + 1, tail + 2]);
        p
    };
    let mut s = sched(config(128), 64, true);
    let mut model = FakeModel::new(&s);
    let first = req(with_tail(100), 4);
    let a = s.add(first.clone()).unwrap();
    let mut out = Vec::new();
    while s.contains(a) {
        let plan = s.schedule().unwrap();
        let r = model.step(&s, &plan);
        out.extend(r.iter().filter_map(|x| x.1));
        s.on_step_done(&r).unwrap();
    }
    assert_eq!(out, solo(&first));
    let st = s.stats().prefix_cache;
    assert_eq!((st.queries, st.hit_tokens), (1, 0));
    assert_eq!(
        st.cached_blocks, 4,
        "64 prompt tokens + 3 + 3 computed = 4 full blocks"
    );
    let second = req(with_tail(200), 4);
    let id = s.add(second.clone()).unwrap();
    let plan = s.schedule().unwrap();
    assert_eq!(
        plan.entries[0].tokens,
        64..67,
        "the cached 64 tokens are skipped"
    );
    let r = model.step(&s, &plan);
    assert_eq!(
        r[0].1,
        Some(solo(&second)[0]),
        "prefill read the first request's blocks"
    );
    s.cancel(id).unwrap();
    assert_eq!(
        s.on_step_done(&r).unwrap(),
        StepOutcome::default(),
        "cancelled: ignored"
    );
    let st = s.stats().prefix_cache;
    assert_eq!((st.queries, st.hit_tokens, st.hit_blocks), (2, 64, 4));
    // Another adapter: same tokens, no reuse.
    let salted = Request {
        cache_salt: 9,
        ..second.clone()
    };
    s.add(salted).unwrap();
    let plan = s.schedule().unwrap();
    assert_eq!(plan.entries[0].tokens, 0..67);
    assert_eq!(s.stats().prefix_cache.hit_tokens, 64);
    // Cache off: no lookups at all.
    let mut off = sched(config(128), 64, false);
    drive(&mut off, vec![(0, first.clone()), (5, second)]);
    assert_eq!(off.stats().prefix_cache, PrefixCacheStats::default());
}

#[test]
fn randomized_stress_keeps_invariants() {
    let mut rng = Rng::seeded(7);
    for round in 0..6usize {
        let windowed = round % 2 == 1;
        let cfg = SchedulerConfig {
            max_running: 6,
            step_token_budget: 24,
            window: windowed.then_some(40),
            ..config(24)
        };
        let kv = BlockManager::new(8, 30, !round.is_multiple_of(3)).unwrap();
        let wkv = windowed.then(|| BlockManager::new(8, 12, true).unwrap());
        let mut s = Scheduler::new(cfg, kv, wkv).unwrap();
        let start = s.kv().free_blocks();
        let mut model = FakeModel::new(&s);
        let bases: Vec<Vec<u32>> = (0..3).map(|_| prompt(&mut rng, 40)).collect();
        let mut live: HashMap<SeqId, Request> = HashMap::new();
        let mut got: HashMap<SeqId, Vec<u32>> = HashMap::new();
        for step in 0..400 {
            if step < 300 && rng.next_u64().is_multiple_of(3) {
                let base = &bases[(rng.next_u64() % 3) as usize];
                let mut p = base[..(rng.next_u64() % 40) as usize + 1].to_vec();
                let extra = (rng.next_u64() % 30) as usize;
                p.extend(prompt(&mut rng, extra));
                let r = req(p, (rng.next_u64() % 40) as usize + 1);
                if let Ok(id) = s.add(r.clone()) {
                    live.insert(id, r);
                }
            }
            if rng.next_u64().is_multiple_of(40) {
                if let Some(&id) = live.keys().min() {
                    s.cancel(id).unwrap();
                    live.remove(&id);
                }
            }
            let plan = s.schedule().unwrap();
            assert!(plan.num_tokens() <= 24);
            let res = model.step(&s, &plan);
            for (id, t) in &res {
                got.entry(*id).or_default().extend(t);
            }
            for (id, _) in s.on_step_done(&res).unwrap().finished {
                let r = live.remove(&id).unwrap();
                assert_eq!(got[&id], solo(&r), "round {round} {id}");
            }
            s.check_invariants().unwrap();
        }
        let st = s.stats();
        eprintln!(
            "round {round}: {} preemptions, {:?}",
            st.preemptions, st.prefix_cache
        );
        for id in live.keys() {
            s.cancel(*id).unwrap();
        }
        assert_eq!(s.kv().free_blocks(), start);
    }
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let mut s = sched(config(32), 16, true);
    let a = s.add(req(vec![10; 20], 3)).unwrap();
    let plan = s.schedule().unwrap();
    assert!(plan.entries[0].needs_logits);
    assert!(s.schedule().is_err(), "planning twice");
    assert!(s.on_step_done(&[]).is_err(), "missing the sampled token");
    assert!(s.on_step_done(&[(a, None)]).is_err());
    s.on_step_done(&[(a, Some(42)), (SeqId(77), Some(1))])
        .unwrap();
    assert_eq!(s.generated(a).unwrap(), &[42]);
    assert!(s.tokens(SeqId(77)).is_err());
    assert!(s.finish(SeqId(77)).is_err());
    s.finish(a).unwrap();
    assert!(s.cancel(a).is_err());
    assert!(s.is_idle());
    s.check_invariants().unwrap();
}

#[test]
fn bad_configs_are_refused() {
    let kv = || BlockManager::new(16, 64, false).unwrap();
    let cfg = SchedulerConfig {
        step_token_budget: 4,
        ..config(32)
    };
    assert!(
        Scheduler::new(cfg, kv(), None).is_err(),
        "budget below max_running"
    );
    let cfg = SchedulerConfig {
        window: Some(64),
        ..config(32)
    };
    assert!(
        Scheduler::new(cfg.clone(), kv(), None).is_err(),
        "window without its pool"
    );
    let small = BlockManager::new(16, 6, false).unwrap();
    assert!(
        Scheduler::new(cfg.clone(), kv(), Some(small)).is_err(),
        "pool < window + chunk"
    );
    let enough = BlockManager::new(16, 7, false).unwrap();
    assert!(Scheduler::new(cfg, kv(), Some(enough)).is_ok());
}

mod window;
