use std::path::PathBuf;

/// Errors from loading or running a model.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The GGUF container could not be read.
    #[error(transparent)]
    Gguf(#[from] hearth_gguf::Error),
    /// The file's `general.architecture` is not one we implement.
    #[error("{}: architecture `{arch}` is not supported (supported: {})", path.display(), crate::supported_architectures().join(", "))]
    UnsupportedArchitecture {
        /// The model file.
        path: PathBuf,
        /// The architecture it names.
        arch: String,
    },
    /// A tensor the architecture needs is absent.
    #[error("{}: tensor `{tensor}` is missing", path.display())]
    MissingTensor {
        /// The model file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
    },
    /// A tensor has the wrong shape or type for its role.
    #[error("{}: tensor `{tensor}`: {what}", path.display())]
    BadTensor {
        /// The model file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// What is wrong.
        what: String,
    },
    /// Metadata values are inconsistent.
    #[error("{}: {what}", path.display())]
    BadConfig {
        /// The model file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A token id outside the vocabulary.
    #[error("token id {id} is outside the vocabulary of {vocab_size}")]
    TokenOutOfRange {
        /// The id.
        id: u32,
        /// Vocabulary size.
        vocab_size: usize,
    },
    /// The sequence would exceed the model's context.
    #[error("context length exceeded: {needed} positions needed, the model allows {max}")]
    ContextLengthExceeded {
        /// Positions the request needs.
        needed: usize,
        /// The limit.
        max: usize,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
