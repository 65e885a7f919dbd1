//! What a scheduler step hands out and reports: the plan of one step, its outcome,
//! and the counters.

use std::ops::Range;

use crate::prefix_cache::PrefixCacheStats;
use crate::{BlockId, BlockTable, FinishReason, SeqId};

/// One sequence's work in a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepEntry {
    /// The sequence.
    pub seq: SeqId,
    /// Which of the sequence's tokens to run (their KV gets written).
    pub tokens: Range<usize>,
    /// Position of the first of them (equal to `tokens.start`).
    pub positions_start: usize,
    /// Whether to return logits for the last of them (end of the known tokens).
    pub needs_logits: bool,
    /// Blocks of the global layers, for logical blocks `0..`.
    pub block_table: Vec<BlockId>,
    /// Blocks of the windowed layers, when the model has them.
    pub window_table: Option<BlockTable>,
}

/// One engine step: decode entries first, then prefill chunks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepPlan {
    /// The batch, in order.
    pub entries: Vec<StepEntry>,
    /// Sequences preempted while planning (their blocks are free; they wait again).
    pub preempted: Vec<SeqId>,
}

impl StepPlan {
    /// Tokens in the step.
    pub fn num_tokens(&self) -> usize {
        self.entries.iter().map(|e| e.tokens.len()).sum()
    }

    /// Whether there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What a finished step changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepOutcome {
    /// Sequences that finished (their blocks are already freed), with why.
    pub finished: Vec<(SeqId, FinishReason)>,
}

/// Counters and gauges, as a snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchedulerStats {
    /// Sequences in the batch.
    pub running: usize,
    /// Sequences waiting.
    pub waiting: usize,
    /// Fraction of the global KV pool in use.
    pub kv_usage: f64,
    /// Fraction of the windowed KV pool in use, when there is one.
    pub window_kv_usage: Option<f64>,
    /// Prefix-cache counters of the global pool (hits are counted here).
    pub prefix_cache: PrefixCacheStats,
    /// Prefix-cache gauges and evictions of the windowed pool, when there is one.
    pub window_prefix_cache: Option<PrefixCacheStats>,
    /// Preemptions since start.
    pub preemptions: u64,
    /// Prompt tokens accepted since start.
    pub prompt_tokens: u64,
    /// Tokens generated since start.
    pub generated_tokens: u64,
}
