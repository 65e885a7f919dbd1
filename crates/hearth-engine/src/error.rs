/// Errors from generation and evaluation.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] hearth_model::Error),
    /// The tokenizer failed.
    #[error(transparent)]
    Tokenizer(#[from] hearth_tokenizer::Error),
    /// A caller-supplied value is out of range.
    #[error("{0}")]
    InvalidArgument(String),
    /// A sampling parameter is outside its allowed range.
    #[error("invalid sampling parameter {field} = {value}: {expected}")]
    InvalidParam {
        /// The offending field of [`SamplingParams`](crate::SamplingParams).
        field: &'static str,
        /// Its value, as written by `Display`.
        value: String,
        /// What was expected instead.
        expected: &'static str,
    },
    /// A stop string is empty (it would match everywhere).
    #[error("stop string #{index} is empty; stop strings must be non-empty")]
    EmptyStopString {
        /// Position of the empty string in the list passed in.
        index: usize,
    },
    /// The engine is at an admission limit; the caller should retry later (HTTP 429).
    #[error("overloaded: {what} at the limit of {limit}")]
    Overloaded {
        /// Which limit: `"queued requests"` or `"queued prompt tokens"`.
        what: &'static str,
        /// The configured limit.
        limit: usize,
    },
    /// The prompt plus the tokens asked for do not fit the context (never truncated).
    #[error(
        "context length exceeded: {prompt_tokens} prompt tokens + {max_new_tokens} new > {limit}"
    )]
    ContextLengthExceeded {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// New tokens asked for.
        max_new_tokens: usize,
        /// The most tokens one sequence may hold.
        limit: usize,
    },
    /// The KV block pool cannot supply the blocks asked for.
    #[error("out of KV blocks: {needed} needed, {available} available")]
    OutOfBlocks {
        /// Blocks the operation needed.
        needed: usize,
        /// Blocks free or evictable.
        available: usize,
    },
    /// A sequence id the scheduler or block manager does not know.
    #[error("unknown sequence {seq}")]
    UnknownSequence {
        /// The id passed in.
        seq: crate::SeqId,
    },
    /// A request names a LoRA adapter the engine has not loaded.
    #[error("no LoRA adapter named `{name}` is loaded")]
    UnknownAdapter {
        /// The name asked for.
        name: String,
    },
    /// A LoRA adapter of that name is loaded already.
    #[error("a LoRA adapter named `{name}` is loaded already (unload it first)")]
    AdapterExists {
        /// The name.
        name: String,
    },
    /// A bookkeeping invariant of the block manager or scheduler does not hold (our bug).
    #[error("invariant violated: {what}")]
    InvariantViolated {
        /// Which invariant, and the values that broke it.
        what: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
