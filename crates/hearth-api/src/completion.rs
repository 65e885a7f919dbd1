//! `POST /v1/completions` (the legacy text completion API).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{StopSpec, StreamOptions, Usage};

/// `prompt`: text, token ids, or a batch of either.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PromptSpec {
    /// One text.
    Text(String),
    /// Several texts.
    Texts(Vec<String>),
    /// One prompt as token ids.
    Tokens(Vec<u32>),
    /// Several prompts as token ids.
    TokenBatches(Vec<Vec<u32>>),
}

/// A completion request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// Which model answers.
    #[serde(default)]
    pub model: Option<String>,
    /// What to continue.
    pub prompt: PromptSpec,
    /// Most new tokens (OpenAI's default: 16).
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// Sampling temperature (0 = greedy).
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass.
    #[serde(default)]
    pub top_p: Option<f32>,
    /// Keep only the k most likely tokens (vLLM extension).
    #[serde(default)]
    pub top_k: Option<i64>,
    /// Min-p sampling (vLLM extension).
    #[serde(default)]
    pub min_p: Option<f32>,
    /// OpenAI's frequency penalty.
    #[serde(default)]
    pub frequency_penalty: Option<f32>,
    /// OpenAI's presence penalty.
    #[serde(default)]
    pub presence_penalty: Option<f32>,
    /// Multiplicative repetition penalty (vLLM extension).
    #[serde(default)]
    pub repetition_penalty: Option<f32>,
    /// Seed for sampling.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Stop strings.
    #[serde(default)]
    pub stop: Option<StopSpec>,
    /// Choices per prompt.
    #[serde(default)]
    pub n: Option<i64>,
    /// Number of alternatives to report per token (0..=20); null for none.
    #[serde(default)]
    pub logprobs: Option<i64>,
    /// Put the prompt before the completion in `text`.
    #[serde(default)]
    pub echo: Option<bool>,
    /// Stream server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Streaming options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Keep generating past end-of-generation tokens (vLLM extension).
    #[serde(default)]
    pub ignore_eos: Option<bool>,
    /// Everything else the client sent.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A completion.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompletionResponse {
    /// `cmpl-...`.
    pub id: String,
    /// `text_completion`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model.
    pub model: String,
    /// One per prompt and `n`.
    pub choices: Vec<CompletionChoice>,
    /// Token counts (absent in stream chunks other than the usage one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Identifies the backend configuration.
    #[serde(default)]
    pub system_fingerprint: Option<String>,
}

/// One completion choice (or its part in a stream chunk).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompletionChoice {
    /// Its position.
    pub index: usize,
    /// The text (new text only, in a chunk).
    pub text: String,
    /// Log-probabilities, when asked for.
    pub logprobs: Option<CompletionLogprobs>,
    /// `stop` or `length`, in the last part.
    pub finish_reason: Option<String>,
}

/// The legacy log-probability layout: parallel arrays.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CompletionLogprobs {
    /// Token texts.
    pub tokens: Vec<String>,
    /// Their log-probabilities.
    pub token_logprobs: Vec<Option<f32>>,
    /// Per token, the alternatives as text → log-probability.
    pub top_logprobs: Vec<Option<BTreeMap<String, f32>>>,
    /// Byte offset of each token in `text`.
    pub text_offset: Vec<usize>,
}
