//! Block pool tests: sizing, growth, exhaustion, sharing, windows.

use super::*;
use crate::prefix_cache::block_hashes;

const A: SeqId = SeqId(1);
const B: SeqId = SeqId(2);

#[test]
fn sizing_from_budgets() {
    let m = BlockManager::with_token_budget(16, 1000, false).unwrap();
    assert_eq!(m.n_blocks(), 62);
    let m = BlockManager::with_byte_budget(16, 1024, 1 << 20, false).unwrap();
    assert_eq!(m.n_blocks(), 64);
    assert!(BlockManager::with_token_budget(16, 15, false).is_err());
    assert!(BlockManager::with_byte_budget(16, 0, 1 << 20, false).is_err());
    assert!(BlockManager::new(0, 4, false).is_err());
}

#[test]
fn allocate_grow_free() {
    let mut m = BlockManager::new(4, 8, false).unwrap();
    m.allocate_for(A, 5).unwrap();
    assert_eq!(m.table(A).unwrap().blocks(), &[BlockId(0), BlockId(1)]);
    m.allocate_for(A, 3).unwrap();
    assert_eq!(
        m.table(A).unwrap().blocks().len(),
        2,
        "fills the partial block first"
    );
    m.allocate_for(A, 1).unwrap();
    assert_eq!(m.table(A).unwrap().blocks().len(), 3);
    assert_eq!(m.table(A).unwrap().tokens(), 9);
    assert_eq!(m.free_blocks(), 5);
    assert!((m.usage() - 3.0 / 8.0).abs() < 1e-12);
    assert!(m.can_allocate(20));
    assert!(!m.can_allocate(21));
    m.free(A).unwrap();
    assert_eq!(m.free_blocks(), 8);
    m.check_invariants().unwrap();
}

#[test]
fn exhaustion_is_an_error_and_changes_nothing() {
    let mut m = BlockManager::new(4, 3, false).unwrap();
    m.allocate_for(A, 8).unwrap();
    let err = m.allocate_for(B, 8).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfBlocks {
                needed: 2,
                available: 1
            }
        ),
        "{err}"
    );
    assert!(!m.contains(B));
    assert_eq!(m.free_blocks(), 1);
    assert_eq!(m.max_new_tokens(A), 4);
    m.allocate_for(A, 4).unwrap();
    assert_eq!(m.free_blocks(), 0);
    m.check_invariants().unwrap();
}

#[test]
fn bad_ids_are_errors() {
    let mut m = BlockManager::new(4, 3, false).unwrap();
    assert!(matches!(m.free(A), Err(Error::UnknownSequence { seq: A })));
    assert!(m.table(A).is_err());
    assert!(m.release_before(A, 8).is_err());
    assert!(m.register(A, &[], &[], 0..0).is_err());
    assert_eq!(m.ref_count(BlockId(99)), None);
}

#[test]
fn shared_blocks_are_ref_counted_and_cached() {
    let mut m = BlockManager::new(4, 6, true).unwrap();
    let toks: Vec<u32> = (0..10).collect();
    let h = block_hashes(&toks, 4, 7);
    m.allocate_for(A, 10).unwrap();
    assert_eq!(m.register(A, &h, &toks, 0..9 / 4).unwrap(), 2);
    assert_eq!(m.cached_run(&h, &toks, 0), 2);
    m.attach_cached(B, &h, &toks, 0, 2).unwrap();
    let shared = m.table(B).unwrap().blocks().to_vec();
    assert_eq!(shared, m.table(A).unwrap().blocks()[..2]);
    assert_eq!(m.ref_count(shared[0]), Some(2));
    m.allocate_for(B, 3).unwrap();
    assert_eq!(m.table(B).unwrap().blocks().len(), 3);
    m.free(A).unwrap();
    assert_eq!(m.ref_count(shared[0]), Some(1));
    m.free(B).unwrap();
    // Both shared blocks are now cached but evictable; everything is allocatable.
    assert_eq!(m.free_blocks(), 6);
    assert_eq!(m.prefix_stats().evictable_blocks, 2);
    // Tail first on the LRU list: block 1 is evicted before block 0.
    assert_eq!(m.prefix_cache().lru_order(), vec![shared[1], shared[0]]);
    m.allocate_for(A, 24).unwrap();
    assert_eq!(m.prefix_stats().evictions, 2);
    assert_eq!(m.cached_run(&h, &toks, 0), 0);
    m.check_invariants().unwrap();
}

#[test]
fn released_keyed_blocks_stay_cached() {
    let mut m = BlockManager::new(4, 8, true).unwrap();
    let toks: Vec<u32> = (0..16).collect();
    let h = block_hashes(&toks, 4, 0);
    m.allocate_for(A, 16).unwrap();
    assert_eq!(m.register(A, &h, &toks, 0..4).unwrap(), 4);
    assert_eq!(m.release_before(A, 9).unwrap(), 2);
    // Out of the window but keyed: evictable and still found, not freed.
    assert_eq!(m.prefix_stats().evictable_blocks, 2);
    assert_eq!(m.free_blocks(), 6);
    assert_eq!(m.cached_run(&h, &toks, 0), 4);
    assert!(m.holds(&h, &toks, 0) && !m.holds(&h, &toks, 4));
    assert_eq!(m.register(A, &h, &toks, 0..4).unwrap(), 0, "all keyed");
    // Another sequence takes only the blocks from 1 on: one evictable, two shared.
    m.attach_cached(B, &h, &toks, 1, 4).unwrap();
    let t = m.table(B).unwrap().clone();
    assert_eq!((t.first_block(), t.tokens()), (1, 16));
    assert_eq!(t.blocks()[1..], m.table(A).unwrap().blocks()[..]);
    assert_eq!(m.ref_count(t.blocks()[0]), Some(1));
    assert_eq!(m.ref_count(t.blocks()[1]), Some(2));
    assert_eq!(m.prefix_stats().evictable_blocks, 1);
    m.check_invariants().unwrap();
}

#[test]
fn release_before_keeps_a_window() {
    let (bs, window) = (16usize, 100usize);
    let mut m = BlockManager::new(bs, 64, false).unwrap();
    let bound = window.div_ceil(bs) + 1;
    for pos in 0..4000usize {
        m.allocate_for(A, 1).unwrap();
        m.release_before(A, (pos + 2).saturating_sub(window))
            .unwrap();
        let t = m.table(A).unwrap();
        assert!(
            t.blocks().len() <= bound,
            "{} blocks at {pos}",
            t.blocks().len()
        );
        assert_eq!(t.tokens(), pos + 1);
    }
    assert_eq!(m.table(A).unwrap().first_block(), (4001 - window) / bs);
    m.free(A).unwrap();
    assert_eq!(m.free_blocks(), 64);
}
