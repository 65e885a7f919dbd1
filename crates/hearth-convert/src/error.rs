use std::path::PathBuf;

/// Everything that can go wrong inspecting, quantizing or converting a model.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a GGUF file failed.
    #[error(transparent)]
    Gguf(#[from] hearth_gguf::Error),
    /// The model could not be understood or run.
    #[error(transparent)]
    Model(#[from] hearth_model::Error),
    /// The tokenizer could not be read.
    #[error(transparent)]
    Tokenizer(#[from] hearth_tokenizer::Error),
    /// Scoring failed.
    #[error(transparent)]
    Engine(#[from] hearth_engine::Error),
    /// The operating system refused an operation on a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file's content is not what its format requires.
    #[error("{}: {what}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong, naming the field.
        what: String,
    },
    /// A tensor cannot be encoded or decoded as asked.
    #[error("tensor `{tensor}`: {what}")]
    Tensor {
        /// The tensor's name.
        tensor: String,
        /// What was wrong.
        what: String,
    },
    /// The caller asked for something that cannot be done.
    #[error("{0}")]
    InvalidArgument(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            what: what.into(),
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
