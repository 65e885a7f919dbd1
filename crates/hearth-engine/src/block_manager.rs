//! Paged KV bookkeeping: a pool of fixed-size blocks, reference counts and one block
//! table per sequence. No tensors: block `b` names the slot `b` in whatever KV storage
//! the model keeps; this module only decides who owns which slot.
//!
//! # Invariants (checked by [`BlockManager::check_invariants`], run after every
//! operation in debug builds)
//! - Every block is in exactly one state: *free* (ref count 0, on the free list, no
//!   key), *evictable* (ref count 0, keyed in the prefix cache, on its LRU list) or
//!   *in use* (ref count > 0, on neither list).
//! - A block's ref count equals the number of block tables that hold it.
//! - A table covering `tokens` logical positions holds blocks for logical indices
//!   `first_block .. ceil(tokens / block_size)`, with no gaps.
//! - Only full blocks are shared (they come from the prefix cache), so a sequence
//!   only ever writes into blocks it holds alone; no copy-on-write is needed.
//!
//! # Sliding windows
//! A model with sliding-window layers keeps two managers: one for the global layers,
//! whose tables keep every block, and one for the windowed layers, whose tables drop
//! their leading blocks through [`BlockManager::release_before`] once no future token
//! can attend to them. A windowed table then starts at logical block `first_block`,
//! so a sequence holds at most `ceil(window / block_size) + 1` windowed blocks after a
//! decode step however long it grows. Each manager is sized from the bytes per token of
//! its own layer group. Two pools rather than holes in one table keep each pool's
//! blocks uniform in bytes, which one pool for both groups could not.
//!
//! Both managers key their written full blocks with the same chained hashes. A windowed
//! block released out of the window while keyed is not freed but becomes evictable,
//! like a finished sequence's block, so a later sequence with the same prefix can take
//! the window before its reuse point from the cache (see
//! [`Scheduler`](crate::Scheduler)'s admission) while it is not evicted.
//!
//! Allocation takes free blocks first, then evicts the least recently used cached
//! block that no sequence references. Bad ids give errors, never panics.

use std::collections::HashMap;
use std::ops::Range;

use crate::prefix_cache::{BlockHash, PrefixCache, PrefixCacheStats};
use crate::{BlockId, Error, Result, SeqId};

/// One sequence's blocks in one pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockTable {
    first_block: usize,
    blocks: Vec<BlockId>,
    tokens: usize,
}

impl BlockTable {
    /// Blocks for logical indices `first_block()..`; position `p` lives in
    /// `blocks()[p / block_size - first_block()]` at offset `p % block_size`.
    pub fn blocks(&self) -> &[BlockId] {
        &self.blocks
    }

    /// Logical index of `blocks()[0]` (non-zero only after [`BlockManager::release_before`]).
    pub fn first_block(&self) -> usize {
        self.first_block
    }

    /// Positions the table has room for, counted from position 0.
    pub fn tokens(&self) -> usize {
        self.tokens
    }
}

/// The pool of KV blocks (see the module doc).
#[derive(Debug, Clone)]
pub struct BlockManager {
    block_size: usize,
    ref_counts: Vec<u32>,
    free: Vec<BlockId>,
    tables: HashMap<SeqId, BlockTable>,
    cache: PrefixCache,
}

impl BlockManager {
    /// A pool of `n_blocks` blocks of `block_size` tokens, with the prefix cache on or off.
    pub fn new(block_size: usize, n_blocks: usize, prefix_cache: bool) -> Result<Self> {
        if block_size == 0 || n_blocks == 0 || n_blocks >= u32::MAX as usize {
            return Err(Error::InvalidArgument(format!(
                "block pool needs block_size >= 1 and 1 <= n_blocks < 2^32, got {block_size} and {n_blocks}"
            )));
        }
        Ok(Self {
            block_size,
            ref_counts: vec![0; n_blocks],
            // Reversed so that blocks come out in order 0, 1, 2, ...
            free: (0..n_blocks as u32).rev().map(BlockId).collect(),
            tables: HashMap::new(),
            cache: PrefixCache::new(n_blocks, prefix_cache),
        })
    }

    /// As many whole blocks as fit in `token_budget` tokens (never more).
    pub fn with_token_budget(
        block_size: usize,
        token_budget: usize,
        prefix_cache: bool,
    ) -> Result<Self> {
        Self::new(block_size, token_budget / block_size.max(1), prefix_cache)
    }

    /// As many whole blocks as fit in `byte_budget` bytes, a token costing
    /// `kv_bytes_per_token` (keys and values of every layer in this pool's group).
    pub fn with_byte_budget(
        block_size: usize,
        kv_bytes_per_token: usize,
        byte_budget: usize,
        prefix_cache: bool,
    ) -> Result<Self> {
        let block_bytes = kv_bytes_per_token.saturating_mul(block_size);
        if block_bytes == 0 {
            return Err(Error::InvalidArgument(
                "kv_bytes_per_token and block_size must be >= 1".into(),
            ));
        }
        Self::new(block_size, byte_budget / block_bytes, prefix_cache)
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Blocks in the pool.
    pub fn n_blocks(&self) -> usize {
        self.ref_counts.len()
    }

    /// Blocks an allocation can take now: free ones plus evictable cached ones.
    pub fn free_blocks(&self) -> usize {
        self.free.len() + self.cache.evictable()
    }

    /// Fraction of the pool referenced by sequences (evictable cached blocks count as free).
    pub fn usage(&self) -> f64 {
        1.0 - self.free_blocks() as f64 / self.n_blocks() as f64
    }

    /// Blocks needed to hold `n_tokens` positions from position 0.
    pub fn blocks_for(&self, n_tokens: usize) -> usize {
        n_tokens.div_ceil(self.block_size)
    }

    /// Whether a new sequence of `n_tokens` tokens would fit now.
    pub fn can_allocate(&self, n_tokens: usize) -> bool {
        self.blocks_for(n_tokens) <= self.free_blocks()
    }

    /// New blocks `seq` needs to grow by `n_new_tokens` (an unknown `seq` starts empty).
    pub fn blocks_needed(&self, seq: SeqId, n_new_tokens: usize) -> usize {
        let (tokens, have) = self
            .tables
            .get(&seq)
            .map_or((0, 0), |t| (t.tokens, t.first_block + t.blocks.len()));
        self.blocks_for(tokens + n_new_tokens).saturating_sub(have)
    }

    /// The most new tokens `seq` could take now without evicting referenced blocks.
    pub fn max_new_tokens(&self, seq: SeqId) -> usize {
        let (tokens, have) = self
            .tables
            .get(&seq)
            .map_or((0, 0), |t| (t.tokens, t.first_block + t.blocks.len()));
        (have + self.free_blocks()) * self.block_size - tokens
    }

    /// Whether `seq` has a table here.
    pub fn contains(&self, seq: SeqId) -> bool {
        self.tables.contains_key(&seq)
    }

    /// `seq`'s table.
    pub fn table(&self, seq: SeqId) -> Result<&BlockTable> {
        self.tables.get(&seq).ok_or(Error::UnknownSequence { seq })
    }

    /// Grows `seq` (creating its table if new) by `n_new_tokens` positions, appending
    /// blocks as needed. All or nothing: on [`Error::OutOfBlocks`] nothing changes.
    pub fn allocate_for(&mut self, seq: SeqId, n_new_tokens: usize) -> Result<()> {
        let needed = self.blocks_needed(seq, n_new_tokens);
        let available = self.free_blocks();
        if needed > available {
            return Err(Error::OutOfBlocks { needed, available });
        }
        let mut fresh = Vec::with_capacity(needed);
        for _ in 0..needed {
            fresh.push(self.take_block()?);
        }
        let table = self.tables.entry(seq).or_default();
        table.blocks.extend(fresh);
        table.tokens += n_new_tokens;
        self.debug_check();
        Ok(())
    }

    /// Frees `seq`'s blocks that lie wholly before `first_needed_pos` (for a windowed
    /// layer group: the first position any future token attends to). Returns how many
    /// blocks were released. Shared blocks are only dereferenced.
    pub fn release_before(&mut self, seq: SeqId, first_needed_pos: usize) -> Result<usize> {
        let bs = self.block_size;
        let table = self
            .tables
            .get_mut(&seq)
            .ok_or(Error::UnknownSequence { seq })?;
        let target = (first_needed_pos / bs).min(table.tokens.div_ceil(bs));
        let n = target
            .saturating_sub(table.first_block)
            .min(table.blocks.len());
        let gone: Vec<BlockId> = table.blocks.drain(..n).collect();
        table.first_block += n;
        for b in gone.into_iter().rev() {
            self.deref_block(b);
        }
        self.debug_check();
        Ok(n)
    }

    /// Drops `seq`'s table, dereferencing each of its blocks. Blocks that reach zero
    /// references go back to the free list, or, when keyed in the prefix cache, onto
    /// its evictable list, last block first (so a prompt's tail is evicted before its head).
    pub fn free(&mut self, seq: SeqId) -> Result<()> {
        let table = self
            .tables
            .remove(&seq)
            .ok_or(Error::UnknownSequence { seq })?;
        for &b in table.blocks.iter().rev() {
            self.deref_block(b);
        }
        self.debug_check();
        Ok(())
    }

    /// How many blocks from logical index `from` on are cached and verified, for a
    /// sequence whose full-block keys are `hashes` over `tokens`.
    pub fn cached_run(&self, hashes: &[BlockHash], tokens: &[u32], from: usize) -> usize {
        (from..hashes.len())
            .take_while(|&i| self.holds(hashes, tokens, i))
            .count()
    }

    /// Whether the block of logical index `i` of a sequence whose full-block keys are
    /// `hashes` over `tokens` is cached here (key, parent key and tokens all match).
    pub fn holds(&self, hashes: &[BlockHash], tokens: &[u32], i: usize) -> bool {
        let bs = self.block_size;
        let parent = match i {
            0 => Some(BlockHash::ROOT),
            _ => hashes.get(i - 1).copied(),
        };
        match (hashes.get(i), parent, tokens.get(i * bs..(i + 1) * bs)) {
            (Some(&h), Some(parent), Some(block_tokens)) => {
                self.cache.find(h, parent, block_tokens).is_some()
            }
            _ => false,
        }
    }

    /// Creates `seq`'s table from the cached blocks for logical indices `from..to`
    /// (as checked by [`cached_run`](Self::cached_run)), taking a reference on each.
    /// The table then covers `to * block_size` positions.
    pub fn attach_cached(
        &mut self,
        seq: SeqId,
        hashes: &[BlockHash],
        tokens: &[u32],
        from: usize,
        to: usize,
    ) -> Result<()> {
        if self.tables.contains_key(&seq) {
            return Err(Error::InvalidArgument(format!("{seq} already has blocks")));
        }
        let bs = self.block_size;
        let mut blocks = Vec::with_capacity(to.saturating_sub(from));
        for i in from..to {
            let parent = match i {
                0 => BlockHash::ROOT,
                _ => hashes.get(i - 1).copied().unwrap_or(BlockHash::ROOT),
            };
            let found = hashes.get(i).and_then(|&h| {
                self.cache
                    .find(h, parent, tokens.get(i * bs..(i + 1) * bs)?)
            });
            let Some(b) = found else {
                return Err(Error::InvalidArgument(format!(
                    "block {i} of {seq} is not cached"
                )));
            };
            blocks.push(b);
        }
        for &b in &blocks {
            if self.ref_counts[b.index()] == 0 {
                self.cache.take(b);
            }
            self.ref_counts[b.index()] += 1;
        }
        let table = BlockTable {
            first_block: from,
            blocks,
            tokens: to * bs,
        };
        self.tables.insert(seq, table);
        self.debug_check();
        Ok(())
    }

    /// Keys `seq`'s full blocks of logical indices `blocks` in the prefix cache; the
    /// caller vouches that their KV is written (every position of each lies before the
    /// sequence's computed count). Blocks the table no longer holds (released out of
    /// the window) or does not yet hold are skipped. `hashes` are the keys of the
    /// sequence's tokens (see [`block_hashes`](crate::prefix_cache::block_hashes)).
    /// Returns how many blocks were newly keyed; a no-op when the cache is off.
    pub fn register(
        &mut self,
        seq: SeqId,
        hashes: &[BlockHash],
        tokens: &[u32],
        blocks: Range<usize>,
    ) -> Result<usize> {
        let bs = self.block_size;
        let table = self
            .tables
            .get(&seq)
            .ok_or(Error::UnknownSequence { seq })?;
        if !self.cache.enabled() {
            return Ok(0);
        }
        let full = blocks.end.min(table.tokens / bs).min(hashes.len());
        let mut added = 0;
        for i in blocks.start.max(table.first_block)..full {
            let (Some(&b), Some(block_tokens)) = (
                table.blocks.get(i - table.first_block),
                tokens.get(i * bs..(i + 1) * bs),
            ) else {
                break;
            };
            let parent = if i == 0 {
                BlockHash::ROOT
            } else {
                hashes[i - 1]
            };
            added += usize::from(self.cache.insert(b, hashes[i], parent, block_tokens));
        }
        Ok(added)
    }

    /// Counts one prefix-cache lookup that reused `blocks` blocks.
    pub fn record_prefix_query(&mut self, blocks: usize) {
        if self.cache.enabled() {
            self.cache.record_query(blocks, self.block_size);
        }
    }

    /// Whether the prefix cache is on.
    pub fn prefix_cache_enabled(&self) -> bool {
        self.cache.enabled()
    }

    /// The prefix cache's counters.
    pub fn prefix_stats(&self) -> PrefixCacheStats {
        self.cache.stats()
    }

    /// The prefix cache (read-only, for inspection).
    pub fn prefix_cache(&self) -> &PrefixCache {
        &self.cache
    }

    /// Reference count of `block`, or `None` for an id outside the pool.
    pub fn ref_count(&self, block: BlockId) -> Option<u32> {
        self.ref_counts.get(block.index()).copied()
    }

    fn take_block(&mut self) -> Result<BlockId> {
        let b = match self.free.pop() {
            Some(b) => b,
            None => self.cache.evict_lru().ok_or(Error::OutOfBlocks {
                needed: 1,
                available: 0,
            })?,
        };
        self.ref_counts[b.index()] = 1;
        Ok(b)
    }

    fn deref_block(&mut self, b: BlockId) {
        let rc = &mut self.ref_counts[b.index()];
        *rc = rc.saturating_sub(1);
        if *rc == 0 {
            if self.cache.is_cached(b) {
                self.cache.make_evictable(b);
            } else {
                self.free.push(b);
            }
        }
    }

    fn debug_check(&self) {
        #[cfg(debug_assertions)]
        if let Err(e) = self.check_invariants() {
            panic!("{e}");
        }
    }

    /// Checks every invariant in the module doc; O(blocks + table entries).
    pub fn check_invariants(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvariantViolated { what });
        let n = self.n_blocks();
        let mut held = vec![0u32; n];
        for (seq, t) in &self.tables {
            if t.first_block + t.blocks.len() != self.blocks_for(t.tokens) {
                return bad(format!(
                    "{seq}: {} + {} blocks for {} tokens",
                    t.first_block,
                    t.blocks.len(),
                    t.tokens
                ));
            }
            for b in &t.blocks {
                match held.get_mut(b.index()) {
                    Some(h) => *h += 1,
                    None => return bad(format!("{seq} holds {b} outside the pool")),
                }
            }
        }
        let mut on_free = vec![false; n];
        for b in &self.free {
            if std::mem::replace(&mut on_free[b.index()], true) {
                return bad(format!("{b} twice on the free list"));
            }
        }
        for i in 0..n {
            let b = BlockId(i as u32);
            let rc = self.ref_counts[i];
            if rc != held[i] {
                return bad(format!("{b}: ref count {rc} but {} holders", held[i]));
            }
            let (free, evictable, cached) = (
                on_free[i],
                self.cache.is_evictable(b),
                self.cache.is_cached(b),
            );
            let ok = match rc {
                0 => (free && !cached && !evictable) || (!free && cached && evictable),
                _ => !free && !evictable,
            };
            if !ok {
                return bad(format!(
                    "{b}: rc {rc}, free {free}, cached {cached}, evictable {evictable}"
                ));
            }
        }
        self.cache
            .check()
            .or_else(|what| bad(format!("prefix cache: {what}")))
    }
}

#[cfg(test)]
mod tests;
