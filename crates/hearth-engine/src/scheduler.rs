//! Continuous batching with chunked prefill, over the paged KV [`BlockManager`].
//!
//! Each [`Scheduler::schedule`] call plans one engine step under a token budget:
//! 1. one decode token for every running sequence whose prompt is done, oldest first;
//! 2. prefill chunks for running sequences part-way through their prompt, oldest first;
//! 3. new (or preempted) sequences from the front of the waiting queue, FIFO, while
//!    budget, running slots and blocks last. A prefix-cache hit skips the cached tokens.
//!
//! Decode tokens come first, so a long prompt never stalls running streams; it is cut
//! into chunks that fill whatever budget the decodes leave.
//!
//! **Prefix cache.** After every step a sequence's newly written full blocks are keyed
//! in both pools, so sequences admitted later, even while it still runs, can share
//! them. On sliding-window models a hit of `h` blocks needs the global blocks `0..h`
//! but only the windowed blocks that the first recomputed token attends to; windowed
//! blocks released out of a window stay cached (evictable) for that.
//!
//! **Preemption.** When a running sequence needs a block and none is left, the youngest
//! running sequence (largest [`SeqId`]) is preempted: its computed full blocks are keyed
//! in the prefix cache, all its blocks are freed, and it goes back to the front of the
//! waiting queue with its generated tokens kept, to be recomputed (often from the prefix
//! cache) when it is admitted again. Only a sequence's own blocks are ever freed, so no
//! other sequence is disturbed. The oldest running sequence always makes progress (it
//! may preempt any younger one, even one already planned this step), and every request
//! fits the pool alone (checked by [`Scheduler::add`]), so every sequence finishes.
//!
//! A token `t` of a sequence is at position `t`; the sequence's token list is its prompt
//! followed by what it generated. Its KV is written for the first `computed` tokens.
//! The plan's [`StepEntry::tokens`] is a range of that list; the model writes their KV
//! into the entry's blocks and returns logits where [`StepEntry::needs_logits`].

use std::collections::{HashMap, VecDeque};
use std::ops::Range;

use crate::prefix_cache::{hash_block, BlockHash};
use crate::{BlockManager, Error, FinishReason, Result, SeqId};

mod plan;
mod prefix;
pub use plan::{SchedulerStats, StepEntry, StepOutcome, StepPlan};

/// Limits of the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Most sequences in a step's batch; more wait in the queue.
    pub max_running: usize,
    /// Most requests waiting beyond the free batch slots (so at most `max_running +
    /// max_queued_requests` sequences in all); past it [`Scheduler::add`] returns
    /// [`Error::Overloaded`].
    pub max_queued_requests: usize,
    /// Most tokens (prompt, plus generated for preempted ones) in waiting sequences;
    /// past it [`Scheduler::add`] returns [`Error::Overloaded`].
    pub max_queued_prompt_tokens: usize,
    /// Most tokens in one step (decode tokens count one each); at least `max_running`.
    pub step_token_budget: usize,
    /// Most tokens one sequence may hold (prompt plus generated).
    pub max_context: usize,
    /// Sliding window of the windowed layer group, if the model has one; then a second
    /// block manager holds that group's blocks.
    pub window: Option<usize>,
}

/// A validated request for one sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Prompt token ids (not empty).
    pub prompt: Vec<u32>,
    /// Most tokens to generate.
    pub max_new_tokens: usize,
    /// Tokens that end generation (end-of-generation ids); the token is kept.
    pub stop_token_ids: Vec<u32>,
    /// Anything else that changes the KV of the same tokens (an adapter id): blocks are
    /// only shared between sequences with equal salt.
    pub cache_salt: u64,
}

#[derive(Debug, Clone)]
struct Sequence {
    tokens: Vec<u32>,
    prompt_len: usize,
    max_new_tokens: usize,
    stop_token_ids: Vec<u32>,
    salt: u64,
    /// Tokens whose KV is written.
    computed: usize,
    /// Keys of the full blocks of `tokens`.
    hashes: Vec<BlockHash>,
    /// Leading full blocks already offered to the prefix cache (they are written).
    keyed: usize,
}

impl Sequence {
    fn update_hashes(&mut self, bs: usize) {
        while (self.hashes.len() + 1) * bs <= self.tokens.len() {
            let i = self.hashes.len();
            let parent = self.hashes.last().copied().unwrap_or(BlockHash::ROOT);
            let h = hash_block(parent, self.salt, &self.tokens[i * bs..(i + 1) * bs]);
            self.hashes.push(h);
        }
    }
}

/// Continuous-batching scheduler (see the module doc).
#[derive(Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    kv: BlockManager,
    window_kv: Option<BlockManager>,
    seqs: HashMap<SeqId, Sequence>,
    waiting: VecDeque<SeqId>,
    /// Sorted by id, that is by arrival.
    running: Vec<SeqId>,
    next_id: u64,
    /// `(seq, end of its planned tokens, needs logits)` of the planned step not yet done.
    in_flight: Vec<(SeqId, usize, bool)>,
    queued_tokens: usize,
    stats: SchedulerStats,
}

impl Scheduler {
    /// A scheduler over `kv` (the global layers' pool) and, when `config.window` is
    /// set, `window_kv` (the windowed layers' pool), both with the same block size.
    pub fn new(
        config: SchedulerConfig,
        kv: BlockManager,
        window_kv: Option<BlockManager>,
    ) -> Result<Self> {
        let invalid = |m: String| Err(Error::InvalidArgument(m));
        if config.max_running == 0 || config.step_token_budget < config.max_running {
            return invalid(format!(
                "need 1 <= max_running ({}) <= step_token_budget ({})",
                config.max_running, config.step_token_budget
            ));
        }
        match (config.window, &window_kv) {
            (None, None) => {}
            (Some(window), Some(w)) => {
                if window == 0 || w.block_size() != kv.block_size() {
                    return invalid("window must be >= 1 and both pools share a block size".into());
                }
                // The oldest sequence must always fit alone: a window plus one full chunk.
                let need = (window + config.step_token_budget).div_ceil(w.block_size()) + 1;
                if w.n_blocks() < need {
                    return invalid(format!(
                        "windowed pool has {} blocks, needs at least {need}",
                        w.n_blocks()
                    ));
                }
            }
            _ => return invalid("window and window_kv must be given together".into()),
        }
        Ok(Self {
            config,
            kv,
            window_kv,
            seqs: HashMap::new(),
            waiting: VecDeque::new(),
            running: Vec::new(),
            next_id: 0,
            in_flight: Vec::new(),
            queued_tokens: 0,
            stats: SchedulerStats::default(),
        })
    }

    /// Queues a request, or refuses it at once: [`Error::ContextLengthExceeded`] when
    /// the prompt plus `max_new_tokens` exceeds the context (or the whole KV pool),
    /// [`Error::Overloaded`] at a queue limit. Never truncates.
    pub fn add(&mut self, request: Request) -> Result<SeqId> {
        let Request {
            prompt,
            max_new_tokens,
            stop_token_ids,
            cache_salt,
        } = request;
        if prompt.is_empty() || max_new_tokens == 0 {
            return Err(Error::InvalidArgument(
                "a request needs a non-empty prompt and max_new_tokens >= 1".into(),
            ));
        }
        let pool_tokens = self.kv.n_blocks() * self.kv.block_size();
        let limit = self.config.max_context.min(pool_tokens);
        if prompt.len().saturating_add(max_new_tokens) > limit {
            return Err(Error::ContextLengthExceeded {
                prompt_tokens: prompt.len(),
                max_new_tokens,
                limit,
            });
        }
        // Waiting sequences that a free batch slot will take next step are not queued.
        let free_slots = self.config.max_running.saturating_sub(self.running.len());
        if self.waiting.len().saturating_sub(free_slots) >= self.config.max_queued_requests {
            return Err(Error::Overloaded {
                what: "queued requests",
                limit: self.config.max_queued_requests,
            });
        }
        if self.queued_tokens + prompt.len() > self.config.max_queued_prompt_tokens {
            return Err(Error::Overloaded {
                what: "queued prompt tokens",
                limit: self.config.max_queued_prompt_tokens,
            });
        }
        let id = SeqId(self.next_id);
        self.next_id += 1;
        self.stats.prompt_tokens += prompt.len() as u64;
        self.queued_tokens += prompt.len();
        let mut seq = Sequence {
            prompt_len: prompt.len(),
            tokens: prompt,
            max_new_tokens,
            stop_token_ids,
            salt: cache_salt,
            computed: 0,
            hashes: Vec::new(),
            keyed: 0,
        };
        seq.update_hashes(self.kv.block_size());
        self.seqs.insert(id, seq);
        self.waiting.push_back(id);
        Ok(id)
    }

    /// Plans the next step (see the module doc). Call [`on_step_done`](Self::on_step_done)
    /// before planning again.
    pub fn schedule(&mut self) -> Result<StepPlan> {
        if !self.in_flight.is_empty() {
            return Err(Error::InvalidArgument(
                "schedule called before on_step_done for the previous step".into(),
            ));
        }
        let mut budget = self.config.step_token_budget;
        let mut planned: Vec<(SeqId, Range<usize>)> = Vec::new();
        let mut preempted = Vec::new();
        // 1. Decode tokens, oldest first; preempt the youngest when blocks run out.
        for id in self.running.clone() {
            if self.remaining(id) != Some(1) || !self.running.contains(&id) {
                continue;
            }
            while self.room(id) == 0 {
                let Some(&victim) = self.running.last() else {
                    break;
                };
                self.preempt(victim, &mut planned, &mut budget, &mut preempted)?;
                if victim == id {
                    break;
                }
            }
            if self.running.contains(&id) {
                budget -= 1;
                self.plan(id, 1, &mut planned)?;
            }
        }
        // 2. Prefill chunks of running sequences, oldest first.
        for id in self.running.clone() {
            let Some(remaining) = self.remaining(id) else {
                continue;
            };
            if remaining <= 1
                || !self.running.contains(&id)
                || planned.iter().any(|(s, _)| *s == id)
            {
                continue;
            }
            if budget == 0 {
                break;
            }
            // Only the oldest preempts, so it always progresses and nothing thrashes.
            while self.room(id) == 0 && self.running.first() == Some(&id) {
                let Some(&victim) = self.running.last().filter(|v| **v != id) else {
                    break;
                };
                self.preempt(victim, &mut planned, &mut budget, &mut preempted)?;
            }
            let chunk = remaining.min(budget).min(self.room(id));
            if chunk > 0 {
                budget -= chunk;
                self.plan(id, chunk, &mut planned)?;
            }
        }
        // 3. Admit waiting sequences, FIFO, with what is left (not after a preemption:
        // the pool is full, and the preempted would only come straight back).
        while budget > 0 && preempted.is_empty() && self.running.len() < self.config.max_running {
            let Some(&id) = self.waiting.front() else {
                break;
            };
            if !self.admit(id, &mut budget, &mut planned)? {
                break;
            }
        }
        let mut entries = Vec::with_capacity(planned.len());
        for (id, tokens) in planned {
            let len = self.seq(id)?.tokens.len();
            let window_table = match &self.window_kv {
                Some(w) => Some(w.table(id)?.clone()),
                None => None,
            };
            self.in_flight.push((id, tokens.end, tokens.end == len));
            entries.push(StepEntry {
                seq: id,
                positions_start: tokens.start,
                needs_logits: tokens.end == len,
                block_table: self.kv.table(id)?.blocks().to_vec(),
                window_table,
                tokens,
            });
        }
        self.debug_check();
        Ok(StepPlan { entries, preempted })
    }

    /// Tries to move the front waiting sequence into the batch with a first chunk.
    /// Returns false (leaving it waiting) when no block is left for it.
    fn admit(
        &mut self,
        id: SeqId,
        budget: &mut usize,
        planned: &mut Vec<(SeqId, Range<usize>)>,
    ) -> Result<bool> {
        let bs = self.kv.block_size();
        let hit = self.prefix_hit(id)?;
        let seq = self.seq(id)?;
        let (hashes, tokens) = (seq.hashes.clone(), seq.tokens.clone());
        if hit > 0 {
            self.kv.attach_cached(id, &hashes, &tokens, 0, hit)?;
            if let Some(w) = &mut self.window_kv {
                let lo = prefix::window_start(hit * bs, self.config.window, bs);
                w.attach_cached(id, &hashes, &tokens, lo, hit)?;
            }
        }
        let chunk = (tokens.len() - hit * bs).min(*budget).min(self.room(id));
        if chunk == 0 {
            if hit > 0 {
                self.free_blocks_of(id)?;
            }
            return Ok(false);
        }
        self.kv.record_prefix_query(hit);
        self.waiting.pop_front();
        self.queued_tokens -= tokens.len();
        let pos = self.running.partition_point(|r| *r < id);
        self.running.insert(pos, id);
        if let Some(seq) = self.seqs.get_mut(&id) {
            seq.computed = hit * bs;
            seq.keyed = hit;
        }
        *budget -= chunk;
        self.plan(id, chunk, planned)?;
        Ok(true)
    }

    /// Records a step's results: `(seq, sampled token)` for every entry that needed
    /// logits (`None` for the others may be passed or left out). Marks the planned
    /// tokens computed, keys their full blocks in the prefix cache, appends the sampled
    /// tokens, releases windowed blocks that fell out of the window, and finishes
    /// sequences at a stop token, `max_new_tokens` or the context. Results for
    /// sequences cancelled since the plan are ignored.
    pub fn on_step_done(&mut self, results: &[(SeqId, Option<u32>)]) -> Result<StepOutcome> {
        let sampled: HashMap<SeqId, u32> =
            results.iter().filter_map(|&(s, t)| Some((s, t?))).collect();
        for &(id, _, needs) in &self.in_flight {
            if self.seqs.contains_key(&id) && needs != sampled.contains_key(&id) {
                return Err(Error::InvalidArgument(format!(
                    "{id}: a token is required exactly for entries that need logits"
                )));
            }
        }
        let bs = self.kv.block_size();
        let mut outcome = StepOutcome::default();
        for (id, end, _) in std::mem::take(&mut self.in_flight) {
            let Some(seq) = self.seqs.get_mut(&id) else {
                continue;
            };
            seq.computed = end;
            // Key first: windowed blocks released below then stay cached.
            self.key_computed(id)?;
            if let (Some(w), Some(window)) = (&mut self.window_kv, self.config.window) {
                w.release_before(id, (end + 1).saturating_sub(window))?;
            }
            let Some(&token) = sampled.get(&id) else {
                continue;
            };
            let Some(seq) = self.seqs.get_mut(&id) else {
                continue;
            };
            seq.tokens.push(token);
            seq.update_hashes(bs);
            self.stats.generated_tokens += 1;
            let generated = seq.tokens.len() - seq.prompt_len;
            let reason = if seq.stop_token_ids.contains(&token) {
                Some(FinishReason::Stop)
            } else if generated >= seq.max_new_tokens || seq.tokens.len() >= self.config.max_context
            {
                Some(FinishReason::Length)
            } else {
                None
            };
            if let Some(reason) = reason {
                self.finish(id)?;
                outcome.finished.push((id, reason));
            }
        }
        self.debug_check();
        Ok(outcome)
    }

    /// Ends `seq` now (a stop string, say): keys its computed full blocks in the
    /// prefix cache, frees its blocks and forgets it.
    pub fn finish(&mut self, seq: SeqId) -> Result<()> {
        self.remove(seq)
    }

    /// Cancels `seq`, waiting or running, freeing everything it holds. Blocks written
    /// by an already planned step stay valid until the next plan, which comes after
    /// [`on_step_done`](Self::on_step_done).
    pub fn cancel(&mut self, seq: SeqId) -> Result<()> {
        self.remove(seq)
    }

    fn remove(&mut self, id: SeqId) -> Result<()> {
        let seq = self
            .seqs
            .get(&id)
            .ok_or(Error::UnknownSequence { seq: id })?;
        if let Some(pos) = self.waiting.iter().position(|w| *w == id) {
            self.waiting.remove(pos);
            self.queued_tokens -= seq.tokens.len();
        } else {
            self.free_blocks_of(id)?;
            self.running.retain(|r| *r != id);
        }
        self.seqs.remove(&id);
        Ok(())
    }

    /// The tokens of `seq` so far (prompt, then generated).
    pub fn tokens(&self, seq: SeqId) -> Result<&[u32]> {
        Ok(&self.seq(seq)?.tokens)
    }

    /// Tokens `seq` has generated.
    pub fn generated(&self, seq: SeqId) -> Result<&[u32]> {
        let s = self.seq(seq)?;
        Ok(&s.tokens[s.prompt_len..])
    }

    /// Whether `seq` is known (waiting or running).
    pub fn contains(&self, seq: SeqId) -> bool {
        self.seqs.contains_key(&seq)
    }

    /// Whether nothing is waiting or running.
    pub fn is_idle(&self) -> bool {
        self.seqs.is_empty()
    }

    /// The global layers' pool.
    pub fn kv(&self) -> &BlockManager {
        &self.kv
    }

    /// The windowed layers' pool, when the model has one.
    pub fn window_kv(&self) -> Option<&BlockManager> {
        self.window_kv.as_ref()
    }

    /// Counters and gauges now.
    pub fn stats(&self) -> SchedulerStats {
        SchedulerStats {
            running: self.running.len(),
            waiting: self.waiting.len(),
            kv_usage: self.kv.usage(),
            window_kv_usage: self.window_kv.as_ref().map(BlockManager::usage),
            prefix_cache: self.kv.prefix_stats(),
            window_prefix_cache: self.window_kv.as_ref().map(BlockManager::prefix_stats),
            ..self.stats.clone()
        }
    }

    fn seq(&self, id: SeqId) -> Result<&Sequence> {
        self.seqs.get(&id).ok_or(Error::UnknownSequence { seq: id })
    }

    /// Tokens of `id` not yet computed, if it is running.
    fn remaining(&self, id: SeqId) -> Option<usize> {
        self.seqs.get(&id).map(|s| s.tokens.len() - s.computed)
    }

    /// New tokens `id` can take in both pools without evicting referenced blocks.
    fn room(&self, id: SeqId) -> usize {
        let w = self
            .window_kv
            .as_ref()
            .map_or(usize::MAX, |w| w.max_new_tokens(id));
        self.kv.max_new_tokens(id).min(w)
    }

    /// Allocates `n` more tokens for `id` and plans them.
    fn plan(
        &mut self,
        id: SeqId,
        n: usize,
        planned: &mut Vec<(SeqId, Range<usize>)>,
    ) -> Result<()> {
        self.kv.allocate_for(id, n)?;
        if let Some(w) = &mut self.window_kv {
            w.allocate_for(id, n)?;
        }
        let start = self.seq(id)?.computed;
        planned.push((id, start..start + n));
        Ok(())
    }

    /// Keys the computed full blocks of `id` and frees its blocks in both pools.
    fn free_blocks_of(&mut self, id: SeqId) -> Result<()> {
        self.key_computed(id)?;
        for pool in std::iter::once(&mut self.kv).chain(self.window_kv.as_mut()) {
            if pool.contains(id) {
                pool.free(id)?;
            }
        }
        Ok(())
    }

    /// Moves running `id` back to the front of the queue, dropping it from this plan.
    fn preempt(
        &mut self,
        id: SeqId,
        planned: &mut Vec<(SeqId, Range<usize>)>,
        budget: &mut usize,
        preempted: &mut Vec<SeqId>,
    ) -> Result<()> {
        if let Some(pos) = planned.iter().position(|(s, _)| *s == id) {
            *budget += planned.remove(pos).1.len();
        }
        self.free_blocks_of(id)?;
        self.running.retain(|r| *r != id);
        let seq = self
            .seqs
            .get_mut(&id)
            .ok_or(Error::UnknownSequence { seq: id })?;
        seq.computed = 0;
        seq.keyed = 0;
        self.queued_tokens += seq.tokens.len();
        self.waiting.push_front(id);
        self.stats.preemptions += 1;
        preempted.push(id);
        tracing::debug!(%id, "preempted");
        Ok(())
    }

    fn debug_check(&self) {
        #[cfg(debug_assertions)]
        if let Err(e) = self.check_invariants() {
            panic!("{e}");
        }
    }

    /// Checks the pools' invariants and the scheduler's own: every sequence is either
    /// waiting (holding no blocks) or running (holding blocks for at least its computed
    /// tokens), the batch is sorted by arrival and within `max_running`, and the queued
    /// token count is right.
    pub fn check_invariants(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvariantViolated { what });
        self.kv.check_invariants()?;
        if let Some(w) = &self.window_kv {
            w.check_invariants()?;
        }
        if !self.running.windows(2).all(|p| p[0] < p[1])
            || self.running.len() > self.config.max_running
        {
            return bad(format!("running {:?}", self.running));
        }
        if self.running.len() + self.waiting.len() != self.seqs.len() {
            return bad("sequences neither waiting nor running".into());
        }
        let mut queued = 0;
        for id in &self.waiting {
            let s = self.seq(*id)?;
            queued += s.tokens.len();
            if self.kv.contains(*id) || s.computed != 0 {
                return bad(format!("waiting {id} holds blocks"));
            }
        }
        if queued != self.queued_tokens {
            return bad(format!("queued tokens {} != {queued}", self.queued_tokens));
        }
        for id in &self.running {
            let s = self.seq(*id)?;
            if self.kv.table(*id)?.tokens() < s.computed || s.computed > s.tokens.len() {
                return bad(format!("running {id} lacks blocks for its tokens"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
