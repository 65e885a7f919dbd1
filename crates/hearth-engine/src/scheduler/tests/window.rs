//! Scheduler tests of sliding-window models: the windowed pool holds only the window,
//! cancelling returns every block, and the prefix cache reuses a prefix whose windowed
//! blocks slid out of the window (still cached, evictable), starting the new
//! sequence's windowed table at the reuse point and shortening the hit when blocks of
//! that window were evicted.

use super::*;
use crate::prefix_cache::block_hashes;

const BS: usize = 16;

/// A scheduler with a windowed pool; both pools keep a prefix cache.
fn windowed(window: usize, budget: usize, blocks: usize, window_blocks: usize) -> Scheduler {
    let cfg = SchedulerConfig {
        window: Some(window),
        ..config(budget)
    };
    let kv = BlockManager::new(BS, blocks, true).unwrap();
    let wkv = BlockManager::new(BS, window_blocks, true).unwrap();
    Scheduler::new(cfg, kv, Some(wkv)).unwrap()
}

/// Runs `r` alone to its end; returns its output and every plan entry it had.
fn run_alone(s: &mut Scheduler, model: &mut FakeModel, r: &Request) -> (Vec<u32>, Vec<StepEntry>) {
    let id = s.add(r.clone()).unwrap();
    let (mut out, mut entries) = (Vec::new(), Vec::new());
    while s.contains(id) {
        let plan = s.schedule().unwrap();
        entries.extend(plan.entries.iter().filter(|e| e.seq == id).cloned());
        let res = model.step(s, &plan);
        out.extend(res.iter().filter_map(|x| x.1));
        s.on_step_done(&res).unwrap();
        s.check_invariants().unwrap();
    }
    (out, entries)
}

/// The windowed-pool block that held logical block `i` in any of `entries`.
fn window_block(entries: &[StepEntry], i: usize) -> BlockId {
    entries
        .iter()
        .filter_map(|e| e.window_table.as_ref())
        .find_map(|t| t.blocks().get(i.checked_sub(t.first_block())?).copied())
        .unwrap()
}

fn no_stop(r: Request) -> Request {
    Request {
        stop_token_ids: vec![],
        ..r
    }
}

#[test]
fn cancellation_returns_every_block() {
    let mut rng = Rng::seeded(5);
    let cfg = SchedulerConfig {
        window: Some(40),
        ..config(32)
    };
    let mut s = Scheduler::new(
        cfg,
        BlockManager::new(16, 40, true).unwrap(),
        Some(BlockManager::new(16, 12, true).unwrap()),
    )
    .unwrap();
    let start = (
        s.kv().free_blocks(),
        s.window_kv().map(BlockManager::free_blocks),
    );
    let mut model = FakeModel::new(&s);
    let ids: Vec<SeqId> = (0..5)
        .map(|_| s.add(req(prompt(&mut rng, 50), 30)).unwrap())
        .collect();
    for _ in 0..6 {
        let plan = s.schedule().unwrap();
        let r = model.step(&s, &plan);
        s.on_step_done(&r).unwrap();
    }
    assert!(s.kv().free_blocks() < start.0);
    for id in ids {
        s.cancel(id).unwrap();
        s.check_invariants().unwrap();
    }
    assert!(matches!(
        s.cancel(SeqId(0)),
        Err(Error::UnknownSequence { .. })
    ));
    assert_eq!(
        (
            s.kv().free_blocks(),
            s.window_kv().map(BlockManager::free_blocks)
        ),
        start
    );
    assert!(s.is_idle());
}

#[test]
fn sliding_window_keeps_only_the_windows_blocks() {
    let (bs, window) = (16usize, 256usize);
    let cfg = SchedulerConfig {
        window: Some(window),
        step_token_budget: 128,
        ..config(128)
    };
    let mut s = Scheduler::new(
        cfg,
        BlockManager::new(bs, 300, true).unwrap(),
        Some(BlockManager::new(bs, 64, true).unwrap()),
    )
    .unwrap();
    let mut rng = Rng::seeded(6);
    let r = Request {
        stop_token_ids: vec![],
        ..req(prompt(&mut rng, 3000), 1000)
    };
    let id = s.add(r.clone()).unwrap();
    let mut model = FakeModel::new(&s);
    let bound = window.div_ceil(bs) + 1;
    let mut out = Vec::new();
    while s.contains(id) {
        let plan = s.schedule().unwrap();
        let res = model.step(&s, &plan);
        out.extend(res.iter().filter_map(|x| x.1));
        s.on_step_done(&res).unwrap();
        if s.contains(id) {
            let held = s.window_kv().unwrap().table(id).unwrap().blocks().len();
            assert!(held <= bound, "{held} windowed blocks > {bound}");
            assert_eq!(
                s.kv().table(id).unwrap().blocks().len(),
                s.seqs[&id].computed.div_ceil(bs)
            );
        }
    }
    assert_eq!(out, solo(&r));
    assert_eq!(s.seqs.len(), 0);
}

#[test]
fn windowed_prefix_hit_starts_the_window_at_the_reuse_point() {
    let window = 32;
    let mut s = windowed(window, 64, 64, 24);
    let mut model = FakeModel::new(&s);
    let x = prompt(&mut Rng::seeded(11), 160);
    let a = no_stop(req(x.clone(), 4));
    let (out, a_entries) = run_alone(&mut s, &mut model, &a);
    assert_eq!(out, solo(&a));
    // 163 tokens computed: 10 full blocks keyed in both pools, the windowed ones that
    // slid out of the window kept (evictable) rather than freed.
    let w = s.stats().window_prefix_cache.unwrap();
    assert_eq!((w.cached_blocks, w.evictable_blocks), (10, 10));
    assert_eq!(s.window_kv().unwrap().free_blocks(), 24);
    let b = no_stop(req([x.clone(), vec![500, 501, 502, 503, 504]].concat(), 4));
    let (out, b_entries) = run_alone(&mut s, &mut model, &b);
    assert_eq!(out, solo(&b), "the cached prefix gives the cold output");
    let first = &b_entries[0];
    assert_eq!(first.tokens, 160..165, "all 10 prefix blocks reused");
    let t = first.window_table.as_ref().unwrap();
    // The token at 160 attends from 129 on: logical block 8.
    assert_eq!(t.first_block(), (160 + 1 - window) / BS);
    assert_eq!(
        t.blocks()[..2],
        [window_block(&a_entries, 8), window_block(&a_entries, 9)]
    );
    assert_eq!(
        first.block_table[..10],
        a_entries.last().unwrap().block_table[..10]
    );
    let st = s.stats().prefix_cache;
    assert_eq!((st.queries, st.hit_tokens, st.hit_blocks), (2, 160, 10));
}

#[test]
fn windowed_prefix_is_shared_with_a_running_sequence() {
    let window = 32;
    let mut s = windowed(window, 64, 64, 24);
    let mut model = FakeModel::new(&s);
    let x = prompt(&mut Rng::seeded(12), 160);
    let a = no_stop(req(x.clone(), 30));
    let b = no_stop(req([x.clone(), vec![600, 601, 602]].concat(), 10));
    let ida = s.add(a.clone()).unwrap();
    let mut outs: HashMap<SeqId, Vec<u32>> = HashMap::new();
    let mut idb = None;
    let mut b_first = None;
    while !s.is_idle() {
        // B arrives once A has decoded a few tokens (A still runs).
        if idb.is_none() && s.generated(ida).unwrap().len() == 5 {
            idb = Some(s.add(b.clone()).unwrap());
        }
        let plan = s.schedule().unwrap();
        if let Some(e) = plan.entries.iter().find(|e| Some(e.seq) == idb) {
            b_first.get_or_insert_with(|| e.clone());
        }
        let res = model.step(&s, &plan);
        for (id, t) in &res {
            outs.entry(*id).or_default().extend(t);
        }
        s.on_step_done(&res).unwrap();
        s.check_invariants().unwrap();
    }
    assert_eq!(outs[&ida], solo(&a));
    assert_eq!(outs[&idb.unwrap()], solo(&b));
    let first = b_first.unwrap();
    assert_eq!(
        first.tokens.start, 160,
        "A's written blocks were keyed as it ran"
    );
    assert_eq!(
        first.window_table.unwrap().first_block(),
        (160 + 1 - window) / BS
    );
}

#[test]
fn evicted_window_blocks_shorten_the_hit() {
    let window = 32;
    let mut s = windowed(window, 64, 64, 24);
    let mut model = FakeModel::new(&s);
    let mut rng = Rng::seeded(13);
    let x = prompt(&mut rng, 160);
    let hx = block_hashes(&x, BS, 0);
    let a = req(x.clone(), 1);
    let (out, a_entries) = run_alone(&mut s, &mut model, &a);
    assert_eq!(out, solo(&a));
    // C shares only 112 tokens (7 blocks): it takes windowed blocks 5 and 6 and puts
    // them back as most recently used.
    let c = req([x[..112].to_vec(), prompt(&mut rng, 20)].concat(), 1);
    let (out, c_entries) = run_alone(&mut s, &mut model, &c);
    assert_eq!(out, solo(&c));
    assert_eq!(c_entries[0].tokens.start, 112);
    assert_eq!(c_entries[0].window_table.as_ref().unwrap().first_block(), 5);
    // Evict every windowed block used less recently than X's block 5: X's blocks 7, 8
    // and 9 go, 5 and 6 stay; the global pool keeps all ten.
    let wkv = s.window_kv.as_mut().unwrap();
    let lru = wkv.prefix_cache().lru_order();
    let k = lru
        .iter()
        .position(|b| *b == window_block(&a_entries, 5))
        .unwrap();
    let free = wkv.free_blocks() - wkv.prefix_stats().evictable_blocks;
    wkv.allocate_for(SeqId(999), (free + k) * BS).unwrap();
    wkv.free(SeqId(999)).unwrap();
    let held: Vec<bool> = (0..10).map(|i| wkv.holds(&hx, &x, i)).collect();
    assert_eq!(&held[5..], [true, true, false, false, false]);
    assert_eq!(s.kv().cached_run(&hx, &x, 0), 10);
    // D shares all 160 tokens, but only a 112-token hit has its window (blocks 5..7).
    let d = no_stop(req([x.clone(), vec![700, 701, 702, 703, 704]].concat(), 6));
    let (out, d_entries) = run_alone(&mut s, &mut model, &d);
    assert_eq!(out, solo(&d), "a shortened hit still gives the cold output");
    assert_eq!(d_entries[0].tokens.start, 112);
    let t = d_entries[0].window_table.as_ref().unwrap();
    assert_eq!(t.first_block(), (112 + 1 - window) / BS);
    assert_eq!(
        t.blocks()[..2],
        [window_block(&a_entries, 5), window_block(&a_entries, 6)]
    );
}

#[test]
fn windowed_prefix_cache_under_pressure_keeps_outputs() {
    let mut rng = Rng::seeded(14);
    // Tight pools: preemptions, and cached blocks evicted from both pools all the time;
    // requests in groups of eight share a base prompt cut at random lengths.
    let cfg = SchedulerConfig {
        max_running: 6,
        ..config(64)
    };
    let mut s = Scheduler::new(
        SchedulerConfig {
            window: Some(32),
            ..cfg
        },
        BlockManager::new(BS, 32, true).unwrap(),
        Some(BlockManager::new(BS, 14, true).unwrap()),
    )
    .unwrap();
    let bases: Vec<Vec<u32>> = (0..3).map(|_| prompt(&mut rng, 150)).collect();
    let reqs: Vec<(usize, Request)> = (0..24)
        .map(|i| {
            let base = &bases[i / 8];
            let cut = 40 + (rng.next_u64() % 110) as usize;
            let tail = (rng.next_u64() % 20) as usize;
            let p = [base[..cut].to_vec(), prompt(&mut rng, tail)].concat();
            (i, req(p, 1 + (rng.next_u64() % 60) as usize))
        })
        .collect();
    let outs = drive(&mut s, reqs.clone());
    for (i, ((_, r), out)) in reqs.iter().zip(&outs).enumerate() {
        assert_eq!(out, &solo(r), "request {i}");
    }
    let st = s.stats();
    let w = st.window_prefix_cache.unwrap();
    eprintln!(
        "{} preemptions, {:?}, window {w:?}",
        st.preemptions, st.prefix_cache
    );
    assert!(
        st.preemptions > 0 && st.prefix_cache.hit_tokens > 0 && w.evictions > 0,
        "{st:?}"
    );
    assert_eq!(s.kv().free_blocks(), 32);
    assert_eq!(s.window_kv().unwrap().free_blocks(), 14);
}
