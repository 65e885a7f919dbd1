//! Requests in, tokens out: sampling, stop rules, the generation loop, perplexity, and
//! the tensor-free parts of serving: KV block manager, prefix cache, batching scheduler.
//!
//! Depends on the model and tokenizer; knows nothing of HTTP or terminals. Key design
//! choice: generation reports text through a callback as soon as it is final (stop
//! strings held back, UTF-8 completed), so the CLI and a server stream the same way.

pub mod bench;
pub mod block_manager;
mod engine;
mod error;
mod generate;
mod ids;
pub mod metrics;
mod perplexity;
pub mod pooled;
pub mod prefix_cache;
pub mod rng;
pub mod sampler;
pub mod scheduler;
pub mod stop;

pub use block_manager::{BlockManager, BlockTable};
pub use engine::{
    Engine, EngineConfig, EngineRequest, EventStream, GenerationEvent, TokenLogprobs,
};
pub use error::{Error, Result};
pub use generate::{FinishReason, GenerateParams, Generation, Session};
pub use ids::{BlockId, SeqId};
pub use metrics::{EngineMetrics, Histogram};
pub use perplexity::{log_softmax_at, perplexity, PerplexityConfig, PerplexityReport};
pub use prefix_cache::{BlockHash, PrefixCache, PrefixCacheStats};
pub use sampler::{logprob_of, top_logprobs, Sampler, SamplingParams};
pub use scheduler::{
    Request, Scheduler, SchedulerConfig, SchedulerStats, StepEntry, StepOutcome, StepPlan,
};
pub use stop::{StopMatcher, StopOutput};
