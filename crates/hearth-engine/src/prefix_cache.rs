//! Automatic prefix caching: full KV blocks keyed by a hash chained over their tokens.
//!
//! A block's key is `hash(parent key, salt, its block_size tokens)`, so equal keys mean
//! equal token prefixes (and equal salt, e.g. the same adapter) up to and including that
//! block. The key is 128 bits from a small stable mixer written here (no std
//! `DefaultHasher`, whose output may change between Rust versions); each entry also keeps
//! its tokens and parent key, and a lookup compares them, so a collision would need a
//! 128-bit key clash on a block whose own tokens also match.
//!
//! The cache owns no blocks. The [`BlockManager`](crate::BlockManager) owns the pool and
//! the reference counts; this module keeps the key ↔ block maps and the LRU list of
//! cached blocks that no sequence references (evictable), with O(1) push, remove and pop.

use std::collections::HashMap;

use crate::BlockId;

/// The chained key of one full block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockHash(pub u128);

impl BlockHash {
    /// The parent key of a sequence's first block.
    pub const ROOT: BlockHash = BlockHash(0);
}

/// splitmix64's finalizer: a cheap, stable, well-spread 64-bit mix.
fn fmix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The key of a block with `tokens` after a prefix keyed `parent`, under `salt`.
pub fn hash_block(parent: BlockHash, salt: u64, tokens: &[u32]) -> BlockHash {
    // Two lanes with different seeds and multipliers, mixed after every word.
    let mut a = fmix64(parent.0 as u64 ^ 0x9e37_79b9_7f4a_7c15);
    let mut b = fmix64((parent.0 >> 64) as u64 ^ 0xc2b2_ae3d_27d4_eb4f);
    let mut feed = |w: u64| {
        a = fmix64(a ^ w).wrapping_mul(0xff51_afd7_ed55_8ccd);
        b = fmix64(b.rotate_left(29) ^ w).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    };
    feed(salt);
    feed(tokens.len() as u64);
    for pair in tokens.chunks(2) {
        let hi = pair.get(1).map_or(u64::MAX, |&t| t as u64);
        feed((pair[0] as u64) | (hi << 32));
    }
    BlockHash(((fmix64(a ^ b.rotate_left(17)) as u128) << 64) | fmix64(b ^ a) as u128)
}

/// Keys of every full block of `tokens`, in order (a partial last block has none).
pub fn block_hashes(tokens: &[u32], block_size: usize, salt: u64) -> Vec<BlockHash> {
    let mut parent = BlockHash::ROOT;
    tokens
        .chunks_exact(block_size.max(1))
        .map(|block| {
            parent = hash_block(parent, salt, block);
            parent
        })
        .collect()
}

/// Counters of the prefix cache since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefixCacheStats {
    /// Lookups made (one per admitted sequence while enabled).
    pub queries: u64,
    /// Tokens whose prefill a hit skipped.
    pub hit_tokens: u64,
    /// Blocks reused by hits.
    pub hit_blocks: u64,
    /// Cached blocks evicted to make room.
    pub evictions: u64,
    /// Blocks currently cached (referenced or not).
    pub cached_blocks: usize,
    /// Cached blocks no sequence references (evictable).
    pub evictable_blocks: usize,
}

/// What one cached block holds, to verify a key match.
#[derive(Debug, Clone)]
struct Entry {
    hash: BlockHash,
    parent: BlockHash,
    tokens: Box<[u32]>,
}

const NIL: u32 = u32::MAX;

/// Intrusive doubly-linked list over block indices: O(1) push back, remove, pop front.
#[derive(Debug, Clone)]
struct Lru {
    prev: Vec<u32>,
    next: Vec<u32>,
    linked: Vec<bool>,
    head: u32,
    tail: u32,
    len: usize,
}

impl Lru {
    fn new(n: usize) -> Self {
        Self {
            prev: vec![NIL; n],
            next: vec![NIL; n],
            linked: vec![false; n],
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }

    fn push_back(&mut self, i: u32) {
        let iu = i as usize;
        if self.linked[iu] {
            self.remove(i);
        }
        self.prev[iu] = self.tail;
        self.next[iu] = NIL;
        if self.tail == NIL {
            self.head = i;
        } else {
            self.next[self.tail as usize] = i;
        }
        self.tail = i;
        self.linked[iu] = true;
        self.len += 1;
    }

    fn remove(&mut self, i: u32) -> bool {
        let iu = i as usize;
        if !self.linked[iu] {
            return false;
        }
        let (p, n) = (self.prev[iu], self.next[iu]);
        if p == NIL {
            self.head = n;
        } else {
            self.next[p as usize] = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.prev[n as usize] = p;
        }
        self.linked[iu] = false;
        self.len -= 1;
        true
    }

    fn pop_front(&mut self) -> Option<u32> {
        let h = self.head;
        (h != NIL && self.remove(h)).then_some(h)
    }
}

/// Key ↔ block maps and the LRU list of evictable cached blocks (see the module doc).
#[derive(Debug, Clone)]
pub struct PrefixCache {
    enabled: bool,
    map: HashMap<BlockHash, BlockId>,
    entries: Vec<Option<Entry>>,
    lru: Lru,
    stats: PrefixCacheStats,
}

impl PrefixCache {
    /// A cache over a pool of `n_blocks`; when `enabled` is false it never stores or
    /// finds anything, so freed blocks go straight back to the free list.
    pub fn new(n_blocks: usize, enabled: bool) -> Self {
        Self {
            enabled,
            map: HashMap::new(),
            entries: vec![None; n_blocks],
            lru: Lru::new(n_blocks),
            stats: PrefixCacheStats::default(),
        }
    }

    /// Whether caching is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Counters and gauges.
    pub fn stats(&self) -> PrefixCacheStats {
        PrefixCacheStats {
            cached_blocks: self.map.len(),
            evictable_blocks: self.lru.len,
            ..self.stats
        }
    }

    /// Cached blocks no one references.
    pub fn evictable(&self) -> usize {
        self.lru.len
    }

    /// Whether `block` holds a cached, keyed block.
    pub fn is_cached(&self, block: BlockId) -> bool {
        self.entries.get(block.index()).is_some_and(Option::is_some)
    }

    /// Whether `block` is on the evictable list.
    pub fn is_evictable(&self, block: BlockId) -> bool {
        self.lru.linked.get(block.index()).copied().unwrap_or(false)
    }

    /// The cached block with key `hash`, if its parent key and tokens match too.
    pub fn find(&self, hash: BlockHash, parent: BlockHash, tokens: &[u32]) -> Option<BlockId> {
        if !self.enabled {
            return None;
        }
        let block = *self.map.get(&hash)?;
        let entry = self.entries.get(block.index())?.as_ref()?;
        (entry.parent == parent && *entry.tokens == *tokens).then_some(block)
    }

    /// Keys `block` as holding `tokens` after `parent`. Returns false (and stores
    /// nothing) when disabled, when the key is already cached, or when the block
    /// already has a key.
    pub fn insert(
        &mut self,
        block: BlockId,
        hash: BlockHash,
        parent: BlockHash,
        tokens: &[u32],
    ) -> bool {
        if !self.enabled || self.map.contains_key(&hash) || self.is_cached(block) {
            return false;
        }
        let Some(slot) = self.entries.get_mut(block.index()) else {
            return false;
        };
        *slot = Some(Entry {
            hash,
            parent,
            tokens: tokens.into(),
        });
        self.map.insert(hash, block);
        true
    }

    /// Puts an unreferenced cached block at the most-recently-used end of the LRU list.
    pub(crate) fn make_evictable(&mut self, block: BlockId) {
        self.lru.push_back(block.0);
    }

    /// Takes a block off the evictable list (it is referenced again).
    pub(crate) fn take(&mut self, block: BlockId) {
        self.lru.remove(block.0);
    }

    /// Evicts the least recently used unreferenced block, forgetting its key.
    pub(crate) fn evict_lru(&mut self) -> Option<BlockId> {
        let block = BlockId(self.lru.pop_front()?);
        if let Some(entry) = self.entries[block.index()].take() {
            self.map.remove(&entry.hash);
        }
        self.stats.evictions += 1;
        Some(block)
    }

    /// Records one lookup that reused `blocks` blocks of `block_size` tokens.
    pub(crate) fn record_query(&mut self, blocks: usize, block_size: usize) {
        self.stats.queries += 1;
        self.stats.hit_blocks += blocks as u64;
        self.stats.hit_tokens += (blocks * block_size) as u64;
    }

    /// The evictable blocks, least recently used first (for tests and checks).
    pub fn lru_order(&self) -> Vec<BlockId> {
        let mut out = Vec::with_capacity(self.lru.len);
        let mut i = self.lru.head;
        while i != NIL && out.len() <= self.lru.len {
            out.push(BlockId(i));
            i = self.lru.next[i as usize];
        }
        out
    }

    /// Checks that the map and entries agree and the LRU list is well formed.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        for (hash, block) in &self.map {
            match self.entries.get(block.index()).and_then(Option::as_ref) {
                Some(e) if e.hash == *hash => {}
                _ => return Err(format!("key of {block} does not match its entry")),
            }
        }
        let keyed = self.entries.iter().filter(|e| e.is_some()).count();
        if keyed != self.map.len() {
            return Err(format!("{keyed} keyed entries but {} keys", self.map.len()));
        }
        let order = self.lru_order();
        if order.len() != self.lru.len {
            return Err(format!("LRU walk {} != len {}", order.len(), self.lru.len));
        }
        if let Some(b) = order.iter().find(|b| !self.is_cached(**b)) {
            return Err(format!("{b} is evictable but not cached"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_chained_and_salted() {
        let t: Vec<u32> = (0..12).collect();
        let h = block_hashes(&t, 4, 0);
        assert_eq!(h.len(), 3);
        assert_eq!(h, block_hashes(&t[..12], 4, 0));
        assert_eq!(block_hashes(&t[..11], 4, 0), h[..2]);
        assert_ne!(block_hashes(&t, 4, 1)[0], h[0], "salt separates");
        // Same block tokens after a different prefix get a different key.
        let mut u = t.clone();
        u[0] = 99;
        let g = block_hashes(&u, 4, 0);
        assert_ne!(g[1], h[1]);
        assert_eq!(hash_block(h[0], 0, &t[4..8]), h[1]);
        // Pinned value: the key must not change between builds or Rust versions.
        assert_eq!(
            hash_block(BlockHash::ROOT, 0, &[1, 2, 3]).0,
            0x94bd_5fe0_69c9_a04d_0092_b38f_fb24_0311
        );
        assert_ne!(
            hash_block(BlockHash::ROOT, 0, &[1, 2]),
            hash_block(BlockHash::ROOT, 0, &[2, 1])
        );
    }

    #[test]
    fn lru_order_and_eviction() {
        let mut c = PrefixCache::new(8, true);
        for b in 0..4u32 {
            let t = [b, b + 1];
            assert!(c.insert(
                BlockId(b),
                hash_block(BlockHash::ROOT, 0, &t),
                BlockHash::ROOT,
                &t
            ));
        }
        for b in [2u32, 0, 3, 1] {
            c.make_evictable(BlockId(b));
        }
        c.take(BlockId(0));
        c.make_evictable(BlockId(0));
        assert_eq!(
            c.lru_order(),
            vec![BlockId(2), BlockId(3), BlockId(1), BlockId(0)]
        );
        assert_eq!(c.evict_lru(), Some(BlockId(2)));
        assert!(!c.is_cached(BlockId(2)));
        let t = [2u32, 3];
        assert_eq!(
            c.find(hash_block(BlockHash::ROOT, 0, &t), BlockHash::ROOT, &t),
            None
        );
        assert_eq!(c.stats().evictions, 1);
        assert_eq!(c.stats().cached_blocks, 3);
        c.check().unwrap();
    }

    #[test]
    fn disabled_cache_stores_nothing() {
        let mut c = PrefixCache::new(2, false);
        let t = [1u32, 2];
        let h = hash_block(BlockHash::ROOT, 0, &t);
        assert!(!c.insert(BlockId(0), h, BlockHash::ROOT, &t));
        assert_eq!(c.find(h, BlockHash::ROOT, &t), None);
    }

    #[test]
    fn find_verifies_tokens() {
        let mut c = PrefixCache::new(2, true);
        let t = [1u32, 2];
        let h = hash_block(BlockHash::ROOT, 0, &t);
        assert!(c.insert(BlockId(1), h, BlockHash::ROOT, &t));
        assert!(
            !c.insert(BlockId(0), h, BlockHash::ROOT, &t),
            "duplicate key"
        );
        assert_eq!(c.find(h, BlockHash::ROOT, &t), Some(BlockId(1)));
        assert_eq!(c.find(h, BlockHash::ROOT, &[1, 3]), None, "forged key");
    }
}
