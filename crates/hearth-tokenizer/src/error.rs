//! Errors from building a tokenizer or tokenizing text.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the GGUF metadata failed (missing key, wrong type, ...).
    #[error("tokenizer metadata: {0}")]
    Gguf(#[from] hearth_gguf::Error),
    /// `tokenizer.ggml.model` names an algorithm we do not implement.
    #[error("unsupported tokenizer model `{0}` (supported: `llama` (SentencePiece), `gpt2` (byte-level BPE), `gemma4`)")]
    UnsupportedModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokenizer we do not know.
    #[error("unknown BPE pre-tokenizer `{0}`")]
    UnknownPreTokenizer(String),
    /// `tokenizer.ggml.pre` names a pre-tokenizer llama.cpp knows but we do not implement.
    #[error("BPE pre-tokenizer `{0}` is not supported (it needs a splitter of llama.cpp's we have not ported)")]
    UnsupportedPreTokenizer(String),
    /// A metadata entry is present but unusable.
    #[error("bad tokenizer metadata `{key}`: {what}")]
    BadMetadata {
        /// The metadata key.
        key: String,
        /// What is wrong with it.
        what: String,
    },
    /// Adding BOS/EOS was asked for but the vocabulary has no such token.
    #[error("the vocabulary has no {0} token, but the metadata asks for one to be added")]
    MissingSpecialToken(&'static str),
    /// SentencePiece byte fallback needed a `<0xNN>` token the vocabulary lacks.
    #[error("no byte-fallback token for byte 0x{0:02X} in the vocabulary")]
    MissingByteToken(u8),
    /// A pre-tokenizer regular expression failed to compile or run.
    #[error("pre-tokenizer regex `{regex}`: {what}")]
    Regex {
        /// The expression (as llama.cpp writes it).
        regex: String,
        /// The regex engine's complaint.
        what: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
