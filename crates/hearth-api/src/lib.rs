//! OpenAI-compatible wire types: what clients send to `hearth serve` and what it answers.
//!
//! Serde only, no behaviour beyond shape checks, so the server, the red-team client and
//! tests share one definition. Field names and shapes follow OpenAI's API reference;
//! a few vLLM extensions (`top_k`, `min_p`, `repetition_penalty`, `ignore_eos`) are
//! accepted as vLLM accepts them.
//!
//! Requests keep fields they do not model in `extra`, so the server can decide per
//! field whether it is harmless (ignored) or would change the answer (400 naming it).

mod chat;
mod common;
mod completion;
mod error;
mod misc;
mod moderation;

pub use chat::{
    ChatChoice, ChatChunk, ChatChunkChoice, ChatCompletion, ChatCompletionRequest, ChatDelta,
    ChatLogprobs, ChatMessageIn, ChatMessageOut, ChatTokenLogprob, ContentPart, MessageContent,
    TopLogprob,
};
pub use common::{PromptTokensDetails, StopSpec, StreamOptions, Usage};
pub use completion::{
    CompletionChoice, CompletionLogprobs, CompletionRequest, CompletionResponse, PromptSpec,
};
pub use error::{ErrorBody, ErrorDetail};
pub use misc::{
    DetokenizeRequest, DetokenizeResponse, GenerateRequest, GenerateResponse, ModelCard, ModelList,
    TokenPiece, TokenizeRequest, TokenizeResponse,
};
pub use moderation::{ModerationInput, ModerationRequest, ModerationResponse, ModerationResult};
