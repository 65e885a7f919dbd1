//! Errors from anonymizing text, the pseudonym vault, term lists and moderation judges.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A finding's byte span does not lie on character boundaries inside the text.
    #[error("finding span {start}..{end} is not a character range of the {len}-byte text")]
    BadSpan {
        /// Start of the span (bytes).
        start: usize,
        /// End of the span (bytes).
        end: usize,
        /// Length of the text (bytes).
        len: usize,
    },
    /// The operator for a kind is `Pseudonymize` but no vault was passed.
    #[error("operator `pseudonymize` for {kind} needs a vault, and none was given")]
    NoVault {
        /// The kind whose operator needed the vault.
        kind: &'static str,
    },
    /// A vault entry did not decrypt under the vault's key (tampered or foreign entry).
    #[error("vault entry for `{pseudonym}` does not decrypt under this key")]
    Decrypt {
        /// The pseudonym whose entry failed.
        pseudonym: String,
    },
    /// Encrypting a value failed (the AEAD refused the input).
    #[error("encrypting a value for the vault failed")]
    Encrypt,
    /// A term list has a bad line.
    #[error("{source_name}:{line}: {problem}")]
    TermList {
        /// The file or list the line came from.
        source_name: String,
        /// The line number, from 1 (0 when no single line is at fault).
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// A moderation judge failed or gave a reply that cannot be read.
    #[error("moderation judge: {problem}")]
    Judge {
        /// What went wrong (never the judged text).
        problem: String,
    },
    /// A moderation probe cannot be trained, read or applied.
    #[error("moderation probe: {problem}")]
    Probe {
        /// What went wrong.
        problem: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
