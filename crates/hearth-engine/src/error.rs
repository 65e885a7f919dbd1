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
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
