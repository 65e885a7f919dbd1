use std::path::PathBuf;

/// Everything that can go wrong reading or writing a GGUF file.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused an operation on the file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The header or metadata does not follow the format.
    #[error("{}: malformed GGUF at byte {offset}: {what}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// Byte offset where the problem was found.
        offset: u64,
        /// What was wrong.
        what: String,
    },
    /// A tensor's directory entry or data is unusable.
    #[error("{}: tensor `{tensor}`: {what}", path.display())]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// What was wrong.
        what: String,
    },
    /// A metadata key the caller needs is absent.
    #[error("{}: metadata key `{key}` is missing", path.display())]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A metadata key holds a value of another type than the caller needs.
    #[error("{}: metadata key `{key}` should be {expected}, found {found}", path.display())]
    WrongType {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The type wanted.
        expected: &'static str,
        /// The type present.
        found: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
