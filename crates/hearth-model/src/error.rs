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
    /// A depth to read the residual stream at is not a block of the model.
    #[error("depth {depth} is not a block of this {layers}-block model (1 to {layers})")]
    BadDepth {
        /// The depth asked for.
        depth: usize,
        /// Blocks in the model.
        layers: usize,
    },
    /// A paged KV store could not be laid out (zero block size, size overflow) or
    /// does not fit the model it is used with.
    #[error("paged KV cache: {what}")]
    BadKvLayout {
        /// What is wrong.
        what: String,
    },
    /// A sequence's token range in a ragged batch is empty, out of bounds or not
    /// contiguous with the previous one.
    #[error("batch sequence {seq}: token range {start}..{end} should start at {expected_start} and end within {n_tokens} tokens, non-empty")]
    BadBatchRange {
        /// Index of the sequence in the batch.
        seq: usize,
        /// Start of its range.
        start: usize,
        /// End of its range.
        end: usize,
        /// Where the range should start (the end of the previous one).
        expected_start: usize,
        /// Tokens in the batch.
        n_tokens: usize,
    },
    /// A block table does not cover the positions a sequence's step reads or writes.
    #[error("batch sequence {seq}: {} table covers logical blocks {have_from}..{have_to}, the step needs {need_from}..{need_to}", if *.window { "window" } else { "block" })]
    BlockTableTooShort {
        /// Index of the sequence in the batch.
        seq: usize,
        /// Whether it is the window table.
        window: bool,
        /// First logical block the table holds.
        have_from: usize,
        /// One past the last logical block it holds.
        have_to: usize,
        /// First logical block the step needs.
        need_from: usize,
        /// One past the last logical block the step needs.
        need_to: usize,
    },
    /// A block id is not in its pool.
    #[error("batch sequence {seq}: block id {block} is outside the {} pool of {n_blocks} blocks", if *.window { "window" } else { "global" })]
    BlockOutOfRange {
        /// Index of the sequence in the batch.
        seq: usize,
        /// Whether it is in the window table.
        window: bool,
        /// The id.
        block: u32,
        /// Blocks in the pool.
        n_blocks: usize,
    },
    /// A sequence has a window table and the model has no windowed layers, or the
    /// other way round.
    #[error("batch sequence {seq}: the model {} windowed layers but the sequence {} a window table", if *.model_windowed { "has" } else { "has no" }, if *.model_windowed { "lacks" } else { "has" })]
    WindowTableMismatch {
        /// Index of the sequence in the batch.
        seq: usize,
        /// Whether the model has windowed layers.
        model_windowed: bool,
    },
    /// Two tokens of one step would write the same KV slot.
    #[error("batch sequence {seq}: position {pos} would write {} block {block} offset {offset}, which another token of the step writes too", if *.window { "window" } else { "global" })]
    KvSlotConflict {
        /// Index of the (later) sequence in the batch.
        seq: usize,
        /// Its position.
        pos: usize,
        /// Whether the slot is in the window pool.
        window: bool,
        /// The block id.
        block: u32,
        /// Offset in the block.
        offset: usize,
    },
    /// A LoRA adapter cannot be read, written, represented or used with this model.
    #[error("LoRA adapter {}: {what}", path.display())]
    Adapter {
        /// The adapter's file or directory (`(in memory)` for one built in memory).
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
