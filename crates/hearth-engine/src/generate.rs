//! The single-sequence generation loop: prefill, then sample, decode, stream text.

use std::sync::Arc;
use std::time::Instant;

use hearth_model::{KvCache, ModelLora, Transformer};
use hearth_tokenizer::{StreamDecoder, Tokenizer};

use crate::{Error, Result, Sampler, SamplingParams, StopMatcher};

/// What to generate.
#[derive(Debug, Clone, Default)]
pub struct GenerateParams {
    /// Most new tokens.
    pub max_tokens: usize,
    /// How to pick each token.
    pub sampling: SamplingParams,
    /// Stop strings: generation ends before the first one, which is not returned.
    pub stop: Vec<String>,
    /// Keep going past end-of-generation tokens.
    pub ignore_eos: bool,
    /// Report each generated token's log-probability and, with `Some(k)`, the `k`
    /// most likely alternatives (log-probabilities of the model's raw distribution,
    /// before penalties and temperature, as OpenAI and vLLM report them).
    pub logprobs: Option<usize>,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-generation token or a stop string.
    Stop,
    /// `max_tokens` or the context ran out.
    Length,
}

impl FinishReason {
    /// OpenAI's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// The result of one generation.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Tokens generated (an end-of-generation token is included when it ended the run).
    pub generated_ids: Vec<u32>,
    /// Text generated, stop string excluded.
    pub text: String,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Prompt tokens evaluated (those already in the cache are not counted).
    pub prefill_tokens: usize,
    /// Seconds spent on the prompt.
    pub prefill_secs: f64,
    /// Seconds spent generating after the prompt.
    pub decode_secs: f64,
}

impl Generation {
    /// Prompt tokens per second.
    pub fn prefill_tok_s(&self) -> f64 {
        rate(self.prefill_tokens, self.prefill_secs)
    }

    /// Generated tokens per second (the first token comes from the prefill).
    pub fn decode_tok_s(&self) -> f64 {
        rate(self.generated_ids.len().saturating_sub(1), self.decode_secs)
    }
}

fn rate(n: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// One sequence's state across turns: its KV cache and the tokens in it, so a
/// conversation only evaluates what is new.
pub struct Session<'m> {
    model: &'m Transformer,
    cache: KvCache,
    tokens: Vec<u32>,
    lora: Option<Arc<ModelLora>>,
}

impl<'m> Session<'m> {
    /// An empty session.
    pub fn new(model: &'m Transformer) -> Self {
        Self {
            model,
            cache: model.new_cache(),
            tokens: Vec::new(),
            lora: None,
        }
    }

    /// Runs every following turn with `lora` (bound to this session's model), or with
    /// the base model for `None`; what the cache held is dropped.
    pub fn with_lora(mut self, lora: Option<Arc<ModelLora>>) -> Self {
        self.lora = lora;
        self.cache.clear();
        self.tokens.clear();
        self
    }

    /// Tokens the cache holds.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Generates a continuation of `prompt` (the whole text so far as ids), reusing the
    /// cache when `prompt` extends what it holds. `on_text` receives final text pieces.
    pub fn generate(
        &mut self,
        tok: &Tokenizer,
        prompt: &[u32],
        params: &GenerateParams,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        let max_ctx = self.model.config().context_length;
        if prompt.is_empty() {
            return Err(Error::InvalidArgument("the prompt is empty".into()));
        }
        if prompt.len() >= max_ctx {
            return Err(hearth_model::Error::ContextLengthExceeded {
                needed: prompt.len() + 1,
                max: max_ctx,
            }
            .into());
        }
        let mut sampler = Sampler::new(params.sampling.clone())?;
        let mut stop = StopMatcher::new(params.stop.clone())?;
        // Reuse the cache only when the prompt strictly extends what it holds.
        let reuse = self.tokens.len() < prompt.len() && prompt.starts_with(&self.tokens);
        if !reuse {
            self.cache.clear();
            self.tokens.clear();
        }
        let new = &prompt[self.tokens.len()..];
        let t0 = Instant::now();
        let mut logits = self.model.forward_with(
            new,
            &mut self.cache,
            &[new.len() - 1],
            self.lora.as_deref(),
        )?;
        self.tokens.extend_from_slice(new);
        let prefill_secs = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let mut history = prompt.to_vec();
        let mut decoder = StreamDecoder::new(tok);
        let mut out = Generation {
            generated_ids: Vec::new(),
            text: String::new(),
            finish_reason: FinishReason::Length,
            prefill_tokens: new.len(),
            prefill_secs,
            decode_secs: 0.0,
        };
        let mut emit = |s: &str, out: &mut Generation| {
            if !s.is_empty() {
                out.text.push_str(s);
                on_text(s);
            }
        };
        while out.generated_ids.len() < params.max_tokens && self.tokens.len() < max_ctx {
            let id = sampler.sample(&mut logits, &history);
            out.generated_ids.push(id);
            history.push(id);
            if !params.ignore_eos && tok.is_eog(id) {
                out.finish_reason = FinishReason::Stop;
                break;
            }
            let piece = stop.push(&decoder.push(id));
            emit(&piece.emit, &mut out);
            if piece.stopped {
                out.finish_reason = FinishReason::Stop;
                break;
            }
            if out.generated_ids.len() == params.max_tokens {
                break;
            }
            logits = self
                .model
                .forward_with(&[id], &mut self.cache, &[0], self.lora.as_deref())?;
            self.tokens.push(id);
        }
        if out.finish_reason == FinishReason::Length {
            let rest = stop.push(&decoder.finish());
            emit(&rest.emit, &mut out);
            if !rest.stopped {
                emit(&stop.finish(), &mut out);
            }
        }
        out.decode_secs = t1.elapsed().as_secs_f64();
        Ok(out)
    }
}
