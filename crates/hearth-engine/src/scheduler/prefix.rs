//! The scheduler's side of the prefix cache: how much of a waiting sequence's prompt
//! both pools hold, and keying a running sequence's written blocks.
//!
//! A hit of `h` blocks lets a sequence start computing at position `P = h * block_size`.
//! Each later token attends to every global position before it, so the global pool
//! must hold blocks `0..h`. On the windowed layers the token at `P` attends only to
//! positions from `P + 1 - window` on, and the tokens after it need no earlier ones, so
//! that pool needs only blocks `window_start(P)..h`. The sequence's windowed table then
//! starts at `window_start(P)`, as if it had computed the prefix itself and released
//! the blocks that slid out of its window.
//!
//! The pools evict apart, so the windowed blocks before the longest global hit may be
//! gone while the global ones stay. The lookup then shortens the hit to the longest one
//! whose window is whole as well; it never attaches a block it did not find by key.

use std::iter;

use super::Scheduler;
use crate::{Error, Result, SeqId};

/// First logical block the windowed layers read for a token at `pos` (0 without a
/// window): the token attends to positions `pos + 1 - window ..= pos`.
pub(super) fn window_start(pos: usize, window: Option<usize>, block_size: usize) -> usize {
    window.map_or(0, |w| (pos + 1).saturating_sub(w) / block_size)
}

impl Scheduler {
    /// Blocks of `id`'s tokens to take from the prefix cache: the largest `h` such
    /// that the global pool holds blocks `0..h` and the windowed pool, if any, holds
    /// `window_start(h * block_size)..h`, leaving at least one token to compute (its
    /// logits are needed).
    pub(super) fn prefix_hit(&self, id: SeqId) -> Result<usize> {
        let bs = self.kv.block_size();
        let seq = self.seq(id)?;
        let limit = ((seq.tokens.len() - 1) / bs).min(seq.hashes.len());
        let hashes = &seq.hashes[..limit];
        let global = self.kv.cached_run(hashes, &seq.tokens, 0);
        let Some(w) = &self.window_kv else {
            return Ok(global);
        };
        // run[i]: how many blocks ending at block i the windowed pool holds in a row.
        let mut run = Vec::with_capacity(global);
        for i in 0..global {
            let before = if i == 0 { 0 } else { run[i - 1] };
            run.push(if w.holds(hashes, &seq.tokens, i) {
                before + 1
            } else {
                0
            });
        }
        let hit = (1..=global)
            .rev()
            .find(|&h| run[h - 1] >= h - window_start(h * bs, self.config.window, bs));
        Ok(hit.unwrap_or(0))
    }

    /// Offers `id`'s written full blocks not offered yet to both pools' prefix caches
    /// (a windowed pool keys only those it still holds).
    pub(super) fn key_computed(&mut self, id: SeqId) -> Result<()> {
        let bs = self.kv.block_size();
        let seq = self
            .seqs
            .get_mut(&id)
            .ok_or(Error::UnknownSequence { seq: id })?;
        let done = seq.computed / bs;
        if done <= seq.keyed {
            return Ok(());
        }
        let blocks = seq.keyed..done;
        seq.keyed = done;
        let seq = self
            .seqs
            .get(&id)
            .ok_or(Error::UnknownSequence { seq: id })?;
        for pool in iter::once(&mut self.kv).chain(self.window_kv.as_mut()) {
            if pool.contains(id) {
                pool.register(id, &seq.hashes, &seq.tokens, blocks.clone())?;
            }
        }
        Ok(())
    }
}
