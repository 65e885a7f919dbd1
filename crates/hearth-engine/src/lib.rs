//! Requests in, tokens out: sampling, stop rules, the generation loop and perplexity.
//! (The batching scheduler and paged KV cache come here next.)
//!
//! Depends on the model and tokenizer; knows nothing of HTTP or terminals. Key design
//! choice: generation reports text through a callback as soon as it is final (stop
//! strings held back, UTF-8 completed), so the CLI and a server stream the same way.

pub mod bench;
mod error;
mod generate;
mod perplexity;
pub mod rng;
pub mod sampler;
pub mod stop;

pub use error::{Error, Result};
pub use generate::{FinishReason, GenerateParams, Generation, Session};
pub use perplexity::{log_softmax_at, perplexity, PerplexityConfig, PerplexityReport};
pub use sampler::{logprob_of, top_logprobs, Sampler, SamplingParams};
pub use stop::{StopMatcher, StopOutput};
