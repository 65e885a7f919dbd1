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
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
