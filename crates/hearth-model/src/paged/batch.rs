//! The ragged batch one forward step runs, and its validation.

use std::ops::Range;
use std::sync::Arc;

use crate::lora::ModelLora;

use crate::paged::PagedKv;
use crate::{Error, ModelConfig, Result};

/// The new tokens of several sequences, flattened into one forward step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaggedBatch {
    /// Token ids of every sequence, one after another.
    pub tokens: Vec<u32>,
    /// The sequences, whose ranges tile `tokens` in order.
    pub seqs: Vec<SeqSlice>,
}

/// One sequence's part of a [`RaggedBatch`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqSlice {
    /// Its tokens: a non-empty range of [`RaggedBatch::tokens`].
    pub range: Range<usize>,
    /// Position of its first token (the positions before are already in its blocks).
    pub start_pos: usize,
    /// Global-pool blocks of logical blocks `0..`: position `p` lives in
    /// `block_table[p / block_size]` at offset `p % block_size`.
    pub block_table: Vec<u32>,
    /// Window-pool blocks, exactly when the model has sliding-window layers.
    pub window_table: Option<WindowTable>,
    /// Whether to return logits after its last token.
    pub logits: bool,
    /// The LoRA adapter its tokens run with (bound to the model that runs the
    /// batch); `None` for the base model.
    pub adapter: Option<Arc<ModelLora>>,
}

/// A sequence's blocks in the sliding-window pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowTable {
    /// Logical index of the first block held; earlier ones were dropped.
    pub first_block: usize,
    /// Blocks of logical indices `first_block..`: position `p` lives in
    /// `blocks[p / block_size - first_block]`.
    pub blocks: Vec<u32>,
}

/// A validated batch, flattened per token.
pub(crate) struct Layout {
    /// Position of each token.
    pub pos: Vec<usize>,
    /// Sequence index of each token.
    pub seq: Vec<usize>,
    /// Flat global-pool slot (`block * block_size + offset`) each token writes.
    pub global_slots: Vec<usize>,
    /// Flat window-pool slot each token writes (empty without windowed layers).
    pub window_slots: Vec<usize>,
}

impl RaggedBatch {
    /// Checks the batch against `config` and `kv`: ranges tile the tokens, positions
    /// fit the context, tables cover every position the step reads or writes with
    /// block ids inside their pools, and no two tokens write the same slot.
    pub(crate) fn layout(&self, config: &ModelConfig, kv: &PagedKv) -> Result<Layout> {
        let n = self.tokens.len();
        let bs = kv.block_size();
        let window = config.sliding_window();
        let mut out = Layout {
            pos: Vec::with_capacity(n),
            seq: Vec::with_capacity(n),
            global_slots: Vec::with_capacity(n),
            window_slots: Vec::with_capacity(if window.is_some() { n } else { 0 }),
        };
        let mut expected = 0;
        for (i, s) in self.seqs.iter().enumerate() {
            let r = &s.range;
            if r.start != expected || r.end <= r.start || r.end > n {
                return Err(Error::BadBatchRange {
                    seq: i,
                    start: r.start,
                    end: r.end,
                    expected_start: expected,
                    n_tokens: n,
                });
            }
            expected = r.end;
            let end = s.start_pos + r.len();
            if end > config.context_length {
                return Err(Error::ContextLengthExceeded {
                    needed: end,
                    max: config.context_length,
                });
            }
            let need_to = end.div_ceil(bs);
            check_table(i, false, 0, &s.block_table, 0, need_to, kv.n_blocks())?;
            match (window, &s.window_table) {
                (None, None) => {}
                (Some(w), Some(t)) => {
                    let need_from = (s.start_pos + 1).saturating_sub(w) / bs;
                    check_table(
                        i,
                        true,
                        t.first_block,
                        &t.blocks,
                        need_from,
                        need_to,
                        kv.n_window_blocks(),
                    )?;
                }
                (w, _) => {
                    return Err(Error::WindowTableMismatch {
                        seq: i,
                        model_windowed: w.is_some(),
                    })
                }
            }
            for p in s.start_pos..end {
                out.pos.push(p);
                out.seq.push(i);
                let slot =
                    |first: usize, blocks: &[u32]| blocks[p / bs - first] as usize * bs + p % bs;
                out.global_slots.push(slot(0, &s.block_table));
                if let Some(t) = &s.window_table {
                    out.window_slots.push(slot(t.first_block, &t.blocks));
                }
            }
        }
        if expected != n {
            return Err(Error::BadBatchRange {
                seq: self.seqs.len(),
                start: expected,
                end: n,
                expected_start: expected,
                n_tokens: n,
            });
        }
        check_conflicts(&out, &out.global_slots, false, bs)?;
        check_conflicts(&out, &out.window_slots, true, bs)?;
        Ok(out)
    }
}

fn check_table(
    seq: usize,
    window: bool,
    first: usize,
    blocks: &[u32],
    need_from: usize,
    need_to: usize,
    pool: usize,
) -> Result<()> {
    let have_to = first + blocks.len();
    if first > need_from || have_to < need_to {
        return Err(Error::BlockTableTooShort {
            seq,
            window,
            have_from: first,
            have_to,
            need_from,
            need_to,
        });
    }
    // Every block the step can touch must be in the pool; blocks past what it
    // touches are not read, but an id outside the pool is a caller bug all the same.
    match blocks.iter().find(|&&b| b as usize >= pool) {
        Some(&block) => Err(Error::BlockOutOfRange {
            seq,
            window,
            block,
            n_blocks: pool,
        }),
        None => Ok(()),
    }
}

fn check_conflicts(lay: &Layout, slots: &[usize], window: bool, bs: usize) -> Result<()> {
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_unstable_by_key(|&i| (slots[i], i));
    for w in order.windows(2) {
        if slots[w[0]] == slots[w[1]] {
            let i = w[1];
            return Err(Error::KvSlotConflict {
                seq: lay.seq[i],
                pos: lay.pos[i],
                window,
                block: u32::try_from(slots[i] / bs).unwrap_or(u32::MAX),
                offset: slots[i] % bs,
            });
        }
    }
    Ok(())
}
