//! The serving engine: one model thread runs the continuous-batching [`Scheduler`] over
//! a paged KV cache, and callers submit requests and read their tokens as streams.
//!
//! [`Engine::start`] sizes the KV pools from a byte budget and spawns the thread. It owns
//! the scheduler, the [`PagedKv`] and every sequence's sampler, stop matcher and text
//! decoder, and loops: take new commands (submit, cancel) → plan a step → run it with
//! [`Transformer::forward_paged`] → sample one token for each entry that asked for
//! logits → apply end-of-generation tokens, stop strings and `max_tokens` → send events.
//! With nothing to do it blocks on its command channel.
//!
//! [`Engine::submit`] waits for the thread's accept or reject, so admission errors
//! ([`Error::Overloaded`], [`Error::ContextLengthExceeded`]) come back at once. Dropping
//! an [`EventStream`] cancels its sequence and frees its blocks.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use hearth_model::paged::{PagedKv, RaggedBatch, SeqSlice, WindowTable};
use hearth_model::Transformer;
use hearth_tokenizer::{StreamDecoder, Tokenizer};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::{
    BlockManager, Error, FinishReason, GenerateParams, Request, Result, Sampler, Scheduler,
    SchedulerConfig, SchedulerStats, SeqId, StopMatcher,
};

/// How to run the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Positions per KV block.
    pub block_size: usize,
    /// Bytes for the KV cache, both pools together.
    pub kv_budget_bytes: usize,
    /// Most sequences in a step's batch.
    pub max_running: usize,
    /// Most requests waiting beyond the free batch slots.
    pub max_queued_requests: usize,
    /// Most prompt tokens in waiting requests.
    pub max_queued_prompt_tokens: usize,
    /// Most tokens in one step (at least `max_running`).
    pub step_token_budget: usize,
    /// Whether to share KV blocks of equal prefixes between sequences.
    pub prefix_cache: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            block_size: 16,
            kv_budget_bytes: 1 << 30,
            max_running: 16,
            max_queued_requests: 64,
            max_queued_prompt_tokens: 1 << 20,
            step_token_budget: 512,
            prefix_cache: true,
        }
    }
}

/// One generation request.
#[derive(Debug, Clone, Default)]
pub struct EngineRequest {
    /// The prompt as token ids (not empty).
    pub prompt_ids: Vec<u32>,
    /// What to generate.
    pub params: GenerateParams,
}

/// What an [`EventStream`] yields.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerationEvent {
    /// A generated token and the text that became final with it (possibly empty: text
    /// is held back while it may be the start of a stop string or of a UTF-8 char).
    Token {
        /// The token id.
        id: u32,
        /// Final text.
        text: String,
    },
    /// Generation ended; nothing follows.
    Finished {
        /// Why.
        reason: FinishReason,
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// Tokens generated.
        completion_tokens: usize,
        /// Prompt tokens taken from the prefix cache at admission.
        cached_tokens: usize,
    },
    /// The model failed on a step with this sequence; nothing follows.
    Error {
        /// What went wrong.
        message: String,
    },
}

/// The events of one request. Iterate it (blocking) or call [`recv`](Self::recv) from
/// async code. Dropping it cancels the request and frees its KV blocks.
#[derive(Debug)]
pub struct EventStream {
    seq: SeqId,
    events: UnboundedReceiver<GenerationEvent>,
    commands: Sender<Command>,
}

impl EventStream {
    /// The sequence id the engine gave the request.
    pub fn seq_id(&self) -> SeqId {
        self.seq
    }

    /// The next event, or `None` after the last.
    pub async fn recv(&mut self) -> Option<GenerationEvent> {
        self.events.recv().await
    }
}

impl Iterator for EventStream {
    type Item = GenerationEvent;

    /// Blocks for the next event. Do not call from inside an async runtime; use
    /// [`EventStream::recv`] there.
    fn next(&mut self) -> Option<GenerationEvent> {
        self.events.blocking_recv()
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        // The engine may be gone already; then there is nothing to cancel.
        let _ = self.commands.send(Command::Cancel(self.seq));
    }
}

enum Command {
    Submit {
        request: EngineRequest,
        events: UnboundedSender<GenerationEvent>,
        reply: Sender<Result<SeqId>>,
    },
    Cancel(SeqId),
    Shutdown,
}

/// A running engine (see the module doc). Dropping it stops the model thread; open
/// streams then end without a `Finished` event.
#[derive(Debug)]
pub struct Engine {
    commands: Sender<Command>,
    stats: Arc<Mutex<SchedulerStats>>,
    thread: Option<JoinHandle<()>>,
    global_blocks: usize,
    window_blocks: usize,
}

impl Engine {
    /// Sizes the KV pools from `cfg.kv_budget_bytes` and starts the model thread. The
    /// windowed pool (models with sliding-window layers) gets what the window needs
    /// for `max_running` sequences plus one step's chunk; the rest goes to the global
    /// pool.
    pub fn start(
        model: Arc<Transformer>,
        tokenizer: Arc<Tokenizer>,
        cfg: EngineConfig,
    ) -> Result<Engine> {
        let config = model.config();
        let bs = cfg.block_size;
        if bs == 0 {
            return Err(Error::InvalidArgument("block_size must be >= 1".into()));
        }
        let (global_bytes, window_bytes) = PagedKv::block_bytes(config, bs);
        let window = config.sliding_window();
        let window_blocks = match window {
            Some(w) => cfg
                .max_running
                .saturating_mul(w.div_ceil(bs) + 1)
                .saturating_add(cfg.step_token_budget.div_ceil(bs) + 1)
                .max((w.saturating_add(cfg.step_token_budget)).div_ceil(bs) + 1),
            None => 0,
        };
        let window_total = window_blocks.saturating_mul(window_bytes);
        let global_blocks = match cfg.kv_budget_bytes.checked_sub(window_total) {
            Some(rest) if global_bytes > 0 => rest / global_bytes,
            _ => 0,
        };
        if global_blocks == 0 {
            return Err(Error::InvalidArgument(format!(
                "kv_budget_bytes {} too small: the window pool alone needs {window_total}",
                cfg.kv_budget_bytes
            )));
        }
        let kv = PagedKv::new(config, bs, global_blocks, window_blocks)?;
        let sched = Scheduler::new(
            SchedulerConfig {
                max_running: cfg.max_running,
                max_queued_requests: cfg.max_queued_requests,
                max_queued_prompt_tokens: cfg.max_queued_prompt_tokens,
                step_token_budget: cfg.step_token_budget,
                max_context: config.context_length,
                window,
            },
            BlockManager::new(bs, global_blocks, cfg.prefix_cache)?,
            match window {
                Some(_) => Some(BlockManager::new(bs, window_blocks, cfg.prefix_cache)?),
                None => None,
            },
        )?;
        let stats = Arc::new(Mutex::new(sched.stats()));
        let (tx, rx) = mpsc::channel();
        let shared = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("hearth-engine".into())
            .spawn(move || {
                Worker {
                    model: &model,
                    tok: &tokenizer,
                    sched,
                    kv,
                    seqs: HashMap::new(),
                    stats: shared,
                }
                .run(&rx)
            })
            .map_err(|e| Error::InvalidArgument(format!("cannot spawn the engine thread: {e}")))?;
        Ok(Engine {
            commands: tx,
            stats,
            thread: Some(thread),
            global_blocks,
            window_blocks,
        })
    }

    /// Queues a request; admission errors come back at once.
    pub fn submit(&self, request: EngineRequest) -> Result<EventStream> {
        let (events_tx, events) = unbounded_channel();
        let (reply, answer) = mpsc::channel();
        let stopped = || Error::InvalidArgument("the engine has stopped".into());
        self.commands
            .send(Command::Submit {
                request,
                events: events_tx,
                reply,
            })
            .map_err(|_| stopped())?;
        let seq = answer.recv().map_err(|_| stopped())??;
        Ok(EventStream {
            seq,
            events,
            commands: self.commands.clone(),
        })
    }

    /// The scheduler's counters as of the last step or command the thread handled.
    pub fn stats(&self) -> SchedulerStats {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Blocks in the global and the windowed KV pool.
    pub fn kv_blocks(&self) -> (usize, usize) {
        (self.global_blocks, self.window_blocks)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Per-sequence state of the model thread.
struct SeqState<'t> {
    events: UnboundedSender<GenerationEvent>,
    sampler: Sampler,
    stop: StopMatcher,
    decoder: StreamDecoder<'t>,
    params: GenerateParams,
    prompt_tokens: usize,
    completion_tokens: usize,
    cached_tokens: Option<usize>,
}

struct Worker<'t> {
    model: &'t Transformer,
    tok: &'t Tokenizer,
    sched: Scheduler,
    kv: PagedKv,
    seqs: HashMap<SeqId, SeqState<'t>>,
    stats: Arc<Mutex<SchedulerStats>>,
}

impl<'t> Worker<'t> {
    fn run(mut self, rx: &Receiver<Command>) {
        loop {
            if self.sched.is_idle() {
                self.publish();
                match rx.recv() {
                    Ok(c) => {
                        if !self.handle(c) {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
            while let Ok(c) = rx.try_recv() {
                if !self.handle(c) {
                    return;
                }
            }
            if !self.sched.is_idle() {
                self.step();
            }
            self.publish();
        }
    }

    fn publish(&self) {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner) = self.sched.stats();
    }

    /// Handles one command; false to stop.
    fn handle(&mut self, c: Command) -> bool {
        match c {
            Command::Submit {
                request,
                events,
                reply,
            } => {
                let r = self.admit(request, events);
                let _ = reply.send(r);
            }
            Command::Cancel(seq) => self.drop_seq(seq),
            Command::Shutdown => return false,
        }
        true
    }

    fn admit(
        &mut self,
        request: EngineRequest,
        events: UnboundedSender<GenerationEvent>,
    ) -> Result<SeqId> {
        let EngineRequest { prompt_ids, params } = request;
        let sampler = Sampler::new(params.sampling.clone())?;
        let stop = StopMatcher::new(params.stop.clone())?;
        let prompt_tokens = prompt_ids.len();
        let stop_token_ids = if params.ignore_eos {
            Vec::new()
        } else {
            self.tok.eog_ids().to_vec()
        };
        let seq = self.sched.add(Request {
            prompt: prompt_ids,
            max_new_tokens: params.max_tokens,
            stop_token_ids,
            cache_salt: 0,
        })?;
        self.seqs.insert(
            seq,
            SeqState {
                events,
                sampler,
                stop,
                decoder: StreamDecoder::new(self.tok),
                params,
                prompt_tokens,
                completion_tokens: 0,
                cached_tokens: None,
            },
        );
        Ok(seq)
    }

    /// Forgets `seq` and frees its blocks (no event sent).
    fn drop_seq(&mut self, seq: SeqId) {
        self.seqs.remove(&seq);
        if self.sched.contains(seq) {
            let _ = self.sched.cancel(seq);
        }
    }

    /// Ends every sequence with an error event (a failed step).
    fn fail_all(&mut self, e: &Error) {
        let message = e.to_string();
        tracing::error!("engine step failed: {message}");
        let ids: Vec<SeqId> = self.seqs.keys().copied().collect();
        for seq in ids {
            if let Some(s) = self.seqs.get(&seq) {
                let _ = s.events.send(GenerationEvent::Error {
                    message: message.clone(),
                });
            }
            self.drop_seq(seq);
        }
    }

    fn step(&mut self) {
        if let Err(e) = self.try_step() {
            self.fail_all(&e);
        }
    }

    fn try_step(&mut self) -> Result<()> {
        let plan = self.sched.schedule()?;
        if plan.is_empty() {
            // Nothing can run (cannot happen with a consistent scheduler); avoid spinning.
            return Err(Error::InvariantViolated {
                what: "the scheduler planned an empty step with sequences pending".into(),
            });
        }
        let mut batch = RaggedBatch::default();
        for e in &plan.entries {
            let toks = self.sched.tokens(e.seq)?;
            let chunk = toks.get(e.tokens.clone()).ok_or(Error::InvariantViolated {
                what: format!("{}: planned tokens {:?} out of range", e.seq, e.tokens),
            })?;
            let start = batch.tokens.len();
            batch.tokens.extend_from_slice(chunk);
            batch.seqs.push(SeqSlice {
                range: start..batch.tokens.len(),
                start_pos: e.positions_start,
                block_table: e.block_table.iter().map(|b| b.0).collect(),
                window_table: e.window_table.as_ref().map(|t| WindowTable {
                    first_block: t.first_block(),
                    blocks: t.blocks().iter().map(|b| b.0).collect(),
                }),
                logits: e.needs_logits,
            });
            if let Some(s) = self.seqs.get_mut(&e.seq) {
                s.cached_tokens.get_or_insert(e.tokens.start);
            }
        }
        let mut logits = self.model.forward_paged(&batch, &mut self.kv)?;
        let vocab = self.model.config().vocab_size;
        let mut rows = logits.chunks_mut(vocab.max(1));
        let mut results = Vec::new();
        // Sequences the engine ends itself, with why, and their last text.
        let mut ended: Vec<(SeqId, FinishReason)> = Vec::new();
        let mut closed: Vec<SeqId> = Vec::new();
        for e in plan.entries.iter().filter(|e| e.needs_logits) {
            let row = rows.next().ok_or(Error::InvariantViolated {
                what: "forward_paged returned fewer logit rows than asked".into(),
            })?;
            let history = self.sched.tokens(e.seq)?;
            let Some(s) = self.seqs.get_mut(&e.seq) else {
                continue;
            };
            let id = s.sampler.sample(row, history);
            results.push((e.seq, Some(id)));
            s.completion_tokens += 1;
            let mut text = String::new();
            let mut reason = None;
            if !s.params.ignore_eos && self.tok.is_eog(id) {
                reason = Some(FinishReason::Stop);
            } else {
                let piece = s.stop.push(&s.decoder.push(id));
                text.push_str(&piece.emit);
                if piece.stopped {
                    reason = Some(FinishReason::Stop);
                } else if s.completion_tokens >= s.params.max_tokens {
                    reason = Some(FinishReason::Length);
                    let rest = s.stop.push(&s.decoder.finish());
                    text.push_str(&rest.emit);
                    if !rest.stopped {
                        text.push_str(&s.stop.finish());
                    }
                }
            }
            if s.events.send(GenerationEvent::Token { id, text }).is_err() {
                closed.push(e.seq);
            } else if let Some(r) = reason {
                ended.push((e.seq, r));
            }
        }
        let outcome = self.sched.on_step_done(&results)?;
        for seq in closed {
            self.drop_seq(seq);
        }
        for (seq, reason) in outcome.finished {
            if !ended.iter().any(|(s, _)| *s == seq) && self.seqs.contains_key(&seq) {
                ended.push((seq, reason));
            }
        }
        for (seq, reason) in ended {
            if let Some(s) = self.seqs.remove(&seq) {
                let _ = s.events.send(GenerationEvent::Finished {
                    reason,
                    prompt_tokens: s.prompt_tokens,
                    completion_tokens: s.completion_tokens,
                    cached_tokens: s.cached_tokens.unwrap_or(0),
                });
            }
            if self.sched.contains(seq) {
                self.sched.finish(seq)?;
            }
        }
        Ok(())
    }
}
