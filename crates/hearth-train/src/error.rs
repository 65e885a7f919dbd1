use std::path::PathBuf;

/// Errors from loading data, building the training model, training and writing adapters.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model could not be loaded.
    #[error(transparent)]
    Model(#[from] hearth_model::Error),
    /// The GGUF container could not be read or written.
    #[error(transparent)]
    Gguf(#[from] hearth_gguf::Error),
    /// Tokenizing failed.
    #[error(transparent)]
    Tokenizer(#[from] hearth_tokenizer::Error),
    /// The chat template failed on a conversation.
    #[error(transparent)]
    Chat(#[from] hearth_tokenizer::chat::ChatError),
    /// Hashing a file for the provenance record failed.
    #[error(transparent)]
    Convert(#[from] hearth_convert::Error),
    /// A tensor operation failed (a shape bug of ours, or out of memory).
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A training record is not in any layout we read.
    #[error("{}: record {record}: {what}", path.display())]
    Data {
        /// The data file.
        path: PathBuf,
        /// 1-based record number (line of a JSONL file, element of a JSON array).
        record: usize,
        /// What is wrong.
        what: String,
    },
    /// The chat template renders a conversation so that the text before an assistant
    /// turn is not a prefix of the whole: assistant tokens cannot be located.
    #[error("the chat template does not render conversations incrementally: {0}")]
    Template(String),
    /// A distillation teacher and student do not share one vocabulary.
    #[error("teacher and student vocabularies differ: {what}")]
    VocabMismatch {
        /// Both sizes (or the first differing token) and both files.
        what: String,
    },
    /// A setting is out of range or inconsistent.
    #[error("invalid setting: {0}")]
    Config(String),
    /// A checkpoint or adapter file is malformed or does not match the run.
    #[error("{}: {what}", path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

impl Error {
    /// A closure turning an I/O error on `path` into [`Error::Io`].
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
