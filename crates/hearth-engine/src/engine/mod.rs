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
//! LoRA adapters are loaded by name ([`Engine::load_adapter`]) and a request picks one
//! ([`EngineRequest::adapter`]). Each sequence holds its adapter's `Arc`, so unloading
//! one never disturbs the sequences already running with it: they finish with it, and
//! only new requests see it gone. The prefix cache keys an adapter's blocks apart
//! from the base model's and other adapters' (its fingerprint goes into the salt).
//!
//! [`Engine::submit`] waits for the thread's accept or reject, so admission errors
//! ([`Error::Overloaded`], [`Error::ContextLengthExceeded`]) come back at once. Dropping
//! an [`EventStream`] cancels its sequence and frees its blocks.

mod worker;

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use hearth_model::paged::PagedKv;
use hearth_model::{LoraAdapter, ModelLora, Transformer};
use hearth_tokenizer::Tokenizer;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::{
    BlockManager, EngineMetrics, Error, FinishReason, GenerateParams, Result, Scheduler,
    SchedulerConfig, SchedulerStats, SeqId,
};
use worker::Worker;

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
    /// Mixed into the prefix-cache keys of this request's blocks, so requests whose
    /// KV differs for equal tokens (another adapter) or that must not share a cache
    /// (another tenant) never reuse each other's blocks. 0 for the shared default.
    /// The adapter's own identity is mixed in by the engine.
    pub cache_salt: u64,
    /// Name of a loaded LoRA adapter to run with; `None` for the base model.
    pub adapter: Option<String>,
}

/// The log-probabilities of one generated token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprobs {
    /// Log-probability of the token chosen.
    pub logprob: f32,
    /// The most likely tokens as `(id, logprob)`, most likely first (as many as
    /// [`GenerateParams::logprobs`] asked for).
    pub top: Vec<(u32, f32)>,
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
        /// Log-probabilities, when the request asked for them.
        logprobs: Option<TokenLogprobs>,
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
        request: Box<EngineRequest>,
        adapter: Option<Arc<ModelLora>>,
        arrived: Instant,
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
    model: Arc<Transformer>,
    adapters: Mutex<BTreeMap<String, Arc<ModelLora>>>,
    stats: Arc<Mutex<SchedulerStats>>,
    metrics: Arc<Mutex<EngineMetrics>>,
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
        let metrics = Arc::new(Mutex::new(EngineMetrics::default()));
        let (tx, rx) = mpsc::channel();
        let shared = Arc::clone(&stats);
        let shared_metrics = Arc::clone(&metrics);
        let thread_model = Arc::clone(&model);
        let thread = std::thread::Builder::new()
            .name("hearth-engine".into())
            .spawn(move || {
                Worker {
                    model: &thread_model,
                    tok: &tokenizer,
                    sched,
                    kv,
                    seqs: HashMap::new(),
                    stats: shared,
                    metrics: shared_metrics,
                }
                .run(&rx)
            })
            .map_err(|e| Error::InvalidArgument(format!("cannot spawn the engine thread: {e}")))?;
        Ok(Engine {
            commands: tx,
            model,
            adapters: Mutex::new(BTreeMap::new()),
            stats,
            metrics,
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
        let adapter = match &request.adapter {
            None => None,
            Some(name) => Some(
                self.adapter(name)
                    .ok_or_else(|| Error::UnknownAdapter { name: name.clone() })?,
            ),
        };
        self.commands
            .send(Command::Submit {
                request: Box::new(request),
                adapter,
                arrived: Instant::now(),
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

    /// Checks `adapter` against the model and loads it under `name`, for requests
    /// that name it. A name already loaded is an error.
    pub fn load_adapter(&self, name: &str, adapter: &LoraAdapter) -> Result<Arc<ModelLora>> {
        let bound = Arc::new(self.model.bind_lora(name, adapter)?);
        let mut map = self.adapters.lock().unwrap_or_else(PoisonError::into_inner);
        if map.contains_key(name) {
            return Err(Error::AdapterExists { name: name.into() });
        }
        map.insert(name.to_string(), Arc::clone(&bound));
        Ok(bound)
    }

    /// Reads the adapter at `path` (PEFT directory or GGUF LoRA file) for this
    /// engine's model and loads it under `name`.
    pub fn load_adapter_from(&self, name: &str, path: &std::path::Path) -> Result<Arc<ModelLora>> {
        if self.adapter(name).is_some() {
            return Err(Error::AdapterExists { name: name.into() });
        }
        let adapter = LoraAdapter::open(path, self.model.config())?;
        self.load_adapter(name, &adapter)
    }

    /// Unloads adapter `name`: new requests can no longer name it; sequences running
    /// with it finish with it (they hold it until then).
    pub fn unload_adapter(&self, name: &str) -> Result<()> {
        self.adapters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| Error::UnknownAdapter { name: name.into() })
    }

    /// The loaded adapter `name`.
    pub fn adapter(&self, name: &str) -> Option<Arc<ModelLora>> {
        self.adapters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Names of the loaded adapters, sorted.
    pub fn adapter_names(&self) -> Vec<String> {
        self.adapters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// The model the engine runs.
    pub fn model(&self) -> &Arc<Transformer> {
        &self.model
    }

    /// The scheduler's counters as of the last step or command the thread handled.
    pub fn stats(&self) -> SchedulerStats {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Latency histograms and request counters since start.
    pub fn metrics(&self) -> EngineMetrics {
        self.metrics
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
