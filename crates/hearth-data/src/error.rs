//! The one error type of hearth-data.

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
///
/// Malformed *input lines* are not errors: readers count and report them (see
/// [`crate::Malformed`]) and the run goes on. These variants stop a run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, read, written or renamed.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What was being done (`open`, `read`, `write`, `rename`, ...).
        op: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An input path names no file, or a directory holding no readable data files.
    #[error("{path}: {what}")]
    Input {
        /// The path given as input.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// A parameter is out of its allowed range.
    #[error("invalid parameter `{name}`: {what}")]
    Param {
        /// The parameter's name (as on the command line).
        name: &'static str,
        /// What is wrong with its value.
        what: String,
    },
    /// A configuration file could not be read.
    #[error("{path}: {what}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// An n-gram model file (`lm.bin` or ARPA) or a cutoffs file is unusable.
    #[error("{path}: {what}")]
    Model {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (with the line or byte where it applies).
        what: String,
    },
    /// The scorer (a language model, provided by the caller) failed.
    #[error("scoring failed: {0}")]
    Scorer(String),
    /// A record could not be serialized back to JSON.
    #[error("serializing a record: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// An [`Error::Io`] for `op` on `path`.
    pub fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            op,
            source,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
