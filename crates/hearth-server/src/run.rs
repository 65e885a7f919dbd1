//! Running a request on the engine: submit its choices, read their events, count usage.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{self, BoxStream, SelectAll, StreamExt};
use hearth_engine::{
    EngineRequest, EventStream, FinishReason, GenerateParams, GenerationEvent, TokenLogprobs,
};

use crate::auth::Caller;
use crate::guard::OutputPolicy;
use crate::state::{AppState, ServedModel};
use crate::ApiError;

/// Counts a request's tokens and records them when dropped: at the end of a response,
/// and also when the client disconnected midway (what was generated is billed).
pub struct UsageGuard {
    state: Arc<AppState>,
    caller: Caller,
    id: String,
    started: Instant,
    /// Prompt tokens of the request (each distinct prompt once).
    pub prompt_tokens: usize,
    /// Tokens generated so far, all choices together.
    pub completion_tokens: AtomicUsize,
    /// Prompt tokens served from the prefix cache.
    pub cached_tokens: AtomicUsize,
}

impl UsageGuard {
    /// A guard for request `id` of `caller`.
    pub fn new(state: Arc<AppState>, caller: Caller, id: String, prompt_tokens: usize) -> Self {
        UsageGuard {
            state,
            caller,
            id,
            started: Instant::now(),
            prompt_tokens,
            completion_tokens: AtomicUsize::new(0),
            cached_tokens: AtomicUsize::new(0),
        }
    }

    /// Notes the cached prompt tokens of choice `index` (counted once per prompt: from
    /// its first choice).
    pub fn note_cached(&self, index: usize, n: usize, cached: usize) {
        if index.is_multiple_of(n.max(1)) {
            self.cached_tokens.fetch_add(cached, Ordering::Relaxed);
        }
    }

    /// The usage block of a response.
    pub fn usage(&self) -> hearth_api::Usage {
        hearth_api::Usage::new(
            self.prompt_tokens,
            self.completion_tokens.load(Ordering::Relaxed),
            self.cached_tokens.load(Ordering::Relaxed),
        )
    }
}

impl Drop for UsageGuard {
    fn drop(&mut self) {
        let completion = self.completion_tokens.load(Ordering::Relaxed);
        self.state
            .auth
            .record(&self.caller, self.prompt_tokens, completion);
        tracing::info!(
            request_id = %self.id,
            key = %self.caller.id,
            prompt_tokens = self.prompt_tokens,
            completion_tokens = completion,
            cached_tokens = self.cached_tokens.load(Ordering::Relaxed),
            secs = format_args!("{:.3}", self.started.elapsed().as_secs_f64()),
            "request done"
        );
    }
}

/// Submits `n` choices for each prompt; choice index = prompt index × n + j. With a
/// seed, choice j samples with seed + j so the choices differ yet repeat.
pub async fn submit(
    model: &Arc<ServedModel>,
    prompts: &[Vec<u32>],
    params: &GenerateParams,
    n: usize,
    prompt_param: &'static str,
    adapter: Option<&str>,
) -> Result<Vec<EventStream>, ApiError> {
    let mut requests = Vec::with_capacity(prompts.len() * n);
    for p in prompts {
        if p.is_empty() {
            return Err(ApiError::invalid("the prompt is empty", Some(prompt_param)));
        }
        for j in 0..n {
            let mut params = params.clone();
            if let Some(s) = params.sampling.seed.as_mut() {
                *s = s.wrapping_add(j as u64);
            }
            requests.push(EngineRequest {
                prompt_ids: p.clone(),
                params,
                cache_salt: 0,
                adapter: adapter.map(str::to_string),
            });
        }
    }
    let m = Arc::clone(model);
    // `submit` waits for the engine thread between steps: keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::with_capacity(requests.len());
        for r in requests {
            out.push(m.engine.submit(r)?);
        }
        Ok(out)
    })
    .await
    .map_err(|e| ApiError::internal(format!("submit task failed: {e}")))?
    .map_err(|e| ApiError::from_engine(e, prompt_param))
}

/// Runs one prompt to its end for a non-streamed answer: submit, read, bill, and apply
/// the caller's output policy. Returns the choice and the usage guard (which bills when
/// dropped).
pub async fn complete_one(
    state: &Arc<AppState>,
    model: &Arc<ServedModel>,
    caller: Caller,
    id: &str,
    prompt: Vec<u32>,
    params: &GenerateParams,
) -> Result<(Collected, UsageGuard), ApiError> {
    let policy = caller.policy.output;
    let prompt_len = prompt.len();
    let streams = submit(model, &[prompt], params, 1, "prompt", None).await?;
    let usage = UsageGuard::new(Arc::clone(state), caller, id.to_string(), prompt_len);
    let mut done = collect_all(streams, 1, &usage).await?;
    filter_collected(state, policy, id, &mut done);
    Ok((done.pop().unwrap_or_default(), usage))
}

/// One event of a choice.
#[derive(Debug, Clone)]
pub enum ChoiceEvent {
    /// New token.
    Token {
        /// Token id.
        id: u32,
        /// Text that became final.
        text: String,
        /// Log-probabilities, if asked.
        logprobs: Option<TokenLogprobs>,
    },
    /// The choice ended; with the prompt tokens the prefix cache supplied.
    Finished(FinishReason, usize),
    /// The engine failed.
    Failed(String),
}

/// The events of all choices, merged as they come: `(choice index, event)`. Setting a
/// choice's flag in `stop` ends its stream at its next event, which cancels it in the
/// engine.
pub fn merge(
    streams: Vec<EventStream>,
    stop: &[Arc<AtomicBool>],
) -> SelectAll<BoxStream<'static, (usize, ChoiceEvent)>> {
    stream::select_all(streams.into_iter().enumerate().map(|(i, s)| {
        let flag = stop.get(i).cloned().unwrap_or_default();
        stream::unfold(Some(s), move |s| {
            let flag = Arc::clone(&flag);
            async move {
                let mut s = s?;
                if flag.load(Ordering::Relaxed) {
                    return None;
                }
                let ev = match s.recv().await {
                    Some(GenerationEvent::Token { id, text, logprobs }) => {
                        ChoiceEvent::Token { id, text, logprobs }
                    }
                    Some(GenerationEvent::Finished {
                        reason,
                        cached_tokens,
                        ..
                    }) => {
                        return Some((ChoiceEvent::Finished(reason, cached_tokens), None));
                    }
                    Some(GenerationEvent::Error { message }) => ChoiceEvent::Failed(message),
                    None => ChoiceEvent::Failed("the engine stopped".into()),
                };
                let next = match ev {
                    ChoiceEvent::Failed(_) => None,
                    _ => Some(s),
                };
                Some((ev, next))
            }
        })
        .map(move |e| (i, e))
        .boxed()
    }))
}

/// A whole choice, for non-streamed answers.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    /// Generated text.
    pub text: String,
    /// Generated ids.
    pub ids: Vec<u32>,
    /// Per token, its log-probabilities (when asked).
    pub logprobs: Vec<TokenLogprobs>,
    /// Why it ended.
    pub finish_reason: Option<FinishReason>,
    /// Stopped by the output policy (`finish_reason: content_filter`).
    pub content_filtered: bool,
}

impl Collected {
    /// OpenAI's `finish_reason`.
    pub fn finish_reason_str(&self) -> Option<String> {
        if self.content_filtered {
            return Some("content_filter".into());
        }
        self.finish_reason.map(|r| r.as_str().to_string())
    }
}

/// Applies the caller's output policy to whole choices (non-streamed answers).
pub fn filter_collected(
    state: &AppState,
    policy: OutputPolicy,
    id: &str,
    choices: &mut [Collected],
) {
    for c in choices {
        let Some(mut f) = state.guard.output_filter(policy) else {
            return;
        };
        let mut out = f.push(&c.text);
        out.append(f.finish());
        state
            .guard
            .note_output(id, &out.flagged, out.blocked.is_some());
        if policy == OutputPolicy::Block {
            c.text = out.text;
            c.content_filtered = out.blocked.is_some();
        }
    }
}

/// Reads every choice to its end.
pub async fn collect_all(
    streams: Vec<EventStream>,
    n: usize,
    usage: &UsageGuard,
) -> Result<Vec<Collected>, ApiError> {
    let mut out = vec![Collected::default(); streams.len()];
    let mut merged = merge(streams, &[]);
    while let Some((i, ev)) = merged.next().await {
        let c = &mut out[i];
        match ev {
            ChoiceEvent::Token { id, text, logprobs } => {
                usage.completion_tokens.fetch_add(1, Ordering::Relaxed);
                c.ids.push(id);
                c.text.push_str(&text);
                c.logprobs.extend(logprobs);
            }
            ChoiceEvent::Finished(r, cached) => {
                c.finish_reason = Some(r);
                usage.note_cached(i, n, cached);
            }
            ChoiceEvent::Failed(m) => {
                return Err(ApiError::internal(format!("generation failed: {m}")))
            }
        }
    }
    Ok(out)
}
