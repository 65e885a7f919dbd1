//! The model thread: admits requests, runs steps, samples and sends events.

use std::collections::HashMap;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use hearth_model::paged::{PagedKv, RaggedBatch, SeqSlice, WindowTable};
use hearth_model::{ModelLora, Transformer};
use hearth_tokenizer::{StreamDecoder, Tokenizer};
use tokio::sync::mpsc::UnboundedSender;

use super::{Command, EngineRequest, GenerationEvent, TokenLogprobs};
use crate::{
    logprob_of, top_logprobs, EngineMetrics, Error, FinishReason, GenerateParams, Request, Result,
    Sampler, Scheduler, SchedulerStats, SeqId, StopMatcher,
};

/// Per-sequence state of the model thread.
pub(super) struct SeqState<'t> {
    events: UnboundedSender<GenerationEvent>,
    sampler: Sampler,
    stop: StopMatcher,
    decoder: StreamDecoder<'t>,
    params: GenerateParams,
    prompt_tokens: usize,
    completion_tokens: usize,
    cached_tokens: Option<usize>,
    /// When the request was submitted.
    arrived: Instant,
    /// When its last token was sent.
    last_token: Option<Instant>,
    /// The LoRA adapter it runs with.
    adapter: Option<Arc<ModelLora>>,
}

pub(super) struct Worker<'t> {
    pub(super) model: &'t Transformer,
    pub(super) tok: &'t Tokenizer,
    pub(super) sched: Scheduler,
    pub(super) kv: PagedKv,
    pub(super) seqs: HashMap<SeqId, SeqState<'t>>,
    pub(super) stats: Arc<Mutex<SchedulerStats>>,
    pub(super) metrics: Arc<Mutex<EngineMetrics>>,
}

impl<'t> Worker<'t> {
    pub(super) fn run(mut self, rx: &Receiver<Command>) {
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
                adapter,
                arrived,
                events,
                reply,
            } => {
                let r = self.admit(*request, adapter, arrived, events);
                if r.is_err() {
                    self.record(|m| m.rejected += 1);
                }
                let _ = reply.send(r);
            }
            Command::Cancel(seq) => {
                if self.seqs.contains_key(&seq) {
                    self.record(|m| m.cancelled += 1);
                }
                self.drop_seq(seq);
            }
            Command::Shutdown => return false,
        }
        true
    }

    fn record(&self, f: impl FnOnce(&mut EngineMetrics)) {
        f(&mut self.metrics.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn admit(
        &mut self,
        request: EngineRequest,
        adapter: Option<Arc<ModelLora>>,
        arrived: Instant,
        events: UnboundedSender<GenerationEvent>,
    ) -> Result<SeqId> {
        let EngineRequest {
            prompt_ids,
            params,
            cache_salt,
            adapter: _,
        } = request;
        let cache_salt = match &adapter {
            Some(a) => salt_with_adapter(cache_salt, a.fingerprint()),
            None => cache_salt,
        };
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
            cache_salt,
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
                arrived,
                last_token: None,
                adapter,
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
        let n = ids.len() as u64;
        self.record(|m| m.failed += n);
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
                adapter: self.seqs.get(&e.seq).and_then(|s| s.adapter.clone()),
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
            // Log-probabilities of the raw distribution, before the sampler reshapes it.
            let top = s.params.logprobs.map(|k| top_logprobs(row, k));
            let raw = top.as_ref().map(|_| row.to_vec());
            let id = s.sampler.sample(row, history);
            let logprobs = top.zip(raw).map(|(top, raw)| TokenLogprobs {
                logprob: logprob_of(&raw, id),
                top,
            });
            let now = Instant::now();
            {
                let mut m = self.metrics.lock().unwrap_or_else(PoisonError::into_inner);
                match s.last_token {
                    None => m
                        .time_to_first_token
                        .observe(now.duration_since(s.arrived).as_secs_f64()),
                    Some(t) => m
                        .inter_token_latency
                        .observe(now.duration_since(t).as_secs_f64()),
                }
            }
            s.last_token = Some(now);
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
            let event = GenerationEvent::Token { id, text, logprobs };
            if s.events.send(event).is_err() {
                closed.push(e.seq);
            } else if let Some(r) = reason {
                ended.push((e.seq, r));
            }
        }
        let outcome = self.sched.on_step_done(&results)?;
        if !closed.is_empty() {
            let n = closed.len() as u64;
            self.record(|m| m.cancelled += n);
        }
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
                let e2e = s.arrived.elapsed().as_secs_f64();
                self.record(|m| {
                    m.e2e_request_latency.observe(e2e);
                    match reason {
                        FinishReason::Stop => m.finished_stop += 1,
                        FinishReason::Length => m.finished_length += 1,
                    }
                });
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

/// The prefix-cache salt of a request run with an adapter of `fingerprint`: never the
/// base model's salt for the same request, different per adapter.
fn salt_with_adapter(salt: u64, fingerprint: u64) -> u64 {
    let mut z = salt ^ fingerprint.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}
