//! `POST /v1/chat/completions`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{StopSpec, StreamOptions, Usage};

/// A chat completion request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    /// Which model (or `model:adapter`) answers.
    #[serde(default)]
    pub model: Option<String>,
    /// The conversation so far.
    pub messages: Vec<ChatMessageIn>,
    /// Sampling temperature (0 = greedy); OpenAI's default is 1.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass.
    #[serde(default)]
    pub top_p: Option<f32>,
    /// Keep only the k most likely tokens (vLLM extension).
    #[serde(default)]
    pub top_k: Option<i64>,
    /// Drop tokens below this fraction of the top probability (vLLM extension).
    #[serde(default)]
    pub min_p: Option<f32>,
    /// OpenAI's frequency penalty, -2..2.
    #[serde(default)]
    pub frequency_penalty: Option<f32>,
    /// OpenAI's presence penalty, -2..2.
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
    /// Most new tokens (deprecated name).
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// Most new tokens.
    #[serde(default)]
    pub max_completion_tokens: Option<i64>,
    /// Number of choices.
    #[serde(default)]
    pub n: Option<i64>,
    /// Return log-probabilities of the chosen tokens.
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// How many alternatives per token (0..=20), with `logprobs`.
    #[serde(default)]
    pub top_logprobs: Option<i64>,
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

/// One message of the conversation a client sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatMessageIn {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text (or parts); may be null for an assistant turn with tool calls.
    #[serde(default)]
    pub content: Option<MessageContent>,
    /// An optional participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Everything else (e.g. `tool_calls`).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Message content: a string or a list of typed parts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Typed parts (`{"type": "text", "text": ...}`, images, audio...).
    Parts(Vec<ContentPart>),
}

/// One part of a multi-part message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContentPart {
    /// `text`, `image_url`, `input_audio`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The rest of the part.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A chat completion.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// `chatcmpl-...`.
    pub id: String,
    /// Always `chat.completion`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model that answered.
    pub model: String,
    /// One per `n`.
    pub choices: Vec<ChatChoice>,
    /// Token counts.
    pub usage: Usage,
    /// Identifies the backend configuration.
    #[serde(default)]
    pub system_fingerprint: Option<String>,
}

/// One choice of a chat completion.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatChoice {
    /// Its position.
    pub index: usize,
    /// The assistant's message.
    pub message: ChatMessageOut,
    /// Log-probabilities, when asked for.
    pub logprobs: Option<ChatLogprobs>,
    /// `stop` or `length`.
    pub finish_reason: Option<String>,
}

/// The assistant's message in an answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatMessageOut {
    /// Always `assistant`.
    pub role: String,
    /// The text.
    pub content: Option<String>,
    /// A refusal message (we never produce one separately: null).
    pub refusal: Option<String>,
    /// URL citations and the like (always empty here).
    #[serde(default)]
    pub annotations: Vec<serde_json::Value>,
}

/// `logprobs` of a chat choice.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatLogprobs {
    /// One entry per generated token.
    pub content: Vec<ChatTokenLogprob>,
}

/// A generated token with its log-probability and alternatives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatTokenLogprob {
    /// The token's text.
    pub token: String,
    /// Its log-probability.
    pub logprob: f32,
    /// Its UTF-8 bytes (a token may hold part of a character).
    pub bytes: Option<Vec<u8>>,
    /// The most likely tokens at this position.
    pub top_logprobs: Vec<TopLogprob>,
}

/// An alternative token at a position.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopLogprob {
    /// The token's text.
    pub token: String,
    /// Its log-probability.
    pub logprob: f32,
    /// Its UTF-8 bytes.
    pub bytes: Option<Vec<u8>>,
}

/// One server-sent event of a streamed chat completion.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatChunk {
    /// Same for every chunk of a response.
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model.
    pub model: String,
    /// Deltas (empty in the final usage chunk).
    pub choices: Vec<ChatChunkChoice>,
    /// Set only in the final chunk with `stream_options.include_usage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Identifies the backend configuration.
    #[serde(default)]
    pub system_fingerprint: Option<String>,
}

/// A choice's change in one chunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatChunkChoice {
    /// Which choice.
    pub index: usize,
    /// What is new.
    pub delta: ChatDelta,
    /// Log-probabilities of the tokens in this chunk, when asked for.
    pub logprobs: Option<ChatLogprobs>,
    /// Set in the choice's last chunk.
    pub finish_reason: Option<String>,
}

/// New text of a choice.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatDelta {
    /// `assistant` in the first chunk of a choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// New text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_land_in_extra_and_content_takes_both_shapes() {
        let r: ChatCompletionRequest = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"},
                {"role":"user","content":[{"type":"text","text":"yo"}]}],
                "tools":[],"user":"u1"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.extra.keys().collect::<Vec<_>>(),
            vec![&"tools".to_string(), &"user".to_string()]
        );
        assert!(matches!(
            r.messages[1].content,
            Some(MessageContent::Parts(_))
        ));
    }
}
