//! Models list, tokenize/detokenize, and the seed's simple `/generate`.

use serde::{Deserialize, Serialize};

use crate::ChatMessageIn;

/// `GET /v1/models`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    /// The models served.
    pub data: Vec<ModelCard>,
}

/// One served model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    /// Its name in requests.
    pub id: String,
    /// Always `model`.
    pub object: String,
    /// Unix seconds it was loaded.
    pub created: u64,
    /// Who serves it.
    pub owned_by: String,
    /// Its context length in tokens (vLLM's name).
    pub max_model_len: usize,
    /// The base model of an adapter, if it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// `POST /tokenize`: llama.cpp's `content` or vLLM's `prompt` / `messages`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizeRequest {
    /// The model (ignored with one model served).
    #[serde(default)]
    pub model: Option<String>,
    /// Text (llama.cpp's name).
    #[serde(default)]
    pub content: Option<String>,
    /// Text (vLLM's name).
    #[serde(default)]
    pub prompt: Option<String>,
    /// A conversation to render with the chat template first.
    #[serde(default)]
    pub messages: Option<Vec<ChatMessageIn>>,
    /// Add BOS where the model wants it (default true; llama.cpp's name).
    #[serde(default)]
    pub add_special: Option<bool>,
    /// Same, vLLM's name.
    #[serde(default)]
    pub add_special_tokens: Option<bool>,
    /// With `messages`: end with the assistant's header (default true).
    #[serde(default)]
    pub add_generation_prompt: Option<bool>,
    /// Return `{id, piece}` pairs instead of ids (llama.cpp).
    #[serde(default)]
    pub with_pieces: Option<bool>,
}

/// A token with its text, for `with_pieces`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenPiece {
    /// The id.
    pub id: u32,
    /// Its text (lossy UTF-8 of its bytes).
    pub piece: String,
}

/// `POST /tokenize` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenizeResponse {
    /// Ids, or pieces with `with_pieces`.
    pub tokens: serde_json::Value,
    /// How many.
    pub count: usize,
    /// The model's context length.
    pub max_model_len: usize,
}

/// `POST /detokenize`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetokenizeRequest {
    /// The model (ignored with one model served).
    #[serde(default)]
    pub model: Option<String>,
    /// The ids.
    pub tokens: Vec<u32>,
}

/// `POST /detokenize` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DetokenizeResponse {
    /// The text (llama.cpp's name).
    pub content: String,
    /// The text (vLLM's name).
    pub prompt: String,
}

/// `POST /generate`: the seed's simple API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    /// Text to continue.
    pub prompt: String,
    /// Most new tokens (default 128).
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// Sampling temperature (default 0.7).
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Seed for sampling.
    #[serde(default)]
    pub seed: Option<i64>,
}

/// `POST /generate` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerateResponse {
    /// The continuation.
    pub text: String,
    /// `stop` or `length`.
    pub finish_reason: String,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
}
